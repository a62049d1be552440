// In-dialog requests (a To tag, RFC 3261 §12.2) follow the route set our
// Record-Route put in place, and only that one: the top Route must name us and
// carry our signature over the dialog (RouteSigner); the router then forwards
// only inside a dialog it recorded, from one of its parties (DialogTable).
#pragma once

#include <string>

#include "proxy/chain/processor.h"
#include "proxy/dialog_table.h"

namespace portier::proxy::chain {

// The router's side of an admitted in-dialog request.
class DialogRouter {
 public:
  virtual ~DialogRouter() = default;
  // Forwards a to-tagged request whose top Route is our signed one, or refuses
  // it (481/403) when it matches no dialog of its sender. True when it keeps
  // reply.irq().
  virtual bool route_onward(Reply &reply, msg_t *msg, const sip_t *sip,
                            const std::string &source_host) = 0;
  // Whether a refused in-dialog request may be logged (a budget per second).
  virtual bool refusal_loggable() = 0;
};

class DialogValidator : public Processor {
 public:
  DialogValidator(const RouteSigner &signer, DialogRouter &router)
      : signer_(signer), router_(router) {}
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "dialog-validator"; }

  // Whether the top Route carries the signature Proxy::record_route_for put
  // there for this dialog (Call-ID and the caller's tag, which is the From or
  // the To tag depending on who sends). False for a Route we never issued.
  static bool route_signed(const RouteSigner &signer, const sip_t *sip);

 private:
  const RouteSigner &signer_;
  DialogRouter &router_;
};

}  // namespace portier::proxy::chain
