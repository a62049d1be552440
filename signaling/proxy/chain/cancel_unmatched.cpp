#include "proxy/chain/cancel_unmatched.h"

#include <sofia-sip/sip_status.h>

namespace portier::proxy::chain {

Outcome CancelUnmatched::process(RequestContext &ctx) {
  if (ctx.sip->sip_request->rq_method != sip_method_cancel) return Outcome::Continue;
  ctx.reply.send(SIP_481_NO_TRANSACTION, TAG_END());
  return Outcome::Respond;
}

}  // namespace portier::proxy::chain
