#include "proxy/chain/claimed_caller.h"

#include "proxy/location_store.h"

namespace portier::proxy::chain {

Outcome ClaimedCaller::process(RequestContext &ctx) {
  const url_t *from = ctx.sip->sip_from->a_url;
  ctx.caller_aor =
      from->url_user ? normalize_aor(from->url_user, from->url_host ? from->url_host : "") : "";
  return Outcome::Continue;
}

}  // namespace portier::proxy::chain
