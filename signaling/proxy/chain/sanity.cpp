#include "proxy/chain/sanity.h"

#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>

#include <string>

namespace portier::proxy::chain {

Outcome Sanity::process(RequestContext &ctx) {
  const sip_t *sip = ctx.sip;
  if (!sip->sip_from || !sip->sip_to || !sip->sip_call_id) {
    ctx.reply.send(SIP_400_BAD_REQUEST, TAG_END());  // nta's sanity check lets none through
    return Outcome::Respond;
  }
  const sip_method_t method = sip->sip_request->rq_method;
  const bool ack_or_cancel = method == sip_method_ack || method == sip_method_cancel;
  if (sip->sip_max_forwards && sip->sip_max_forwards->mf_count == 0 &&
      !(method == sip_method_options && names_.is_us(sip->sip_request->rq_url))) {
    // Step 3 (OPTIONS to us with 0 is still answered, §11). An ACK is never
    // answered (§17): it just goes no further.
    if (method == sip_method_ack) return Outcome::Stop;
    ctx.reply.send(SIP_483_TOO_MANY_HOPS, TAG_END());
    return Outcome::Respond;
  }
  if (!sip->sip_to->a_tag && !ack_or_cancel && names_.has_our_via(sip)) {
    // Step 4: this request went through us before. An in-house proxy never
    // routes to itself, so this is a loop, not a spiral.
    ctx.reply.send(SIP_482_LOOP_DETECTED, TAG_END());
    return Outcome::Respond;
  }
  if (sip->sip_proxy_require && !ack_or_cancel) {
    // Step 5, before authentication: we support no extension a proxy could be
    // required to, so every option-tag goes back in Unsupported (§20.40).
    std::string tags;
    for (const sip_proxy_require_t *r = sip->sip_proxy_require; r; r = r->k_next)
      for (msg_param_t const *item = r->k_items; item && *item; ++item)
        tags += (tags.empty() ? "" : ", ") + std::string(*item);
    ctx.reply.send(SIP_420_BAD_EXTENSION,
                   TAG_IF(!tags.empty(), SIPTAG_UNSUPPORTED_STR(tags.c_str())), TAG_END());
    return Outcome::Respond;
  }
  return Outcome::Continue;
}

}  // namespace portier::proxy::chain
