// One house per domain: a user of one served domain reaches only its own
// domain (each house is a world of its own; a resident of one must not ring,
// message or watch the door of another). A request whose caller (proved by
// DigestAuth, or claimed by ClaimedCaller) is of a served domain other than
// the Request-URI's gets 403, unless [module::Router] inter-domain-requests =
// allow. Requests inside a dialog never come here (DialogValidator routes
// them), so a call set up while allowed carries on.
//
// On a cloud that accepts domain registrations (issue 15) each registered
// house domain is a house too: a caller of one house domain (proved by coming
// on that house's own flow) gets 403 for another house domain, on the same
// switch. Served domains and house domains are not kept apart: on a cloud the
// served domain is the residents' phones', which every house's door rings and
// whose phones call the house's door (issue 15 item 2); the house's proxy
// decides who of them may.
#pragma once

#include "proxy/chain/processor.h"
#include "proxy/house_domains.h"
#include "proxy/local_names.h"

namespace portier::proxy::chain {

class DomainIsolation : public Processor {
 public:
  // allowed: read per request (a reload changes it). house: null without
  // domain registrations.
  DomainIsolation(const LocalNames &names, const bool &allowed, const HouseDomains *house = nullptr)
      : names_(names), allowed_(allowed), house_(house) {}
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "domain-isolation"; }

 private:
  const LocalNames &names_;
  const bool &allowed_;
  const HouseDomains *house_;
};

}  // namespace portier::proxy::chain
