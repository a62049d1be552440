#include "v4l2_devices.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/videodev2.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <numeric>

namespace portier::camera {

// camera_modes.h spells the codes without the kernel header: they must agree.
static_assert(fourcc('Y', 'U', 'Y', 'V') == V4L2_PIX_FMT_YUYV);
static_assert(fourcc('Y', 'U', '1', '2') == V4L2_PIX_FMT_YUV420);
static_assert(fourcc('N', 'V', '1', '2') == V4L2_PIX_FMT_NV12);
static_assert(fourcc('M', 'J', 'P', 'G') == V4L2_PIX_FMT_MJPEG);
static_assert(fourcc('R', 'G', 'B', '3') == V4L2_PIX_FMT_RGB24);
static_assert(fourcc('G', 'R', 'E', 'Y') == V4L2_PIX_FMT_GREY);

const char *status_name(NodeStatus status) {
  switch (status) {
    case NodeStatus::Capture:
      return "capture";
    case NodeStatus::Missing:
      return "missing";
    case NodeStatus::NotDevice:
      return "not-device";
    case NodeStatus::CannotOpen:
      return "cannot-open";
    case NodeStatus::NotV4l2:
      return "not-v4l2";
    case NodeStatus::NotCapture:
      return "not-capture";
  }
  return "?";
}

NodeStatus classify(uint32_t capabilities, uint32_t device_caps, std::string *reason) {
  auto no = [&](const char *why) {
    if (reason) *reason = why;
    return NodeStatus::NotCapture;
  };
  // `capabilities` describes the whole physical device (all its nodes);
  // device_caps, when the driver fills it, this node alone: a UVC camera's
  // metadata node has VIDEO_CAPTURE in the first and not in the second.
  const uint32_t caps = (capabilities & V4L2_CAP_DEVICE_CAPS) ? device_caps : capabilities;
  const uint32_t capture = V4L2_CAP_VIDEO_CAPTURE | V4L2_CAP_VIDEO_CAPTURE_MPLANE;
  const uint32_t output = V4L2_CAP_VIDEO_OUTPUT | V4L2_CAP_VIDEO_OUTPUT_MPLANE;
  // Older codec drivers say capture + output instead of M2M.
  if ((caps & (V4L2_CAP_VIDEO_M2M | V4L2_CAP_VIDEO_M2M_MPLANE)) ||
      ((caps & capture) && (caps & output)))
    return no("a memory-to-memory device (a codec or converter), not a camera");
  if (caps & capture) {
    if (reason) reason->clear();
    return NodeStatus::Capture;
  }
  if (caps & V4L2_CAP_META_CAPTURE)
    return no("a metadata node, not video (the camera's video is on another /dev/video node)");
  if (caps & output) return no("a video output device, not a camera");
  return no("a V4L2 device without video capture");
}

std::optional<size_t> choose_device(const std::vector<Node> &nodes) {
  std::optional<size_t> unlisted;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const Node &n = nodes[i];
    if (n.status != NodeStatus::Capture) continue;
    if (n.modes.empty()) {
      if (!unlisted) unlisted = i;
      continue;
    }
    for (const Mode &m : n.modes)
      if (format_info(m.fourcc).kind != FormatKind::Unusable) return i;
  }
  return unlisted;
}

std::string describe(const Node &node) {
  if (node.status == NodeStatus::Capture)
    return node.card.empty() ? node.path : node.path + " (" + node.card + ")";
  return node.path + ": " + node.reason;
}

int video_node_number(const std::string &name) {
  constexpr const char prefix[] = "video";
  constexpr size_t n = sizeof prefix - 1;
  if (name.size() <= n || name.compare(0, n, prefix) != 0 || name.size() > n + 6) return -1;
  int v = 0;
  for (size_t i = n; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    v = v * 10 + (name[i] - '0');
  }
  return v;
}

Fraction rate_from_interval(uint32_t num, uint32_t den) {
  if (num == 0 || den == 0) return {};
  // fps = den / num
  const uint64_t g = std::gcd(static_cast<uint64_t>(num), static_cast<uint64_t>(den));
  const uint64_t rn = den / g, rd = num / g;
  if ((rd == 1 || rd == 1001) && rn <= INT_MAX) return {static_cast<int>(rn), static_cast<int>(rd)};
  // Drivers give 30 fps as 333333/10000000 s and the like; v4l2src lists the
  // simplified rate, so ask for that. 1e-4 keeps 29.97 apart from 30.
  const double fps = static_cast<double>(rn) / static_cast<double>(rd);
  const double whole = std::round(fps);
  if (whole >= 1 && std::fabs(fps - whole) < 1e-4 * whole && whole <= INT_MAX)
    return {static_cast<int>(whole), 1};
  const double ntsc = std::round(fps * 1001 / 1000);
  if (ntsc >= 1 && std::fabs(fps - ntsc * 1000 / 1001) < 1e-4 * fps && ntsc * 1000 <= INT_MAX)
    return {static_cast<int>(ntsc * 1000), 1001};
  if (rn <= INT_MAX && rd <= INT_MAX) return {static_cast<int>(rn), static_cast<int>(rd)};
  return {static_cast<int>(std::lround(fps * 1000)), 1000};
}

namespace {

int xioctl(int fd, unsigned long request, void *arg) {
  int r;
  do r = ioctl(fd, request, arg);
  while (r < 0 && errno == EINTR);
  return r;
}

// The rates of one format at one size.
void add_rates(int fd, Mode &mode) {
  v4l2_frmivalenum iv{};
  iv.pixel_format = mode.fourcc;
  iv.width = static_cast<uint32_t>(mode.width);
  iv.height = static_cast<uint32_t>(mode.height);
  for (iv.index = 0; xioctl(fd, VIDIOC_ENUM_FRAMEINTERVALS, &iv) == 0; ++iv.index) {
    if (iv.type == V4L2_FRMIVAL_TYPE_DISCRETE) {
      const Fraction r = rate_from_interval(iv.discrete.numerator, iv.discrete.denominator);
      if (r.known()) mode.rates.push_back(r);
      continue;
    }
    // the longest interval is the lowest rate
    const Fraction lo = rate_from_interval(iv.stepwise.max.numerator, iv.stepwise.max.denominator);
    const Fraction hi = rate_from_interval(iv.stepwise.min.numerator, iv.stepwise.min.denominator);
    if (lo.known() && hi.known()) {
      mode.rates = {lo, hi};
      mode.rate_range = true;
    }
    break;
  }
}

std::vector<Mode> enumerate_modes(int fd, uint32_t buf_type) {
  std::vector<Mode> modes;
  v4l2_fmtdesc fmt{};
  fmt.type = buf_type;
  // bounded: a broken driver must not keep us here
  for (fmt.index = 0; fmt.index < 64 && xioctl(fd, VIDIOC_ENUM_FMT, &fmt) == 0; ++fmt.index) {
    v4l2_frmsizeenum fs{};
    fs.pixel_format = fmt.pixelformat;
    std::vector<std::pair<int, int>> sizes;
    for (fs.index = 0; fs.index < 256 && xioctl(fd, VIDIOC_ENUM_FRAMESIZES, &fs) == 0; ++fs.index) {
      if (fs.type == V4L2_FRMSIZE_TYPE_DISCRETE) {
        sizes.emplace_back(fs.discrete.width, fs.discrete.height);
        continue;
      }
      const auto &s = fs.stepwise;
      sizes = sizes_in_range({static_cast<int>(s.min_width), static_cast<int>(s.max_width),
                              static_cast<int>(s.step_width), static_cast<int>(s.min_height),
                              static_cast<int>(s.max_height), static_cast<int>(s.step_height)});
      break;
    }
    for (const auto &[w, h] : sizes) {
      Mode m;
      m.fourcc = fmt.pixelformat;
      m.width = w;
      m.height = h;
      add_rates(fd, m);
      modes.push_back(std::move(m));
    }
  }
  return modes;
}

std::string errno_text(int err) {
  std::string s = std::strerror(err);
  if (err == EACCES || err == EPERM) s += " (is the user in the group that owns it, e.g. video?)";
  return s;
}

}  // namespace

Node probe_node(const std::string &path) {
  Node node;
  node.path = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    node.status = err == ENOENT || err == ENOTDIR ? NodeStatus::Missing : NodeStatus::CannotOpen;
    node.reason = err == ENOENT ? "no such device" : errno_text(err);
    return node;
  }
  if (!S_ISCHR(st.st_mode)) {
    node.status = NodeStatus::NotDevice;
    node.reason = S_ISREG(st.st_mode)   ? "a regular file, not a V4L2 device"
                  : S_ISDIR(st.st_mode) ? "a directory, not a V4L2 device"
                                        : "not a character device, so not a V4L2 device";
    return node;
  }
  // O_NONBLOCK: a node held by another program must not hang the state change.
  const int fd = ::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    node.status = NodeStatus::CannotOpen;
    node.reason = "cannot open: " + errno_text(errno);
    return node;
  }
  v4l2_capability cap{};
  if (xioctl(fd, VIDIOC_QUERYCAP, &cap) != 0) {
    node.status = NodeStatus::NotV4l2;
    node.reason = std::string("not a V4L2 device (VIDIOC_QUERYCAP: ") + std::strerror(errno) + ")";
    ::close(fd);
    return node;
  }
  node.card.assign(reinterpret_cast<const char *>(cap.card),
                   strnlen(reinterpret_cast<const char *>(cap.card), sizeof cap.card));
  node.status = classify(cap.capabilities, cap.device_caps, &node.reason);
  if (node.status == NodeStatus::Capture) {
    const uint32_t caps =
        (cap.capabilities & V4L2_CAP_DEVICE_CAPS) ? cap.device_caps : cap.capabilities;
    node.modes =
        enumerate_modes(fd, (caps & V4L2_CAP_VIDEO_CAPTURE) ? V4L2_BUF_TYPE_VIDEO_CAPTURE
                                                            : V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE);
  }
  ::close(fd);
  return node;
}

std::vector<std::string> list_video_nodes(const std::string &dir) {
  std::vector<std::pair<int, std::string>> found;
  if (DIR *d = ::opendir(dir.c_str())) {
    while (const dirent *e = ::readdir(d)) {
      const int n = video_node_number(e->d_name);
      if (n >= 0) found.emplace_back(n, e->d_name);
    }
    ::closedir(d);
  }
  std::sort(found.begin(), found.end());
  std::vector<std::string> paths;
  for (const auto &[n, name] : found) paths.push_back(dir + "/" + name);
  return paths;
}

}  // namespace portier::camera
