// The RTSP preview for debugging and installation: rtsp://ADDRESS:PORT/PATH
// (rtsps:// with a certificate) serves the live camera, the same encoded stream
// the calls get (one camera, one encoder; see door_camera.h). Off by default
// ([rtsp] enabled) and on loopback unless the installer says so; only the users
// of [rtsp] users-file see it, by digest (never basic: that would send the
// password itself, in the clear without TLS).
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

  // TLS 1.2 at least for rtsps://, which GLib cannot be told per connection:
  // Debian 12's glib-networking (GnuTLS) serves TLS 1.0 and 1.1 by default. Sets
  // the GnuTLS backend's priority string unless the environment already has one,
  // so call it before any other thread runs.
  static void set_tls_floor();

  // Listens on the default main context. False (and *error) when the port is taken
  // or the TLS certificate cannot be loaded.
  bool start(std::string *error);
  std::string url() const;
  int viewers() const { return viewers_; }

 private:
  static void on_media_configure(GstRTSPMediaFactory *, GstRTSPMedia *media, gpointer self);
  static void on_media_unprepared(GstRTSPMedia *media, gpointer self);
  static GstPadProbeReturn on_keyframe_request(GstPad *, GstPadProbeInfo *info, gpointer self);
  bool set_up_auth(GstRTSPMediaFactory *factory, std::string *error);

  RtspSettings settings_;
  std::string codec_;
  DoorCamera &camera_;
  GstRTSPServer *server_ = nullptr;
  GSource *source_ = nullptr;
  int viewers_ = 0;
};

}  // namespace portier::door
