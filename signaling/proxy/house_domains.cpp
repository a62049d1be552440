#include "proxy/house_domains.h"

#include <sofia-sip/nta_tport.h>
#include <sofia-sip/tport.h>

#include "common/ascii.h"
#include "common/clock.h"
#include "proxy/chain/target_resolver.h"

namespace portier::proxy {

std::string domain_aor(const char *host) { return normalize_aor("", host ? host : ""); }

HouseDomains::~HouseDomains() {
  for (auto &[received, flow] : flows_) tport_unref(flow.tp);
}

bool HouseDomains::may_register(const char *host) const {
  return settings_.accept && host && *host && !names_.is_reg_domain(host) &&
         !names_.is_auth_domain(host) && !names_.is_alias(host);
}

bool HouseDomains::is_registered(const char *host, int64_t now) const {
  return may_register(host) && !locations_.lookup(domain_aor(host), now).empty();
}

void HouseDomains::note_flow(const std::string &received, tport_t *tp, const char *domain) {
  drop_closed();
  auto [it, fresh] = flows_.emplace(received, Flow{nullptr, ascii::to_lower(domain)});
  if (!fresh && it->second.tp == tp && ascii::iequals(it->second.domain, domain)) return;
  if (it->second.tp) {
    by_tport_.erase(it->second.tp);
    tport_unref(it->second.tp);
  }
  it->second = Flow{tport_ref(tp), ascii::to_lower(domain)};
  by_tport_[it->second.tp] = received;
}

bool HouseDomains::flow_open(const std::string &received) const {
  auto it = flows_.find(received);
  return it != flows_.end() && !tport_is_closed(it->second.tp) && !tport_is_shutdown(it->second.tp);
}

std::string HouseDomains::hop(const std::string &domain, int64_t now) const {
  if (!is_registered(domain.c_str(), now)) return "";
  for (const Binding &b : locations_.lookup(domain_aor(domain.c_str()), now))
    if (flow_open(b.received)) return chain::flow_next_hop(b);
  return "";
}

bool HouseDomains::on_flow_of(nta_agent_t *agent, msg_t *msg, const char *domain) const {
  if (by_tport_.empty() || !agent || !domain) return false;
  tport_t *tp = nta_incoming_transport(agent, nullptr, msg);
  if (!tp) return false;
  // The connection itself, not the address it claims: only the house's own
  // TLS connection is the house, and only while its binding lives (an
  // un-REGISTERed or expired flow vouches for nobody).
  bool ok = false;
  auto it = by_tport_.find(tp);
  if (it != by_tport_.end() && !tport_is_closed(tp) && !tport_is_shutdown(tp)) {
    auto flow = flows_.find(it->second);
    if (flow != flows_.end() && ascii::iequals(flow->second.domain, domain))
      for (const Binding &b : locations_.lookup(domain_aor(domain), clock::wall_s()))
        ok |= b.received == it->second;
  }
  tport_unref(tp);
  return ok;
}

void HouseDomains::drop_closed() {
  // Bounded by the domains that authenticated: only they add entries.
  for (auto it = flows_.begin(); it != flows_.end();) {
    tport_t *tp = it->second.tp;
    if (tport_is_closed(tp) || tport_is_shutdown(tp)) {
      by_tport_.erase(tp);
      tport_unref(tp);
      it = flows_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace portier::proxy
