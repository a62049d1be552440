// The [global] keys the three daemons share (common/global_config.h): one
// schema part, so each daemon takes log-level, log-output and control-socket
// the same way, and only its default socket differs.
#include <gtest/gtest.h>

#include <string>

#include "common/config.h"
#include "common/global_config.h"
#include "monitor/monitor_config.h"
#include "proxy/proxy_config.h"

namespace portier {
namespace {

struct Daemon {
  const char *name;
  const config::Schema &schema;
  const char *socket;
};

// portier-door's schema is built the same way; its config is read in the
// daemon (door_config.cpp), which the unit tests do not link.
const config::Schema &door_like_schema() {
  static const config::Schema s = [] {
    config::Schema s("portier-door");
    add_global_schema(s, "/run/portier/door.sock", "ring, hangup, status, events, help");
    return s;
  }();
  return s;
}

TEST(GlobalConfig, EveryDaemonHasTheSameKeys) {
  const Daemon daemons[] = {
      {"proxy", proxy::proxy_schema(), "/run/portier/proxy.sock"},
      {"door", door_like_schema(), "/run/portier/door.sock"},
      {"monitor", monitor::monitor_schema(), "/run/portier/monitor.sock"},
  };
  const config::KeyDef *level0 = daemons[0].schema.find("global", "log-level");
  const config::KeyDef *output0 = daemons[0].schema.find("global", "log-output");
  ASSERT_TRUE(level0 && output0);
  for (const Daemon &d : daemons) {
    const config::KeyDef *level = d.schema.find("global", "log-level");
    const config::KeyDef *output = d.schema.find("global", "log-output");
    const config::KeyDef *socket = d.schema.find("global", "control-socket");
    ASSERT_TRUE(level && output && socket) << d.name;
    EXPECT_EQ(level->choices, level0->choices) << d.name;
    EXPECT_EQ(level->default_value, "message") << d.name;
    EXPECT_EQ(output->choices, output0->choices) << d.name;
    EXPECT_EQ(socket->default_value, d.socket) << d.name;
    EXPECT_NE(socket->help.find("help"), std::string::npos) << d.name;
  }
}

TEST(GlobalConfig, ReadIntoEachDaemonsSettings) {
  const std::string text =
      "[global]\nlog-level = debug\nlog-output = journal\ncontrol-socket = /tmp/x.sock\n";
  config::Config door_cfg(door_like_schema()), mon_cfg(monitor::monitor_schema()),
      proxy_cfg(proxy::proxy_schema());
  std::string error;
  ASSERT_TRUE(door_cfg.load_string(text, "door.conf", &error)) << error;
  ASSERT_TRUE(mon_cfg.load_string(text, "monitor.conf", &error)) << error;
  ASSERT_TRUE(proxy_cfg.load_string(text, "proxy.conf", &error)) << error;
  GlobalSettings door;
  read_global_settings(door_cfg, &door);
  const GlobalSettings read[] = {door, monitor::monitor_settings_from_config(mon_cfg),
                                 proxy::settings_from_config(proxy_cfg)};
  for (const GlobalSettings &g : read) {
    EXPECT_EQ(g.log_level, log::Level::Debug);
    EXPECT_EQ(g.log_output, log::Output::Journal);
    EXPECT_EQ(g.control_socket, "/tmp/x.sock");
  }
}

TEST(GlobalConfig, ErrorsNameFileLineAndKey) {
  config::Config cfg(monitor::monitor_schema());
  std::string error;
  EXPECT_FALSE(cfg.load_string("[global]\n\nlog-level = loud\n", "monitor.conf", &error));
  EXPECT_EQ(error.rfind("monitor.conf:3: [global] log-level: ", 0), 0u) << error;
  ASSERT_TRUE(cfg.load_string("[ui]\nmode = window\n", "monitor.conf", &error)) << error;
  EXPECT_EQ(cfg.where("ui", "mode"), "monitor.conf:2: [ui] mode: ");
}

}  // namespace
}  // namespace portier
