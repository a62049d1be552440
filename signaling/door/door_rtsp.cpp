#include "door/door_rtsp.h"

#include <gst/video/video.h>

#include "common/log.h"

namespace portier::door {

namespace {

// The one role the users' tokens carry and the one the media factory lets in:
// a client without it (no or wrong credentials) gets 401.
constexpr const char *kViewerRole = "viewer";

// glib-networking's GnuTLS backend reads it once, at its first TLS connection.
constexpr const char *kGnutlsPriorityVariable = "G_TLS_GNUTLS_PRIORITY";
constexpr const char *kTls12AndUp = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2";
bool tls_priority_ours = false;

// What the start-up line says of the TLS versions served.
std::string tls_versions() {
  const char *backend = G_OBJECT_TYPE_NAME(g_tls_backend_get_default());
  if (std::string(backend) != "GTlsBackendGnutls")
    return std::string("TLS versions as GLib's ") + backend +
           " allows: TLS 1.0 and 1.1 may be served";
  if (!tls_priority_ours)
    return std::string("TLS versions as ") + kGnutlsPriorityVariable + " in the environment says";
  return "TLS 1.2 and 1.3";
}

}  // namespace

DoorRtsp::~DoorRtsp() {
  if (source_) g_source_destroy(source_), g_source_unref(source_);
  if (server_) g_object_unref(server_);
}

std::string DoorRtsp::url() const {
  const bool v6 = settings_.address.find(':') != std::string::npos;
  return (settings_.tls() ? "rtsps://" : "rtsp://") +
         (v6 ? "[" + settings_.address + "]" : settings_.address) + ":" +
         std::to_string(settings_.port) + settings_.path;
}

void DoorRtsp::set_tls_floor() {
  tls_priority_ours = g_setenv(kGnutlsPriorityVariable, kTls12AndUp, FALSE) &&
                      std::string(g_getenv(kGnutlsPriorityVariable)) == kTls12AndUp;
}

bool DoorRtsp::start(std::string *error) {
  server_ = gst_rtsp_server_new();
  gst_rtsp_server_set_address(server_, settings_.address.c_str());
  gst_rtsp_server_set_service(server_, std::to_string(settings_.port).c_str());
  GstRTSPMediaFactory *factory = gst_rtsp_media_factory_new();
  const bool h264 = codec_ == "h264";
  // The camera pushes encoded frames into the appsrc; pay0 is the stream the
  // client sees. One media for every viewer (shared): one appsrc to feed.
  const std::string launch = std::string(
                                 "( appsrc name=camera is-live=true format=time do-timestamp=true "
                                 "max-bytes=4000000 block=false leaky-type=downstream ! ") +
                             (h264 ? "rtph264pay config-interval=-1 name=pay0 pt=96 )"
                                   : "rtpvp8pay picture-id-mode=15-bit name=pay0 pt=96 )");
  gst_rtsp_media_factory_set_launch(factory, launch.c_str());
  gst_rtsp_media_factory_set_shared(factory, TRUE);
  if (!set_up_auth(factory, error)) {
    g_object_unref(factory);
    return false;
  }
  g_signal_connect(factory, "media-configure", G_CALLBACK(on_media_configure), this);
  GstRTSPMountPoints *mounts = gst_rtsp_server_get_mount_points(server_);
  gst_rtsp_mount_points_add_factory(mounts, settings_.path.c_str(), factory);
  g_object_unref(mounts);
  GError *gerr = nullptr;
  source_ = gst_rtsp_server_create_source(server_, nullptr, &gerr);
  if (!source_) {
    *error = "RTSP preview on " + settings_.address + ":" + std::to_string(settings_.port) + ": " +
             (gerr ? gerr->message : "cannot listen");
    g_clear_error(&gerr);
    return false;
  }
  g_source_attach(source_, nullptr);
  PLOG_INFO("rtsp: preview at %s (digest authentication, %zu users from %s; %s)", url().c_str(),
            settings_.users.size(), settings_.users_file.c_str(),
            settings_.tls() ? ("encrypted: " + tls_versions()).c_str()
                            : "not encrypted: no TLS certificate");
  return true;
}

bool DoorRtsp::set_up_auth(GstRTSPMediaFactory *factory, std::string *error) {
  GstRTSPAuth *auth = gst_rtsp_auth_new();
  gst_rtsp_auth_set_supported_methods(auth, GST_RTSP_AUTH_DIGEST);
  gst_rtsp_auth_set_realm(auth, "portier-door");
  GstRTSPToken *token =
      gst_rtsp_token_new(GST_RTSP_TOKEN_MEDIA_FACTORY_ROLE, G_TYPE_STRING, kViewerRole, nullptr);
  for (const RtspUser &user : settings_.users)
    gst_rtsp_auth_add_digest(auth, user.name.c_str(), user.password.c_str(), token);
  gst_rtsp_token_unref(token);
  if (settings_.tls()) {
    // The pair was checked at start-up (check_tls_key_pair); this reads it again
    // in GLib's form.
    GError *gerr = nullptr;
    GTlsCertificate *cert = g_tls_certificate_new_from_files(
        settings_.tls_certificate.c_str(), settings_.tls_private_key.c_str(), &gerr);
    if (!cert) {
      *error = "RTSP preview: " + settings_.tls_certificate + ", " + settings_.tls_private_key +
               ": " + (gerr ? gerr->message : "cannot load the certificate");
      g_clear_error(&gerr);
      g_object_unref(auth);
      return false;
    }
    gst_rtsp_auth_set_tls_certificate(auth, cert);
    g_object_unref(cert);
  }
  gst_rtsp_media_factory_add_role(factory, kViewerRole, GST_RTSP_PERM_MEDIA_FACTORY_ACCESS,
                                  G_TYPE_BOOLEAN, TRUE, GST_RTSP_PERM_MEDIA_FACTORY_CONSTRUCT,
                                  G_TYPE_BOOLEAN, TRUE, nullptr);
  gst_rtsp_server_set_auth(server_, auth);
  g_object_unref(auth);
  return true;
}

void DoorRtsp::on_media_configure(GstRTSPMediaFactory *, GstRTSPMedia *media, gpointer data) {
  auto *self = static_cast<DoorRtsp *>(data);
  GstElement *top = gst_rtsp_media_get_element(media);
  GstElement *appsrc = gst_bin_get_by_name_recurse_up(GST_BIN(top), "camera");
  gst_object_unref(top);
  if (!appsrc) return;
  int id = 0;
  std::string error;
  if (!self->camera_.add(GST_APP_SRC(appsrc), &id, &error)) {
    PLOG_WARN("rtsp: %s", error.c_str());
  } else {
    g_object_set_data(G_OBJECT(media), "portier-camera-id", GINT_TO_POINTER(id));
    g_signal_connect(media, "unprepared", G_CALLBACK(on_media_unprepared), self);
    ++self->viewers_;
    PLOG_INFO("rtsp: a viewer connected");
  }
  GstPad *pad = gst_element_get_static_pad(appsrc, "src");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, on_keyframe_request, self, nullptr);
  gst_object_unref(pad);
  gst_object_unref(appsrc);
}

void DoorRtsp::on_media_unprepared(GstRTSPMedia *media, gpointer data) {
  auto *self = static_cast<DoorRtsp *>(data);
  const int id = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(media), "portier-camera-id"));
  if (id) self->camera_.remove(id), --self->viewers_;
  PLOG_INFO("rtsp: the preview's last viewer left");
}

// A viewer's keyframe request (rtspsrc sends RTCP PLI/FIR with AVPF) reaches
// the shared encoder.
GstPadProbeReturn DoorRtsp::on_keyframe_request(GstPad *, GstPadProbeInfo *info, gpointer data) {
  if (!gst_video_event_is_force_key_unit(GST_PAD_PROBE_INFO_EVENT(info))) return GST_PAD_PROBE_OK;
  static_cast<DoorRtsp *>(data)->camera_.request_keyframe();
  return GST_PAD_PROBE_DROP;
}

}  // namespace portier::door
