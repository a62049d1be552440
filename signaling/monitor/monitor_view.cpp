#include "monitor/monitor_view.h"

namespace portier::monitor {
namespace {

// Whether `action` could be sent now, as Monitor::action() decides it.
bool action_possible(const MonitorView &v, bool has_code) {
  if (!has_code) return false;
  if (v.action_method == ActionMethod::Message) return in_call(v.state) || v.has_doors;
  return v.state == CallState::Answered;
}

std::string capitalized(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

}  // namespace

Controls controls_for(const MonitorView &v) {
  Controls c;
  c.answer = is_ringing(v);
  c.open_door = action_possible(v, v.has_open_door);
  c.light = action_possible(v, v.has_light);
  c.hangup = in_call(v.state);
  c.doors = v.has_doors && !in_call(v.state);
  return c;
}

bool is_ringing(const MonitorView &v) {
  return v.incoming && (v.state == CallState::Ringing || v.state == CallState::Early);
}

std::string call_line(const MonitorView &v) {
  switch (v.state) {
    case CallState::Idle:
      return "No call";
    case CallState::Ringing:
    case CallState::Early:
      return (v.incoming ? "Ringing: " : "Connecting: ") + v.peer;
    case CallState::Calling:
      return "Calling: " + v.peer;
    case CallState::Answered:
      return (v.incoming ? "Answered: " : "Watching: ") + v.peer;
    case CallState::Ended:
      if (v.reason == kMissed) return "Missed call: " + v.peer;
      return v.reason.empty() ? std::string("Call ended") : capitalized(v.reason);
  }
  return "";
}

std::string registration_line(const MonitorView &v) {
  if (v.registered) return "Registered as " + v.aor;
  return "Not registered (" + v.registration + ")";
}

std::string window_title(const MonitorView &v) {
  if (is_ringing(v)) return "portier - RINGING: " + v.peer;
  return "portier - " + v.aor;
}

}  // namespace portier::monitor
