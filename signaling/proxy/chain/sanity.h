// RFC 3261 §16.3 steps 1-5, the checks every request passes before the proxy
// looks at where it goes: the headers a proxy needs (400), Max-Forwards (483),
// loops (482) and Proxy-Require (420). §16.3 step 6 (Proxy-Authorization) is
// DigestAuth's, later in the chain.
#pragma once

#include "proxy/chain/processor.h"
#include "proxy/local_names.h"

namespace portier::proxy::chain {

class Sanity : public Processor {
 public:
  explicit Sanity(const LocalNames &names) : names_(names) {}
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "sanity"; }

 private:
  const LocalNames &names_;
};

}  // namespace portier::proxy::chain
