// The push clients (signaling/push/) against the stand-ins of
// tests/push/push_standin.py: real libcurl and nghttp2, real TLS with the
// stand-in's CA, on a real sofia-sip root (the proxy's native one). What is
// asserted is what the provider received (the stand-in's log) and the outcome
// the fork would get. No fixed ports: the stand-in picks one and says it.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/json.h"
#include "common/log.h"
#include "push/json_value.h"
#include "push/push_client.h"
#include "push/push_config.h"
#include "runtime/mainloop.h"

namespace portier::push {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::vector<std::string> g_log;

void capture(int, const std::string &, const char *text) { g_log.push_back(text); }

std::string read_file(const std::string &path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_file(const std::string &path, const std::string &text) {
  std::ofstream f(path, std::ios::trunc);
  f << text;
}

// The stand-in, started once for the whole program.
struct Standin {
  pid_t pid = -1;
  int stdin_fd = -1;
  std::string dir;
  json::Value info;
  std::string log_path() const { return info.string_or("log"); }
  int port() const { return static_cast<int>(info.get("port")->number); }
  std::string url() const { return "https://localhost:" + std::to_string(port()); }
};
Standin g_standin;

class PushClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/portier-push-test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    g_standin.dir = tmpl;
    int in[2], out[2];
    ASSERT_EQ(pipe(in), 0);
    ASSERT_EQ(pipe(out), 0);
    const std::string script = std::string(PORTIER_SOURCE_DIR) + "/tests/push/push_standin.py";
    g_standin.pid = fork();
    ASSERT_GE(g_standin.pid, 0);
    if (g_standin.pid == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      close(in[1]);
      close(out[0]);
      execl(PORTIER_PUSH_PYTHON, PORTIER_PUSH_PYTHON, script.c_str(), g_standin.dir.c_str(),
            static_cast<char *>(nullptr));
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    g_standin.stdin_fd = in[1];
    FILE *f = fdopen(out[0], "r");
    char line[128] = "";
    ASSERT_NE(fgets(line, sizeof line, f), nullptr)
        << "the stand-in did not start (" PORTIER_PUSH_PYTHON
           " with python3-h2 and "
           "python3-cryptography?)";
    fclose(f);
    ASSERT_EQ(std::string(line).compare(0, 6, "READY "), 0) << line;
    std::string error;
    ASSERT_TRUE(json::parse(read_file(g_standin.dir + "/standin.json"), &g_standin.info, &error))
        << error;
  }

  static void TearDownTestSuite() {
    if (g_standin.stdin_fd >= 0) close(g_standin.stdin_fd);
    if (g_standin.pid > 0) {
      kill(g_standin.pid, SIGTERM);
      waitpid(g_standin.pid, nullptr, 0);
    }
    if (!g_standin.dir.empty()) std::filesystem::remove_all(g_standin.dir);
  }

  void SetUp() override {
    ASSERT_GT(g_standin.pid, 0);
    log::configure("push-test", log::Output::Journal, log::Level::Debug, capture);
    g_log.clear();
    root_ = mainloop::native_sofia_root();
    ASSERT_NE(root_, nullptr);
    log_offset_ = read_file(g_standin.log_path()).size();
    script("{}");
  }

  void TearDown() override {
    client_.reset();
    su_root_destroy(root_);
    // Nothing secret ever reaches the log: no key, no JWT (its base64url
    // header starts "eyJ"), no access token, no device token.
    for (const auto &line : g_log) {
      EXPECT_EQ(line.find("PRIVATE KEY"), std::string::npos) << line;
      EXPECT_EQ(line.find("eyJ"), std::string::npos) << line;
      EXPECT_EQ(line.find("ya29."), std::string::npos) << line;
      EXPECT_EQ(line.find("bearer"), std::string::npos) << line;
      EXPECT_EQ(line.find("Bearer"), std::string::npos) << line;
      for (const auto &t : tokens_) EXPECT_EQ(line.find(t), std::string::npos) << line;
    }
  }

  void script(const std::string &replies) { write_file(g_standin.dir + "/replies.json", replies); }

  // The stand-in's answers to `token`, in order (a JSON list of replies).
  void script_replies(const std::string &token, const std::string &replies) {
    script(R"({"tokens": {")" + token + R"(": )" + replies + "}}");
  }

  // The settings the proxy would load, pointing at the stand-in.
  PushSettings settings(std::vector<std::string> extra = {}) {
    static const config::Schema schema = [] {
      config::Schema s("push-test");
      add_push_schema(s);
      return s;
    }();
    config::Config cfg(schema);
    std::map<std::string, std::string> keys = {
        {"enabled", "true"},
        {"firebase-service-accounts",
         g_standin.info.string_or("project") + ":" + g_standin.info.string_or("service_account")},
        {"firebase-base-url", g_standin.url()},
        {"apns-base-url", g_standin.url()},
        {"apns-dev-base-url", g_standin.url()},
        {"webhook-url", g_standin.url() + "/webhook"},
        {"ca-file", g_standin.info.string_or("ca_file")},
        {"retransmission-interval", "1"},
        {"apns-key-file", g_standin.info.string_or("apns_key_file")},
        {"apns-key-id", g_standin.info.string_or("apns_key_id")},
        {"apns-team-id", g_standin.info.string_or("apns_team_id")},
    };
    for (const auto &line : extra) {
      const size_t eq = line.find(" = ");
      keys[line.substr(0, eq)] = line.substr(eq + 3);
      // Certificate authentication replaces the key.
      if (line.rfind("apns-certificate-file", 0) == 0) keys.erase("apns-key-file");
    }
    std::string text = "[module::PushNotification]\n";
    for (const auto &[k, v] : keys) text += k + " = " + v + "\n";
    std::string error;
    EXPECT_TRUE(cfg.load_string(text, "test.conf", &error)) << error;
    PushSettings s;
    error = load_push_settings(cfg, &s);
    EXPECT_EQ(error, "");
    return s;
  }

  PushClient &client(std::vector<std::string> extra = {}) {
    client_ = std::make_unique<PushClient>(root_, settings(std::move(extra)));
    return *client_;
  }

  PushRequest request(const std::string &provider, const std::string &prid,
                      const std::string &param, std::chrono::milliseconds ttl = 20s) {
    tokens_.push_back(prid);
    PushRequest r;
    r.provider = provider;
    r.prid = prid;
    r.param = param;
    r.call_id = "call-" + std::to_string(++calls_) + "@door.test";
    r.caller_display = "Front door";
    r.caller_uri = "sip:door@home.test";
    r.deadline = Clock::now() + ttl;
    return r;
  }

  // Sends `r` and runs the root until its outcome; none when the time ran out.
  std::optional<PushResult> outcome_of(PushClient &c, const PushRequest &r) {
    std::optional<PushResult> result;
    c.send(r, [&](const PushResult &res) { result = res; });
    run_until([&] { return result.has_value(); });
    return result;
  }

  // Runs the root until `done` or the time is up (a bound, not an assertion).
  bool run_until(const std::function<bool()> &done, std::chrono::milliseconds limit = 15s) {
    const auto end = Clock::now() + limit;
    while (!done() && Clock::now() < end) su_root_step(root_, 20);
    return done();
  }

  void run_for(std::chrono::milliseconds d) {
    run_until([] { return false; }, d);
  }

  // The stand-in's log lines since this test began, optionally of one event.
  std::vector<json::Value> received(const std::string &event = "") {
    std::vector<json::Value> out;
    std::istringstream lines(read_file(g_standin.log_path()).substr(log_offset_));
    std::string line;
    while (std::getline(lines, line)) {
      json::Value v;
      std::string error;
      if (!json::parse(line, &v, &error)) continue;
      if (event.empty() || v.string_or("event") == event) out.push_back(std::move(v));
    }
    return out;
  }

  size_t log_lines_with(const std::string &needle) {
    size_t n = 0;
    for (const auto &l : g_log) n += l.find(needle) != std::string::npos;
    return n;
  }

  su_root_t *root_ = nullptr;
  std::unique_ptr<PushClient> client_;
  size_t log_offset_ = 0;
  std::vector<std::string> tokens_;
  int calls_ = 0;
};

const char *kFcmToken = "fcm-device-token-0001:APA91bHexample";
const char *kVoipToken = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";
const char *kRemoteToken = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0";

int number(const json::Value &v, const char *key) {
  const json::Value *n = v.get(key);
  return n && n->type == json::Value::Type::Number ? static_cast<int>(n->number) : -1;
}

// FCM HTTP v1 + Google OAuth2: one access token for many pushes, and all of
// them (the token request too) over one HTTP/2 connection.
TEST_F(PushClientTest, FcmFetchesOneAccessTokenForManyPushesOverOneConnection) {
  PushClient &c = client();
  std::vector<PushResult> results;
  for (int i = 0; i < 8; ++i)
    c.send(request("fcm", kFcmToken, g_standin.info.string_or("project")),
           [&](const PushResult &r) { results.push_back(r); });
  ASSERT_TRUE(run_until([&] { return results.size() == 8; }));
  for (const auto &r : results) EXPECT_EQ(r.outcome, PushOutcome::Delivered) << r.reason;

  const auto tokens = received("token");
  ASSERT_EQ(tokens.size(), 1u) << "one OAuth2 token for every push";
  EXPECT_FALSE(tokens[0].get("error")) << tokens[0].string_or("error");
  const auto pushes = received("fcm");
  ASSERT_EQ(pushes.size(), 8u);
  for (const auto &p : pushes) {
    EXPECT_FALSE(p.get("error")) << p.string_or("error");
    EXPECT_EQ(p.string_or("access_token_n"), std::to_string(number(tokens[0], "n")));
    EXPECT_EQ(p.string_or("device"), kFcmToken);
    ASSERT_TRUE(p.get("data") && p.get("android"));
    EXPECT_EQ(p.get("data")->string_or("kind"), "call");
    EXPECT_EQ(p.get("data")->string_or("from-uri"), "sip:door@home.test");
    EXPECT_EQ(p.get("android")->string_or("priority"), "HIGH");
    // ttl = what is left of the fork's 20 s
    const std::string ttl = p.get("android")->string_or("ttl");
    ASSERT_FALSE(ttl.empty());
    EXPECT_LE(std::stoi(ttl), 20);
    EXPECT_EQ(ttl.back(), 's');
  }
  const auto connections = received("connection");
  ASSERT_EQ(connections.size(), 1u) << "token endpoint and messages:send share one connection";
  EXPECT_EQ(connections[0].string_or("alpn"), "h2");
  EXPECT_EQ(c.fcm().tokens_fetched(), 1u);
}

TEST_F(PushClientTest, FcmFetchesANewAccessTokenWhenTheOldOneExpires) {
  // expires_in 2: the client keeps it for 1 s (it renews before the end).
  script(R"({"token_expires_in": 2})");
  PushClient &c = client();
  std::vector<PushResult> results;
  auto push = [&] {
    c.send(request("fcm", kFcmToken, g_standin.info.string_or("project")),
           [&](const PushResult &r) { results.push_back(r); });
  };
  push();
  ASSERT_TRUE(run_until([&] { return results.size() == 1; }));
  push();
  ASSERT_TRUE(run_until([&] { return results.size() == 2; }));
  run_for(1500ms);
  push();
  ASSERT_TRUE(run_until([&] { return results.size() == 3; }));
  for (const auto &r : results) EXPECT_EQ(r.outcome, PushOutcome::Delivered) << r.reason;
  const auto tokens = received("token");
  ASSERT_EQ(tokens.size(), 2u);
  const auto pushes = received("fcm");
  ASSERT_EQ(pushes.size(), 3u);
  EXPECT_EQ(pushes[0].string_or("access_token_n"), pushes[1].string_or("access_token_n"));
  EXPECT_NE(pushes[1].string_or("access_token_n"), pushes[2].string_or("access_token_n"));
  EXPECT_EQ(pushes[2].string_or("access_token_n"), std::to_string(number(tokens[1], "n")));
}

// A fresh key of the same kind as the stand-in's, in a PEM file: the
// stand-in must refuse what it signs.
std::string write_other_key(const std::string &path, bool rsa) {
  EVP_PKEY *key = rsa ? EVP_RSA_gen(2048) : EVP_EC_gen("P-256");
  BIO *bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char *data;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, n);
  BIO_free(bio);
  EVP_PKEY_free(key);
  write_file(path, pem);
  return pem;
}

// The stand-in checks the assertion's RS256 signature against the service
// account's key: an assertion signed by another key gets no access token, and
// the push fails without reaching messages:send.
TEST_F(PushClientTest, FcmAssertionSignedByAnotherKeyGetsNoToken) {
  const std::string pem = write_other_key(g_standin.dir + "/other-sa.key", true);
  json::Value sa;
  std::string error;
  ASSERT_TRUE(json::parse(read_file(g_standin.info.string_or("service_account")), &sa, &error));
  const std::string other = g_standin.dir + "/other-sa.json";
  write_file(other, ::portier::json::Writer()
                        .begin_object()
                        .field("type", "service_account")
                        .field("client_email", sa.string_or("client_email"))
                        .field("token_uri", sa.string_or("token_uri"))
                        .field("private_key", pem)
                        .end_object()
                        .take());
  PushClient &c =
      client({"firebase-service-accounts = " + g_standin.info.string_or("project") + ":" + other});
  const auto result = outcome_of(c, request("fcm", kFcmToken, g_standin.info.string_or("project")));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->outcome, PushOutcome::Failed);
  EXPECT_EQ(result->status, 400);
  const auto tokens = received("token");
  ASSERT_EQ(tokens.size(), 1u);
  EXPECT_EQ(tokens[0].string_or("error"), "bad signature");
  EXPECT_TRUE(received("fcm").empty());
}

// The same for APNs: a provider token signed by another .p8 is refused (403
// InvalidProviderToken); the client makes a new one for the next push rather
// than sending the refused one for 50 minutes.
TEST_F(PushClientTest, ApnsProviderTokenSignedByAnotherKeyIsRefusedAndRemade) {
  write_other_key(g_standin.dir + "/other.p8", false);
  PushClient &c = client({"apns-key-file = " + g_standin.dir + "/other.p8"});
  std::vector<PushResult> results;
  for (int i = 0; i < 2; ++i) {
    c.send(request("apns", kVoipToken, "TEAMID1234.org.example.door.voip"),
           [&](const PushResult &r) { results.push_back(r); });
    ASSERT_TRUE(run_until([&] { return results.size() == static_cast<size_t>(i + 1); }));
  }
  for (const auto &r : results) {
    EXPECT_EQ(r.outcome, PushOutcome::Failed) << "the binding stays: our key is at fault";
    EXPECT_EQ(r.status, 403);
    EXPECT_NE(r.reason.find("InvalidProviderToken"), std::string::npos) << r.reason;
  }
  const auto pushes = received("apns");
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(pushes[0].string_or("error"), "provider token: bad signature");
  EXPECT_EQ(c.apns().jwts_made(), 2u);
}

// FCM's ErrorCode UNREGISTERED comes with 404: the token is gone.
TEST_F(PushClientTest, FcmUnregisteredIsAnInvalidToken) {
  script_replies(kFcmToken, R"([{"status": 404, "reason": "UNREGISTERED"}])");
  PushClient &c = client();
  const auto result = outcome_of(c, request("fcm", kFcmToken, g_standin.info.string_or("project")));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->outcome, PushOutcome::InvalidToken);
  EXPECT_EQ(result->status, 404);
  EXPECT_NE(result->reason.find("UNREGISTERED"), std::string::npos) << result->reason;
  EXPECT_EQ(result->attempts, 1);
}

TEST_F(PushClientTest, FcmWithoutAServiceAccountForTheProjectFails) {
  PushClient &c = client();
  const auto result = outcome_of(c, request("fcm", kFcmToken, "another-project"));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->outcome, PushOutcome::Failed);
  EXPECT_TRUE(received("fcm").empty());
}

// APNs token authentication: one ES256 provider token for many pushes (Apple
// refuses a new one more often than every 20 minutes), all multiplexed on one
// HTTP/2 connection (the stand-in holds its answers so they overlap).
TEST_F(PushClientTest, ApnsReusesOneProviderTokenAndMultiplexesOneConnection) {
  script(R"({"delay": 0.3})");
  PushClient &c = client();
  std::vector<PushResult> results;
  const int n = 20;
  for (int i = 0; i < n; ++i)
    c.send(request("apns", kVoipToken, "TEAMID1234.org.example.door.voip"),
           [&](const PushResult &r) { results.push_back(r); });
  ASSERT_TRUE(run_until([&] { return results.size() == n; }));
  for (const auto &r : results) EXPECT_EQ(r.outcome, PushOutcome::Delivered) << r.reason;
  const auto pushes = received("apns");
  ASSERT_EQ(pushes.size(), static_cast<size_t>(n));
  int most_at_once = 0;
  for (const auto &p : pushes) {
    EXPECT_FALSE(p.get("error")) << p.string_or("error");
    EXPECT_EQ(p.string_or("auth"), "token");
    EXPECT_EQ(p.string_or("jwt_id"), pushes[0].string_or("jwt_id"));
    most_at_once = std::max(most_at_once, number(p, "concurrent"));
  }
  EXPECT_GT(most_at_once, 1) << "requests overlapped on the connection";
  ASSERT_EQ(received("connection").size(), 1u);
  EXPECT_EQ(c.apns().jwts_made(), 1u);
}

// APNs and FCM close connections they no longer want (GOAWAY): the next push
// opens a new one instead of failing on the old.
TEST_F(PushClientTest, ConnectionClosedByTheProviderIsReopened) {
  script(R"({"goaway_after": 1})");
  PushClient &c = client();
  std::vector<PushResult> results;
  for (int i = 0; i < 3; ++i) {
    c.send(request("apns", kVoipToken, "TEAMID1234.org.example.door.voip"),
           [&](const PushResult &r) { results.push_back(r); });
    ASSERT_TRUE(run_until([&] { return results.size() == static_cast<size_t>(i + 1); }));
    run_until([&] { return received("goaway").size() == static_cast<size_t>(i + 1); }, 2s);
  }
  for (const auto &r : results) EXPECT_EQ(r.outcome, PushOutcome::Delivered) << r.reason;
  EXPECT_EQ(received("connection").size(), 3u);
  EXPECT_EQ(received("apns").size(), 3u);
}

// The provider token is renewed when its lifetime is over (50 minutes in
// production, inside Apple's 20-60 minute window; 1 s here).
TEST_F(PushClientTest, ApnsProviderTokenIsRenewedAfterItsLifetime) {
  PushSettings s = settings();
  s.apns_token_lifetime = std::chrono::seconds(1);
  client_ = std::make_unique<PushClient>(root_, s);
  std::vector<PushResult> results;
  auto push = [&] {
    client_->send(request("apns", kVoipToken, "TEAMID1234.org.example.door.voip"),
                  [&](const PushResult &r) { results.push_back(r); });
  };
  push();
  push();
  ASSERT_TRUE(run_until([&] { return results.size() == 2; }));
  run_for(1200ms);
  push();
  ASSERT_TRUE(run_until([&] { return results.size() == 3; }));
  for (const auto &r : results) EXPECT_EQ(r.outcome, PushOutcome::Delivered) << r.reason;
  const auto pushes = received("apns");
  ASSERT_EQ(pushes.size(), 3u);
  EXPECT_EQ(pushes[0].string_or("jwt_id"), pushes[1].string_or("jwt_id"));
  EXPECT_NE(pushes[1].string_or("jwt_id"), pushes[2].string_or("jwt_id"));
  EXPECT_GT(number(pushes[2], "jwt_iat"), number(pushes[0], "jwt_iat"));
  EXPECT_EQ(client_->apns().jwts_made(), 2u);
}

// 429 without Retry-After: retried after retransmission-interval (1 s), then
// twice that, and delivered on the third attempt.
TEST_F(PushClientTest, TooManyRequestsIsRetriedWithBackoff) {
  script_replies(
      kVoipToken,
      R"([{"status": 429, "reason": "TooManyRequests"}, {"status": 429, "reason": "TooManyRequests"}, {"status": 200}])");
  PushClient &c = client();
  const auto start = Clock::now();
  const auto result =
      outcome_of(c, request("apns", kVoipToken, "TEAMID1234.org.example.door.voip"));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->outcome, PushOutcome::Delivered) << result->reason;
  EXPECT_EQ(result->attempts, 3);
  EXPECT_EQ(received("apns").size(), 3u);
  // 1 s, then 2 s (a lower bound: the retries cannot come earlier).
  EXPECT_GE(Clock::now() - start, 3s);
}

// "Sending notification requests to APNs": a VoIP push has push type voip,
// priority 10, topic BUNDLE.voip and an expiration.
TEST_F(PushClientTest, ApnsVoipPushHeadersAndPayload) {
  PushClient &c = client();
  bool done = false;
  PushRequest r = request("apns", kVoipToken, "TEAMID1234.org.example.door.voip", 30s);
  const long long now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
  c.send(r, [&](const PushResult &) { done = true; });
  ASSERT_TRUE(run_until([&] { return done; }));
  const auto pushes = received("apns");
  ASSERT_EQ(pushes.size(), 1u);
  const json::Value *h = pushes[0].get("headers");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->string_or("apns-push-type"), "voip");
  EXPECT_EQ(h->string_or("apns-topic"), "org.example.door.voip");
  EXPECT_EQ(h->string_or("apns-priority"), "10");
  const long long expiration = std::stoll(h->string_or("apns-expiration", "0"));
  EXPECT_GT(expiration, now);
  EXPECT_LE(expiration, now + 31);
  EXPECT_EQ(pushes[0].string_or("device"), kVoipToken);
  const json::Value *payload = pushes[0].get("payload");
  ASSERT_TRUE(payload);
  EXPECT_EQ(payload->string_or("call-id"), r.call_id);
  EXPECT_EQ(payload->string_or("kind"), "call");
}

// An app without a VoIP token gets an alert push on its remote token.
TEST_F(PushClientTest, ApnsAlertPushForAnAppWithoutVoipToken) {
  PushClient &c = client();
  bool done = false;
  PushRequest r = request("apns", kRemoteToken, "TEAMID1234.org.example.door.remote");
  r.kind = PushKind::Missed;
  c.send(r, [&](const PushResult &) { done = true; });
  ASSERT_TRUE(run_until([&] { return done; }));
  const auto pushes = received("apns");
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_FALSE(pushes[0].get("error")) << pushes[0].string_or("error");
  EXPECT_EQ(pushes[0].get("headers")->string_or("apns-push-type"), "alert");
  EXPECT_EQ(pushes[0].get("headers")->string_or("apns-topic"), "org.example.door");
  EXPECT_EQ(pushes[0].string_or("device"), kRemoteToken);
  const json::Value *aps = pushes[0].get("payload")->get("aps");
  ASSERT_TRUE(aps && aps->get("alert"));
  EXPECT_EQ(pushes[0].get("payload")->string_or("kind"), "missed");
}

// An app with both tokens (pn-prid "T1:voip&T2:remote": Flexisip's
// extension of RFC 8599 §10, which has one token) is woken for a call by VoIP.
TEST_F(PushClientTest, ApnsPicksTheVoipTokenOfAnAppWithBoth) {
  PushClient &c = client();
  bool done = false;
  c.send(request("apns", std::string(kVoipToken) + ":voip&" + kRemoteToken + ":remote",
                 "TEAMID1234.org.example.door.voip&remote"),
         [&](const PushResult &) { done = true; });
  tokens_.push_back(kVoipToken);
  tokens_.push_back(kRemoteToken);
  ASSERT_TRUE(run_until([&] { return done; }));
  const auto pushes = received("apns");
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].string_or("device"), kVoipToken);
  EXPECT_EQ(pushes[0].get("headers")->string_or("apns-push-type"), "voip");
}

// "Handling notification responses from APNs": 410 Unregistered and 400
// BadDeviceToken mean the token is no good; the binding's push parameters go.
TEST_F(PushClientTest, ApnsUnregisteredAndBadDeviceTokenAreInvalidTokens) {
  script(std::string(R"({"tokens": {")") + kVoipToken +
         R"(": [{"status": 410, "reason": "Unregistered"}], ")" + kRemoteToken +
         R"(": [{"status": 400, "reason": "BadDeviceToken"}]}})");
  PushClient &c = client();
  std::vector<PushResult> results;
  c.send(request("apns", kVoipToken, "TEAMID1234.org.example.door.voip"),
         [&](const PushResult &r) { results.push_back(r); });
  ASSERT_TRUE(run_until([&] { return results.size() == 1; }));
  c.send(request("apns", kRemoteToken, "TEAMID1234.org.example.door"),
         [&](const PushResult &r) { results.push_back(r); });
  ASSERT_TRUE(run_until([&] { return results.size() == 2; }));
  EXPECT_EQ(results[0].outcome, PushOutcome::InvalidToken);
  EXPECT_EQ(results[0].status, 410);
  EXPECT_NE(results[0].reason.find("Unregistered"), std::string::npos);
  EXPECT_EQ(results[1].outcome, PushOutcome::InvalidToken);
  EXPECT_EQ(results[1].status, 400);
  EXPECT_NE(results[1].reason.find("BadDeviceToken"), std::string::npos);
}

// Whatever a provider sends back, the client gives an outcome and goes on:
// a body that is not JSON, a reason that is not a word, a body past the client's 64 KiB.
TEST_F(PushClientTest, GarbageFromTheProviderGivesAnOutcomeNotACrash) {
  const std::string t1 = "aa01", t2 = "aa02", t3 = "aa03";
  script(R"({"tokens": {")" + t1 + R"(": [{"status": 400, "raw_body": "{\"reason\": [1,2"}],
              ")" +
         t2 + R"(": [{"status": 410, "raw_body": "\u0000\n<html>"}],
              ")" +
         t3 + R"(": [{"status": 200, "body_bytes": 100000}]}})");
  PushClient &c = client();
  std::map<std::string, PushResult> results;
  for (const auto &t : {t1, t2, t3})
    c.send(request("apns", t, "TEAMID1234.org.example.door.voip"),
           [&, t](const PushResult &r) { results[t] = r; });
  ASSERT_TRUE(run_until([&] { return results.size() == 3; }));
  EXPECT_EQ(results[t1].outcome, PushOutcome::Failed) << "a 400 without BadDeviceToken";
  EXPECT_EQ(results[t1].status, 400);
  EXPECT_EQ(results[t2].outcome, PushOutcome::InvalidToken) << "410 is enough";
  EXPECT_EQ(results[t3].outcome, PushOutcome::Failed) << "the body is refused past 64 KiB";
  // The client still works.
  bool done = false;
  PushResult last;
  c.send(request("apns", kVoipToken, "TEAMID1234.org.example.door.voip"),
         [&](const PushResult &r) { last = r, done = true; });
  ASSERT_TRUE(run_until([&] { return done; }));
  EXPECT_EQ(last.outcome, PushOutcome::Delivered) << last.reason;
}

// 503 with Retry-After: retried after the time asked, then delivered.
TEST_F(PushClientTest, ServiceUnavailableWithRetryAfterIsRetriedThenDelivered) {
  script_replies(
      kVoipToken,
      R"([{"status": 503, "reason": "ServiceUnavailable", "retry_after": 1}, {"status": 200}])");
  PushClient &c = client();
  const auto start = Clock::now();
  const auto result =
      outcome_of(c, request("apns", kVoipToken, "TEAMID1234.org.example.door.voip"));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->outcome, PushOutcome::Delivered) << result->reason;
  EXPECT_EQ(result->attempts, 2);
  const auto pushes = received("apns");
  ASSERT_EQ(pushes.size(), 2u);
  EXPECT_EQ(number(pushes[0], "status"), 503);
  EXPECT_EQ(number(pushes[1], "status"), 200);
  // Not before the Retry-After second (a lower bound: the order of events).
  EXPECT_GE(Clock::now() - start, 1s);
}

// 429 with a Retry-After beyond the deadline: no retry that could not arrive in time.
TEST_F(PushClientTest, TooManyRequestsPastTheDeadlineIsRetryLater) {
  script_replies(kFcmToken, R"([{"status": 429, "reason": "QUOTA_EXCEEDED", "retry_after": 30}])");
  PushClient &c = client();
  const auto result =
      outcome_of(c, request("fcm", kFcmToken, g_standin.info.string_or("project"), 5s));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->outcome, PushOutcome::RetryLater);
  EXPECT_EQ(result->status, 429);
  EXPECT_EQ(received("fcm").size(), 1u);
}

TEST_F(PushClientTest, ApnsSandboxTokensGoToTheDevEndpoint) {
  // Production points nowhere (a closed port): only the sandbox can deliver.
  PushClient &c = client({"apns-base-url = https://localhost:1"});
  const auto result =
      outcome_of(c, request("apns.dev", kVoipToken, "TEAMID1234.org.example.door.voip"));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->outcome, PushOutcome::Delivered) << result->reason;
  EXPECT_EQ(received("apns").size(), 1u);
}

// Certificate authentication: the client certificate instead of a JWT.
TEST_F(PushClientTest, ApnsCertificateAuthentication) {
  PushClient &c =
      client({"apns-certificate-file = " + g_standin.info.string_or("apns_certificate_file")});
  const auto result =
      outcome_of(c, request("apns", kVoipToken, "TEAMID1234.org.example.door.voip"));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->outcome, PushOutcome::Delivered) << result->reason;
  const auto pushes = received("apns");
  ASSERT_EQ(pushes.size(), 1u);
  EXPECT_EQ(pushes[0].string_or("auth"), "certificate");
  const auto connections = received("connection");
  ASSERT_EQ(connections.size(), 1u);
  EXPECT_TRUE(connections[0].get("client_cert") && connections[0].get("client_cert")->boolean);
}

// A client certificate APNs does not know ends in the TLS handshake: nothing
// is delivered.
TEST_F(PushClientTest, ApnsCertificateFromAnotherCaIsRefused) {
  PushClient &c =
      client({"apns-certificate-file = " + g_standin.info.string_or("untrusted_certificate_file")});
  const auto result =
      outcome_of(c, request("apns", kVoipToken, "TEAMID1234.org.example.door.voip"));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->outcome, PushOutcome::Failed);
  EXPECT_EQ(result->status, 0);
  EXPECT_TRUE(received("apns").empty());
}

TEST_F(PushClientTest, WebhookGetsTheDocumentedJson) {
  PushClient &c = client();
  PushResult result;
  bool done = false;
  PushRequest r = request("selfhosted", "opaque-device-id-42", "org.example.door");
  r.kind = PushKind::AnsweredElsewhere;
  c.send(r, [&](const PushResult &res) { result = res, done = true; });
  ASSERT_TRUE(run_until([&] { return done; }));
  EXPECT_EQ(result.outcome, PushOutcome::Delivered) << result.reason;
  const auto hooks = received("webhook");
  ASSERT_EQ(hooks.size(), 1u);
  const json::Value *body = hooks[0].get("body");
  ASSERT_TRUE(body);
  EXPECT_EQ(body->string_or("provider"), "selfhosted");
  EXPECT_EQ(body->string_or("prid"), "opaque-device-id-42");
  EXPECT_EQ(body->string_or("param"), "org.example.door");
  EXPECT_EQ(body->string_or("kind"), "answered-elsewhere");
  EXPECT_EQ(body->string_or("call_id"), r.call_id);
  EXPECT_EQ(body->string_or("caller_uri"), "sip:door@home.test");
  EXPECT_EQ(body->string_or("caller_display"), "Front door");
  EXPECT_GT(number(*body, "ttl"), 0);
}

// A provider that accepts the TCP connection and never answers (a listening
// socket nobody accepts on): the pushes fail at their deadline, the outage is
// logged once, and the root's other work goes on meanwhile.
TEST_F(PushClientTest, ProviderThatNeverAnswersFailsWithoutBlockingTheLoop) {
  const int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(s, reinterpret_cast<sockaddr *>(&a), sizeof a), 0);
  ASSERT_EQ(listen(s, 16), 0);
  socklen_t len = sizeof a;
  getsockname(s, reinterpret_cast<sockaddr *>(&a), &len);
  const std::string dead = "https://localhost:" + std::to_string(ntohs(a.sin_port));
  PushClient &c = client({"apns-base-url = " + dead});

  int ticks = 0;
  su_timer_t *t = su_timer_create(su_root_task(root_), 20);
  su_timer_set_for_ever(
      t, [](su_root_magic_t *, su_timer_t *, su_timer_arg_t *arg) { ++*static_cast<int *>(arg); },
      &ticks);
  std::vector<PushResult> results;
  for (int i = 0; i < 3; ++i)
    c.send(request("apns", kVoipToken, "TEAMID1234.org.example.door.voip", 1500ms),
           [&](const PushResult &r) { results.push_back(r); });
  ASSERT_TRUE(run_until([&] { return results.size() == 3; }));
  su_timer_destroy(t);
  close(s);
  for (const auto &r : results) {
    EXPECT_EQ(r.outcome, PushOutcome::Failed);
    EXPECT_EQ(r.status, 0);
  }
  // The 20 ms timer fired all along (about 75 times in 1.5 s; 10 is plenty).
  EXPECT_GE(ticks, 10);
  EXPECT_EQ(log_lines_with("unreachable"), 1u);
}

// The proxy stops with pushes on the wire and retries waiting: nothing is
// called back afterwards, no timer or socket of the client is left on the root.
TEST_F(PushClientTest, DestroyingTheClientWithPushesInFlightCallsNothingBack) {
  script(std::string(R"({"delay": 1.0, "tokens": {")") + kRemoteToken +
         R"(": [{"status": 503, "retry_after": 1}]}})");
  PushClient &c = client();
  int called = 0;
  for (int i = 0; i < 3; ++i)
    c.send(request("apns", kVoipToken, "TEAMID1234.org.example.door.voip"),
           [&](const PushResult &) { ++called; });
  c.send(request("apns", kRemoteToken, "TEAMID1234.org.example.door"),
         [&](const PushResult &) { ++called; });
  // Until the stand-in has them all (the 503 comes back after 1 s: a retry waits).
  ASSERT_TRUE(run_until([&] { return received("apns").size() == 4; }));
  run_for(1200ms);
  EXPECT_EQ(called, 3) << "the three answered; the fourth waits for its retry";
  EXPECT_EQ(c.pending(), 1u);
  // And one on the wire: the stand-in has it and holds its answer for 1 s.
  c.send(request("apns", kVoipToken, "TEAMID1234.org.example.door.voip"),
         [&](const PushResult &) { ++called; });
  ASSERT_TRUE(run_until([&] { return received("apns").size() == 5; }));
  EXPECT_EQ(c.pending(), 2u);
  client_.reset();
  run_for(1500ms);
  EXPECT_EQ(called, 3);
}

// Connection refused: failed at once, logged once for many pushes.
TEST_F(PushClientTest, RefusedConnectionFailsAndIsLoggedOnce) {
  PushClient &c = client({"apns-base-url = https://localhost:1"});
  std::vector<PushResult> results;
  for (int i = 0; i < 3; ++i)
    c.send(request("apns", kVoipToken, "TEAMID1234.org.example.door.voip"),
           [&](const PushResult &r) { results.push_back(r); });
  ASSERT_TRUE(run_until([&] { return results.size() == 3; }));
  for (const auto &r : results) EXPECT_EQ(r.outcome, PushOutcome::Failed);
  EXPECT_EQ(log_lines_with("unreachable"), 1u);
}

// A server whose certificate is not from a trusted CA gets nothing.
TEST_F(PushClientTest, UntrustedServerCertificateFails) {
  PushSettings s = settings();
  s.ca_file.clear();  // the system's CAs only: the stand-in's CA is not among them
  client_ = std::make_unique<PushClient>(root_, s);
  const auto result =
      outcome_of(*client_, request("apns", kVoipToken, "TEAMID1234.org.example.door.voip"));
  ASSERT_TRUE(result);
  EXPECT_EQ(result->outcome, PushOutcome::Failed);
  EXPECT_TRUE(received("apns").empty());
}

}  // namespace
}  // namespace portier::push
