// The monitor's control-socket commands (the headless face), one line in, one
// JSON line out:
//   status | answer | hangup | decline | mic on|off | action open-door|light |
//   call <door> | doors | snapshot </abs/path.png> | events | window | ping
// Results are {"result":"..."}; refusals {"error":"..."}; status, doors and
// events return their own objects (see README / monitor.h).
#pragma once

#include <functional>
#include <string>

#include "monitor/monitor.h"
#include "monitor/monitor_events.h"

namespace portier::monitor {

// `window`: what the window shows (MonitorWindow::json), by `window_json`;
// unset (headless) it is refused.
std::string control_command(Monitor &monitor, const EventSink &events, const std::string &line,
                            const std::function<std::string()> &window_json = nullptr);

}  // namespace portier::monitor
