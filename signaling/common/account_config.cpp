#include "common/account_config.h"

#include "common/sip_address.h"

namespace portier {

void add_account_schema(config::Schema &s, const AccountHelp &help) {
  s.str("account", "aor", help.default_aor, help.aor)
      .str("account", "username", "", "digest user name (empty: the address's user part)")
      .str("account", "password", "", "digest password (never logged)")
      .str("account", "proxy", "sip:127.0.0.1:5060",
           "the in-house proxy: registrar and outbound proxy for every request")
      .str("account", "bind", "sip:127.0.0.1:*", help.bind)
      .list("account", "trusted-hosts", "", help.trusted_hosts)
      .boolean("account", "identity-proof", true,
               "take an asserted identity only with portier-proxy's proof (off: any other proxy)")
      .integer("account", "register-expires", 600, 30, 86400,
               "registration lifetime asked for; refreshed before it runs out");
}

std::string check_account_config(const config::Config &cfg) {
  if (parse_aor(cfg.get_string("account", "aor")).empty())
    return cfg.where("account", "aor") + "'" + cfg.get_string("account", "aor") +
           "' is not a sip:user@domain address";
  for (const char *key : {"proxy", "bind"}) {
    const std::string &v = cfg.get_string("account", key);
    if (v.compare(0, 4, "sip:") != 0)
      return cfg.where("account", key) + "'" + v + "' is not a sip: URI";
  }
  return "";
}

AccountSettings account_settings_from_config(const config::Config &cfg) {
  AccountSettings a;
  a.aor = parse_aor(cfg.get_string("account", "aor"));
  a.username = cfg.get_string("account", "username");
  if (a.username.empty() && a.aor.size() > 4) a.username = a.aor.substr(4, a.aor.find('@') - 4);
  a.password = cfg.get_string("account", "password");
  a.proxy = cfg.get_string("account", "proxy");
  a.bind = cfg.get_string("account", "bind");
  a.trusted_hosts = cfg.get_list("account", "trusted-hosts");
  a.identity_proof = cfg.get_bool("account", "identity-proof");
  a.register_expires = static_cast<int>(cfg.get_int("account", "register-expires"));
  return a;
}

}  // namespace portier
