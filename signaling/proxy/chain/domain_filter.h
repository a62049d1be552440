// Local policy: the proxy serves its own domains only. A Request-URI in another
// domain is refused (an in-house proxy is no open relay), and with
// authentication on, so is a caller (From) of a domain we do not authenticate:
// nobody here could prove who it is.
#pragma once

#include "proxy/chain/processor.h"
#include "proxy/house_domains.h"
#include "proxy/local_names.h"

namespace portier::proxy::chain {

class DomainFilter : public Processor {
 public:
  // check_caller: authentication is on.
  // house: whole-domain registrations (null: off); a registered house domain
  // is a Request-URI we route (down the house's flow), though not one we serve.
  DomainFilter(const LocalNames &names, bool check_caller, const HouseDomains *house = nullptr)
      : names_(names), check_caller_(check_caller), house_(house) {}
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "domain-filter"; }

 private:
  const LocalNames &names_;
  bool check_caller_;
  const HouseDomains *house_;
};

}  // namespace portier::proxy::chain
