// The in-house side of a domain registration (issue 15, RFC 5626 outbound):
// for each line of [inter-domain-connections] domain-registrations, a TLS
// connection to the cloud proxy (verified against the proxy's CA file and by
// name, RFC 5922 §7.3), a REGISTER of sips:LOCAL-DOMAIN over it with a stable
// +sip.instance and reg-id (RFC 5626 §4.1-4.2), digest answered, refreshed
// before it expires, kept alive with CRLFCRLF pings and CRLF pongs (§4.4.1)
// and, once broken, made again after reconnection-delay with backoff (§4.5).
// The cloud sends the domain's requests down that connection;
// flow_domain() tells the request chain which connection that is.
// docs/notes/housereg.md has the choices.
#pragma once

// proxy.h sets sofia-sip's magic types; this header comes after it.
#include <sofia-sip/nta.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/tport.h>

#include <memory>
#include <string>
#include <vector>

#include "common/event_writer.h"
#include "proxy/proxy_config.h"

namespace portier::proxy {

class DomainRegistrar {
 public:
  DomainRegistrar(nta_agent_t *agent, su_root_t *root,
                  const ProxySettings::DomainRegistrations &settings, std::string state_directory,
                  events::Writer &events);
  ~DomainRegistrar();
  DomainRegistrar(const DomainRegistrar &) = delete;
  DomainRegistrar &operator=(const DomainRegistrar &) = delete;

  // Reads or makes each domain's instance id (the state directory keeps it,
  // so a restart is the same instance, RFC 5626 §4.1) and sends the first
  // REGISTERs. False and *error when an instance id cannot be kept.
  bool start(std::string *error);
  // portierctl domain-registrations: one object per line of the file.
  std::string json() const;
  // The local domain whose registered flow `tp` (a connection, or its
  // primary's secondary) is; "" when it is none of ours.
  std::string flow_domain(const tport_t *tp) const;
  // Where requests up to the cloud for `domain` go: its line's cloud URI
  // (the registration's own connection: sofia reuses it for that address,
  // and a new one is verified by the same name), while the domain is
  // registered; "" otherwise (not ours, or the cloud is unreachable now).
  std::string cloud_hop(const std::string &domain) const;
  size_t registered() const;
  size_t size() const { return regs_.size(); }

  struct Registration;

 private:
  nta_agent_t *agent_;
  su_root_t *root_;
  const ProxySettings::DomainRegistrations settings_;
  std::string state_directory_;
  events::Writer &events_;
  std::vector<std::unique_ptr<Registration>> regs_;
};

}  // namespace portier::proxy
