// portier-proxy's configuration: the schema (every key, default and help line,
// printed by --dump-default) and the typed settings the proxy runs with. Key
// names follow Flexisip's where the concept is the same.
#pragma once

#include <string>
#include <vector>

#include "common/auth/digest.h"
#include "common/config.h"
#include "common/log.h"
#include "proxy/location_store.h"

namespace portier::proxy {

struct ProxySettings {
  std::vector<std::string> transports;
  log::Level log_level = log::Level::Message;
  log::Output log_output = log::Output::Stderr;
  std::string state_directory;
  std::string control_socket;

  std::vector<std::string> reg_domains;      // lower-case
  std::vector<std::string> group_addresses;  // normalized AORs
  std::string static_records_file;
  LocationStore::Limits limits;

  bool auth_enabled = true;
  std::vector<std::string> auth_domains;  // lower-case
  std::string users_file;
  std::vector<auth::Algorithm> algorithms;
  int nonce_expires = 3600;

  int call_fork_timeout = 60;
};

const config::Schema &proxy_schema();
// Cross-key checks and conversion; "" when valid, else a message naming the key.
std::string check_proxy_config(const config::Config &cfg);
ProxySettings settings_from_config(const config::Config &cfg);

// Parses "sip:alice@Home.Example" (or "<sip:...>") into a normalized AOR; "" when
// it is not a sip: URI with a user and a host.
std::string parse_aor(const std::string &uri);

}  // namespace portier::proxy
