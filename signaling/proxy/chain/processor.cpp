#include "proxy/chain/processor.h"

#include <sofia-sip/msg.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/tport.h>

#include <utility>

#include "common/log.h"

namespace portier::proxy::chain {

const char *outcome_name(Outcome o) {
  switch (o) {
    case Outcome::Continue:
      return "continue";
    case Outcome::Respond:
      return "respond";
    case Outcome::Wait:
      return "wait";
    case Outcome::Stop:
      return "stop";
  }
  return "?";
}

ParkedRequest::~ParkedRequest() { release(); }

ParkedRequest::ParkedRequest(ParkedRequest &&other) noexcept { *this = std::move(other); }

ParkedRequest &ParkedRequest::operator=(ParkedRequest &&other) noexcept {
  if (this == &other) return *this;
  release();
  agent_ = other.agent_;
  irq_ = std::exchange(other.irq_, nullptr);
  msg_ = std::exchange(other.msg_, nullptr);
  may_keep_ = other.may_keep_;
  stateless_tag_ = other.stateless_tag_;
  transport_ = std::exchange(other.transport_, nullptr);
  resume_at_ = other.resume_at_;
  routed_to_us_ = other.routed_to_us_;
  caller_aor_ = std::move(other.caller_aor_);
  aor_ = std::move(other.aor_);
  targets_ = std::move(other.targets_);
  return *this;
}

void ParkedRequest::release() {
  if (irq_) nta_incoming_destroy(irq_), irq_ = nullptr;
  if (msg_) msg_destroy(msg_), msg_ = nullptr;
  if (transport_) tport_unref(transport_), transport_ = nullptr;
}

Reply ParkedRequest::reply() const {
  Reply r(agent_, irq_, msg_, may_keep_ && msg_ ? sip_object(msg_) : nullptr, irq_ != nullptr);
  r.set_stateless_tag(stateless_tag_);
  r.set_transport(transport_);
  return r;
}

ParkedRequest park(RequestContext &ctx) {
  ParkedRequest p;
  p.agent_ = ctx.reply.agent();
  p.irq_ = ctx.reply.created();
  ctx.reply.hand_over();
  p.msg_ = msg_ref_create(ctx.msg);
  p.may_keep_ = ctx.reply.may_keep();
  p.stateless_tag_ = ctx.reply.stateless_tag();
  // Only a UDP request: a connection may be gone by the time of the answer,
  // and nta then has to find or open another.
  if (p.agent_ && !p.irq_) {
    tport_t *tp = tport_delivered_by(nta_agent_tports(p.agent_), ctx.msg);
    if (tp && tport_is_udp(tp)) p.transport_ = tport_ref(tp);
  }
  p.resume_at_ = ctx.position + 1;
  p.routed_to_us_ = ctx.routed_to_us;
  p.caller_aor_ = ctx.caller_aor;
  p.aor_ = ctx.aor;
  p.targets_ = ctx.targets;
  return p;
}

Outcome Chain::run(RequestContext &ctx, size_t first) const {
  Outcome out = Outcome::Continue;
  for (size_t i = first; i < processors_.size() && out == Outcome::Continue; ++i) {
    ctx.position = i;
    out = processors_[i]->process(ctx);
  }
  if (out == Outcome::Continue) {
    PLOG_ERROR("chain: no processor decided on %s: 500", ctx.sip->sip_request->rq_method_name);
    ctx.reply.send(SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
    out = Outcome::Respond;
  }
  if (nta_incoming_t *irq = ctx.reply.created(); irq && !ctx.kept) nta_incoming_destroy(irq);
  return out;
}

Outcome Chain::resume(ParkedRequest &parked) const {
  ParkedRequest p = std::move(parked);
  if (!p.msg_) return Outcome::Stop;
  Reply reply = p.reply();
  p.irq_ = nullptr;  // the Reply hands it back (Chain::run) unless the router keeps it
  RequestContext ctx(p.msg_, sip_object(p.msg_), reply);
  ctx.routed_to_us = p.routed_to_us_;
  if (ctx.sip->sip_route)
    ctx.next_route = p.routed_to_us_ ? ctx.sip->sip_route->r_next : ctx.sip->sip_route;
  ctx.caller_aor = std::move(p.caller_aor_);
  ctx.aor = std::move(p.aor_);
  ctx.targets = std::move(p.targets_);
  return run(ctx, p.resume_at_);
}

}  // namespace portier::proxy::chain
