// Which names mean this proxy: its transports' host:port, the domains it serves
// and their aliases. Plain data filled at start (the domains again on a
// reload); the request chain, the router and the Record-Route writer all ask it.
// The served domains are hash sets: a cloud proxy serves one domain per house,
// and every request asks, so the cost must not grow with their number.
#pragma once

#include <string>
#include <unordered_set>
#include <vector>

#include "proxy/sofia.h"

namespace portier::proxy {

class LocalNames {
 public:
  struct HostPort {
    std::string proto, host, port;  // host without brackets
  };

  using Domains = std::unordered_set<std::string>;  // lower-case

  LocalNames() = default;
  LocalNames(const std::vector<std::string> &reg_domains,
             const std::vector<std::string> &auth_domains, std::vector<std::string> aliases)
      : reg_domains_(reg_domains.begin(), reg_domains.end()),
        auth_domains_(auth_domains.begin(), auth_domains.end()),
        aliases_(std::move(aliases)) {}

  // The served domains of a reg-domains or auth-domains list: its names, and
  // for "*" every domain the users file names (`user_domains`). "*" never
  // means "whatever domain a request names" (Flexisip's wildcard): a cloud
  // proxy would then be registrar for any domain a stranger writes, and the
  // domain list would leak nothing but also guard nothing.
  static Domains expand(const std::vector<std::string> &listed, const Domains &user_domains);
  // The reg-domains and auth-domains in force from now on (a reload).
  void set_domains(Domains reg_domains, Domains auth_domains) {
    reg_domains_ = std::move(reg_domains);
    auth_domains_ = std::move(auth_domains);
  }
  const Domains &reg_domains() const { return reg_domains_; }

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
  Domains reg_domains_, auth_domains_;
  std::vector<std::string> aliases_;  // lower-case; a few
  std::vector<HostPort> us_;
};

}  // namespace portier::proxy
