// RFC 3261 §16.10: a CANCEL that nta matched to a server transaction never
// reaches the chain (nta answers it and the router cancels the branches); one
// that gets here matched nothing.
#pragma once

#include "proxy/chain/processor.h"

namespace portier::proxy::chain {

class CancelUnmatched : public Processor {
 public:
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "cancel-unmatched"; }
};

}  // namespace portier::proxy::chain
