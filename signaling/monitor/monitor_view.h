// What the window face shows, in plain C++: a snapshot of the Monitor core's
// state (MonitorView), and from it the caller / state line, the registration
// line, the window title and which controls make sense now. The GTK side
// (monitor_window.cpp) only copies these onto widgets, so the rules are
// unit-tested without a display.
#pragma once

#include <string>
#include <vector>

#include "monitor/call_signals.h"
#include "monitor/monitor_config.h"

namespace portier::monitor {

struct MonitorView {
  std::string aor;
  bool registered = false;
  std::string registration;  // "registered", "not registered", "refused: ..."
  CallState state = CallState::Idle;
  std::string reason;  // why the last call ended
  bool incoming = false;
  std::string peer;  // the caller, or the door called
  bool mic_on = true;
  ActionMethod action_method = ActionMethod::Dtmf;
  bool has_open_door = false, has_light = false;  // a code is configured
  bool has_doors = false;                         // [doors] is not empty
};

// Which controls can do something now (the core refuses the rest anyway).
struct Controls {
  bool answer = false;     // an incoming call rings
  bool open_door = false;  // the code can be sent now
  bool light = false;
  bool mic = true;      // the choice is kept across calls, so always
  bool hangup = false;  // a call (ringing: declines it; ours: cancels it)
  bool doors = false;   // no call: choosing a door calls it
};
Controls controls_for(const MonitorView &v);

// The incoming call rings (before anyone answered): the window says so loudly.
bool is_ringing(const MonitorView &v);

// "Ringing: sip:door@home.example", "Answered: ...", "Answered elsewhere", ...
std::string call_line(const MonitorView &v);
// "Registered as sip:monitor1@home.example" or "Not registered (...)".
std::string registration_line(const MonitorView &v);
// "portier - RINGING: sip:door@home.example" while it rings, else "portier - sip:monitor1@...".
std::string window_title(const MonitorView &v);

}  // namespace portier::monitor
