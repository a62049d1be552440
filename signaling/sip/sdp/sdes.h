// SDES: SRTP master keys carried in SDP (RFC 4568), for portier-door and
// portier-monitor. Plain C++: a=crypto parsing and printing, fresh keys, and
// the redaction of keys in text that goes to a log.
//
// A key in an a=crypto line is the secret of one direction of one stream:
// whoever reads it reads the media. It is never logged (redact() before any
// SDP reaches a log) and never used twice (RFC 3711 §9.1): every call makes
// new ones.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portier::sdp::sdes {

// The crypto-suites we can run (GStreamer's srtpenc/srtpdec over libsrtp2).
enum class Suite {
  aead_aes_256_gcm,         // RFC 7714 §14.2
  aead_aes_128_gcm,         // RFC 7714 §14.2
  aes_256_cm_hmac_sha1_80,  // RFC 6188 §7.1
  aes_cm_128_hmac_sha1_80,  // RFC 4568 §6.2.1
  aes_cm_128_hmac_sha1_32,  // RFC 4568 §6.2.2 (the 32-bit tag is for RTP; SRTCP keeps 80)
};

struct SuiteInfo {
  Suite suite;
  const char *name;  // as written in a=crypto
  size_t key_len;    // master key, bytes
  size_t
      salt_len;  // master salt, bytes: 14 for AES-CM (RFC 3711 §8.2), 12 for GCM (RFC 7714 §14.2)
  // GStreamer's srtpenc/srtpdec nicks (GstSrtpCipherType, GstSrtpAuthType).
  const char *cipher;
  const char *rtp_auth;
  const char *rtcp_auth;
};

const SuiteInfo &info(Suite s);
std::optional<Suite> suite_named(std::string_view name);  // case-sensitive, as RFC 4568 §9.2
// What we offer, in our order of preference: the AEAD suites first, then the
// ones every SDES peer knows (AES_CM_128_HMAC_SHA1_80 is RFC 4568's mandatory one).
const std::vector<Suite> &offered_suites();

// One usable a=crypto line.
struct Crypto {
  unsigned tag = 1;  // 1*9DIGIT (RFC 4568 §9.1)
  Suite suite = Suite::aes_cm_128_hmac_sha1_80;
  std::vector<uint8_t> key;  // master key || master salt
};

// A parsed a=crypto value (the text after "a=crypto:"). nullopt, with *error,
// for a malformed line and for one we cannot honour: an unknown suite, a key
// of the wrong length, several keys, an MKI, a lifetime below 2^31 packets
// (we never re-key within a call), or session parameters (RFC 4568 §6.1: an
// answerer skips such a line and looks at the next one).
std::optional<Crypto> parse(std::string_view value, std::string *error);
// "TAG SUITE inline:KEY" (without "a=crypto:"); the key base64 with padding.
std::string print(const Crypto &c);

// A fresh master key and salt for `s` from OpenSSL's CSPRNG; false if it failed.
bool make_key(Suite s, std::vector<uint8_t> *out);

// A fresh key for every suite we offer, tagged 1, 2, ... in offered_suites()
// order: one stream's a=crypto lines. False if the CSPRNG failed.
bool make_keys(std::vector<Crypto> *out);

// The a=crypto values of each m= section of `sdp`, in order (one vector per
// m= line; session-level lines are not SDES's and are ignored).
std::vector<std::vector<std::string>> crypto_values(std::string_view sdp);

// `text` with every key in it (what follows "inline:" up to the next '|', blank
// or line end) replaced by "..." (log::redact_sdes_keys, which every log line
// passes through).
std::string redact(std::string_view text);

}  // namespace portier::sdp::sdes
