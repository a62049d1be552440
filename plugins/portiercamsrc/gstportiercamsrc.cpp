/**
 * SECTION:element-portiercamsrc
 * @title: portiercamsrc
 * @short_description: the door's camera as one fixed raw format, or a test pattern
 *
 * portiercamsrc is the door station's video source. It wraps v4l2src for the
 * camera given by #GstPortierCamSrc:device, or the first camera found in
 * /dev/video* when that is empty, and always gives the same raw video (I420
 * or NV12 at #GstPortierCamSrc:width x #GstPortierCamSrc:height and
 * #GstPortierCamSrc:framerate), whatever the camera gives, so the encoder
 * after it sees one stable format:
 *
 * |[
 * v4l2src ! <camera mode> ! (jpegdec) ! videorate ! videoscale ! videoconvert ! <output caps>
 * ]|
 *
 * The camera mode is chosen from the modes the driver lists: one that
 * reaches the frame rate first, then the exact size (else the nearest bigger,
 * else the biggest smaller), then raw planar YUV before packed YUV, RGB and
 * MJPEG, which is decoded with jpegdec. videorate comes first so the frames a
 * faster camera gives too many are dropped before they cost a conversion;
 * videoscale keeps the picture's shape (pixel-aspect-ratio 1/1, with borders).
 *
 * When there is no camera and #GstPortierCamSrc:fallback is %TRUE (the
 * default), the same output comes from a moving test pattern (videotestsrc
 * pattern=ball) with the wall-clock time and "portier: no camera" written on
 * it, so a monitor shows at once that the door has no camera, and that the
 * stream is alive. One line says so in the log (a g_message() and a warning
 * in the element's debug category), and #GstPortierCamSrc:active-source reads
 * "test-pattern" instead of "v4l2:/dev/videoN".
 *
 * A configured #GstPortierCamSrc:device that is missing or no camera (a
 * regular file, /dev/null, a metadata or codec node) is a configuration
 * mistake: with fallback=false the element posts an error naming the path
 * and the reason, and the state change to READY fails; with fallback=true it
 * posts a warning with the same words and sends the test pattern.
 *
 * The source is decided when the element goes from NULL to READY: property
 * changes take effect the next time it does.
 *
 * ## Example launch lines
 * |[
 * gst-launch-1.0 portiercamsrc width=640 height=480 framerate=15/1 ! videoconvert ! autovideosink
 * ]| Shows the camera, or the test pattern when there is none.
 * |[
 * gst-launch-1.0 portiercamsrc width=640 height=480 framerate=15/1 num-buffers=30 ! \
 *   videoconvert ! pngenc snapshot=true ! filesink location=door.png
 * ]| Saves one frame without a display; pipelines/camera-preview.sh runs both.
 */
#define G_LOG_DOMAIN "portiercamsrc"

#include "gstportiercamsrc.h"

#include <optional>
#include <string>
#include <vector>

#include "camera_chain.h"
#include "camera_modes.h"
#include "v4l2_devices.h"

GST_DEBUG_CATEGORY_STATIC(gst_portier_cam_src_debug);
#define GST_CAT_DEFAULT gst_portier_cam_src_debug

namespace cam = portier::camera;

enum {
  PROP_0,
  PROP_DEVICE,
  PROP_WIDTH,
  PROP_HEIGHT,
  PROP_FRAMERATE,
  PROP_FORMAT,
  PROP_FALLBACK,
  PROP_NUM_BUFFERS,
  PROP_ACTIVE_SOURCE,
  N_PROPS,
};
static GParamSpec *properties[N_PROPS];

enum OutputFormat { FORMAT_I420, FORMAT_NV12 };

#define DEFAULT_DEVICE ""
#define DEFAULT_WIDTH 640
#define DEFAULT_HEIGHT 480
#define DEFAULT_FPS_N 15
#define DEFAULT_FPS_D 1
#define DEFAULT_FORMAT FORMAT_I420
#define DEFAULT_FALLBACK TRUE
#define DEFAULT_NUM_BUFFERS -1

constexpr const char *kTestPattern = "test-pattern";
constexpr const char *kNoCameraText = "portier: no camera";

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE(
    "src", GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS("video/x-raw, format = (string) { I420, NV12 }, "
                    "width = (int) [ 16, 8192 ], height = (int) [ 16, 8192 ], "
                    "framerate = (fraction) [ 1/10, 240/1 ], pixel-aspect-ratio = (fraction) 1/1"));

GType gst_portier_cam_src_format_get_type(void) {
  static GType type = 0;
  static const GEnumValue values[] = {
      {FORMAT_I420, "I420 (planar 4:2:0, what software encoders take)", "i420"},
      {FORMAT_NV12, "NV12 (semi-planar 4:2:0, what most hardware encoders take)", "nv12"},
      {0, nullptr, nullptr},
  };
  if (g_once_init_enter(&type)) {
    GType t = g_enum_register_static("GstPortierCamSrcFormat", values);
    g_once_init_leave(&type, t);
  }
  return type;
}

// Guarded by the object lock: the settings are read by the thread that
// changes the state, active_source by any thread.
struct CamSrcPrivate {
  std::string device = DEFAULT_DEVICE;
  int width = DEFAULT_WIDTH;
  int height = DEFAULT_HEIGHT;
  int fps_n = DEFAULT_FPS_N;
  int fps_d = DEFAULT_FPS_D;
  OutputFormat format = DEFAULT_FORMAT;
  bool fallback = DEFAULT_FALLBACK;
  int num_buffers = DEFAULT_NUM_BUFFERS;
  std::string active_source;
};

struct _GstPortierCamSrc {
  GstBin parent;
  GstPad *srcpad;  // the ghost pad, targeted at the chain's last capsfilter
  CamSrcPrivate *priv;
};

#define gst_portier_cam_src_parent_class parent_class
G_DEFINE_TYPE_WITH_CODE(GstPortierCamSrc, gst_portier_cam_src, GST_TYPE_BIN,
                        GST_DEBUG_CATEGORY_INIT(gst_portier_cam_src_debug, "portiercamsrc", 0,
                                                "door camera source"))
GST_ELEMENT_REGISTER_DEFINE(portiercamsrc, "portiercamsrc", GST_RANK_NONE, GST_TYPE_PORTIER_CAM_SRC)

namespace {

// A copy of the settings, taken once per decision.
struct Settings {
  std::string device;
  cam::Request request;
  OutputFormat format;
  bool fallback;
  int num_buffers;
};

Settings settings_of(GstPortierCamSrc *self) {
  CamSrcPrivate *p = self->priv;
  GST_OBJECT_LOCK(self);
  Settings s{p->device,
             {p->width, p->height, {p->fps_n, p->fps_d}},
             p->format,
             p->fallback,
             p->num_buffers};
  GST_OBJECT_UNLOCK(self);
  return s;
}

void set_active_source(GstPortierCamSrc *self, const std::string &source) {
  GST_OBJECT_LOCK(self);
  const bool changed = self->priv->active_source != source;
  self->priv->active_source = source;
  GST_OBJECT_UNLOCK(self);
  if (changed) g_object_notify_by_pspec(G_OBJECT(self), properties[PROP_ACTIVE_SOURCE]);
}

// What the decision found: a camera and its mode, or the test pattern.
struct Source {
  bool camera = false;
  std::string path;
  std::optional<cam::Choice> mode;  // empty: the driver listed none, let v4l2src choose
};

std::string join_modes(const std::vector<cam::Mode> &modes) {
  std::string formats;
  for (const cam::Mode &m : modes) {
    const std::string f = cam::fourcc_name(m.fourcc);
    if (formats.find(f) == std::string::npos) formats += (formats.empty() ? "" : ", ") + f;
  }
  return formats;
}

// Posts an error or warning of the RESOURCE domain whose code is known only
// at run time (the GST_ELEMENT_* macros want it spelled out), logging it in
// the element's category as those macros do.
void post_resource(GstPortierCamSrc *self, GstMessageType type, GstResourceError code,
                   const std::string &text, const std::string &debug, const std::string &device,
                   cam::NodeStatus status) {
  GST_WARNING_OBJECT(self, "%s (%s)", text.c_str(), debug.c_str());
  GstStructure *details =
      gst_structure_new("details", "device", G_TYPE_STRING, device.c_str(), "reason", G_TYPE_STRING,
                        cam::status_name(status), nullptr);
  gst_element_message_full_with_details(GST_ELEMENT(self), type, GST_RESOURCE_ERROR, code,
                                        g_strdup(text.c_str()), g_strdup(debug.c_str()), __FILE__,
                                        GST_FUNCTION, __LINE__, details);
}

// A configured device that cannot be used: an error that fails the state
// change, or, with fallback, a warning and the test pattern. Returns whether
// to go on.
bool device_unusable(GstPortierCamSrc *self, const Settings &s, cam::NodeStatus status,
                     const std::string &why) {
  // NOT_FOUND: nothing at that path; OPEN_READ: something there, but no camera.
  const GstResourceError code = status == cam::NodeStatus::Missing ? GST_RESOURCE_ERROR_NOT_FOUND
                                                                   : GST_RESOURCE_ERROR_OPEN_READ;
  if (!s.fallback) {
    post_resource(self, GST_MESSAGE_ERROR, code, "Camera " + s.device + ": " + why + ".",
                  "device=" + s.device + ", fallback=false: no test pattern", s.device, status);
    return false;
  }
  post_resource(self, GST_MESSAGE_WARNING, code,
                "Camera " + s.device + ": " + why + "; sending a test pattern instead.",
                "device=" + s.device + ", fallback=true", s.device, status);
  // The bus warning is for the application; this line is for a daemon's log
  // that does not watch the bus. g_message, not g_warning: a wrong path is a
  // configuration mistake, not a programming error (and G_DEBUG=fatal-warnings
  // must not turn it into a crash).
  g_message("%s: camera %s: %s; sending a test pattern instead", GST_OBJECT_NAME(self),
            s.device.c_str(), why.c_str());
  return true;
}

// Decides between the camera and the test pattern. False: the state change
// must fail (an error was posted).
bool decide(GstPortierCamSrc *self, const Settings &s, Source *out) {
  if (!s.device.empty()) {
    cam::Node node = cam::probe_node(s.device);
    if (node.status != cam::NodeStatus::Capture)
      return device_unusable(self, s, node.status, node.reason);
    out->mode = cam::choose_mode(node.modes, s.request);
    if (!out->mode && !node.modes.empty())
      return device_unusable(self, s, cam::NodeStatus::NotCapture,
                             "gives no format portiercamsrc can use (raw video or MJPEG), only " +
                                 join_modes(node.modes));
    out->camera = true;
    out->path = s.device;
    GST_INFO_OBJECT(self, "camera %s", cam::describe(node).c_str());
    return true;
  }

  std::vector<cam::Node> nodes;
  for (const std::string &path : cam::list_video_nodes()) nodes.push_back(cam::probe_node(path));
  if (std::optional<size_t> i = cam::choose_device(nodes)) {
    const cam::Node &node = nodes[*i];
    out->camera = true;
    out->path = node.path;
    out->mode = cam::choose_mode(node.modes, s.request);
    GST_INFO_OBJECT(self, "found camera %s", cam::describe(node).c_str());
    return true;
  }

  // Say why each node was passed over: "no camera" on a board with five
  // /dev/video nodes is a riddle otherwise.
  std::string why;
  for (const cam::Node &n : nodes) why += (why.empty() ? "" : "; ") + cam::describe(n);
  if (why.empty()) why = "no /dev/video* node";
  if (!s.fallback) {
    GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("No camera found (%s).", why.c_str()),
                      ("device is empty (auto-detect), fallback=false"));
    return false;
  }
  GST_WARNING_OBJECT(self, "no camera found (%s): sending a test pattern", why.c_str());
  g_message("%s: no camera found (%s): sending a test pattern with a clock", GST_OBJECT_NAME(self),
            why.c_str());
  return true;
}

// The test pattern's half of the chain: a moving ball at the asked size and
// rate, with the wall clock and "portier: no camera" written on it.
void pattern_head(GstPortierCamSrc *self, std::vector<GstElement *> &chain, const Settings &s,
                  std::string *missing) {
  GstElement *pattern = cam::make_element("videotestsrc", "pattern", missing);
  if (pattern) {
    // ball: a moving picture, so a frozen stream is told from a live one
    gst_util_set_object_arg(G_OBJECT(pattern), "pattern", "ball");
    g_object_set(pattern, "is-live", TRUE, nullptr);
    if (s.num_buffers >= 0) g_object_set(pattern, "num-buffers", s.num_buffers, nullptr);
  }
  chain.push_back(pattern);
  GstElement *caps = cam::make_element("capsfilter", "pattern-caps", missing);
  if (caps) {
    const cam::Request &r = s.request;
    GstCaps *c = gst_caps_new_simple("video/x-raw", "width", G_TYPE_INT, r.width, "height",
                                     G_TYPE_INT, r.height, "framerate", GST_TYPE_FRACTION,
                                     r.rate.num, r.rate.den, nullptr);
    g_object_set(caps, "caps", c, nullptr);
    gst_caps_unref(c);
  }
  chain.push_back(caps);
  // The clock overlay is in the pango plugin (Debian: gstreamer1.0-x); a door
  // without it still sends the moving pattern.
  if (GstElement *overlay = gst_element_factory_make("clockoverlay", "overlay")) {
    g_object_set(overlay, "text", kNoCameraText, "time-format", "%Y-%m-%d %H:%M:%S",
                 "shaded-background", TRUE, nullptr);
    chain.push_back(overlay);
  } else {
    GST_WARNING_OBJECT(self, "clockoverlay (gstreamer1.0-x) is missing: no clock on the pattern");
  }
}

// Builds the chain for `source` in the bin and points the ghost pad at it.
bool build(GstPortierCamSrc *self, const Settings &s, const Source &source) {
  std::vector<GstElement *> chain;
  std::string missing;
  if (source.camera) {
    GstElement *v4l2 = cam::make_element("v4l2src", "camera", &missing);
    if (v4l2) {
      g_object_set(v4l2, "device", source.path.c_str(), nullptr);
      if (s.num_buffers >= 0) g_object_set(v4l2, "num-buffers", s.num_buffers, nullptr);
    }
    cam::camera_head(chain, v4l2, source.mode, &missing);
  } else {
    pattern_head(self, chain, s, &missing);
  }
  const char *format = s.format == FORMAT_NV12 ? "NV12" : "I420";
  cam::output_tail(chain, s.request, format, &missing);
  if (!missing.empty()) {
    cam::release(chain);
    GST_ELEMENT_ERROR(self, CORE, MISSING_PLUGIN,
                      ("GStreamer element %s is missing.", missing.c_str()), (nullptr));
    return false;
  }
  std::string error;
  if (!cam::add_and_link(GST_BIN(self), chain, &error)) {  // the bin owns them now
    GST_ELEMENT_ERROR(self, CORE, NEGOTIATION, (nullptr), ("%s", error.c_str()));
    return false;
  }

  GstPad *target = gst_element_get_static_pad(chain.back(), "src");
  gst_ghost_pad_set_target(GST_GHOST_PAD(self->srcpad), target);
  gst_object_unref(target);
  set_active_source(self, source.camera ? "v4l2:" + source.path : kTestPattern);
  GST_INFO_OBJECT(self, "source %s, camera caps %s, output %s",
                  source.camera ? source.path.c_str() : kTestPattern,
                  source.mode ? cam::source_caps(*source.mode).c_str() : "-",
                  cam::output_caps(s.request, format).c_str());
  return true;
}

// Empties the bin: the next NULL->READY decides anew.
void remove_children(GstPortierCamSrc *self) {
  gst_ghost_pad_set_target(GST_GHOST_PAD(self->srcpad), nullptr);
  std::vector<GstElement *> children;
  GST_OBJECT_LOCK(self);
  for (GList *l = GST_BIN_CHILDREN(self); l; l = l->next)
    children.push_back(GST_ELEMENT(gst_object_ref(l->data)));
  GST_OBJECT_UNLOCK(self);
  for (GstElement *child : children) {
    gst_element_set_state(child, GST_STATE_NULL);
    gst_bin_remove(GST_BIN(self), child);
    gst_object_unref(child);
  }
}

}  // namespace

// ------------------------------------------------------------------ life cycle

static GstStateChangeReturn gst_portier_cam_src_change_state(GstElement *element,
                                                             GstStateChange transition) {
  GstPortierCamSrc *self = GST_PORTIER_CAM_SRC(element);
  if (transition == GST_STATE_CHANGE_NULL_TO_READY) {
    remove_children(self);  // left over from a failed start
    const Settings s = settings_of(self);
    Source source;
    if (!decide(self, s, &source) || !build(self, s, source)) {
      remove_children(self);
      return GST_STATE_CHANGE_FAILURE;
    }
  }

  GstStateChangeReturn ret = GST_ELEMENT_CLASS(parent_class)->change_state(element, transition);

  if (transition == GST_STATE_CHANGE_NULL_TO_READY && ret == GST_STATE_CHANGE_FAILURE) {
    // v4l2src could not open what the probe saw a moment ago: the bin stays
    // in NULL, so nothing would ever close it otherwise.
    remove_children(self);
    set_active_source(self, "");
  } else if (transition == GST_STATE_CHANGE_READY_TO_NULL) {
    remove_children(self);
    set_active_source(self, "");
  }
  return ret;
}

// ------------------------------------------------------------------ properties

static void gst_portier_cam_src_set_property(GObject *object, guint prop_id, const GValue *value,
                                             GParamSpec *pspec) {
  GstPortierCamSrc *self = GST_PORTIER_CAM_SRC(object);
  CamSrcPrivate *p = self->priv;
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
    case PROP_DEVICE: {
      const gchar *d = g_value_get_string(value);
      p->device = d ? d : "";
      break;
    }
    case PROP_WIDTH:
      p->width = g_value_get_int(value);
      break;
    case PROP_HEIGHT:
      p->height = g_value_get_int(value);
      break;
    case PROP_FRAMERATE:
      p->fps_n = gst_value_get_fraction_numerator(value);
      p->fps_d = gst_value_get_fraction_denominator(value);
      break;
    case PROP_FORMAT:
      p->format = static_cast<OutputFormat>(g_value_get_enum(value));
      break;
    case PROP_FALLBACK:
      p->fallback = g_value_get_boolean(value);
      break;
    case PROP_NUM_BUFFERS:
      p->num_buffers = g_value_get_int(value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_portier_cam_src_get_property(GObject *object, guint prop_id, GValue *value,
                                             GParamSpec *pspec) {
  GstPortierCamSrc *self = GST_PORTIER_CAM_SRC(object);
  CamSrcPrivate *p = self->priv;
  GST_OBJECT_LOCK(self);
  switch (prop_id) {
    case PROP_DEVICE:
      g_value_set_string(value, p->device.c_str());
      break;
    case PROP_WIDTH:
      g_value_set_int(value, p->width);
      break;
    case PROP_HEIGHT:
      g_value_set_int(value, p->height);
      break;
    case PROP_FRAMERATE:
      gst_value_set_fraction(value, p->fps_n, p->fps_d);
      break;
    case PROP_FORMAT:
      g_value_set_enum(value, p->format);
      break;
    case PROP_FALLBACK:
      g_value_set_boolean(value, p->fallback);
      break;
    case PROP_NUM_BUFFERS:
      g_value_set_int(value, p->num_buffers);
      break;
    case PROP_ACTIVE_SOURCE:
      g_value_set_string(value, p->active_source.c_str());
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID(object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK(self);
}

static void gst_portier_cam_src_finalize(GObject *object) {
  delete GST_PORTIER_CAM_SRC(object)->priv;
  G_OBJECT_CLASS(parent_class)->finalize(object);
}

static void gst_portier_cam_src_init(GstPortierCamSrc *self) {
  self->priv = new CamSrcPrivate();
  GstPadTemplate *templ = gst_static_pad_template_get(&src_template);
  self->srcpad = gst_ghost_pad_new_no_target_from_template("src", templ);
  gst_object_unref(templ);
  gst_element_add_pad(GST_ELEMENT(self), self->srcpad);
  // A source before its children exist, so a harness or an application
  // that looks at the flags in NULL sees what it is.
  GST_OBJECT_FLAG_SET(self, GST_ELEMENT_FLAG_SOURCE);
}

static void gst_portier_cam_src_class_init(GstPortierCamSrcClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  gobject_class->set_property = gst_portier_cam_src_set_property;
  gobject_class->get_property = gst_portier_cam_src_get_property;
  gobject_class->finalize = gst_portier_cam_src_finalize;

  // Read when the element goes from NULL to READY.
  constexpr auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS |
                                               GST_PARAM_MUTABLE_READY);
  properties[PROP_DEVICE] = g_param_spec_string(
      "device", "Device", "V4L2 device path (/dev/video0); empty: the first camera found",
      DEFAULT_DEVICE, rw);
  properties[PROP_WIDTH] =
      g_param_spec_int("width", "Width", "Width of the output video", 16, 8192, DEFAULT_WIDTH, rw);
  properties[PROP_HEIGHT] = g_param_spec_int("height", "Height", "Height of the output video", 16,
                                             8192, DEFAULT_HEIGHT, rw);
  properties[PROP_FRAMERATE] =
      gst_param_spec_fraction("framerate", "Frame rate", "Frame rate of the output video", 1, 10,
                              240, 1, DEFAULT_FPS_N, DEFAULT_FPS_D, rw);
  properties[PROP_FORMAT] = g_param_spec_enum("format", "Format", "Raw format of the output video",
                                              GST_TYPE_PORTIER_CAM_SRC_FORMAT, DEFAULT_FORMAT, rw);
  properties[PROP_FALLBACK] = g_param_spec_boolean(
      "fallback", "Fallback",
      "Send a test pattern with a clock when there is no camera or the device is unusable "
      "(FALSE: fail with an error instead)",
      DEFAULT_FALLBACK, rw);
  properties[PROP_NUM_BUFFERS] =
      g_param_spec_int("num-buffers", "Number of buffers",
                       "Frames the camera (or test pattern) gives before end-of-stream; -1: no end",
                       -1, G_MAXINT, DEFAULT_NUM_BUFFERS, rw);
  properties[PROP_ACTIVE_SOURCE] =
      g_param_spec_string("active-source", "Active source",
                          "What the video comes from since the last start: \"v4l2:/dev/videoN\" or "
                          "\"test-pattern\"; empty in NULL",
                          "", static_cast<GParamFlags>(G_PARAM_READABLE | G_PARAM_STATIC_STRINGS));
  g_object_class_install_properties(gobject_class, N_PROPS, properties);

  element_class->change_state = gst_portier_cam_src_change_state;
  gst_element_class_add_static_pad_template(element_class, &src_template);
  gst_element_class_set_static_metadata(
      element_class, "Door camera source", "Source/Video",
      "The door's camera (v4l2src, by path or found) as one fixed raw format, or a moving test "
      "pattern with a clock when there is no camera",
      "portier developers");
  gst_type_mark_as_plugin_api(GST_TYPE_PORTIER_CAM_SRC_FORMAT, static_cast<GstPluginAPIFlags>(0));
}
