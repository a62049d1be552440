#include "sip/sdp/sdes.h"

#include <openssl/rand.h>

#include <algorithm>
#include <array>

#include "common/log.h"

namespace portier::sdp::sdes {
namespace {

const std::array<SuiteInfo, 5> kSuites{{
    {Suite::aead_aes_256_gcm, "AEAD_AES_256_GCM", 32, 12, "aes-256-gcm", "null", "null"},
    {Suite::aead_aes_128_gcm, "AEAD_AES_128_GCM", 16, 12, "aes-128-gcm", "null", "null"},
    {Suite::aes_256_cm_hmac_sha1_80, "AES_256_CM_HMAC_SHA1_80", 32, 14, "aes-256-icm",
     "hmac-sha1-80", "hmac-sha1-80"},
    {Suite::aes_cm_128_hmac_sha1_80, "AES_CM_128_HMAC_SHA1_80", 16, 14, "aes-128-icm",
     "hmac-sha1-80", "hmac-sha1-80"},
    // RFC 4568 §6.2.2: the short tag is for SRTP only; SRTCP keeps the 80-bit one.
    {Suite::aes_cm_128_hmac_sha1_32, "AES_CM_128_HMAC_SHA1_32", 16, 14, "aes-128-icm",
     "hmac-sha1-32", "hmac-sha1-80"},
}};

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int value_of(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

std::string base64(const std::vector<uint8_t> &in) {
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    const uint32_t n = uint32_t(in[i]) << 16 | (i + 1 < in.size() ? uint32_t(in[i + 1]) << 8 : 0) |
                       (i + 2 < in.size() ? in[i + 2] : 0);
    out += kAlphabet[n >> 18 & 63];
    out += kAlphabet[n >> 12 & 63];
    out += i + 1 < in.size() ? kAlphabet[n >> 6 & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

// Base64 (RFC 4648 §4), padded or not: peers differ, and a wrong length is
// caught by the suite's key size anyway.
bool unbase64(std::string_view in, std::vector<uint8_t> *out) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return false;
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const int v = value_of(c);
    if (v < 0) return false;
    acc = acc << 6 | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(uint8_t(acc >> bits));
    }
  }
  return true;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool blank(char c) { return c == ' ' || c == '\t'; }

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && blank(s[i])) ++i;
    size_t j = i;
    while (j < s.size() && !blank(s[j])) ++j;
    if (j > i) out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

std::nullopt_t fail(std::string *error, std::string why) {
  if (error) *error = std::move(why);
  return std::nullopt;
}

}  // namespace

const SuiteInfo &info(Suite s) {
  for (const SuiteInfo &i : kSuites)
    if (i.suite == s) return i;
  return kSuites[3];
}

std::optional<Suite> suite_named(std::string_view name) {
  for (const SuiteInfo &i : kSuites)
    if (name == i.name) return i.suite;
  return std::nullopt;
}

const std::vector<Suite> &offered_suites() {
  static const std::vector<Suite> all{
      Suite::aead_aes_256_gcm, Suite::aead_aes_128_gcm, Suite::aes_256_cm_hmac_sha1_80,
      Suite::aes_cm_128_hmac_sha1_80, Suite::aes_cm_128_hmac_sha1_32};
  return all;
}

// crypto-attribute = tag 1*WSP crypto-suite 1*WSP key-params *(1*WSP session-param)
// key-params = key-method ":" key-info; key-info = key-salt ["|" lifetime] ["|" mki]
// (RFC 4568 §9.1, §6.1).
std::optional<Crypto> parse(std::string_view value, std::string *error) {
  const auto w = words(value);
  if (w.size() < 3) return fail(error, "a=crypto needs a tag, a suite and a key (RFC 4568 §9.1)");
  if (w.size() > 3) return fail(error, "session parameters are not supported (RFC 4568 §6.3)");
  Crypto c;
  if (!all_digits(w[0]) || w[0].size() > 9) return fail(error, "the tag is not 1 to 9 digits");
  c.tag = static_cast<unsigned>(std::stoul(std::string(w[0])));
  auto suite = suite_named(w[1]);
  if (!suite) return fail(error, "unsupported crypto-suite " + std::string(w[1].substr(0, 40)));
  c.suite = *suite;
  std::string_view params = w[2];
  if (params.find(';') != std::string_view::npos)
    return fail(error, "several keys (they need an MKI, which we do not use)");
  constexpr std::string_view kInline = "inline:";
  if (params.substr(0, kInline.size()) != kInline)
    return fail(error, "the key method is not inline (RFC 4568 §6.1)");
  params.remove_prefix(kInline.size());
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    const size_t bar = params.find('|', start);
    parts.push_back(params.substr(start, bar == std::string_view::npos ? bar : bar - start));
    if (bar == std::string_view::npos) break;
    start = bar + 1;
  }
  if (parts.size() > 3) return fail(error, "too many '|' fields in the key");
  for (size_t i = 1; i < parts.size(); ++i) {
    std::string_view p = parts[i];
    if (p.find(':') != std::string_view::npos) {
      // mki = mki-value ":" mki-length
      const size_t colon = p.find(':');
      if (i != parts.size() - 1 || !all_digits(p.substr(0, colon)) ||
          !all_digits(p.substr(colon + 1)))
        return fail(error, "a malformed MKI");
      return fail(error, "an MKI (we send and accept keys without one)");
    }
    // lifetime = ["2^"] 1*DIGIT: packets under this master key.
    if (i != 1) return fail(error, "a malformed lifetime or MKI");
    const bool power = p.substr(0, 2) == "2^";
    if (power) p.remove_prefix(2);
    if (!all_digits(p) || p.size() > 19) return fail(error, "a malformed lifetime");
    // A call of ours never sends 2^31 packets on one stream, and we never re-key:
    // a shorter lifetime is one we cannot honour.
    const bool long_enough = power ? std::stoul(std::string(p)) >= 31
                                   : p.size() > 10 || std::stoull(std::string(p)) >= (1ull << 31);
    if (!long_enough) return fail(error, "a key lifetime below 2^31 packets (we do not re-key)");
  }
  if (!unbase64(parts[0], &c.key)) return fail(error, "the key is not base64");
  const SuiteInfo &i = info(c.suite);
  if (c.key.size() != i.key_len + i.salt_len)
    return fail(error, "a key of " + std::to_string(c.key.size()) + " bytes for " + i.name +
                           " (it needs " + std::to_string(i.key_len + i.salt_len) + ")");
  return c;
}

std::string print(const Crypto &c) {
  return std::to_string(c.tag) + " " + info(c.suite).name + " inline:" + base64(c.key);
}

bool make_key(Suite s, std::vector<uint8_t> *out) {
  const SuiteInfo &i = info(s);
  out->assign(i.key_len + i.salt_len, 0);
  return RAND_bytes(out->data(), static_cast<int>(out->size())) == 1;
}

bool make_keys(std::vector<Crypto> *out) {
  out->clear();
  unsigned tag = 1;
  for (Suite s : offered_suites()) {
    Crypto c{tag++, s, {}};
    if (!make_key(s, &c.key)) return false;
    out->push_back(std::move(c));
  }
  return true;
}

std::vector<std::vector<std::string>> crypto_values(std::string_view sdp) {
  std::vector<std::vector<std::string>> out;
  size_t pos = 0;
  while (pos < sdp.size()) {
    size_t end = sdp.find('\n', pos);
    if (end == std::string_view::npos) end = sdp.size();
    std::string_view line = sdp.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = end + 1;
    if (line.substr(0, 2) == "m=") {
      out.emplace_back();
    } else if (line.substr(0, 9) == "a=crypto:" && !out.empty()) {
      out.back().emplace_back(line.substr(9));
    }
  }
  return out;
}

std::string redact(std::string_view text) { return log::redact_sdes_keys(text); }

}  // namespace portier::sdp::sdes
