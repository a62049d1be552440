#include "sip/sdp/crypto_attr.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/ascii.h"

namespace portier::sdp {
namespace {

struct SuiteInfo {
  SrtpSuite suite;
  const char *name;
  size_t key_salt;
};

constexpr SuiteInfo kSuites[kSrtpSuites] = {
    {SrtpSuite::AesCm128HmacSha1_80, "AES_CM_128_HMAC_SHA1_80", 30},
    {SrtpSuite::AesCm128HmacSha1_32, "AES_CM_128_HMAC_SHA1_32", 30},
    {SrtpSuite::Aes256CmHmacSha1_80, "AES_256_CM_HMAC_SHA1_80", 46},
    {SrtpSuite::AeadAes128Gcm, "AEAD_AES_128_GCM", 28},
    {SrtpSuite::AeadAes256Gcm, "AEAD_AES_256_GCM", 44},
};

const SuiteInfo &info(SrtpSuite s) { return kSuites[static_cast<size_t>(s)]; }

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// RFC 4648 §4, padding optional (RFC 4568 §6.1 writes it, some peers drop it).
bool decode_base64(std::string_view in, uint8_t *out, size_t max, size_t *size) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (char c : in) {
    const int v = base64_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n == max) return false;
      out[n++] = static_cast<uint8_t>(acc >> bits);
    }
  }
  *size = n;
  return bits < 6;  // a lone trailing character carries no whole byte
}

std::string encode_base64(const uint8_t *in, size_t size) {
  std::string out;
  size_t i = 0;
  for (; i + 2 < size; i += 3) {
    const uint32_t v = in[i] << 16 | in[i + 1] << 8 | in[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += kBase64[(v >> s) & 63];
  }
  if (size - i == 1) {
    const uint32_t v = in[i] << 16;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += "==";
  } else if (size - i == 2) {
    const uint32_t v = in[i] << 16 | in[i + 1] << 8;
    out += kBase64[(v >> 18) & 63];
    out += kBase64[(v >> 12) & 63];
    out += kBase64[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool fail(std::string *error, std::string message) {
  if (error) *error = std::move(message);
  return false;
}

std::string_view next_word(std::string_view *s) {
  while (!s->empty() && (s->front() == ' ' || s->front() == '\t')) s->remove_prefix(1);
  size_t n = 0;
  while (n < s->size() && (*s)[n] != ' ' && (*s)[n] != '\t') ++n;
  std::string_view w = s->substr(0, n);
  s->remove_prefix(n);
  return w;
}

bool all_digits(std::string_view s, size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// Shown in an error: a suite name or other token from the network, never a key.
std::string shown(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 40)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u >= 0x7f) ? '?' : c;
  }
  return s.size() > 40 ? out + "..." : out;
}

}  // namespace

const std::array<SrtpSuite, kSrtpSuites> kAllSrtpSuites = {
    SrtpSuite::AesCm128HmacSha1_80, SrtpSuite::AeadAes128Gcm, SrtpSuite::AeadAes256Gcm,
    SrtpSuite::Aes256CmHmacSha1_80, SrtpSuite::AesCm128HmacSha1_32};

const char *suite_name(SrtpSuite s) { return info(s).name; }

std::optional<SrtpSuite> suite_from_name(std::string_view name) {
  // RFC 4568 §9.1 tokens are case-sensitive in the registry; peers write them upper-case.
  for (const SuiteInfo &i : kSuites)
    if (name == i.name) return i.suite;
  return std::nullopt;
}

size_t key_salt_length(SrtpSuite s) { return info(s).key_salt; }

CryptoKey::~CryptoKey() { OPENSSL_cleanse(bytes.data(), bytes.size()); }

bool CryptoKey::operator==(const CryptoKey &o) const {
  return suite == o.suite && size == o.size &&
         CRYPTO_memcmp(bytes.data(), o.bytes.data(), size) == 0;
}

std::optional<CryptoKey> CryptoKey::generate(SrtpSuite suite) {
  CryptoKey k;
  k.suite = suite;
  k.size = key_salt_length(suite);
  if (RAND_bytes(k.bytes.data(), static_cast<int>(k.size)) != 1) return std::nullopt;
  return k;
}

std::optional<CryptoAttr> parse_crypto(std::string_view value, std::string *error,
                                       bool *unsupported) {
  bool ignored;
  if (!unsupported) unsupported = &ignored;
  *unsupported = false;
  auto refuse = [&](std::string why, bool usable_line) {
    *unsupported = usable_line;
    fail(error, "a=crypto: " + why);
    return std::nullopt;
  };
  std::string_view rest = value;
  const std::string_view tag = next_word(&rest);
  const std::string_view suite = next_word(&rest);
  const std::string_view key_params = next_word(&rest);
  const std::string_view session_params = next_word(&rest);
  if (!all_digits(tag, 9) || tag == "0" || tag.front() == '0')
    return refuse("the tag is not a number of 1 to 9 digits (RFC 4568 section 9.1)", false);
  if (suite.empty() || key_params.empty())
    return refuse("not \"<tag> <crypto-suite> <key-params>\" (RFC 4568 section 9.1)", false);
  CryptoAttr out;
  out.tag = static_cast<unsigned>(std::stoul(std::string(tag)));
  const auto known = suite_from_name(suite);
  if (!known) return refuse("suite \"" + shown(suite) + "\" is not supported", true);
  out.key.suite = *known;
  if (key_params.find(';') != std::string_view::npos)
    return refuse("more than one key (RFC 4568 section 5.1) is not supported", true);
  if (key_params.size() < 7 || !ascii::iequals(key_params.substr(0, 7), "inline:"))
    return refuse("the key method is not \"inline:\" (RFC 4568 section 6.1)", false);
  std::string_view info = key_params.substr(7);
  const std::string_view key = info.substr(0, info.find('|'));
  info.remove_prefix(key.size());
  const size_t want = key_salt_length(*known);
  size_t got = 0;
  if (!decode_base64(key, out.key.bytes.data(), out.key.bytes.size(), &got) || got != want)
    return refuse("the key of tag " + std::string(tag) + " is not " + std::to_string(want) +
                      " bytes of base64 for " + suite_name(*known) + " (RFC 4568 section 6.1)",
                  false);
  out.key.size = got;
  while (!info.empty()) {  // "|lifetime" and "|mki:length"
    info.remove_prefix(1);
    const std::string_view field = info.substr(0, info.find('|'));
    info.remove_prefix(field.size());
    if (field.find(':') != std::string_view::npos)
      return refuse("an MKI (RFC 4568 section 6.1) is not supported", true);
    std::string_view exp = field;
    const bool power = exp.size() > 2 && exp.substr(0, 2) == "2^";
    if (power) exp.remove_prefix(2);
    if (!all_digits(exp, 20)) return refuse("bad key lifetime (RFC 4568 section 6.1)", false);
    // The relay never re-keys: a key must last as long as libsrtp lets it (2^48 packets).
    const unsigned long long v = std::stoull(std::string(exp));
    if (power ? v < 31 : v < (1ULL << 31))
      return refuse("a key lifetime under 2^31 packets is not supported", true);
  }
  if (!session_params.empty())
    return refuse("session parameter \"" + shown(session_params.substr(0, 20)) +
                      "\" (RFC 4568 section 6.3) is not supported",
                  true);
  return out;
}

std::string print_crypto(const CryptoAttr &attr) {
  return std::to_string(attr.tag) + " " + suite_name(attr.key.suite) +
         " inline:" + encode_base64(attr.key.bytes.data(), attr.key.size);
}

}  // namespace portier::sdp
