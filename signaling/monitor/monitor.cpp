#include "monitor/monitor.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_status.h>

#include "common/json.h"
#include "common/log.h"
#include "common/sip_text.h"
#include "sip/sip_message.h"

namespace portier::monitor {
namespace {

using events::field;
using sipmsg::body;
using sipmsg::body_is;

constexpr int kMaxKeyframeRequests = 5;
constexpr int kKeyframeRetryMs = 1000;
constexpr int kDtmfInfoDurationMs = 100;


}  // namespace

Monitor::Monitor(MonitorSettings settings, events::Writer &events)
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
           }}),
      call_(account_, "monitor",
            {[this](bool early) -> std::optional<sdp::LocalMedia> {
               if (!media_) return std::nullopt;
               return media_->local(early);
             },
             [this](const std::vector<sdp::Agreed> &agreed, std::string *error) {
               return media_ && media_->apply(agreed, error);
             },
             [this](int) {
               emit("early",
                    {field("to", call_.remote()), field("since_invite_ms", since_invite_ms())});
             },
             [this](const sip_t *) {
               // A plain answer is never applied where SRTP is mandatory
               // (sdp::apply_answer): the call has no media, so it ends.
               if (settings_.media.media_encryption_mandatory &&
                   (!media_ || (media_->audio_srtp().empty() && media_->video_srtp().empty()))) {
                 PLOG_WARN(
                     "monitor: the answer has no SRTP and media-encryption-mandatory is "
                     "on: hanging up");
                 hangup();
                 return;
               }
               emit("answered",
                    {field("by", call_.remote()), field("since_invite_ms", since_invite_ms()),
                     field("audio_srtp", media_ ? media_->audio_srtp() : ""),
                     field("video_srtp", media_ ? media_->video_srtp() : ""),
                     field("rtcp_mux", media_ && media_->audio_rtcp_mux()),
                     field("audio", media_ ? media_->audio_codec() : "")});
             },
             [this](const sip::Call::Ended &e) { on_call_ended(e); }}) {}

Monitor::~Monitor() {
  on_change_ = nullptr;
  if (keyframe_timer_) g_source_remove(keyframe_timer_);
  media_.reset();
}

void Monitor::emit(const std::string &kind, std::vector<events::Field> fields) {
  // The call's id on the call's lines (the last one on its "ended" line).
  if (!call_.call_id().empty() && (in_call(call_.state()) || kind == "ended"))
    fields.insert(fields.begin(), field("call_id", call_.call_id()));
  events_.add(kind, fields);
  if (on_change_) on_change_();
}

int64_t Monitor::since_invite_ms() const { return (g_get_monotonic_time() - invite_us_) / 1000; }

bool Monitor::start(su_root_t *root, std::string *error) {
  if (!settings_.instance_id.empty())
    PLOG_INFO("monitor: instance %s (+sip.instance in the REGISTER's Contact)",
              settings_.instance_id.c_str());
  if (!settings_.push_provider.empty())
    PLOG_INFO(
        "monitor: push parameters in the REGISTER's Contact: pn-provider %s, pn-param %s "
        "(the token is not logged)",
        settings_.push_provider.c_str(),
        settings_.push_param.empty() ? "none" : settings_.push_param.c_str());
  return account_.start(root, error);
}

void Monitor::stop(std::function<void()> done) {
  hangup();
  account_.stop(std::move(done));
}

void Monitor::handle(nua_event_t event, int status, const char *phrase, nua_handle_t *nh,
                     const sip_t *sip, tagi_t *tags) {
  if (call_.handle(event, status, phrase, nh, sip, tags)) return;
  switch (event) {
    case nua_i_invite: {
      // A call straight to our contact, not through the proxy, could name
      // anyone as caller (RFC 3325 §3): 403. Without the proxy's proof of
      // the caller's identity, a door is anyone's claim.
      std::string source, why, who;
      if (account_.admit(nh, "INVITE", &source, &why, &who))
        on_incoming_invite(nh, sip, who);
      else
        events_.add("refused", {field("source", source), field("reason", why)});
      break;
    }
    case nua_i_message: {
      // Only a door's alarm, through the proxy, with its proof of who sent it.
      std::string source, why, who;
      if (account_.admit(nh, "MESSAGE", &source, &why, &who))
        on_message(nh, sip, who);
      else
        events_.add("refused", {field("source", source), field("reason", why)});
      break;
    }
    case nua_i_info:
      on_info(nh, sip);
      break;
    case nua_r_info:
      if (status >= 200) on_info_response(status, phrase, nh, sip);
      break;
    case nua_r_invite:  // the INVITE of a call that is over
    case nua_i_cancel:
    case nua_i_bye:
    case nua_i_state:
      break;
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
  return media_->open(error);
}

void Monitor::on_incoming_invite(nua_handle_t *nh, const sip_t *sip, const std::string &who) {
  const std::string cid =
      sip && sip->sip_call_id && sip->sip_call_id->i_id ? sip->sip_call_id->i_id : "";
  if (in_call(call_.state())) {
    PLOG_INFO("monitor: call from %s refused: busy (%s)", who.c_str(),
              call_state_name(call_.state()));
    call_.refuse(nh, SIP_486_BUSY_HERE);
    events_.add("busy", {field("call_id", cid), field("from", who)});
    return;
  }
  if (call_.refuse_offerless(nh, sip)) {
    events_.add("refused",
                {field("call_id", cid), field("from", who), field("why", "no SDP offer")});
    return;
  }
  std::string error;
  const int64_t previous_invite_us = invite_us_;
  invite_us_ = g_get_monotonic_time();
  // It rings with the caller's media (early, recvonly): sip::Call::accept.
  if (!new_media(&error) || !call_.accept(nh, sip, who, true, &error)) {
    PLOG_WARN("monitor: call from %s refused: %s", who.c_str(), error.c_str());
    call_.refuse(nh, 488, "Not Acceptable Here", error);
    invite_us_ = previous_invite_us;
    media_.reset();
    events_.add("refused", {field("call_id", cid), field("from", who), field("why", error)});
    return;
  }
  reason_.clear();
  emit("ringing", {field("from", who)});
  emit("early", {field("from", who), field("since_invite_ms", since_invite_ms())});
}

Outcome Monitor::answer() {
  const CallState s = call_.state();
  if (!call_.incoming() || (s != CallState::Ringing && s != CallState::Early))
    return Outcome::fail(std::string("nothing to answer (") + call_state_name(s) + ")");
  // The same offer answered again, now sendrecv: a new version of our SDP
  // (RFC 3264 §8), which the proxy's relay and the door take from the 200.
  std::string error;
  if (!call_.answer(&error)) {
    PLOG_WARN("monitor: cannot answer: %s", error.c_str());
    return Outcome::fail("cannot answer: " + error);
  }
  emit("answered", {field("from", call_.remote()), field("since_invite_ms", since_invite_ms()),
                    field("audio_srtp", media_ ? media_->audio_srtp() : ""),
                    field("video_srtp", media_ ? media_->video_srtp() : ""),
                    field("rtcp_mux", media_ && media_->audio_rtcp_mux()),
                    field("audio", media_ ? media_->audio_codec() : "")});
  return Outcome::done("answered");
}

Outcome Monitor::decline() {
  const CallState s = call_.state();
  if (!call_.incoming() || (s != CallState::Ringing && s != CallState::Early))
    return Outcome::fail(std::string("nothing to decline (") + call_state_name(s) + ")");
  return hangup();
}

Outcome Monitor::hangup() {
  switch (call_.hangup()) {
    case sip::CallLeg::Hangup::decline:
      call_ended(kDeclined);
      return Outcome::done("declined");
    case sip::CallLeg::Hangup::cancel:
      call_ended("cancelled");
      return Outcome::done("cancelled");
    case sip::CallLeg::Hangup::bye:
      call_ended("hung up");
      return Outcome::done("hung up");
    case sip::CallLeg::Hangup::none:
      break;
  }
  return Outcome::fail("no call");
}

void Monitor::on_call_ended(const sip::Call::Ended &e) {
  switch (e.why) {
    case sip::CallEnd::bye:
      call_ended("remote hung up");
      break;
    case sip::CallEnd::cancel: {
      bool elsewhere = false;
      for (const sip_reason_t *re = e.sip ? e.sip->sip_reason : nullptr; re && !elsewhere;
           re = re->re_next) {
        std::vector<std::string_view> params;
        for (const char *const *p = re->re_params; p && *p; ++p) params.emplace_back(*p);
        elsewhere = reason_is_answered_elsewhere(re->re_protocol ? re->re_protocol : "", params);
      }
      call_ended(elsewhere ? kAnsweredElsewhere : kMissed);
      break;
    }
    case sip::CallEnd::rejected:
      call_ended("failed: " + std::to_string(e.status) + " " + e.phrase);
      break;
    case sip::CallEnd::unauthenticated:
      call_ended("authentication failed");
      break;
    case sip::CallEnd::terminated:
      call_ended(e.was == CallState::Answered ? "terminated" : "failed");
      break;
  }
}

Outcome Monitor::call(const std::string &door_name) {
  if (in_call(call_.state()))
    return Outcome::fail(std::string("busy: ") + call_state_name(call_.state()));
  std::string target;
  for (const auto &d : settings_.doors)
    if (d.name == door_name) target = d.aor;
  if (target.empty()) return Outcome::fail("no door '" + door_name + "' in [doors]");
  std::string error;
  if (!new_media(&error) || !call_.dial(target, &error)) {
    media_.reset();
    return Outcome::fail("media: " + error);
  }
  reason_.clear();
  invite_us_ = g_get_monotonic_time();
  emit("calling", {field("to", target), field("door", door_name)});
  return Outcome::done("calling " + target);
}

// INFO inside a call, answered per RFC 6086 legacy usage (call_signals.h).
void Monitor::on_info(nua_handle_t *nh, const sip_t *sip) {
  if (!call_.owns(nh) || !in_call(call_.state())) {
    nua_respond(nh, 481, "Call/Transaction Does Not Exist", NUTAG_WITH_THIS(account_.nua()),
                TAG_END());
    if (!call_.owns(nh)) sipmsg::destroy_when_idle(nh);
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
  if (info_in_flight_ || info_queue_.empty() || !call_.handle()) return;
  info_sent_ = std::move(info_queue_.front());
  info_queue_.pop_front();
  info_in_flight_ = true;
  info_auth_tries_ = 0;
  nua_info(call_.handle(), SIPTAG_CONTENT_TYPE_STR(info_sent_.first.c_str()),
           SIPTAG_PAYLOAD_STR(info_sent_.second.c_str()), TAG_END());
}

// The peer (or a proxy on the way) may challenge an INFO too (RFC 3261
// §22.1): the same INFO again, with credentials, in the same dialog.
void Monitor::on_info_response(int status, const char *phrase, nua_handle_t *nh, const sip_t *sip) {
  if ((status == 401 || status == 407) && call_.owns(nh)) {
    tag_type_t tag;
    std::string header;
    const auto a = account_.credentials(nh, sip, &info_auth_tries_, "INFO", call_.remote_target(),
                                        &tag, &header);
    if (a == sip::Account::Auth::restarted) return;
    if (a == sip::Account::Auth::resend) {
      nua_info(nh, SIPTAG_CONTENT_TYPE_STR(info_sent_.first.c_str()),
               SIPTAG_PAYLOAD_STR(info_sent_.second.c_str()), tag, tag_str_v(header.c_str()),
               TAG_END());
      return;
    }
  } else if (status >= 300) {
    PLOG_WARN("monitor: INFO to %s: %d %s", call_.remote().c_str(), status, phrase ? phrase : "");
  }
  std::fill(info_sent_.second.begin(), info_sent_.second.end(), '\0');
  info_in_flight_ = false;
  send_next_info();
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
      if (call_.state() != CallState::Answered || !media_)
        return Outcome::fail("DTMF needs an answered call");
      if (!media_->send_dtmf(*code, &error)) return Outcome::fail(error);
      break;
    case ActionMethod::Info:
      if (call_.state() != CallState::Answered) return Outcome::fail("INFO needs an answered call");
      for (char key : *code)
        queue_info("application/dtmf-relay", dtmf_relay_body(key, kDtmfInfoDurationMs));
      break;
    case ActionMethod::Message: {
      // To the door we talk to, else to the first door we know.
      std::string target = in_call(call_.state()) ? call_.remote() : "";
      if (target.empty() && !settings_.doors.empty()) target = settings_.doors.front().aor;
      if (target.empty()) return Outcome::fail("no call and no door in [doors] to send it to");
      account_.send_message(target, *code);
      break;
    }
  }
  ++actions_sent_;
  // Never the code: only which action, how, and to whom.
  emit("action_sent",
       {field("action", name), field("method", method), field("to", call_.remote())});
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
  if (!in_call(call_.state())) return;
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
  if (!media_ || !in_call(call_.state()) || media_->frames_decoded() > 0) return;
  if (keyframe_requests_ >= kMaxKeyframeRequests) return;
  std::string via;
  if (settings_.media.keyframe.rtcp && media_->request_keyframe()) via = "rtcp";
  if (settings_.media.keyframe.info && call_.handle() && call_.state() != CallState::Calling) {
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
  if (!in_call(call_.state()) || first_frame_ms_ >= 0) return;
  if (keyframe_timer_) g_source_remove(keyframe_timer_), keyframe_timer_ = 0;
  const clock::Stamp t = clock::Stamp::now();
  first_frame_ms_ = since_invite_ms();
  first_frame_wall_ms_ = t.wall_ms;
  std::vector<events::Field> fields{field("call_id", call_.call_id()),
                                    field("since_invite_ms", first_frame_ms_),
                                    field("width", width),
                                    field("height", height),
                                    field("codec", media_->video_codec()),
                                    field("decoder", media_->video_decoder())};
  events_.add_at("first_frame", fields, t);
}

// The call is over (its handle is released): the monitor's side of it.
void Monitor::call_ended(const std::string &reason) {
  if (keyframe_timer_) g_source_remove(keyframe_timer_), keyframe_timer_ = 0;
  info_queue_.clear();
  info_in_flight_ = false;
  std::fill(info_sent_.second.begin(), info_sent_.second.end(), '\0');
  const uint64_t frames = media_ ? media_->frames_decoded() : 0;
  const uint64_t sent = media_ ? media_->audio_packets_sent() : 0;
  const uint64_t received = media_ ? media_->audio_packets_received() : 0;
  if (media_) media_->close();  // kept for its figures and the last frame
  reason_ = reason;
  emit("ended", {field("reason", reason), field("since_invite_ms", since_invite_ms()),
                 field("frames_decoded", static_cast<int64_t>(frames)),
                 field("audio_packets_sent", static_cast<int64_t>(sent)),
                 field("audio_packets_received", static_cast<int64_t>(received))});
}

std::string Monitor::status_json() const {
  const MonitorMedia *m = media_.get();
  json::Writer w;
  // A figure not measured yet (no RTP, no frame) is null.
  auto ms = [&w](const char *key, int64_t v) -> json::Writer & {
    return v < 0 ? w.key(key).null() : w.field(key, v);
  };
  w.begin_object()
      .field("aor", settings_.account.aor)
      .field("registered", account_.registered())
      .field("registration", account_.registration())
      .field("instance_id", settings_.instance_id)
      .field("push_provider", settings_.push_provider)
      .field("call", call_state_name(call_.state()))
      .field("reason", reason_)
      .field("direction", call_.state() == CallState::Idle ? ""
                          : call_.incoming()               ? "incoming"
                                                           : "outgoing")
      .field("peer", call_.remote())
      .field("call_id", call_.call_id())
      .field("frames_decoded", m ? m->frames_decoded() : 0)
      .field("video_packets_received", m ? m->video_packets_received() : 0);
  ms("first_rtp_ms", first_rtp_ms_);
  ms("first_frame_ms", first_frame_ms_);
  ms("first_frame_wall_ms", first_frame_wall_ms_);
  if (first_frame_wall_ms_ < 0)
    w.key("first_frame_wall").null();
  else
    w.field("first_frame_wall", events::iso8601_utc(first_frame_wall_ms_));
  w.field("video_codec", m ? m->video_codec() : "")
      .field("video_decoder", m ? m->video_decoder() : "")
      .field("width", m ? m->width() : 0)
      .field("height", m ? m->height() : 0)
      .field("keyframe_requests", keyframe_requests_)
      .field("audio_codec", m ? m->audio_codec() : "")
      .field("audio_rate", m ? m->audio_rate() : 0)
      .field("audio_packets_sent", m ? m->audio_packets_sent() : 0)
      .field("audio_packets_received", m ? m->audio_packets_received() : 0)
      .field("audio_srtp", m ? m->audio_srtp() : "")
      .field("video_srtp", m ? m->video_srtp() : "")
      .field("srtp_dropped", m ? m->srtp_dropped() : 0)
      .field("nat_keepalives", m ? m->nat_keepalives() : 0)
      .field("audio_rtcp_mux", m && m->audio_rtcp_mux())
      .field("video_rtcp_mux", m && m->video_rtcp_mux())
      .field("mic", mic_on_ ? "on" : "off")
      .field("dtmf_keys_sent", m ? m->dtmf_keys_sent() : 0)
      .field("actions_sent", actions_sent_)
      .field("action_method", action_method_name(settings_.action_method))
      .field("alarms", alarms_)
      .field("alarm", alarm_);
  return w.end_object().take();
}

MonitorView Monitor::view() const {
  MonitorView v;
  v.aor = settings_.account.aor;
  v.registered = account_.registered();
  v.registration = account_.registration();
  v.state = call_.state();
  v.reason = reason_;
  v.incoming = call_.incoming();
  v.peer = call_.remote();
  v.mic_on = mic_on_;
  v.action_method = settings_.action_method;
  v.has_open_door = !settings_.open_door_code.empty();
  v.has_light = !settings_.light_code.empty();
  v.has_doors = !settings_.doors.empty();
  return v;
}

std::string Monitor::doors_json() const {
  json::Writer w;
  w.begin_object().key("doors").begin_array();
  for (const auto &door : settings_.doors)
    w.begin_object().field("name", door.name).field("aor", door.aor).end_object();
  return w.end_array().end_object().take();
}

}  // namespace portier::monitor
