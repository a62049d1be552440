// portier-monitor: the in-house monitor and reference app.
//   portier-monitor --config /etc/portier/monitor.conf
// Headless: driven by its control socket (portierctl --socket ... COMMAND).
// [ui] mode = window: a GTK window as well (monitor_window.h), on the same
// main loop; without a display it says so once and runs headless.
#include <glib-unix.h>
#include <glib.h>
#include <gst/gst.h>
#include <sofia-sip/su_glib.h>
#include <systemd/sd-daemon.h>

#include <functional>
#include <memory>
#include <string>

#include "common/cli.h"
#include "common/control_socket.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mainloop.h"
#include "monitor/monitor.h"
#include "monitor/monitor_control.h"
#include "monitor/monitor_window.h"

using namespace portier;

namespace {

struct StopCtx {
  monitor::Monitor *monitor;
  GMainLoop *loop;
  bool stopping = false;  // a signal and the window's close may both ask
};

gboolean on_signal(gpointer data) {
  auto *ctx = static_cast<StopCtx *>(data);
  if (ctx->stopping) return G_SOURCE_REMOVE;
  ctx->stopping = true;
  PLOG_INFO("stopping");
  GMainLoop *loop = ctx->loop;
  ctx->monitor->stop([loop] { g_main_loop_quit(loop); });
  // If the proxy is gone, nua's unregistration may take its full timeout.
  g_timeout_add_seconds(
      5,
      [](gpointer l) -> gboolean {
        g_main_loop_quit(static_cast<GMainLoop *>(l));
        return G_SOURCE_REMOVE;
      },
      loop);
  return G_SOURCE_REMOVE;
}

}  // namespace

int main(int argc, char **argv) {
  config::Config cfg(monitor::monitor_schema());
  switch (cli::parse_and_load(argc, argv, "/etc/portier/monitor.conf", cfg,
                              monitor::check_monitor_config)) {
    case cli::Next::ExitOk:
      return 0;
    case cli::Next::ExitError:
      return 1;
    case cli::Next::Run:
      break;
  }
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

  PLOG_INFO("open files allowed: %lu", mainloop::raise_fd_limit());
  mainloop::limit_malloc_arenas();
  su_root_t *root = mainloop::sofia_root();
  if (!root) {
    PLOG_ERROR("cannot create the sofia-sip root");
    return 1;
  }
  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  int rc = 0;
  {
    std::string error;
    monitor::EventSink events;
    if (!events.open(settings.events_file, &error)) {
      PLOG_ERROR("%s", error.c_str());
      return 1;
    }
    monitor::Monitor mon(settings, events);
    StopCtx stop{&mon, loop};
    g_unix_signal_add(SIGTERM, on_signal, &stop);
    g_unix_signal_add(SIGINT, on_signal, &stop);
    // Made before the core starts, so the first call already has its display;
    // gone before the core (it unhooks itself).
    std::unique_ptr<monitor::MonitorWindow> window;
    std::function<std::string()> window_json;
    if (settings.window) {
      window = std::make_unique<monitor::MonitorWindow>(mon, [&stop] { on_signal(&stop); });
      window_json = [&window] { return window->json(); };
      PLOG_INFO("window shown");
    }
    ControlSocket control;
    if (!mon.start(root, &error)) {
      PLOG_ERROR("%s", error.c_str());
      rc = 1;
    } else if (!settings.control_socket.empty() && !control.open(
                                                       settings.control_socket,
                                                       [&](const std::string &cmd) {
                                                         return monitor::control_command(
                                                             mon, events, cmd, window_json);
                                                       },
                                                       &error)) {
      PLOG_ERROR("control socket %s: %s", settings.control_socket.c_str(), error.c_str());
      rc = 1;
    } else {
      mainloop::notify_ready();
      g_main_loop_run(loop);
      sd_notify(0, "STOPPING=1");
    }
  }
  g_main_loop_unref(loop);
  su_root_destroy(root);
  su_deinit();
  return rc;
}
