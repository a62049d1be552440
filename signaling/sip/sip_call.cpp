#include "sip/sip_call.h"

#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag_io.h>

#include <ctime>

#include "common/log.h"
#include "sip/sip_message.h"
#include "common/sip_text.h"

namespace portier::sip {
namespace {

constexpr const char *kSdp = "application/sdp";

uint64_t new_session_id() { return static_cast<uint64_t>(std::time(nullptr)); }

}  // namespace

Call::Call(Account &account, const char *agent, Hooks hooks)
    : account_(account), agent_(agent), hooks_(std::move(hooks)) {}

ApplyMedia Call::media() const {
  return [this](const std::vector<sdp::Agreed> &agreed, std::string *error) {
    return !hooks_.media || hooks_.media(agreed, error);
  };
}

bool Call::dial(const std::string &target, std::string *error) {
  if (in_call(state())) {
    *error = std::string("busy: ") + call_state_name(state());
    return false;
  }
  std::optional<sdp::LocalMedia> ours = hooks_.local ? hooks_.local(false) : std::nullopt;
  std::optional<std::string> offer;
  if (ours) offer = leg_.dial(std::move(*ours), new_session_id());
  if (!offer) {
    *error = "no media to offer";
    return false;
  }
  remote_ = target;
  remote_target_.clear();
  call_id_.clear();  // nua picks it: the first response tells
  nh_ = nua_handle(account_.nua(), nullptr, SIPTAG_TO_STR(target.c_str()), TAG_END());
  nua_invite(nh_, SIPTAG_CONTENT_TYPE_STR(kSdp), SIPTAG_PAYLOAD_STR(offer->c_str()),
             TAG_IF(!contact().empty(), SIPTAG_CONTACT_STR(contact().c_str())), TAG_END());
  return true;
}

bool Call::refuse_offerless(nua_handle_t *nh, const sip_t *sip) {
  if (sipmsg::body_is(sip, kSdp)) return false;
  refuse(nh, 488, "Not Acceptable Here", "SDP offer needed");
  return true;
}

bool Call::accept(nua_handle_t *nh, const sip_t *sip, const std::string &who, bool early,
                  std::string *error) {
  std::optional<sdp::LocalMedia> ours = hooks_.local ? hooks_.local(early) : std::nullopt;
  if (!ours) {
    *error = "no media to answer with";
    return false;
  }
  const std::optional<std::string> answer =
      leg_.accept(sipmsg::body(sip), std::move(*ours), new_session_id(), early, media(), error);
  if (!answer) return false;
  nh_ = nh;
  call_id_ = sip && sip->sip_call_id && sip->sip_call_id->i_id ? sip->sip_call_id->i_id : "";
  remote_ = who;
  remote_target_ = sipmsg::contact_uri(sip);
  if (!early) {
    nua_respond(nh, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR(kSdp), SIPTAG_PAYLOAD_STR(answer->c_str()),
                TAG_IF(!contact().empty(), SIPTAG_CONTACT_STR(contact().c_str())), TAG_END());
    return true;
  }
  // Early media (RFC 3960 gateway model): our answer in a 183 while it rings,
  // so the caller's media reaches us before anyone answers.
  nua_respond(nh, SIP_180_RINGING,
              TAG_IF(!contact().empty(), SIPTAG_CONTACT_STR(contact().c_str())), TAG_END());
  nua_respond(nh, SIP_183_SESSION_PROGRESS, SIPTAG_CONTENT_TYPE_STR(kSdp),
              SIPTAG_PAYLOAD_STR(answer->c_str()),
              TAG_IF(!contact().empty(), SIPTAG_CONTACT_STR(contact().c_str())), TAG_END());
  leg_.early_answer_sent();
  return true;
}

bool Call::answer(std::string *error) {
  std::optional<sdp::LocalMedia> ours = hooks_.local ? hooks_.local(false) : std::nullopt;
  if (!ours) {
    *error = "no media to answer with";
    return false;
  }
  const std::optional<std::string> answer = leg_.answer(std::move(*ours), media(), error);
  if (!answer) return false;
  nua_respond(nh_, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR(kSdp), SIPTAG_PAYLOAD_STR(answer->c_str()),
              TAG_IF(!contact().empty(), SIPTAG_CONTACT_STR(contact().c_str())), TAG_END());
  return true;
}

void Call::refuse(nua_handle_t *nh, int status, const char *phrase, const std::string &warning) {
  if (warning.empty())
    nua_respond(nh, status, phrase, TAG_END());
  else
    nua_respond(nh, status, phrase,
                SIPTAG_WARNING_STR(siptext::warning(399, agent_, warning).c_str()), TAG_END());
  account_.destroy_when_terminated(nh);
}

CallLeg::Hangup Call::hangup() {
  const CallLeg::Hangup how = leg_.hangup();
  switch (how) {
    case CallLeg::Hangup::none:
      return how;
    case CallLeg::Hangup::cancel:
      nua_cancel(nh_, TAG_END());
      break;
    case CallLeg::Hangup::bye:
      nua_bye(nh_, TAG_END());
      break;
    case CallLeg::Hangup::decline:
      nua_respond(nh_, SIP_486_BUSY_HERE, TAG_END());
      break;
  }
  release();
  return how;
}

// The handle is the account's to destroy once nua is done with it
// (Account::destroy_when_terminated): the call has no other end.
void Call::release() {
  if (nh_) account_.destroy_when_terminated(nh_);
  nh_ = nullptr;
}

void Call::end(CallEnd why, CallState was, int status, const char *phrase, const sip_t *sip) {
  release();
  if (hooks_.ended) hooks_.ended({why, was, status, phrase ? phrase : "", sip});
}

bool Call::handle(nua_event_t event, int status, const char *phrase, nua_handle_t *nh,
                  const sip_t *sip, tagi_t *tags) {
  if (!owns(nh)) return false;
  const CallState was = state();
  switch (event) {
    case nua_r_invite:
      on_response(status, phrase, sip);
      return true;
    case nua_i_invite:
      on_reinvite(sip);
      return true;
    case nua_i_bye:
      if (leg_.ended(CallEnd::bye)) end(CallEnd::bye, was, 0, nullptr, sip);
      return true;
    case nua_i_cancel:
      if (leg_.ended(CallEnd::cancel)) end(CallEnd::cancel, was, 0, nullptr, sip);
      return true;
    case nua_i_state: {
      int callstate = nua_callstate_init;
      tl_gets(tags, NUTAG_CALLSTATE_REF(callstate), TAG_END());
      if (callstate == nua_callstate_terminated && leg_.ended(CallEnd::terminated))
        end(CallEnd::terminated, was, status, phrase, sip);
      return true;
    }
    default:
      return false;
  }
}

void Call::on_response(int status, const char *phrase, const sip_t *sip) {
  if (call_id_.empty() && sip && sip->sip_call_id && sip->sip_call_id->i_id)
    call_id_ = sip->sip_call_id->i_id;
  if (status > 100 && status < 300 && !sipmsg::contact_uri(sip).empty())
    remote_target_ = sipmsg::contact_uri(sip);
  const CallState was = state();
  const std::string answer = sipmsg::body_is(sip, kSdp) ? sipmsg::body(sip) : "";
  std::string error;
  const CallLeg::Response r = leg_.on_response(status, answer, media(), &error);
  if (!error.empty())
    PLOG_WARN("%s: unusable SDP answer from %s (%s): ignored", agent_, remote_.c_str(),
              error.c_str());
  switch (r) {
    case CallLeg::Response::nothing:
      return;
    case CallLeg::Response::challenged:
      break;
    case CallLeg::Response::early:
      if (hooks_.early) hooks_.early(status);
      return;
    case CallLeg::Response::answered:
      if (hooks_.answered) hooks_.answered(sip);
      return;
    case CallLeg::Response::rejected:
      PLOG_INFO("%s: call to %s not answered: %d %s", agent_, remote_.c_str(), status,
                phrase ? phrase : "");
      end(CallEnd::rejected, was, status, phrase, sip);
      return;
  }
  // A challenge (RFC 3261 §22.2): answered once per new challenge
  // (Account::credentials); the INVITE goes again with the same Call-ID and
  // a higher CSeq, or nua sends it again itself.
  tag_type_t tag;
  std::string header;
  switch (account_.credentials(nh_, sip, leg_.auth_tries(), "INVITE", remote_, &tag, &header)) {
    case Account::Auth::refused:  // the account logged why
      leg_.ended(CallEnd::unauthenticated);
      end(CallEnd::unauthenticated, was, status, phrase, sip);
      return;
    case Account::Auth::restarted:
      return;
    case Account::Auth::resend:
      break;
  }
  const std::string offer = leg_.offer();
  leg_.resent();
  nua_invite(nh_, SIPTAG_CONTENT_TYPE_STR(kSdp), SIPTAG_PAYLOAD_STR(offer.c_str()),
             TAG_IF(!contact().empty(), SIPTAG_CONTACT_STR(contact().c_str())), tag,
             tag_str_v(header.c_str()), TAG_END());
}

// A re-INVITE in our call (a session refresh, or the peer moved its media).
// Only through the proxy (the dialog is record-routed): anyone else who learnt
// the dialog's ids would move our media to himself.
void Call::on_reinvite(const sip_t *sip) {
  std::string source;
  if (!account_.admit_in_dialog(nh_, "INVITE", &source)) return;
  const std::string contact = sipmsg::contact_uri(sip);
  if (!contact.empty()) remote_target_ = contact;  // a target refresh (RFC 3261 §12.2.2)
  std::optional<sdp::LocalMedia> ours;
  if (sipmsg::body_is(sip, kSdp) && hooks_.local)
    ours = hooks_.local(state() != CallState::Answered);
  if (!ours) {
    nua_respond(nh_, SIP_200_OK, TAG_END());
    return;
  }
  std::string error;
  const std::optional<std::string> answer =
      leg_.answer_reoffer(sipmsg::body(sip), std::move(*ours), media(), &error);
  if (!answer) {
    PLOG_WARN("%s: re-INVITE refused: %s", agent_, error.c_str());
    nua_respond(nh_, 488, "Not Acceptable Here",
                SIPTAG_WARNING_STR(siptext::warning(399, agent_, error).c_str()), TAG_END());
    return;
  }
  nua_respond(nh_, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR(kSdp), SIPTAG_PAYLOAD_STR(answer->c_str()),
              TAG_END());
}

}  // namespace portier::sip
