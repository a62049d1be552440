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
                // (every Failed spends the nonce, see NonceManager::spend)
  };
  struct Result {
    Outcome outcome = Outcome::Challenge;
    std::string user;    // the username the client gave (for logs), may be empty
    std::string reason;  // short fixed token for logs: "wrong-password", "unknown-user",
                         // "no-secret", "replay", "bad-nonce", "spent-nonce", "no-qop",
                         // "foreign-domain", "bad-algorithm", "malformed"
  };

  // Checks the credentials (nullptr when the request carried none for `realm`).
  // method/request_uri: of the request; domain: the user's domain (the realm).
  Result check(const Credentials *creds, std::string_view method, std::string_view realm,
               int64_t now_s);

  // The value of each WWW-/Proxy-Authenticate header to send, one per algorithm:
  //   Digest realm="home.example", nonce="...", algorithm=SHA-256, qop="auth"[, stale=true]
  // An unknown user gets exactly the same challenge as a known one.
  std::vector<std::string> challenges(std::string_view realm, bool stale, int64_t now_s);

 private:
  const UsersFile &users_;
  std::vector<Algorithm> algorithms_;
  NonceManager &nonces_;
};

}  // namespace portier::auth
