#include "proxy/house_domains.h"

#include <sofia-sip/tport.h>

namespace portier::proxy {

std::string domain_aor(const char *host) { return normalize_aor("", host ? host : ""); }

HouseDomains::~HouseDomains() {
  for (auto &[received, tp] : flows_) tport_unref(tp);
}

bool HouseDomains::may_register(const char *host) const {
  return settings_.accept && host && *host && !names_.is_reg_domain(host) &&
         !names_.is_auth_domain(host) && !names_.is_alias(host);
}

bool HouseDomains::is_registered(const char *host, int64_t now) const {
  return may_register(host) && !locations_.lookup(domain_aor(host), now).empty();
}

void HouseDomains::note_flow(const std::string &received, tport_t *tp) {
  drop_closed();
  auto [it, fresh] = flows_.emplace(received, nullptr);
  if (!fresh && it->second == tp) return;
  if (it->second) tport_unref(it->second);
  it->second = tport_ref(tp);
}

bool HouseDomains::flow_open(const std::string &received) const {
  auto it = flows_.find(received);
  return it != flows_.end() && !tport_is_closed(it->second) && !tport_is_shutdown(it->second);
}

void HouseDomains::drop_closed() {
  // Bounded by the domains that authenticated: only they add entries.
  for (auto it = flows_.begin(); it != flows_.end();) {
    if (tport_is_closed(it->second) || tport_is_shutdown(it->second)) {
      tport_unref(it->second);
      it = flows_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace portier::proxy
