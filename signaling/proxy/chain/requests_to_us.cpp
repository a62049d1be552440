#include "proxy/chain/requests_to_us.h"

#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>

namespace portier::proxy::chain {

Outcome RequestsToUs::process(RequestContext &ctx) {
  const url_t *ruri = ctx.sip->sip_request->rq_url;
  if (ruri->url_user || !names_.is_us(ruri)) return Outcome::Continue;
  switch (ctx.sip->sip_request->rq_method) {
    case sip_method_register:
      return Outcome::Continue;
    case sip_method_options:
      ctx.reply.send(SIP_200_OK,
                     SIPTAG_ALLOW_STR("INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, MESSAGE, "
                                      "REGISTER, UPDATE, PRACK, NOTIFY, SUBSCRIBE, REFER"),
                     SIPTAG_ACCEPT_STR("application/sdp"), TAG_END());
      return Outcome::Respond;
    default:
      ctx.reply.send(SIP_404_NOT_FOUND, TAG_END());
      return Outcome::Respond;
  }
}

}  // namespace portier::proxy::chain
