// SDES (RFC 4568): the a=crypto attribute that carries an SRTP master key in
// SDP, read and written. The relay reads the door's and each device's line and
// writes lines with keys of its own; plain C++, no network.
//
// Key material is secret: nothing here puts a key into an error message, and
// CryptoKey wipes its bytes when it goes; every log line passes through
// log::redact_sdes_keys().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portier::sdp {

// The suites the relay terminates (proxy/relay_srtp.h does each): RFC 4568 §6.2,
// RFC 6188 §7.1 (AES-256) and RFC 7714 §14.2 (AEAD GCM).
enum class SrtpSuite {
  AesCm128HmacSha1_80,
  AesCm128HmacSha1_32,
  Aes256CmHmacSha1_80,
  AeadAes128Gcm,
  AeadAes256Gcm,
};
constexpr size_t kSrtpSuites = 5;
// Every suite, in the order the relay offers them when nothing says otherwise.
extern const std::array<SrtpSuite, kSrtpSuites> kAllSrtpSuites;

const char *suite_name(SrtpSuite s);  // "AES_CM_128_HMAC_SHA1_80", ...
std::optional<SrtpSuite> suite_from_name(std::string_view name);
// Master key plus master salt, in bytes (RFC 4568 §6.2.1: 16 + 14; RFC 7714 §12: 16/32 + 12).
size_t key_salt_length(SrtpSuite s);
constexpr size_t kMaxKeySalt = 46;  // AES_256_CM: 32 + 14

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

// One a=crypto line (the value after "crypto:").
struct CryptoAttr {
  unsigned tag = 0;  // 1-999999999 (RFC 4568 §9.1)
  CryptoKey key;
};

// Reads an a=crypto value. nullopt, with *error, when it is malformed: the
// message names what is wrong, never the key. A well-formed line the relay
// cannot use is refused too, with *unsupported set (an unknown suite, MKI, more
// than one key, a lifetime under 2^31 packets or a session parameter: RFC 4568
// §6.1 lets the answerer skip such a line for the next one).
std::optional<CryptoAttr> parse_crypto(std::string_view value, std::string *error,
                                       bool *unsupported = nullptr);
// "TAG SUITE inline:BASE64": the value of an a=crypto line.
std::string print_crypto(const CryptoAttr &attr);

}  // namespace portier::sdp
