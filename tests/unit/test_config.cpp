// The one config loader: unknown keys and bad values stop the program with
// file, line and key named; --dump-default documents every key.
#include <gtest/gtest.h>

#include "common/config.h"
#include "proxy/proxy_config.h"

using portier::config::Config;
using portier::config::Schema;

namespace {

Schema test_schema() {
  Schema s("test");
  s.str("global", "name", "door", "a name")
      .boolean("global", "enabled", true, "on or off")
      .integer("global", "timeout", 60, 1, 3600, "seconds")
      .list("global", "algorithms", "MD5 SHA-256", "algos", {"MD5", "SHA-256"});
  return s;
}

}  // namespace

TEST(Config, DefaultsApplyWhenKeysAreAbsent) {
  Schema s = test_schema();
  Config c(s);
  std::string err;
  ASSERT_TRUE(c.load_string("[global]\n", "t.conf", &err)) << err;
  EXPECT_EQ(c.get_string("global", "name"), "door");
  EXPECT_TRUE(c.get_bool("global", "enabled"));
  EXPECT_EQ(c.get_int("global", "timeout"), 60);
  EXPECT_EQ(c.get_list("global", "algorithms"), (std::vector<std::string>{"MD5", "SHA-256"}));
}

TEST(Config, ValuesCommentsAndUriSemicolons) {
  Schema s = test_schema();
  Config c(s);
  std::string err;
  ASSERT_TRUE(
      c.load_string("# comment\n[global]\nname = sip:a@b;transport=tcp   # trailing\n"
                    "enabled = no\ntimeout=5\nalgorithms = SHA-256\n",
                    "t.conf", &err))
      << err;
  EXPECT_EQ(c.get_string("global", "name"), "sip:a@b;transport=tcp");
  EXPECT_FALSE(c.get_bool("global", "enabled"));
  EXPECT_EQ(c.get_int("global", "timeout"), 5);
  EXPECT_EQ(c.origin("global", "timeout"), "t.conf:5");
}

struct BadCase {
  const char *text;
  const char *expected_error;
};

class ConfigErrors : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigErrors, NameFileLineAndKey) {
  Schema s = test_schema();
  Config c(s);
  std::string err;
  EXPECT_FALSE(c.load_string(GetParam().text, "door.conf", &err));
  EXPECT_EQ(err, GetParam().expected_error);
}

INSTANTIATE_TEST_SUITE_P(
    Table, ConfigErrors,
    ::testing::Values(
        BadCase{"[global]\nnmae = x\n", "door.conf:2: [global] nmae: unknown key"},
        BadCase{"[global]\n\ntimeout = soon\n",
                "door.conf:3: [global] timeout: 'soon' is not an integer"},
        BadCase{"[global]\ntimeout = 0\n",
                "door.conf:2: [global] timeout: 0 is out of range [1, 3600]"},
        BadCase{"[global]\nenabled = maybe\n",
                "door.conf:2: [global] enabled: 'maybe' is not a boolean (use true or false)"},
        BadCase{"[global]\nalgorithms = MD5 SHA-1\n",
                "door.conf:2: [global] algorithms: 'SHA-1' is not one of: MD5, SHA-256"},
        BadCase{"[nowhere]\n", "door.conf:1: [nowhere]: unknown section"},
        BadCase{"timeout = 5\n", "door.conf:1: timeout: key outside of any [section]"},
        BadCase{"[global]\njust words\n", "door.conf:2: expected 'key = value'"}));

TEST(Config, MissingFileIsAClearError) {
  Schema s = test_schema();
  Config c(s);
  std::string err;
  EXPECT_FALSE(c.load_file("/nonexistent/portier.conf", &err));
  EXPECT_EQ(err,
            "/nonexistent/portier.conf: cannot open the config file: No such file or directory");
}

TEST(Config, DumpDefaultDocumentsEveryKeyAndLoadsBack) {
  const Schema &s = portier::proxy::proxy_schema();
  std::string dump = portier::config::dump_default(s);
  for (const auto &k : s.keys()) {
    EXPECT_NE(dump.find("\n" + k.name + " = "), std::string::npos) << k.name;
    EXPECT_FALSE(k.help.empty()) << k.name;
  }
  // What --dump-default prints is itself a valid config.
  Config c(s);
  std::string err;
  EXPECT_TRUE(c.load_string(dump, "dump", &err)) << err;
  EXPECT_EQ(portier::proxy::check_proxy_config(c), "");
}

TEST(ProxyConfig, GroupAddressMustBeAnAor) {
  Config c(portier::proxy::proxy_schema());
  std::string err;
  ASSERT_TRUE(
      c.load_string("[module::Registrar]\ngroup-addresses = home.example\n", "p.conf", &err));
  EXPECT_EQ(portier::proxy::check_proxy_config(c),
            "p.conf:2: [module::Registrar] group-addresses: 'home.example' is not a "
            "sip:user@domain or sip:user@* address");
}

TEST(ProxyConfig, DomainWildcards) {
  struct Row {
    const char *text, *expected;
  };
  const Row rows[] = {
      {"[module::Registrar]\nreg-domains = * extra.example\n", ""},
      {"[module::Authentication]\nauth-domains = *\n", ""},
      {"[module::Registrar]\ngroup-addresses = sip:home@* sip:bell@a.example\n", ""},
      {"[module::Registrar]\nreg-domains = *.example\n",
       "p.conf:2: [module::Registrar] reg-domains: '*.example': * stands alone (every domain of "
       "the users file); no partial wildcards"},
      {"[module::Authentication]\nenabled = false\n[module::Registrar]\nreg-domains = *\n",
       "p.conf:4: [module::Registrar] reg-domains: * means every domain of the users file, which "
       "needs [module::Authentication] enabled"},
      {"[module::Registrar]\ngroup-addresses = sip:home@a*\n",
       "p.conf:2: [module::Registrar] group-addresses: 'sip:home@a*' is not a sip:user@domain or "
       "sip:user@* address"},
      {"[module::Router]\ninter-domain-requests = maybe\n",
       "p.conf:2: [module::Router] inter-domain-requests: 'maybe' is neither deny nor allow"},
  };
  for (const Row &row : rows) {
    SCOPED_TRACE(row.text);
    Config c(portier::proxy::proxy_schema());
    std::string err;
    ASSERT_TRUE(c.load_string(row.text, "p.conf", &err)) << err;
    EXPECT_EQ(portier::proxy::check_proxy_config(c), row.expected);
  }
}

// [inter-domain-connections] (issue 15): Flexisip's keys, off by default, and
// domain registrations only with the users file that says who may.
TEST(ProxyConfig, DomainRegistrations) {
  {
    Config c(portier::proxy::proxy_schema());
    std::string err;
    ASSERT_TRUE(c.load_string("", "p.conf", &err)) << err;
    const auto s = portier::proxy::settings_from_config(c);
    EXPECT_FALSE(s.house_domains.accept);
    EXPECT_FALSE(s.house_domains.assume_unique);
  }
  Config c(portier::proxy::proxy_schema());
  std::string err;
  ASSERT_TRUE(
      c.load_string("[inter-domain-connections]\naccept-domain-registrations = true\n"
                    "assume-unique-domains = true\n",
                    "p.conf", &err))
      << err;
  EXPECT_EQ(portier::proxy::check_proxy_config(c), "");
  const auto s = portier::proxy::settings_from_config(c);
  EXPECT_TRUE(s.house_domains.accept);
  EXPECT_TRUE(s.house_domains.assume_unique);

  Config off(portier::proxy::proxy_schema());
  ASSERT_TRUE(
      off.load_string("[module::Authentication]\nenabled = false\n"
                      "[inter-domain-connections]\naccept-domain-registrations = true\n",
                      "p.conf", &err))
      << err;
  EXPECT_EQ(portier::proxy::check_proxy_config(off),
            "p.conf:4: [inter-domain-connections] accept-domain-registrations: needs "
            "[module::Authentication] enabled (else anyone could take a house's calls)");
}

// The shipped cloud config loads (its certificate files exist only on a
// cloud) and, TLS only with SRTP mandatory, warns of nothing.
TEST(ProxyConfig, ShippedCloudConfig) {
  Config c(portier::proxy::proxy_schema());
  std::string err;
  ASSERT_TRUE(c.load_file(std::string(PORTIER_SOURCE_DIR) + "/config/proxy-cloud.conf", &err))
      << err;
  EXPECT_EQ(portier::proxy::proxy_security_warning(c), "");
  EXPECT_TRUE(portier::proxy::settings_from_config(c).house_domains.accept);
}

// The shipped house config: the in-house proxy that registers its domain to a
// cloud (issue 15). Its one TLS transport serves the home's devices and opens
// the connection to the cloud, so it verifies the server it connects to
// (check_proxy_config refuses domain registrations otherwise).
TEST(ProxyConfig, ShippedHouseConfig) {
  Config c(portier::proxy::proxy_schema());
  std::string err;
  ASSERT_TRUE(c.load_file(std::string(PORTIER_SOURCE_DIR) + "/config/proxy-house.conf", &err))
      << err;
  EXPECT_EQ(portier::proxy::proxy_security_warning(c), "");
  const auto s = portier::proxy::settings_from_config(c);
  EXPECT_FALSE(s.house_domains.accept);
  EXPECT_EQ(s.domain_registrations.file, "/etc/portier/domain-registrations");
  // RFC 5626 §4.4.1: pongs awaited, and sooner than the next ping.
  EXPECT_GT(s.domain_registrations.ping_pong_timeout_delay, 0);
  EXPECT_LT(s.domain_registrations.ping_pong_timeout_delay,
            s.domain_registrations.keepalive_interval);
  EXPECT_GT(s.domain_registrations.reconnection_delay, 0);
  ASSERT_EQ(s.transport_tls.size(), 1u);
  ASSERT_TRUE(s.transport_tls[0].has_value());
  EXPECT_TRUE(s.transport_tls[0]->verify_outgoing);
  EXPECT_FALSE(s.transport_tls[0]->files.ca_file.empty());
}

// The shipped config/proxy.conf: TLS only, authentication, the relay with SRTP
// mandatory and terminated: nothing to warn about. Each step down is named.
TEST(ProxyConfig, SecurityWarningNamesWhatIsOff) {
  Config shipped(portier::proxy::proxy_schema());
  std::string err;
  ASSERT_TRUE(shipped.load_file(std::string(PORTIER_SOURCE_DIR) + "/config/proxy.conf", &err))
      << err;
  EXPECT_EQ(portier::proxy::proxy_security_warning(shipped), "");
  auto warning = [](const std::string &text) {
    Config cfg(portier::proxy::proxy_schema());
    std::string error;
    EXPECT_TRUE(cfg.load_string(text, "p.conf", &error)) << error;
    return portier::proxy::proxy_security_warning(cfg);
  };
  const std::string safe =
      "[module::MediaRelay]\nencryption-mandatory = true\n[global]\ntransports = ";
  // Loopback: nobody on the network sees it (the demo's and the tests' proxies).
  EXPECT_EQ(warning(safe + "sip:127.0.0.1:5060 sip:[::1]:5060;transport=tcp sips:0.0.0.0:5061\n"),
            "");
  EXPECT_EQ(warning(safe + "sip:192.168.1.2:5060 sips:[::]:5061 sip:[::]:5060;transport=tcp\n"),
            "less secure than the shipped config (config/proxy.conf): p.conf:4: [global] "
            "transports: 'sip:192.168.1.2:5060' is SIP without TLS; p.conf:4: [global] "
            "transports: 'sip:[::]:5060;transport=tcp' is SIP without TLS");
  EXPECT_EQ(warning("[global]\ntransports = sips:0.0.0.0:5061\n[module::Authentication]\n"
                    "enabled = false\n[module::MediaRelay]\nencryption = passthrough\n"),
            "less secure than the shipped config (config/proxy.conf): p.conf:4: "
            "[module::Authentication] enabled: anyone may register and call without a password; "
            "default: [module::MediaRelay] encryption-mandatory: calls with plain RTP (no SRTP) "
            "are relayed; p.conf:6: [module::MediaRelay] encryption: every ringing device gets "
            "the caller's SRTP key");
}

TEST(ProxyConfig, ParseAorNormalizesHost) {
  EXPECT_EQ(portier::proxy::parse_aor("sip:home@Home.Example"), "sip:home@home.example");
  EXPECT_EQ(portier::proxy::parse_aor("<sip:a@h.example:5060;transport=tcp>"), "sip:a@h.example");
  EXPECT_EQ(portier::proxy::parse_aor("tel:+123"), "");
}

TEST(ProxyConfig, MediaRelayKeysAreChecked) {
  struct Case {
    const char *text, *error;
  } cases[] = {
      {"[module::MediaRelay]\nport-range = 30000-20000\n",
       "p.conf:2: [module::MediaRelay] port-range: must be MIN-MAX with 1024 <= MIN < MAX <= "
       "65535 and room for a port pair"},
      {"[module::MediaRelay]\nport-range = 20000\n",
       "p.conf:2: [module::MediaRelay] port-range: must be MIN-MAX with 1024 <= MIN < MAX <= "
       "65535 and room for a port pair"},
      {"[module::MediaRelay]\nsdp-address = door.example\n",
       "p.conf:2: [module::MediaRelay] sdp-address: 'door.example' is not an IPv4 or IPv6 "
       "address"},
      {"[module::MediaRelay]\nlisten-address = 0.0.0.0.0\n",
       "p.conf:2: [module::MediaRelay] listen-address: '0.0.0.0.0' is not an IPv4 or IPv6 "
       "address"},
      {"[module::MediaRelay]\nencryption = srtp\n",
       "p.conf:2: [module::MediaRelay] encryption: 'srtp' is neither terminate nor passthrough"},
      {"[module::MediaRelay]\nencryption = passthrough\nencryption-mandatory = true\n", ""},
      {"[module::MediaRelay]\nsrtp-crypto-suites = AES_CM_128_HMAC_SHA1_80 F8_128_HMAC_SHA1_80\n",
       "p.conf:2: [module::MediaRelay] srtp-crypto-suites: 'F8_128_HMAC_SHA1_80' is not an SRTP "
       "suite the relay knows"},
      {"[module::MediaRelay]\nsrtp-crypto-suites = AEAD_AES_128_GCM, AEAD_AES_128_GCM\n",
       "p.conf:2: [module::MediaRelay] srtp-crypto-suites: 'AEAD_AES_128_GCM' is listed twice"},
      {"[module::MediaRelay]\nsrtp-crypto-suites =\n",
       "p.conf:2: [module::MediaRelay] srtp-crypto-suites: at least one SRTP suite needed"},
      // a disabled relay is not checked
      {"[module::MediaRelay]\nenabled = false\nport-range = x\n", ""},
      {"[module::MediaRelay]\nsdp-address = ::1\nport-range = 40000-40099\n", ""},
  };
  for (const auto &c : cases) {
    Config cfg(portier::proxy::proxy_schema());
    std::string err;
    ASSERT_TRUE(cfg.load_string(c.text, "p.conf", &err)) << err;
    EXPECT_EQ(portier::proxy::check_proxy_config(cfg), c.error) << c.text;
  }
  Config cfg(portier::proxy::proxy_schema());
  std::string err;
  ASSERT_TRUE(
      cfg.load_string("[module::MediaRelay]\nport-range = 40000-40099\n"
                      "max-early-media-per-call = 4\n",
                      "p.conf", &err));
  auto s = portier::proxy::settings_from_config(cfg);
  EXPECT_TRUE(s.relay.enabled);
  EXPECT_EQ(s.relay.port_min, 40000);
  EXPECT_EQ(s.relay.port_max, 40099);
  EXPECT_EQ(s.relay.max_early_media, 4);
  // The default: AEAD first, then what every SDES device knows.
  using portier::sdp::SrtpSuite;
  EXPECT_EQ(s.relay.branch_suites,
            (std::vector<SrtpSuite>{SrtpSuite::AeadAes128Gcm, SrtpSuite::AesCm128HmacSha1_80,
                                    SrtpSuite::AesCm128HmacSha1_32}));
  // Linphone's comma-separated form of the same list.
  Config lin(portier::proxy::proxy_schema());
  ASSERT_TRUE(
      lin.load_string("[module::MediaRelay]\nsrtp-crypto-suites = "
                      "AES_CM_128_HMAC_SHA1_80, AES_256_CM_HMAC_SHA1_80\n",
                      "p.conf", &err));
  EXPECT_EQ(portier::proxy::check_proxy_config(lin), "");
  EXPECT_EQ(
      portier::proxy::settings_from_config(lin).relay.branch_suites,
      (std::vector<SrtpSuite>{SrtpSuite::AesCm128HmacSha1_80, SrtpSuite::Aes256CmHmacSha1_80}));
}

TEST(Config, AnyKeySectionTakesUserNamedKeysAndStillRejectsTypos) {
  Schema s("test");
  s.str("global", "name", "door", "a name")
      .any_key("actions", portier::config::Type::List, "door = 1234", "NAME = CODE")
      .str("actions", "fixed", "x", "a declared key beside the free ones");
  Config c(s);
  std::string err;
  ASSERT_TRUE(c.load_string("[actions]\nlight = 1 2\ndoor = 3\nfixed = y\n", "t.conf", &err))
      << err;
  EXPECT_EQ(c.names_in("actions"), (std::vector<std::string>{"door", "light"}));
  EXPECT_EQ(c.get_list("actions", "light"), (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(c.origin("actions", "door"), "t.conf:3");
  EXPECT_EQ(c.get_string("actions", "fixed"), "y");
  EXPECT_TRUE(c.names_in("global").empty());

  Config bad(s);
  EXPECT_FALSE(bad.load_string("[actions]\nDoor! = 1\n", "t.conf", &err));
  EXPECT_EQ(err, "t.conf:2: [actions] Door!: unknown key");
  EXPECT_FALSE(bad.load_string("[global]\nlight = 1\n", "t.conf", &err));
  EXPECT_EQ(err, "t.conf:2: [global] light: unknown key");

  // The dump shows the example commented out and loads back with no free key set.
  std::string dump = portier::config::dump_default(s);
  EXPECT_NE(dump.find("[actions]\n# NAME = CODE\n# door = 1234\n"), std::string::npos) << dump;
  Config back(s);
  EXPECT_TRUE(back.load_string(dump, "dump", &err)) << err;
  EXPECT_TRUE(back.names_in("actions").empty());
}

// [module::Router] fork-late-max-branches: a count of branches, at least one
// (a pushed phone that wakes needs one), default 8.
TEST(ProxyConfig, ForkLateMaxBranches) {
  {
    Config c(portier::proxy::proxy_schema());
    std::string err;
    ASSERT_TRUE(c.load_string("[module::Router]\n", "p.conf", &err)) << err;
    EXPECT_EQ(portier::proxy::settings_from_config(c).fork_late_max_branches, 8);
  }
  {
    Config c(portier::proxy::proxy_schema());
    std::string err;
    ASSERT_TRUE(c.load_string("[module::Router]\nfork-late-max-branches = 3\n", "p.conf", &err))
        << err;
    EXPECT_EQ(portier::proxy::settings_from_config(c).fork_late_max_branches, 3);
  }
  for (const char *bad : {"0", "-1", "many"}) {
    Config c(portier::proxy::proxy_schema());
    std::string err;
    EXPECT_FALSE(c.load_string(
        std::string("[module::Router]\nfork-late-max-branches = ") + bad + "\n", "p.conf", &err));
    EXPECT_NE(err.find("p.conf:2: [module::Router] fork-late-max-branches: "), std::string::npos)
        << err;
  }
}
