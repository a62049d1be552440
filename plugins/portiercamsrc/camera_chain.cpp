#include "camera_chain.h"

namespace portier::camera {

namespace {

// Where Debian ships each element, for the error a missing one gives.
const char *package_of(const char *factory) {
  static const struct {
    const char *factory, *package;
  } packages[] = {
      {"v4l2src", "gstreamer1.0-plugins-good"},
      {"jpegdec", "gstreamer1.0-plugins-good"},
      {"clockoverlay", "gstreamer1.0-x"},
  };
  for (const auto &p : packages)
    if (g_str_equal(p.factory, factory)) return p.package;
  return "gstreamer1.0-plugins-base";
}

GstElement *capsfilter(const char *name, const std::string &caps_string, std::string *missing) {
  GstElement *filter = make_element("capsfilter", name, missing);
  if (filter) {
    GstCaps *caps = gst_caps_from_string(caps_string.c_str());
    g_object_set(filter, "caps", caps, nullptr);
    gst_caps_unref(caps);
  }
  return filter;
}

}  // namespace

GstElement *make_element(const char *factory, const char *name, std::string *missing) {
  GstElement *e = gst_element_factory_make(factory, name);
  if (!e && missing->empty()) *missing = std::string(factory) + " (" + package_of(factory) + ")";
  return e;
}

void camera_head(std::vector<GstElement *> &chain, GstElement *camera,
                 const std::optional<Choice> &mode, std::string *missing) {
  chain.push_back(camera);
  chain.push_back(capsfilter("camera-caps", mode ? source_caps(*mode) : "video/x-raw", missing));
  if (mode && format_info(mode->mode.fourcc).kind == FormatKind::Jpeg)
    chain.push_back(make_element("jpegdec", "decoder", missing));
}

std::string output_caps(const Request &r, const char *format) {
  return std::string("video/x-raw,format=") + format + ",width=" + std::to_string(r.width) +
         ",height=" + std::to_string(r.height) + ",framerate=" + std::to_string(r.rate.num) + "/" +
         std::to_string(r.rate.den) + ",pixel-aspect-ratio=1/1";
}

void output_tail(std::vector<GstElement *> &chain, const Request &request, const char *format,
                 std::string *missing) {
  // videorate first: the frames a faster camera gives too many are dropped
  // before they cost a scale and a conversion. skip-to-first: a live source
  // starts at the running time it was started at, and videorate would
  // otherwise fill the time before with copies of the first frame.
  GstElement *rate = make_element("videorate", "rate", missing);
  if (rate) g_object_set(rate, "skip-to-first", TRUE, nullptr);
  chain.push_back(rate);
  // Square pixels in the output caps make videoscale keep the picture's
  // shape (with borders) when the camera's aspect differs from the request.
  chain.push_back(make_element("videoscale", "scale", missing));
  chain.push_back(make_element("videoconvert", "convert", missing));
  chain.push_back(capsfilter("output-caps", output_caps(request, format), missing));
}

bool add_and_link(GstBin *bin, const std::vector<GstElement *> &chain, std::string *error) {
  for (GstElement *e : chain) gst_bin_add(bin, e);
  for (size_t i = 1; i < chain.size(); ++i)
    if (!gst_element_link(chain[i - 1], chain[i])) {
      *error = std::string("cannot link ") + GST_ELEMENT_NAME(chain[i - 1]) + " to " +
               GST_ELEMENT_NAME(chain[i]);
      return false;
    }
  return true;
}

void release(std::vector<GstElement *> &chain) {
  for (GstElement *e : chain)
    if (e) gst_object_unref(gst_object_ref_sink(e));
  chain.clear();
}

}  // namespace portier::camera
