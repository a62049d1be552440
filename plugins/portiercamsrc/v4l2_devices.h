// The V4L2 side of portiercamsrc: which /dev/video* node is a camera, what it
// can give, and, when a configured path is no camera, a reason a person can act on.
//
// One USB camera makes two nodes (video and metadata), a board's codec makes
// memory-to-memory nodes, an ISP makes several: only a node whose device
// capabilities say "video capture" (single- or multi-planar) and not "output"
// is a camera. The decisions (classify, choose_device, describe) are plain
// functions of what the driver reported, so unit tests give them made-up
// devices; probe_node() and list_video_nodes() are the thin part that asks
// the kernel (stat, open, VIDIOC_QUERYCAP, VIDIOC_ENUM_*).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "camera_modes.h"

namespace portier::camera {

enum class NodeStatus {
  Capture,     // a camera
  Missing,     // no such path
  NotDevice,   // a regular file, a directory, ...
  CannotOpen,  // exists, but open() failed (permissions, busy, unplugged)
  NotV4l2,     // a character device that does not answer VIDIOC_QUERYCAP
  NotCapture,  // a V4L2 node that is no camera (metadata, codec, output)
};
const char *status_name(NodeStatus status);

struct Node {
  std::string path;
  NodeStatus status = NodeStatus::Missing;
  std::string reason;  // why it is no camera, for logs and errors; empty for a camera
  std::string card;    // the driver's name for the device ("HD Webcam C270")
  std::vector<Mode> modes;
};

// What VIDIOC_QUERYCAP's capabilities and device_caps say about one node.
// `reason` (may be null) gets the why when the node is no camera.
NodeStatus classify(uint32_t capabilities, uint32_t device_caps, std::string *reason);

// The camera to use among `nodes` (in /dev order): the first camera with a
// mode portiercamsrc can use, else the first camera whose driver listed no
// modes at all (v4l2src may still negotiate); nothing when there is none.
std::optional<size_t> choose_device(const std::vector<Node> &nodes);

// One line for logs: "/dev/video0 (HD Webcam C270)" or "/dev/null: not a V4L2 device (...)".
std::string describe(const Node &node);

// 10 for "video10", -1 for a name that is not videoN.
int video_node_number(const std::string &name);

// A frame interval (seconds, as the driver gives it) as a frame rate; a rate
// within 0.1% of a whole number (or of N*1000/1001) is snapped to it, so
// "333333/10000000" asks for 30/1 as v4l2src lists it.
Fraction rate_from_interval(uint32_t num, uint32_t den);

// Asks the kernel about `path`: never throws, never blocks on a busy device.
Node probe_node(const std::string &path);

// The videoN entries of `dir`, sorted by N ("video2" before "video10").
std::vector<std::string> list_video_nodes(const std::string &dir = "/dev");

}  // namespace portier::camera
