// Which of a camera's modes portiercamsrc asks for, given the size and frame
// rate the door wants to send.
//
// A camera lists modes (pixel format, size, frame rates). The encoder after
// portiercamsrc wants one fixed raw format, so whatever the camera gives is
// converted, scaled and re-timed; the choice here only decides how much of
// that work is needed and how good the picture is:
//   1. a mode that reaches the frame rate beats one that does not (a door
//      that stutters is worse than one that scales): many USB cameras give
//      raw YUYV at 720p only at 10 fps, but MJPEG at 30 fps;
//   2. then the size: the exact size, else the nearest bigger one (scaling
//      down keeps the detail), else the biggest smaller one;
//   3. then the format: raw planar YUV (the encoder's own), then packed YUV,
//      then RGB or grey, then MJPEG (a JPEG decode per frame).
// No GStreamer here: the element turns the choice into caps with
// source_caps(), and unit tests drive the choice with made-up cameras.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace portier::camera {

struct Fraction {
  int num = 0;
  int den = 1;
  bool known() const { return num > 0 && den > 0; }
};
// <0, 0, >0 like strcmp; exact (no floating point), so 30000/1001 < 30/1
int compare(Fraction a, Fraction b);
inline bool operator==(Fraction a, Fraction b) { return compare(a, b) == 0; }

// V4L2's pixel format codes (v4l2_fourcc), spelled here so this file needs no
// kernel header; v4l2_devices.cpp checks they match.
constexpr uint32_t fourcc(char a, char b, char c, char d) {
  return static_cast<uint32_t>(static_cast<uint8_t>(a)) |
         static_cast<uint32_t>(static_cast<uint8_t>(b)) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(c)) << 16 |
         static_cast<uint32_t>(static_cast<uint8_t>(d)) << 24;
}
std::string fourcc_name(uint32_t code);  // "YUYV"

enum class FormatKind { Unusable, Raw, Jpeg };
struct FormatInfo {
  FormatKind kind = FormatKind::Unusable;
  const char *gst_format = nullptr;  // GStreamer's raw format name ("YUY2"), or null
  int cost = 0;                      // lower: less work to reach I420/NV12
};
// Formats v4l2src delivers that the conversion chain takes; compressed video
// (H.264, ...) is Unusable: the door encodes itself.
FormatInfo format_info(uint32_t fourcc);

struct Mode {
  uint32_t fourcc = 0;
  int width = 0;
  int height = 0;
  // The frame rates the driver lists. With rate_range, rates holds the two
  // ends of a continuous range instead; empty: the driver does not say.
  std::vector<Fraction> rates;
  bool rate_range = false;
};

struct Request {
  int width = 640;
  int height = 480;
  Fraction rate{15, 1};
};

struct Choice {
  Mode mode;
  Fraction rate;  // what to ask the driver for; unknown when it lists none
};

// The rate to ask of `mode`: the requested one if the mode has it, else the
// lowest above it (videorate drops the extra frames), else the highest.
Fraction choose_rate(const Mode &mode, Fraction wanted);

// The best usable mode for `request`, or nothing when no mode is usable.
std::optional<Choice> choose_mode(const std::vector<Mode> &modes, const Request &request);

// Caps for the capsfilter right after v4l2src, in GStreamer's caps syntax:
// "video/x-raw,format=YUY2,width=640,height=480,framerate=30/1" or
// "image/jpeg,width=1280,height=720,framerate=30/1".
std::string source_caps(const Choice &choice);

// For a driver that gives a stepwise or continuous size range (sensors behind
// an ISP): the sizes to offer the choice, the range's ends and the common
// sizes on its grid.
struct SizeRange {
  int min_width, max_width, step_width;
  int min_height, max_height, step_height;
};
std::vector<std::pair<int, int>> sizes_in_range(const SizeRange &range);

}  // namespace portier::camera
