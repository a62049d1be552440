// The monitor's control-socket commands (the headless face), one line in, one
// JSON line out:
//   status | answer | hangup | decline | mic on|off | action open-door|light |
//   call <door> | doors | snapshot </abs/path.png> | events | ping
// Results are {"result":"..."}; refusals {"error":"..."}; status, doors and
// events return their own objects (see README / monitor.h).
#pragma once

#include <string>

#include "monitor/monitor.h"
#include "monitor/monitor_events.h"

namespace portier::monitor {

std::string control_command(Monitor &monitor, const EventSink &events, const std::string &line);

}  // namespace portier::monitor
