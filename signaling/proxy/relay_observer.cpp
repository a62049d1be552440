#include "proxy/relay_observer.h"

#include <sofia-sip/sip_header.h>
#include <strings.h>

#include "common/log.h"
#include "proxy/media_relay.h"
#include "proxy/sip_body.h"

namespace portier::proxy {
namespace {

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

}  // namespace

CallObserver::Verdict RelayObserver::on_fork(const Call &call, msg_t *invite, bool *watching) {
  *watching = false;
  const auto offer = sdp_body(sip_object(invite));
  if (!offer || call.call_id.empty()) return {};
  Verdict v;
  if (!relay_.start_call(call.call_id, *offer, &v.detail, {call.caller_aor, call.caller_source},
                         &v.refusal)) {
    PLOG_WARN("relay: call-id=%s refused (%s): %s", call.call_id.c_str(), refusal_name(v.refusal),
              v.detail.c_str());
    return v;
  }
  *watching = true;
  return {};
}

CallObserver::Verdict RelayObserver::on_branch_request(const Call &call, size_t branch,
                                                       msg_t *request) {
  Verdict v;
  auto offer = relay_.offer_for_branch(call.call_id, branch, &v.detail, &v.refusal);
  if (!offer) {
    PLOG_WARN("relay: call-id=%s branch %zu: %s", call.call_id.c_str(), branch, v.detail.c_str());
    return v;
  }
  replace_sdp(request, *offer);
  drop_100rel(request);
  return {};
}

CallObserver::ResponseVerdict RelayObserver::on_branch_response(const Call &call, size_t branch,
                                                                int status, msg_t *response) {
  ResponseVerdict r;
  const bool final = status >= 200;
  if (status < 180 || status >= 300) return r;
  // Two devices answered at once: the caller's media is joined to the
  // winner's; a second dialog would have none.
  if (final && call.answered_by && *call.answered_by != branch) {
    r.action = Action::Drop;
    return r;
  }
  const auto answer = sdp_body(sip_object(response));
  if (!answer) return r;
  MediaRelay::Answer a = relay_.answer_from_branch(call.call_id, branch, *answer, final);
  if (a.error.empty()) {
    replace_sdp(response, a.sdp);
    // The caller sees one early dialog (the first 18x with SDP); later early
    // answers only add their device to the fork.
    if (!a.forward) r.action = Action::Absorb;
    return r;
  }
  // An answer the relay cannot use (RFC 3264 §6: more m= lines than the offer,
  // lines that match none, junk) never goes up as the device wrote it: the
  // caller would send its media straight to the device, past the relay.
  if (!final) {
    // The 18x still goes up, without its SDP: the caller hears the device ring
    // (§16.7 step 5 forwards provisional responses), as for any 180 without
    // early media; the branch gets no early media. Its offer stays pointed at
    // its relay ports, so a usable 2xx can still connect it.
    PLOG_WARN("relay: call-id=%s branch %zu: unusable early answer, forwarded without SDP: %s",
              call.call_id.c_str(), branch, a.error.c_str());
    remove_body(response);
    return r;
  }
  PLOG_WARN(
      "relay: call-id=%s branch %zu: unusable answer in the 2xx: the proxy ends that dialog "
      "(488): %s",
      call.call_id.c_str(), branch, a.error.c_str());
  r.action = Action::Refuse;
  r.verdict = {Refusal::BadSdp, a.error};
  return r;
}

void RelayObserver::on_branch_end(const Call &call, size_t branch) {
  relay_.branch_gone(call.call_id, branch);
}

CallObserver::Verdict RelayObserver::on_dialog_offer(const Call &call, bool from_caller,
                                                     msg_t *request, bool *watching) {
  *watching = relay_.has_call(call.call_id);
  const auto offer = *watching ? sdp_body(sip_object(request)) : std::nullopt;
  if (!offer) return {};
  Verdict v;
  auto sdp = relay_.pass_sdp(call.call_id, from_caller, *offer, &v.detail);
  if (!sdp) {
    const sip_t *sip = sip_object(request);
    PLOG_WARN("relay: call-id=%s %s offer from the %s refused: %s", call.call_id.c_str(),
              sip->sip_request ? sip->sip_request->rq_method_name : "?",
              from_caller ? "caller" : "callee", v.detail.c_str());
    v.refusal = Refusal::BadSdp;
    return v;
  }
  replace_sdp(request, *sdp);
  return {};
}

CallObserver::Verdict RelayObserver::on_dialog_answer(const Call &call, bool offer_from_caller,
                                                      msg_t *response) {
  const auto answer = sdp_body(sip_object(response));
  if (!answer) return {};
  Verdict v;
  // The answer comes from the side that did not send the offer.
  auto sdp = relay_.pass_sdp(call.call_id, !offer_from_caller, *answer, &v.detail);
  if (!sdp) {
    PLOG_WARN("relay: call-id=%s unusable answer in the 2xx: the proxy ends that dialog (488): %s",
              call.call_id.c_str(), v.detail.c_str());
    v.refusal = Refusal::BadSdp;
    return v;
  }
  replace_sdp(response, *sdp);
  return {};
}

void RelayObserver::on_dialog_ack(const Call &call, bool from_caller, msg_t *ack) {
  // The answer to an offer a 2xx carried (a re-INVITE without SDP, RFC 3264
  // §4) goes through the relay like any other. One the relay cannot use goes
  // on without its SDP, so the other side, left without an answer, ends the
  // call (RFC 3261 §13.3.1.4) rather than sending its media past the relay.
  const auto answer = sdp_body(sip_object(ack));
  if (!answer || !relay_.has_call(call.call_id)) return;
  std::string error;
  auto sdp = relay_.pass_sdp(call.call_id, from_caller, *answer, &error);
  if (sdp) {
    replace_sdp(ack, *sdp);
    return;
  }
  PLOG_WARN("relay: call-id=%s ACK answer refused, forwarded without SDP: %s", call.call_id.c_str(),
            error.c_str());
  remove_body(ack);
}

void RelayObserver::on_end(const Call &call, const char *why) {
  relay_.end_call(call.call_id, why);
}

}  // namespace portier::proxy
