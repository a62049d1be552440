// The [global] keys every portier daemon takes the same way: where its log
// goes and how much of it, and its control socket. One schema part and one
// parser, so portier-proxy, portier-door and portier-monitor cannot drift
// apart; each daemon's settings derive from GlobalSettings and add its own
// [global] keys (the proxy's transports and state directory, the monitor's
// events file) after these.
#pragma once

#include <string>

#include "common/config.h"
#include "common/log.h"

namespace portier {

struct GlobalSettings {
  log::Level log_level = log::Level::Message;
  log::Output log_output = log::Output::Stderr;
  std::string control_socket;  // "" for none
};

// `control_socket`: the daemon's default path; `commands`: what portierctl
// does there, for --dump-default ("ring, hangup, status, events").
void add_global_schema(config::Schema &s, const std::string &control_socket,
                       const std::string &commands);

// From a config the schema accepted (every value already checked).
void read_global_settings(const config::Config &cfg, GlobalSettings *out);

}  // namespace portier
