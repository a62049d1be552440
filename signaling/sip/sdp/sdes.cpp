#include "sip/sdp/sdes.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/ascii.h"

namespace portier::sdp {
namespace {

// Indexed by SrtpSuite; GCM lengths from RFC 7714 §12.
constexpr SrtpSuiteInfo kSuites[kSrtpSuites] = {
    {SrtpSuite::AeadAes256Gcm, "AEAD_AES_256_GCM", 32, 12, 16, 16, true, "aes-256-gcm", "null",
     "null"},
    {SrtpSuite::AeadAes128Gcm, "AEAD_AES_128_GCM", 16, 12, 16, 16, true, "aes-128-gcm", "null",
     "null"},
    {SrtpSuite::Aes256CmHmacSha1_80, "AES_256_CM_HMAC_SHA1_80", 32, 14, 10, 10, false,
     "aes-256-icm", "hmac-sha1-80", "hmac-sha1-80"},
    {SrtpSuite::AesCm128HmacSha1_80, "AES_CM_128_HMAC_SHA1_80", 16, 14, 10, 10, false,
     "aes-128-icm", "hmac-sha1-80", "hmac-sha1-80"},
    {SrtpSuite::AesCm128HmacSha1_32, "AES_CM_128_HMAC_SHA1_32", 16, 14, 4, 10, false, "aes-128-icm",
     "hmac-sha1-32", "hmac-sha1-80"},
};

constexpr bool table_in_enum_order() {
  for (size_t i = 0; i < kSrtpSuites; ++i)
    if (static_cast<size_t>(kSuites[i].suite) != i) return false;
  return true;
}
static_assert(table_in_enum_order(), "kSuites is indexed by SrtpSuite");
static_assert(46 == kMaxKeySalt, "AES_256_CM's key and salt are the longest");

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// RFC 4648 §4. Padding is optional (RFC 4568 §6.1 writes it, some peers drop
// it), but where there is some it must complete the last group of four.
bool decode_base64(std::string_view in, uint8_t *out, size_t max, size_t *size) {
  size_t pad = 0;
  while (!in.empty() && in.back() == '=') in.remove_suffix(1), ++pad;
  if (pad > 2 || (pad && (in.size() + pad) % 4 != 0)) return false;
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
  for (size_t i = 0; i < size; i += 3) {
    const uint32_t v = uint32_t(in[i]) << 16 | (i + 1 < size ? uint32_t(in[i + 1]) << 8 : 0) |
                       (i + 2 < size ? in[i + 2] : 0);
    out += kBase64[v >> 18 & 63];
    out += kBase64[v >> 12 & 63];
    out += i + 1 < size ? kBase64[v >> 6 & 63] : '=';
    out += i + 2 < size ? kBase64[v & 63] : '=';
  }
  return out;
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

// A decimal of at most 20 digits; false if it does not fit 64 bits.
bool to_u64(std::string_view digits, uint64_t *out) {
  uint64_t v = 0;
  for (char c : digits) {
    const uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  *out = v;
  return true;
}

// Shown in an error: a suite name or other token from the network, never a key.
std::string shown(std::string_view s, size_t max) {
  std::string out;
  for (char c : s.substr(0, max)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u >= 0x7f) ? '?' : c;
  }
  return s.size() > max ? out + "..." : out;
}

}  // namespace

const std::array<SrtpSuite, kSrtpSuites> kAllSrtpSuites = {
    SrtpSuite::AeadAes256Gcm, SrtpSuite::AeadAes128Gcm, SrtpSuite::Aes256CmHmacSha1_80,
    SrtpSuite::AesCm128HmacSha1_80, SrtpSuite::AesCm128HmacSha1_32};

const SrtpSuiteInfo &suite_info(SrtpSuite s) { return kSuites[static_cast<size_t>(s)]; }

const char *suite_name(SrtpSuite s) { return suite_info(s).name; }

std::optional<SrtpSuite> suite_from_name(std::string_view name) {
  for (const SrtpSuiteInfo &i : kSuites)
    if (name == i.name) return i.suite;
  return std::nullopt;
}

size_t key_salt_length(SrtpSuite s) { return suite_info(s).key_len + suite_info(s).salt_len; }

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

// RFC 4568 §9.1: "a=crypto:" tag 1*WSP crypto-suite 1*WSP key-params
// *(1*WSP session-param); for SRTP (§9.2) key-params is "inline:" key-salt
// ["|" lifetime] ["|" mki], several of them joined by ';'. A malformed line is
// told apart from a well-formed one we cannot use: an answerer skips the
// latter for the next line (§6.1), a proxy may refuse the former outright.
std::optional<CryptoAttr> parse_crypto(std::string_view value, std::string *error,
                                       bool *unsupported) {
  bool ignored;
  if (!unsupported) unsupported = &ignored;
  *unsupported = false;
  auto refuse = [&](std::string why, bool usable_line) -> std::optional<CryptoAttr> {
    *unsupported = usable_line;
    if (error) *error = "a=crypto: " + why;
    return std::nullopt;
  };
  std::string_view rest = value;
  const std::string_view tag = next_word(&rest);
  const std::string_view suite = next_word(&rest);
  const std::string_view key_params = next_word(&rest);
  const std::string_view session_param = next_word(&rest);
  if (!all_digits(tag, 9))
    return refuse("the tag is not a number of 1 to 9 digits (RFC 4568 section 9.1)", false);
  if (suite.empty() || key_params.empty())
    return refuse("not \"<tag> <crypto-suite> <key-params>\" (RFC 4568 section 9.1)", false);
  CryptoAttr out;
  out.tag = static_cast<unsigned>(std::stoul(std::string(tag)));
  // An answer carries the offered tag (§6.1), and we print it as a number.
  if (tag.size() > 1 && tag.front() == '0')
    return refuse("tag " + std::string(tag) + " has a leading zero, which our answer would lose",
                  true);
  const auto known = suite_from_name(suite);
  if (!known) return refuse("suite \"" + shown(suite, 40) + "\" is not supported", true);
  out.key.suite = *known;
  if (key_params.find(';') != std::string_view::npos)
    return refuse("more than one key (RFC 4568 section 6.1: each needs an MKI) is not supported",
                  true);
  // ABNF strings are case-insensitive (RFC 5234 §2.3).
  if (!ascii::istarts_with(key_params, "inline:"))
    return refuse("the key method is not \"inline:\" (RFC 4568 section 9.2)", false);
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
  // key-info's optional fields, in this order: "|" lifetime, "|" mki ":" length.
  bool lifetime_short = false, mki = false;
  for (int field = 0; !info.empty(); ++field) {
    info.remove_prefix(1);
    const std::string_view f = info.substr(0, info.find('|'));
    info.remove_prefix(f.size());
    const size_t colon = f.find(':');
    if (colon != std::string_view::npos) {
      // mki-value = 1*DIGIT, mki-length = 1*3DIGIT, the last field.
      if (!info.empty() || !all_digits(f.substr(0, colon), 20) ||
          !all_digits(f.substr(colon + 1), 3))
        return refuse("a malformed MKI (RFC 4568 section 9.2)", false);
      mki = true;
      continue;
    }
    if (field != 0) return refuse("a key lifetime out of place (RFC 4568 section 9.2)", false);
    // lifetime = ["2^"] 1*DIGIT: packets under this master key.
    std::string_view digits = f;
    const bool power = digits.substr(0, 2) == "2^";
    if (power) digits.remove_prefix(2);
    uint64_t v = 0;
    if (!all_digits(digits, 20) || !to_u64(digits, &v) || (power && v > 64))
      return refuse("a malformed key lifetime (RFC 4568 section 6.1)", false);
    // A key must last as long as libsrtp lets it (2^48 SRTP, 2^31 SRTCP
    // packets): we never re-key within a call.
    lifetime_short = power ? v < 31 : v < (uint64_t(1) << 31);
  }
  if (mki) return refuse("an MKI (RFC 4568 section 6.1) is not supported", true);
  if (lifetime_short) return refuse("a key lifetime under 2^31 packets is not supported", true);
  if (!session_param.empty())
    return refuse("session parameter \"" + shown(session_param, 20) +
                      "\" (RFC 4568 section 6.3) is not supported",
                  true);
  return out;
}

std::string print_crypto(const CryptoAttr &attr) {
  return std::to_string(attr.tag) + " " + suite_name(attr.key.suite) +
         " inline:" + encode_base64(attr.key.bytes.data(), attr.key.size);
}

bool make_offer_keys(std::vector<CryptoAttr> *out) {
  out->clear();
  unsigned tag = 1;
  for (SrtpSuite s : kAllSrtpSuites) {
    auto key = CryptoKey::generate(s);
    if (!key) return false;
    out->push_back({tag++, *key});
  }
  return true;
}

}  // namespace portier::sdp
