#include "proxy/chain/domain_isolation.h"

#include "common/ascii.h"
#include "common/clock.h"
#include "common/log.h"
#include "proxy/location_store.h"

namespace portier::proxy::chain {

Outcome DomainIsolation::process(RequestContext &ctx) {
  if (allowed_ || ctx.caller_aor.empty()) return Outcome::Continue;
  const char *target = ctx.sip->sip_request->rq_url->url_host;
  if (!target) return Outcome::Continue;
  const std::string caller_domain = aor_domain(ctx.caller_aor);
  if (ascii::iequals(caller_domain, target)) return Outcome::Continue;
  if (house_ && house_->is_registered(target, clock::wall_s())) {
    // A house domain's caller_aor is set only for a request on that house's
    // own open flow (DigestAuth, HouseDomains::on_flow_of): house A's proxy
    // vouches for A's users, and they are still users of one house calling
    // another's (a From of A on any other connection never got this far).
    if (!house_->is_registered(caller_domain.c_str(), clock::wall_s())) return Outcome::Continue;
  } else {
    // A Request-URI naming our address rather than a domain (sip:x@127.0.0.1)
    // resolves to no house's AOR: nothing to keep apart.
    if (!names_.is_reg_domain(target)) return Outcome::Continue;
    // Without authentication a From of a domain we do not serve names nobody
    // of ours; with it, DomainFilter let only our auth-domains through.
    if (!names_.is_reg_domain(caller_domain.c_str()) &&
        !names_.is_auth_domain(caller_domain.c_str()))
      return Outcome::Continue;
  }
  PLOG_INFO("route: %s %s from %s refused: another domain (inter-domain-requests = deny)",
            ctx.sip->sip_request->rq_method_name, target, ctx.caller_aor.c_str());
  ctx.reply.send(403, "Inter-domain request refused", TAG_END());
  return Outcome::Respond;
}

}  // namespace portier::proxy::chain
