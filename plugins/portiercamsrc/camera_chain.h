// The chain portiercamsrc builds behind its source, apart from the element so
// a test can put a stand-in in front of the camera half (no camera exists on
// a build machine) and still run the element's own chain:
//
//   camera ! <mode caps> ! (jpegdec)  ...  videorate ! videoscale ! videoconvert ! <output caps>
//   \_________ camera_head() ________/      \___________________ output_tail() ______________/
//
// Each function appends to `chain` in link order; an element that cannot be
// made is appended as null and named in `missing` (the first one only), so
// the caller reports one clear error and releases the rest.
#pragma once

#include <gst/gst.h>

#include <optional>
#include <string>
#include <vector>

#include "camera_modes.h"

namespace portier::camera {

// gst_element_factory_make(), or null with "factory (Debian package)" in `missing`.
GstElement *make_element(const char *factory, const char *name, std::string *missing);

// `camera` (v4l2src, or a stand-in), a capsfilter for the chosen mode (any
// raw video when the driver listed none) and jpegdec for an MJPEG mode.
void camera_head(std::vector<GstElement *> &chain, GstElement *camera,
                 const std::optional<Choice> &mode, std::string *missing);

// videorate ! videoscale ! videoconvert ! capsfilter: `format` (I420 or NV12)
// at the request's size and rate, square pixels.
void output_tail(std::vector<GstElement *> &chain, const Request &request, const char *format,
                 std::string *missing);

// The caps output_tail() fixes.
std::string output_caps(const Request &request, const char *format);

// Adds `chain` to `bin` and links it in order. False with `error` set when a
// link fails (the elements stay in the bin, for the caller to empty).
bool add_and_link(GstBin *bin, const std::vector<GstElement *> &chain, std::string *error);

// Drops elements that were never added to a bin.
void release(std::vector<GstElement *> &chain);

}  // namespace portier::camera
