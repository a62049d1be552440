// The client side of SIP digest authentication (RFC 3261 §22, RFC 7616,
// RFC 8760) for portier-door and portier-monitor.
//
// Why not sofia-sip's auth client: the Debian build (1.12.11) refuses a whole
// 401/407 when any of its challenges names an algorithm it lacks, so a proxy
// offering SHA-256 and MD5 (RFC 8760 §2.4: one challenge per algorithm) locks
// a nua client out. Here the first challenge with an algorithm we know wins, in
// the server's order of preference (RFC 7616 §3.7). (A 401/407 with MD5
// alone, sofia-sip takes and answers itself: sip::Account::credentials.)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/auth/digest.h"

namespace portier::auth {

struct Challenge {
  Algorithm algorithm = Algorithm::MD5;
  std::string realm, nonce, opaque;
  bool qop_auth = false;  // the server offers qop=auth
  bool stale = false;
};

// One challenge header's parameters, "name=value" as sofia-sip keeps them in
// msg_auth_t::au_params, with its scheme. nullopt when it is not a usable
// Digest challenge.
std::optional<Challenge> parse_challenge(std::string_view scheme,
                                         const std::vector<std::string_view> &params);

class DigestClient {
 public:
  DigestClient(std::string username, std::string password)
      : username_(std::move(username)), password_(std::move(password)) {}
  ~DigestClient();

  // The challenges of one response, in header order: remembers the first we
  // can answer. False when none can be.
  bool challenged(const std::vector<Challenge> &challenges);
  // The Authorization / Proxy-Authorization header value for a request with
  // this method and Request-URI; every call counts one nonce use (nc).
  std::string authorization(std::string_view method, std::string_view uri);
  const std::string &realm() const { return current_.realm; }

 private:
  std::string username_, password_;
  Challenge current_;
  bool have_ = false;
  uint32_t nc_ = 0;
};

}  // namespace portier::auth
