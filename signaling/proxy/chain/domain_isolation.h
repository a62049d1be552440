// One house per domain: a user of one served domain reaches only its own
// domain (each house is a world of its own; a resident of one must not ring,
// message or watch the door of another). A request whose caller (proved by
// DigestAuth, or claimed by ClaimedCaller) is of a served domain other than
// the Request-URI's gets 403, unless [module::Router] inter-domain-requests =
// allow. Requests inside a dialog never come here (DialogValidator routes
// them), so a call set up while allowed carries on.
#pragma once

#include "proxy/chain/processor.h"
#include "proxy/local_names.h"

namespace portier::proxy::chain {

class DomainIsolation : public Processor {
 public:
  // allowed: read per request (a reload changes it).
  DomainIsolation(const LocalNames &names, const bool &allowed)
      : names_(names), allowed_(allowed) {}
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "domain-isolation"; }

 private:
  const LocalNames &names_;
  const bool &allowed_;
};

}  // namespace portier::proxy::chain
