#include "proxy/router.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_extra.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_alloc.h>
#include <strings.h>

#include <algorithm>

#include "common/auth/identity_proof.h"
#include "common/ascii.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sip_text.h"
#include "proxy/late_branch.h"
#include "proxy/media_relay.h"
#include "proxy/sip_body.h"
#include "sip/sip_message.h"

namespace portier::proxy {
namespace {

// RFC 3326 reasons on the CANCELs the fork sends.
const char kReasonAnsweredElsewhere[] = "SIP;cause=200;text=\"Call completed elsewhere\"";
const char kReasonForkTimeout[] = "SIP;cause=408;text=\"Fork timeout\"";

// A P-Portier-Proof is ours to add, for one receiver (add_identity_proof):
// whatever a caller or device wrote goes.
void remove_identity_proofs(msg_t *msg) {
  sip_t *sip = sip_object(msg);
  for (sip_unknown_t *u = sip->sip_unknown; u;) {
    sip_unknown_t *next = u->un_next;
    if (u->un_name && strcasecmp(u->un_name, auth::kIdentityProofHeader) == 0)
      msg_header_remove(msg, reinterpret_cast<msg_pub_t *>(sip),
                        reinterpret_cast<msg_header_t *>(u));
    u = next;
  }
}

// The identity this proxy vouches for (RFC 3325 §9.1): whatever identity
// headers a device put in itself are removed (§5: only a trusted proxy may
// assert one), and `aor` is asserted in their place. Doors decide who may
// open them from this header, so it never passes through unchecked.
void assert_identity(msg_t *msg, const std::string &aor) {
  sip_t *sip = sip_object(msg);
  auto *pub = reinterpret_cast<msg_pub_t *>(sip);
  msg_header_remove_all(msg, pub, msg_header_access(pub, sip_p_asserted_identity_class));
  msg_header_remove_all(msg, pub, msg_header_access(pub, sip_p_preferred_identity_class));
  // Only we vouch for an identity, for one receiver at a time (add_identity_proof).
  remove_identity_proofs(msg);
  if (aor.empty()) return;
  // Built in place from the AOR (the header class is known only with sofia-sip's
  // extensions, sip_extend_mclass, set up in main): it prints as "<aor>" did.
  su_home_t *home = msg_home(msg);
  auto *paid = reinterpret_cast<sip_p_asserted_identity_t *>(
      msg_header_alloc(home, sip_p_asserted_identity_class, 0));
  char *text = paid ? su_strdup(home, aor.c_str()) : nullptr;
  if (!text || url_d(paid->paid_url, text) < 0) return;
  msg_header_insert(msg, pub, reinterpret_cast<msg_header_t *>(paid));
}

// The identity a receiver checks a proof against: the P-Asserted-Identity as
// it reads it (empty: none, and no proof).
std::string asserted_aor(const sip_t *sip) {
  const sip_p_asserted_identity_t *paid = sip_p_asserted_identity(sip);
  return paid ? sipmsg::url_aor(paid->paid_url) : std::string();
}

// The P-Portier-Proof value that proves to a device that the
// P-Asserted-Identity `identity` in `msg` is ours (common/auth/identity_proof.h):
// a device cannot tell our messages from a spoofed UDP source or another local
// process by address alone. `key`: the receiver's (Router::proof_key). Empty
// when the message lacks what the proof covers.
std::string identity_proof_for(const msg_t *msg, auth::Algorithm alg, const auth::HmacSha256 &key,
                               const std::string &identity) {
  const sip_t *sip = sip_object(msg);
  if (identity.empty() || !sip->sip_call_id || !sip->sip_cseq) return "";
  auth::ProofFields f;
  f.identity = identity;
  f.call_id = sip->sip_call_id->i_id;
  f.from_tag = sip->sip_from && sip->sip_from->a_tag ? sip->sip_from->a_tag : "";
  f.cseq = sip->sip_cseq->cs_seq;
  f.what = sip->sip_request ? sip->sip_request->rq_method_name
                            : std::to_string(sip->sip_status ? sip->sip_status->st_status : 0);
  return auth::identity_proof(alg, key, f, clock::wall_s());
}

// Adds the proof last: it covers the message as the receiver gets it. Built in
// place: printing "Name: value" for the parser to take apart again bought nothing.
void add_identity_proof(msg_t *msg, const std::string &value) {
  if (value.empty()) return;
  su_home_t *home = msg_home(msg);
  auto *h = reinterpret_cast<msg_unknown_t *>(msg_header_alloc(home, sip_unknown_class, 0));
  if (!h) return;
  h->un_name = auth::kIdentityProofHeader;
  h->un_value = su_strdup(home, value.c_str());
  msg_header_insert(msg, reinterpret_cast<msg_pub_t *>(sip_object(msg)),
                    reinterpret_cast<msg_header_t *>(h));
}

}  // namespace

Router::Router(RouterEnv env, CallObserver *observer) : env_(std::move(env)), observer_(observer) {}

Router::~Router() {
  while (!txns_.empty()) destroy(txns_.begin()->first);
}

const Router::ProofKey *Router::proof_key(const std::string &receiver_aor) {
  if (auto it = proof_keys_.find(receiver_aor); it != proof_keys_.end())
    return it->second ? &*it->second : nullptr;
  // Bounded: with authentication off, anyone may register any AOR.
  if (proof_keys_.size() >= kMaxProofKeys) proof_keys_.clear();
  // The key is the receiver's digest HA1 (realm = its domain), SHA-256 when the
  // users file has one, else MD5; a receiver we hold no secret for (a static
  // record, a foreign host) gets no proof.
  std::optional<ProofKey> key;
  const size_t at = receiver_aor.find('@');
  if (receiver_aor.size() >= 5 && at != std::string::npos && at >= 4) {
    const std::string_view aor(receiver_aor);
    const std::string_view user = aor.substr(4, at - 4), domain = aor.substr(at + 1);
    auth::Algorithm alg = auth::Algorithm::SHA256;
    std::optional<std::string> ha1 = env_.users.ha1(user, domain, domain, alg);
    if (!ha1) ha1 = env_.users.ha1(user, domain, domain, alg = auth::Algorithm::MD5);
    if (ha1) key.emplace(ProofKey{alg, auth::identity_proof_key(*ha1)});
  }
  auto &slot = proof_keys_.emplace(receiver_aor, std::move(key)).first->second;
  return slot ? &*slot : nullptr;
}

Router::Txn *Router::create_txn(nta_incoming_t *irq, const sip_t *sip) {
  auto t = std::make_unique<Txn>();
  t->router = this;
  t->irq = irq;
  t->invite = sip->sip_request->rq_method == sip_method_invite;
  t->call.call_id = sip->sip_call_id ? sip->sip_call_id->i_id : "";
  t->from = sip->sip_from ? sipmsg::url_string(sip->sip_from->a_url) : "";
  t->to = sip->sip_to ? sipmsg::url_string(sip->sip_to->a_url) : "";
  t->from_tag = sip->sip_from && sip->sip_from->a_tag ? sip->sip_from->a_tag : "";
  t->started = clock::wall_s();
  Txn *raw = t.get();
  txns_[raw] = std::move(t);
  nta_incoming_bind(irq, on_server_event, raw);
  return raw;
}

bool Router::add_branch(Txn *t, msg_t *msg, const std::string &target,
                        const std::string &record_route, bool pop_route,
                        const std::string &next_hop, const std::string &aor) {
  msg_t *copy = msg_copy(msg);
  if (!copy) return false;
  // The observer may give each branch an offer of its own (the relay: pointed
  // at that branch's ports).
  if (t && t->observer && t->dialog_forming) {
    const CallObserver::Verdict v =
        t->observer->on_branch_request(t->call, t->branches.size(), copy);
    if (!v.ok()) {
      msg_destroy(copy);
      t->branches.push_back(std::make_unique<Branch>());  // counted as failed, like an unsent one
      t->branches.back()->txn = t;
      t->branches.back()->index = t->branches.size() - 1;
      t->branches.back()->target = target;
      return false;
    }
  }
  sip_t *csip = sip_object(copy);
  su_home_t *home = msg_home(copy);

  // §16.6 step 3: Max-Forwards minus one, changed in place (its text as
  // received goes, so it is printed with the new count); 69 when it had none.
  const bool had_max_forwards = csip->sip_max_forwards != nullptr;
  if (sip_max_forwards_t *mf = csip->sip_max_forwards) {
    if (mf->mf_count) --mf->mf_count;
    msg_fragment_clear(mf->mf_common);
  }
  // §16.4/§16.12: our own Route entries are consumed here (two of them when the
  // dialog was double record-routed, RFC 5658).
  if (pop_route) {
    sip_route_remove(copy, csip);
    while (csip->sip_route && env_.names.is_us(csip->sip_route->r_url))
      sip_route_remove(copy, csip);
  }
  // §16.6 step 4: our Record-Route goes on top of any existing ones.
  if (!record_route.empty()) {
    sip_record_route_t *rr = sip_record_route_make(home, record_route.c_str());
    if (rr)
      msg_header_insert(copy, reinterpret_cast<msg_pub_t *>(csip),
                        reinterpret_cast<msg_header_t *>(rr));
  }
  // Our realm's credentials were for us, not for the next hop.
  for (sip_proxy_authorization_t *pa = csip->sip_proxy_authorization; pa;) {
    sip_proxy_authorization_t *next = pa->au_next;
    const char *realm = msg_params_find(pa->au_params, "realm=");
    const std::string r(siptext::strip_quotes(realm ? realm : ""));
    if (env_.names.is_auth_domain(r.c_str()))
      msg_header_remove(copy, reinterpret_cast<msg_pub_t *>(csip),
                        reinterpret_cast<msg_header_t *>(pa));
    pa = next;
  }

  sip_request_t *rq = nullptr;
  if (!target.empty()) {
    rq = sip_request_create(home, csip->sip_request->rq_method, csip->sip_request->rq_method_name,
                            URL_STRING_MAKE(target.c_str()), nullptr);
    if (!rq) {
      msg_destroy(copy);
      return false;
    }
  }
  if (t && !aor.empty()) {
    if (const ProofKey *k = proof_key(aor)) {
      // What a proof covers is the same on every branch of the request (the
      // identity, Call-ID, From tag, CSeq, method; the second): the branches to
      // one AOR (its devices) get one proof.
      if (t->proof_aor != aor || t->proof_at != clock::wall_s()) {
        t->proof_at = clock::wall_s();
        t->proof = identity_proof_for(copy, k->alg, k->key, t->asserted);
        t->proof_aor = aor;
      }
      add_identity_proof(copy, t->proof);
    }
  }

  const bool ack = csip->sip_request->rq_method == sip_method_ack;
  std::unique_ptr<Branch> b;
  if (!ack) {
    b = std::make_unique<Branch>();
    b->txn = t;
    b->index = t->branches.size();
    b->target = target;
    if (rq) b->target_host = sipmsg::bare_host(rq->rq_url);
    b->next_hop = next_hop;
  }
  nta_outgoing_t *orq = nta_outgoing_mcreate(
      env_.agent, ack ? nullptr : on_branch_response, ack ? nullptr : b.get(),
      next_hop.empty() ? nullptr : URL_STRING_MAKE(next_hop.c_str()), copy,
      TAG_IF(rq, SIPTAG_REQUEST(rq)), TAG_IF(!had_max_forwards, SIPTAG_MAX_FORWARDS_STR("69")),
      TAG_IF(ack, NTATAG_STATELESS(1)), TAG_END());
  if (!orq) msg_destroy(copy);  // mcreate does not take the message when it fails
  if (ack) {
    if (orq) nta_outgoing_destroy(orq);
    return orq != nullptr;
  }
  // A branch that could not be sent stays in the list without orq, so branch
  // indexes match the aggregator's; the caller reports it as failed.
  b->orq = orq;
  t->branches.push_back(std::move(b));
  return orq != nullptr;
}

void Router::start_fork(Txn *t, size_t branches) {
  // The aggregator exists before the first branch goes out, so a response can
  // never find it missing, however early nta delivers it.
  t->fork = std::make_unique<ForkAggregator>(branches, t->invite);
}

bool Router::settle_unsent(Txn *t) {
  bool any_sent = false;
  for (size_t i = 0; i < t->branches.size(); ++i) {
    if (t->branches[i]->orq) {
      any_sent = true;
      continue;
    }
    PLOG_WARN("route: call-id=%s cannot send to %s", t->call.call_id.c_str(),
              t->branches[i]->target.c_str());
    apply(t, t->branches[i].get(), t->fork->on_branch_failed(i), nullptr);
  }
  if (!any_sent) {
    // Every branch failed: the best (a 408) went up and t is gone, unless
    // pushed devices may still join (ForkAggregator::hold_open).
    maybe_finish(t);
    return txns_.count(t) != 0;
  }
  return true;
}

bool Router::fork(nta_incoming_t *irq, msg_t *msg, const sip_t *sip,
                  const chain::ForkRequest &request) {
  const std::string &caller_aor = request.caller_aor;
  const std::string &aor = request.aor;
  const std::vector<chain::Target> &contacts = request.targets;
  const bool pop_route = request.pop_route;
  const auto &s = env_.settings;

  const bool dialog_forming =
      sip->sip_request->rq_method == sip_method_invite && !(sip->sip_to && sip->sip_to->a_tag);
  // The address alone (not the port), so that a caller's calls count together.
  const std::string source = chain::source_address(msg);
  CallObserver::Call call{sip->sip_call_id ? sip->sip_call_id->i_id : "", caller_aor,
                          source == "?" ? std::string() : source, std::nullopt};
  bool watched = false;
  if (dialog_forming && observer_) {
    const CallObserver::Verdict v = observer_->on_fork(call, msg, &watched);
    if (!v.ok()) {
      const RefusalResponse r = refusal_response(v.refusal);
      const std::string warning = siptext::warning(399, "portier", v.detail);
      const std::string retry_after = std::to_string(r.retry_after);
      nta_incoming_treply(irq, r.status, r.phrase, SIPTAG_WARNING_STR(warning.c_str()),
                          TAG_IF(r.retry_after, SIPTAG_RETRY_AFTER_STR(retry_after.c_str())),
                          TAG_END());
      return false;
    }
  }

  // The caller as digest authentication proved it (empty when auth is off).
  assert_identity(msg, caller_aor);
  Txn *t = create_txn(irq, sip);
  t->asserted = asserted_aor(sip);
  t->dialog_forming = dialog_forming;
  t->call = std::move(call);
  if (watched) t->observer = observer_;
  if (t->invite) nta_incoming_treply(irq, SIP_100_TRYING, TAG_END());
  const bool record_route =
      t->dialog_forming || sip->sip_request->rq_method == sip_method_subscribe;
  t->records_dialog = record_route;
  t->caller_host = source;
  t->caller_flow = request.caller_flow;
  if (sip->sip_contact) t->caller_target = sipmsg::bare_host(sip->sip_contact->m_url);
  start_fork(t, contacts.size());
  // RFC 8599: a device that can be woken is pushed at once, and its branch
  // goes out as well: an app that still runs answers it, a sleeping one
  // registers again when woken. Calls and messages only: nothing else is
  // worth waking a phone for.
  size_t pushed = 0;
  const sip_method_t method = sip->sip_request->rq_method;
  if (env_.push && (t->dialog_forming || method == sip_method_message)) {
    for (const chain::Target &c : contacts)
      if (!c.push.empty() && env_.push(c, sip, push::PushKind::Call)) {
        ++pushed;
        if (t->dialog_forming) t->pushed.push_back(c);
      }
  }
  // Tells the caller the phones are being woken, as Flexisip does ("110 Push
  // sent"); a UA that does not know 110 takes it for a 183 without a dialog
  // (RFC 3261 §8.1.3.2), harmless. INVITE only: a non-INVITE gets no
  // provisional beyond 100 from us (RFC 4320 §4.1).
  if (pushed && t->invite) {
    nta_incoming_treply(irq, 110, "Push sent", TAG_END());
    // The pushed device's current branch may fail at once (its socket is
    // gone): the fork waits for it to register until call-fork-timeout, and
    // its REGISTER adds a branch (on_registered).
    t->fork->hold_open();
    t->request = msg_ref_create(msg);
    t->pop_route = pop_route;
    for (const chain::Target &c : contacts) {
      if (c.push.empty() ||
          std::find(t->late_aors.begin(), t->late_aors.end(), c.aor) != t->late_aors.end())
        continue;
      t->late_aors.push_back(c.aor);
      ringing_by_aor_[c.aor].push_back(t);
    }
  }
  std::vector<std::string> rrs(contacts.size());
  if (record_route) {
    std::vector<std::string> hops;
    hops.reserve(contacts.size());
    for (const auto &c : contacts) hops.push_back(c.next_hop.empty() ? c.uri : c.next_hop);
    rrs = env_.record_route(irq, msg, hops);
  }
  for (size_t i = 0; i < contacts.size(); ++i) {
    const chain::Target &c = contacts[i];
    if (add_branch(t, msg, c.uri, rrs[i], pop_route, c.next_hop, c.aor) && !t->branches.empty())
      t->branches.back()->aor = c.aor;
    if (t->branches.size() == i + 1) {
      t->branches.back()->instance = c.instance;
      t->branches.back()->flow_domain = c.flow_domain;
    }
  }
  if (!settle_unsent(t)) return true;
  PLOG_INFO("route: %s %s -> %zu branch(es), %zu push(es) call-id=%s",
            sip->sip_request->rq_method_name, aor.c_str(), t->branches.size(), pushed,
            t->call.call_id.c_str());
  if (t->invite) {
    t->timer = su_timer_create(su_root_task(env_.root),
                               static_cast<su_duration_t>(s.call_fork_timeout) * 1000);
    su_timer_set(t->timer, on_fork_timeout, t);
  }
  return true;
}

DialogTable::Match Router::match_dialog(msg_t *msg, const sip_t *sip,
                                        const std::string &source_host) {
  const std::string from_tag = sip->sip_from->a_tag ? sip->sip_from->a_tag : "";
  const std::string to_tag = sip->sip_to->a_tag ? sip->sip_to->a_tag : "";
  DialogTable::Match m = dialogs_.match(sip->sip_call_id->i_id, from_tag, to_tag, source_host);
  if (m.verdict == DialogTable::Match::NoDialog &&
      sip->sip_request->rq_method == sip_method_notify &&
      notify_forms_dialog(msg, sip, source_host))
    m = dialogs_.match(sip->sip_call_id->i_id, from_tag, to_tag, source_host);
  return m;
}

bool Router::route_onward(Reply &reply, msg_t *msg, const sip_t *sip, const DialogTable::Match &m) {
  const sip_method_t method = sip->sip_request->rq_method;
  const bool ack = method == sip_method_ack;
  const bool from_caller = m.side == DialogTable::Side::Caller;
  if ((method == sip_method_invite || method == sip_method_update) && sip->sip_contact)
    dialogs_.add_target(*m.dialog, m.side, sipmsg::bare_host(sip->sip_contact->m_url));
  // Whatever identity the sender wrote goes; the one proved when the dialog
  // formed is asserted for it (RFC 3325 §9.1), as on every other path.
  assert_identity(msg, from_caller ? m.dialog->caller_aor : m.dialog->callee_aor);
  const CallObserver::Call call{m.dialog->call_id, m.dialog->caller_aor, "", std::nullopt};
  if (ack) {
    if (observer_) observer_->on_dialog_ack(call, from_caller, msg);
    // ACK for a 2xx is its own transaction and gets no response (§17.1.1.3):
    // forward statelessly; add_branch creates no Txn for it.
    add_branch(nullptr, msg, "", "", true, onward_hop(sip, *m.dialog, from_caller));
    return false;
  }
  if (method == sip_method_bye) {
    // Only the real dialog's BYE ends the call for the observer, and only when
    // no other answered dialog of the Call-ID is left.
    const bool confirmed = m.dialog->confirmed;
    dialogs_.remove(call.call_id, m.dialog->caller_tag, m.dialog->callee_tag);
    if (confirmed && observer_ && !dialogs_.has_confirmed_call(call.call_id))
      observer_->on_end(call, "BYE");
  }
  nta_incoming_t *irq = reply.irq();  // the transaction starts once the request is admitted
  if (!irq) {
    reply.send(SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
    return false;
  }
  // An observed call's re-INVITE or UPDATE (RFC 3311): the observer sees its
  // offer and its answer (the relay points each at its side that faces the
  // receiver). An offer it refuses never goes on (the media would bypass the
  // relay): 488 (RFC 3261 §21.4.26, §14.2), and since a failed re-INVITE
  // changes nothing (§14.1), the call keeps its old media. The answer is sent
  // in the server transaction, so the sender's ACK of the 488 ends there too.
  bool watched = false;
  if ((method == sip_method_invite || method == sip_method_update) && observer_) {
    const CallObserver::Verdict v = observer_->on_dialog_offer(call, from_caller, msg, &watched);
    if (!v.ok()) {
      const RefusalResponse r = refusal_response(v.refusal);
      const std::string warning = siptext::warning(399, "portier", v.detail);
      reply.send(r.status, r.phrase, SIPTAG_WARNING_STR(warning.c_str()), TAG_END());
      return false;
    }
  }
  Txn *t = create_txn(irq, sip);
  if (watched) {
    t->observer = observer_;
    t->offer_from_caller = from_caller;
  }
  start_fork(t, 1);
  add_branch(t, msg, "", "", true, onward_hop(sip, *m.dialog, from_caller));
  settle_unsent(t);
  return true;
}

std::string Router::onward_hop(const sip_t *sip, const DialogTable::Dialog &d,
                               bool from_caller) const {
  // A party behind a house's NAT (or the cloud, seen from the house) is reached
  // down the inter-domain flow it came through (RFC 5626 §5.3), whatever its
  // Contact and the Route set name: those are addresses behind the NAT, or a
  // listening address a new connection could not verify by name. The flow as
  // it is now: the house may have reconnected since the dialog formed.
  const std::string &flow = from_caller ? d.callee_flow : d.caller_flow;
  if (!flow.empty() && env_.domain_flow) {
    std::string hop = env_.domain_flow(flow);
    if (!hop.empty()) return hop;
    PLOG_INFO("route: %s call-id=%s: the flow of %s is gone; routed as the request says",
              sip->sip_request->rq_method_name, d.call_id.c_str(), flow.c_str());
  }
  return flow_hop(sip);
}

std::string Router::flow_hop(const sip_t *sip) const {
  return env_.flow_for && sip->sip_request ? env_.flow_for(sip->sip_request->rq_url) : "";
}

bool Router::refusal_loggable() {
  const int64_t now = clock::wall_s();
  if (now != refusal_second_) {
    if (refusals_unlogged_)
      PLOG_INFO("route: %zu more in-dialog request(s) refused, not logged one by one",
                refusals_unlogged_);
    refusal_second_ = now;
    refusals_logged_ = refusals_unlogged_ = 0;
  }
  if (refusals_logged_ < kRefusalLinesPerSecond) {
    ++refusals_logged_;
    return true;
  }
  ++refusals_unlogged_;
  return false;
}

bool Router::notify_forms_dialog(msg_t *msg, const sip_t *sip, const std::string &source_host) {
  // RFC 6665 §4.1.2.4: the notifier's first NOTIFY may overtake the 2xx of the
  // SUBSCRIBE. It forms the dialog when it answers a SUBSCRIBE still running
  // here (Call-ID, the subscriber's tag as To tag) and comes from a host that
  // SUBSCRIBE was sent to.
  for (const auto &[raw, t] : txns_) {
    if (!t->records_dialog || t->invite || t->call.call_id != sip->sip_call_id->i_id ||
        !sip->sip_to->a_tag || t->from_tag != sip->sip_to->a_tag || !sip->sip_from->a_tag)
      continue;
    for (const auto &b : t->branches) {
      DialogTable::Dialog d = dialog_of(t.get(), b.get(), msg, sip->sip_from->a_tag,
                                        sip->sip_contact ? sip->sip_contact->m_url : nullptr);
      if (std::find(d.callee_hosts.begin(), d.callee_hosts.end(), source_host) ==
          d.callee_hosts.end())
        continue;
      d.confirmed = true;  // a NOTIFY confirms a subscription's dialog as a 2xx would
      dialogs_.record(d);
      return true;
    }
  }
  return false;
}

bool Router::is_dialog_response(const sip_t *r, const std::string &source_host) const {
  return r->sip_call_id && r->sip_from && r->sip_from->a_tag && r->sip_to && r->sip_to->a_tag &&
         dialogs_.matches_response(r->sip_call_id->i_id, r->sip_from->a_tag, r->sip_to->a_tag,
                                   source_host);
}

DialogTable::Dialog Router::dialog_of(const Txn *t, const Branch *b, msg_t *msg,
                                      const char *callee_tag, const url_t *callee_contact) {
  DialogTable::Dialog d;
  d.call_id = t->call.call_id;
  d.caller_tag = t->from_tag;
  d.callee_tag = callee_tag;
  d.caller_hosts.push_back(t->caller_host);
  // The host the branch went to (a NATed device's public address): its
  // in-dialog requests come from there even if a response took another path.
  if (!b->target_host.empty()) d.callee_hosts.push_back(b->target_host);
  if (!b->next_hop.empty())
    d.callee_hosts.push_back(sipmsg::bare_host(url_make(msg_home(msg), b->next_hop.c_str())));
  d.caller_targets.push_back(t->caller_target);
  d.callee_targets.push_back(sipmsg::bare_host(callee_contact));
  d.caller_aor = t->call.caller_aor;
  d.callee_aor = b->aor;
  d.caller_flow = t->caller_flow;
  d.callee_flow = b->flow_domain;
  d.from = t->from;
  d.to = t->to;
  d.invite = t->invite;
  d.since = clock::wall_s();
  return d;
}

void Router::record_dialog(Txn *t, Branch *b, msg_t *response) {
  const sip_t *r = sip_object(response);
  if (!r->sip_to || !r->sip_to->a_tag || t->from_tag.empty()) return;
  DialogTable::Dialog d =
      dialog_of(t, b, response, r->sip_to->a_tag, r->sip_contact ? r->sip_contact->m_url : nullptr);
  d.callee_hosts.push_back(chain::source_address(response));
  d.confirmed = r->sip_status->st_status >= 200;
  dialogs_.record(d);
}

void Router::forward_response(Txn *t, msg_t *response) {
  if (!t->irq_alive) return;
  nta_incoming_mreply(t->irq, msg_ref_create(response));
}

void Router::cancel_pending(Txn *t, const char *reason) {
  for (auto &b : t->branches) {
    if (b->cancelled || t->fork->branch_final(b->index) || !b->orq) continue;
    b->cancelled = true;
    nta_outgoing_tcancel(b->orq, nullptr, nullptr, TAG_IF(reason, SIPTAG_REASON_STR(reason)),
                         TAG_END());
  }
}

void Router::apply(Txn *t, Branch *b, const ForkAggregator::Decision &d, msg_t *response) {
  if (d.forward && response && b && !b->aor.empty()) {
    // Who answered: the registered address of record of the answering device
    // (RFC 3325 §9.1 in responses), so the door knows who may open it.
    const int st = sip_object(response)->sip_status->st_status;
    if (t->dialog_forming && st >= 200 && st < 300) {
      // Through an inter-domain flow the device is the other proxy's: it
      // proved who answered and asserted it, and we trust that proxy (we
      // verified the cloud by name; the house proved its domain), for its
      // own identities only: the cloud for any but ours, a house for its
      // domain. The dialog keeps that identity for the requests that follow.
      if (!b->flow_domain.empty()) {
        const std::string who = asserted_aor(sip_object(response));
        const std::string domain = who.empty() ? std::string() : aor_domain(who);
        const bool up_to_cloud = env_.names.is_reg_domain(b->flow_domain.c_str());
        if (!who.empty() && (up_to_cloud ? !env_.names.is_reg_domain(domain.c_str())
                                         : ascii::iequals(domain, b->flow_domain)))
          b->aor = who;
      }
      assert_identity(response, b->aor);
      if (const ProofKey *k = proof_key(t->call.caller_aor))
        add_identity_proof(response, identity_proof_for(response, k->alg, k->key,
                                                        asserted_aor(sip_object(response))));
    }
  }
  if (d.forward && response) {
    int status = sip_object(response)->sip_status->st_status;
    // §12.1: a 2xx, or a 18x with a To tag (early), forms a dialog at the caller.
    if (t->records_dialog && b && status > 100 && status < 300) record_dialog(t, b, response);
    forward_response(t, response);
    if (status < 200) {
      enter(t, TxnEvent::ProvisionalSent);
    } else if (status < 300) {
      enter(t, TxnEvent::SuccessSent);
      if (t->dialog_forming && b && !t->call.answered_by) t->call.answered_by = b->index;
      if (t->dialog_forming)
        env_.events.add("answered", {events::field("call_id", t->call.call_id),
                                     events::field("by", b ? b->target : "?")});
    } else {
      enter(t, TxnEvent::FailureSent);
    }
  }
  if (d.cancel_others) {
    std::string reason;
    if (response) {
      const sip_status_t *st = sip_object(response)->sip_status;
      if (st->st_status >= 200 && st->st_status < 300)
        reason = kReasonAnsweredElsewhere;
      else if (st->st_status >= 600)
        // RFC 3326 §2: the devices learn what really ended the call (603
        // Decline is not 600 Busy Everywhere).
        reason = siptext::reason(st->st_status, st->st_phrase ? st->st_phrase : "");
    }
    cancel_pending(t, reason.empty() ? nullptr : reason.c_str());
  }
  if (d.send_best && !final_sent(t->state)) {
    auto best = t->fork->best_branch();
    int status = t->fork->best_status();
    enter(t, TxnEvent::FailureSent);
    if (t->irq_alive) {
      Branch *bb = best ? t->branches[*best].get() : nullptr;
      if (bb && bb->final_response &&
          sip_object(bb->final_response)->sip_status->st_status == status) {
        add_challenges(t, bb->final_response);
        forward_response(t, bb->final_response);
      } else if (bb && !bb->refusal.empty() && status == 488) {
        const std::string warning = siptext::warning(399, "portier", bb->refusal);
        nta_incoming_treply(t->irq, status, sip_status_phrase(status),
                            SIPTAG_WARNING_STR(warning.c_str()), TAG_END());
      } else {
        nta_incoming_treply(t->irq, status, sip_status_phrase(status), TAG_END());
      }
    }
    env_.events.add("failed",
                    {events::field("call_id", t->call.call_id), events::field("status", status)});
    release_observer(t, "not answered");
  }
}

void Router::enter(Txn *t, TxnEvent e) {
  const TxnState next = next_state(t->state, e);
  if (next == t->state) return;
  PLOG_DEBUG("route: call-id=%s %s -> %s", t->call.call_id.c_str(), state_name(t->state),
             state_name(next));
  if (!final_sent(t->state) && final_sent(next)) follow_up_pushes(t, next);
  t->state = next;
}

void Router::release_observer(Txn *t, const char *why) {
  // The call is over for the caller, even while cancelled branches still have
  // to answer (a silent device may take 32 s): the relay's ports go back now.
  if (!t->observer || !t->dialog_forming || t->state == TxnState::Answered) return;
  t->observer->on_end(t->call, why);
  t->observer = nullptr;
}

void Router::add_challenges(Txn *t, msg_t *response) {
  // RFC 3261 §16.7 step 7: the caller may hold credentials for any of the
  // devices that challenged, so every challenge goes up, unmodified.
  auto *pub = reinterpret_cast<msg_pub_t *>(sip_object(response));
  for (size_t i : t->fork->challenge_branches()) {
    msg_t *other = t->branches[i]->final_response;
    if (!other) continue;
    const sip_t *osip = sip_object(other);
    // Each call copies the whole list of that header.
    if (osip->sip_www_authenticate)
      msg_header_add_dup(response, pub,
                         reinterpret_cast<const msg_header_t *>(osip->sip_www_authenticate));
    if (osip->sip_proxy_authenticate)
      msg_header_add_dup(response, pub,
                         reinterpret_cast<const msg_header_t *>(osip->sip_proxy_authenticate));
  }
}

int Router::on_branch_response(void *magic, nta_outgoing_t *orq, const sip_t *sip) {
  auto *b = static_cast<Branch *>(magic);
  Txn *t = b->txn;
  Router *self = t->router;
  int status = sip && sip->sip_status ? sip->sip_status->st_status : 408;
  msg_t *response = nullptr;
  if (sip) {
    response = nta_outgoing_getresponse(orq);                      // a reference of our own
    if (response) sip_via_remove(response, sip_object(response));  // §16.7 step 3: our Via
  }
  const bool success = status >= 200 && status < 300;
  if (b->ghost && status > 100 && status < 200 && !b->cancelled && b->orq) {
    // RFC 3261 §9.1: the CANCEL follows a provisional response.
    b->cancelled = true;
    nta_outgoing_tcancel(b->orq, nullptr, nullptr, TAG_END());
  }
  if (success && t->dialog_forming && (failed_upstream(t->state) || b->ghost)) {
    // The device answered after the caller got its final failure (the fork
    // timed out, a 6xx, the caller cancelled): no 2xx can reach the caller any
    // more (RFC 3261 §17.2.1), so the device's dialog is ended here.
    if (!t->fork->branch_final(b->index)) {
      t->fork->on_response(b->index, status);  // the branch is done either way
      b->hung_up = true;
      self->hang_up_late_answer(t, b, sip);
    }
    if (response) msg_destroy(response);
    self->maybe_finish(t);
    return 0;
  }
  if (t->invite && success && t->fork->branch_final(b->index)) {
    // A retransmitted 2xx: the caller may not have got the first one (§16.7
    // step 5). It goes up with the body the first one went up with (the
    // observer may have changed it); one that stayed here stays here again.
    if (response && !b->hung_up) {
      const auto first = b->final_response ? sdp_body(sip_object(b->final_response)) : std::nullopt;
      if (!t->observer || !sdp_body(sip_object(response)))
        self->forward_response(t, response);
      else if (first)
        replace_sdp(response, *first), self->forward_response(t, response);
    }
    if (response) msg_destroy(response);
    return 0;
  }
  bool absorb = false;
  if (response && t->observer && !self->observe_response(t, b, response, status, &absorb)) {
    msg_destroy(response);
    self->maybe_finish(t);
    return 0;
  }
  // nta's own final responses (a transport error's 503, timer B's 408) say
  // nothing about the device: for a held fork they count as "not woken yet".
  ForkAggregator::Decision d = !sip ? t->fork->on_branch_failed(b->index)
                               : status >= 300 && nta_sip_is_internal(sip) != 0
                                   ? t->fork->on_local_failure(b->index, status)
                                   : t->fork->on_response(b->index, status);
  if (absorb) d.forward = false;
  if (t->observer && t->dialog_forming && status >= 300)
    t->observer->on_branch_end(t->call, b->index);
  if (status >= 200 && response) {
    if (b->final_response) msg_destroy(b->final_response);
    b->final_response = msg_ref_create(response);
  }
  self->apply(t, b, d, response);
  if (response) msg_destroy(response);
  if (status >= 200) self->maybe_finish(t);
  return 0;
}

int Router::on_server_event(void *magic, nta_incoming_t *irq, const sip_t *sip) {
  auto *t = static_cast<Txn *>(magic);
  Router *self = t->router;
  if (!sip) {  // nta is done with the server transaction
    t->irq_alive = false;
    self->maybe_finish(t);
    return 0;
  }
  if (sip->sip_request && sip->sip_request->rq_method == sip_method_cancel) {
    // §16.10: cancel every pending branch; nta answers the INVITE with 487 itself.
    self->env_.events.add("cancelled", {events::field("call_id", t->call.call_id)});
    self->enter(t, TxnEvent::CallerCancel);
    if (t->fork && t->fork->on_cancel().cancel_others) {
      // RFC 3326: the caller's own Reason travels on to the branches.
      su_home_t home[1] = {SU_HOME_INIT(home)};
      char *reason =
          sip->sip_reason
              ? sip_header_as_string(home, reinterpret_cast<const sip_header_t *>(sip->sip_reason))
              : nullptr;
      self->cancel_pending(t, reason);
      su_home_deinit(home);
    }
    self->release_observer(t, "cancelled by the caller");
    return 200;
  }
  return 0;
}

void Router::on_fork_timeout(su_root_magic_t *, su_timer_t *, void *magic) {
  auto *t = static_cast<Txn *>(magic);
  t->push_window_over = true;
  if (final_sent(t->state)) {
    t->router->maybe_finish(t);  // it may have stayed for late registrations
    return;
  }
  t->router->env_.events.add("fork_timeout", {events::field("call_id", t->call.call_id)});
  ForkAggregator::Decision d = t->fork->on_timeout();
  if (d.cancel_others) t->router->cancel_pending(t, kReasonForkTimeout);
  t->router->apply(t, nullptr, d, nullptr);
  t->router->maybe_finish(t);
}

void Router::maybe_finish(Txn *t) {
  if (!t->fork || !t->fork->all_final()) return;
  if (!final_sent(t->state) && t->irq_alive) return;
  // Pushed devices may still register until call-fork-timeout: they are told
  // the call is over through a ghost branch (on_registered).
  if (!t->late_aors.empty() && !t->push_window_over && t->timer) return;
  destroy(t);
}

void Router::hang_up_late_answer(Txn *t, Branch *b, const sip_t *rsp, const char *reason) {
  if (!rsp->sip_contact || !rsp->sip_from || !rsp->sip_to || !rsp->sip_call_id || !rsp->sip_cseq)
    return;
  const bool refused = reason != nullptr;  // not late: its answer was refused
  if (!reason && t->state == TxnState::Answered) reason = kReasonAnsweredElsewhere;
  if (refused)
    PLOG_INFO("route: call-id=%s %s: ACK and BYE from the proxy", t->call.call_id.c_str(),
              b->target.empty() ? "the answerer" : b->target.c_str());
  else
    PLOG_INFO("route: call-id=%s %s answered too late: ACK and BYE from the proxy",
              t->call.call_id.c_str(), b->target.c_str());
  su_home_t home[1] = {SU_HOME_INIT(home)};
  // §12.1.2: the route set is the 2xx's Record-Route in reverse, minus our own
  // entries (we are the next hop ourselves).
  std::vector<const sip_record_route_t *> rrs;
  for (const sip_record_route_t *r = rsp->sip_record_route; r; r = r->r_next)
    if (!env_.names.is_us(r->r_url)) rrs.push_back(r);
  sip_route_t *route = nullptr;
  for (auto it = rrs.rbegin(); it != rrs.rend(); ++it) {
    sip_route_t *r = sip_route_create(home, (*it)->r_url, nullptr);
    if (!r) continue;
    sip_route_t **tail = &route;
    while (*tail) tail = &(*tail)->r_next;
    *tail = r;
  }
  const url_string_t *to_device =
      b->next_hop.empty() ? nullptr : URL_STRING_MAKE(b->next_hop.c_str());
  for (sip_method_t method : {sip_method_ack, sip_method_bye}) {
    const bool ack = method == sip_method_ack;
    // Only a 2xx to an INVITE is ACKed (an UPDATE's is not, RFC 3311 §5.2).
    if (ack && rsp->sip_cseq->cs_method != sip_method_invite) continue;
    msg_t *msg = nta_msg_create(env_.agent, 0);
    if (!msg) break;
    // §13.2.2.4: the ACK has the INVITE's CSeq number; the BYE the next one.
    const uint32_t cseq = rsp->sip_cseq->cs_seq + (ack ? 0 : 1);
    const char *name = ack ? "ACK" : "BYE";
    sip_add_tl(msg, sip_object(msg),
               SIPTAG_REQUEST(sip_request_create(
                   home, method, name,
                   reinterpret_cast<const url_string_t *>(rsp->sip_contact->m_url), nullptr)),
               SIPTAG_FROM(rsp->sip_from), SIPTAG_TO(rsp->sip_to), SIPTAG_CALL_ID(rsp->sip_call_id),
               SIPTAG_CSEQ(sip_cseq_create(home, cseq, method, name)), SIPTAG_ROUTE(route),
               SIPTAG_MAX_FORWARDS_STR("70"), TAG_IF(!ack && reason, SIPTAG_REASON_STR(reason)),
               TAG_END());
    nta_outgoing_t *orq =
        nta_outgoing_mcreate(env_.agent, ack ? nullptr : on_late_bye_response, nullptr, to_device,
                             msg, TAG_IF(ack, NTATAG_STATELESS(1)), TAG_END());
    if (!orq)
      msg_destroy(msg);
    else if (ack)
      nta_outgoing_destroy(orq);
  }
  su_home_deinit(home);
}

int Router::on_late_bye_response(void *, nta_outgoing_t *orq, const sip_t *sip) {
  if (!sip || !sip->sip_status || sip->sip_status->st_status >= 200) nta_outgoing_destroy(orq);
  return 0;
}

bool Router::observe_response(Txn *t, Branch *b, msg_t *response, int status, bool *absorb) {
  const std::string who =
      "branch " + std::to_string(b->index) + (b->aor.empty() ? std::string() : " (" + b->aor + ")");
  if (!t->dialog_forming) {
    // An in-dialog offer's answer: the one that counts is the 2xx's.
    if (status < 200 || status >= 300) return true;
    const CallObserver::Verdict v =
        t->observer->on_dialog_answer(t->call, t->offer_from_caller, response);
    if (v.ok()) return true;
    refuse_answer(t, b, sip_object(response), who + ": " + v.detail);
    return false;
  }
  const CallObserver::ResponseVerdict r =
      t->observer->on_branch_response(t->call, b->index, status, response);
  switch (r.action) {
    case CallObserver::Action::Forward:
      return true;
    case CallObserver::Action::Absorb:
      *absorb = true;
      return true;
    case CallObserver::Action::Drop:
      // Two devices answered at once: the observer joined the caller to the
      // winner; a second dialog would have nothing.
      if (!t->fork->branch_final(b->index)) {
        t->fork->on_response(b->index, status);  // the branch is done either way
        b->hung_up = true;
        hang_up_late_answer(t, b, sip_object(response));
        t->observer->on_branch_end(t->call, b->index);
      }
      return false;
    case CallObserver::Action::Refuse:
      refuse_answer(t, b, sip_object(response), who + ": " + r.verdict.detail);
      return false;
  }
  return true;
}

void Router::refuse_answer(Txn *t, Branch *b, const sip_t *rsp, const std::string &detail) {
  // A proxy cannot refuse a 2xx (RFC 3261 §16.7 step 5 forwards them all), but
  // this one would take the media past the observer. So it is ended as a late
  // answer is (ACK, then BYE from the proxy), and the branch fails with 488:
  // the caller hears "Not Acceptable Here" with the Warning if nobody else
  // answers, and another device may still answer.
  b->refusal = detail;
  b->hung_up = true;
  const std::string reason = siptext::reason(488, "Not Acceptable Here");
  hang_up_late_answer(t, b, rsp, reason.c_str());
  if (t->dialog_forming) {
    t->observer->on_branch_end(t->call, b->index);
  } else {
    // A re-INVITE or UPDATE: the simplest consistent outcome. Its answerer's
    // side of the call is gone (BYE), so the call is: the observer lets go and
    // the dialog is forgotten, so the sender, which gets the 488, learns with
    // a 481 on its next request that the dialog is over (§12.2.1.2). Keeping
    // the old media instead would leave the answerer believing in a session
    // the relay does not carry.
    const std::string answerer_tag = rsp->sip_to && rsp->sip_to->a_tag ? rsp->sip_to->a_tag : "";
    dialogs_.remove(t->call.call_id, t->offer_from_caller ? t->from_tag : answerer_tag,
                    t->offer_from_caller ? answerer_tag : t->from_tag);
    if (!dialogs_.has_confirmed_call(t->call.call_id))
      t->observer->on_end(t->call, "unusable answer to a re-INVITE");
  }
  apply(t, b, t->fork->on_response(b->index, 488), nullptr);
}

void Router::follow_up_pushes(Txn *t, TxnState outcome) {
  if (t->pushed.empty() || !env_.push || !t->request) return;
  // The device that answered is told nothing: it is in the call. It is known
  // by its +sip.instance, or else by its contact (a device without an
  // instance that answered from a new address gets the push too, harmless).
  const Branch *winner = nullptr;
  if (outcome == TxnState::Answered) {
    for (const auto &b : t->branches) {
      const int st = t->fork->branch_status(b->index);
      if (st >= 200 && st < 300) {
        winner = b.get();
        break;
      }
    }
  }
  const push::PushKind kind =
      outcome == TxnState::Answered ? push::PushKind::AnsweredElsewhere : push::PushKind::Missed;
  size_t sent = 0;
  for (const chain::Target &p : t->pushed) {
    if (winner &&
        ((!p.instance.empty() && p.instance == winner->instance) || p.uri == winner->target))
      continue;
    if (env_.push(p, sip_object(t->request), kind)) ++sent;
  }
  t->pushed.clear();
  if (sent)
    PLOG_INFO("route: call-id=%s %zu %s push(es)", t->call.call_id.c_str(), sent,
              push::kind_name(kind));
}

void Router::unindex_ringing(Txn *t) {
  for (const std::string &aor : t->late_aors) {
    auto it = ringing_by_aor_.find(aor);
    if (it == ringing_by_aor_.end()) continue;
    auto &v = it->second;
    v.erase(std::remove(v.begin(), v.end(), t), v.end());
    if (v.empty()) ringing_by_aor_.erase(it);
  }
  t->late_aors.clear();
}

void Router::on_registered(const std::string &aor, const chain::Target &target) {
  auto it = ringing_by_aor_.find(aor);
  if (it == ringing_by_aor_.end()) return;
  const std::vector<Txn *> ringing = it->second;  // a failed branch may end a call
  for (Txn *t : ringing) {
    if (!txns_.count(t) || !t->request || t->push_window_over) continue;
    // The call ended (answered elsewhere, cancelled, timed out) while the
    // device woke: iOS shows every VoIP push as a call, which only the app can
    // end, so the device gets the INVITE and then a CANCEL.
    const bool ghost = final_sent(t->state) || t->fork->final_sent();
    std::vector<LateBranchView> views;
    views.reserve(t->branches.size());
    for (const auto &b : t->branches) {
      LateBranchView v;
      // A device with an instance is known by it; the contact names one
      // without (its contact changes with its address, so each address reads
      // as a device of its own, as the registrar stores it). Two instances
      // that differ are two devices, whatever their contacts.
      v.same_device = (!target.instance.empty() && b->instance == target.instance) ||
                      (b->target == target.uri && (b->instance.empty() || target.instance.empty()));
      v.same_route = b->target == target.uri && b->next_hop == target.next_hop;
      const bool final = t->fork->branch_final(b->index);
      v.state = b->cancelled                                 ? LateBranchView::State::Cancelled
                : !final && b->orq                           ? LateBranchView::State::Pending
                : !final || t->fork->branch_failed(b->index) ? LateBranchView::State::LocalFailure
                                                             : LateBranchView::State::Answered;
      views.push_back(v);
    }
    size_t &late_so_far = t->late_branches[aor];
    const LateDecision decision = decide_late_branch(
        views, late_so_far, static_cast<size_t>(env_.settings.fork_late_max_branches));
    if (decision.over_cap) {
      // One line per call and AOR: a device looping through REGISTERs must not
      // flood the log either.
      if (t->late_cap_logged.insert(aor).second)
        PLOG_WARN(
            "route: call-id=%s %s registered again (%s): the call already added %zu "
            "late branch(es) for it, fork-late-max-branches; no more",
            t->call.call_id.c_str(), aor.c_str(), target.uri.c_str(), late_so_far);
      continue;
    }
    if (!decision.add) continue;  // a refresh: its branch stays
    for (size_t i : decision.cancel) {
      // Its address is stale: the app came back from elsewhere.
      Branch *b = t->branches[i].get();
      b->cancelled = true;
      nta_outgoing_tcancel(b->orq, nullptr, nullptr, TAG_END());
    }
    ++late_so_far;
    const size_t index = t->fork->add_branch();
    std::string rr;
    if (t->records_dialog) {
      const std::vector<std::string> rrs = env_.record_route(
          t->irq, t->request, {target.next_hop.empty() ? target.uri : target.next_hop});
      if (!rrs.empty()) rr = rrs[0];
    }
    const bool sent = add_branch(t, t->request, target.uri, rr, t->pop_route, target.next_hop, aor);
    if (t->branches.size() != index + 1) {
      // add_branch made no Branch (no memory): the aggregator's must fail.
      apply(t, nullptr, t->fork->on_branch_failed(index), nullptr);
      maybe_finish(t);
      continue;
    }
    Branch *b = t->branches.back().get();
    b->flow_domain = target.flow_domain;
    b->aor = aor;
    b->instance = target.instance;
    b->ghost = ghost;
    PLOG_INFO("route: call-id=%s %s registered %s: branch %zu to %s%s", t->call.call_id.c_str(),
              aor.c_str(), ghost ? "after the call ended (INVITE, then CANCEL)" : "while ringing",
              index, target.uri.c_str(), sent ? "" : " (cannot send)");
    if (!sent) {
      apply(t, b, t->fork->on_branch_failed(index), nullptr);
      maybe_finish(t);
    }
  }
}

void Router::destroy(Txn *t) {
  unindex_ringing(t);
  if (t->request) msg_destroy(t->request), t->request = nullptr;
  // A call that ends without an answer ends for the observer here; an
  // answered one goes on until BYE (or the relay's inactivity timeout).
  release_observer(t, "not answered");
  if (t->records_dialog) dialogs_.drop_early(t->call.call_id, t->from_tag);
  if (t->timer) su_timer_destroy(t->timer), t->timer = nullptr;
  for (auto &b : t->branches) {
    // nta keeps the client transaction alive on its own for retransmissions.
    if (b->orq) nta_outgoing_destroy(b->orq), b->orq = nullptr;
    if (b->final_response) msg_destroy(b->final_response), b->final_response = nullptr;
  }
  if (t->irq) nta_incoming_destroy(t->irq), t->irq = nullptr;
  txns_.erase(t);
}

std::string Router::calls_json(int64_t now) const {
  json::Writer w;
  w.begin_object().key("calls").begin_array();
  for (const auto &[raw, t] : txns_) {
    if (!t->dialog_forming || final_sent(t->state)) continue;
    w.begin_object()
        .field("call_id", t->call.call_id)
        .field("from", t->from)
        .field("to", t->to)
        .field("state", "ringing")
        .field("branches", t->branches.size())
        .field("age", now - t->started)
        .end_object();
  }
  dialogs_.for_each([&](const DialogTable::Dialog &d) {
    if (!d.confirmed || !d.invite) return;
    w.begin_object()
        .field("call_id", d.call_id)
        .field("from", d.from)
        .field("to", d.to)
        .field("state", "answered")
        .field("age", now - d.since)
        .end_object();
  });
  return w.end_array().end_object().take();
}

void Router::expire_dialogs(int64_t now) {
  // A call without BYE for 12 hours is gone (phone unplugged mid-call); an early
  // dialog normally ends with its transaction, this only catches leftovers.
  dialogs_.expire(now, 12 * 3600, 2 * 3600);
}

}  // namespace portier::proxy
