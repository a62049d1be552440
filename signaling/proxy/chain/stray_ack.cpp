#include "proxy/chain/stray_ack.h"

namespace portier::proxy::chain {

Outcome AckOfOurAnswer::process(RequestContext &ctx) {
  const sip_t *sip = ctx.sip;
  if (sip->sip_request->rq_method == sip_method_ack && sip->sip_to && sip->sip_to->a_tag &&
      tag_ == sip->sip_to->a_tag)
    return Outcome::Stop;
  return Outcome::Continue;
}

Outcome StrayAck::process(RequestContext &ctx) {
  return ctx.sip->sip_request->rq_method == sip_method_ack ? Outcome::Stop : Outcome::Continue;
}

}  // namespace portier::proxy::chain
