// SDES (RFC 4568): SRTP master keys carried in SDP a=crypto lines, for the
// door, the monitor and the proxy's relay alike. Plain C++, no network: the
// suites, one parser and one printer of the attribute, and fresh keys.
//
// A key is the secret of one direction of one stream: whoever reads it reads
// the media. No error message here shows one, CryptoKey wipes its bytes when
// it goes and compares in constant time, every log line passes through
// log::redact_sdes_keys(), and a key is never used twice (RFC 3711 §9.1):
// every call and every relay branch gets new ones.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portier::sdp {

// The crypto-suites portier runs: RFC 4568 §6.2, RFC 6188 §7.1 (AES-256) and
// RFC 7714 §14.2 (AEAD GCM). In our order of preference (kAllSrtpSuites).
enum class SrtpSuite {
  AeadAes256Gcm,
  AeadAes128Gcm,
  Aes256CmHmacSha1_80,
  AesCm128HmacSha1_80,
  AesCm128HmacSha1_32,
};
constexpr size_t kSrtpSuites = 5;
// Every suite, strongest first; AES_CM_128_HMAC_SHA1_80 is RFC 4568's
// mandatory one (§6.2.1), which every SDES peer knows. Offers list them in
// this order (§7.1.1: in order of preference).
extern const std::array<SrtpSuite, kSrtpSuites> kAllSrtpSuites;

struct SrtpSuiteInfo {
  SrtpSuite suite;
  const char *name;  // as written in a=crypto (RFC 4568 §9.2, case-sensitive)
  // Master key and master salt, bytes: salt 14 for AES-CM (RFC 3711 §8.2),
  // 12 for GCM (RFC 7714 §12).
  size_t key_len, salt_len;
  // Authentication tags, bytes: SRTCP keeps the 80-bit one under the 32-bit
  // suite (RFC 4568 §6.2.2); GCM's tag is 16 for both (RFC 7714 §14.2).
  size_t rtp_tag_len, rtcp_tag_len;
  bool aead;  // GCM: encryption and authentication in one (RFC 7714)
  // GStreamer's srtpenc/srtpdec nicks (GstSrtpCipherType, GstSrtpAuthType).
  const char *gst_cipher, *gst_rtp_auth, *gst_rtcp_auth;
};
const SrtpSuiteInfo &suite_info(SrtpSuite s);
const char *suite_name(SrtpSuite s);  // "AES_CM_128_HMAC_SHA1_80", ...
std::optional<SrtpSuite> suite_from_name(std::string_view name);
size_t key_salt_length(SrtpSuite s);  // key_len + salt_len
constexpr size_t kMaxKeySalt = 46;    // AES_256_CM: 32 + 14

// A suite and its master key || master salt.
struct CryptoKey {
  SrtpSuite suite = SrtpSuite::AesCm128HmacSha1_80;
  std::array<uint8_t, kMaxKeySalt> bytes{};
  size_t size = 0;

  CryptoKey() = default;
  CryptoKey(const CryptoKey &other) = default;
  CryptoKey &operator=(const CryptoKey &other) = default;
  ~CryptoKey();
  bool operator==(const CryptoKey &o) const;
  bool operator!=(const CryptoKey &o) const { return !(*this == o); }

  // A fresh key for `suite` from OpenSSL's CSPRNG; nullopt if it fails.
  static std::optional<CryptoKey> generate(SrtpSuite suite);
};

// One a=crypto line (the value after "a=crypto:").
struct CryptoAttr {
  unsigned tag = 0;  // 1*9DIGIT (RFC 4568 §9.1)
  CryptoKey key;
};

// Reads an a=crypto value. nullopt, with *error, when it is malformed; the
// message is one line and names what is wrong, never the key. A well-formed
// line we cannot use is refused too, with *unsupported set: an unknown suite,
// several keys, an MKI, a lifetime under 2^31 packets (we never re-key), a
// session parameter, or a tag we could not answer as written. RFC 4568 §6.1
// lets an answerer skip such a line for the next one.
std::optional<CryptoAttr> parse_crypto(std::string_view value, std::string *error,
                                       bool *unsupported = nullptr);
// "TAG SUITE inline:BASE64" (the key padded): the value of an a=crypto line.
std::string print_crypto(const CryptoAttr &attr);

// A fresh key for every suite, tagged 1, 2, ... in kAllSrtpSuites order: the
// a=crypto lines of one stream of an endpoint's offer. False if the CSPRNG
// failed.
bool make_offer_keys(std::vector<CryptoAttr> *out);

}  // namespace portier::sdp
