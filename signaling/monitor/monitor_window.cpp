#include "monitor/monitor_window.h"

#include <gst/gst.h>

#include <cstdlib>

#include "common/json.h"
#include "common/log.h"

namespace portier::monitor {
namespace {

// Ringing must be seen from across the room: a red state line.
constexpr const char *kCss =
    ".call-line { font-size: 150%; font-weight: bold; padding: 8px; }\n"
    ".ringing { background-color: #c62828; color: #ffffff; }\n"
    ".answered { background-color: #2e7d32; color: #ffffff; }\n"
    ".video { background-color: #000000; color: #9e9e9e; }\n";

void set_class(GtkWidget *w, const char *name, bool on) {
  GtkStyleContext *sc = gtk_widget_get_style_context(w);
  if (on)
    gtk_style_context_add_class(sc, name);
  else
    gtk_style_context_remove_class(sc, name);
}

GtkWidget *button(const char *label, const char *name) {
  GtkWidget *b = gtk_button_new_with_mnemonic(label);
  gtk_widget_set_name(b, name);
  return b;
}

}  // namespace

bool MonitorWindow::init(std::string *why) {
  const char *x11 = std::getenv("DISPLAY"), *wayland = std::getenv("WAYLAND_DISPLAY");
  if ((!x11 || !*x11) && (!wayland || !*wayland)) {
    *why = "no display (neither DISPLAY nor WAYLAND_DISPLAY is set)";
    return false;
  }
  if (!gtk_init_check(nullptr, nullptr)) {
    *why = std::string("GTK cannot open the display ") + (x11 && *x11 ? x11 : wayland);
    return false;
  }
  GstElementFactory *f = gst_element_factory_find("gtksink");
  if (!f) {
    *why = "no gtksink element (Debian: gstreamer1.0-gtk3)";
    return false;
  }
  gst_object_unref(f);
  return true;
}

MonitorWindow::MonitorWindow(Monitor &monitor, std::function<void()> on_close)
    : monitor_(monitor), on_close_(std::move(on_close)) {
  GtkCssProvider *css = gtk_css_provider_new();
  gtk_css_provider_load_from_data(css, kCss, -1, nullptr);
  gtk_style_context_add_provider_for_screen(gdk_screen_get_default(), GTK_STYLE_PROVIDER(css),
                                            GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
  g_object_unref(css);

  window_ = gtk_window_new(GTK_WINDOW_TOPLEVEL);
  gtk_window_set_default_size(GTK_WINDOW(window_), 640, 520);
  g_signal_connect(window_, "delete-event", G_CALLBACK(on_delete), this);

  GtkWidget *outer = gtk_box_new(GTK_ORIENTATION_VERTICAL, 6);
  gtk_container_set_border_width(GTK_CONTAINER(outer), 6);
  gtk_container_add(GTK_CONTAINER(window_), outer);

  call_label_ = gtk_label_new("");
  gtk_label_set_xalign(GTK_LABEL(call_label_), 0);
  gtk_label_set_ellipsize(GTK_LABEL(call_label_), PANGO_ELLIPSIZE_END);
  set_class(call_label_, "call-line", true);
  gtk_box_pack_start(GTK_BOX(outer), call_label_, FALSE, FALSE, 0);

  // The video, and the doors beside it.
  GtkWidget *middle = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_box_pack_start(GTK_BOX(outer), middle, TRUE, TRUE, 0);
  video_box_ = gtk_box_new(GTK_ORIENTATION_VERTICAL, 0);
  gtk_widget_set_size_request(video_box_, 320, 240);
  gtk_box_pack_start(GTK_BOX(middle), video_box_, TRUE, TRUE, 0);
  video_ = gtk_label_new("No video");
  set_class(video_, "video", true);
  gtk_box_pack_start(GTK_BOX(video_box_), video_, TRUE, TRUE, 0);

  GtkWidget *doors_frame = gtk_frame_new("Doors");
  gtk_box_pack_start(GTK_BOX(middle), doors_frame, FALSE, FALSE, 0);
  doors_ = gtk_list_box_new();
  gtk_list_box_set_activate_on_single_click(GTK_LIST_BOX(doors_), TRUE);
  gtk_list_box_set_selection_mode(GTK_LIST_BOX(doors_), GTK_SELECTION_NONE);
  gtk_container_add(GTK_CONTAINER(doors_frame), doors_);
  for (const auto &d : monitor_.doors()) {
    GtkWidget *label = gtk_label_new(nullptr);
    gchar *markup =
        g_markup_printf_escaped("<b>%s</b>\n<small>%s</small>", d.name.c_str(), d.aor.c_str());
    gtk_label_set_markup(GTK_LABEL(label), markup);
    g_free(markup);
    gtk_label_set_xalign(GTK_LABEL(label), 0);
    gtk_widget_set_margin_start(label, 8);
    gtk_widget_set_margin_end(label, 8);
    gtk_widget_set_margin_top(label, 6);
    gtk_widget_set_margin_bottom(label, 6);
    GtkWidget *row = gtk_list_box_row_new();
    gtk_container_add(GTK_CONTAINER(row), label);
    gtk_list_box_insert(GTK_LIST_BOX(doors_), row, -1);
    door_rows_.push_back({d.name, row});
  }
  g_signal_connect(doors_, "row-activated", G_CALLBACK(on_door_activated), this);

  GtkWidget *buttons = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 6);
  gtk_box_set_homogeneous(GTK_BOX(buttons), TRUE);
  gtk_box_pack_start(GTK_BOX(outer), buttons, FALSE, FALSE, 0);
  answer_ = button("_Answer", "answer");
  open_door_ = button("_Open door", "open-door");
  light_ = button("_Light", "light");
  mic_ = gtk_toggle_button_new_with_mnemonic("_Mic");
  gtk_widget_set_name(mic_, "mic");
  hangup_ = button("_Hang up", "hangup");
  for (GtkWidget *b : {answer_, open_door_, light_, mic_, hangup_}) {
    gtk_widget_set_size_request(b, -1, 48);
    gtk_box_pack_start(GTK_BOX(buttons), b, TRUE, TRUE, 0);
    if (b != mic_) g_signal_connect(b, "clicked", G_CALLBACK(on_clicked), this);
  }
  mic_handler_ = g_signal_connect(mic_, "toggled", G_CALLBACK(on_mic_toggled), this);

  registration_label_ = gtk_label_new("");
  gtk_label_set_xalign(GTK_LABEL(registration_label_), 0);
  notice_label_ = gtk_label_new("");
  gtk_label_set_xalign(GTK_LABEL(notice_label_), 0);
  gtk_label_set_ellipsize(GTK_LABEL(notice_label_), PANGO_ELLIPSIZE_END);
  GtkWidget *status = gtk_box_new(GTK_ORIENTATION_HORIZONTAL, 12);
  gtk_box_pack_start(GTK_BOX(status), registration_label_, FALSE, FALSE, 0);
  gtk_box_pack_end(GTK_BOX(status), notice_label_, FALSE, FALSE, 0);
  gtk_box_pack_start(GTK_BOX(outer), status, FALSE, FALSE, 0);

  monitor_.set_display_sink([this] { return make_display_sink(); });
  monitor_.set_on_change([this] { schedule_refresh(); });
  refresh();
  gtk_widget_show_all(window_);
}

MonitorWindow::~MonitorWindow() {
  monitor_.set_on_change(nullptr);
  monitor_.set_display_sink(nullptr);
  if (refresh_idle_) g_source_remove(refresh_idle_);
  gtk_widget_destroy(window_);
}

// Each call's pipeline gets a new gtksink; its widget takes the video's place
// in the window (the last call's stays until then).
GstElement *MonitorWindow::make_display_sink() {
  GstElement *sink = gst_element_factory_make("gtksink", nullptr);
  if (!sink) {
    PLOG_WARN("window: cannot make gtksink: the video is not shown");
    return nullptr;
  }
  // Shown as soon as decoded: the jitter buffer has already paced the frames,
  // and a door's picture is better early than smooth.
  g_object_set(sink, "sync", FALSE, nullptr);
  GtkWidget *widget = nullptr;
  g_object_get(sink, "widget", &widget, nullptr);
  gtk_container_remove(GTK_CONTAINER(video_box_), video_);
  video_ = widget;
  gtk_box_pack_start(GTK_BOX(video_box_), video_, TRUE, TRUE, 0);
  gtk_widget_show(video_);
  g_object_unref(widget);  // the box holds it now
  return sink;
}

void MonitorWindow::schedule_refresh() {
  if (refresh_idle_) return;
  refresh_idle_ = g_idle_add(
      [](gpointer data) -> gboolean {
        auto *self = static_cast<MonitorWindow *>(data);
        self->refresh_idle_ = 0;
        self->refresh();
        return G_SOURCE_REMOVE;
      },
      this);
}

void MonitorWindow::refresh() {
  const MonitorView v = monitor_.view();
  const Controls c = controls_for(v);
  gtk_window_set_title(GTK_WINDOW(window_), window_title(v).c_str());
  gtk_label_set_text(GTK_LABEL(call_label_), call_line(v).c_str());
  set_class(call_label_, "ringing", is_ringing(v));
  set_class(call_label_, "answered", v.state == CallState::Answered);
  gtk_label_set_text(GTK_LABEL(registration_label_), registration_line(v).c_str());
  gtk_widget_set_sensitive(answer_, c.answer);
  gtk_widget_set_sensitive(open_door_, c.open_door);
  gtk_widget_set_sensitive(light_, c.light);
  gtk_widget_set_sensitive(mic_, c.mic);
  gtk_widget_set_sensitive(hangup_, c.hangup);
  gtk_widget_set_sensitive(doors_, c.doors);
  g_signal_handler_block(mic_, mic_handler_);
  gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(mic_), v.mic_on);
  g_signal_handler_unblock(mic_, mic_handler_);
  gtk_button_set_label(GTK_BUTTON(mic_), v.mic_on ? "_Mic on" : "_Mic off");
  if (is_ringing(v) && !was_ringing_) gtk_window_present(GTK_WINDOW(window_));
  was_ringing_ = is_ringing(v);
}

void MonitorWindow::report(const Outcome &o) {
  if (!o.ok) PLOG_INFO("window: %s", o.text.c_str());
  gtk_label_set_text(GTK_LABEL(notice_label_), o.text.c_str());
  schedule_refresh();
}

void MonitorWindow::on_clicked(GtkButton *b, gpointer data) {
  auto *self = static_cast<MonitorWindow *>(data);
  GtkWidget *w = GTK_WIDGET(b);
  if (w == self->answer_) self->report(self->monitor_.answer());
  if (w == self->open_door_) self->report(self->monitor_.action("open-door"));
  if (w == self->light_) self->report(self->monitor_.action("light"));
  if (w == self->hangup_) self->report(self->monitor_.hangup());
}

void MonitorWindow::on_mic_toggled(GtkToggleButton *b, gpointer data) {
  auto *self = static_cast<MonitorWindow *>(data);
  self->report(self->monitor_.set_mic(gtk_toggle_button_get_active(b)));
}

void MonitorWindow::on_door_activated(GtkListBox *, GtkListBoxRow *row, gpointer data) {
  auto *self = static_cast<MonitorWindow *>(data);
  for (const DoorRow &d : self->door_rows_)
    if (d.row == GTK_WIDGET(row)) self->report(self->monitor_.call(d.name));
}

gboolean MonitorWindow::on_delete(GtkWidget *, GdkEvent *, gpointer data) {
  auto *self = static_cast<MonitorWindow *>(data);
  PLOG_INFO("window closed");
  if (self->on_close_) self->on_close_();
  return TRUE;  // the window goes with the program, once the monitor has stopped
}

void MonitorWindow::write_rect(json::Writer &w, GtkWidget *widget) const {
  int x = 0, y = 0, ox = 0, oy = 0;
  GdkWindow *top = gtk_widget_get_window(window_);
  if (top && gtk_widget_get_mapped(widget)) {
    gdk_window_get_origin(top, &ox, &oy);
    gtk_widget_translate_coordinates(widget, window_, 0, 0, &x, &y);
  }
  w.field("x", ox + x)
      .field("y", oy + y)
      .field("w", gtk_widget_get_allocated_width(widget))
      .field("h", gtk_widget_get_allocated_height(widget));
}

std::string MonitorWindow::json() const {
  json::Writer w;
  auto control = [&](const char *name, GtkWidget *widget) {
    w.key(name).begin_object().field("sensitive", gtk_widget_is_sensitive(widget) != FALSE);
    write_rect(w, widget);
    w.end_object();
  };
  auto label = [](GtkWidget *widget) { return gtk_label_get_text(GTK_LABEL(widget)); };
  const MonitorView v = monitor_.view();
  w.begin_object()
      .field("title", gtk_window_get_title(GTK_WINDOW(window_)))
      .field("mapped", gtk_widget_get_mapped(window_) != FALSE)
      .key("window")
      .begin_object();
  write_rect(w, window_);
  w.end_object()
      .field("call_line", label(call_label_))
      .field("registration_line", label(registration_label_))
      .field("notice", label(notice_label_))
      .field("ringing", is_ringing(v))
      .field("mic_active", gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(mic_)) != FALSE)
      .key("video")
      .begin_object()
      .field("sink", !GTK_IS_LABEL(video_));
  write_rect(w, video_);
  w.end_object().key("controls").begin_object();
  control("answer", answer_);
  control("open-door", open_door_);
  control("light", light_);
  control("mic", mic_);
  control("hangup", hangup_);
  w.end_object().key("doors").begin_array();
  for (const auto &row : door_rows_) {
    w.begin_object()
        .field("name", row.name)
        .field("sensitive", gtk_widget_is_sensitive(row.row) != FALSE);
    write_rect(w, row.row);
    w.end_object();
  }
  return w.end_array().end_object().take();
}

}  // namespace portier::monitor
