// Small GStreamer helpers shared by the programs that run pipelines (the
// proxy's relay, the door). Header-only: portier_common does not link GStreamer.
#pragma once

#include <gst/gst.h>

#include <string>

namespace portier {

// Whether an element factory is installed (or registered by the program).
inline bool have_element(const char *factory) {
  GstElementFactory *f = gst_element_factory_find(factory);
  if (f) gst_object_unref(f);
  return f != nullptr;
}

// gst_parse_launch() with its error as one line: nullptr and *error
// ("WHAT: reason") when the description does not build.
inline GstElement *parse_pipeline(const std::string &description, const char *what,
                                  std::string *error) {
  GError *gerr = nullptr;
  GstElement *p = gst_parse_launch(description.c_str(), &gerr);
  if (p && !gerr) return p;
  *error = std::string(what) + ": " + (gerr ? gerr->message : "cannot build");
  g_clear_error(&gerr);
  if (p) gst_object_unref(p);
  return nullptr;
}

// An error or warning on a pipeline's bus as "ELEMENT: message" for one log
// line; "" for every other message.
inline std::string bus_problem(GstMessage *msg) {
  const GstMessageType type = GST_MESSAGE_TYPE(msg);
  if (type != GST_MESSAGE_ERROR && type != GST_MESSAGE_WARNING) return "";
  GError *err = nullptr;
  gchar *dbg = nullptr;
  if (type == GST_MESSAGE_ERROR)
    gst_message_parse_error(msg, &err, &dbg);
  else
    gst_message_parse_warning(msg, &err, &dbg);
  std::string out = std::string(GST_OBJECT_NAME(msg->src)) + ": " + (err ? err->message : "?");
  g_clear_error(&err);
  g_free(dbg);
  return out;
}

}  // namespace portier
