// One direction of SRTP (RFC 3711, RFC 6188, RFC 7714) for the relay engine,
// on OpenSSL's EVP AES and SHA-1 directly (relay_srtp.cpp says why): a context that protects what
// the relay sends to a peer, or one that checks and decrypts what a peer sends. The relay
// terminates SRTP per leg, so every branch gets a key of its own (RFC 3711 §9.1: one key never
// protects two streams); media_relay.cpp says who holds which key.
//
// One context serves every SSRC of its direction, like libsrtp's "any inbound"
// / "any outbound" template: one stream per SSRC (at most kMaxStreams), each
// with its own rollover counter, SRTCP index and replay windows, for RTP and
// RTCP alike (SRTCP, RFC 3711 §3.4).
// Not thread-safe: each is used by the worker that owns its call, under that
// worker's lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "sip/sdp/sdes.h"

namespace portier::proxy {

class SrtpContext {
 public:
  // Inbound keeps a 1024-packet replay window (reordered keyframe bursts),
  // Outbound 128 packets, only to refuse a repeated index.
  enum class Direction { Inbound, Outbound };
  // Room a protected packet needs after its plaintext: the largest SRTCP
  // trailer (E flag and index, a 16-byte tag; no MKI).
  static constexpr size_t kTrailer = 4 + 16;
  // SSRCs one context keeps state for; a packet of one more is refused (a
  // door sends two or three, a device as many).
  static constexpr size_t kMaxStreams = 16;

  // Starts libsrtp2 once per process; later calls return what the first one
  // did. The relay does not use libsrtp2: this is for the tests whose peers do
  // (it is defined in relay_srtp_libsrtp.cpp, library portier_srtp_oracle),
  // instead of srtp_init(), which may be called once only.
  static bool init_library(std::string *error);

  // nullptr, with *error, when the key does not fit the suite (never shown).
  static std::unique_ptr<SrtpContext> create(const sdp::CryptoKey &key, Direction d,
                                             std::string *error);
  // A GCM context from session keys as given (the same for RTP and RTCP), no
  // derivation: RFC 7714 §16-17's test vectors are written that way.
  static std::unique_ptr<SrtpContext> create_gcm_from_session_key(sdp::SrtpSuite suite,
                                                                  const uint8_t *key,
                                                                  const uint8_t salt[12]);
  ~SrtpContext();
  SrtpContext(const SrtpContext &) = delete;
  SrtpContext &operator=(const SrtpContext &) = delete;

  // In place. protect: `data` must have kTrailer writable bytes after *size and
  // be 4-byte aligned. False: the packet must not go (for unprotect: it failed
  // authentication, was replayed or is too short).
  bool protect_rtp(uint8_t *data, size_t *size);
  bool unprotect_rtp(uint8_t *data, size_t *size);
  bool protect_rtcp(uint8_t *data, size_t *size);
  bool unprotect_rtcp(uint8_t *data, size_t *size);

  sdp::SrtpSuite suite() const { return suite_; }

 private:
  struct Impl;
  SrtpContext() = default;
  std::unique_ptr<Impl> impl_;
  sdp::SrtpSuite suite_{};
};

// RFC 3711 §4.3.3's AES-CM PRF with key_derivation_rate 0: `out_len` bytes of
// the keystream for IV = (master salt XOR label << 48) * 2^16 (RFC 6188 §7 and
// RFC 7714 §11 use it too). Here for the RFCs' test vectors.
bool srtp_prf(const uint8_t *master_key, size_t key_len, const uint8_t *master_salt,
              size_t salt_len, uint8_t label, uint8_t *out, size_t out_len);

}  // namespace portier::proxy
