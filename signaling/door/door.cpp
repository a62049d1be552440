#include "door/door.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_extra.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag_io.h>

#include <cstring>

#include "common/json.h"
#include "common/log.h"
#include "common/sip_text.h"
#include "door/dtmf.h"
#include "sip/sip_message.h"

namespace portier::door {
namespace {

const char *state_name(Door::State s) {
  switch (s) {
    case Door::State::Idle:
      return "idle";
    case Door::State::Calling:
      return "calling";
    case Door::State::Early:
      return "early";
    case Door::State::Active:
      return "active";
    case Door::State::Ending:
      return "ending";
  }
  return "?";
}

using sipmsg::body;
using sipmsg::body_is;

}  // namespace

Door::Door(DoorSettings settings, DoorHooks hooks)
    : settings_(std::move(settings)),
      hooks_(std::move(hooks)),
      camera_(std::make_unique<DoorCamera>(settings_.media)),
      account_(
          settings_.account, {"door", "calls and messages", "portier-door/0.1", "MESSAGE"},
          {[this](nua_event_t event, int status, const char *phrase, nua_handle_t *nh,
                  const sip_t *sip, tagi_t *tags) { handle(event, status, phrase, nh, sip, tags); },
           [this](bool) { emit("registered", settings_.account.aor); },
           [this](int status, const char *phrase, bool refused) {
             return registration_failed(status, phrase, refused);
           },
           nullptr,
           [this](const char *method, const std::string &source, const std::string &why) {
             emit("request_refused",
                  std::string("method=") + method + " source=" + source + " reason=" + why);
           }}) {}

Door::~Door() {
  if (ring_timer_) g_source_remove(ring_timer_);
  if (duration_timer_) g_source_remove(duration_timer_);
  media_.reset();
}

void Door::emit(const std::string &kind, const std::string &details) {
  if (hooks_.event) hooks_.event(kind, details);
}

bool Door::start(su_root_t *root, std::string *error) {
  if (settings_.media.camera_always_on && !camera_->start(error)) return false;
  return account_.start(root, error);
}

void Door::stop(std::function<void()> done) {
  if (call_) hangup();
  account_.stop(std::move(done));
}

// Our call's handle is ours no longer; the account destroys it when nua is
// done with it (sip::Account::destroy_when_terminated).
void Door::release(nua_handle_t *nh) {
  if (nh == call_) call_ = nullptr;
  account_.destroy_when_terminated(nh);
}

void Door::handle(nua_event_t event, int status, const char *phrase, nua_handle_t *nh,
                  const sip_t *sip, tagi_t *tags) {
  switch (event) {
    case nua_r_invite:
      if (nh == call_) on_invite_response(status, phrase, nh, sip);
      break;
    case nua_i_invite: {
      std::string who;
      if (nh == call_ || from_trusted_hop(nh, "INVITE", &who)) on_incoming_invite(nh, sip, who);
      break;
    }
    case nua_i_info:
      if (nh == call_) on_info(nh, sip);
      break;
    case nua_i_message: {
      std::string who;
      if (from_trusted_hop(nh, "MESSAGE", &who)) on_message(nh, sip, who);
      break;
    }
    case nua_i_bye:
      if (nh == call_) call_ended("the other side hung up");
      break;
    case nua_i_cancel:
      if (nh == call_) call_ended("the caller cancelled");
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
      if (nh == call_) call_ended("terminated");
      break;
    }
    case nua_r_message:
      on_alarm_response(status, phrase, nh, sip);
      break;
    case nua_r_bye:
    case nua_r_cancel:
      break;
    default:
      if (status >= 400)
        PLOG_DEBUG("door: %s: %d %s", nua_event_name(event), status, phrase ? phrase : "");
      break;
  }
}

// Answers a challenge to our INVITE once per new challenge (sip::Account::
// credentials); the request is sent again with the same Call-ID and a higher
// CSeq (RFC 3261 §22.2).
bool Door::authenticate(nua_handle_t *nh, const sip_t *sip) {
  tag_type_t auth_tag;
  std::string header;
  switch (account_.credentials(nh, sip, &call_auth_tries_, "INVITE", settings_.target, &auth_tag,
                               &header)) {
    case sip::Account::Auth::refused:
      return false;
    case sip::Account::Auth::restarted:  // the same INVITE goes on
      return true;
    case sip::Account::Auth::resend:
      break;
  }
  const std::string offer = sdp::write_offer(offered_);
  resent_with_auth_ = true;
  nua_invite(nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(offer.c_str()),
             auth_tag, tag_str_v(header.c_str()), TAG_END());
  return true;
}

// nua gives up on a failed registration; the door keeps trying every 30 s,
// or 60 s after its password was refused (the proxy may be restarting, or
// the password gets fixed).
int Door::registration_failed(int status, const char *phrase, bool refused) {
  if (refused) {
    // account_.registration() says why: a wrong password, or no challenge we can answer.
    PLOG_ERROR("door %s: registration %s (%d %s); again in 60 s", settings_.account.aor.c_str(),
               account_.registration().c_str(), status, phrase ? phrase : "");
    return 60;
  }
  PLOG_WARN("door %s: registration failed: %d %s; again in 30 s", settings_.account.aor.c_str(),
            status, phrase ? phrase : "");
  return 30;
}

// The call's media, fed by the shared camera. Telephone events go to the
// action gate; the first video packet of a ring is a milestone (the bench
// measures it from the press).
bool Door::open_media(std::string *error) {
  DoorMedia::Callbacks cb;
  cb.telephone_event = [this](uint32_t ts, uint16_t seq, bool marker,
                              const std::vector<uint8_t> &payload) {
    if (!hooks_.telephone_event || !hooks_.digit) return;
    for (char key : hooks_.telephone_event(ts, seq, marker, payload)) key_from_peer(key, "rfc4733");
  };
  cb.first_video_sent = [this] {
    if (outgoing_)
      emit("first_rtp_sent",
           "since_press_ms=" + std::to_string((g_get_monotonic_time() - pressed_at_us_) / 1000));
  };
  if (hooks_.call_started) hooks_.call_started();
  media_ = std::make_unique<DoorMedia>(settings_.media, *camera_, cb);
  if (media_->open(error)) return true;
  media_.reset();
  return false;
}

std::string Door::press() {
  if (state_ != State::Idle) {
    PLOG_INFO("door: button pressed while %s: no second call", state_name(state_));
    return std::string("busy: ") + state_name(state_);
  }
  pressed_at_us_ = g_get_monotonic_time();
  emit("ring", settings_.target);
  outgoing_ = true;
  std::string error;
  if (!open_media(&error)) {
    PLOG_ERROR("door: media: %s", error.c_str());
    return "error: " + error;
  }
  if (hooks_.ring_snapshot) {
    // The visitor's picture once the camera has a frame, off the call's path.
    g_timeout_add(
        300,
        [](gpointer self) -> gboolean {
          auto *d = static_cast<Door *>(self);
          std::string jpeg, err;
          if (!d->camera_->snapshot_jpeg(&jpeg, &err)) PLOG_WARN("door: snapshot: %s", err.c_str());
          d->hooks_.ring_snapshot(jpeg, err);
          return G_SOURCE_REMOVE;
        },
        this);
  }
  offered_ = media_->local(++sdp_version_);
  const std::string offer = sdp::write_offer(offered_);
  peer_.clear();
  call_auth_tries_ = 0;
  early_sdp_.clear();
  call_ = nua_handle(account_.nua(), nullptr, SIPTAG_TO_STR(settings_.target.c_str()), TAG_END());
  nua_invite(call_, SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(offer.c_str()),
             TAG_END());
  state_ = State::Calling;
  arm_timer(&ring_timer_, settings_.ring_timeout, true);
  PLOG_INFO("door: calling %s", settings_.target.c_str());
  return "calling";
}

// Out-of-dialog requests only through the proxy: it authenticated the sender
// and vouches for P-Asserted-Identity; a request sent straight to our contact
// could name anyone (RFC 3325 §3).
bool Door::from_trusted_hop(nua_handle_t *nh, const char *method, std::string *who) {
  std::string source, why;
  if (account_.admit(nh, method, &source, &why, who)) return true;
  emit("request_refused", std::string("method=") + method + " source=" + source + " reason=" + why);
  return false;
}

void Door::arm_timer(guint *id, int seconds, bool ring) {
  if (*id) g_source_remove(*id);
  auto cb = ring ? +[](gpointer self) -> gboolean {
    auto *d = static_cast<Door *>(self);
    d->ring_timer_ = 0;
    if (d->state_ == State::Calling || d->state_ == State::Early) {
      PLOG_INFO("door: nobody answered in %d s", d->settings_.ring_timeout);
      d->hangup("nobody answered within ring-timeout");
    }
    return G_SOURCE_REMOVE;
  }
  : +[](gpointer self) -> gboolean {
      auto *d = static_cast<Door *>(self);
      d->duration_timer_ = 0;
      PLOG_INFO("door: the call reached max-duration (%d s)", d->settings_.max_duration);
      d->hangup("max-duration reached");
      return G_SOURCE_REMOVE;
    };
  *id = g_timeout_add_seconds(static_cast<guint>(seconds), cb, this);
}

// An SDP answer in an 18x or the 2xx: the media follows it.
bool Door::take_answer(const sip_t *sip, bool final) {
  if (!body_is(sip, "application/sdp")) return false;
  const std::string text = body(sip);
  if (!final && text == early_sdp_) return true;  // a retransmitted or repeated 18x
  std::string error;
  auto agreed = sdp::apply_answer(offered_, text, &error);
  if (!agreed) {
    PLOG_WARN("door: unusable SDP answer (%s): ignored", error.c_str());
    return false;
  }
  if (!media_->apply(*agreed, &error)) {
    PLOG_WARN("door: media: %s", error.c_str());
    return false;
  }
  if (!final) early_sdp_ = text;
  return true;
}

void Door::on_invite_response(int status, const char *phrase, nua_handle_t *nh, const sip_t *sip) {
  if (status == 401 || status == 407) {
    if (authenticate(nh, sip)) return;
    call_ended("authentication failed");  // the account logged why
    return;
  }
  if (status < 100) return;
  if (status < 200) {
    if (take_answer(sip, false) && state_ == State::Calling) {
      state_ = State::Early;
      emit("early_media", std::to_string(status));
    }
    return;
  }
  if (status < 300) {
    // The answerer was proven once; a repeated 2xx would look like a replay
    // of its proof and must not make the call's keys anyone's.
    if (state_ == State::Active) return;
    take_answer(sip, true);
    std::string why;
    peer_ = account_.proven_identity(sip, &why);
    if (peer_.empty() || peer_ == settings_.target) {
      // Without an asserted identity the proxy proved, the answerer is known
      // by nothing but the group address; no code from this call can then be
      // trusted.
      PLOG_WARN("door: the answer names no identity (%s): codes refused",
                why.empty() ? "the group address" : why.c_str());
      peer_ = "";
    }
    state_ = State::Active;
    if (ring_timer_) g_source_remove(ring_timer_), ring_timer_ = 0;
    arm_timer(&duration_timer_, settings_.max_duration, false);
    emit("answered", "by=" + (peer_.empty() ? std::string("unknown") : peer_));
    return;
  }
  PLOG_INFO("door: call not answered: %d %s", status, phrase ? phrase : "");
  call_ended(std::to_string(status) + " " + (phrase ? phrase : ""));
}

void Door::on_incoming_invite(nua_handle_t *nh, const sip_t *sip, const std::string &who) {
  if (nh == call_) {  // a re-INVITE in our call
    // Only through the proxy (the dialog is record-routed): anyone else who
    // learnt the dialog's ids would move our media to himself.
    std::string source;
    if (!account_.admit_in_dialog(nh, "INVITE", &source)) {
      emit("request_refused", "method=INVITE source=" + source + " reason=not through the proxy");
      return;
    }
    if (body_is(sip, "application/sdp")) {
      std::string error;
      auto ans = sdp::answer_offer(body(sip), media_->local(++sdp_version_), &error);
      if (!ans || !media_->apply(ans->streams, &error)) {
        PLOG_WARN("door: re-INVITE refused: %s", error.c_str());
        nua_respond(nh, 488, "Not Acceptable Here",
                    SIPTAG_WARNING_STR(siptext::warning(399, "door", error).c_str()), TAG_END());
        return;
      }
      nua_respond(nh, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
                  SIPTAG_PAYLOAD_STR(ans->sdp.c_str()), TAG_END());
    } else {
      nua_respond(nh, SIP_200_OK, TAG_END());
    }
    return;
  }
  bool allowed = false;
  for (const auto &a : settings_.auto_answer) allowed = allowed || a == who;
  if (!allowed) {
    PLOG_INFO("door: call from %s refused: not in [call] auto-answer", who.c_str());
    emit("call_refused", "from=" + who);
    nua_respond(nh, SIP_403_FORBIDDEN, TAG_END());
    release(nh);
    return;
  }
  if (state_ != State::Idle) {
    nua_respond(nh, SIP_486_BUSY_HERE, TAG_END());
    release(nh);
    return;
  }
  if (!body_is(sip, "application/sdp")) {
    // An offerless INVITE would need our offer in the 200 and the answer in
    // the ACK; doors are called by devices that offer.
    nua_respond(nh, 488, "Not Acceptable Here",
                SIPTAG_WARNING_STR(siptext::warning(399, "door", "SDP offer needed").c_str()),
                TAG_END());
    release(nh);
    return;
  }
  outgoing_ = false;
  std::string error;
  std::optional<sdp::Answered> ans;
  if (open_media(&error)) ans = sdp::answer_offer(body(sip), media_->local(++sdp_version_), &error);
  if (!ans || !media_->apply(ans->streams, &error)) {
    PLOG_WARN("door: call from %s: %s", who.c_str(), error.c_str());
    nua_respond(nh, 488, "Not Acceptable Here",
                SIPTAG_WARNING_STR(siptext::warning(399, "door", error).c_str()), TAG_END());
    release(nh);
    media_.reset();
    return;
  }
  call_ = nh;
  peer_ = who;
  state_ = State::Active;
  nua_respond(nh, SIP_200_OK, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
              SIPTAG_PAYLOAD_STR(ans->sdp.c_str()), TAG_END());
  arm_timer(&duration_timer_, settings_.max_duration, false);
  emit("auto_answered", "from=" + who);
}

void Door::on_info(nua_handle_t *, const sip_t *sip) {
  // Keys in our call are credited to its proven peer: only through the proxy
  // (nua has answered already; what is refused is what the INFO asks).
  std::string source;
  if (!account_.from_trusted_hop(&source)) {
    emit("request_refused", "method=INFO source=" + source + " reason=not through the proxy");
    return;
  }
  if (body_is(sip, "application/media_control+xml")) {
    // RFC 5168: <picture_fast_update/> asks for a keyframe now.
    if (body(sip).find("picture_fast_update") != std::string::npos && media_) {
      media_->request_keyframe();
      emit("keyframe_request", "via=info");
    }
    return;
  }
  if (body_is(sip, "application/dtmf-relay")) {
    std::string reason;
    auto relay = parse_dtmf_relay(body(sip), &reason);
    if (!relay) {
      PLOG_INFO("door: INFO dtmf-relay from %s ignored: %s", peer_.c_str(), reason.c_str());
      return;
    }
    key_from_peer(relay->key, "info");
  }
}

void Door::on_message(nua_handle_t *nh, const sip_t *sip, const std::string &who) {
  // A MESSAGE outside a call is authorised by the identity our proxy asserted
  // and proved (`who`, from sip::Account::admit).
  if (!body_is(sip, "text/plain")) {
    nua_respond(nh, SIP_415_UNSUPPORTED_MEDIA, NUTAG_WITH_THIS(account_.nua()),
                SIPTAG_ACCEPT_STR("text/plain"), TAG_END());
    sipmsg::destroy_when_idle(nh);
    return;
  }
  // The sender learns nothing from the answer: a wrong code gets 200 too.
  nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(account_.nua()), TAG_END());
  sipmsg::destroy_when_idle(nh);
  if (!hooks_.code) return;
  std::string code = body(sip);
  while (!code.empty() && std::isspace(static_cast<unsigned char>(code.back()))) code.pop_back();
  std::string outcome = hooks_.code(who, code);
  std::fill(code.begin(), code.end(), '\0');
  if (!outcome.empty()) emit("action", "via=message from=" + who + " " + outcome);
}

// A key the other side of the call typed. Its identity is the one our proxy
// asserted for the dialog; a call whose answerer is unknown opens nothing.
void Door::key_from_peer(char key, const char *via) {
  if (!hooks_.digit) return;
  if (peer_.empty()) {
    emit("action_refused", std::string("via=") + via + " from=unknown reason=no asserted identity");
    return;
  }
  const std::string outcome = hooks_.digit(peer_, key);
  if (!outcome.empty())
    emit("action", std::string("via=") + via + " from=" + peer_ + " " + outcome);
}

std::string Door::hangup(const std::string &why) {
  if (!call_) return "no call";
  if (state_ == State::Calling || state_ == State::Early)
    nua_cancel(call_, TAG_END());
  else if (state_ == State::Active)
    nua_bye(call_, TAG_END());
  call_ended(why);
  return "hung up";
}

void Door::call_ended(const std::string &why) {
  if (!call_ && state_ == State::Idle) return;
  if (ring_timer_) g_source_remove(ring_timer_), ring_timer_ = 0;
  if (duration_timer_) g_source_remove(duration_timer_), duration_timer_ = 0;
  const uint64_t sent = media_ ? media_->video_packets_sent() : 0;
  media_.reset();
  if (call_) release(call_);
  state_ = State::Idle;
  emit("ended", "why=\"" + why + "\" video_packets=" + std::to_string(sent));
  if (hooks_.call_ended && !peer_.empty()) hooks_.call_ended(peer_);
  peer_.clear();
}

void Door::send_alarm(const std::string &text) {
  if (!account_.nua()) return;
  nua_handle_t *nh =
      nua_handle(account_.nua(), nullptr, SIPTAG_TO_STR(settings_.target.c_str()), TAG_END());
  Alarm &a = alarms_[nh];
  a.body = "portier-door alarm: " + text;
  nua_message(nh, SIPTAG_CONTENT_TYPE_STR("text/plain"), SIPTAG_PAYLOAD_STR(a.body.c_str()),
              TAG_END());
  PLOG_INFO("door: alarm sent to %s", settings_.target.c_str());
}

// The proxy challenges our alarm like any request (RFC 3261 §22.3): answered
// once per new challenge, as the INVITE is.
void Door::on_alarm_response(int status, const char *phrase, nua_handle_t *nh, const sip_t *sip) {
  auto it = alarms_.find(nh);
  if (it == alarms_.end() || status < 200) return;
  if (status == 401 || status == 407) {
    tag_type_t tag;
    std::string header;
    const auto a = account_.credentials(nh, sip, &it->second.auth_tries, "MESSAGE",
                                        settings_.target, &tag, &header);
    if (a == sip::Account::Auth::restarted) return;  // nua sends it again itself
    if (a == sip::Account::Auth::resend) {
      nua_message(nh, SIPTAG_CONTENT_TYPE_STR("text/plain"),
                  SIPTAG_PAYLOAD_STR(it->second.body.c_str()), tag, tag_str_v(header.c_str()),
                  TAG_END());
      return;
    }
  }
  if (status >= 300)
    PLOG_WARN("door: alarm to %s: %d %s", settings_.target.c_str(), status, phrase ? phrase : "");
  alarms_.erase(it);
  nua_handle_destroy(nh);
}

std::string Door::status_json() const {
  return "{\"aor\":" + json::quote(settings_.account.aor) +
         ",\"registered\":" + (account_.registered() ? "true" : "false") +
         ",\"registration\":" + json::quote(account_.registration()) +
         ",\"call\":" + json::quote(state_name(state_)) + ",\"peer\":" + json::quote(peer_) +
         ",\"video_source\":" + json::quote(camera_->source()) +
         ",\"video_encoder\":" + json::quote(camera_->encoder()) +
         ",\"camera_running\":" + (camera_->running() ? "true" : "false") +
         ",\"camera_consumers\":" + std::to_string(camera_->consumers()) +
         ",\"video_packets_sent\":" + std::to_string(media_ ? media_->video_packets_sent() : 0) +
         ",\"audio_packets_received\":" +
         std::to_string(media_ ? media_->audio_packets_received() : 0) +
         ",\"foreign_media_dropped\":" +
         std::to_string(media_ ? media_->foreign_packets_dropped() : 0) +
         ",\"media\":" + json::quote(media_ ? media_->pipeline_state() : "none") + "}";
}

}  // namespace portier::door
