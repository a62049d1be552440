#include "proxy/chain/dialog_validator.h"

#include <sofia-sip/sip_status.h>

#include "common/log.h"
#include "sip/sip_message.h"

namespace portier::proxy::chain {

bool DialogValidator::route_signed(const RouteSigner &signer, const sip_t *sip) {
  if (!sip->sip_route || !sip->sip_call_id || !sip->sip_from || !sip->sip_to) return false;
  char sig[64];
  if (url_param(sip->sip_route->r_url->url_params, "sig", sig, sizeof sig) <= 0) return false;
  // The caller's tag is the From tag on its own requests, the To tag on the callee's.
  const char *call_id = sip->sip_call_id->i_id;
  for (const char *tag : {sip->sip_from->a_tag, sip->sip_to->a_tag})
    if (tag && signer.verify(sig, call_id, tag)) return true;
  return false;
}

Outcome DialogValidator::process(RequestContext &ctx) {
  const sip_t *sip = ctx.sip;
  const sip_method_t method = sip->sip_request->rq_method;
  if (!sip->sip_to->a_tag || method == sip_method_register) return Outcome::Continue;
  // An ACK is never answered (§17): a refused one just goes no further.
  const Outcome refused = method == sip_method_ack ? Outcome::Stop : Outcome::Respond;
  if (!ctx.routed_to_us) {
    if (method != sip_method_ack) ctx.reply.send(SIP_481_NO_TRANSACTION, TAG_END());
    return refused;
  }
  if (!route_signed(signer_, sip)) {
    if (router_.refusal_loggable())
      PLOG_INFO("route: %s call-id=%s from %s: Route without our signature, refused",
                sip->sip_request->rq_method_name, sip->sip_call_id->i_id,
                source_of(ctx.msg).c_str());
    if (method != sip_method_ack) ctx.reply.send(403, "Route not issued here", TAG_END());
    return refused;
  }
  const std::string &source = ctx.source_address();
  const DialogTable::Match m = router_.match_dialog(ctx.msg, sip, source);
  if (m.verdict != DialogTable::Match::Ok) {
    // §12.2.2: no such dialog, as far as a request from this host can tell.
    if (router_.refusal_loggable())
      PLOG_INFO("route: %s call-id=%s from %s refused: %s", sip->sip_request->rq_method_name,
                sip->sip_call_id->i_id, source.c_str(),
                m.verdict == DialogTable::Match::NotAParty ? "not a party of the dialog"
                                                           : "no dialog with these tags");
    if (method != sip_method_ack) ctx.reply.send(SIP_481_NO_TRANSACTION, TAG_END());
    return refused;
  }
  const std::string ruri_host = sipmsg::bare_host(sip->sip_request->rq_url);
  if (!DialogTable::may_target(*m.dialog, m.side, ruri_host)) {
    // A party of the dialog may reach the other party, not any host through us.
    if (router_.refusal_loggable())
      PLOG_INFO("route: %s call-id=%s from %s refused: Request-URI host %s is not the peer's",
                sip->sip_request->rq_method_name, sip->sip_call_id->i_id, source.c_str(),
                ruri_host.c_str());
    if (method != sip_method_ack) ctx.reply.send(403, "Request-URI outside the dialog", TAG_END());
    return refused;
  }
  ctx.kept = router_.route_onward(ctx.reply, ctx.msg, sip, m);
  return Outcome::Respond;
}

}  // namespace portier::proxy::chain
