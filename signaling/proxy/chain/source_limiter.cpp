#include "proxy/chain/source_limiter.h"

#include "common/clock.h"

namespace portier::proxy::chain {

Outcome SourceLimiter::process(RequestContext &ctx) {
  if (bans_ && bans_->admit(ctx.source_address(), clock::wall_s()) ==
                   auth::FailureLimiter::Verdict::Banned)
    return Outcome::Stop;
  if (connections_)
    connections_->note_request(ctx.msg, ctx.sip->sip_request->rq_method == sip_method_register);
  return Outcome::Continue;
}

}  // namespace portier::proxy::chain
