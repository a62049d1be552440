#include "proxy/chain/route_preprocess.h"

namespace portier::proxy::chain {

Outcome RoutePreprocess::process(RequestContext &ctx) {
  const sip_route_t *route = ctx.sip->sip_route;
  ctx.routed_to_us = route && names_.is_us(route->r_url);
  ctx.next_route = ctx.routed_to_us ? route->r_next : route;
  return Outcome::Continue;
}

}  // namespace portier::proxy::chain
