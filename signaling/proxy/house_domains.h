// Domain registrations (issue 15, Flexisip's [inter-domain-connections]): a
// house's in-house proxy registers its whole domain (To: <sips:HOUSE>, no user
// part) over a TLS connection it keeps open, and the cloud sends every request
// for that domain down that connection (RFC 5626 flow), Request-URI unchanged.
// The binding itself lives in the LocationStore under the AOR "sip:HOUSE" (so
// refresh, un-REGISTER, expiry and persistence are those of any binding); this
// class adds what the store cannot hold: which TLS connection each binding
// came over, and whether it is still open.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "proxy/local_names.h"
#include "proxy/location_store.h"
#include "proxy/proxy_config.h"
#include "proxy/sofia.h"
// After sofia.h (its magic types).
#include <sofia-sip/tport.h>

namespace portier::proxy {

class HouseDomains {
 public:
  HouseDomains(HouseDomainSettings settings, const LocalNames &names,
               const LocationStore &locations)
      : settings_(settings), names_(names), locations_(locations) {}
  ~HouseDomains();
  HouseDomains(const HouseDomains &) = delete;
  HouseDomains &operator=(const HouseDomains &) = delete;

  const HouseDomainSettings &settings() const { return settings_; }
  // host may register as a house domain: registrations are accepted and the
  // cloud does not serve host itself (a reg-domain is never a house's, else a
  // house could take the cloud's own users' calls).
  bool may_register(const char *host) const;
  // host is a house domain with a live binding: requests for it go to the house.
  bool is_registered(const char *host, int64_t now) const;
  // The connection a domain binding came over ("tls:IP:PORT", as
  // Binding::received): a reference is kept until the connection closes.
  void note_flow(const std::string &received, tport_t *tp, const char *domain);
  // The request `msg` came in on an open flow that `domain` registered: the
  // house's proxy vouches for its own domain's callers, and for nobody else
  // (a From of any other domain is checked as from anyone).
  bool on_flow_of(nta_agent_t *agent, msg_t *msg, const char *domain) const;
  // The connection of that binding is still open (RFC 5626 §5.3: a request
  // goes down the flow or nowhere; a new connection to the house's NAT would
  // not reach it).
  bool flow_open(const std::string &received) const;
  // Where requests for `domain` go now: the next hop of its newest open flow
  // (TargetResolver::resolve_house's), "" when it has none. In-dialog
  // requests to a party behind the house's NAT take it (Router::onward_hop).
  std::string hop(const std::string &domain, int64_t now) const;

 private:
  void drop_closed();

  HouseDomainSettings settings_;
  const LocalNames &names_;
  const LocationStore &locations_;
  struct Flow {
    tport_t *tp;         // our reference
    std::string domain;  // lower-case, the domain it registered
  };
  std::map<std::string, Flow> flows_;                // received -> the flow
  std::map<const tport_t *, std::string> by_tport_;  // connection -> its received
};

// The AOR under which a domain registration is stored: "sip:HOUSE".
std::string domain_aor(const char *host);

}  // namespace portier::proxy
