#include "door/door_camera.h"

#include <gst/app/gstappsink.h>
#include <gst/video/video.h>

#include "common/log.h"
#include "media/gst_util.h"

namespace portier::door {
namespace {

// Frames kept for a replay: 10 s at 30 fps; a longer GOP is dropped whole.
constexpr size_t kMaxGop = 300;

std::string raw_caps(const MediaSettings &m) {
  return "video/x-raw,format=I420,width=" + std::to_string(m.width) +
         ",height=" + std::to_string(m.height) + ",framerate=" + std::to_string(m.framerate) + "/1";
}

// The camera, or what stands in for one: portiercamsrc when the plugin is
// there (it falls back to a test pattern itself and says so), else a moving
// test pattern with a clock, so a viewer sees the stream is live.
std::string source_desc(const MediaSettings &m, std::string *name) {
  const std::string caps = raw_caps(m);
  if (m.camera != "none" && have_element("portiercamsrc")) {
    // A configured device that is missing falls back to the test pattern
    // (and says so in the log): the door still rings and talks.
    *name = "portiercamsrc";
    std::string d = "portiercamsrc name=camera fallback=true width=" + std::to_string(m.width) +
                    " height=" + std::to_string(m.height) +
                    " framerate=" + std::to_string(m.framerate) + "/1";
    if (m.camera != "auto") d += " device=" + m.camera;
    return d + " ! " + caps;
  }
  *name = "test pattern (videotestsrc)";
  const std::string overlay =
      have_element("clockoverlay") ? " ! clockoverlay text=\"portier door\"" : "";
  return "videotestsrc is-live=true pattern=ball ! " + caps + overlay + " ! videoconvert ! " + caps;
}

// Real time: no B-frames, the keyframe interval, the bitrate. portierenc picks
// the best encoder present (hardware first) and configures it; without it the
// software encoders get the same settings here.
std::string encoder_desc(const MediaSettings &m, std::string *name) {
  const int kf = m.keyframe_interval_s * m.framerate;
  const bool h264 = m.video_codec == "h264";
  const std::string parse = h264 ? " ! h264parse config-interval=-1 ! "
                                   "video/x-h264,stream-format=byte-stream,alignment=au"
                                 : "";
  if (have_element("portierenc")) {
    // It parses H.264 itself (SPS/PPS before every IDR); the caps pin what
    // the consumers' appsrc announce.
    *name = "portierenc";
    return std::string("portierenc name=encoder codec=") + (h264 ? "h264" : "vp8") +
           " bitrate=" + std::to_string(m.bitrate_kbps) +
           " keyframe-interval=" + std::to_string(kf) +
           (h264 ? " ! video/x-h264,stream-format=byte-stream,alignment=au" : "");
  }
  if (h264) {
    *name = "x264enc";
    return "x264enc name=encoder tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=" +
           std::to_string(kf) + " bitrate=" + std::to_string(m.bitrate_kbps) +
           " ! video/x-h264,profile=constrained-baseline" + parse;
  }
  *name = "vp8enc";
  return "vp8enc name=encoder deadline=1 cpu-used=8 end-usage=cbr lag-in-frames=0 "
         "error-resilient=partitions keyframe-max-dist=" +
         std::to_string(kf) + " target-bitrate=" + std::to_string(m.bitrate_kbps * 1000);
}

}  // namespace

DoorCamera::~DoorCamera() { stop(); }

bool DoorCamera::start(std::string *error) { return ensure_running(error); }

std::string DoorCamera::encoded_caps() const {
  return settings_.video_codec == "h264" ? "video/x-h264,stream-format=byte-stream,alignment=au"
                                         : "video/x-vp8";
}

bool DoorCamera::ensure_running(std::string *error) {
  if (pipeline_) return true;
  const std::string desc = source_desc(settings_, &source_) +
                           " ! tee name=raw raw. ! queue max-size-buffers=2 leaky=downstream ! " +
                           encoder_desc(settings_, &encoder_) +
                           " ! appsink name=encoded sync=false emit-signals=true max-buffers=30 "
                           "drop=true raw. ! queue max-size-buffers=1 leaky=downstream ! "
                           "appsink name=snapshot max-buffers=1 drop=true sync=false";
  GstElement *p = parse_pipeline(desc, "camera pipeline", error);
  if (!p) return false;
  pipeline_ = p;
  encoder_el_ = gst_bin_get_by_name(GST_BIN(p), "encoder");
  snap_sink_ = gst_bin_get_by_name(GST_BIN(p), "snapshot");
  GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "encoded");
  g_signal_connect(sink, "new-sample", G_CALLBACK(on_sample), this);
  gst_object_unref(sink);
  GstBus *bus = gst_pipeline_get_bus(GST_PIPELINE(p));
  bus_watch_ = gst_bus_add_watch(bus, on_bus, this);
  gst_object_unref(bus);
  if (gst_element_set_state(p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE ||
      gst_element_get_state(p, nullptr, nullptr, 3 * GST_SECOND) == GST_STATE_CHANGE_FAILURE) {
    *error = "the camera or the video encoder does not start";
    stop();
    return false;
  }
  if (encoder_ == "portierenc" && encoder_el_) {
    // Which encoder it picked (hardware first): the one a user asks about.
    gchar *chosen = nullptr;
    g_object_get(encoder_el_, "encoder", &chosen, nullptr);
    if (chosen) encoder_ = std::string("portierenc: ") + chosen;
    g_free(chosen);
  }
  PLOG_INFO("camera: %s, encoded by %s (%s %dx%d@%d, %d kbit/s, a keyframe every %d s)",
            source_.c_str(), encoder_.c_str(), settings_.video_codec.c_str(), settings_.width,
            settings_.height, settings_.framerate, settings_.bitrate_kbps,
            settings_.keyframe_interval_s);
  return true;
}

void DoorCamera::stop() {
  if (bus_watch_) g_source_remove(bus_watch_), bus_watch_ = 0;
  if (!pipeline_) return;
  gst_element_set_state(pipeline_, GST_STATE_NULL);
  {
    std::lock_guard<std::mutex> l(lock_);
    for (GstBuffer *b : gop_) gst_buffer_unref(b);
    gop_.clear();
  }
  if (encoder_el_) gst_object_unref(encoder_el_), encoder_el_ = nullptr;
  if (snap_sink_) gst_object_unref(snap_sink_), snap_sink_ = nullptr;
  gst_object_unref(pipeline_);
  pipeline_ = nullptr;
  PLOG_INFO("camera: stopped");
}

bool DoorCamera::add(GstAppSrc *src, int *id, std::string *error) {
  if (!ensure_running(error)) return false;
  GstCaps *caps = gst_caps_from_string(encoded_caps().c_str());
  gst_app_src_set_caps(src, caps);
  gst_caps_unref(caps);
  {
    std::lock_guard<std::mutex> l(lock_);
    *id = next_id_++;
    consumers_[*id] = Consumer{GST_APP_SRC(gst_object_ref(src)), false};
  }
  request_keyframe();  // the new viewer needs a picture now, not at the next interval
  return true;
}

void DoorCamera::remove(int id) {
  GstAppSrc *src = nullptr;
  {
    std::lock_guard<std::mutex> l(lock_);
    auto it = consumers_.find(id);
    if (it == consumers_.end()) return;
    src = it->second.src;
    consumers_.erase(it);
  }
  gst_object_unref(src);
  if (consumers() == 0 && !settings_.camera_always_on) stop();
}

void DoorCamera::replay(int id) {
  std::lock_guard<std::mutex> l(lock_);
  auto it = consumers_.find(id);
  if (it == consumers_.end() || gop_.empty()) return;
  for (GstBuffer *b : gop_)
    gst_app_src_push_buffer(
        it->second.src,
        gst_buffer_copy_region(
            b, static_cast<GstBufferCopyFlags>(GST_BUFFER_COPY_MEMORY | GST_BUFFER_COPY_FLAGS), 0,
            static_cast<gsize>(-1)));
  it->second.synced = true;
}

int DoorCamera::consumers() const {
  std::lock_guard<std::mutex> l(lock_);
  return static_cast<int>(consumers_.size());
}

void DoorCamera::request_keyframe() {
  if (!encoder_el_) return;
  // Upstream into the encoder from its source pad: every encoder (and
  // portierenc's bin) handles GstForceKeyUnit there.
  GstPad *pad = gst_element_get_static_pad(encoder_el_, "src");
  if (!pad) return;
  gst_pad_send_event(pad,
                     gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
  gst_object_unref(pad);
}

GstFlowReturn DoorCamera::on_sample(GstElement *sink, gpointer data) {
  auto *self = static_cast<DoorCamera *>(data);
  GstSample *sample = gst_app_sink_pull_sample(GST_APP_SINK(sink));
  if (!sample) return GST_FLOW_OK;
  GstBuffer *buf = gst_sample_get_buffer(sample);
  const bool key = !GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);
  {
    std::lock_guard<std::mutex> l(self->lock_);
    // The GOP cache: bounded, and useless without its keyframe.
    if (key || self->gop_.size() >= kMaxGop) {
      for (GstBuffer *b : self->gop_) gst_buffer_unref(b);
      self->gop_.clear();
    }
    if (key || !self->gop_.empty()) self->gop_.push_back(gst_buffer_ref(buf));
    for (auto &[id, c] : self->consumers_) {
      if (!c.synced && !key) continue;
      c.synced = true;
      // The consumer's pipeline stamps it with its own clock (do-timestamp).
      GstBuffer *out = gst_buffer_copy_region(
          buf, static_cast<GstBufferCopyFlags>(GST_BUFFER_COPY_MEMORY | GST_BUFFER_COPY_FLAGS), 0,
          static_cast<gsize>(-1));
      gst_app_src_push_buffer(c.src, out);
    }
  }
  gst_sample_unref(sample);
  return GST_FLOW_OK;
}

gboolean DoorCamera::on_bus(GstBus *, GstMessage *msg, gpointer) {
  const std::string problem = bus_problem(msg);
  if (!problem.empty()) PLOG_WARN("camera: %s", problem.c_str());
  return G_SOURCE_CONTINUE;
}

bool DoorCamera::snapshot_jpeg(std::string *jpeg, std::string *error) {
  if (!ensure_running(error)) return false;
  GstSample *sample = gst_app_sink_try_pull_sample(GST_APP_SINK(snap_sink_), GST_SECOND);
  if (!sample) {
    *error = "no frame from the camera yet";
    return false;
  }
  GstCaps *caps = gst_caps_new_empty_simple("image/jpeg");
  GError *gerr = nullptr;
  GstSample *out = gst_video_convert_sample(sample, caps, 2 * GST_SECOND, &gerr);
  gst_caps_unref(caps);
  gst_sample_unref(sample);
  if (!out) {
    *error = std::string("JPEG: ") + (gerr ? gerr->message : "conversion failed");
    g_clear_error(&gerr);
    return false;
  }
  GstBuffer *buf = gst_sample_get_buffer(out);
  GstMapInfo map;
  bool ok = gst_buffer_map(buf, &map, GST_MAP_READ);
  if (ok) {
    jpeg->assign(reinterpret_cast<const char *>(map.data), map.size);
    gst_buffer_unmap(buf, &map);
  } else {
    *error = "JPEG: cannot read the encoded frame";
  }
  gst_sample_unref(out);
  if (consumers() == 0 && !settings_.camera_always_on) stop();
  return ok;
}

bool DoorCamera::snapshot(const std::string &path, std::string *error) {
  std::string jpeg;
  if (!snapshot_jpeg(&jpeg, error)) return false;
  GError *ferr = nullptr;
  const bool ok =
      g_file_set_contents(path.c_str(), jpeg.data(), static_cast<gssize>(jpeg.size()), &ferr);
  if (!ok) *error = ferr ? ferr->message : "cannot write";
  g_clear_error(&ferr);
  return ok;
}

}  // namespace portier::door
