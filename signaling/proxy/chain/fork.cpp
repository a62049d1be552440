#include "proxy/chain/fork.h"

#include <sofia-sip/sip_status.h>

namespace portier::proxy::chain {

Outcome Fork::process(RequestContext &ctx) {
  nta_incoming_t *irq = ctx.reply.irq();
  // An agent-less Reply (the chain's tests) makes no transaction.
  if (!irq && ctx.reply.agent()) {
    ctx.reply.send(SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
    return Outcome::Respond;
  }
  ctx.kept = router_.fork(irq, ctx.msg, ctx.sip,
                          ForkRequest{ctx.caller_aor, ctx.routed_to_us, ctx.aor, ctx.targets,
                                      !ctx.cloud_flow.empty() ? ctx.cloud_flow : ctx.house_flow});
  return Outcome::Respond;
}

}  // namespace portier::proxy::chain
