// An out-of-dialog request whose route set goes on past us (RFC 3261 §16.4:
// a Route that is not ours): an in-house proxy forwards only to the devices of
// its own domains, never on to whatever host a request names.
#pragma once

#include "proxy/chain/processor.h"

namespace portier::proxy::chain {

class RelayingDenied : public Processor {
 public:
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "relaying-denied"; }
};

}  // namespace portier::proxy::chain
