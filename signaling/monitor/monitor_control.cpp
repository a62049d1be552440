#include "monitor/monitor_control.h"

#include "common/json.h"

namespace portier::monitor {
namespace {

std::string reply(const Outcome &o) {
  return std::string("{\"") + (o.ok ? "result" : "error") + "\":" + json::quote(o.text) + "}";
}

constexpr const char *kUsage =
    "unknown command (status, answer, hangup, decline, mic on|off, action open-door|light, "
    "call <door>, doors, snapshot <path.png>, events, window, ping)";

}  // namespace

std::string control_command(Monitor &monitor, const EventSink &events, const std::string &line,
                            const std::function<std::string()> &window_json) {
  const size_t sp = line.find(' ');
  const std::string cmd = line.substr(0, sp);
  std::string arg = sp == std::string::npos ? "" : line.substr(sp + 1);
  while (!arg.empty() && arg.back() == ' ') arg.pop_back();
  while (!arg.empty() && arg.front() == ' ') arg.erase(0, 1);
  if (cmd == "status") return monitor.status_json();
  if (cmd == "answer") return reply(monitor.answer());
  if (cmd == "hangup") return reply(monitor.hangup());
  if (cmd == "decline") return reply(monitor.decline());
  if (cmd == "mic") {
    if (arg == "on" || arg == "off") return reply(monitor.set_mic(arg == "on"));
    return reply(Outcome::fail("mic on|off"));
  }
  if (cmd == "action") return reply(monitor.action(arg));
  if (cmd == "call") return reply(monitor.call(arg));
  if (cmd == "doors") return monitor.doors_json();
  if (cmd == "snapshot") return reply(monitor.snapshot(arg));
  if (cmd == "events") return events.json_array();
  if (cmd == "window")
    return window_json ? window_json() : reply(Outcome::fail("no window: running headless"));
  if (cmd == "ping") return "{\"pong\":true}";
  return reply(Outcome::fail(kUsage));
}

}  // namespace portier::monitor
