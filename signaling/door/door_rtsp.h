// The RTSP preview for debugging and installation: rtsp://ADDRESS:PORT/PATH
// serves the live camera, the same encoded stream the calls get (one camera,
// one encoder; see door_camera.h). Off by default ([rtsp] enabled): it is
// not authenticated, so it listens on loopback unless the installer says so.
#pragma once

#include <gst/rtsp-server/rtsp-server.h>

#include <string>

#include "door/door_camera.h"
#include "door/door_config.h"

namespace portier::door {

class DoorRtsp {
 public:
  DoorRtsp(RtspSettings settings, const std::string &video_codec, DoorCamera &camera)
      : settings_(std::move(settings)), codec_(video_codec), camera_(camera) {}
  ~DoorRtsp();
  DoorRtsp(const DoorRtsp &) = delete;
  DoorRtsp &operator=(const DoorRtsp &) = delete;

  // Listens on the default main context. False (and *error) when the port is taken.
  bool start(std::string *error);
  std::string url() const;
  int viewers() const { return viewers_; }

 private:
  static void on_media_configure(GstRTSPMediaFactory *, GstRTSPMedia *media, gpointer self);
  static void on_media_unprepared(GstRTSPMedia *media, gpointer self);
  static GstPadProbeReturn on_keyframe_request(GstPad *, GstPadProbeInfo *info, gpointer self);

  RtspSettings settings_;
  std::string codec_;
  DoorCamera &camera_;
  GstRTSPServer *server_ = nullptr;
  GSource *source_ = nullptr;
  int viewers_ = 0;
};

}  // namespace portier::door
