// portier-monitor's config: the documented defaults load, the repo's demo
// configs are valid, settings come out typed, and bad values are errors
// naming file, line and key (never quoting a code).
#include <gtest/gtest.h>

#include "common/account_config.h"
#include "common/config.h"
#include "monitor/monitor_config.h"

using portier::config::Config;
using portier::monitor::ActionMethod;
using portier::monitor::check_monitor_config;
using portier::monitor::is_sendable_code;
using portier::monitor::monitor_schema;
using portier::monitor::monitor_settings_from_config;
using portier::monitor::MonitorSettings;

namespace {

// "" and the settings, or the first error (from the loader or the checks).
std::string load(const std::string &text, MonitorSettings *out) {
  Config cfg(monitor_schema());
  std::string error;
  if (!cfg.load_string(text, "m.conf", &error)) return error;
  std::string problem = check_monitor_config(cfg);
  if (problem.empty()) *out = monitor_settings_from_config(cfg);
  return problem;
}

}  // namespace

TEST(MonitorConfig, DefaultsAreDocumentedAndValid) {
  for (const auto &k : monitor_schema().keys()) EXPECT_FALSE(k.help.empty()) << k.name;
  MonitorSettings s;
  ASSERT_EQ(load(portier::config::dump_default(monitor_schema()), &s), "");
  EXPECT_EQ(s.account.aor, "sip:monitor1@home.example");
  EXPECT_EQ(s.account.username, "monitor1");
  EXPECT_EQ(s.action_method, ActionMethod::Dtmf);
  EXPECT_TRUE(s.open_door_code.empty());
  EXPECT_TRUE(s.doors.empty());
  EXPECT_TRUE(s.media.keyframe.rtcp);
  EXPECT_TRUE(s.media.keyframe.info);
  EXPECT_EQ(s.media.keyframe_wait_ms, 300);
  EXPECT_EQ(s.media.ptime_ms, 20);
  EXPECT_EQ(s.media.audio_codecs, (std::vector<std::string>{"opus", "G722", "PCMU", "PCMA"}))
      << "wideband first, G.711 as the fallback";
  EXPECT_EQ(s.media.port_min, 32000);
  EXPECT_EQ(s.media.port_max, 32099);
  EXPECT_FALSE(s.window);
}

TEST(MonitorConfig, TheDemoConfigsAreValid) {
  for (const char *name : {"monitor.conf", "monitor2.conf"}) {
    Config cfg(monitor_schema());
    std::string error;
    ASSERT_TRUE(cfg.load_file(std::string(PORTIER_SOURCE_DIR) + "/config/" + name, &error))
        << error;
    // Secure by default: SIP over TLS with the proxy's certificate checked by
    // name (RFC 5922 section 7.3), SRTP or no call (RFC 3711).
    EXPECT_EQ(cfg.get_string("account", "proxy"), "sips:proxy.home.example:5061;maddr=127.0.0.1")
        << name;
    EXPECT_TRUE(cfg.get_bool("account", "tls-verify-outgoing")) << name;
    EXPECT_EQ(cfg.get_string("account", "tls-certificates-ca-file"), "/etc/portier/tls/ca.pem")
        << name;
    EXPECT_EQ(cfg.get_string("media", "media-encryption"), "srtp") << name;
    EXPECT_TRUE(cfg.get_bool("media", "media-encryption-mandatory")) << name;
    EXPECT_EQ(portier::device_security_warning(cfg), "") << name;
    // The CA file is the installer's (the demo makes its own), so this machine
    // may not have it: the rest of the config must be valid without it.
    ASSERT_TRUE(cfg.set("account", "tls-verify-outgoing", "false", &error)) << error;
    ASSERT_TRUE(cfg.set("account", "tls-certificates-ca-file", "", &error)) << error;
    EXPECT_EQ(check_monitor_config(cfg), "") << name;
    MonitorSettings s = monitor_settings_from_config(cfg);
    ASSERT_EQ(s.doors.size(), 1u) << name;
    EXPECT_EQ(s.doors[0].name, "front");
    EXPECT_EQ(s.doors[0].aor, "sip:door@home.example");
    EXPECT_FALSE(s.open_door_code.empty());
  }
}

TEST(MonitorConfig, AFullConfig) {
  MonitorSettings s;
  ASSERT_EQ(load("[account]\naor = <sip:Mon2@Home.Example>\nusername = m2\npassword = pw\n"
                 "[media]\nport-range = 40000-40019\nvideo-codecs = H264\n"
                 "keyframe-request = info\nmicrophone = test\nspeaker = none\nptime = 40\n"
                 "audio-codecs = G722 PCMU\n"
                 "[actions]\nmethod = message\nopen-door = 1234#\nlight = *9\n"
                 "[doors]\nfront = sip:door@home.example\nback = sip:Door2@Home.Example\n"
                 "[ui]\nmode = window\n",
                 &s),
            "");
  EXPECT_EQ(s.account.aor, "sip:Mon2@home.example");
  EXPECT_EQ(s.account.username, "m2");
  EXPECT_EQ(s.media.port_min, 40000);
  EXPECT_EQ(s.media.video_codecs, std::vector<std::string>{"H264"});
  EXPECT_FALSE(s.media.keyframe.rtcp);
  EXPECT_TRUE(s.media.keyframe.info);
  EXPECT_EQ(s.media.microphone, "test");
  EXPECT_EQ(s.media.ptime_ms, 40);
  EXPECT_EQ(s.media.audio_codecs, (std::vector<std::string>{"G722", "PCMU"}));
  EXPECT_EQ(s.action_method, ActionMethod::Message);
  EXPECT_EQ(s.open_door_code, "1234#");
  EXPECT_EQ(s.light_code, "*9");
  ASSERT_EQ(s.doors.size(), 2u);
  EXPECT_EQ(s.doors[0].name, "back");  // name order
  EXPECT_EQ(s.doors[0].aor, "sip:Door2@home.example");
  EXPECT_TRUE(s.window);
}

TEST(MonitorConfig, ErrorsNameFileLineAndKey) {
  struct Case {
    const char *text;
    const char *error;
  };
  const Case cases[] = {
      {"[account]\naor = monitor1\n",
       "m.conf:2: [account] aor: 'monitor1' is not a sip:user@domain address"},
      {"[account]\nproxy = 127.0.0.1\n",
       "m.conf:2: [account] proxy: '127.0.0.1' is neither a sip: nor a sips: URI"},
      {"[media]\nport-range = 40000\n", "m.conf:2: [media] port-range: must be MIN-MAX"},
      {"[media]\nport-range = 40000-40002\n", "m.conf:2: [media] port-range: needs 4 ports"},
      {"[media]\naddress = localhost\n", "m.conf:2: [media] address: 'localhost' is not an IPv4"},
      {"[media]\nvideo-codecs = AV1\n", "m.conf:2: [media] video-codecs:"},
      {"[media]\naudio-codecs = opus speex\n",
       "m.conf:2: [media] audio-codecs: 'speex' is not one of: opus, G722, PCMU, PCMA"},
      {"[media]\nkeyframe-request = sometimes\n", "m.conf:2: [media] keyframe-request:"},
      {"[actions]\nmethod = smoke\n", "m.conf:2: [actions] method:"},
      {"[actions]\nopen-door = 12x4\n",
       "m.conf:2: [actions] open-door: a code is 1 to 32 of 0-9 * # A-D"},
      {"[doors]\nfront = door\n", "m.conf:2: [doors] front: 'door' is not a sip:user@domain"},
      {"[ui]\nmode = tv\n", "m.conf:2: [ui] mode:"},
      {"[sip]\nidentity = sip:a@b\n", "m.conf:1:"},
  };
  for (const Case &c : cases) {
    MonitorSettings s;
    const std::string error = load(c.text, &s);
    EXPECT_EQ(error.rfind(c.error, 0), 0u) << c.text << " -> " << error;
    EXPECT_EQ(error.find("12x4"), std::string::npos) << "an error quotes the code: " << error;
  }
}

TEST(MonitorConfig, SendableCodes) {
  EXPECT_TRUE(is_sendable_code("735190"));
  EXPECT_TRUE(is_sendable_code("*0#AD"));
  EXPECT_FALSE(is_sendable_code(""));
  EXPECT_FALSE(is_sendable_code("12 34"));
  EXPECT_FALSE(is_sendable_code("abc"));
  EXPECT_FALSE(is_sendable_code(std::string(33, '1')));
}

TEST(MonitorConfig, CheckConfigWarnsWithoutSrtp) {
  Config cfg(monitor_schema());
  std::string error;
  ASSERT_TRUE(
      cfg.load_string("[account]\nproxy = sips:proxy.home.example:5061\n"
                      "[media]\nmedia-encryption = none\n",
                      "m.conf", &error))
      << error;
  EXPECT_EQ(portier::device_security_warning(cfg),
            "less secure than the shipped config (config/), readable on the network: m.conf:4: "
            "[media] media-encryption: audio and video without SRTP");
}

// A push-woken monitor (issue 14): [account] instance-id (RFC 5626 §4.1) and
// push-provider / push-prid / push-param (RFC 8599 §4.1.1), only in the
// REGISTER's Contact: the instance as a header parameter, the push
// parameters as URI parameters (the proxy reads them from the URI).
TEST(MonitorConfig, InstanceAndPushParameters) {
  MonitorSettings s;
  ASSERT_EQ(load("[account]\ninstance-id = urn:uuid:6F1C2A4E-0b7d-4c55-9a55-8599a11ce001\n"
                 "push-provider = fcm\npush-prid = tok:en%;x=y\"z\n",
                 &s),
            "m.conf:4: [account] push-prid: a token is 1 to 1024 printable ASCII characters "
            "without space or '\"'")
      << "a quote cannot be carried (the proxy refuses it too)";
  ASSERT_EQ(load("[account]\ninstance-id = urn:uuid:6F1C2A4E-0b7d-4c55-9a55-8599a11ce001\n"
                 "push-provider = fcm\npush-prid = tok:en%;x=y&z\npush-param = my-project\n",
                 &s),
            "");
  EXPECT_EQ(s.instance_id, "urn:uuid:6F1C2A4E-0b7d-4c55-9a55-8599a11ce001");
  EXPECT_EQ(s.account.contact_features,
            "+sip.instance=\"<urn:uuid:6F1C2A4E-0b7d-4c55-9a55-8599a11ce001>\"");
  // RFC 3261 §25.1 paramchar: ';', '=' and '%' escaped, ':' and '&' as they are.
  EXPECT_EQ(s.account.contact_params,
            "pn-provider=fcm;pn-prid=tok:en%25%3Bx%3Dy&z;pn-param=my-project");
  EXPECT_EQ(s.push_provider, "fcm");
  EXPECT_EQ(s.push_param, "my-project");

  ASSERT_EQ(load("[account]\npush-provider = webpush\npush-prid = abc\n", &s), "");
  EXPECT_EQ(s.account.contact_params, "pn-provider=webpush;pn-prid=abc") << "no empty pn-param";
  EXPECT_EQ(s.account.contact_features, "");

  ASSERT_EQ(load("", &s), "");
  EXPECT_EQ(s.account.contact_params, "") << "no push parameters by default";
  EXPECT_EQ(s.account.contact_features, "") << "no instance id by default";
  EXPECT_EQ(s.instance_id, "");
}

TEST(MonitorConfig, BadInstanceOrPushParametersAreErrors) {
  const std::string secret = "s3cr3t-device-token";
  struct Case {
    std::string text;
    const char *error;
  };
  const Case cases[] = {
      {"[account]\ninstance-id = 6f1c2a4e-0b7d-4c55-9a55-8599a11ce001\n",
       "m.conf:2: [account] instance-id: '6f1c2a4e-0b7d-4c55-9a55-8599a11ce001' is not "
       "urn:uuid: and a UUID (RFC 5626 §4.1)"},
      {"[account]\ninstance-id = urn:uuid:6f1c2a4e0b7d-4c55-9a55-8599a11ce0011\n",
       "m.conf:2: [account] instance-id:"},
      {"[account]\ninstance-id = urn:uuid:6f1c2a4e-0b7d-4c55-9a55-8599a11ce00g\n",
       "m.conf:2: [account] instance-id:"},
      {"[account]\npush-prid = " + secret + "\n",
       "m.conf:2: [account] push-prid: needs push-provider"},
      {"[account]\npush-param = proj\n", "m.conf:2: [account] push-param: needs push-provider"},
      {"[account]\npush-provider = fcm\n",
       "m.conf:2: [account] push-provider: needs push-prid, the device's token"},
      {"[account]\npush-provider = my provider\npush-prid = " + secret + "\n",
       "m.conf:2: [account] push-provider: 'my provider' is not a provider name"},
      {"[account]\npush-provider = " + std::string(33, 'p') + "\npush-prid = x\n",
       "m.conf:2: [account] push-provider:"},
      {"[account]\npush-provider = fcm\npush-prid = " + secret + std::string(1020, 'x') + "\n",
       "m.conf:3: [account] push-prid: a token is 1 to 1024"},
      {"[account]\npush-provider = fcm\npush-prid = " + secret + "\xc3\xa9\n",
       "m.conf:3: [account] push-prid: a token is 1 to 1024"},
      {"[account]\npush-provider = fcm\npush-prid = x\npush-param = " + std::string(257, 'p') +
           "\n",
       "m.conf:4: [account] push-param:"},
  };
  for (const Case &c : cases) {
    MonitorSettings s;
    const std::string error = load(c.text, &s);
    EXPECT_EQ(error.rfind(c.error, 0), 0u) << c.text << " -> " << error;
    EXPECT_EQ(error.find(secret), std::string::npos) << "an error quotes the token: " << error;
  }
}

TEST(MonitorConfig, PushContactParams) {
  using portier::monitor::push_contact_params;
  EXPECT_EQ(push_contact_params("", "tok", "p"), "");
  EXPECT_EQ(push_contact_params("apns", "T1:voip&T2:remote", "TEAM.org.app.voip&remote"),
            "pn-provider=apns;pn-prid=T1:voip&T2:remote;pn-param=TEAM.org.app.voip&remote")
      << "RFC 8599's APNs forms need no escaping";
  EXPECT_EQ(push_contact_params("webpush", "a b?c@d#", ""),
            "pn-provider=webpush;pn-prid=a%20b%3Fc%40d%23");
  EXPECT_TRUE(portier::monitor::is_instance_urn("URN:UUID:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"))
      << "RFC 8141: the NID and the prefix are case-insensitive";
  EXPECT_FALSE(portier::monitor::is_instance_urn("urn:uuid:"));
  EXPECT_EQ(portier::monitor::instance_feature(""), "");
}
