#include "proxy/chain/target_resolver.h"

#include <sofia-sip/msg.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/url.h>
#include <strings.h>

#include <algorithm>
#include <set>

#include "common/ascii.h"
#include "common/clock.h"
#include "common/log.h"

namespace portier::proxy::chain {

std::string next_hop_for(const url_t *contact, const std::string &received) {
  size_t a = received.find(':'), b = received.rfind(':');
  if (!contact || a == std::string::npos || b <= a) return "";
  std::string proto = received.substr(0, a);
  std::string host = received.substr(a + 1, b - a - 1);
  std::string port = received.substr(b + 1);
  const char *cport = contact->url_port && *contact->url_port ? contact->url_port : "5060";
  const std::string bare =
      host.size() > 2 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
  // Over TCP this also reuses the device's own connection.
  if (contact->url_host &&
      (strcasecmp(contact->url_host, host.c_str()) == 0 ||
       strcasecmp(contact->url_host, bare.c_str()) == 0) &&
      port == cport)
    return "";
  return "sip:" + host + ":" + port + ";transport=" + proto;
}

std::string flow_next_hop(const Binding &b) {
  su_home_t home[1] = {SU_HOME_INIT(home)};
  std::string hop = next_hop_for(url_make(home, b.contact.c_str()), b.received);
  su_home_deinit(home);
  return hop.empty() ? b.contact : hop;
}

Outcome TargetResolver::process(RequestContext &ctx) {
  // An agent-less Reply (the chain's tests) makes no transaction.
  if (!ctx.reply.irq() && ctx.reply.agent()) {
    ctx.reply.send(SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
    return Outcome::Respond;
  }
  return resolve(ctx, clock::wall_s());
}

Outcome TargetResolver::resolve(RequestContext &ctx, int64_t now) const {
  const sip_t *sip = ctx.sip;
  const url_t *ruri = sip->sip_request->rq_url;
  if (house_ && house_->is_registered(ruri->url_host, now)) return resolve_house(ctx, now);
  if (!ruri->url_user) {
    ctx.reply.send(404, "No user part in Request-URI", TAG_END());
    return Outcome::Respond;
  }
  const std::string host = ruri->url_host ? ruri->url_host : "";
  ctx.aor = normalize_aor(ruri->url_user, host);
  const std::string &aor = ctx.aor;

  // Which AORs this request rings: a group address rings every AOR of its domain
  // but the caller's own; a static record lists its AORs; else the AOR itself.
  std::vector<std::string> aors;
  const bool group = groups_.contains(aor, ruri->url_user, names_.is_reg_domain(host.c_str()));
  const std::vector<std::string> *listed = group ? nullptr : static_records_.find(aor);
  std::vector<std::string> in_domain;  // a sip:ALIAS@* static record, here
  if (!group && !listed && names_.is_reg_domain(host.c_str()) &&
      static_records_.find_in_domain(ruri->url_user, aor_domain(aor), &in_domain))
    listed = &in_domain;
  if (group) {
    for (auto &a : locations_.aors_in_domain(aor_domain(aor), now))
      if (a != ctx.caller_aor && a != aor) aors.push_back(a);
  } else if (listed) {
    const bool isolate = !inter_domain_allowed_;
    const std::string domain = isolate ? aor_domain(aor) : std::string();
    for (const auto &a : *listed) {
      if (a == ctx.caller_aor) continue;
      if (isolate && aor_domain(a) != domain) {
        PLOG_DEBUG("route: static record %s skips %s (another domain)", aor.c_str(), a.c_str());
        continue;
      }
      aors.push_back(a);
    }
  } else {
    aors.push_back(aor);
  }
  // In a domain registered to a cloud, the group address also rings the
  // residents' phones there: one branch up the flow, Request-URI unchanged,
  // and the cloud forks it to the phones it has for this house. One branch,
  // so the door's video crosses the house's uplink once, whatever the number
  // of phones (the cloud's relay fans it out), and the phones' pushes and
  // late branches are all the cloud's one fork. Never for a request that came
  // down that flow (it would go straight back up), nor while the cloud is
  // unreachable (the house rings as before).
  std::string up;
  if (group && cloud_flow_ && ctx.cloud_flow.empty()) up = cloud_flow_(aor_domain(aor));

  bindings_of(ctx, aors, now);
  if (!up.empty()) ctx.targets.push_back({aor, up, aor, {}, {}, aor_domain(aor)});
  if (!ctx.targets.empty()) return Outcome::Continue;
  if (!group && !listed && !users_.has_user(ruri->url_user, host))
    ctx.reply.send(SIP_404_NOT_FOUND, TAG_END());
  else
    ctx.reply.send(480, "Temporarily Unavailable", TAG_END());
  PLOG_INFO("route: %s %s: no registered device", sip->sip_request->rq_method_name, aor.c_str());
  return Outcome::Respond;
}

void TargetResolver::bindings_of(RequestContext &ctx, const std::vector<std::string> &aors,
                                 int64_t now) const {
  ctx.targets.clear();
  std::set<std::string> seen;
  for (const auto &a : aors) {
    for (const auto &bnd : locations_.lookup(a, now)) {
      // §16.3 step 4 in spirit: never fork back to ourselves.
      url_t *u = url_make(msg_home(ctx.msg), bnd.contact.c_str());
      bool loop = u && names_.is_us(u);
      if (!loop && seen.insert(bnd.contact).second)
        ctx.targets.push_back(
            {bnd.contact, next_hop_for(u, bnd.received), a, bnd.push, bnd.instance});
    }
  }
}

Outcome TargetResolver::resolve_house(RequestContext &ctx, int64_t now) const {
  const sip_t *sip = ctx.sip;
  const url_t *ruri = sip->sip_request->rq_url;
  // The house's own request for its own domain (its group address, sent up
  // to ring the residents' phones): going back down the flow would be a
  // loop. Our static record of that address names the phones here, as the
  // operator set them up for the house; none: 404.
  if (!ctx.house_flow.empty() && ascii::iequals(ctx.house_flow, ruri->url_host))
    return resolve_residents(ctx, now);
  ctx.aor = domain_aor(ruri->url_host);
  // The house's proxy is the authority for its domain: the Request-URI goes
  // to it as the caller wrote it (the binding's contact names the house, not
  // the user called), down the connection the house opened.
  char *uri = url_as_string(msg_home(ctx.msg), ruri);
  ctx.targets.clear();
  for (const Binding &b : locations_.lookup(ctx.aor, now)) {
    // RFC 5626 §5.3: a request for a flow goes down that flow or fails; a
    // new connection to the house's address would end at its NAT.
    if (!uri || !house_->flow_open(b.received)) continue;
    ctx.targets.push_back(
        {uri, flow_next_hop(b), ctx.aor, b.push, b.instance, ascii::to_lower(ruri->url_host)});
  }
  if (!ctx.targets.empty()) return Outcome::Continue;
  // The domain is registered (else DomainFilter refused it: not ours) but
  // none of its flows is open: the house is gone for now and comes back by
  // itself (§4.5), so 480, not 404 (RFC 3261 §21.4.18; RFC 5626 §5.3 says
  // what a proxy answers when every flow failed).
  PLOG_INFO("route: %s %s: house domain registered, no open flow: 480",
            sip->sip_request->rq_method_name, ruri->url_host);
  ctx.reply.send(480, "Flow gone", TAG_END());
  return Outcome::Respond;
}

Outcome TargetResolver::resolve_residents(RequestContext &ctx, int64_t now) const {
  const url_t *ruri = ctx.sip->sip_request->rq_url;
  ctx.aor = normalize_aor(ruri->url_user ? ruri->url_user : "", ruri->url_host);
  const std::vector<std::string> *listed = static_records_.find(ctx.aor);
  std::vector<std::string> residents;
  for (const auto &a : listed ? *listed : std::vector<std::string>()) {
    // Only our own users: a house's record never reaches another house.
    if (names_.is_reg_domain(aor_domain(a).c_str()) && a != ctx.caller_aor) residents.push_back(a);
  }
  bindings_of(ctx, residents, now);
  if (!ctx.targets.empty()) return Outcome::Continue;
  PLOG_INFO("route: %s %s from its house: %s", ctx.sip->sip_request->rq_method_name,
            ctx.aor.c_str(),
            residents.empty() ? "no residents here" : "no resident's phone registered");
  if (!residents.empty())
    ctx.reply.send(480, "Temporarily Unavailable", TAG_END());
  else
    ctx.reply.send(404, "No residents of this house here", TAG_END());
  return Outcome::Respond;
}

}  // namespace portier::proxy::chain
