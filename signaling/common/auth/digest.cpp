#include "common/auth/digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <stdexcept>

#include "common/ascii.h"

namespace portier::auth {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A quoted-string loses its quotes and backslash escapes (RFC 3261 §25.1); a token
// is taken as it is. Written straight into out, the field it belongs to; false
// for an unterminated quoted-string.
bool unquote(std::string_view v, std::string &out) {
  // Built, then moved in: cheaper than assign() into an empty string.
  if (v.empty() || v.front() != '"') {
    out = std::string(v);
    return true;
  }
  // Most values have no escape: one copy instead of a character at a time.
  if (v.size() >= 2 && v.back() == '"' && v.find('\\') == std::string_view::npos &&
      v.find('"', 1) == v.size() - 1) {
    out = std::string(v.substr(1, v.size() - 2));
    return true;
  }
  out.clear();
  for (size_t i = 1; i < v.size(); ++i) {
    char c = v[i];
    if (c == '\\') {
      if (++i == v.size()) return false;
      out.push_back(v[i]);
    } else if (c == '"') {
      // Trailing garbage after the closing quote means the header is broken.
      return i + 1 == v.size();
    } else {
      out.push_back(c);
    }
  }
  return false;
}

}  // namespace

std::optional<Algorithm> parse_algorithm(std::string_view name) {
  if (ascii::iequals(name, "MD5")) return Algorithm::MD5;
  if (ascii::iequals(name, "SHA-256")) return Algorithm::SHA256;
  return std::nullopt;
}

const char *algorithm_name(Algorithm a) { return a == Algorithm::SHA256 ? "SHA-256" : "MD5"; }

namespace {

// OpenSSL 3 looks the algorithm up again on every EVP_DigestInit_ex with
// EVP_md5()/EVP_sha256(); fetched once, and with one context reused per thread,
// a digest costs only the hashing (a REGISTER needs four of them).
const EVP_MD *fetched(Algorithm a) {
  static EVP_MD *md5 = EVP_MD_fetch(nullptr, "MD5", nullptr);
  static EVP_MD *sha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return a == Algorithm::SHA256 ? sha256 : md5;
}

EVP_MD_CTX *thread_context() {
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                           EVP_MD_CTX_free);
  return ctx.get();
}

}  // namespace

namespace {

// The digest of the parts' concatenation, in lowercase hex, into out (at least
// 2 * EVP_MAX_MD_SIZE bytes); its length. The parts are hashed where they lie:
// no string is built to hold them.
size_t hex_digest(Algorithm a, std::initializer_list<std::string_view> parts, char *out) {
  EVP_MD_CTX *ctx = thread_context();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const EVP_MD *type = fetched(a);
  // Fails only when OpenSSL cannot provide the digest at all (e.g. MD5 in FIPS-only
  // mode); an empty string would silently fail every comparison, so say it loudly.
  bool ok = ctx && type && EVP_DigestInit_ex(ctx, type, nullptr) == 1;
  // Gathered on the stack and hashed in one update: every EVP_DigestUpdate has a
  // fixed cost of its own, and a response has eleven parts.
  char joined[512];
  size_t size = 0;
  for (std::string_view p : parts) size += p.size();
  if (size <= sizeof joined) {
    char *at = joined;
    for (std::string_view p : parts) at = std::copy(p.begin(), p.end(), at);
    ok = ok && EVP_DigestUpdate(ctx, joined, size) == 1;
  } else {
    for (std::string_view p : parts) ok = ok && EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
  }
  if (!ok || EVP_DigestFinal_ex(ctx, md, &len) != 1)
    throw std::runtime_error(std::string("OpenSSL cannot compute ") + algorithm_name(a));
  static const char digits[] = "0123456789abcdef";
  for (unsigned int i = 0; i < len; ++i) {
    out[2 * i] = digits[md[i] >> 4];
    out[2 * i + 1] = digits[md[i] & 0x0f];
  }
  return 2 * len;
}

}  // namespace

std::string hex_hash(Algorithm a, std::string_view data) {
  char hex[2 * EVP_MAX_MD_SIZE];
  return std::string(hex, hex_digest(a, {data}, hex));
}

std::string compute_ha1(Algorithm a, std::string_view user, std::string_view realm,
                        std::string_view password) {
  char hex[2 * EVP_MAX_MD_SIZE];
  return std::string(hex, hex_digest(a, {user, ":", realm, ":", password}, hex));
}

std::string compute_response(Algorithm a, std::string_view ha1, std::string_view nonce,
                             std::string_view nc, std::string_view cnonce, std::string_view qop,
                             std::string_view method, std::string_view uri) {
  char ha2[2 * EVP_MAX_MD_SIZE];
  const std::string_view h2(ha2, hex_digest(a, {method, ":", uri}, ha2));
  char hex[2 * EVP_MAX_MD_SIZE];
  const size_t n =
      qop.empty() ? hex_digest(a, {ha1, ":", nonce, ":", h2}, hex)
                  : hex_digest(a, {ha1, ":", nonce, ":", nc, ":", cnonce, ":", qop, ":", h2}, hex);
  return std::string(hex, n);
}

bool credentials_from_params(const std::vector<std::string_view> &params, Credentials &out) {
  out = Credentials{};
  struct Field {
    std::string_view name;
    std::string Credentials::*member;
  };
  static constexpr Field kFields[] = {
      {"username", &Credentials::username}, {"realm", &Credentials::realm},
      {"nonce", &Credentials::nonce},       {"uri", &Credentials::uri},
      {"response", &Credentials::response}, {"algorithm", &Credentials::algorithm},
      {"qop", &Credentials::qop},           {"nc", &Credentials::nc},
      {"cnonce", &Credentials::cnonce},     {"opaque", &Credentials::opaque},
  };
  bool seen[std::size(kFields)] = {};
  for (std::string_view param : params) {
    const size_t eq = param.find('=');
    if (eq == std::string_view::npos) continue;
    const std::string_view name = trim(param.substr(0, eq));
    for (size_t i = 0; i < std::size(kFields); ++i) {
      if (!ascii::iequals(name, kFields[i].name)) continue;
      // RFC 7616 §3.4: a parameter appears at most once; two "response" values would
      // leave it to chance which one is checked.
      if (seen[i]) return false;
      if (!unquote(trim(param.substr(eq + 1)), out.*kFields[i].member)) return false;
      seen[i] = true;
      break;
    }
  }
  if (out.username.empty() || out.realm.empty() || out.nonce.empty() || out.uri.empty() ||
      out.response.empty()) {
    return false;
  }
  if (!out.qop.empty() && (out.nc.empty() || out.cnonce.empty())) return false;
  return true;
}

std::string quoted_string(std::string_view v) {
  std::string out = "\"";
  // A realm or a nonce has nothing to escape: copied whole, once per challenge.
  if (v.find_first_of("\"\\") == std::string_view::npos) {
    out.reserve(v.size() + 2);
    out.append(v);
    out += '"';
    return out;
  }
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Only the length may leak, and digests of one algorithm all have the same length.
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace portier::auth
