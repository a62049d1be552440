// The plain C++ under portiercamsrc: which camera mode it asks for, which
// /dev/video node is a camera, and the reasons it gives when one is not.
// Cameras are made up (lists of modes and capability bits, as real drivers
// report them); the probing runs against what every machine has: a missing
// path, /dev/null, a regular file, a directory.
#include <gtest/gtest.h>
#include <linux/videodev2.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "portiercamsrc/camera_modes.h"
#include "portiercamsrc/v4l2_devices.h"

using namespace portier::camera;

namespace {

constexpr uint32_t YUYV = fourcc('Y', 'U', 'Y', 'V');
constexpr uint32_t MJPG = fourcc('M', 'J', 'P', 'G');
constexpr uint32_t NV12 = fourcc('N', 'V', '1', '2');
constexpr uint32_t H264 = fourcc('H', '2', '6', '4');

Mode mode(uint32_t f, int w, int h, std::vector<Fraction> rates) {
  Mode m;
  m.fourcc = f;
  m.width = w;
  m.height = h;
  m.rates = std::move(rates);
  return m;
}

// A typical USB webcam (UVC): raw YUYV is slow at big sizes, MJPEG is not.
std::vector<Mode> webcam() {
  return {
      mode(YUYV, 640, 480, {{30, 1}, {15, 1}}),  mode(YUYV, 1280, 720, {{10, 1}, {5, 1}}),
      mode(YUYV, 320, 240, {{30, 1}}),           mode(MJPG, 640, 480, {{30, 1}, {15, 1}}),
      mode(MJPG, 1280, 720, {{30, 1}, {15, 1}}), mode(MJPG, 1920, 1080, {{30, 1}}),
      mode(H264, 1920, 1080, {{30, 1}}),
  };
}

Choice pick(const std::vector<Mode> &modes, int w, int h, Fraction rate) {
  auto c = choose_mode(modes, Request{w, h, rate});
  EXPECT_TRUE(c.has_value());
  return c.value_or(Choice{});
}

// ------------------------------------------------------------------ modes

TEST(CameraModes, RawAtTheExactSizeBeatsMjpeg) {
  Choice c = pick(webcam(), 640, 480, {15, 1});
  EXPECT_EQ(c.mode.fourcc, YUYV);
  EXPECT_EQ(c.mode.width, 640);
  EXPECT_TRUE(c.rate == (Fraction{15, 1}));
  EXPECT_EQ(source_caps(c), "video/x-raw,format=YUY2,width=640,height=480,framerate=15/1");
}

TEST(CameraModes, MjpegWhenRawCannotReachTheFrameRate) {
  Choice c = pick(webcam(), 1280, 720, {25, 1});
  EXPECT_EQ(c.mode.fourcc, MJPG);
  EXPECT_TRUE(c.rate == (Fraction{30, 1})) << "the lowest listed rate above 25";
  EXPECT_EQ(source_caps(c), "image/jpeg,width=1280,height=720,framerate=30/1");
}

TEST(CameraModes, TheNearestBiggerSizeWhenTheExactOneIsMissing) {
  // 800x600 is not listed: 1280x720 (MJPEG, fast enough) is nearer than 1080p
  Choice c = pick(webcam(), 800, 600, {30, 1});
  EXPECT_EQ(c.mode.width, 1280);
  EXPECT_EQ(c.mode.height, 720);
  EXPECT_EQ(c.mode.fourcc, MJPG);
}

TEST(CameraModes, TheBiggestSmallerSizeWhenNothingIsBigEnough) {
  std::vector<Mode> small = {mode(YUYV, 320, 240, {{30, 1}}), mode(YUYV, 640, 480, {{30, 1}}),
                             mode(YUYV, 160, 120, {{30, 1}})};
  Choice c = pick(small, 1920, 1080, {30, 1});
  EXPECT_EQ(c.mode.width, 640);
}

TEST(CameraModes, ExactSizeBeatsBiggerAtTheSameRate) {
  std::vector<Mode> modes = {mode(MJPG, 1280, 720, {{15, 1}}), mode(MJPG, 640, 480, {{15, 1}})};
  EXPECT_EQ(pick(modes, 640, 480, {15, 1}).mode.width, 640);
}

TEST(CameraModes, PlanarYuvBeatsPackedAndTheFirstListedWinsATie) {
  std::vector<Mode> modes = {mode(YUYV, 640, 480, {{30, 1}}), mode(NV12, 640, 480, {{30, 1}}),
                             mode(NV12, 640, 480, {{30, 1}, {60, 1}})};
  Choice c = pick(modes, 640, 480, {30, 1});
  EXPECT_EQ(c.mode.fourcc, NV12);
  EXPECT_EQ(c.mode.rates.size(), 1u);
  EXPECT_EQ(source_caps(c), "video/x-raw,format=NV12,width=640,height=480,framerate=30/1");
}

TEST(CameraModes, WhenNoModeIsFastEnoughTheFastestAtTheRightSize) {
  std::vector<Mode> modes = {mode(YUYV, 640, 480, {{5, 1}}), mode(YUYV, 640, 480, {{10, 1}}),
                             mode(YUYV, 320, 240, {{30, 1}})};
  Choice c = pick(modes, 640, 480, {30, 1});
  EXPECT_EQ(c.mode.width, 320) << "reaching the rate comes before the size";
  modes.pop_back();
  c = pick(modes, 640, 480, {30, 1});
  EXPECT_TRUE(c.rate == (Fraction{10, 1}));
}

TEST(CameraModes, OnlyCompressedVideoIsNotUsable) {
  EXPECT_FALSE(choose_mode({mode(H264, 1920, 1080, {{30, 1}})}, Request{}).has_value());
  EXPECT_FALSE(choose_mode({}, Request{}).has_value());
}

TEST(CameraModes, RateChoice) {
  Mode m = mode(YUYV, 640, 480, {{30, 1}, {20, 1}, {15, 1}, {5, 1}});
  EXPECT_TRUE(choose_rate(m, {15, 1}) == (Fraction{15, 1}));
  EXPECT_TRUE(choose_rate(m, {25, 1}) == (Fraction{30, 1}));
  EXPECT_TRUE(choose_rate(m, {60, 1}) == (Fraction{30, 1}));
  EXPECT_TRUE(choose_rate(m, {30000, 1001}) == (Fraction{30, 1}));
  EXPECT_TRUE(choose_rate(m, {30, 2}) == (Fraction{15, 1})) << "fractions compare by value";
  // a continuous range: the request itself when inside, else the nearest end
  Mode r = mode(NV12, 1920, 1080, {{1, 1}, {60, 1}});
  r.rate_range = true;
  EXPECT_TRUE(choose_rate(r, {25, 1}) == (Fraction{25, 1}));
  EXPECT_TRUE(choose_rate(r, {120, 1}) == (Fraction{60, 1}));
  EXPECT_TRUE(choose_rate(r, {1, 2}) == (Fraction{1, 1}));
  // a driver that lists no rate: none is asked for
  Mode none = mode(YUYV, 640, 480, {});
  EXPECT_FALSE(choose_rate(none, {15, 1}).known());
  Choice c{none, {}};
  EXPECT_EQ(source_caps(c), "video/x-raw,format=YUY2,width=640,height=480");
}

TEST(CameraModes, FormatsTheConversionChainTakes) {
  EXPECT_STREQ(format_info(YUYV).gst_format, "YUY2");
  EXPECT_STREQ(format_info(fourcc('Y', 'U', '1', '2')).gst_format, "I420");
  EXPECT_STREQ(format_info(fourcc('G', 'R', 'E', 'Y')).gst_format, "GRAY8");
  EXPECT_EQ(format_info(MJPG).kind, FormatKind::Jpeg);
  EXPECT_EQ(format_info(fourcc('J', 'P', 'E', 'G')).kind, FormatKind::Jpeg);
  EXPECT_EQ(format_info(H264).kind, FormatKind::Unusable);
  EXPECT_EQ(fourcc_name(MJPG), "MJPG");
  EXPECT_EQ(MJPG, static_cast<uint32_t>(V4L2_PIX_FMT_MJPEG));
}

TEST(CameraModes, SizesOfAStepwiseRange) {
  // a sensor behind an ISP: 32..2592 x 32..1944, in steps of 2
  auto sizes = sizes_in_range({32, 2592, 2, 32, 1944, 2});
  EXPECT_EQ(sizes.front(), std::make_pair(32, 32));
  EXPECT_EQ(sizes.back(), std::make_pair(2592, 1944));
  auto has = [&](int w, int h) {
    return std::find(sizes.begin(), sizes.end(), std::make_pair(w, h)) != sizes.end();
  };
  EXPECT_TRUE(has(640, 480));
  EXPECT_TRUE(has(1920, 1080));
  EXPECT_FALSE(has(3840, 2160)) << "beyond the range";
  // a grid of 16 from 16: 1080 is not on it
  auto grid = sizes_in_range({16, 1920, 16, 16, 1088, 16});
  EXPECT_EQ(std::count(grid.begin(), grid.end(), std::make_pair(1920, 1080)), 0);
  EXPECT_EQ(std::count(grid.begin(), grid.end(), std::make_pair(1280, 720)), 1);
}

TEST(CameraModes, FractionsCompareExactly) {
  EXPECT_LT(compare({30000, 1001}, {30, 1}), 0);
  EXPECT_EQ(compare({30, 2}, {15, 1}), 0);
  EXPECT_GT(compare({1, 1}, {1, 10}), 0);
}

// ------------------------------------------------------------------ devices

constexpr uint32_t kDeviceCaps = V4L2_CAP_DEVICE_CAPS;

TEST(V4l2Devices, ClassifiesNodesByTheirOwnCapabilities) {
  std::string why;
  const uint32_t uvc_all = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_META_CAPTURE | V4L2_CAP_STREAMING;
  // a UVC camera's two nodes: the whole device has both, each node one
  EXPECT_EQ(classify(uvc_all | kDeviceCaps, V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING, &why),
            NodeStatus::Capture);
  EXPECT_TRUE(why.empty());
  EXPECT_EQ(classify(uvc_all | kDeviceCaps, V4L2_CAP_META_CAPTURE | V4L2_CAP_STREAMING, &why),
            NodeStatus::NotCapture);
  EXPECT_NE(why.find("metadata"), std::string::npos) << why;
  // an ISP's multi-planar capture node
  EXPECT_EQ(
      classify(V4L2_CAP_VIDEO_CAPTURE_MPLANE | kDeviceCaps, V4L2_CAP_VIDEO_CAPTURE_MPLANE, nullptr),
      NodeStatus::Capture);
  // a hardware codec
  EXPECT_EQ(classify(V4L2_CAP_VIDEO_M2M_MPLANE | kDeviceCaps, V4L2_CAP_VIDEO_M2M_MPLANE, &why),
            NodeStatus::NotCapture);
  EXPECT_NE(why.find("memory-to-memory"), std::string::npos) << why;
  // an old codec driver: capture and output on one node
  EXPECT_EQ(classify(V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_OUTPUT, 0, &why),
            NodeStatus::NotCapture);
  // an old camera driver without device_caps
  EXPECT_EQ(classify(V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_STREAMING, 0, nullptr), NodeStatus::Capture);
  EXPECT_EQ(classify(V4L2_CAP_VIDEO_OUTPUT, 0, &why), NodeStatus::NotCapture);
  EXPECT_NE(why.find("output"), std::string::npos) << why;
}

Node node(const char *path, NodeStatus status, std::vector<Mode> modes = {}) {
  Node n;
  n.path = path;
  n.status = status;
  n.reason = status == NodeStatus::Capture ? "" : "made up";
  n.modes = std::move(modes);
  return n;
}

TEST(V4l2Devices, ChoosesTheFirstCameraWithAUsableMode) {
  std::vector<Node> nodes = {
      node("/dev/video0", NodeStatus::NotCapture),                             // a codec
      node("/dev/video1", NodeStatus::Capture, {mode(H264, 1920, 1080, {})}),  // H.264 only
      node("/dev/video2", NodeStatus::Capture, webcam()),
      node("/dev/video3", NodeStatus::NotCapture),  // its metadata node
      node("/dev/video4", NodeStatus::Capture, webcam()),
  };
  EXPECT_EQ(choose_device(nodes), std::optional<size_t>(2));
}

TEST(V4l2Devices, ACameraThatListsNoModesIsTheLastResort) {
  std::vector<Node> nodes = {node("/dev/video0", NodeStatus::Capture),
                             node("/dev/video1", NodeStatus::Capture, webcam())};
  EXPECT_EQ(choose_device(nodes), std::optional<size_t>(1));
  nodes.pop_back();
  EXPECT_EQ(choose_device(nodes), std::optional<size_t>(0));
}

TEST(V4l2Devices, NoCamera) {
  EXPECT_FALSE(choose_device({}).has_value());
  EXPECT_FALSE(choose_device({node("/dev/video0", NodeStatus::NotCapture),
                              node("/dev/video1", NodeStatus::CannotOpen)})
                   .has_value());
}

TEST(V4l2Devices, DescribesANodeInOneLine) {
  Node cam = node("/dev/video0", NodeStatus::Capture);
  cam.card = "HD Webcam C270";
  EXPECT_EQ(describe(cam), "/dev/video0 (HD Webcam C270)");
  EXPECT_EQ(describe(node("/dev/video1", NodeStatus::NotCapture)), "/dev/video1: made up");
}

TEST(V4l2Devices, FrameIntervalsAsRates) {
  EXPECT_TRUE(rate_from_interval(1, 30) == (Fraction{30, 1}));
  EXPECT_TRUE(rate_from_interval(333333, 10000000) == (Fraction{30, 1}));
  EXPECT_TRUE(rate_from_interval(1001, 30000) == (Fraction{30000, 1001}));
  EXPECT_TRUE(rate_from_interval(2, 1) == (Fraction{1, 2}));
  const Fraction ntsc = rate_from_interval(333667, 10000000);  // 29.97 as some drivers say it
  EXPECT_EQ(ntsc.num, 30000);
  EXPECT_EQ(ntsc.den, 1001);
  EXPECT_FALSE(rate_from_interval(0, 30).known());
}

TEST(V4l2Devices, NodeNumbers) {
  EXPECT_EQ(video_node_number("video0"), 0);
  EXPECT_EQ(video_node_number("video10"), 10);
  EXPECT_EQ(video_node_number("video"), -1);
  EXPECT_EQ(video_node_number("video1a"), -1);
  EXPECT_EQ(video_node_number("vbi0"), -1);
  EXPECT_EQ(video_node_number("media0"), -1);
}

// A temporary directory, removed with what is in it.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/portier-camera-XXXXXX";
    path = mkdtemp(tmpl);
  }
  std::string touch(const std::string &name) {
    std::string p = path + "/" + name;
    std::ofstream(p) << "not a camera\n";
    return p;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

TEST(V4l2Devices, ListsVideoNodesInNumericOrder) {
  TempDir dir;
  for (const char *n : {"video10", "video2", "video0", "vbi0", "media0", "videoX"}) dir.touch(n);
  std::vector<std::string> nodes = list_video_nodes(dir.path);
  ASSERT_EQ(nodes.size(), 3u);
  EXPECT_EQ(nodes[0], dir.path + "/video0");
  EXPECT_EQ(nodes[1], dir.path + "/video2");
  EXPECT_EQ(nodes[2], dir.path + "/video10");
  EXPECT_TRUE(list_video_nodes(dir.path + "/nothing-here").empty());
}

TEST(V4l2Devices, ProbeSaysWhyAPathIsNoCamera) {
  TempDir dir;
  Node missing = probe_node(dir.path + "/video0");
  EXPECT_EQ(missing.status, NodeStatus::Missing);
  EXPECT_EQ(missing.reason, "no such device");

  Node file = probe_node(dir.touch("video0"));
  EXPECT_EQ(file.status, NodeStatus::NotDevice);
  EXPECT_NE(file.reason.find("regular file"), std::string::npos) << file.reason;

  Node directory = probe_node(dir.path);
  EXPECT_EQ(directory.status, NodeStatus::NotDevice);
  EXPECT_NE(directory.reason.find("directory"), std::string::npos) << directory.reason;

  // a character device that is no V4L2 device
  Node null = probe_node("/dev/null");
  EXPECT_EQ(null.status, NodeStatus::NotV4l2);
  EXPECT_NE(null.reason.find("not a V4L2 device"), std::string::npos) << null.reason;
  EXPECT_EQ(describe(null).rfind("/dev/null: ", 0), 0u) << describe(null);
}

}  // namespace
