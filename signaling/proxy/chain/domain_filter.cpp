#include "proxy/chain/domain_filter.h"

#include <strings.h>

#include "common/clock.h"

namespace portier::proxy::chain {

Outcome DomainFilter::process(RequestContext &ctx) {
  const url_t *ruri = ctx.sip->sip_request->rq_url;
  if (!ctx.cloud_flow.empty()) {
    // Down our domain registration's flow the cloud sends the requests for
    // that domain (RFC 5626 §5.3 on its side) and nothing else: no
    // registrations of its own at our registrar, no other domain through us.
    if (ctx.sip->sip_request->rq_method == sip_method_register) {
      ctx.reply.send(403, "No registrations from the cloud", TAG_END());
      return Outcome::Respond;
    }
    if (!ruri->url_host || strcasecmp(ruri->url_host, ctx.cloud_flow.c_str()) != 0) {
      ctx.reply.send(403, "Only this flow's domain", TAG_END());
      return Outcome::Respond;
    }
    // The caller is a user of the cloud (authenticated there), never a device
    // of ours: DigestAuth checks its From.
    return Outcome::Continue;
  }
  if (!names_.is_reg_domain(ruri->url_host) && !names_.is_us(ruri) &&
      !(house_ && house_->is_registered(ruri->url_host, clock::wall_s()))) {
    ctx.reply.send(403, "Domain not served here", TAG_END());
    return Outcome::Respond;
  }
  // A REGISTER's identity is its To (the registrar checks that domain).
  const char *caller_domain = ctx.sip->sip_from->a_url->url_host;
  if (check_caller_ && ctx.sip->sip_request->rq_method != sip_method_register &&
      !names_.is_auth_domain(caller_domain) &&
      !(house_ && house_->on_flow_of(ctx.reply.agent(), ctx.msg, caller_domain))) {
    ctx.reply.send(403, "Caller domain not served here", TAG_END());
    return Outcome::Respond;
  }
  return Outcome::Continue;
}

}  // namespace portier::proxy::chain
