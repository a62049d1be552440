// portier-door's SIP side on sofia-sip nua: it registers with digest auth and
// keeps the registration fresh, calls the home when the button is pressed,
// sends its camera from the first 183 on (early media), talks after the 200,
// takes door-open codes (RFC 4733 events, INFO dtmf-relay, MESSAGE) and
// keyframe requests (INFO picture_fast_update), and answers the callers its
// config allows with its camera (seed scenario 2).
//
// nua runs with its media handling off: every SDP body is checked by
// sdp::parse before anything else reads it (see sip/sdp/offer_answer.h).
#pragma once

#include <sofia-sip/nua.h>
#include <sofia-sip/su_wait.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/control_socket.h"
#include "common/json.h"
#include "sip/sdp/offer_answer.h"
#include "sip/sip_account.h"
#include "sip/sip_call.h"
#include "door/door_camera.h"
#include "door/door_config.h"
#include "door/door_media.h"
#include "runtime/control_socket.h"
#include "sip/sdp/offer_answer.h"
#include "sip/sip_account.h"

namespace portier::door {

// What the door does with codes and presses; the daemon wires it to the
// action logic (door_core). Identities are normalized AORs.
struct DoorHooks {
  // A DTMF digit from RFC 4733 or INFO, or a whole code from MESSAGE, sent
  // by `identity` inside a call. Returns a short log-safe outcome.
  std::function<std::string(const std::string &identity, char digit)> digit;
  std::function<std::string(const std::string &identity, const std::string &code)> code;
  // An RFC 4733 packet (rtp timestamp, sequence, marker bit, payload) -> the
  // new key presses in it (de-duplicated by the hook).
  std::function<std::string(uint32_t ts, uint16_t seq, bool marker,
                            const std::vector<uint8_t> &payload)>
      telephone_event;
  // A new call's audio stream: forget the last one's events.
  std::function<void()> call_started;
  // The call with `identity` ended: keys typed so far are dropped.
  std::function<void(const std::string &identity)> call_ended;
  // An event line (ring, early_media, answered, ended, ...).
  std::function<void(const std::string &kind, const std::string &details)> event;
  // The visitor's picture at each ring (JPEG bytes; empty with *error when
  // the camera had none) and the ring's time, for the event log.
  std::function<void(const std::string &jpeg, const std::string &error)> ring_snapshot;
};

class Door {
 public:
  Door(DoorSettings settings, DoorHooks hooks);
  ~Door();
  Door(const Door &) = delete;
  Door &operator=(const Door &) = delete;

  bool start(su_root_t *root, std::string *error);
  // Unregisters and ends a call; `done` runs once nua has shut down.
  void stop(std::function<void()> done);

  // The button: calls the target unless a call is already ringing or going on.
  // Returns what happened ("calling", "busy: ringing").
  std::string press();
  std::string hangup(const std::string &why = "hung up by the door");
  // The door's fields of `portierctl status`, into an open object.
  void write_status(json::Writer &w) const;
  // Tells the residents (a SIP MESSAGE, text/plain, to [call] target, which
  // portier-monitor shows as an alarm): someone is guessing the code.
  void send_alarm(const std::string &text);
  std::string protection() const;
  DoorCamera &camera() { return *camera_; }
  // [account]'s TLS files loaded again (sip::Account::reload_tls).
  std::string reload_tls() { return account_.reload_tls(); }

 private:
  void handle(nua_event_t event, int status, const char *phrase, nua_handle_t *nh, const sip_t *sip,
              tagi_t *tags);
  int registration_failed(int status, const char *phrase, bool refused);
  // `who`: the caller's proven identity (sip::Account::admit).
  void on_incoming_invite(nua_handle_t *nh, const sip_t *sip, const std::string &who);
  void on_answered(const sip_t *sip);
  void on_call_ended(const sip::Call::Ended &e);
  void on_info(nua_handle_t *nh, const sip_t *sip);
  void on_message(nua_handle_t *nh, const sip_t *sip, const std::string &who);
  void call_ended(const std::string &why);
  void key_from_peer(char key, const char *via);
  bool open_media(std::string *error);
  void arm_timer(guint *id, int seconds, bool ring);
  void emit(const std::string &kind, const std::string &details = "");
  // An "audio" event line when the call's audio codec is agreed or changes.
  void report_audio();
  // *who gets the sender's proven identity.
  bool from_trusted_hop(nua_handle_t *nh, const char *method, std::string *who);

  DoorSettings settings_;
  DoorHooks hooks_;
  // Whom the call's keys come from: the caller, or the device that answered
  // as the proxy proved it ("" when unproven: codes refused).
  std::string peer_;
  std::string audio_reported_;  // the codec of the last "audio" event line of this call
  guint ring_timer_ = 0, duration_timer_ = 0;
  int64_t pressed_at_us_ = 0;
  std::unique_ptr<DoorCamera> camera_;  // before media_: calls feed from it
  std::unique_ptr<DoorMedia> media_;
  // nua goes first (nua_destroy) when the door does: only call_, which owns
  // nothing of nua's, goes before it.
  sip::Account account_;
  sip::Call call_;  // the one call (the door has one camera)
};

}  // namespace portier::door
