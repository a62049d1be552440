// portier-monitor's window face ([ui] mode = window): one GTK 3 window on the
// same Monitor core as the control socket, so there is no second call logic.
// It shows the door's video in a gtksink widget (the call pipeline's display
// branch, see MonitorMedia), the caller / state line and the registration,
// the buttons Answer, Open door, Light, Mic (a toggle) and Hang up, each
// sensitive only when it can do something (monitor_view.h decides), and the
// doors list: choosing a door calls it and shows its camera.
//
// GTK runs on GLib's default main context, which sofia-sip and GStreamer's
// bus watches already share (runtime/mainloop.h): gtk_init_check() and the
// program's GMainLoop, no gtk_main(). The core tells the window that
// something changed; the window redraws from Monitor::view() once per idle.
#pragma once

#include <gtk/gtk.h>

#include <functional>
#include <string>
#include <vector>

#include "common/json.h"
#include "monitor/monitor.h"

namespace portier::monitor {

class MonitorWindow {
 public:
  // Whether a window can be shown: a display is named (DISPLAY or
  // WAYLAND_DISPLAY), GTK opens it, and gtksink is installed. Initializes GTK
  // when it says yes; otherwise *why says what is missing.
  static bool init(std::string *why);

  // Hooks itself into `monitor` (change notices, the display sink) and shows
  // the window. `on_close` runs when the user closes it.
  MonitorWindow(Monitor &monitor, std::function<void()> on_close);
  ~MonitorWindow();
  MonitorWindow(const MonitorWindow &) = delete;
  MonitorWindow &operator=(const MonitorWindow &) = delete;

  // What the window shows, for the control socket's `window` command (tests,
  // scripts): title, lines, each control's sensitivity and its rectangle in
  // root-window coordinates, and the video's rectangle.
  std::string json() const;

 private:
  struct DoorRow {
    std::string name;
    GtkWidget *row = nullptr;
  };
  GstElement *make_display_sink();
  void schedule_refresh();
  void refresh();
  void report(const Outcome &o);
  // A widget's x, y (on the screen), w and h, into an open object.
  void write_rect(json::Writer &w, GtkWidget *widget) const;
  static void on_clicked(GtkButton *button, gpointer self);
  static void on_mic_toggled(GtkToggleButton *button, gpointer self);
  static void on_door_activated(GtkListBox *, GtkListBoxRow *row, gpointer self);
  static gboolean on_delete(GtkWidget *, GdkEvent *, gpointer self);

  Monitor &monitor_;
  std::function<void()> on_close_;
  guint refresh_idle_ = 0;
  gulong mic_handler_ = 0;
  bool was_ringing_ = false;  // raised once when a call starts ringing

  GtkWidget *window_ = nullptr;
  GtkWidget *call_label_ = nullptr, *registration_label_ = nullptr, *notice_label_ = nullptr;
  GtkWidget *video_box_ = nullptr,
            *video_ = nullptr;  // video_: the gtksink widget or a placeholder
  GtkWidget *answer_ = nullptr, *open_door_ = nullptr, *light_ = nullptr, *mic_ = nullptr,
            *hangup_ = nullptr;
  GtkWidget *doors_ = nullptr;
  std::vector<DoorRow> door_rows_;
};

}  // namespace portier::monitor
