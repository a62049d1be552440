#include "common/auth/authenticator.h"

#include <algorithm>
#include <utility>

#include "common/ascii.h"

namespace portier::auth {

namespace {

Authenticator::Result failed(std::string user, const char *reason) {
  return {Authenticator::Outcome::Failed, std::move(user), reason};
}

}  // namespace

Authenticator::Authenticator(const UsersFile &users, std::vector<Algorithm> algorithms,
                             NonceManager &nonces)
    : users_(users), algorithms_(std::move(algorithms)), nonces_(nonces) {}

Authenticator::Result Authenticator::check(const Credentials *creds, std::string_view method,
                                           std::string_view realm, int64_t now_s,
                                           std::string_view host) {
  if (!creds) return {Outcome::Challenge, {}, {}};
  const std::string &user = creds->username;
  // Credentials for another realm (another hop's proxy) are not ours to judge.
  if (creds->realm != realm) return {Outcome::Challenge, user, {}};

  // The nonce first: unless it was issued to this host, nothing else about the
  // request says who sent it, so it neither counts against the source it claims nor
  // spends anything (the nonce belongs to another host).
  const NonceManager::Check nonce = nonces_.check(creds->nonce, now_s, host);
  if (nonce == NonceManager::Check::Invalid) {
    Result r = failed(user, "bad-nonce");
    r.from_source = false;
    return r;
  }

  // Every refusal below spends the nonce: a guesser gets one try per challenge, and
  // each challenge is a round trip the failure limits count.
  auto refuse = [&](const char *reason) {
    nonces_.spend(creds->nonce, now_s, host);
    return failed(user, reason);
  };

  // RFC 2617 clients leave the algorithm out and mean MD5.
  const std::optional<Algorithm> alg = creds->algorithm.empty()
                                           ? std::optional<Algorithm>(Algorithm::MD5)
                                           : parse_algorithm(creds->algorithm);
  if (!alg || std::find(algorithms_.begin(), algorithms_.end(), *alg) == algorithms_.end()) {
    return refuse("bad-algorithm");
  }
  // Only qop=auth is offered, and it is required: without qop (RFC 2069 style) there
  // is no nonce-count, so one captured response could be replayed for the nonce's
  // whole lifetime with other Contacts (RFC 7616 §3.4, §5.5). auth-int would need the
  // body hash.
  if (creds->qop.empty()) return refuse("no-qop");
  if (!ascii::iequals(creds->qop, "auth")) return refuse("malformed");

  // Refused before any hashing, whatever the password: a spent nonce that still
  // answered "right password" (even as stale=true) would leave the guessing open.
  if (nonce == NonceManager::Check::Spent) return failed(user, "spent-nonce");

  // Some clients send the full AOR as username; its domain names the user's
  // entry, and the response covers the whole username and the realm. A user of
  // another domain with its own password proves who it is, not that it may act
  // for the realm's user of the same name: the caller then refuses it with 403
  // (RFC 3261 §10.3 step 4, §22.4: the username is whose credentials these are,
  // and the registrar decides what that user may do).
  const size_t at = user.find('@');
  const std::string_view domain =
      at == std::string::npos ? realm : std::string_view(user).substr(at + 1);

  std::optional<std::string> ha1 = users_.ha1(user, domain, realm, *alg);
  const bool known = ha1.has_value();
  // An unknown user costs the same hashing as a known one, so response times do not
  // tell which users exist.
  if (!known) ha1 = compute_ha1(*alg, user, realm, "");
  const std::string expected = compute_response(*alg, *ha1, creds->nonce, creds->nc, creds->cnonce,
                                                creds->qop, method, creds->uri);
  // Lower-cased on the stack: a hex digest has at most 64 digits, and a longer
  // answer cannot match.
  char response[64];
  const std::string_view given = creds->response;
  bool match = false;
  if (given.size() <= sizeof response) {
    std::transform(given.begin(), given.end(), response, ascii::lower);
    match = constant_time_equal(expected, std::string_view(response, given.size()));
  }

  if (!known) {
    // "no-secret": the user exists but has no HA1 for this algorithm/realm (e.g. only
    // md5: stored while the client answered the SHA-256 challenge).
    return refuse(users_.has_user(user, domain) ? "no-secret" : "unknown-user");
  }
  if (!match) return refuse("wrong-password");
  // RFC 7616 §3.3: stale=true only tells a client that knows the password to retry.
  if (nonce == NonceManager::Check::Stale) return {Outcome::Stale, user, {}};
  switch (nonces_.accept_nc(creds->nonce, creds->nc, now_s, host)) {
    case NonceManager::Nc::Accepted:
      break;
    case NonceManager::Nc::Forgotten:
      // Authentic, but its nonce-count slot went to a newer nonce (or it predates a
      // restart): the client just needs a fresh nonce, like for an expired one.
      return {Outcome::Stale, user, {}};
    case NonceManager::Nc::Replay:
      // Never accepted (qop=auth does not cover the headers, so a replay could
      // carry another Contact). But with a stateless registrar this is what a
      // UDP retransmission of a REGISTER whose 200 was lost looks like, so the
      // client gets stale=true and retries with a fresh nonce, rather than a
      // plain 401 that clients take for a wrong password.
      return {Outcome::Stale, user, "replay"};
    case NonceManager::Nc::Malformed:
      return refuse("malformed");
  }
  return {Outcome::Ok, user, {}};
}

std::vector<std::string> Authenticator::challenges(std::string_view realm, bool stale,
                                                   int64_t now_s, std::string_view host) {
  // One nonce for all algorithms: the client answers only one challenge.
  const std::string nonce = nonces_.issue(now_s, host);
  std::vector<std::string> out;
  out.reserve(algorithms_.size());
  // realm as a quoted-string: once, not per algorithm.
  const std::string realm_param = quoted_string(realm);
  for (Algorithm a : algorithms_) {
    std::string &c = out.emplace_back();
    c.reserve(80 + realm_param.size() + nonce.size());
    c.append("Digest realm=").append(realm_param).append(", nonce=\"").append(nonce);
    c.append("\", algorithm=").append(algorithm_name(a)).append(", qop=\"auth\"");
    if (stale) c += ", stale=true";
  }
  return out;
}

}  // namespace portier::auth
