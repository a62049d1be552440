// RFC 3261 §16.4, Route information preprocessing: a top Route naming us is
// ours to consume; what is left is where the request wants to go next. Later
// processors read ctx.routed_to_us and ctx.next_route; this one never decides.
#pragma once

#include "proxy/chain/processor.h"
#include "proxy/local_names.h"

namespace portier::proxy::chain {

class RoutePreprocess : public Processor {
 public:
  explicit RoutePreprocess(const LocalNames &names) : names_(names) {}
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "route-preprocess"; }

 private:
  const LocalNames &names_;
};

}  // namespace portier::proxy::chain
