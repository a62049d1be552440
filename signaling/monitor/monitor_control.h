// The monitor's control-socket commands (the headless face), one line in, one
// JSON line out; `portierctl --socket monitor.sock help` lists them.
// Results are {"result":"..."}; refusals {"error":"..."}; status, doors and
// events return their own objects (see README / monitor.h).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/control_table.h"
#include "common/event_writer.h"
#include "monitor/monitor.h"

namespace portier::monitor {

// `window`: what the window shows (MonitorWindow::json), by `window_json`;
// unset (headless) it is refused.
std::vector<control::Command> control_commands(
    Monitor &monitor, const events::Writer &events,
    const std::function<std::string()> &window_json = nullptr);

}  // namespace portier::monitor
