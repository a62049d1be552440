#include "proxy/chain/domain_filter.h"

#include "common/clock.h"

namespace portier::proxy::chain {

Outcome DomainFilter::process(RequestContext &ctx) {
  const url_t *ruri = ctx.sip->sip_request->rq_url;
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
