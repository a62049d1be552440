// portier-monitor's core on sofia-sip nua: it registers with digest auth and
// keeps the registration alive (again with backoff when it fails), rings with
// the door's video before anyone answers (180, then 183 with a recvonly SDP
// answer: early media), answers (200 sendrecv: two-way audio), hangs up,
// sends the door actions (RFC 4733 events, INFO dtmf-relay or MESSAGE), asks
// for a keyframe when the picture is late (RTCP PLI, INFO picture_fast_update),
// and calls a door to watch its camera. Both faces (headless: the control
// socket; window: buttons) drive the same methods.
//
// nua runs with its media handling off: every SDP body is checked by
// sdp::parse before anything else reads it (see sip/sdp/offer_answer.h).
#pragma once

#include <glib.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/su_wait.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "common/event_writer.h"
#include "monitor/call_signals.h"
#include "monitor/monitor_config.h"
#include "monitor/monitor_media.h"
#include "monitor/monitor_view.h"
#include "sip/sdp/offer_answer.h"
#include "sip/sip_account.h"
#include "sip/sip_call.h"

namespace portier::monitor {

// What a command did: ok with a short result, or an error message.
struct Outcome {
  bool ok = true;
  std::string text;
  static Outcome done(std::string t) { return {true, std::move(t)}; }
  static Outcome fail(std::string t) { return {false, std::move(t)}; }
};

class Monitor {
 public:
  Monitor(MonitorSettings settings, events::Writer &events);
  ~Monitor();
  Monitor(const Monitor &) = delete;
  Monitor &operator=(const Monitor &) = delete;

  bool start(su_root_t *root, std::string *error);
  // Ends a call, unregisters; `done` runs once nua has shut down.
  void stop(std::function<void()> done);

  Outcome answer();
  Outcome hangup();
  Outcome decline();
  Outcome set_mic(bool on);
  Outcome action(const std::string &name);  // "open-door" or "light"
  Outcome call(const std::string &door_name);
  Outcome snapshot(const std::string &path) const;

  std::string status_json() const;
  std::string doors_json() const;
  CallState state() const { return call_.state(); }
  MonitorView view() const;
  const std::vector<MonitorSettings::Door> &doors() const { return settings_.doors; }
  // [account]'s TLS files loaded again (sip::Account::reload_tls).
  std::string reload_tls() { return account_.reload_tls(); }

  // The window face: `changed` runs after anything the core did (a SIP event,
  // a milestone), so a face can redraw from view(); `display_sink` makes the
  // sink that shows each call's video beside the frame counter (null: none).
  void set_on_change(std::function<void()> changed) { on_change_ = std::move(changed); }
  void set_display_sink(std::function<GstElement *()> make) { display_sink_ = std::move(make); }

 private:
  void handle(nua_event_t event, int status, const char *phrase, nua_handle_t *nh, const sip_t *sip,
              tagi_t *tags);
  void on_registered(bool first);
  int registration_failed(int status, const char *phrase, bool refused);
  // `who`: the caller's identity as the proxy proved it (sip::Account::admit).
  void on_incoming_invite(nua_handle_t *nh, const sip_t *sip, const std::string &who);
  void on_call_ended(const sip::Call::Ended &e);
  void on_info(nua_handle_t *nh, const sip_t *sip);
  // A MESSAGE the proxy proved came from `who`: a door's alarm (text/plain).
  void on_message(nua_handle_t *nh, const sip_t *sip, const std::string &who);
  void on_info_response(int status, const char *phrase, nua_handle_t *nh, const sip_t *sip);
  bool new_media(std::string *error);
  void on_first_video_rtp();
  void on_first_frame(int width, int height);
  void keyframe_check();
  void queue_info(const char *content_type, std::string body);
  void send_next_info();
  void call_ended(const std::string &reason);
  void emit(const std::string &kind, std::vector<events::Field> fields = {});
  int64_t since_invite_ms() const;

  MonitorSettings settings_;
  events::Writer &events_;
  std::function<void()> on_change_;
  std::function<GstElement *()> display_sink_;

  int reg_backoff_s_ = 0;  // the next registration retry's delay; 0 after a success

  std::string reason_;             // why the last call ended
  int64_t invite_us_ = 0;          // monotonic µs: the INVITE came in or went out
  int64_t first_rtp_ms_ = -1, first_frame_ms_ = -1, first_frame_wall_ms_ = -1;
  guint keyframe_timer_ = 0;
  int keyframe_requests_ = 0;
  int actions_sent_ = 0;
  int alarms_ = 0;
  std::string alarm_;   // the last alarm's text: someone guessed a door's code
  bool mic_on_ = true;  // the resident's choice, kept across calls
  std::deque<std::pair<std::string, std::string>> info_queue_;  // (content type, body)
  bool info_in_flight_ = false;
  std::pair<std::string, std::string> info_sent_;  // the INFO in flight, sent again if challenged
  int info_auth_tries_ = 0;
  std::unique_ptr<MonitorMedia> media_;  // kept after the call for its figures and snapshot
  // nua goes first (nua_destroy) when the monitor does: only call_, which
  // owns nothing of nua's, goes before it.
  sip::Account account_;
  sip::Call call_;  // the one call (a monitor shows one door at a time)
};

}  // namespace portier::monitor
