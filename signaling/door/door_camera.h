// The door's one camera and one video encoder, shared by everything that
// wants the picture: the call (its RTP pipeline), the RTSP preview, the
// snapshot at each ring. A V4L2 device opens once, and an embedded board
// encodes once however many watch.
//
// Its own pipeline: camera ! tee ! queue ! encoder ! appsink, plus a branch
// that keeps the latest raw frame for snapshots. Every encoded buffer is
// handed to each consumer's appsrc (a reference, no copy). A consumer that
// joins gets a keyframe at once; a keyframe request from any consumer (RTCP
// PLI through its payloader, SIP INFO) reaches the encoder.
//
// Runs while it has a consumer, or always (camera-always-on): then a press
// costs only a keyframe, not a camera and encoder start.
#pragma once

#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "door/door_config.h"

namespace portier::door {

class DoorCamera {
 public:
  explicit DoorCamera(MediaSettings settings) : settings_(std::move(settings)) {}
  ~DoorCamera();
  DoorCamera(const DoorCamera &) = delete;
  DoorCamera &operator=(const DoorCamera &) = delete;

  // Starts the pipeline now (camera-always-on); otherwise it starts with the
  // first consumer.
  bool start(std::string *error);

  // The encoded stream's caps (video/x-vp8 or H.264 byte-stream, one access
  // unit per buffer), for a consumer's appsrc.
  std::string encoded_caps() const;
  // Starts feeding `src`; returns an id for remove(). False on a camera error.
  bool add(GstAppSrc *src, int *id, std::string *error);
  void remove(int id);
  void request_keyframe();
  // Pushes the frames since the last keyframe to consumer `id` now: a call
  // that starts sending shows a picture at once instead of waiting for the
  // encoder's next keyframe.
  void replay(int id);
  // The latest frame as JPEG bytes, or written to `path`.
  bool snapshot_jpeg(std::string *jpeg, std::string *error);
  bool snapshot(const std::string &path, std::string *error);

  int consumers() const;
  std::string source() const { return source_; }
  std::string encoder() const { return encoder_; }
  bool running() const { return pipeline_ != nullptr; }

 private:
  bool ensure_running(std::string *error);
  void stop();
  static GstFlowReturn on_sample(GstElement *sink, gpointer self);
  static gboolean on_bus(GstBus *, GstMessage *msg, gpointer self);

  MediaSettings settings_;
  GstElement *pipeline_ = nullptr, *encoder_el_ = nullptr, *snap_sink_ = nullptr;
  guint bus_watch_ = 0;
  std::string source_, encoder_;
  mutable std::mutex lock_;  // consumers_, between the main loop and the streaming thread
  struct Consumer {
    GstAppSrc *src = nullptr;
    bool synced = false;  // has had its first keyframe; delta frames before it are useless
  };
  std::map<int, Consumer> consumers_;
  std::vector<GstBuffer *> gop_;  // the last keyframe and the frames after it (bounded)
  int next_id_ = 1;
  std::atomic<bool> keyframe_pending_{false};
};

}  // namespace portier::door
