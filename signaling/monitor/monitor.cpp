#include "monitor/monitor.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag_io.h>

#include "common/json.h"
#include "common/log.h"
#include "common/sip_text.h"
#include "sip/sip_message.h"

namespace portier::monitor {
namespace {

using sipmsg::body;
using sipmsg::body_is;

constexpr int kMaxKeyframeRequests = 5;
constexpr int kKeyframeRetryMs = 1000;
constexpr int kDtmfInfoDurationMs = 100;

bool in_call(CallState s) {
  return s == CallState::Ringing || s == CallState::Early || s == CallState::Answered ||
         s == CallState::Calling;
}

std::string json_ms(int64_t ms) { return ms < 0 ? "null" : std::to_string(ms); }

}  // namespace

Monitor::Monitor(MonitorSettings settings, EventSink &events)
    : settings_(std::move(settings)),
      events_(events),
      // No 100rel: a forking proxy passes on one early dialog and absorbs the
      // other devices' 183s, so a reliable 183 from them would never be
      // PRACKed and nua would hold their 200 back (RFC 3262 §3) until the
      // INVITE timed out.
      account_(
          settings_.account,
          {"monitor", "calls and door alarms", "portier-monitor/0.1", "INFO, MESSAGE", "timer"},
          {[this](nua_event_t event, int status, const char *phrase, nua_handle_t *nh,
                  const sip_t *sip, tagi_t *tags) { handle(event, status, phrase, nh, sip, tags); },
           [this](bool first) { on_registered(first); },
           [this](int status, const char *phrase, bool refused) {
             return registration_failed(status, phrase, refused);
           },
           [this] {
             if (on_change_) on_change_();
           },
           [this](const char *method, const std::string &source, const std::string &why) {
             events_.add("refused",
                         {field("method", method), field("source", source), field("reason", why)});
           }}) {}

Monitor::~Monitor() {
  on_change_ = nullptr;
  if (keyframe_timer_) g_source_remove(keyframe_timer_);
  media_.reset();
}

void Monitor::emit(const std::string &kind, std::vector<EventField> fields) {
  // The call's id on the call's lines (the last one on its "ended" line).
  if (!call_id_.empty() && (in_call(state_) || kind == "ended"))
    fields.insert(fields.begin(), field("call_id", call_id_));
  events_.add(kind, fields);
  if (on_change_) on_change_();
}

int64_t Monitor::since_invite_ms() const { return (g_get_monotonic_time() - invite_us_) / 1000; }

bool Monitor::start(su_root_t *root, std::string *error) { return account_.start(root, error); }

void Monitor::stop(std::function<void()> done) {
  if (in_call(state_)) hangup();
  account_.stop(std::move(done));
}

// Our call's handle is ours no longer; the account destroys it when nua is
// done with it (sip::Account::destroy_when_terminated).
void Monitor::release(nua_handle_t *nh) {
  if (nh == call_) call_ = nullptr;
  account_.destroy_when_terminated(nh);
}

void Monitor::handle(nua_event_t event, int status, const char *phrase, nua_handle_t *nh,
                     const sip_t *sip, tagi_t *tags) {
  switch (event) {
    case nua_i_invite:
      if (nh == call_) {
        on_reinvite(nh, sip);
      } else {
        // A call straight to our contact, not through the proxy, could name
        // anyone as caller (RFC 3325 §3): 403.
        // Without the proxy's proof of the caller's identity, a door is
        // anyone's claim (issue 11).
        std::string source, why, who;
        if (account_.admit(nh, "INVITE", &source, &why, &who)) {
          on_incoming_invite(nh, sip, who);
        } else {
          events_.add("refused", {field("source", source), field("reason", why)});
        }
      }
      break;
    case nua_i_message: {
      // Only a door's alarm, through the proxy, with its proof of who sent it.
      std::string source, why, who;
      if (account_.admit(nh, "MESSAGE", &source, &why, &who))
        on_message(nh, sip, who);
      else
        events_.add("refused", {field("source", source), field("reason", why)});
      break;
    }
    case nua_r_invite:
      if (nh == call_) on_invite_response(status, phrase, nh, sip);
      break;
    case nua_i_cancel:
      if (nh == call_) on_cancel(sip);
      break;
    case nua_i_bye:
      if (nh == call_) call_ended("remote hung up");
      break;
    case nua_i_info:
      on_info(nh, sip);
      break;
    case nua_r_info:
      if (status >= 200) on_info_response(status, phrase, nh, sip);
      break;
    case nua_r_message:
      on_message_response(status, phrase, nh, sip);
      break;
    case nua_i_state: {
      int state = nua_callstate_init;
      tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
      if (state != nua_callstate_terminated) break;
      if (nh == call_ && resent_with_auth_) {
        // The challenged INVITE is over; the one with credentials goes on.
        resent_with_auth_ = false;
        break;
      }
      // call_ended releases the handle: the account destroys it after us.
      if (nh == call_) call_ended(state_ == CallState::Answered ? "terminated" : "failed");
      break;
    }
    default:
      if (status >= 400)
        PLOG_DEBUG("monitor: %s: %d %s", nua_event_name(event), status, phrase ? phrase : "");
      break;
  }
}

void Monitor::on_registered(bool first) {
  reg_backoff_s_ = 0;
  if (first) emit("registered", {field("aor", settings_.account.aor)});
}

// nua gives up on a failed registration; the monitor tries again, waiting
// 2, 4, 8 ... up to 60 s (the proxy may be restarting, or its password fixed).
int Monitor::registration_failed(int status, const char *phrase, bool refused) {
  if (account_.registered() || reg_backoff_s_ == 0)
    emit("registration_failed", {field("aor", settings_.account.aor), field("status", status)});
  reg_backoff_s_ = reg_backoff_s_ == 0 ? 2 : std::min(60, reg_backoff_s_ * 2);
  // One line; a refusal says why (sip::Account::registration()).
  if (refused)
    PLOG_ERROR("monitor %s: registration %s (%d %s); registering again in %d s",
               settings_.account.aor.c_str(), account_.registration().c_str(), status,
               phrase ? phrase : "", reg_backoff_s_);
  else
    PLOG_WARN("monitor %s: %s; registering again in %d s", settings_.account.aor.c_str(),
              account_.registration().c_str(), reg_backoff_s_);
  return reg_backoff_s_;
}

bool Monitor::new_media(std::string *error) {
  MonitorMedia::Callbacks cb;
  cb.first_video_rtp = [this] { on_first_video_rtp(); };
  cb.first_frame = [this](int w, int h) { on_first_frame(w, h); };
  cb.display_sink = display_sink_;
  media_ = std::make_unique<MonitorMedia>(settings_.media, cb);
  media_->set_mic(mic_on_);
  first_rtp_ms_ = first_frame_ms_ = first_frame_wall_ms_ = -1;
  keyframe_requests_ = 0;
  actions_sent_ = 0;
  info_queue_.clear();
  info_in_flight_ = false;
  sdp_session_ = static_cast<uint64_t>(g_get_real_time() / G_USEC_PER_SEC);
  sdp_version_ = 0;
  return media_->open(error);
}

void Monitor::on_incoming_invite(nua_handle_t *nh, const sip_t *sip, const std::string &who) {
  const std::string cid =
      sip && sip->sip_call_id && sip->sip_call_id->i_id ? sip->sip_call_id->i_id : "";
  if (in_call(state_)) {
    PLOG_INFO("monitor: call from %s refused: busy (%s)", who.c_str(), call_state_name(state_));
    nua_respond(nh, SIP_486_BUSY_HERE, TAG_END());
    release(nh);
    events_.add("busy", {field("call_id", cid), field("from", who)});
    return;
  }
  std::string error;
  if (!body_is(sip, "application/sdp")) {
    // An offerless INVITE would need our offer in the 183; doors offer.
    nua_respond(nh, 488, "Not Acceptable Here",
                SIPTAG_WARNING_STR(siptext::warning(399, "monitor", "SDP offer needed").c_str()),
                TAG_END());
    release(nh);
    events_.add("refused",
                {field("call_id", cid), field("from", who), field("why", "no SDP offer")});
    return;
  }
  const std::string offer = body(sip);
  std::optional<sdp::Answered> ans;
  if (new_media(&error))
    ans = sdp::answer_offer(offer, media_->local(sdp_session_, ++sdp_version_, true), &error);
  if (!ans) {
    PLOG_WARN("monitor: call from %s refused: %s", who.c_str(), error.c_str());
    nua_respond(nh, 488, "Not Acceptable Here",
                SIPTAG_WARNING_STR(siptext::warning(399, "monitor", error).c_str()), TAG_END());
    release(nh);
    media_.reset();
    events_.add("refused", {field("call_id", cid), field("from", who), field("why", error)});
    return;
  }
  call_ = nh;
  call_id_ = cid;
  incoming_ = true;
  peer_ = who;
  remote_target_ = sipmsg::contact_uri(sip);
  reason_.clear();
  remote_offer_ = offer;
  call_auth_tries_ = 0;
  resent_with_auth_ = false;
  invite_us_ = g_get_monotonic_time();
  nua_respond(nh, SIP_180_RINGING, TAG_END());
  state_ = CallState::Ringing;
  emit("ringing", {field("from", who)});
  if (!media_->apply(ans->streams, &error)) {
    PLOG_WARN("monitor: media: %s", error.c_str());
    nua_respond(nh, 488, "Not Acceptable Here", TAG_END());
    call_ended("error: " + error);
    return;
  }
  // Early media (RFC 3960 gateway model): the answer in a 183, recvonly, so
  // the door's video and voice reach us before anyone answers.
  nua_respond(nh, SIP_183_SESSION_PROGRESS, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
              SIPTAG_PAYLOAD_STR(ans->sdp.c_str()), TAG_END());
  state_ = CallState::Early;
  emit("early", {field("from", who), field("since_invite_ms", since_invite_ms())});
}

// A re-INVITE in our call (a session refresh, or the door moved its media).
void Monitor::on_reinvite(nua_handle_t *nh, const sip_t *sip) {
  // Only through the proxy (the dialog is record-routed): anyone else who
  // learnt the dialog's ids would move our media to himself.
  std::string source;
  if (!account_.admit_in_dialog(nh, "INVITE", &source)) {
    events_.add("refused", {field("source", source), field("reason", "not through the proxy")});
    return;
  }
  if (!sipmsg::contact_uri(sip).empty()) remote_target_ = sipmsg::contact_uri(sip);  // §12.2.2
  if (!body_is(sip, "application/sdp") || !media_) {
    nua_respond(nh, SIP_200_OK, TAG_END());
    return;
  }
  std::string error;
  const bool early = state_ != CallState::Answered;
  auto ans =
      sdp::answer_offer(body(sip), media_->local(sdp_session_, ++sdp_version_, early), &error);
  if (!ans || !media_->apply(ans->streams, &error)) {
    PLOG_WARN("monitor: re-INVITE refused: %s", error.c_str());
    nua_respond(nh, 488, "Not Acceptable Here",
                SIPTAG_WARNING_STR(siptext::warning(399, "monitor", error).c_str()), TAG_END());
    return;
  }
  nua_respond(nh, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
              SIPTAG_PAYLOAD_STR(ans->sdp.c_str()), TAG_END());
}

Outcome Monitor::answer() {
  if (!incoming_ || (state_ != CallState::Ringing && state_ != CallState::Early))
    return Outcome::fail(std::string("nothing to answer (") + call_state_name(state_) + ")");
  std::string error;
  // The same offer answered again, now sendrecv: a new version of our SDP
  // (RFC 3264 §8), which the proxy's relay and the door take from the 200.
  auto ans =
      sdp::answer_offer(remote_offer_, media_->local(sdp_session_, ++sdp_version_, false), &error);
  if (!ans || !media_->apply(ans->streams, &error)) {
    PLOG_WARN("monitor: cannot answer: %s", error.c_str());
    return Outcome::fail("cannot answer: " + error);
  }
  nua_respond(call_, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
              SIPTAG_PAYLOAD_STR(ans->sdp.c_str()), TAG_END());
  state_ = CallState::Answered;
  emit("answered", {field("from", peer_), field("since_invite_ms", since_invite_ms())});
  return Outcome::done("answered");
}

Outcome Monitor::decline() {
  if (!incoming_ || (state_ != CallState::Ringing && state_ != CallState::Early))
    return Outcome::fail(std::string("nothing to decline (") + call_state_name(state_) + ")");
  // 486, not 603: a 6xx would end the ringing of every other device of the
  // home too (RFC 3261 §16.7 step 5).
  nua_respond(call_, SIP_486_BUSY_HERE, TAG_END());
  call_ended(kDeclined);
  return Outcome::done("declined");
}

Outcome Monitor::hangup() {
  switch (state_) {
    case CallState::Ringing:
    case CallState::Early:
      if (incoming_) return decline();
      nua_cancel(call_, TAG_END());
      call_ended("cancelled");
      return Outcome::done("cancelled");
    case CallState::Calling:
      nua_cancel(call_, TAG_END());
      call_ended("cancelled");
      return Outcome::done("cancelled");
    case CallState::Answered:
      nua_bye(call_, TAG_END());
      call_ended("hung up");
      return Outcome::done("hung up");
    default:
      return Outcome::fail("no call");
  }
}

void Monitor::on_cancel(const sip_t *sip) {
  bool elsewhere = false;
  for (const sip_reason_t *re = sip ? sip->sip_reason : nullptr; re && !elsewhere;
       re = re->re_next) {
    std::vector<std::string_view> params;
    for (const char *const *p = re->re_params; p && *p; ++p) params.emplace_back(*p);
    elsewhere = reason_is_answered_elsewhere(re->re_protocol ? re->re_protocol : "", params);
  }
  call_ended(elsewhere ? kAnsweredElsewhere : kMissed);
}

Outcome Monitor::call(const std::string &door_name) {
  if (in_call(state_)) return Outcome::fail(std::string("busy: ") + call_state_name(state_));
  std::string target;
  for (const auto &d : settings_.doors)
    if (d.name == door_name) target = d.aor;
  if (target.empty()) return Outcome::fail("no door '" + door_name + "' in [doors]");
  std::string error;
  if (!new_media(&error)) {
    media_.reset();
    return Outcome::fail("media: " + error);
  }
  offered_ = media_->local(sdp_session_, ++sdp_version_, false);
  const std::string offer = sdp::write_offer(offered_);
  call_ = nua_handle(account_.nua(), nullptr, SIPTAG_TO_STR(target.c_str()), TAG_END());
  nua_invite(call_, SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(offer.c_str()),
             TAG_END());
  incoming_ = false;
  peer_ = target;
  remote_target_.clear();
  reason_.clear();
  call_id_.clear();
  call_auth_tries_ = 0;
  resent_with_auth_ = false;
  invite_us_ = g_get_monotonic_time();
  state_ = CallState::Calling;
  emit("calling", {field("to", target), field("door", door_name)});
  return Outcome::done("calling " + target);
}

void Monitor::on_invite_response(int status, const char *phrase, nua_handle_t *nh,
                                 const sip_t *sip) {
  if (call_id_.empty() && sip && sip->sip_call_id && sip->sip_call_id->i_id)
    call_id_ = sip->sip_call_id->i_id;
  if (status == 401 || status == 407) {
    tag_type_t tag;
    std::string header;
    const auto a = account_.credentials(nh, sip, &call_auth_tries_, "INVITE", peer_, &tag, &header);
    if (a == sip::Account::Auth::restarted) return;  // the same INVITE goes on
    if (a == sip::Account::Auth::resend) {
      const std::string offer = sdp::write_offer(offered_);
      resent_with_auth_ = true;
      nua_invite(nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(offer.c_str()),
                 tag, tag_str_v(header.c_str()), TAG_END());
      return;
    }
    call_ended("authentication failed");
    return;
  }
  if (status < 100) return;
  if (status > 100 && status < 300 && !sipmsg::contact_uri(sip).empty())
    remote_target_ = sipmsg::contact_uri(sip);
  std::string error;
  if (status < 300 && body_is(sip, "application/sdp")) {
    auto agreed = sdp::apply_answer(offered_, body(sip), &error);
    if (!agreed || !media_->apply(*agreed, &error))
      PLOG_WARN("monitor: unusable SDP answer from %s (%s)", peer_.c_str(), error.c_str());
  }
  if (status < 200) {
    if (state_ == CallState::Calling && body_is(sip, "application/sdp")) {
      state_ = CallState::Early;
      emit("early", {field("to", peer_), field("since_invite_ms", since_invite_ms())});
    }
    return;
  }
  if (status < 300) {
    state_ = CallState::Answered;
    emit("answered", {field("by", peer_), field("since_invite_ms", since_invite_ms())});
    return;
  }
  PLOG_INFO("monitor: call to %s not answered: %d %s", peer_.c_str(), status, phrase ? phrase : "");
  call_ended("failed: " + std::to_string(status) + " " + (phrase ? phrase : ""));
}

// INFO inside a call, answered per RFC 6086 legacy usage (call_signals.h).
void Monitor::on_info(nua_handle_t *nh, const sip_t *sip) {
  if (nh != call_ || !in_call(state_)) {
    nua_respond(nh, 481, "Call/Transaction Does Not Exist", NUTAG_WITH_THIS(account_.nua()),
                TAG_END());
    if (nh != call_) sipmsg::destroy_when_idle(nh);
    return;
  }
  const bool has_body = sip && sip->sip_payload && sip->sip_payload->pl_len > 0;
  const char *type = sip && sip->sip_content_type && sip->sip_content_type->c_type
                         ? sip->sip_content_type->c_type
                         : "";
  InfoVerdict v = info_verdict(type, has_body);
  if (v.status == 200)
    nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(account_.nua()), TAG_END());
  else
    nua_respond(nh, v.status, v.phrase, SIPTAG_ACCEPT_STR(kInfoAccept),
                NUTAG_WITH_THIS(account_.nua()), TAG_END());
}

void Monitor::queue_info(const char *content_type, std::string body_text) {
  info_queue_.emplace_back(content_type, std::move(body_text));
  send_next_info();
}

// One INFO at a time: the keys of a code arrive in order (RFC 6086 §4.2.1
// leaves ordering to the sender).
void Monitor::send_next_info() {
  if (info_in_flight_ || info_queue_.empty() || !call_) return;
  info_sent_ = std::move(info_queue_.front());
  info_queue_.pop_front();
  info_in_flight_ = true;
  info_auth_tries_ = 0;
  nua_info(call_, SIPTAG_CONTENT_TYPE_STR(info_sent_.first.c_str()),
           SIPTAG_PAYLOAD_STR(info_sent_.second.c_str()), TAG_END());
}

// The peer (or a proxy on the way) may challenge an INFO too (RFC 3261
// §22.1): the same INFO again, with credentials, in the same dialog.
void Monitor::on_info_response(int status, const char *phrase, nua_handle_t *nh, const sip_t *sip) {
  if ((status == 401 || status == 407) && nh == call_) {
    tag_type_t tag;
    std::string header;
    const auto a =
        account_.credentials(nh, sip, &info_auth_tries_, "INFO", info_uri(), &tag, &header);
    if (a == sip::Account::Auth::restarted) return;
    if (a == sip::Account::Auth::resend) {
      nua_info(nh, SIPTAG_CONTENT_TYPE_STR(info_sent_.first.c_str()),
               SIPTAG_PAYLOAD_STR(info_sent_.second.c_str()), tag, tag_str_v(header.c_str()),
               TAG_END());
      return;
    }
  } else if (status >= 300) {
    PLOG_WARN("monitor: INFO to %s: %d %s", peer_.c_str(), status, phrase ? phrase : "");
  }
  std::fill(info_sent_.second.begin(), info_sent_.second.end(), '\0');
  info_in_flight_ = false;
  send_next_info();
}

void Monitor::on_message_response(int status, const char *phrase, nua_handle_t *nh,
                                  const sip_t *sip) {
  auto it = messages_.find(nh);
  if (it == messages_.end() || status < 200) return;
  PendingMessage &m = it->second;
  if (status == 401 || status == 407) {
    tag_type_t tag;
    std::string header;
    const auto a = account_.credentials(nh, sip, &m.auth_tries, "MESSAGE", m.target, &tag, &header);
    if (a == sip::Account::Auth::restarted) return;
    if (a == sip::Account::Auth::resend) {
      nua_message(nh, SIPTAG_CONTENT_TYPE_STR("text/plain"), SIPTAG_PAYLOAD_STR(m.body.c_str()),
                  tag, tag_str_v(header.c_str()), TAG_END());
      return;
    }
  } else if (status >= 300) {
    PLOG_WARN("monitor: MESSAGE to %s: %d %s", m.target.c_str(), status, phrase ? phrase : "");
  }
  std::fill(m.body.begin(), m.body.end(), '\0');
  messages_.erase(it);
  nua_handle_destroy(nh);
}

void Monitor::on_message(nua_handle_t *nh, const sip_t *sip, const std::string &who) {
  bool door = false;
  for (const auto &d : settings_.doors) door = door || d.aor == who;
  if (!door) {
    nua_respond(
        nh, SIP_403_FORBIDDEN, NUTAG_WITH_THIS(account_.nua()),
        SIPTAG_WARNING_STR(
            siptext::warning(399, "monitor", "messages are taken from the [doors] only").c_str()),
        TAG_END());
  } else if (!body_is(sip, "text/plain")) {
    nua_respond(nh, SIP_415_UNSUPPORTED_MEDIA, NUTAG_WITH_THIS(account_.nua()),
                SIPTAG_ACCEPT_STR("text/plain"), TAG_END());
  } else {
    nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(account_.nua()), TAG_END());
    // One line: a body cannot forge more event fields or lines.
    alarm_ = body(sip).substr(0, 300);
    for (char &c : alarm_)
      if (static_cast<unsigned char>(c) < ' ') c = ' ';
    ++alarms_;
    PLOG_WARN("monitor: alarm from %s: %s", who.c_str(), alarm_.c_str());
    emit("alarm", {field("from", who), field("text", alarm_)});
  }
  sipmsg::destroy_when_idle(nh);
}

Outcome Monitor::action(const std::string &name) {
  const std::string *code = name == "open-door" ? &settings_.open_door_code
                            : name == "light"   ? &settings_.light_code
                                                : nullptr;
  if (!code) return Outcome::fail("unknown action '" + name + "' (open-door, light)");
  if (code->empty()) return Outcome::fail("no code for " + name + " in [actions]");
  const char *method = action_method_name(settings_.action_method);
  std::string error;
  switch (settings_.action_method) {
    case ActionMethod::Dtmf:
      if (state_ != CallState::Answered || !media_)
        return Outcome::fail("DTMF needs an answered call");
      if (!media_->send_dtmf(*code, &error)) return Outcome::fail(error);
      break;
    case ActionMethod::Info:
      if (state_ != CallState::Answered) return Outcome::fail("INFO needs an answered call");
      for (char key : *code)
        queue_info("application/dtmf-relay", dtmf_relay_body(key, kDtmfInfoDurationMs));
      break;
    case ActionMethod::Message: {
      // To the door we talk to, else to the first door we know.
      std::string target = in_call(state_) ? peer_ : "";
      if (target.empty() && !settings_.doors.empty()) target = settings_.doors.front().aor;
      if (target.empty()) return Outcome::fail("no call and no door in [doors] to send it to");
      nua_handle_t *nh =
          nua_handle(account_.nua(), nullptr, SIPTAG_TO_STR(target.c_str()), TAG_END());
      messages_[nh] = PendingMessage{target, *code, 0};
      nua_message(nh, SIPTAG_CONTENT_TYPE_STR("text/plain"), SIPTAG_PAYLOAD_STR(code->c_str()),
                  TAG_END());
      break;
    }
  }
  ++actions_sent_;
  // Never the code: only which action, how, and to whom.
  emit("action_sent", {field("action", name), field("method", method), field("to", peer_)});
  return Outcome::done(name + " sent by " + method);
}

Outcome Monitor::set_mic(bool on) {
  mic_on_ = on;
  if (media_) media_->set_mic(on);
  emit("mic", {field("on", on)});
  return Outcome::done(on ? "mic on" : "mic off");
}

Outcome Monitor::snapshot(const std::string &path) const {
  if (path.empty() || path[0] != '/') return Outcome::fail("snapshot needs an absolute path");
  std::string error;
  if (!media_ || media_->frames_decoded() == 0)
    return Outcome::fail("nothing decoded yet: no snapshot");
  if (!media_->snapshot_png(path, &error)) return Outcome::fail("snapshot: " + error);
  return Outcome::done(path);
}

void Monitor::on_first_video_rtp() {
  if (!in_call(state_)) return;
  first_rtp_ms_ = since_invite_ms();
  emit("first_rtp", {field("since_invite_ms", first_rtp_ms_)});
  if (keyframe_timer_) g_source_remove(keyframe_timer_);
  keyframe_timer_ = g_timeout_add(
      static_cast<guint>(settings_.media.keyframe_wait_ms),
      [](gpointer self) -> gboolean {
        static_cast<Monitor *>(self)->keyframe_check();
        return G_SOURCE_REMOVE;
      },
      this);
}

// The door's video arrives but nothing decodes: its keyframe was lost or is
// far away. Ask (RTCP PLI, and/or SIP INFO for doors that want that), and
// again each second, a few times at most.
void Monitor::keyframe_check() {
  keyframe_timer_ = 0;
  if (!media_ || !in_call(state_) || media_->frames_decoded() > 0) return;
  if (keyframe_requests_ >= kMaxKeyframeRequests) return;
  std::string via;
  if (settings_.media.keyframe.rtcp && media_->request_keyframe()) via = "rtcp";
  if (settings_.media.keyframe.info && call_ && state_ != CallState::Calling) {
    queue_info("application/media_control+xml", picture_fast_update_body());
    via += via.empty() ? "info" : "+info";
  }
  if (via.empty()) return;
  ++keyframe_requests_;
  emit("keyframe_request", {field("via", via), field("since_invite_ms", since_invite_ms())});
  keyframe_timer_ = g_timeout_add(
      kKeyframeRetryMs,
      [](gpointer self) -> gboolean {
        static_cast<Monitor *>(self)->keyframe_check();
        return G_SOURCE_REMOVE;
      },
      this);
}

void Monitor::on_first_frame(int width, int height) {
  if (!in_call(state_) || first_frame_ms_ >= 0) return;
  if (keyframe_timer_) g_source_remove(keyframe_timer_), keyframe_timer_ = 0;
  const EventTime t = EventTime::now();
  first_frame_ms_ = since_invite_ms();
  first_frame_wall_ms_ = t.wall_ms;
  std::vector<EventField> fields{field("call_id", call_id_),
                                 field("since_invite_ms", first_frame_ms_),
                                 field("width", width),
                                 field("height", height),
                                 field("codec", media_->video_codec()),
                                 field("decoder", media_->video_decoder())};
  events_.add_at("first_frame", fields, t);
}

void Monitor::call_ended(const std::string &reason) {
  if (!in_call(state_)) return;
  if (keyframe_timer_) g_source_remove(keyframe_timer_), keyframe_timer_ = 0;
  info_queue_.clear();
  info_in_flight_ = false;
  std::fill(info_sent_.second.begin(), info_sent_.second.end(), '\0');
  const uint64_t frames = media_ ? media_->frames_decoded() : 0;
  const uint64_t sent = media_ ? media_->audio_packets_sent() : 0;
  const uint64_t received = media_ ? media_->audio_packets_received() : 0;
  if (media_) media_->close();  // kept for its figures and the last frame
  if (call_) release(call_);
  state_ = CallState::Ended;
  reason_ = reason;
  emit("ended", {field("reason", reason), field("since_invite_ms", since_invite_ms()),
                 field("frames_decoded", static_cast<int64_t>(frames)),
                 field("audio_packets_sent", static_cast<int64_t>(sent)),
                 field("audio_packets_received", static_cast<int64_t>(received))});
}

std::string Monitor::status_json() const {
  const MonitorMedia *m = media_.get();
  auto num = [](uint64_t v) { return std::to_string(v); };
  std::string out = "{\"aor\":" + json::quote(settings_.account.aor) +
                    ",\"registered\":" + (account_.registered() ? "true" : "false") +
                    ",\"registration\":" + json::quote(account_.registration()) +
                    ",\"call\":" + json::quote(call_state_name(state_)) +
                    ",\"reason\":" + json::quote(reason_) + ",\"direction\":" +
                    json::quote(state_ == CallState::Idle ? ""
                                : incoming_               ? "incoming"
                                                          : "outgoing") +
                    ",\"peer\":" + json::quote(peer_) + ",\"call_id\":" + json::quote(call_id_);
  out += ",\"frames_decoded\":" + num(m ? m->frames_decoded() : 0) +
         ",\"video_packets_received\":" + num(m ? m->video_packets_received() : 0) +
         ",\"first_rtp_ms\":" + json_ms(first_rtp_ms_) +
         ",\"first_frame_ms\":" + json_ms(first_frame_ms_) +
         ",\"first_frame_wall_ms\":" + json_ms(first_frame_wall_ms_) + ",\"first_frame_wall\":" +
         (first_frame_wall_ms_ < 0 ? std::string("null")
                                   : json::quote(iso8601_utc(first_frame_wall_ms_))) +
         ",\"video_codec\":" + json::quote(m ? m->video_codec() : "") +
         ",\"video_decoder\":" + json::quote(m ? m->video_decoder() : "") +
         ",\"width\":" + std::to_string(m ? m->width() : 0) +
         ",\"height\":" + std::to_string(m ? m->height() : 0) +
         ",\"keyframe_requests\":" + std::to_string(keyframe_requests_);
  out += ",\"audio_codec\":" + json::quote(m ? m->audio_codec() : "") +
         ",\"audio_packets_sent\":" + num(m ? m->audio_packets_sent() : 0) +
         ",\"audio_packets_received\":" + num(m ? m->audio_packets_received() : 0) +
         ",\"mic\":" + json::quote(mic_on_ ? "on" : "off") +
         ",\"dtmf_keys_sent\":" + num(m ? m->dtmf_keys_sent() : 0) +
         ",\"actions_sent\":" + std::to_string(actions_sent_) +
         ",\"action_method\":" + json::quote(action_method_name(settings_.action_method)) +
         ",\"alarms\":" + std::to_string(alarms_) + ",\"alarm\":" + json::quote(alarm_) + "}";
  return out;
}

MonitorView Monitor::view() const {
  MonitorView v;
  v.aor = settings_.account.aor;
  v.registered = account_.registered();
  v.registration = account_.registration();
  v.state = state_;
  v.reason = reason_;
  v.incoming = incoming_;
  v.peer = peer_;
  v.mic_on = mic_on_;
  v.action_method = settings_.action_method;
  v.has_open_door = !settings_.open_door_code.empty();
  v.has_light = !settings_.light_code.empty();
  v.has_doors = !settings_.doors.empty();
  return v;
}

std::string Monitor::doors_json() const {
  std::string out = "{\"doors\":[";
  for (size_t i = 0; i < settings_.doors.size(); ++i)
    out += std::string(i ? "," : "") + "{\"name\":" + json::quote(settings_.doors[i].name) +
           ",\"aor\":" + json::quote(settings_.doors[i].aor) + "}";
  return out + "]}";
}

}  // namespace portier::monitor
