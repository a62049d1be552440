#include "proxy/chain/relaying_denied.h"

namespace portier::proxy::chain {

Outcome RelayingDenied::process(RequestContext &ctx) {
  if (!ctx.next_route) return Outcome::Continue;
  ctx.reply.send(403, "Relaying denied", TAG_END());
  return Outcome::Respond;
}

}  // namespace portier::proxy::chain
