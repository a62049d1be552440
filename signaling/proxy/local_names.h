// Which names mean this proxy: its transports' host:port, the domains it serves
// and their aliases. Plain data filled at start; the request chain, the router
// and the Record-Route writer all ask it.
#pragma once

#include <string>
#include <vector>

#include "proxy/sofia.h"

namespace portier::proxy {

class LocalNames {
 public:
  struct HostPort {
    std::string proto, host, port;  // host without brackets
  };

  LocalNames() = default;
  LocalNames(std::vector<std::string> reg_domains, std::vector<std::string> auth_domains,
             std::vector<std::string> aliases)
      : reg_domains_(std::move(reg_domains)),
        auth_domains_(std::move(auth_domains)),
        aliases_(std::move(aliases)) {}

  // One of our listening points ("udp", "127.0.0.1", "5060"), once sofia opened it.
  void add_address(HostPort hp) { us_.push_back(std::move(hp)); }
  const std::vector<HostPort> &addresses() const { return us_; }

  bool is_reg_domain(const char *host) const;
  bool is_auth_domain(const char *host) const;
  bool is_alias(const char *host) const;
  // One of our transports' host:port (what our Via and Record-Route name).
  bool is_our_address(const url_t *url) const;
  // True when url names this proxy: one of our transports' host:port, or a served
  // domain or an alias ([global] aliases) on no port or one of our ports. Phones
  // whose outbound proxy is the domain or a DNS name put that in their Route.
  bool is_us(const url_t *url) const;
  // A Via of ours in the request: it went through us before (§16.3 step 4).
  bool has_our_via(const sip_t *sip) const;

 private:
  std::vector<std::string> reg_domains_, auth_domains_, aliases_;  // lower-case
  std::vector<HostPort> us_;
};

}  // namespace portier::proxy
