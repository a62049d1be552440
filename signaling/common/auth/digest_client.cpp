#include "common/auth/digest_client.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdio>

#include "common/ascii.h"

namespace portier::auth {
namespace {

std::string unquoted(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::string(v);
  std::string out;
  for (size_t i = 1; i + 1 < v.size(); ++i) {
    if (v[i] == '\\' && i + 2 < v.size()) ++i;  // quoted-pair (RFC 3261 §25.1)
    out += v[i];
  }
  return out;
}

}  // namespace

std::optional<Challenge> parse_challenge(std::string_view scheme,
                                         const std::vector<std::string_view> &params) {
  if (!ascii::iequals(scheme, "Digest")) return std::nullopt;
  Challenge c;
  std::string algorithm = "MD5";  // RFC 7616 §3.3: absent means MD5
  bool qop_offered = false;
  for (std::string_view p : params) {
    const size_t eq = p.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = p.substr(0, eq);
    const std::string value = unquoted(p.substr(eq + 1));
    if (ascii::iequals(name, "realm"))
      c.realm = value;
    else if (ascii::iequals(name, "nonce"))
      c.nonce = value;
    else if (ascii::iequals(name, "opaque"))
      c.opaque = value;
    else if (ascii::iequals(name, "algorithm"))
      algorithm = value;
    else if (ascii::iequals(name, "stale"))
      c.stale = ascii::iequals(value, "true");
    else if (ascii::iequals(name, "qop")) {
      // a list such as "auth,auth-int"
      qop_offered = true;
      size_t at = 0;
      while (at <= value.size()) {
        size_t end = value.find(',', at);
        if (end == std::string::npos) end = value.size();
        std::string item = value.substr(at, end - at);
        item.erase(std::remove(item.begin(), item.end(), ' '), item.end());
        if (ascii::iequals(item, "auth")) c.qop_auth = true;
        at = end + 1;
      }
    }
  }
  auto alg = parse_algorithm(algorithm);
  if (!alg || c.realm.empty() || c.nonce.empty()) return std::nullopt;
  // A server that offers qop wants one of its values back (RFC 7616 §3.4); we
  // only do "auth", and an answer without qop would be refused (auth-int only).
  if (qop_offered && !c.qop_auth) return std::nullopt;
  c.algorithm = *alg;
  return c;
}

DigestClient::~DigestClient() { std::fill(password_.begin(), password_.end(), '\0'); }

// The usable challenges come in header order, which is the server's order of
// preference (RFC 7616 §3.7, RFC 8760 §2.4): the first one wins, whichever
// algorithm it names.
bool DigestClient::challenged(const std::vector<Challenge> &challenges) {
  if (challenges.empty()) return false;
  const Challenge &c = challenges.front();
  if (!have_ || c.nonce != current_.nonce) nc_ = 0;  // a new nonce starts counting again
  current_ = c;
  have_ = true;
  return true;
}

std::string DigestClient::authorization(std::string_view method, std::string_view uri) {
  if (!have_) return "";
  const std::string ha1 = compute_ha1(current_.algorithm, username_, current_.realm, password_);
  std::string nc, cnonce, qop;
  if (current_.qop_auth) {
    char buf[9];
    std::snprintf(buf, sizeof buf, "%08x", ++nc_);
    nc = buf;
    unsigned char rnd[12];
    RAND_bytes(rnd, sizeof rnd);
    for (unsigned char b : rnd) {
      std::snprintf(buf, sizeof buf, "%02x", b);
      cnonce += buf;
    }
    qop = "auth";
  }
  const std::string response =
      compute_response(current_.algorithm, ha1, current_.nonce, nc, cnonce, qop, method, uri);
  std::string h =
      "Digest username=" + quoted_string(username_) + ", realm=" + quoted_string(current_.realm) +
      ", nonce=" + quoted_string(current_.nonce) + ", uri=" + quoted_string(uri) +
      ", response=" + quoted_string(response) + ", algorithm=" + algorithm_name(current_.algorithm);
  if (!qop.empty()) h += ", qop=auth, nc=" + nc + ", cnonce=" + quoted_string(cnonce);
  if (!current_.opaque.empty()) h += ", opaque=" + quoted_string(current_.opaque);
  return h;
}

}  // namespace portier::auth
