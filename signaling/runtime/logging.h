// The daemons' logging set-up: common/log.h's sink, with the systemd journal
// as a possible output, and GLib's and sofia-sip's own log output routed
// through it (sofia-sip at debug level only), so one place decides where
// every line goes.
#pragma once

#include <string>

#include "common/log.h"

namespace portier::log {

void init(const std::string &program, Output output, Level level);

}  // namespace portier::log
