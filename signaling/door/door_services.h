// What portier-door does around its calls, wired to the SIP side through
// DoorHooks: the action gate (codes, who may use them, lock-out), the
// actuators it pulses, the bell button, the event log with the ring
// snapshots. Runs on the GLib main loop.
#pragma once

#include <glib.h>

#include <functional>
#include <memory>
#include <string>

#include "common/json.h"
#include "door/actions.h"
#include "door/door.h"
#include "door/door_config.h"
#include "door/dtmf.h"
#include "door/event_log.h"

namespace portier::door {

class DoorServices {
 public:
  // `event_line` receives every event for the control socket and the log.
  using EventLine = std::function<void(const std::string &kind, const std::string &details)>;
  DoorServices(const DoorSettings &settings, EventLine event_line);
  ~DoorServices();
  DoorServices(const DoorServices &) = delete;
  DoorServices &operator=(const DoorServices &) = delete;

  // Opens the actuators, the button and the event log. False with *error (a
  // missing GPIO chip, an unwritable event directory).
  bool open(std::string *error);
  // The hooks the Door calls.
  DoorHooks hooks();
  // Presses of the bell button go to `press` (the Door guards against a
  // second call itself).
  void watch_button(std::function<void()> press);
  // Too many wrong codes from all identities (ActionGate's alarm): `alarm`
  // gets a log-safe text for the residents (the Door sends it to the
  // monitors). The event line "alarm" is written either way.
  void on_alarm(std::function<void(const std::string &text)> alarm) { alarm_ = std::move(alarm); }
  // Its fields of `portierctl status`, into an open object.
  void write_status(json::Writer &w) const;

 private:
  std::string on_key(const std::string &who, char key);
  std::string on_code(const std::string &who, const std::string &code);
  std::string decide(const std::string &who, const Decision &d);
  void log_event(EventKind kind, const std::string &who, const std::string &action,
                 const std::string &result, const std::string &detail,
                 const std::string &snapshot = "");
  static gboolean on_button(gint fd, GIOCondition, gpointer self);
  static gboolean on_actuator(gint fd, GIOCondition, gpointer self);

  const DoorSettings &settings_;
  EventLine event_line_;
  ActionGate gate_;
  DoorActuators actuators_;
  std::unique_ptr<Button> button_;
  guint button_source_ = 0;
  std::function<void()> press_;
  std::function<void(const std::string &)> alarm_;
  EventLog log_;
  bool log_open_ = false;
  DtmfDeduplicator dtmf_;
  std::string ring_;  // the current visit's id (its time), "" between rings
  clock::Stamp ring_time_;
  struct Running {
    DoorServices *self;
    std::string action;
    Actuator *actuator;
    guint source;
  };
  std::vector<std::unique_ptr<Running>> running_;
  int opened_ = 0, refused_ = 0, alarms_ = 0;
};

}  // namespace portier::door
