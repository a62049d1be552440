// In-dialog requests (a To tag, RFC 3261 §12.2) follow the route set our
// Record-Route put in place, and only that one: the top Route must name us and
// carry our signature over the dialog (RouteSigner), the request must belong to
// a dialog the router recorded and come from one of its parties, and go to the
// other party (DialogTable). Only then does the router forward it.
#pragma once

#include <string>

#include "proxy/chain/processor.h"
#include "proxy/dialog_table.h"

namespace portier::proxy::chain {

// The router's side of in-dialog requests: the dialogs it recorded, and the
// forwarding of a request the validator admitted.
class DialogRouter {
 public:
  virtual ~DialogRouter() = default;
  // The recorded dialog a to-tagged request names, as far as a request from
  // source_host can tell (DialogTable::match).
  virtual DialogTable::Match match_dialog(msg_t *msg, const sip_t *sip,
                                          const std::string &source_host) = 0;
  // Forwards an admitted request inside its dialog m (m.verdict is Ok). True
  // when it keeps reply.irq().
  virtual bool route_onward(Reply &reply, msg_t *msg, const sip_t *sip,
                            const DialogTable::Match &m) = 0;
  // Whether a refused in-dialog request may be logged: a few lines a second,
  // so a flood of forged requests cannot flood the log.
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
