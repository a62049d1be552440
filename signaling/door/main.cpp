// portier-door: the door station.
//   portier-door --config /etc/portier/door.conf
#include <glib.h>
#include <gst/gst.h>

#include <deque>
#include <functional>
#include <memory>

#include "common/cli.h"
#include "common/json.h"
#include "common/log.h"
#include "door/door.h"
#include "door/door_rtsp.h"
#include "door/door_services.h"
#include "portieraec/gstportieraec.h"
#include "portieraec/gstportieraecprobe.h"
#include "portiercamsrc/gstportiercamsrc.h"
#include "portierenc/gstportierenc.h"
#include "runtime/control_socket.h"
#include "runtime/daemon.h"
#include "runtime/logging.h"
#include "runtime/mainloop.h"

using namespace portier;

namespace {

// The last event lines, for `portierctl events` and the tests.
struct Events {
  std::deque<std::string> lines;
  void add(const std::string &kind, const std::string &details) {
    GDateTime *now = g_date_time_new_now_utc();
    gchar *wall = g_date_time_format_iso8601(now);
    g_date_time_unref(now);
    const long long mono_ms = g_get_monotonic_time() / 1000;
    // One line per milestone, wall clock and monotonic time (DESIGN: latencies
    // are measured across processes from these lines).
    PLOG_INFO("event=%s wall=%s mono_ms=%lld %s", kind.c_str(), wall, mono_ms, details.c_str());
    lines.push_back("{\"event\":" + json::quote(kind) + ",\"wall\":" + json::quote(wall) +
                    ",\"mono_ms\":" + std::to_string(mono_ms) +
                    ",\"details\":" + json::quote(details) + "}");
    g_free(wall);
    while (lines.size() > 200) lines.pop_front();
  }
  std::string json_array() const {
    std::string out = "[";
    for (const auto &l : lines) out += (out.size() > 1 ? "," : "") + l;
    return out + "]";
  }
};

}  // namespace

int main(int argc, char **argv) {
  config::Config cfg(door::door_schema());
  if (auto rc =
          cli::parse_and_load(argc, argv, "/etc/portier/door.conf", cfg, door::check_door_config))
    return *rc;
  door::DoorSettings settings = door::door_settings_from_config(cfg);
  log::init("portier-door", settings.log_output, settings.log_level);
  gst_init(nullptr, nullptr);
  // The plugin's elements are built in: no plugin path to get wrong.
  GST_ELEMENT_REGISTER(portiercamsrc, nullptr);
  GST_ELEMENT_REGISTER(portierenc, nullptr);
  GST_ELEMENT_REGISTER(portieraecprobe, nullptr);
  GST_ELEMENT_REGISTER(portieraec, nullptr);

  // Per-call GStreamer threads: two malloc arenas (mainloop.h).
  mainloop::limit_malloc_arenas();
  Daemon daemon;
  if (!daemon.init()) return 1;

  Events events;
  door::DoorServices services(
      settings, [&events](const std::string &k, const std::string &d) { events.add(k, d); });
  int rc = 0;
  {
    std::string error;
    if (!services.open(&error)) {
      PLOG_ERROR("%s", error.c_str());
      return 1;
    }
    door::Door door(settings, services.hooks());
    services.watch_button([&door] { door.press(); });
    services.on_alarm([&door](const std::string &text) { door.send_alarm(text); });
    daemon.on_stop([&door](std::function<void()> done) { door.stop(std::move(done)); });
    ControlSocket control;
    std::unique_ptr<door::DoorRtsp> rtsp;
    if (!door.start(daemon.root(), &error)) {
      PLOG_ERROR("%s", error.c_str());
      rc = 1;
    } else if (!settings.control_socket.empty() &&
               !control.open(
                   settings.control_socket,
                   [&](const std::string &cmd) -> std::string {
                     if (cmd == "ring") return "{\"result\":" + json::quote(door.press()) + "}";
                     if (cmd == "hangup") return "{\"result\":" + json::quote(door.hangup()) + "}";
                     if (cmd == "status") {
                       // {"aor":...} + {"actions_run":...}: one object
                       std::string a = door.status_json(), b = services.status_json();
                       return a.substr(0, a.size() - 1) + "," + b.substr(1);
                     }
                     if (cmd == "events") return events.json_array();
                     if (cmd == "ping") return "{\"pong\":true}";
                     return "{\"error\":" +
                            json::quote("unknown command (ring, hangup, status, events, ping)") +
                            "}";
                   },
                   &error)) {
      PLOG_ERROR("control socket %s: %s", settings.control_socket.c_str(), error.c_str());
      rc = 1;
    } else if (settings.rtsp.enabled &&
               !(rtsp = std::make_unique<door::DoorRtsp>(settings.rtsp, settings.media.video_codec,
                                                         door.camera()))
                    ->start(&error)) {
      PLOG_ERROR("%s", error.c_str());
      rc = 1;
    } else {
      daemon.run();
    }
  }
  return rc;
}
