// The end of the chain for an admitted out-of-dialog request: its targets go to
// the router, which forks it (RFC 3261 §16.6-16.7).
#pragma once

#include <string>
#include <vector>

#include "proxy/chain/processor.h"

namespace portier::proxy::chain {

// What the router needs to fork a request; the references live as long as the call.
struct ForkRequest {
  const std::string &caller_aor;  // proved (or claimed, auth off); empty: unknown
  bool pop_route;                 // the request carried a Route naming us (§16.4)
  const std::string &aor;         // the Request-URI's address of record, for logs
  const std::vector<Target> &targets;
  // The inter-domain flow the caller is reached through (RequestContext's
  // cloud_flow or house_flow); empty: none.
  const std::string &caller_flow;
};

class Forker {
 public:
  virtual ~Forker() = default;
  // True when it keeps irq (a transaction is running), false when it answered
  // it already and the caller may hand it back to nta.
  virtual bool fork(nta_incoming_t *irq, msg_t *msg, const sip_t *sip,
                    const ForkRequest &request) = 0;
};

class Fork : public Processor {
 public:
  explicit Fork(Forker &router) : router_(router) {}
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "fork"; }

 private:
  Forker &router_;
};

}  // namespace portier::proxy::chain
