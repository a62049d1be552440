#include "monitor/monitor_control.h"

namespace portier::monitor {
namespace {

std::string reply(const Outcome &o) {
  return o.ok ? control::result(o.text) : control::error(o.text);
}

}  // namespace

std::vector<control::Command> control_commands(Monitor &monitor, const events::Writer &events,
                                               const std::function<std::string()> &window_json) {
  using Args = const std::string &;
  return {
      {"status", "", "registration, call, media figures, first frame",
       [&monitor](Args) { return monitor.status_json(); }},
      {"answer", "", "answer the ringing call",
       [&monitor](Args) { return reply(monitor.answer()); }},
      {"hangup", "", "end the call", [&monitor](Args) { return reply(monitor.hangup()); }},
      {"decline", "", "refuse the ringing call",
       [&monitor](Args) { return reply(monitor.decline()); }},
      {"mic", "on|off", "open or close the microphone",
       [&monitor](Args arg) {
         if (arg == "on" || arg == "off") return reply(monitor.set_mic(arg == "on"));
         return reply(Outcome::fail("mic on|off"));
       }},
      {"action", "open-door|light", "send the door the action's code",
       [&monitor](Args arg) { return reply(monitor.action(arg)); }},
      {"call", "DOOR", "call a door of [doors] to watch its camera",
       [&monitor](Args arg) { return reply(monitor.call(arg)); }},
      {"doors", "", "the doors it can call", [&monitor](Args) { return monitor.doors_json(); }},
      {"snapshot", "PATH.png", "save the last decoded picture as a PNG",
       [&monitor](Args arg) { return reply(monitor.snapshot(arg)); }},
      {"events", "", "the last event lines", [&events](Args) { return events.json_array(); }},
      {"window", "", "what the window shows (window mode)",
       [window_json](Args) {
         return window_json ? window_json() : reply(Outcome::fail("no window: running headless"));
       }},
  };
}

}  // namespace portier::monitor
