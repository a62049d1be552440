// Digest authentication of one request, without any SIP stack types: the proxy's
// sofia-sip glue extracts the credentials and writes the challenges it returns.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/auth/digest.h"
#include "common/auth/nonce.h"
#include "common/auth/users_file.h"

namespace portier::auth {

class Authenticator {
 public:
  const UsersFile &users() const { return users_; }
  // algorithms: in the order they are offered (RFC 8760 §2.4: one challenge per
  // algorithm, the preferred one first).
  Authenticator(const UsersFile &users, std::vector<Algorithm> algorithms, NonceManager &nonces);

  enum class Outcome {
    Ok,         // credentials valid
    Challenge,  // no credentials for this realm: send challenges
    Stale,      // right password, but the nonce expired, its nonce-count is no
                // longer tracked (see nonce.h) or was used already (reason
                // "replay"): never accepted; challenge with stale=true
    Failed,     // wrong password, unknown user, bad or spent nonce, no qop, ...
                // (every Failed spends the nonce, see NonceManager::spend, except
                // bad-nonce: not ours, or not issued to this host)
  };
  struct Result {
    Outcome outcome = Outcome::Challenge;
    // The username the client gave, may be empty. On Ok: the user proved; with
    // an '@' it may be of another domain than the realm, and the caller checks
    // it may act for the identity it claims.
    std::string user;
    std::string reason;  // short fixed token for logs: "wrong-password", "unknown-user",
                         // "no-secret", "replay", "bad-nonce", "spent-nonce", "no-qop",
                         // "bad-algorithm", "malformed"
    // A Failed that may count against the request's source: its nonce was issued to
    // that host, so the sender could read our challenge there (it is that host, or
    // on its path). False for bad-nonce: a forged source address is all it shows,
    // and the real sender is unknown (see "bound" in nonce.h).
    bool from_source = true;
  };

  // Checks the credentials (nullptr when the request carried none for `realm`).
  // method: of the request; realm: the user's domain; host: the request's source
  // address (the nonce must have been issued to it, see NonceManager).
  Result check(const Credentials *creds, std::string_view method, std::string_view realm,
               int64_t now_s, std::string_view host);

  // The value of each WWW-/Proxy-Authenticate header to send, one per algorithm:
  //   Digest realm="home.example", nonce="...", algorithm=SHA-256, qop="auth"[, stale=true]
  // An unknown user gets exactly the same challenge as a known one. host: where the
  // challenge goes (the source address of the request it answers).
  std::vector<std::string> challenges(std::string_view realm, bool stale, int64_t now_s,
                                      std::string_view host);

 private:
  const UsersFile &users_;
  std::vector<Algorithm> algorithms_;
  NonceManager &nonces_;
};

}  // namespace portier::auth
