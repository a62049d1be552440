// portier-monitor: the in-house monitor and reference app.
//   portier-monitor --config /etc/portier/monitor.conf
// Headless: driven by its control socket (portierctl --socket ... COMMAND).
// [ui] mode = window: a GTK window as well (monitor_window.h), on the same
// main loop; without a display it says so once and runs headless.
#include <glib.h>
#include <gst/gst.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/account_config.h"
#include "common/cli.h"
#include "common/json.h"
#include "common/log.h"
#include "monitor/monitor.h"
#include "monitor/monitor_control.h"
#include "monitor/monitor_window.h"
#include "runtime/control_socket.h"
#include "runtime/daemon.h"
#include "runtime/logging.h"
#include "runtime/mainloop.h"

using namespace portier;

int main(int argc, char **argv) {
  config::Config cfg(monitor::monitor_schema());
  if (auto rc = cli::parse_and_load(argc, argv, "/etc/portier/monitor.conf", cfg,
                                    monitor::check_monitor_config, device_security_warning))
    return *rc;
  monitor::MonitorSettings settings = monitor::monitor_settings_from_config(cfg);
  log::init("portier-monitor", settings.log_output, settings.log_level);
  gst_init(nullptr, nullptr);
  if (settings.window) {
    std::string why;
    if (!monitor::MonitorWindow::init(&why)) {
      PLOG_WARN("[ui] mode = window: %s; running headless", why.c_str());
      settings.window = false;
    }
  }

  // Per-call GStreamer threads: two malloc arenas (mainloop.h).
  mainloop::limit_malloc_arenas();
  Daemon daemon;
  if (!daemon.init()) return 1;
  int rc = 0;
  {
    std::string error;
    events::Writer events;
    if (!events.open(settings.events_file, &error)) {
      PLOG_ERROR("%s", error.c_str());
      return 1;
    }
    monitor::Monitor mon(settings, events);
    daemon.on_stop([&mon](std::function<void()> done) { mon.stop(std::move(done)); });
    daemon.on_reload([&mon] { return mon.reload_tls(); });
    // Made before the core starts, so the first call already has its display;
    // gone before the core (it unhooks itself).
    std::unique_ptr<monitor::MonitorWindow> window;
    std::function<std::string()> window_json;
    if (settings.window) {
      window = std::make_unique<monitor::MonitorWindow>(mon, [&daemon] { daemon.stop(); });
      window_json = [&window] { return window->json(); };
      PLOG_INFO("window shown");
    }
    std::vector<control::Command> rows = monitor::control_commands(mon, events, window_json);
    rows.push_back(control::reload_command([&daemon] { return daemon.reload(); }));
    const control::Table commands(std::move(rows));
    ControlSocket control;
    if (!mon.start(daemon.root(), &error)) {
      PLOG_ERROR("%s", error.c_str());
      rc = 1;
    } else if (!settings.control_socket.empty() &&
               !control.open(
                   daemon.root(), settings.control_socket,
                   [&commands](const std::string &line) { return commands.dispatch(line); },
                   &error)) {
      PLOG_ERROR("control socket %s: %s", settings.control_socket.c_str(), error.c_str());
      rc = 1;
    } else {
      daemon.run();
    }
  }
  return rc;
}
