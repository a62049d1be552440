// The [account] section portier-door and portier-monitor share: its keys
// become AccountSettings (the user name defaults to the AOR's user part), and
// a bad address or URI is an error naming file, line and key.
#include <gtest/gtest.h>

#include "common/account_config.h"

using portier::account_settings_from_config;
using portier::AccountSettings;
using portier::add_account_schema;
using portier::check_account_config;
using portier::config::Config;
using portier::config::Schema;

namespace {

const Schema &schema() {
  static const Schema s = [] {
    Schema s("portier-test");
    add_account_schema(s, {"sip:dev@home.example", "the device's SIP address",
                           "SIP URI the device listens on", "hosts it trusts"});
    return s;
  }();
  return s;
}

// "" and the settings, or the first error (from the loader or the checks).
std::string load(const std::string &text, AccountSettings *out) {
  Config cfg(schema());
  std::string error;
  if (!cfg.load_string(text, "a.conf", &error)) return error;
  std::string problem = check_account_config(cfg);
  if (problem.empty()) *out = account_settings_from_config(cfg);
  return problem;
}

}  // namespace

TEST(AccountConfig, DefaultsLoad) {
  AccountSettings a;
  ASSERT_EQ(load(portier::config::dump_default(schema()), &a), "");
  EXPECT_EQ(a.aor, "sip:dev@home.example");
  EXPECT_EQ(a.username, "dev");
  EXPECT_EQ(a.password, "");
  EXPECT_EQ(a.proxy, "sip:127.0.0.1:5060");
  EXPECT_EQ(a.bind, "sip:127.0.0.1:*");
  EXPECT_TRUE(a.trusted_hosts.empty());
  EXPECT_EQ(a.register_expires, 600);
}

TEST(AccountConfig, KeysBecomeSettings) {
  AccountSettings a;
  ASSERT_EQ(load("[account]\naor = <sip:Mon2@Home.Example>\nusername = m2\npassword = pw\n"
                 "proxy = sip:10.0.0.1:5070\nbind = sip:10.0.0.2:*;transport=tcp\n"
                 "trusted-hosts = 10.0.0.9 gw.home:5060\nregister-expires = 120\n",
                 &a),
            "");
  EXPECT_EQ(a.aor, "sip:Mon2@home.example");
  EXPECT_EQ(a.username, "m2");
  EXPECT_EQ(a.password, "pw");
  EXPECT_EQ(a.proxy, "sip:10.0.0.1:5070");
  EXPECT_EQ(a.bind, "sip:10.0.0.2:*;transport=tcp");
  EXPECT_EQ(a.trusted_hosts, (std::vector<std::string>{"10.0.0.9", "gw.home:5060"}));
  EXPECT_EQ(a.register_expires, 120);
}

TEST(AccountConfig, BadValuesNameTheKey) {
  const std::pair<const char *, const char *> cases[] = {
      {"[account]\naor = dev\n", "a.conf:2: [account] aor: 'dev' is not a sip:user@domain address"},
      {"[account]\nproxy = 127.0.0.1\n",
       "a.conf:2: [account] proxy: '127.0.0.1' is neither a sip: nor a sips: URI"},
      {"[account]\nbind = udp:*\n", "a.conf:2: [account] bind: 'udp:*' is not a sip: URI"},
  };
  for (const auto &[text, expected] : cases) {
    AccountSettings a;
    EXPECT_EQ(load(text, &a), expected) << text;
  }
}

// docs/TLS.md §3: sofia verifies nothing unless told, and never reads the
// system's CA store, so a TLS proxy without a CA file to check it against is
// refused unless verification is turned off on purpose.
TEST(AccountConfig, ProxyOverTls) {
  AccountSettings a;
  EXPECT_EQ(load("[account]\nproxy = sips:proxy.home:5061\n", &a),
            "a.conf:2: [account] proxy: over TLS needs tls-certificates-ca-file to check the "
            "proxy's certificate (sofia-sip does not read the system's store); or "
            "tls-verify-outgoing = false, which lets anyone on the path listen");
  ASSERT_EQ(load("[account]\nproxy = sip:proxy.home:5061;transport=tls\n"
                 "tls-verify-outgoing = false\n",
                 &a),
            "");
  EXPECT_TRUE(a.proxy_tls);
  EXPECT_FALSE(a.tls.verify_outgoing);
  EXPECT_EQ(portier::proxy_uri_for_sofia(a.proxy), "sips:proxy.home:5061");
  EXPECT_EQ(
      load("[account]\nproxy = sips:proxy.home:5061\ntls-certificates-ca-file = /nonexistent\n",
           &a),
      "a.conf:3: [account] tls-certificates-ca-file: /nonexistent: cannot open the TLS CA "
      "file: No such file or directory");
  ASSERT_EQ(load("[account]\nproxy = sip:10.0.0.1:5060\n", &a), "");
  EXPECT_FALSE(a.proxy_tls);
  EXPECT_TRUE(a.tls.verify_outgoing);  // on by default, for when TLS is switched on
}

TEST(AccountConfig, SecurityWarningNamesWhatIsOff) {
  auto warning = [](const std::string &text) {
    Config cfg(schema());
    std::string error;
    EXPECT_TRUE(cfg.load_string(text, "a.conf", &error)) << error;
    return portier::device_security_warning(cfg);
  };
  // As shipped (config/door.conf): TLS, the certificate checked. The CA file
  // is not read here: the warning is about intent, the check about files.
  EXPECT_EQ(warning("[account]\nproxy = sips:proxy.home.example:5061;maddr=127.0.0.1\n"
                    "tls-certificates-ca-file = /etc/portier/tls/ca.pem\n"),
            "");
  EXPECT_EQ(warning("[account]\nproxy = sip:127.0.0.1:5060\n"),
            "less secure than the shipped config (config/), readable on the network: a.conf:2: "
            "[account] proxy: SIP without TLS");
  EXPECT_EQ(warning("[account]\nproxy = sips:proxy.home.example:5061\n"
                    "tls-verify-outgoing = false\n"),
            "less secure than the shipped config (config/), readable on the network: a.conf:3: "
            "[account] tls-verify-outgoing: the proxy's certificate is not checked");
}
