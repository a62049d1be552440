// portiercamsrc under GstHarness, on a machine without a camera: the test
// pattern it falls back to, the caps it gives for what was asked, and the
// errors and warnings for a device path that is missing or no camera.
//
// Unlike test_rtpfork.cpp this needs the host's plugins (videotestsrc,
// videoconvert, clockoverlay, ...): ctest keeps the system plugin path, loads
// portier from build/plugins and keeps its own registry in the build tree.
// The camera itself cannot exist here: a missing path, /dev/null, a regular
// file and a directory stand in for every wrong device, and videotestsrc
// (with jpegenc for an MJPEG camera) stands in for v4l2src in front of the
// element's own camera chain.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "portiercamsrc/camera_chain.h"
#include "portiercamsrc/camera_modes.h"
#include "portiercamsrc/v4l2_devices.h"

namespace {

namespace fs = std::filesystem;
namespace cam = portier::camera;

// Whether auto-detection would find a real camera here: the "no camera"
// tests mean nothing then.
bool machine_has_camera() {
  std::vector<portier::camera::Node> nodes;
  for (const std::string &p : portier::camera::list_video_nodes())
    nodes.push_back(portier::camera::probe_node(p));
  return portier::camera::choose_device(nodes).has_value();
}

class CamSrc : public ::testing::Test {
 protected:
  void SetUp() override {
    h = gst_harness_new("portiercamsrc");
    ASSERT_NE(h, nullptr) << "portiercamsrc not found: is GST_PLUGIN_PATH set to build/plugins?";
    src = h->element;
    bus = gst_bus_new();
    gst_element_set_bus(src, bus);
    gst_harness_use_systemclock(h);
    // the daemon-facing log line: g_message in the element's log domain
    handler = g_log_set_handler("portiercamsrc", G_LOG_LEVEL_MESSAGE, on_message, &messages);
    char tmpl[] = "/tmp/portier-camsrc-XXXXXX";
    tmp = mkdtemp(tmpl);
  }
  void TearDown() override {
    // the messages left on the bus hold the element: drop them first
    gst_bus_set_flushing(bus, TRUE);
    if (h) gst_harness_teardown(h);
    g_log_remove_handler("portiercamsrc", handler);
    if (bus) gst_object_unref(bus);
    fs::remove_all(tmp);
  }
  static void on_message(const gchar *, GLogLevelFlags, const gchar *text, gpointer data) {
    static_cast<std::vector<std::string> *>(data)->push_back(text);
  }

  std::string active_source() {
    gchar *s = nullptr;
    g_object_get(src, "active-source", &s, nullptr);
    std::string out = s ? s : "";
    g_free(s);
    return out;
  }
  // The first ERROR or WARNING message on the bus, or null.
  GstMessage *pop(GstMessageType type) { return gst_bus_pop_filtered(bus, type); }
  static std::string text_of(GstMessage *m, GError **err_out = nullptr) {
    GError *err = nullptr;
    gchar *debug = nullptr;
    if (GST_MESSAGE_TYPE(m) == GST_MESSAGE_ERROR)
      gst_message_parse_error(m, &err, &debug);
    else
      gst_message_parse_warning(m, &err, &debug);
    std::string text = err ? err->message : "";
    g_free(debug);
    if (err_out)
      *err_out = err;
    else
      g_clear_error(&err);
    return text;
  }
  std::string regular_file() {
    std::string p = tmp + "/video0";
    std::ofstream(p) << "not a camera\n";
    return p;
  }
  std::string missing_path() { return tmp + "/video9"; }

  // Pulls a frame and checks its size against the negotiated caps.
  GstBuffer *frame() {
    GstBuffer *b = gst_harness_pull(h);  // waits for a frame, bounded by the harness
    EXPECT_NE(b, nullptr) << "no frame came";
    return b;
  }

  GstHarness *h = nullptr;
  GstElement *src = nullptr;
  GstBus *bus = nullptr;
  guint handler = 0;
  std::vector<std::string> messages;
  std::string tmp;
};

struct Asked {
  int width, height, fps_n, fps_d;
  const char *format;  // as in caps; the `format` property's nick is its lower case
};
void PrintTo(const Asked &a, std::ostream *os) {
  *os << a.width << "x" << a.height << "@" << a.fps_n << "/" << a.fps_d << " " << a.format;
}

void expect_caps(GstHarness *h, const Asked &a) {
  GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
  ASSERT_NE(caps, nullptr);
  GstVideoInfo info;
  ASSERT_TRUE(gst_video_info_from_caps(&info, caps));
  gst_caps_unref(caps);
  EXPECT_EQ(GST_VIDEO_INFO_WIDTH(&info), a.width);
  EXPECT_EQ(GST_VIDEO_INFO_HEIGHT(&info), a.height);
  EXPECT_EQ(GST_VIDEO_INFO_FPS_N(&info), a.fps_n);
  EXPECT_EQ(GST_VIDEO_INFO_FPS_D(&info), a.fps_d);
  EXPECT_EQ(GST_VIDEO_INFO_PAR_N(&info), 1);
  EXPECT_EQ(GST_VIDEO_INFO_PAR_D(&info), 1);
  EXPECT_STREQ(gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&info)), a.format);
}

bool same_bytes(GstBuffer *a, GstBuffer *b) {
  GstMapInfo ma, mb;
  gst_buffer_map(a, &ma, GST_MAP_READ);
  gst_buffer_map(b, &mb, GST_MAP_READ);
  const bool same = ma.size == mb.size && std::memcmp(ma.data, mb.data, ma.size) == 0;
  gst_buffer_unmap(a, &ma);
  gst_buffer_unmap(b, &mb);
  return same;
}

// ------------------------------------------------------------------ no camera

TEST_F(CamSrc, NoCameraGivesAMovingTestPatternAndSaysSoOnce) {
  if (machine_has_camera()) GTEST_SKIP() << "this machine has a camera";
  EXPECT_EQ(active_source(), "") << "nothing decided before the start";
  gst_harness_play(h);
  EXPECT_EQ(active_source(), "test-pattern");
  GstElement *overlay = gst_bin_get_by_name(GST_BIN(src), "overlay");
  EXPECT_NE(overlay, nullptr) << "the test pattern carries the clock";
  if (overlay) gst_object_unref(overlay);

  GstBuffer *first = frame(), *second = frame(), *third = frame();
  ASSERT_TRUE(first && second && third);
  expect_caps(h, {640, 480, 15, 1, "I420"});  // the defaults
  EXPECT_EQ(gst_buffer_get_size(first), 640u * 480 * 3 / 2);
  EXPECT_FALSE(same_bytes(first, second)) << "the pattern must move";
  EXPECT_FALSE(same_bytes(second, third)) << "the pattern must move";
  for (GstBuffer *b : {first, second, third}) gst_buffer_unref(b);

  ASSERT_EQ(messages.size(), 1u) << "one log line, not one per frame";
  EXPECT_NE(messages[0].find("no camera found"), std::string::npos) << messages[0];
  EXPECT_NE(messages[0].find("test pattern"), std::string::npos) << messages[0];
  GstMessage *err = pop(GST_MESSAGE_ERROR);
  EXPECT_EQ(err, nullptr) << "a missing camera is no error when falling back";
  if (err) gst_message_unref(err);
}

TEST_F(CamSrc, NoCameraWithoutFallbackIsAnError) {
  if (machine_has_camera()) GTEST_SKIP() << "this machine has a camera";
  g_object_set(src, "fallback", FALSE, nullptr);
  EXPECT_EQ(gst_element_set_state(src, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  GstMessage *m = pop(GST_MESSAGE_ERROR);
  ASSERT_NE(m, nullptr);
  GError *err = nullptr;
  const std::string text = text_of(m, &err);
  EXPECT_TRUE(g_error_matches(err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND));
  EXPECT_NE(text.find("No camera found"), std::string::npos) << text;
  g_clear_error(&err);
  gst_message_unref(m);
  EXPECT_EQ(active_source(), "");
}

TEST_F(CamSrc, WithoutClockoverlayThePatternStillMoves) {
  // A door without the pango plugin (Debian: gstreamer1.0-x): hide
  // clockoverlay from the registry for this test, put it back after.
  GstRegistry *registry = gst_registry_get();
  GstPluginFeature *overlay = gst_registry_lookup_feature(registry, "clockoverlay");
  if (overlay) gst_registry_remove_feature(registry, overlay);
  g_object_set(src, "device", missing_path().c_str(), "width", 320, "height", 240, nullptr);
  gst_harness_play(h);
  GstElement *none = gst_bin_get_by_name(GST_BIN(src), "overlay");
  EXPECT_EQ(none, nullptr);
  if (none) gst_object_unref(none);
  GstBuffer *first = frame(), *second = frame();
  if (overlay) {
    gst_registry_add_feature(registry, overlay);  // the registry takes its own reference
    gst_object_unref(overlay);
  }
  ASSERT_TRUE(first && second);
  expect_caps(h, {320, 240, 15, 1, "I420"});
  EXPECT_FALSE(same_bytes(first, second));
  gst_buffer_unref(first);
  gst_buffer_unref(second);
  EXPECT_EQ(active_source(), "test-pattern");
}

// ------------------------------------------------------------------ caps

class CamSrcCaps : public CamSrc, public ::testing::WithParamInterface<Asked> {};

TEST_P(CamSrcCaps, GivesExactlyWhatWasAsked) {
  const Asked a = GetParam();
  // a missing device with fallback: the same test pattern on any machine
  gchar *nick = g_ascii_strdown(a.format, -1);  // the property's nick: "nv12"
  gst_util_set_object_arg(G_OBJECT(src), "format", nick);
  g_free(nick);
  g_object_set(src, "device", missing_path().c_str(), "width", a.width, "height", a.height,
               "framerate", a.fps_n, a.fps_d, nullptr);
  gst_harness_play(h);
  GstBuffer *b = frame();
  ASSERT_NE(b, nullptr);
  expect_caps(h, a);
  GstVideoInfo info;
  GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
  gst_video_info_from_caps(&info, caps);
  gst_caps_unref(caps);
  EXPECT_EQ(gst_buffer_get_size(b), GST_VIDEO_INFO_SIZE(&info));
  EXPECT_TRUE(GST_BUFFER_PTS_IS_VALID(b)) << "a live source stamps its frames";
  gst_buffer_unref(b);
  EXPECT_EQ(active_source(), "test-pattern");
}

INSTANTIATE_TEST_SUITE_P(SizesRatesFormats, CamSrcCaps,
                         ::testing::Values(Asked{320, 240, 15, 1, "I420"},
                                           Asked{1280, 720, 30, 1, "NV12"},
                                           Asked{640, 360, 30000, 1001, "I420"},
                                           Asked{176, 144, 5, 1, "NV12"},
                                           Asked{800, 600, 25, 2, "I420"}),
                         [](const ::testing::TestParamInfo<Asked> &i) {
                           const Asked &a = i.param;
                           return std::to_string(a.width) + "x" + std::to_string(a.height) + "_" +
                                  std::to_string(a.fps_n) + "_" + std::to_string(a.fps_d) + "_" +
                                  a.format;
                         });

TEST_F(CamSrc, NumBuffersEndsTheStream) {
  g_object_set(src, "device", missing_path().c_str(), "width", 160, "height", 120, "framerate", 30,
               1, "num-buffers", 3, nullptr);
  gst_harness_play(h);
  guint frames = 0;
  GstBuffer *b = nullptr;
  while (gst_harness_pull_until_eos(h, &b) && b) {  // bounded by the harness (60 s)
    ++frames;
    gst_buffer_unref(b);
  }
  EXPECT_EQ(frames, 3u);
}

// ------------------------------------------------------------------ wrong devices

struct WrongDevice {
  const char *name;
  std::string (*path)(CamSrc &);  // made in the test's temp dir, or a fixed path
  GstResourceError code;
  const char *reason;
};
void PrintTo(const WrongDevice &w, std::ostream *os) { *os << w.name; }

class CamSrcWrongDevice : public CamSrc, public ::testing::WithParamInterface<WrongDevice> {
 public:
  static std::string missing(CamSrc &t) {
    return static_cast<CamSrcWrongDevice &>(t).missing_path();
  }
  static std::string file(CamSrc &t) { return static_cast<CamSrcWrongDevice &>(t).regular_file(); }
  static std::string dir(CamSrc &t) { return static_cast<CamSrcWrongDevice &>(t).tmp; }
  static std::string null(CamSrc &) { return "/dev/null"; }
};

TEST_P(CamSrcWrongDevice, WithoutFallbackTheStartFailsWithAnErrorNamingThePath) {
  const WrongDevice &w = GetParam();
  const std::string path = w.path(*this);
  g_object_set(src, "device", path.c_str(), "fallback", FALSE, nullptr);
  EXPECT_EQ(gst_element_set_state(src, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  GstState state = GST_STATE_VOID_PENDING;
  gst_element_get_state(src, &state, nullptr, 0);
  EXPECT_EQ(state, GST_STATE_NULL);

  GstMessage *m = pop(GST_MESSAGE_ERROR);
  ASSERT_NE(m, nullptr) << "no error posted";
  GError *err = nullptr;
  const std::string text = text_of(m, &err);
  EXPECT_TRUE(g_error_matches(err, GST_RESOURCE_ERROR, w.code)) << text;
  EXPECT_NE(text.find(path), std::string::npos) << "the error must name the path: " << text;
  EXPECT_NE(text.find(w.reason), std::string::npos) << "and say why: " << text;
  g_clear_error(&err);
  // the details carry the path for an application that wants it as data
  const GstStructure *details = nullptr;
  gst_message_parse_error_details(m, &details);
  ASSERT_NE(details, nullptr);
  EXPECT_STREQ(gst_structure_get_string(details, "device"), path.c_str());
  gst_message_unref(m);
  EXPECT_EQ(active_source(), "");
  EXPECT_EQ(GST_BIN_NUMCHILDREN(GST_BIN(src)), 0) << "nothing left behind by the failed start";
}

TEST_P(CamSrcWrongDevice, WithFallbackAWarningAndTheTestPattern) {
  const WrongDevice &w = GetParam();
  const std::string path = w.path(*this);
  g_object_set(src, "device", path.c_str(), "width", 320, "height", 240, nullptr);
  gst_harness_play(h);
  EXPECT_EQ(active_source(), "test-pattern");
  GstBuffer *b = frame();
  ASSERT_NE(b, nullptr);
  gst_buffer_unref(b);
  expect_caps(h, {320, 240, 15, 1, "I420"});

  GstMessage *m = pop(GST_MESSAGE_WARNING);
  ASSERT_NE(m, nullptr) << "no warning posted";
  GError *err = nullptr;
  const std::string text = text_of(m, &err);
  EXPECT_TRUE(g_error_matches(err, GST_RESOURCE_ERROR, w.code)) << text;
  EXPECT_NE(text.find(path), std::string::npos) << text;
  EXPECT_NE(text.find(w.reason), std::string::npos) << text;
  EXPECT_NE(text.find("test pattern"), std::string::npos) << text;
  g_clear_error(&err);
  gst_message_unref(m);
  EXPECT_EQ(pop(GST_MESSAGE_ERROR), nullptr);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_NE(messages[0].find(path), std::string::npos) << messages[0];
}

INSTANTIATE_TEST_SUITE_P(
    Paths, CamSrcWrongDevice,
    ::testing::Values(WrongDevice{"Missing", &CamSrcWrongDevice::missing,
                                  GST_RESOURCE_ERROR_NOT_FOUND, "no such device"},
                      WrongDevice{"DevNull", &CamSrcWrongDevice::null, GST_RESOURCE_ERROR_OPEN_READ,
                                  "not a V4L2 device"},
                      WrongDevice{"RegularFile", &CamSrcWrongDevice::file,
                                  GST_RESOURCE_ERROR_OPEN_READ, "regular file"},
                      WrongDevice{"Directory", &CamSrcWrongDevice::dir,
                                  GST_RESOURCE_ERROR_OPEN_READ, "directory"}),
    [](const ::testing::TestParamInfo<WrongDevice> &i) { return std::string(i.param.name); });

// ------------------------------------------------------------------ restarts

TEST_F(CamSrc, EachStartDecidesAgain) {
  g_object_set(src, "device", "/dev/null", "fallback", FALSE, nullptr);
  EXPECT_EQ(gst_element_set_state(src, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  // the operator fixes the config: the next start works and falls back
  g_object_set(src, "fallback", TRUE, nullptr);
  gst_harness_play(h);
  EXPECT_EQ(active_source(), "test-pattern");
  GstBuffer *b = frame();
  if (b) gst_buffer_unref(b);
  // and a stop forgets the decision
  EXPECT_EQ(gst_element_set_state(src, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  EXPECT_EQ(active_source(), "");
  EXPECT_EQ(GST_BIN_NUMCHILDREN(GST_BIN(src)), 0);
}

TEST_F(CamSrc, ActiveSourceIsNotified) {
  std::vector<std::string> seen;
  g_signal_connect(src, "notify::active-source",
                   G_CALLBACK(+[](GObject *o, GParamSpec *, gpointer data) {
                     gchar *s = nullptr;
                     g_object_get(o, "active-source", &s, nullptr);
                     static_cast<std::vector<std::string> *>(data)->push_back(s ? s : "");
                     g_free(s);
                   }),
                   &seen);
  g_object_set(src, "device", missing_path().c_str(), nullptr);
  EXPECT_EQ(gst_element_set_state(src, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  EXPECT_EQ(gst_element_set_state(src, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  EXPECT_EQ(seen, (std::vector<std::string>{"test-pattern", ""}));
}

// ------------------------------------------------------------------ the camera half

// The camera cannot exist here, so a stand-in takes v4l2src's place in front
// of the element's own chain (camera_head + output_tail, as portiercamsrc
// builds them): videotestsrc, with jpegenc for a camera that gives MJPEG.
// The modes are those of a typical USB webcam; the mode choice is the
// element's too.
std::vector<cam::Mode> webcam() {
  auto mode = [](uint32_t f, int w, int h, std::vector<cam::Fraction> rates) {
    cam::Mode m;
    m.fourcc = f;
    m.width = w;
    m.height = h;
    m.rates = std::move(rates);
    return m;
  };
  const uint32_t yuyv = cam::fourcc('Y', 'U', 'Y', 'V'), mjpg = cam::fourcc('M', 'J', 'P', 'G');
  return {mode(yuyv, 640, 480, {{30, 1}, {15, 1}}), mode(yuyv, 1280, 720, {{10, 1}}),
          mode(mjpg, 640, 480, {{30, 1}}), mode(mjpg, 1280, 720, {{30, 1}, {15, 1}})};
}

struct CameraCase {
  const char *name;
  Asked asked;
  const char *camera_caps;  // what the chain must ask of the camera
};
void PrintTo(const CameraCase &c, std::ostream *os) { *os << c.name; }

class CameraChain : public ::testing::TestWithParam<CameraCase> {
 protected:
  void TearDown() override {
    if (h) gst_harness_teardown(h);
  }
  GstHarness *h = nullptr;
};

TEST_P(CameraChain, TheCameraComesOutAsAsked) {
  const CameraCase &c = GetParam();
  const Asked &a = c.asked;
  const cam::Request request{a.width, a.height, {a.fps_n, a.fps_d}};
  const std::optional<cam::Choice> choice = cam::choose_mode(webcam(), request);
  ASSERT_TRUE(choice.has_value());
  ASSERT_EQ(cam::source_caps(*choice), c.camera_caps);
  const bool mjpeg = cam::format_info(choice->mode.fourcc).kind == cam::FormatKind::Jpeg;

  GError *err = nullptr;
  GstElement *camera = gst_parse_bin_from_description(
      mjpeg ? "videotestsrc is-live=true pattern=smpte ! jpegenc" : "videotestsrc is-live=true",
      TRUE, &err);
  ASSERT_NE(camera, nullptr) << (err ? err->message : "");
  GstElement *bin = gst_bin_new("standin");
  std::vector<GstElement *> chain;
  std::string missing, error;
  cam::camera_head(chain, camera, choice, &missing);
  cam::output_tail(chain, request, a.format, &missing);
  ASSERT_EQ(missing, "");
  ASSERT_TRUE(cam::add_and_link(GST_BIN(bin), chain, &error)) << error;
  GstPad *last = gst_element_get_static_pad(chain.back(), "src");
  gst_element_add_pad(bin, gst_ghost_pad_new("src", last));
  gst_object_unref(last);

  h = gst_harness_new_with_element(bin, nullptr, "src");
  gst_object_unref(bin);  // the harness holds it
  gst_harness_use_systemclock(h);
  gst_harness_play(h);
  GstBuffer *b = gst_harness_pull(h);
  ASSERT_NE(b, nullptr) << "no frame came";
  gst_buffer_unref(b);
  expect_caps(h, a);

  // the camera was asked for the chosen mode, and MJPEG was decoded
  GstElement *camera_caps = gst_bin_get_by_name(GST_BIN(h->element), "camera-caps");
  GstPad *pad = gst_element_get_static_pad(camera_caps, "src");
  GstCaps *got = gst_pad_get_current_caps(pad);
  GstCaps *want = gst_caps_from_string(c.camera_caps);
  ASSERT_NE(got, nullptr);
  EXPECT_TRUE(gst_caps_is_subset(got, want)) << gst_caps_to_string(got);
  gst_caps_unref(got);
  gst_caps_unref(want);
  gst_object_unref(pad);
  gst_object_unref(camera_caps);
  GstElement *decoder = gst_bin_get_by_name(GST_BIN(h->element), "decoder");
  EXPECT_EQ(decoder != nullptr, mjpeg);
  if (decoder) gst_object_unref(decoder);
}

INSTANTIATE_TEST_SUITE_P(
    Webcam, CameraChain,
    ::testing::Values(
        // raw YUYV at the exact size, 30 fps camera re-timed to 15
        CameraCase{"RawExactSize",
                   {640, 480, 15, 1, "NV12"},
                   "video/x-raw,format=YUY2,width=640,height=480,framerate=15/1"},
        // raw 720p is too slow: MJPEG, decoded, 30 fps re-timed to 25
        CameraCase{"MjpegForTheFrameRate",
                   {1280, 720, 25, 1, "I420"},
                   "image/jpeg,width=1280,height=720,framerate=30/1"},
        // 800x600 is no camera size: the nearest bigger one, scaled down
        CameraCase{"MjpegScaledDown",
                   {800, 600, 30, 1, "I420"},
                   "image/jpeg,width=1280,height=720,framerate=30/1"}),
    [](const ::testing::TestParamInfo<CameraCase> &i) { return std::string(i.param.name); });

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const int ret = RUN_ALL_TESTS();
  gst_deinit();  // so GST_TRACERS=leaks can report what is still alive
  return ret;
}
