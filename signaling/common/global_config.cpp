#include "common/global_config.h"

namespace portier {

void add_global_schema(config::Schema &s, const std::string &control_socket,
                       const std::string &commands) {
  s.str("global", "log-level", "message", "least important messages to log",
        {"error", "warning", "message", "debug"})
      .str("global", "log-output", "stderr", "where logs go", {"stderr", "syslog", "journal"})
      .str("global", "control-socket", control_socket,
           "UNIX socket for portierctl: " + commands + " (empty: none)");
}

void read_global_settings(const config::Config &cfg, GlobalSettings *out) {
  log::parse_level(cfg.get_string("global", "log-level"), &out->log_level);
  log::parse_output(cfg.get_string("global", "log-output"), &out->log_output);
  out->control_socket = cfg.get_string("global", "control-socket");
}

}  // namespace portier
