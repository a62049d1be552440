// One direction of SRTP (RFC 3711) for the relay engine, on libsrtp2 directly:
// a context that protects what the relay sends to a peer, or one that checks
// and decrypts what a peer sends. The relay terminates SRTP per leg, so every
// branch gets a key of its own (RFC 3711 §9.1: one key never protects two
// streams); media_relay.cpp says who holds which key.
//
// One context serves every SSRC of its direction (libsrtp's "any inbound" /
// "any outbound" template makes one stream per SSRC, each with its own index
// and replay window) and RTP and RTCP alike (SRTCP, RFC 3711 §3.4).
// Not thread-safe: each is used by the worker that owns its call, under that
// worker's lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "sip/sdp/crypto_attr.h"

struct srtp_ctx_t_;  // libsrtp2's

namespace portier::proxy {

class SrtpContext {
 public:
  enum class Direction { Inbound, Outbound };
  // Room a protected packet needs after its plaintext: the largest SRTCP
  // trailer (E flag and index, a 16-byte tag; no MKI).
  static constexpr size_t kTrailer = 4 + 16;

  // Starts libsrtp2 once per process (create() does it too); later calls
  // return what the first one did. Anything else in the process that uses
  // libsrtp2 calls this instead of srtp_init(), which may be called once only.
  static bool init_library(std::string *error);

  // nullptr, with *error, when libsrtp refuses the key (never shown).
  static std::unique_ptr<SrtpContext> create(const sdp::CryptoKey &key, Direction d,
                                             std::string *error);
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
  SrtpContext() = default;
  ::srtp_ctx_t_ *ctx_ = nullptr;
  sdp::SrtpSuite suite_{};
};

}  // namespace portier::proxy
