// Pushes per second over one HTTP/2 connection: the push client (the proxy's
// code, on a sofia-sip root) sends N APNs VoIP pushes, at most W in flight, to
// the stand-in of tests/push/push_standin.py, and prints the rate. run.sh
// starts the stand-in and counts its connections.
//
//   portier_push_bench STANDIN_DIR [N=1000] [W=100] [PROVIDER=apns|fcm]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "common/config.h"
#include "common/log.h"
#include "push/json_value.h"
#include "push/push_client.h"
#include "push/push_config.h"
#include "runtime/mainloop.h"

using namespace portier;
using Clock = std::chrono::steady_clock;

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s STANDIN_DIR [N] [W] [apns|fcm]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int n = argc > 2 ? std::atoi(argv[2]) : 1000;
  const int window = argc > 3 ? std::atoi(argv[3]) : 100;
  const std::string provider = argc > 4 ? argv[4] : "apns";
  std::ifstream f(dir + "/standin.json");
  std::stringstream ss;
  ss << f.rdbuf();
  push::json::Value info;
  std::string error;
  if (!push::json::parse(ss.str(), &info, &error)) {
    std::fprintf(stderr, "%s/standin.json: %s\n", dir.c_str(), error.c_str());
    return 2;
  }
  const std::string url =
      "https://localhost:" + std::to_string(static_cast<int>(info.get("port")->number));
  config::Schema schema("push-bench");
  push::add_push_schema(schema);
  config::Config cfg(schema);
  const std::string text =
      "[module::PushNotification]\nenabled = true\n"
      "firebase-service-accounts = " +
      info.string_or("project") + ":" + info.string_or("service_account") +
      "\nfirebase-base-url = " + url + "\napns-base-url = " + url +
      "\nca-file = " + info.string_or("ca_file") +
      "\napns-key-file = " + info.string_or("apns_key_file") +
      "\napns-key-id = " + info.string_or("apns_key_id") +
      "\napns-team-id = " + info.string_or("apns_team_id") + "\n";
  push::PushSettings settings;
  if (!cfg.load_string(text, "bench", &error) ||
      !(error = push::load_push_settings(cfg, &settings)).empty()) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  log::configure("push-bench", log::Output::Stderr, log::Level::Warning);
  su_root_t *root = mainloop::native_sofia_root();
  int sent = 0, done = 0, delivered = 0;
  {
    push::PushClient client(root, settings);
    push::PushRequest r;
    r.provider = provider;
    r.prid = provider == "fcm" ? "bench-fcm-token" : std::string(64, 'a');
    r.param = provider == "fcm" ? info.string_or("project") : "TEAMID1234.org.example.door.voip";
    r.caller_uri = "sip:door@home.test";
    r.caller_display = "Front door";
    auto send_more = [&](auto &self) -> void {
      while (sent < n && sent - done < window) {
        r.call_id = "bench-" + std::to_string(sent++);
        r.deadline = Clock::now() + std::chrono::seconds(30);
        client.send(r, [&](const push::PushResult &res) {
          ++done;
          delivered += res.outcome == push::PushOutcome::Delivered;
          self(self);
        });
      }
    };
    // The first push opens the connection (and, for FCM, fetches the token):
    // it is not counted.
    r.call_id = "bench-warmup";
    r.deadline = Clock::now() + std::chrono::seconds(30);
    bool warmed = false;
    client.send(r, [&](const push::PushResult &) { warmed = true; });
    const auto limit = Clock::now() + std::chrono::seconds(120);
    while (!warmed && Clock::now() < limit) su_root_step(root, 50);
    const auto start = Clock::now();
    send_more(send_more);
    while (done < n && Clock::now() < limit) su_root_step(root, 50);
    const double secs = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf(
        "provider=%s pushes=%d delivered=%d window=%d seconds=%.3f pushes_per_second=%.0f\n",
        provider.c_str(), done, delivered, window, secs, done / secs);
  }
  su_root_destroy(root);
  return delivered == n ? 0 : 1;
}
