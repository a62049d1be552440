// portier-proxy: the in-house SIP proxy and registrar.
//   portier-proxy --config /etc/portier/proxy.conf

// First: it sets sofia-sip's magic types before any sofia-sip header.
// clang-format off
#include "proxy/proxy.h"
// clang-format on

#include "common/cli.h"
#include "common/log.h"
#include "runtime/daemon.h"
#include "runtime/logging.h"

using namespace portier;

int main(int argc, char **argv) {
  config::Config cfg(proxy::proxy_schema());
  if (auto rc = cli::parse_and_load(argc, argv, "/etc/portier/proxy.conf", cfg,
                                    proxy::check_proxy_config, proxy::proxy_security_warning))
    return *rc;
  proxy::ProxySettings settings = proxy::settings_from_config(cfg);
  log::init("portier-proxy", settings.log_output, settings.log_level);

  Daemon daemon(Daemon::Loop::Sofia);
  if (!daemon.init()) return 1;

  int rc = 0;
  {
    proxy::Proxy proxy(settings);
    daemon.on_reload([&proxy] { return proxy.reload_tls(); });
    proxy.set_reload([&daemon] { return daemon.reload(); });
    std::string error;
    if (!proxy.start(daemon.root(), &error)) {
      PLOG_ERROR("%s", error.c_str());
      rc = 1;
    } else {
      daemon.run();
    }
    proxy.stop();
  }
  return rc;
}
