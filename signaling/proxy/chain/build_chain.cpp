#include "proxy/chain/build_chain.h"

#include <memory>

#include "proxy/chain/cancel_unmatched.h"
#include "proxy/chain/claimed_caller.h"
#include "proxy/chain/domain_filter.h"
#include "proxy/chain/domain_isolation.h"
#include "proxy/chain/relaying_denied.h"
#include "proxy/chain/requests_to_us.h"
#include "proxy/chain/route_preprocess.h"
#include "proxy/chain/sanity.h"
#include "proxy/chain/stray_ack.h"
#include "proxy/chain/target_resolver.h"

namespace portier::proxy::chain {

Chain build_chain(const ChainParts &p) {
  Chain c;
  // Per source, before any other work: bans, connection activity.
  c.add(std::make_unique<SourceLimiter>(p.bans, p.connections));
  c.add(std::make_unique<AckOfOurAnswer>(p.stateless_tag));
  // RFC 3261 §16.3 steps 1-5, §16.4, §16.10.
  c.add(std::make_unique<Sanity>(p.names));
  c.add(std::make_unique<RoutePreprocess>(p.names));
  c.add(std::make_unique<CancelUnmatched>());
  // In-dialog requests: our signed Route, a recorded dialog, its parties.
  c.add(std::make_unique<DialogValidator>(p.route_signer, p.dialogs));
  c.add(std::make_unique<StrayAck>());
  // Local policy for requests outside a dialog.
  c.add(std::make_unique<RelayingDenied>());
  c.add(std::make_unique<RequestsToUs>(p.names));
  c.add(std::make_unique<DomainFilter>(p.names, p.digest_auth != nullptr, p.house_domains));
  c.add(p.registrar);
  if (p.digest_auth)
    c.add(*p.digest_auth);
  else
    c.add(std::make_unique<ClaimedCaller>());
  // One house per domain, once the caller is known.
  c.add(
      std::make_unique<DomainIsolation>(p.names, p.settings.inter_domain_allowed, p.house_domains));
  // §16.5 targets, §16.6-16.7 forking.
  auto resolver = std::make_unique<TargetResolver>(p.names, p.settings.group_addresses,
                                                   p.settings.inter_domain_allowed, p.locations,
                                                   p.static_records, p.users);
  resolver->set_house_domains(p.house_domains);
  if (p.cloud_flow) resolver->set_cloud_flow(p.cloud_flow);
  c.add(std::move(resolver));
  c.add(std::make_unique<Fork>(p.router));
  return c;
}

}  // namespace portier::proxy::chain
