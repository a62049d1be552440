// portier-door's [actions], [access], [actuator], [button] and [events]: good
// configs become settings, bad lines are errors naming file, line and key, and
// no error ever quotes a code.
#include <gtest/gtest.h>
#include <linux/input.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstdio>
#include <filesystem>

#include "common/config.h"
#include "door/door_config_parts.h"
#include "door/rtsp_config.h"
#include "door_test_util.h"
#include "fake_gpiod/fake_gpiod.h"

using portier::config::Config;
using portier::config::Schema;
using portier::door::ActuatorSpec;
using portier::door::ButtonSpec;
using portier::door::DoorActuators;
using portier::door::DoorParts;
using portier::door::parse_door_parts;

namespace {

const Schema &schema() {
  static const Schema s = [] {
    Schema s("portier-door");
    portier::door::add_door_parts_schema(s);
    return s;
  }();
  return s;
}

// "" and the parts, or the first error (from the loader or from the parse).
std::string parse(const std::string &text, DoorParts *parts) {
  Config cfg(schema());
  std::string error;
  if (!cfg.load_string(text, "d.conf", &error)) return error;
  return parse_door_parts(cfg, parts);
}

}  // namespace

TEST(DoorConfig, DefaultsAreValidAndDoNothing) {
  const std::string dump = portier::config::dump_default(schema());
  for (const auto &k : schema().keys()) EXPECT_FALSE(k.help.empty()) << k.name;
  EXPECT_NE(dump.find("[actions]\n# an action: NAME = CODE [ACTUATOR]."), std::string::npos);
  DoorParts parts;
  ASSERT_EQ(parse(dump, &parts), "");
  EXPECT_TRUE(parts.actions.empty());
  EXPECT_TRUE(parts.access.allow.empty());
  EXPECT_EQ(parts.access.max_wrong_codes, 3);
  EXPECT_EQ(parts.access.lockout, std::chrono::seconds(60));
  EXPECT_EQ(parts.actuator.type, ActuatorSpec::Type::Log);
  EXPECT_EQ(parts.actuator.pulse_length, std::chrono::milliseconds(1500));
  EXPECT_EQ(parts.button.type, ButtonSpec::Type::None);
  EXPECT_EQ(parts.button.key_code, KEY_ENTER);
  EXPECT_EQ(parts.events.dir, "/var/lib/portier/door");
  EXPECT_EQ(parts.events.keep_rings, 100);
  EXPECT_EQ(parts.events.keep_days, 30);
  EXPECT_EQ(parts.events.keep_bytes, 10 * 1024 * 1024);
}

TEST(DoorConfig, AFullConfig) {
  DoorParts parts;
  ASSERT_EQ(parse("[actions]\n"
                  "door = 735190\n"
                  "light = 4826 /bin/true --light on\n"
                  "gate = 90817263 gpio:gpiochip1:5\n"
                  "buzzer = 11223 log\n"
                  "[access]\n"
                  "min-code-length = 4\n"
                  "allow = sip:Alice@Home.Example <sip:bob@home.example;transport=tcp>\n"
                  "max-wrong-codes = 5\n"
                  "lockout = 120\n"
                  "global-max-wrong-codes = 20\n"
                  "digit-timeout = 3\n"
                  "[actuator]\n"
                  "type = gpio\n"
                  "chip = gpiochip0\n"
                  "line = 17\n"
                  "active-low = true\n"
                  "pulse-ms = 2500\n"
                  "[button]\n"
                  "type = evdev\n"
                  "device = /dev/input/event3\n"
                  "key = KEY_PROG1\n"
                  "[events]\n"
                  "dir = /srv/door\n"
                  "keep-rings = 7\n"
                  "keep-days = 2\n"
                  "keep-mb = 3\n",
                  &parts),
            "");
  ASSERT_EQ(parts.actions.size(), 4u);  // in name order
  EXPECT_EQ(parts.actions[0].name, "buzzer");
  EXPECT_TRUE(parts.actions[0].own_actuator);
  EXPECT_EQ(parts.actions[0].actuator.type, ActuatorSpec::Type::Log);
  EXPECT_EQ(parts.actions[1].name, "door");
  EXPECT_EQ(parts.actions[1].code, "735190");
  EXPECT_FALSE(parts.actions[1].own_actuator);
  EXPECT_EQ(parts.actions[2].name, "gate");
  EXPECT_EQ(parts.actions[2].actuator.type, ActuatorSpec::Type::Gpio);
  EXPECT_EQ(parts.actions[2].actuator.gpio.chip, "gpiochip1");
  EXPECT_EQ(parts.actions[2].actuator.gpio.line, 5u);
  EXPECT_TRUE(parts.actions[2].actuator.gpio.active_low);  // from [actuator]
  EXPECT_EQ(parts.actions[2].actuator.pulse_length, std::chrono::milliseconds(2500));
  EXPECT_EQ(parts.actions[3].actuator.command,
            (std::vector<std::string>{"/bin/true", "--light", "on"}));
  EXPECT_EQ(parts.access.allow,
            (std::vector<std::string>{"sip:alice@home.example", "sip:bob@home.example"}));
  EXPECT_EQ(parts.access.max_wrong_codes, 5);
  EXPECT_EQ(parts.access.lockout, std::chrono::seconds(120));
  EXPECT_EQ(parts.access.global_max_wrong_codes, 20);
  EXPECT_EQ(parts.access.digit_timeout, std::chrono::seconds(3));
  EXPECT_EQ(parts.actuator.type, ActuatorSpec::Type::Gpio);
  EXPECT_EQ(parts.actuator.gpio.line, 17u);
  EXPECT_EQ(parts.button.type, ButtonSpec::Type::Evdev);
  EXPECT_EQ(parts.button.device, "/dev/input/event3");
  EXPECT_EQ(parts.button.key_code, KEY_PROG1);
  EXPECT_EQ(parts.events.dir, "/srv/door");
  EXPECT_EQ(parts.events.keep_rings, 7);
  EXPECT_EQ(parts.events.keep_bytes, 3 * 1024 * 1024);
  EXPECT_EQ(parts.codes().size(), 4u);
}

struct BadLine {
  const char *text, *error;
};

class DoorConfigErrors : public ::testing::TestWithParam<BadLine> {};

TEST_P(DoorConfigErrors, NameFileLineAndKeyButNeverACode) {
  DoorParts parts;
  const std::string error = parse(GetParam().text, &parts);
  EXPECT_EQ(error, GetParam().error);
  for (const char *code : {"987", "735190", "4826"})
    EXPECT_EQ(error.find(code), std::string::npos) << error;
}

INSTANTIATE_TEST_SUITE_P(
    Table, DoorConfigErrors,
    ::testing::Values(
        BadLine{"[actions]\ndoor = 987\n",
                "d.conf:2: [actions] door: the code must be 4 to 12 digits 0-9, then an optional "
                "actuator"},
        BadLine{"[actions]\ndoor = 7351x0\n",
                "d.conf:2: [actions] door: the code must be 4 to 12 digits 0-9, then an optional "
                "actuator"},
        BadLine{"[actions]\ndoor =\n",
                "d.conf:2: [actions] door: the code must be 4 to 12 digits 0-9, then an optional "
                "actuator"},
        BadLine{"[actions]\nDoor = 735190\n", "d.conf:2: [actions] Door: unknown key"},
        BadLine{"[actions]\ndoor = 735190\nlight = 735190\n",
                "d.conf:3: [actions] light: actions 'door' and 'light' have the same code"},
        BadLine{"[actions]\nlight = 4826\ndoor = 48261\n[access]\nmin-code-length = 4\n",
                "d.conf:2: [actions] light: the code of 'door' starts with the code of 'light', "
                "so it could never be typed"},
        BadLine{"[actions]\ndoor = 735190 relay\n",
                "d.conf:2: [actions] door: 'relay' is not an actuator (log, gpio:CHIP:LINE or an "
                "absolute program path)"},
        BadLine{"[actions]\ndoor = 735190 log now\n",
                "d.conf:2: [actions] door: 'log' is not an actuator (log, gpio:CHIP:LINE or an "
                "absolute program path)"},
        BadLine{"[actions]\ndoor = 735190 gpio:gpiochip0:x\n",
                "d.conf:2: [actions] door: 'gpio:gpiochip0:x' is not gpio:CHIP:LINE"},
        BadLine{"[actions]\ndoor = 735190 /nonexistent/open\n",
                "d.conf:2: [actions] door: '/nonexistent/open': No such file or directory"},
        BadLine{
            "[actions]\ndoor = 735190\ngate = 482601 gpio:gpiochip0:17\n[actuator]\ntype = gpio\n",
            "d.conf:3: [actions] gate: GPIO line 17 of 'gpiochip0' is already the actuator "
            "of another action"},
        BadLine{"[access]\nallow = sip:alice@home.example alice@home.example\n",
                "d.conf:2: [access] allow: 'alice@home.example' is not a sip:user@domain "
                "identity"},
        // 6 digits by default; fewer only through min-code-length.
        BadLine{"[actions]\ndoor = 48261\n",
                "d.conf:2: [actions] door: the code is shorter than 6 digits ([access] "
                "min-code-length)"},
        BadLine{"[actions]\ndoor = 4826\n[access]\nmin-code-length = 5\n",
                "d.conf:2: [actions] door: the code is shorter than 5 digits ([access] "
                "min-code-length)"},
        BadLine{"[access]\nmin-code-length = 3\n",
                "d.conf:2: [access] min-code-length: 3 is out of range [4, 12]"},
        BadLine{"[access]\nmax-wrong-codes = 0\n",
                "d.conf:2: [access] max-wrong-codes: 0 is out of range [1, 100]"},
        BadLine{"[actuator]\ntype = relay\n",
                "d.conf:2: [actuator] type: 'relay' is not one of: gpio, command, log"},
        BadLine{"[actuator]\ntype = command\n", "d.conf:2: [actuator] type: no command given"},
        BadLine{"[actuator]\ntype = command\ncommand = open-door --now\n",
                "d.conf:3: [actuator] command: 'open-door' is not an absolute path"},
        BadLine{"[actuator]\ntype = gpio\nchip =\n",
                "d.conf:3: [actuator] chip: a GPIO chip is needed for type gpio"},
        BadLine{"[actuator]\npulse-ms = 10\n",
                "d.conf:2: [actuator] pulse-ms: 10 is out of range [50, 60000]"},
        BadLine{"[button]\ntype = evdev\nkey = KEY_NOPE\n",
                "d.conf:3: [button] key: 'KEY_NOPE' is not a key (KEY_... or BTN_... name, or a "
                "number)"},
        BadLine{"[button]\nedge = both\n",
                "d.conf:2: [button] edge: 'both' is not one of: falling, rising"},
        BadLine{"[actions]\ndoor = 735190\n[actuator]\ntype = gpio\n[button]\ntype = gpio\n"
                "line = 17\n",
                "d.conf:7: [button] line: GPIO line 17 of 'gpiochip0' is the actuator's line"},
        BadLine{"[events]\ndir = var/lib/door\n",
                "d.conf:2: [events] dir: must be an absolute directory path"},
        BadLine{"[events]\nkeep-days = 0\n",
                "d.conf:2: [events] keep-days: 0 is out of range [1, 3650]"}));

TEST(DoorConfig, ActionsSharingTheActuatorSectionShareOneActuator) {
  fake_gpiod::set_record_file("");
  DoorParts parts;
  ASSERT_EQ(parse("[actions]\ndoor = 735190\nback-door = 111111\nlight = 482611 log\n"
                  "gate = 246800 gpio:gpiochip1:5\n[actuator]\ntype = gpio\n",
                  &parts),
            "");
  DoorActuators acts;
  std::string error;
  ASSERT_TRUE(portier::door::open_actuators(parts, &acts, &error)) << error;
  EXPECT_EQ(acts.all.size(), 3u);
  ASSERT_EQ(acts.by_action.size(), 4u);
  EXPECT_EQ(acts.by_action["door"], acts.by_action["back-door"]);
  EXPECT_STREQ(acts.by_action["door"]->type(), "gpio");
  EXPECT_STREQ(acts.by_action["light"]->type(), "log");
  EXPECT_STREQ(acts.by_action["gate"]->type(), "gpio");
  EXPECT_NE(acts.by_action["gate"], acts.by_action["door"]);
}

TEST(DoorConfig, HardwareErrorsNameTheConfigLine) {
  DoorParts parts;
  ASSERT_EQ(parse("[actions]\ndoor = 735190\n[actuator]\ntype = gpio\nchip = gpiochip7\n", &parts),
            "");
  DoorActuators acts;
  std::string error;
  EXPECT_FALSE(portier::door::open_actuators(parts, &acts, &error));
  EXPECT_EQ(error, "d.conf:5: [actuator] chip: GPIO chip 'gpiochip7' not found (try gpiodetect)");

  // An unused [actuator] is not opened at all.
  ASSERT_EQ(parse("[actuator]\ntype = gpio\nchip = gpiochip7\n", &parts), "");
  EXPECT_TRUE(portier::door::open_actuators(parts, &acts, &error));
  EXPECT_TRUE(acts.all.empty());

  ASSERT_EQ(parse("[button]\ntype = evdev\ndevice = /nonexistent/event9\n", &parts), "");
  EXPECT_FALSE(portier::door::open_button(parts.button, &error));
  EXPECT_EQ(error,
            "d.conf:3: [button] device: cannot open input device '/nonexistent/event9': No such "
            "file or directory");

  ASSERT_EQ(parse("[button]\ntype = gpio\nline = 60\n", &parts), "");
  EXPECT_FALSE(portier::door::open_button(parts.button, &error));
  EXPECT_EQ(error,
            "d.conf:3: [button] line: line 60 does not exist on GPIO chip 'gpiochip0' (54 lines, "
            "0-53)");

  ASSERT_EQ(parse("[button]\ntype = gpio\nline = 26\n", &parts), "");
  auto button = portier::door::open_button(parts.button, &error);
  ASSERT_TRUE(button) << error;
  EXPECT_GE(button->fd(), 0);

  ASSERT_EQ(parse("", &parts), "");
  error = "stale";
  EXPECT_FALSE(portier::door::open_button(parts.button, &error));
  EXPECT_EQ(error, "");
}

// [rtsp]: the preview is never served without a users file holding a user, and
// a TLS certificate comes with its own key. Errors name the config line and the
// file (and its line) at fault, never a password.
namespace {

using portier::door::RtspSettings;

const Schema &rtsp_schema() {
  static const Schema s = [] {
    Schema s("portier-door");
    portier::door::add_rtsp_schema(s);
    return s;
  }();
  return s;
}

std::string parse_rtsp(const std::string &text, RtspSettings *out) {
  Config cfg(rtsp_schema());
  std::string error;
  if (!cfg.load_string(text, "d.conf", &error)) return error;
  return portier::door::parse_rtsp_settings(cfg, out);
}

// A self-signed P-256 certificate and its key, as PEM files.
void write_key_pair(const std::string &cert_path, const std::string &key_path) {
  EVP_PKEY *key = EVP_EC_gen("P-256");
  ASSERT_NE(key, nullptr);
  X509 *cert = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_set_pubkey(cert, key);
  X509_NAME *name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char *>("door"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
  FILE *f = std::fopen(cert_path.c_str(), "w");
  PEM_write_X509(f, cert);
  std::fclose(f);
  f = std::fopen(key_path.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(cert);
  EVP_PKEY_free(key);
}

}  // namespace

TEST(DoorRtspConfig, OffByDefaultOnLoopbackAndNeedsNothing) {
  RtspSettings r;
  ASSERT_EQ(parse_rtsp(portier::config::dump_default(rtsp_schema()), &r), "");
  EXPECT_FALSE(r.enabled);
  EXPECT_EQ(r.address, "127.0.0.1");
  EXPECT_EQ(r.port, 8554);
  EXPECT_TRUE(r.users.empty());
  EXPECT_FALSE(r.tls());
}

TEST(DoorRtspConfig, UsersFromTheProxysFormat) {
  door_test::TempDir dir;
  door_test::write_file(dir / "users.conf",
                        "version:1\n"
                        "# the installer and the caretaker\n"
                        "installer@home.example clrtxt:Rtsp-Pw-1 ;\n"
                        "caretaker@other.example clrtxt:Rtsp-Pw-2 md5:"
                        "0123456789abcdef0123456789abcdef ;\n");
  RtspSettings r;
  ASSERT_EQ(parse_rtsp("[rtsp]\nenabled = true\nusers-file = " + (dir / "users.conf") + "\n", &r),
            "");
  EXPECT_TRUE(r.enabled);
  ASSERT_EQ(r.users.size(), 2u);
  EXPECT_EQ(r.users[0].name, "installer");  // the part before '@', in file order
  EXPECT_EQ(r.users[0].password, "Rtsp-Pw-1");
  EXPECT_EQ(r.users[1].name, "caretaker");
  EXPECT_FALSE(r.tls());
}

TEST(DoorRtspConfig, RefusedUsersFiles) {
  door_test::TempDir dir;
  const std::string users = dir / "users.conf";
  const std::string key = "d.conf:3: [rtsp] users-file: ";
  struct Case {
    const char *file;  // nullptr: no file at all
    std::string error;
  };
  const Case cases[] = {
      {nullptr, key + users + ": cannot open the users file: No such file or directory"},
      {"", key + users + ":1: missing 'version:1' line"},
      {"version:1\n# nobody yet\n", key + users + ": no user in it"},
      {"version:1\ninstaller@home.example clrtxt:Rtsp-Pw-1\n",
       key + users + ":2: missing ';' at the end of the entry"},
      {"version:1\ninstaller@home.example md5:0123456789abcdef0123456789abcdef ;\n",
       key + users + ":2: installer has no clrtxt: secret, which the RTSP preview's digest needs"},
      {"version:1\ninstaller@home.example clrtxt:Rtsp-Pw-1 ;\n\n"
       "installer@other.example clrtxt:Rtsp-Pw-2 ;\n",
       key + users +
           ":4: the RTSP user installer is already at line 2 (the RTSP user name is the part "
           "before '@')"},
  };
  for (const Case &c : cases) {
    std::filesystem::remove(users);
    if (c.file) door_test::write_file(users, c.file);
    RtspSettings r;
    const std::string error =
        parse_rtsp("[rtsp]\nenabled = true\nusers-file = " + users + "\n", &r);
    EXPECT_EQ(error, c.error) << (c.file ? c.file : "(no file)");
    EXPECT_EQ(error.find("Rtsp-Pw"), std::string::npos) << error;
    EXPECT_FALSE(r.enabled);
  }
  RtspSettings r;
  EXPECT_EQ(parse_rtsp("[rtsp]\n\nenabled = true\n", &r),
            "d.conf:3: [rtsp] enabled: the preview needs [rtsp] users-file: it is never served "
            "without credentials");
  // Off, the preview's users file is not read at all.
  EXPECT_EQ(parse_rtsp("[rtsp]\nenabled = false\nusers-file = " + (dir / "none") + "\n", &r), "");
}

TEST(DoorRtspConfig, CertificateAndKey) {
  door_test::TempDir dir;
  door_test::write_file(dir / "users.conf", "version:1\ninstaller@home.example clrtxt:pw ;\n");
  write_key_pair(dir / "door.crt", dir / "door.key");
  write_key_pair(dir / "other.crt", dir / "other.key");
  const std::string head = "[rtsp]\nenabled = true\nusers-file = " + (dir / "users.conf") + "\n";
  auto tls = [&](const std::string &cert, const std::string &key) {
    return head + "tls-certificates-file = " + cert + "\ntls-certificates-private-key = " + key +
           "\n";
  };
  RtspSettings r;
  ASSERT_EQ(parse_rtsp(tls(dir / "door.crt", dir / "door.key"), &r), "");
  EXPECT_TRUE(r.tls());
  EXPECT_EQ(r.tls_certificate, dir / "door.crt");
  EXPECT_EQ(r.tls_private_key, dir / "door.key");

  const std::string at = "d.conf:4: [rtsp] tls-certificates-file: ";
  EXPECT_EQ(parse_rtsp(tls(dir / "door.crt", dir / "other.key"), &r),
            at + (dir / "other.key") + ": this private key does not belong to the certificate in " +
                (dir / "door.crt"));
  EXPECT_EQ(
      parse_rtsp(tls(dir / "none.crt", dir / "door.key"), &r),
      at + (dir / "none.crt") + ": cannot open the TLS certificate: No such file or directory");
  EXPECT_EQ(
      parse_rtsp(tls(dir / "door.crt", dir / "none.key"), &r),
      at + (dir / "none.key") + ": cannot open the TLS private key: No such file or directory");
  EXPECT_EQ(parse_rtsp(tls(dir / "door.key", dir / "door.key"), &r),
            at + (dir / "door.key") + ": no PEM certificate in it");
  EXPECT_EQ(parse_rtsp(tls(dir / "door.crt", dir / "door.crt"), &r),
            at + (dir / "door.crt") + ": no unencrypted PEM private key in it");
  EXPECT_EQ(parse_rtsp(head + "tls-certificates-file = " + (dir / "door.crt") + "\n", &r),
            "d.conf:4: [rtsp] tls-certificates-file: needs its partner: tls-certificates-file "
            "and tls-certificates-private-key go together");
}
