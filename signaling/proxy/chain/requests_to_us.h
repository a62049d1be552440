// Requests to the proxy itself (a Request-URI naming us, no user part): OPTIONS
// is answered with what we allow (RFC 3261 §11), REGISTER goes on to the
// registrar, anything else has nobody to reach (404).
#pragma once

#include "proxy/chain/processor.h"
#include "proxy/local_names.h"

namespace portier::proxy::chain {

class RequestsToUs : public Processor {
 public:
  explicit RequestsToUs(const LocalNames &names) : names_(names) {}
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "requests-to-us"; }

 private:
  const LocalNames &names_;
};

}  // namespace portier::proxy::chain
