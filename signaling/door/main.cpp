// portier-door: the door station.
//   portier-door --config /etc/portier/door.conf
#include <glib.h>
#include <gst/gst.h>

#include <functional>
#include <memory>

#include "common/account_config.h"
#include "common/cli.h"
#include "common/control_table.h"
#include "common/event_writer.h"
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

int main(int argc, char **argv) {
  config::Config cfg(door::door_schema());
  if (auto rc = cli::parse_and_load(argc, argv, "/etc/portier/door.conf", cfg,
                                    door::check_door_config, device_security_warning))
    return *rc;
  door::DoorSettings settings = door::door_settings_from_config(cfg);
  log::init("portier-door", settings.log_output, settings.log_level);
  // Before any thread that might read the environment.
  if (settings.rtsp.enabled && settings.rtsp.tls()) door::DoorRtsp::set_tls_floor();
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

  events::Writer events;
  door::DoorServices services(settings, [&events](const std::string &k, const std::string &d) {
    events.add(k, {events::field("details", d)});
  });
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
    daemon.on_reload([&door] { return door.reload_tls(); });
    const control::Table commands({
        {"ring", "", "press the button: call the home",
         [&](const std::string &) { return control::result(door.press()); }},
        {"hangup", "", "end the call",
         [&](const std::string &) { return control::result(door.hangup()); }},
        {"status", "", "registration, call, camera, media and action counts",
         [&](const std::string &) {
           json::Writer w;
           w.begin_object();
           door.write_status(w);
           services.write_status(w);
           return w.end_object().take();
         }},
        {"events", "", "the last event lines (ring, answered, action, ended, ...)",
         [&](const std::string &) { return events.json_array(); }},
        control::reload_command([&daemon] { return daemon.reload(); }),
    });
    ControlSocket control;
    std::unique_ptr<door::DoorRtsp> rtsp;
    if (!door.start(daemon.root(), &error)) {
      PLOG_ERROR("%s", error.c_str());
      rc = 1;
    } else if (!settings.control_socket.empty() &&
               !control.open(
                   daemon.root(), settings.control_socket,
                   [&](const std::string &line) { return commands.dispatch(line); }, &error)) {
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
