// portier-proxy: the in-house SIP proxy and registrar.
//   portier-proxy --config /etc/portier/proxy.conf

// First: it sets sofia-sip's magic types before any sofia-sip header.
// clang-format off
#include "proxy/proxy.h"
// clang-format on

#include <glib-unix.h>
#include <glib.h>
#include <sofia-sip/su_glib.h>
#include <systemd/sd-daemon.h>

#include <cstdio>

#include "common/cli.h"
#include "common/log.h"
#include "common/mainloop.h"

using namespace portier;

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

  PLOG_INFO("open files allowed: %lu", mainloop::raise_fd_limit());
  // sofia-sip runs on GLib's main loop: SIP, timers and the control socket share
  // one thread and need no locks.
  su_root_t *root = mainloop::sofia_root();
  if (!root) {
    PLOG_ERROR("cannot create the sofia-sip root");
    return 1;
  }
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
      mainloop::notify_ready();
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
