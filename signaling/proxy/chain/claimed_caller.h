// With authentication off, the caller is who its From says (an address of
// record, nothing proved): the router excludes it from its own group call and
// asserts it to the callees. With authentication on, DigestAuth takes this
// place and sets the identity it proved.
#pragma once

#include "proxy/chain/processor.h"

namespace portier::proxy::chain {

class ClaimedCaller : public Processor {
 public:
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "claimed-caller"; }
};

}  // namespace portier::proxy::chain
