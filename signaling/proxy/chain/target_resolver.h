// RFC 3261 §16.5, determining the request targets: the Request-URI's address
// of record, or the AORs a group address (every AOR of the domain but the
// caller's) or a static record stands for, each resolved to its current
// bindings. No binding: 404 when nobody of that name exists, else 480.
// With domains isolated ([module::Router] inter-domain-requests = deny), a
// static record rings only the AORs of its own domain: an alias in one house
// must not become a way into another.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/auth/users_file.h"
#include "proxy/chain/processor.h"
#include "proxy/house_domains.h"
#include "proxy/local_names.h"
#include "proxy/location_store.h"
#include "proxy/proxy_config.h"
#include "proxy/static_records.h"

namespace portier::proxy::chain {

class TargetResolver : public Processor {
 public:
  // group_addresses: what rings the whole domain; inter_domain_allowed: as in
  // ProxySettings. Both are read per request: a reload changes them.
  TargetResolver(const LocalNames &names, const GroupAddresses &group_addresses,
                 const bool &inter_domain_allowed, const LocationStore &locations,
                 const StaticRecords &static_records, const auth::UsersFile &users)
      : names_(names),
        groups_(group_addresses),
        inter_domain_allowed_(inter_domain_allowed),
        locations_(locations),
        static_records_(static_records),
        users_(users) {}
  // The server transaction starts here, once the request is admitted (the
  // answers that follow, 404/480 included, go through it).
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "target-resolver"; }
  // Whole-domain registrations (null: off): a Request-URI in a registered
  // house domain goes down the house's flow, unchanged.
  void set_house_domains(const HouseDomains *house) { house_ = house; }
  // Where the flow up to the cloud of a local domain goes now (Proxy::
  // domain_flow: the cloud's URI while the domain is registered there); ""
  // when it is not. A group address of such a domain also goes up that flow,
  // Request-URI unchanged: the cloud rings the residents' phones it lists
  // for it (resolve_residents, on the cloud's side). While the cloud is
  // unreachable it is left out, so the house's own devices ring as before.
  void set_cloud_flow(std::function<std::string(const std::string &domain)> flow) {
    cloud_flow_ = std::move(flow);
  }

  // The decision alone: fills ctx.aor and ctx.targets, or answers 404/480
  // through ctx.reply and returns Respond.
  Outcome resolve(RequestContext &ctx, int64_t now) const;

 private:
  // A Request-URI in a registered house domain: its open flows, or 480.
  Outcome resolve_house(RequestContext &ctx, int64_t now) const;
  // The house's own group address, up its flow: the phones our static
  // record of that address lists (our users only), or 404/480.
  Outcome resolve_residents(RequestContext &ctx, int64_t now) const;
  // ctx.targets: the bindings of `aors`, each contact once, none naming us.
  void bindings_of(RequestContext &ctx, const std::vector<std::string> &aors, int64_t now) const;
  const LocalNames &names_;
  const GroupAddresses &groups_;
  const bool &inter_domain_allowed_;
  const LocationStore &locations_;
  const StaticRecords &static_records_;
  const auth::UsersFile &users_;
  const HouseDomains *house_ = nullptr;
  std::function<std::string(const std::string &domain)> cloud_flow_;
};

// A device behind NAT registers a contact it cannot be reached at; its REGISTER
// came from `received` ("udp:203.0.113.5:40211"). When the two differ, requests
// go to where the REGISTER came from (as rport does for responses, RFC 3581),
// with the Request-URI left as the device wrote it; empty when they are the same.
std::string next_hop_for(const url_t *contact, const std::string &received);
// Where requests down the flow of binding `b` (a domain registration's) go:
// next_hop_for, or its contact when that is where it came from.
std::string flow_next_hop(const Binding &b);

}  // namespace portier::proxy::chain
