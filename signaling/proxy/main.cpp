// portier-proxy: the in-house SIP proxy and registrar.
//   portier-proxy --config /etc/portier/proxy.conf

// First: it sets sofia-sip's magic types before any sofia-sip header.
// clang-format off
#include "proxy/proxy.h"
// clang-format on

#include <glib-unix.h>
#include <glib.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_glib.h>
#include <systemd/sd-daemon.h>

#include <cstdio>

#include "common/cli.h"
#include "common/log.h"
#include "common/mainloop.h"

using namespace portier;

// systemd's watchdog (Type=notify, WatchdogSec=): ping at half the interval from
// the main loop, so a wedged loop gets the service restarted.
static gboolean on_watchdog(gpointer) {
  sd_notify(0, "WATCHDOG=1");
  return G_SOURCE_CONTINUE;
}

static gboolean on_signal(gpointer loop) {
  PLOG_INFO("stopping");
  g_main_loop_quit(static_cast<GMainLoop *>(loop));
  return G_SOURCE_REMOVE;
}

int main(int argc, char **argv) {
  config::Config cfg(proxy::proxy_schema());
  switch (
      cli::parse_and_load(argc, argv, "/etc/portier/proxy.conf", cfg, proxy::check_proxy_config)) {
    case cli::Next::ExitOk:
      return 0;
    case cli::Next::ExitError:
      return 1;
    case cli::Next::Run:
      break;
  }
  proxy::ProxySettings settings = proxy::settings_from_config(cfg);
  log::init("portier-proxy", settings.log_output, settings.log_level);

  // sofia-sip runs on GLib's main loop: SIP, timers and the control socket share
  // one thread and need no locks.
  PLOG_INFO("open files allowed: %lu", mainloop::raise_fd_limit());
  su_init();
  // P-Asserted-Identity (RFC 3325) and the other extension headers are parsed
  // only when sofia-sip's default parser is extended, before any message.
  sip_update_default_mclass(sip_extend_mclass(nullptr));
  su_root_t *root = su_glib_root_create(nullptr);
  if (!root) {
    PLOG_ERROR("cannot create the sofia-sip root");
    return 1;
  }
  mainloop::attach(root);
  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  g_unix_signal_add(SIGTERM, on_signal, loop);
  g_unix_signal_add(SIGINT, on_signal, loop);

  int rc = 0;
  {
    proxy::Proxy proxy(settings);
    std::string error;
    if (!proxy.start(root, &error)) {
      PLOG_ERROR("%s", error.c_str());
      rc = 1;
    } else {
      sd_notify(0, "READY=1");
      uint64_t watchdog_usec = 0;
      if (sd_watchdog_enabled(0, &watchdog_usec) > 0)
        g_timeout_add(static_cast<guint>(watchdog_usec / 2000), on_watchdog, nullptr);
      g_main_loop_run(loop);
      sd_notify(0, "STOPPING=1");
    }
    proxy.stop();
  }
  g_main_loop_unref(loop);
  su_root_destroy(root);
  su_deinit();
  return rc;
}
