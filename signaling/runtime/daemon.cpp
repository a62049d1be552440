#include "runtime/daemon.h"

#include <glib-unix.h>
#include <sofia-sip/su_glib.h>
#include <systemd/sd-daemon.h>

#include <csignal>

#include "common/log.h"
#include "runtime/mainloop.h"

namespace portier {

Daemon::~Daemon() {
  if (loop_) g_main_loop_unref(loop_);
  if (root_) {
    su_root_destroy(root_);
    su_deinit();
  }
}

bool Daemon::init() {
  PLOG_INFO("open files allowed: %lu", mainloop::raise_fd_limit());
  // sofia-sip runs on GLib's main loop: SIP, timers, media bus messages and
  // the control socket share one thread and need no locks.
  root_ = mainloop::sofia_root();
  if (!root_) {
    PLOG_ERROR("cannot create the sofia-sip root");
    return false;
  }
  loop_ = g_main_loop_new(nullptr, FALSE);
  g_unix_signal_add(SIGTERM, on_signal, this);
  g_unix_signal_add(SIGINT, on_signal, this);
  return true;
}

gboolean Daemon::on_signal(gpointer self) {
  static_cast<Daemon *>(self)->stop();
  return G_SOURCE_REMOVE;
}

void Daemon::stop() {
  if (stopping_) return;
  stopping_ = true;
  PLOG_INFO("stopping");
  GMainLoop *loop = loop_;
  if (!stop_) {
    g_main_loop_quit(loop);
    return;
  }
  stop_([loop] { g_main_loop_quit(loop); });
  // If the proxy is gone, nua's unregistration may take its full timeout.
  g_timeout_add_seconds(
      5,
      [](gpointer l) -> gboolean {
        g_main_loop_quit(static_cast<GMainLoop *>(l));
        return G_SOURCE_REMOVE;
      },
      loop);
}

void Daemon::run() {
  mainloop::notify_ready();
  g_main_loop_run(loop_);
  sd_notify(0, "STOPPING=1");
}

}  // namespace portier
