#include "proxy/router.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_extra.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_alloc.h>
#include <strings.h>

#include <algorithm>
#include <set>

#include "common/auth/identity_proof.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sip_text.h"
#include "proxy/media_relay.h"
#include "sip/sip_message.h"

namespace portier::proxy {
namespace {

// RFC 3326 reasons on the CANCELs the fork sends.
const char kReasonAnsweredElsewhere[] = "SIP;cause=200;text=\"Call completed elsewhere\"";
const char kReasonForkTimeout[] = "SIP;cause=408;text=\"Fork timeout\"";

std::string url_str(const url_t *url) {
  if (!url) return "";
  char buf[512];
  isize_t n = url_e(buf, sizeof buf, url);
  if (n <= 0 || n >= static_cast<isize_t>(sizeof buf)) return "";
  return std::string(buf, static_cast<size_t>(n));
}

int64_t now_s() { return static_cast<int64_t>(time(nullptr)); }

// A URI's host without IPv6 brackets ("" for none), as the dialog table keeps hosts.
std::string bare_host(const url_t *url) {
  if (!url || !url->url_host) return "";
  std::string host = url->url_host;
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return host;
}

// The SDP body of a message, if it has one.
const char *sdp_body(const sip_t *sip, size_t *len) {
  if (!sip || !sip->sip_payload || !sip->sip_payload->pl_data || !sip->sip_content_type ||
      !sip->sip_content_type->c_type ||
      strcasecmp(sip->sip_content_type->c_type, "application/sdp") != 0)
    return nullptr;
  *len = sip->sip_payload->pl_len;
  return sip->sip_payload->pl_data;
}

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
  // The parser knows the header class only with sofia-sip's extensions
  // (sip_extend_mclass, set up in main).
  msg_header_t *h =
      msg_header_make(msg_home(msg), sip_p_asserted_identity_class, ("<" + aor + ">").c_str());
  if (h) msg_header_insert(msg, pub, h);
}

// Proves to the device `receiver_aor` that the P-Asserted-Identity in `msg`
// is ours (common/auth/identity_proof.h): a device cannot tell our messages
// from a spoofed UDP source or another local process by address alone. The
// key is the receiver's digest HA1 (realm = its domain), SHA-256 when the
// users file has one, else MD5; a receiver we hold no secret for (a static
// record, a foreign host) gets no proof. Call it last: the proof covers the
// message as the receiver gets it.
void add_identity_proof(msg_t *msg, const auth::UsersFile &users, const std::string &receiver_aor) {
  sip_t *sip = sip_object(msg);
  const sip_p_asserted_identity_t *paid = sip_p_asserted_identity(sip);
  if (!paid || receiver_aor.size() < 5 || !sip->sip_call_id || !sip->sip_cseq) return;
  const size_t at = receiver_aor.find('@');
  if (at == std::string::npos) return;
  const std::string user = receiver_aor.substr(4, at - 4), domain = receiver_aor.substr(at + 1);
  auth::Algorithm alg = auth::Algorithm::SHA256;
  std::optional<std::string> ha1 = users.ha1(user, domain, domain, alg);
  if (!ha1) ha1 = users.ha1(user, domain, domain, alg = auth::Algorithm::MD5);
  if (!ha1) return;
  auth::ProofFields f;
  f.identity = sipmsg::url_aor(paid->paid_url);
  f.call_id = sip->sip_call_id->i_id;
  f.from_tag = sip->sip_from && sip->sip_from->a_tag ? sip->sip_from->a_tag : "";
  f.cseq = sip->sip_cseq->cs_seq;
  f.what = sip->sip_request ? sip->sip_request->rq_method_name
                            : std::to_string(sip->sip_status ? sip->sip_status->st_status : 0);
  const std::string header =
      std::string(auth::kIdentityProofHeader) + ": " + auth::identity_proof(alg, *ha1, f, now_s());
  msg_header_t *h = msg_header_make(msg_home(msg), sip_unknown_class, header.c_str());
  if (h) msg_header_insert(msg, reinterpret_cast<msg_pub_t *>(sip), h);
}

// A relayed call's INVITE goes to every device without "100rel" in Supported.
// The relay passes one early dialog to the caller and absorbs the other
// devices' 183s; a device that sent its 183 reliably would wait for a PRACK
// that nobody sends, and hold back its 200 until the INVITE fails (RFC 3262
// §3). nua-based phones do send 183 reliably whenever the INVITE allows it.
// A caller that *requires* 100rel is not changed.
void drop_100rel(msg_t *msg) {
  sip_t *sip = sip_object(msg);
  if (!sip->sip_supported) return;
  std::string kept;
  bool dropped = false;
  for (sip_supported_t *s = sip->sip_supported; s; s = s->k_next)
    for (msg_param_t const *item = s->k_items; item && *item; ++item) {
      if (strcasecmp(*item, "100rel") == 0) {
        dropped = true;
        continue;
      }
      kept += (kept.empty() ? "" : ", ") + std::string(*item);
    }
  if (!dropped) return;
  auto *pub = reinterpret_cast<msg_pub_t *>(sip);
  msg_header_remove_all(msg, pub, reinterpret_cast<msg_header_t *>(sip->sip_supported));
  if (!kept.empty())
    msg_header_insert(
        msg, pub,
        reinterpret_cast<msg_header_t *>(sip_supported_make(msg_home(msg), kept.c_str())));
}

// Puts `sdp` in place of the message's body, with a matching Content-Length.
void replace_sdp(msg_t *msg, const std::string &sdp) {
  sip_t *sip = sip_object(msg);
  su_home_t *home = msg_home(msg);
  auto *pub = reinterpret_cast<msg_pub_t *>(sip);
  if (sip->sip_payload)
    msg_header_remove(msg, pub, reinterpret_cast<msg_header_t *>(sip->sip_payload));
  if (sip->sip_content_length)
    msg_header_remove(msg, pub, reinterpret_cast<msg_header_t *>(sip->sip_content_length));
  msg_header_insert(msg, pub,
                    reinterpret_cast<msg_header_t *>(sip_payload_make(home, sdp.c_str())));
  msg_header_insert(msg, pub,
                    reinterpret_cast<msg_header_t *>(
                        sip_content_length_create(home, static_cast<uint32_t>(sdp.size()))));
}

// Takes the body out of a message (a provisional response whose SDP the relay
// could not use: the caller hears the device ring, without its media address).
void remove_body(msg_t *msg) {
  sip_t *sip = sip_object(msg);
  auto *pub = reinterpret_cast<msg_pub_t *>(sip);
  for (msg_header_t *h : {reinterpret_cast<msg_header_t *>(sip->sip_payload),
                          reinterpret_cast<msg_header_t *>(sip->sip_content_type),
                          reinterpret_cast<msg_header_t *>(sip->sip_content_length)})
    if (h) msg_header_remove(msg, pub, h);
  msg_header_insert(msg, pub,
                    reinterpret_cast<msg_header_t *>(sip_content_length_create(msg_home(msg), 0)));
}

// A device behind NAT registers a contact it cannot be reached at; its REGISTER
// came from `received` ("udp:203.0.113.5:40211"). When the two differ, requests
// go to where the REGISTER came from (as rport does for responses, RFC 3581),
// with the Request-URI left as the device wrote it. Over TCP this also reuses
// the device's own connection.
std::string next_hop_for(const url_t *contact, const std::string &received) {
  size_t a = received.find(':'), b = received.rfind(':');
  if (!contact || a == std::string::npos || b <= a) return "";
  std::string proto = received.substr(0, a);
  std::string host = received.substr(a + 1, b - a - 1);
  std::string port = received.substr(b + 1);
  const char *cport = contact->url_port && *contact->url_port ? contact->url_port : "5060";
  const std::string bare =
      host.size() > 2 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
  if (contact->url_host &&
      (strcasecmp(contact->url_host, host.c_str()) == 0 ||
       strcasecmp(contact->url_host, bare.c_str()) == 0) &&
      port == cport)
    return "";
  return "sip:" + host + ":" + port + ";transport=" + proto;
}

// "udp:192.0.2.1:5060" or "tcp:[2001:db8::1]:5061" (Proxy::source_of) -> the
// address alone, so that a caller's calls count together whatever its port.
std::string source_host(const std::string &source) {
  size_t a = source.find(':'), b = source.rfind(':');
  if (a == std::string::npos || b <= a) return "";
  std::string host = source.substr(a + 1, b - a - 1);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return host == "?" ? "" : host;
}

}  // namespace

Router::Router(Proxy &proxy) : proxy_(proxy) {}

Router::~Router() {
  while (!txns_.empty()) destroy(txns_.begin()->first);
}

Router::Txn *Router::create_txn(nta_incoming_t *irq, const sip_t *sip) {
  auto t = std::make_unique<Txn>();
  t->router = this;
  t->irq = irq;
  t->invite = sip->sip_request->rq_method == sip_method_invite;
  t->call_id = sip->sip_call_id ? sip->sip_call_id->i_id : "";
  t->from = sip->sip_from ? url_str(sip->sip_from->a_url) : "";
  t->to = sip->sip_to ? url_str(sip->sip_to->a_url) : "";
  t->from_tag = sip->sip_from && sip->sip_from->a_tag ? sip->sip_from->a_tag : "";
  t->started = now_s();
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
  // The relay gives each branch an offer pointed at that branch's own ports.
  if (t && t->relayed) {
    std::string error;
    auto offer = proxy_.relay()->offer_for_branch(t->call_id, t->branches.size(), &error);
    if (offer) {
      replace_sdp(copy, *offer);
    } else {
      PLOG_WARN("relay: call-id=%s branch %zu: %s", t->call_id.c_str(), t->branches.size(),
                error.c_str());
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
  if (t && t->relayed) drop_100rel(copy);

  // §16.6 step 3: Max-Forwards minus one.
  unsigned mf = csip->sip_max_forwards ? csip->sip_max_forwards->mf_count : 70;
  char mf_str[16];
  snprintf(mf_str, sizeof mf_str, "%u", mf ? mf - 1 : 0);
  if (csip->sip_max_forwards)
    msg_header_remove(copy, reinterpret_cast<msg_pub_t *>(csip),
                      reinterpret_cast<msg_header_t *>(csip->sip_max_forwards));
  // §16.4/§16.12: our own Route entries are consumed here (two of them when the
  // dialog was double record-routed, RFC 5658).
  if (pop_route) {
    sip_route_remove(copy, csip);
    while (csip->sip_route && proxy_.is_us(csip->sip_route->r_url)) sip_route_remove(copy, csip);
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
    std::string r = realm ? realm : "";
    if (r.size() >= 2 && r.front() == '"') r = r.substr(1, r.size() - 2);
    if (proxy_.is_auth_domain(r.c_str()))
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
  add_identity_proof(copy, proxy_.users(), aor);

  const bool ack = csip->sip_request->rq_method == sip_method_ack;
  std::unique_ptr<Branch> b;
  if (!ack) {
    b = std::make_unique<Branch>();
    b->txn = t;
    b->index = t->branches.size();
    b->target = target;
    b->next_hop = next_hop;
  }
  nta_outgoing_t *orq = nta_outgoing_mcreate(
      proxy_.agent(), ack ? nullptr : on_branch_response, ack ? nullptr : b.get(),
      next_hop.empty() ? nullptr : URL_STRING_MAKE(next_hop.c_str()), copy,
      TAG_IF(rq, SIPTAG_REQUEST(rq)), SIPTAG_MAX_FORWARDS_STR(mf_str),
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
  t->fork = std::make_unique<ForkAggregator>(branches);
}

bool Router::settle_unsent(Txn *t) {
  bool any_sent = false;
  for (size_t i = 0; i < t->branches.size(); ++i) {
    if (t->branches[i]->orq) {
      any_sent = true;
      continue;
    }
    PLOG_WARN("route: call-id=%s cannot send to %s", t->call_id.c_str(),
              t->branches[i]->target.c_str());
    apply(t, t->branches[i].get(), t->fork->on_branch_failed(i), nullptr);
  }
  if (!any_sent) {
    maybe_finish(t);  // every branch failed: the best (a 408) went up; t is gone
    return false;
  }
  return true;
}

bool Router::route_to_domain(nta_incoming_t *irq, msg_t *msg, const sip_t *sip,
                             const std::string &caller_aor, bool pop_route) {
  const url_t *ruri = sip->sip_request->rq_url;
  if (!ruri->url_user) {
    nta_incoming_treply(irq, 404, "No user part in Request-URI", TAG_END());
    return false;
  }
  const std::string aor = normalize_aor(ruri->url_user, ruri->url_host);
  const int64_t now = now_s();
  const auto &s = proxy_.settings();

  // Which AORs this request rings: a group address rings every AOR of its domain
  // but the caller's own; a static record lists its AORs; else the AOR itself.
  std::vector<std::string> aors;
  const bool group =
      std::find(s.group_addresses.begin(), s.group_addresses.end(), aor) != s.group_addresses.end();
  if (group) {
    for (auto &a : proxy_.locations().aors_in_domain(aor_domain(aor), now))
      if (a != caller_aor && a != aor) aors.push_back(a);
  } else if (const auto *targets = proxy_.static_records().find(aor)) {
    for (const auto &a : *targets)
      if (a != caller_aor) aors.push_back(a);
  } else {
    aors.push_back(aor);
  }

  struct Target {
    std::string contact, next_hop, aor;
  };
  std::vector<Target> contacts;
  std::set<std::string> seen;
  for (const auto &a : aors) {
    for (const auto &bnd : proxy_.locations().lookup(a, now)) {
      // §16.3 step 4 in spirit: never fork back to ourselves.
      url_t *u = url_make(msg_home(msg), bnd.contact.c_str());
      bool loop = u && proxy_.is_us(u);
      if (!loop && seen.insert(bnd.contact).second)
        contacts.push_back({bnd.contact, next_hop_for(u, bnd.received), a});
    }
  }
  if (contacts.empty()) {
    if (!group && !proxy_.static_records().find(aor) && ruri->url_user &&
        !proxy_.users().has_user(ruri->url_user, ruri->url_host ? ruri->url_host : "")) {
      nta_incoming_treply(irq, SIP_404_NOT_FOUND, TAG_END());
    } else {
      nta_incoming_treply(irq, 480, "Temporarily Unavailable", TAG_END());
    }
    PLOG_INFO("route: %s %s: no registered device", sip->sip_request->rq_method_name, aor.c_str());
    return false;
  }

  const bool dialog_forming =
      sip->sip_request->rq_method == sip_method_invite && !(sip->sip_to && sip->sip_to->a_tag);
  size_t sdp_len = 0;
  const char *offer = sdp_body(sip, &sdp_len);
  bool relayed = false;
  if (dialog_forming && offer && proxy_.relay() && sip->sip_call_id) {
    std::string error;
    MediaRelay::Owner owner{caller_aor, source_host(Proxy::source_of(msg))};
    MediaRelay::Refusal why = MediaRelay::Refusal::None;
    if (!proxy_.relay()->start_call(sip->sip_call_id->i_id, std::string_view(offer, sdp_len),
                                    &error, owner, &why)) {
      PLOG_WARN("relay: call-id=%s refused: %s", sip->sip_call_id->i_id, error.c_str());
      const std::string warning = siptext::warning(399, "portier", error);
      switch (why) {
        case MediaRelay::Refusal::NoPorts:
          nta_incoming_treply(irq, 503, "Media relay full", TAG_END());
          break;
        case MediaRelay::Refusal::UserLimit:
        case MediaRelay::Refusal::SourceLimit:
          // 503 with Retry-After (RFC 3261 §21.5.4): the refusal lasts only
          // until one of the caller's calls ends. 486 would blame the callee,
          // 403 would tell the caller never to try again.
          nta_incoming_treply(irq, 503, "Too many relayed calls", SIPTAG_RETRY_AFTER_STR("30"),
                              SIPTAG_WARNING_STR(warning.c_str()), TAG_END());
          break;
        default:
          nta_incoming_treply(irq, 488, "Not Acceptable Here", SIPTAG_WARNING_STR(warning.c_str()),
                              TAG_END());
          break;
      }
      return false;
    }
    relayed = true;
  }

  // The caller as digest authentication proved it (empty when auth is off).
  assert_identity(msg, caller_aor);
  Txn *t = create_txn(irq, sip);
  t->dialog_forming = dialog_forming;
  t->relayed = relayed;
  if (t->invite) nta_incoming_treply(irq, SIP_100_TRYING, TAG_END());
  const bool record_route =
      t->dialog_forming || sip->sip_request->rq_method == sip_method_subscribe;
  t->records_dialog = record_route;
  t->caller_aor = caller_aor;
  t->caller_host = Proxy::source_address(msg);
  if (sip->sip_contact) t->caller_target = bare_host(sip->sip_contact->m_url);
  start_fork(t, contacts.size());
  for (const auto &c : contacts) {
    const std::string rr = record_route ? proxy_.record_route_for(
                                              irq, msg, c.next_hop.empty() ? c.contact : c.next_hop)
                                        : std::string();
    if (add_branch(t, msg, c.contact, rr, pop_route, c.next_hop, c.aor) && !t->branches.empty())
      t->branches.back()->aor = c.aor;
  }
  if (!settle_unsent(t)) return true;
  PLOG_INFO("route: %s %s -> %zu branch(es) call-id=%s", sip->sip_request->rq_method_name,
            aor.c_str(), t->branches.size(), t->call_id.c_str());
  if (t->invite) {
    t->timer = su_timer_create(su_root_task(proxy_.root()),
                               static_cast<su_duration_t>(s.call_fork_timeout) * 1000);
    su_timer_set(t->timer, on_fork_timeout, t);
  }
  return true;
}

bool Router::route_onward(Reply &reply, msg_t *msg, const sip_t *sip,
                          const std::string &source_host) {
  const sip_method_t method = sip->sip_request->rq_method;
  const bool ack = method == sip_method_ack;
  const std::string from_tag = sip->sip_from->a_tag ? sip->sip_from->a_tag : "";
  const std::string to_tag = sip->sip_to->a_tag ? sip->sip_to->a_tag : "";
  DialogTable::Match m = dialogs_.match(sip->sip_call_id->i_id, from_tag, to_tag, source_host);
  if (m.verdict == DialogTable::Match::NoDialog && method == sip_method_notify &&
      notify_forms_dialog(msg, sip, source_host))
    m = dialogs_.match(sip->sip_call_id->i_id, from_tag, to_tag, source_host);
  if (m.verdict != DialogTable::Match::Ok) {
    // §12.2.2: no such dialog, as far as a request from this host can tell.
    if (refusal_loggable())
      PLOG_INFO("route: %s call-id=%s from %s refused: %s", sip->sip_request->rq_method_name,
                sip->sip_call_id->i_id, source_host.c_str(),
                m.verdict == DialogTable::Match::NotAParty ? "not a party of the dialog"
                                                           : "no dialog with these tags");
    if (!ack) reply.send(SIP_481_NO_TRANSACTION, TAG_END());
    return false;
  }
  const bool from_caller = m.side == DialogTable::Side::Caller;
  const std::string ruri_host = bare_host(sip->sip_request->rq_url);
  if (!DialogTable::may_target(*m.dialog, m.side, ruri_host)) {
    // A party of the dialog may reach the other party, not any host through us.
    if (refusal_loggable())
      PLOG_INFO("route: %s call-id=%s from %s refused: Request-URI host %s is not the peer's",
                sip->sip_request->rq_method_name, sip->sip_call_id->i_id, source_host.c_str(),
                ruri_host.c_str());
    if (!ack) reply.send(403, "Request-URI outside the dialog", TAG_END());
    return false;
  }
  if ((method == sip_method_invite || method == sip_method_update) && sip->sip_contact)
    dialogs_.add_target(*m.dialog, m.side, bare_host(sip->sip_contact->m_url));
  // Whatever identity the sender wrote goes; the one proved when the dialog
  // formed is asserted for it (RFC 3325 §9.1), as on every other path.
  assert_identity(msg, from_caller ? m.dialog->caller_aor : m.dialog->callee_aor);
  if (ack) {
    // The answer to an offer a 2xx carried (a re-INVITE without SDP, RFC 3264
    // §4) goes through the relay like any other. An ACK cannot be refused:
    // one the relay cannot use goes on without its SDP, so the other side,
    // left without an answer, ends the call (RFC 3261 §13.3.1.4) rather than
    // sending its media past the relay.
    size_t len = 0;
    const char *answer = sdp_body(sip, &len);
    if (answer && proxy_.relay() && proxy_.relay()->has_call(sip->sip_call_id->i_id)) {
      std::string error;
      auto sdp = proxy_.relay()->pass_sdp(sip->sip_call_id->i_id, from_caller,
                                          std::string_view(answer, len), &error);
      if (sdp) {
        replace_sdp(msg, *sdp);
      } else {
        PLOG_WARN("relay: call-id=%s ACK answer refused, forwarded without SDP: %s",
                  sip->sip_call_id->i_id, error.c_str());
        remove_body(msg);
      }
    }
    // ACK for a 2xx is its own transaction and gets no response (§17.1.1.3):
    // forward statelessly; add_branch creates no Txn for it.
    add_branch(nullptr, msg, "", "", true);
    return false;
  }
  if (method == sip_method_bye) {
    // Only the real dialog's BYE frees the call's relay, and only when no other
    // answered dialog of the Call-ID is left.
    const std::string call_id = m.dialog->call_id;
    const bool confirmed = m.dialog->confirmed;
    dialogs_.remove(call_id, m.dialog->caller_tag, m.dialog->callee_tag);
    if (confirmed && proxy_.relay() && !dialogs_.has_confirmed_call(call_id))
      proxy_.relay()->end_call(call_id, "BYE");
  }
  nta_incoming_t *irq = reply.irq();  // the transaction starts once the request is admitted
  if (!irq) {
    reply.send(SIP_500_INTERNAL_SERVER_ERROR, TAG_END());
    return false;
  }
  // A relayed call's re-INVITE or UPDATE (RFC 3311): its offer is pointed at
  // the relay's side that faces the receiver, and its answer comes back the
  // same way. An offer the relay cannot use never goes on as it is (the media
  // would bypass the relay): 488 (RFC 3261 §21.4.26, §14.2), and since a
  // failed re-INVITE changes nothing (§14.1), the call keeps its old media.
  // The answer is sent in the server transaction, so the sender's ACK of the
  // 488 ends there too.
  const bool relayed_offer = (method == sip_method_invite || method == sip_method_update) &&
                             proxy_.relay() && proxy_.relay()->has_call(sip->sip_call_id->i_id);
  size_t offer_len = 0;
  const char *offer = relayed_offer ? sdp_body(sip, &offer_len) : nullptr;
  if (offer) {
    std::string error;
    auto sdp = proxy_.relay()->pass_sdp(sip->sip_call_id->i_id, from_caller,
                                        std::string_view(offer, offer_len), &error);
    if (!sdp) {
      PLOG_WARN("relay: call-id=%s %s offer from the %s refused: %s", sip->sip_call_id->i_id,
                sip->sip_request->rq_method_name, from_caller ? "caller" : "callee", error.c_str());
      const std::string warning = siptext::warning(399, "portier", error);
      reply.send(488, "Not Acceptable Here", SIPTAG_WARNING_STR(warning.c_str()), TAG_END());
      return false;
    }
    replace_sdp(msg, *sdp);
  }
  Txn *t = create_txn(irq, sip);
  if (relayed_offer) t->reinvite_from_caller = from_caller ? 1 : 0;
  start_fork(t, 1);
  add_branch(t, msg, "", "", true);
  settle_unsent(t);
  return true;
}

bool Router::refusal_loggable() {
  const int64_t now = now_s();
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
    if (!t->records_dialog || t->invite || t->call_id != sip->sip_call_id->i_id ||
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
  d.call_id = t->call_id;
  d.caller_tag = t->from_tag;
  d.callee_tag = callee_tag;
  d.caller_hosts.push_back(t->caller_host);
  // The host the branch went to (a NATed device's public address): its
  // in-dialog requests come from there even if a response took another path.
  for (const std::string *uri : {&b->target, &b->next_hop})
    if (!uri->empty()) d.callee_hosts.push_back(bare_host(url_make(msg_home(msg), uri->c_str())));
  d.caller_targets.push_back(t->caller_target);
  d.callee_targets.push_back(bare_host(callee_contact));
  d.caller_aor = t->caller_aor;
  d.callee_aor = b->aor;
  d.from = t->from;
  d.to = t->to;
  d.invite = t->invite;
  d.since = now_s();
  return d;
}

void Router::record_dialog(Txn *t, Branch *b, msg_t *response) {
  const sip_t *r = sip_object(response);
  if (!r->sip_to || !r->sip_to->a_tag || t->from_tag.empty()) return;
  DialogTable::Dialog d =
      dialog_of(t, b, response, r->sip_to->a_tag, r->sip_contact ? r->sip_contact->m_url : nullptr);
  d.callee_hosts.push_back(Proxy::source_address(response));
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
      assert_identity(response, b->aor);
      add_identity_proof(response, proxy_.users(), t->caller_aor);
    }
  }
  if (d.forward && response) {
    int status = sip_object(response)->sip_status->st_status;
    // §12.1: a 2xx, or a 18x with a To tag (early), forms a dialog at the caller.
    if (t->records_dialog && b && status > 100 && status < 300) record_dialog(t, b, response);
    forward_response(t, response);
    if (status >= 200) t->final_sent = true;
    if (t->dialog_forming && status >= 200 && status < 300) {
      t->answered = true;
      if (b) t->winner = b->index;
      PLOG_INFO("route: call-id=%s answered by %s", t->call_id.c_str(),
                b ? b->target.c_str() : "?");
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
  if (d.send_best && !t->final_sent) {
    auto best = t->fork->best_branch();
    int status = t->fork->best_status();
    t->final_sent = true;
    t->failed_upstream = true;
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
    PLOG_INFO("route: call-id=%s failed with %d", t->call_id.c_str(), status);
    release_relay(t, "not answered");
  }
}

void Router::release_relay(Txn *t, const char *why) {
  // The call is over for the caller, even while cancelled branches still have
  // to answer (a silent device may take 32 s): its relay ports go back now.
  // From here on the Txn no longer touches the relay: the caller may already
  // be trying again with the same Call-ID (a retry with credentials, RFC 3261
  // §22.2), and that call's relay is not this one's to change.
  if (!t->relayed || t->answered || !proxy_.relay()) return;
  proxy_.relay()->end_call(t->call_id, why);
  t->relayed = false;
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
  const bool late_2xx = (t->relayed && t->answered && b->index != t->winner) ||
                        (t->dialog_forming && t->failed_upstream && !t->answered);
  if (late_2xx && status >= 200 && status < 300) {
    // Two devices answered at once: the caller's media is joined to the
    // winner's in the relay; a second dialog would have none (issue 3). Or the
    // device answered after the caller got its final failure (the fork timed
    // out, a 6xx, the caller cancelled), when no 2xx can reach it any more
    // (RFC 3261 §17.2.1). Either way the device's dialog is ended here.
    if (!t->fork->branch_final(b->index)) {
      t->fork->on_response(b->index, status);  // the branch is done either way
      self->hang_up_late_answer(t, b, sip);
      if (t->relayed) self->proxy_.relay()->branch_gone(t->call_id, b->index);
    }
    if (response) msg_destroy(response);
    self->maybe_finish(t);
    return 0;
  }
  if (t->invite && status >= 200 && status < 300 && t->fork->branch_final(b->index)) {
    // A retransmitted 2xx: the caller may not have got the first one (§16.7 step 5).
    // It carries the SDP the first one went up with; a refused one stays here.
    size_t len = 0;
    if (response && b->refusal.empty()) {
      if (!sdp_body(sip_object(response), &len))
        self->forward_response(t, response);
      else if (!b->answer_sdp.empty())
        replace_sdp(response, b->answer_sdp), self->forward_response(t, response);
      else if (!t->relayed && t->reinvite_from_caller < 0)
        self->forward_response(t, response);
    }
    if (response) msg_destroy(response);
    return 0;
  }
  bool absorb = false;
  if (response && (t->relayed || t->reinvite_from_caller >= 0) &&
      !self->relay_response(t, b, response, status, &absorb)) {
    self->refuse_answer(t, b, sip);
    msg_destroy(response);
    self->maybe_finish(t);
    return 0;
  }
  ForkAggregator::Decision d =
      sip ? t->fork->on_response(b->index, status) : t->fork->on_branch_failed(b->index);
  if (absorb) d.forward = false;
  if (t->relayed && status >= 300) self->proxy_.relay()->branch_gone(t->call_id, b->index);
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
    PLOG_INFO("route: call-id=%s cancelled by the caller", t->call_id.c_str());
    t->final_sent = true;
    t->failed_upstream = !t->answered;
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
    self->release_relay(t, "cancelled by the caller");
    return 200;
  }
  return 0;
}

void Router::on_fork_timeout(su_root_magic_t *, su_timer_t *, void *magic) {
  auto *t = static_cast<Txn *>(magic);
  if (t->final_sent) return;
  PLOG_INFO("route: call-id=%s fork timeout", t->call_id.c_str());
  ForkAggregator::Decision d = t->fork->on_timeout();
  if (d.cancel_others) t->router->cancel_pending(t, kReasonForkTimeout);
  t->router->apply(t, nullptr, d, nullptr);
  t->router->maybe_finish(t);
}

void Router::maybe_finish(Txn *t) {
  if (!t->fork || !t->fork->all_final()) return;
  if (!t->final_sent && t->irq_alive) return;
  destroy(t);
}

void Router::hang_up_late_answer(Txn *t, Branch *b, const sip_t *rsp, const char *reason) {
  if (!rsp->sip_contact || !rsp->sip_from || !rsp->sip_to || !rsp->sip_call_id || !rsp->sip_cseq)
    return;
  const bool refused = reason != nullptr;  // not late: its answer was refused
  if (!reason && t->answered) reason = kReasonAnsweredElsewhere;
  if (refused)
    PLOG_INFO("route: call-id=%s %s: ACK and BYE from the proxy", t->call_id.c_str(),
              b->target.empty() ? "the answerer" : b->target.c_str());
  else
    PLOG_INFO("route: call-id=%s %s answered too late: ACK and BYE from the proxy",
              t->call_id.c_str(), b->target.c_str());
  su_home_t home[1] = {SU_HOME_INIT(home)};
  // §12.1.2: the route set is the 2xx's Record-Route in reverse, minus our own
  // entries (we are the next hop ourselves).
  std::vector<const sip_record_route_t *> rrs;
  for (const sip_record_route_t *r = rsp->sip_record_route; r; r = r->r_next)
    if (!proxy_.is_us(r->r_url)) rrs.push_back(r);
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
    msg_t *msg = nta_msg_create(proxy_.agent(), 0);
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
        nta_outgoing_mcreate(proxy_.agent(), ack ? nullptr : on_late_bye_response, nullptr,
                             to_device, msg, TAG_IF(ack, NTATAG_STATELESS(1)), TAG_END());
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

bool Router::relay_response(Txn *t, Branch *b, msg_t *response, int status, bool *absorb) {
  if (status < 180 || status >= 300) return true;
  size_t len = 0;
  const char *answer = sdp_body(sip_object(response), &len);
  if (!answer) return true;
  std::string error, sdp;
  if (t->reinvite_from_caller >= 0) {
    if (status < 200) return true;  // the answer that counts is the 2xx's
    // The answer comes from the side that did not send the offer.
    auto out = proxy_.relay()->pass_sdp(t->call_id, t->reinvite_from_caller == 0,
                                        std::string_view(answer, len), &error);
    if (out) sdp = *out;
  } else {
    MediaRelay::Answer a = proxy_.relay()->answer_from_branch(
        t->call_id, b->index, std::string_view(answer, len), status >= 200);
    error = a.error;
    sdp = a.sdp;
    // The caller sees one early dialog (the first 18x with SDP); later early
    // answers only add their device to the fork.
    if (error.empty() && !a.forward) *absorb = true;
  }
  if (error.empty()) {
    replace_sdp(response, sdp);
    if (status >= 200) b->answer_sdp = sdp;
    return true;
  }
  // An answer the relay cannot use (RFC 3264 §6: more m= lines than the offer,
  // lines that match none, junk) never goes up as the device wrote it: the
  // caller would send its media straight to the device, past the relay.
  const std::string who =
      "branch " + std::to_string(b->index) + (b->aor.empty() ? std::string() : " (" + b->aor + ")");
  if (status < 200) {
    // The 18x still goes up, without its SDP: the caller hears the device ring
    // (§16.7 step 5 forwards provisional responses), as for any 180 without
    // early media; the branch gets no early media. Its offer stays pointed at
    // its relay ports, so a usable 2xx can still connect it.
    PLOG_WARN("relay: call-id=%s %s: unusable early answer, forwarded without SDP: %s",
              t->call_id.c_str(), who.c_str(), error.c_str());
    remove_body(response);
    return true;
  }
  b->refusal = who + ": " + error;
  PLOG_WARN(
      "relay: call-id=%s %s: unusable answer in the 2xx: the proxy ends that dialog (488): %s",
      t->call_id.c_str(), who.c_str(), error.c_str());
  return false;
}

void Router::refuse_answer(Txn *t, Branch *b, const sip_t *rsp) {
  // A proxy cannot refuse a 2xx (RFC 3261 §16.7 step 5 forwards them all), but
  // this one would take the media past the relay. So it is ended as a late
  // answer is (ACK, then BYE from the proxy), and the branch fails with 488:
  // the caller hears "Not Acceptable Here" with the Warning if nobody else
  // answers, and another device may still answer.
  const std::string reason = siptext::reason(488, "Not Acceptable Here");
  hang_up_late_answer(t, b, rsp, reason.c_str());
  if (t->reinvite_from_caller < 0) {
    proxy_.relay()->branch_gone(t->call_id, b->index);
  } else {
    // A re-INVITE or UPDATE: the simplest consistent outcome. Its answerer's
    // side of the call is gone (BYE), so the call is: the relay frees its
    // ports and the dialog is forgotten, so the sender, which gets the 488,
    // learns with a 481 on its next request that the dialog is over
    // (§12.2.1.2). Keeping the old media instead would leave the answerer
    // believing in a session the relay does not carry.
    const bool from_caller = t->reinvite_from_caller == 1;
    const std::string answerer_tag = rsp->sip_to && rsp->sip_to->a_tag ? rsp->sip_to->a_tag : "";
    dialogs_.remove(t->call_id, from_caller ? t->from_tag : answerer_tag,
                    from_caller ? answerer_tag : t->from_tag);
    if (!dialogs_.has_confirmed_call(t->call_id))
      proxy_.relay()->end_call(t->call_id, "unusable answer to a re-INVITE");
  }
  apply(t, b, t->fork->on_response(b->index, 488), nullptr);
}

void Router::destroy(Txn *t) {
  // A call that ends without an answer frees its relay here; an answered one
  // keeps it until BYE (or the relay's inactivity timeout).
  if (t->relayed && !t->answered && proxy_.relay())
    proxy_.relay()->end_call(t->call_id, "not answered");
  if (t->records_dialog) dialogs_.drop_early(t->call_id, t->from_tag);
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
  std::string out = "{\"calls\":[";
  bool first = true;
  for (const auto &[raw, t] : txns_) {
    if (!t->dialog_forming || t->final_sent) continue;
    out += first ? "" : ",";
    first = false;
    out += "{\"call_id\":" + json::quote(t->call_id) + ",\"from\":" + json::quote(t->from) +
           ",\"to\":" + json::quote(t->to) +
           ",\"state\":\"ringing\",\"branches\":" + std::to_string(t->branches.size()) +
           ",\"age\":" + std::to_string(now - t->started) + "}";
  }
  dialogs_.for_each([&](const DialogTable::Dialog &d) {
    if (!d.confirmed || !d.invite) return;
    out += first ? "" : ",";
    first = false;
    out += "{\"call_id\":" + json::quote(d.call_id) + ",\"from\":" + json::quote(d.from) +
           ",\"to\":" + json::quote(d.to) +
           ",\"state\":\"answered\",\"age\":" + std::to_string(now - d.since) + "}";
  });
  return out + "]}";
}

void Router::expire_dialogs(int64_t now) {
  // A call without BYE for 12 hours is gone (phone unplugged mid-call); an early
  // dialog normally ends with its transaction, this only catches leftovers.
  dialogs_.expire(now, 12 * 3600, 2 * 3600);
}

}  // namespace portier::proxy
