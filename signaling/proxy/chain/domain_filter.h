// Local policy: the proxy serves its own domains only. A Request-URI in another
// domain is refused (an in-house proxy is no open relay), and with
// authentication on, so is a caller (From) of a domain we do not authenticate:
// nobody here could prove who it is.
#pragma once

#include "proxy/chain/processor.h"
#include "proxy/local_names.h"

namespace portier::proxy::chain {

class DomainFilter : public Processor {
 public:
  // check_caller: authentication is on.
  DomainFilter(const LocalNames &names, bool check_caller)
      : names_(names), check_caller_(check_caller) {}
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "domain-filter"; }

 private:
  const LocalNames &names_;
  bool check_caller_;
};

}  // namespace portier::proxy::chain
