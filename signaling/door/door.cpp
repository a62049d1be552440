#include "door/door.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_extra.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_status.h>

#include <cstring>

#include "common/json.h"
#include "common/log.h"
#include "sip/sip_message.h"
#include "common/sip_text.h"
#include "door/dtmf.h"
#include "sip/sip_message.h"

namespace portier::door {
namespace {

// The call's state in the door's status and logs: "active" once answered,
// "idle" between calls.
const char *call_name(sip::CallState s) {
  if (s == sip::CallState::Answered) return "active";
  return sip::in_call(s) ? sip::call_state_name(s) : "idle";
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
           }}),
      call_(account_, "door",
            {[this](bool) -> std::optional<sdp::LocalMedia> {
               if (!media_) return std::nullopt;
               return media_->local();
             },
             [this](const std::vector<sdp::Agreed> &agreed, std::string *error) {
               if (!media_ || !media_->apply(agreed, error)) return false;
               report_audio();
               return true;
             },
             [this](int status) { emit("early_media", std::to_string(status)); },
             [this](const sip_t *sip) { on_answered(sip); },
             [this](const sip::Call::Ended &e) { on_call_ended(e); }}) {}

Door::~Door() {
  if (ring_timer_) g_source_remove(ring_timer_);
  if (duration_timer_) g_source_remove(duration_timer_);
  media_.reset();
}

void Door::report_audio() {
  if (!media_ || media_->audio_codec().empty() || media_->audio_codec() == audio_reported_) return;
  audio_reported_ = media_->audio_codec();
  emit("audio", "codec=" + audio_reported_ + " rate=" + std::to_string(media_->audio_rate()));
}

void Door::emit(const std::string &kind, const std::string &details) {
  if (hooks_.event) hooks_.event(kind, details);
}

bool Door::start(su_root_t *root, std::string *error) {
  if (settings_.media.camera_always_on && !camera_->start(error)) return false;
  return account_.start(root, error);
}

void Door::stop(std::function<void()> done) {
  hangup();
  account_.stop(std::move(done));
}

void Door::handle(nua_event_t event, int status, const char *phrase, nua_handle_t *nh,
                  const sip_t *sip, tagi_t *tags) {
  if (call_.handle(event, status, phrase, nh, sip, tags)) return;
  switch (event) {
    case nua_i_invite: {
      std::string who;
      if (from_trusted_hop(nh, "INVITE", &who)) on_incoming_invite(nh, sip, who);
      break;
    }
    case nua_i_info:
      if (call_.owns(nh)) on_info(nh, sip);
      break;
    case nua_i_message: {
      std::string who;
      if (from_trusted_hop(nh, "MESSAGE", &who)) on_message(nh, sip, who);
      break;
    }
    case nua_r_invite:  // the INVITE of a call that is over
    case nua_i_bye:
    case nua_i_cancel:
    case nua_i_state:
    case nua_r_bye:
    case nua_r_cancel:
      break;
    default:
      if (status >= 400)
        PLOG_DEBUG("door: %s: %d %s", nua_event_name(event), status, phrase ? phrase : "");
      break;
  }
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
  audio_reported_.clear();
  DoorMedia::Callbacks cb;
  cb.telephone_event = [this](uint32_t ts, uint16_t seq, bool marker,
                              const std::vector<uint8_t> &payload) {
    if (!hooks_.telephone_event || !hooks_.digit) return;
    for (char key : hooks_.telephone_event(ts, seq, marker, payload)) key_from_peer(key, "rfc4733");
  };
  cb.first_video_sent = [this] {
    if (!call_.incoming())
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
  if (sip::in_call(call_.state())) {
    PLOG_INFO("door: button pressed while %s: no second call", call_name(call_.state()));
    return std::string("busy: ") + call_name(call_.state());
  }
  pressed_at_us_ = g_get_monotonic_time();
  emit("ring", settings_.target);
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
  peer_.clear();
  if (!call_.dial(settings_.target, &error)) {
    PLOG_ERROR("door: %s", error.c_str());
    media_.reset();
    return "error: " + error;
  }
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
    const sip::CallState s = d->call_.state();
    if (s == sip::CallState::Calling || s == sip::CallState::Early) {
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

// Keys in an answered call count only when the proxy proved who answered.
void Door::on_answered(const sip_t *sip) {
  // A plain answer is never applied where SRTP is mandatory (sdp::apply_answer):
  // without an earlier SRTP answer the call has no media, so it ends.
  if (settings_.media.media_encryption_mandatory &&
      (!media_ || (media_->audio_srtp().empty() && media_->video_srtp().empty()))) {
    PLOG_WARN("door: the answer has no SRTP and media-encryption-mandatory is on: hanging up");
    hangup("the answer has no SRTP (media-encryption-mandatory)");
    return;
  }
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
  if (ring_timer_) g_source_remove(ring_timer_), ring_timer_ = 0;
  arm_timer(&duration_timer_, settings_.max_duration, false);
  emit("answered", "by=" + (peer_.empty() ? std::string("unknown") : peer_));
  emit("media", protection());
}

void Door::on_call_ended(const sip::Call::Ended &e) {
  switch (e.why) {
    case sip::CallEnd::bye:
      call_ended("the other side hung up");
      break;
    case sip::CallEnd::cancel:
      call_ended("the caller cancelled");
      break;
    case sip::CallEnd::rejected:
      call_ended(std::to_string(e.status) + " " + e.phrase);
      break;
    case sip::CallEnd::unauthenticated:
      call_ended("authentication failed");  // the account logged why
      break;
    case sip::CallEnd::terminated:
      call_ended("terminated");
      break;
  }
}

void Door::on_incoming_invite(nua_handle_t *nh, const sip_t *sip, const std::string &who) {
  bool allowed = false;
  for (const auto &a : settings_.auto_answer) allowed = allowed || a == who;
  if (!allowed) {
    PLOG_INFO("door: call from %s refused: not in [call] auto-answer", who.c_str());
    emit("call_refused", "from=" + who);
    call_.refuse(nh, SIP_403_FORBIDDEN);
    return;
  }
  if (sip::in_call(call_.state())) {
    call_.refuse(nh, SIP_486_BUSY_HERE);
    return;
  }
  if (call_.refuse_offerless(nh, sip)) return;
  std::string error;
  if (!open_media(&error) || !call_.accept(nh, sip, who, false, &error)) {
    PLOG_WARN("door: call from %s: %s", who.c_str(), error.c_str());
    call_.refuse(nh, 488, "Not Acceptable Here", error);
    media_.reset();
    return;
  }
  peer_ = who;
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
  if (call_.hangup() == sip::CallLeg::Hangup::none) return "no call";
  call_ended(why);
  return "hung up";
}

// The call is over (its handle is released): the door's side of it.
void Door::call_ended(const std::string &why) {
  if (ring_timer_) g_source_remove(ring_timer_), ring_timer_ = 0;
  if (duration_timer_) g_source_remove(duration_timer_), duration_timer_ = 0;
  const uint64_t sent = media_ ? media_->video_packets_sent() : 0;
  media_.reset();
  audio_reported_.clear();
  emit("ended", "why=\"" + why + "\" video_packets=" + std::to_string(sent));
  if (hooks_.call_ended && !peer_.empty()) hooks_.call_ended(peer_);
  peer_.clear();
}

// How the call's media is protected, for its event lines: the SRTP suite per
// stream or "none" (never a key).
std::string Door::protection() const {
  auto suite = [](const std::string &s) { return s.empty() ? std::string("none") : s; };
  auto yes = [](bool b) { return std::string(b ? "yes" : "no"); };
  return "audio_srtp=" + suite(media_ ? media_->audio_srtp() : "") +
         " video_srtp=" + suite(media_ ? media_->video_srtp() : "") +
         " audio_rtcp_mux=" + yes(media_ && media_->audio_rtcp_mux()) +
         " video_rtcp_mux=" + yes(media_ && media_->video_rtcp_mux());
}

void Door::send_alarm(const std::string &text) {
  account_.send_message(settings_.target, "portier-door alarm: " + text);
  PLOG_INFO("door: alarm sent to %s", settings_.target.c_str());
}

void Door::write_status(json::Writer &w) const {
  w.field("aor", settings_.account.aor)
      .field("registered", account_.registered())
      .field("registration", account_.registration())
      .field("call", call_name(call_.state()))
      .field("peer", peer_)
      .field("video_source", camera_->source())
      .field("video_encoder", camera_->encoder())
      .field("camera_running", camera_->running())
      .field("camera_consumers", camera_->consumers())
      .field("video_packets_sent", media_ ? media_->video_packets_sent() : 0)
      .field("audio_codec", media_ ? media_->audio_codec() : "")
      .field("audio_rate", media_ ? media_->audio_rate() : 0)
      .field("audio_packets_received", media_ ? media_->audio_packets_received() : 0)
      .field("foreign_media_dropped", media_ ? media_->foreign_packets_dropped() : 0)
      .field("audio_srtp", media_ ? media_->audio_srtp() : "")
      .field("video_srtp", media_ ? media_->video_srtp() : "")
      .field("srtp_dropped", media_ ? media_->srtp_dropped() : 0)
      .field("audio_rtcp_mux", media_ && media_->audio_rtcp_mux())
      .field("video_rtcp_mux", media_ && media_->video_rtcp_mux())
      .field("media", media_ ? media_->pipeline_state() : "none");
}

}  // namespace portier::door
