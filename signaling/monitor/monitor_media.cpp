#include "monitor/monitor_media.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>

#include "common/ascii.h"
#include "common/audio_codecs.h"
#include "common/log.h"
#include "media/gst_util.h"

namespace portier::monitor {
namespace {

bool is_h264(const std::string &codec) { return ascii::iequals(codec, "H264"); }

// A bin named after what it is, so rtpbin's pads and the logs can find it.
GstElement *make_bin(const std::string &desc, const char *name, std::string *error) {
  GstElement *bin = parse_bin(desc, name, error);
  if (bin) gst_element_set_name(bin, name);
  return bin;
}

}  // namespace

MonitorMedia::MonitorMedia(MonitorMediaSettings settings, Callbacks callbacks)
    : settings_(std::move(settings)),
      callbacks_(std::move(callbacks)),
      ports_(settings_.address, settings_.port_min, settings_.port_max, "RTP"),
      alive_(std::make_shared<MonitorMedia *>(this)) {}

MonitorMedia::~MonitorMedia() {
  alive_.reset();
  close();
  if (last_frame_) gst_sample_unref(last_frame_);
}

bool MonitorMedia::open(std::string *error) {
  if (video_.port) return true;
  auto video = ports_.take(error);
  auto audio = video ? ports_.take(error) : std::nullopt;
  if (!video || !audio) {
    if (video) ports_.give_back(*video);
    return false;
  }
  video_ = *video;
  audio_ = *audio;
  // New keys for every call (RFC 3711 §9.1: a key stream is never reused).
  if (settings_.media_encryption == "srtp" &&
      (!sdp::make_offer_keys(&audio_keys_) || !sdp::make_offer_keys(&video_keys_))) {
    *error = "no random bytes for SRTP keys";
    close();
    return false;
  }
  return true;
}

sdp::LocalMedia MonitorMedia::local(bool early) const {
  sdp::LocalMedia m;
  m.address = settings_.address;
  if (settings_.audio) {
    sdp::LocalStream audio;
    audio.type = "audio";
    audio.port = audio_.port;
    for (const audio::AudioCodec *c :
         audio::usable_audio_codecs(settings_.audio_codecs, have_element))
      audio.codecs.push_back({c->name, c->clock_rate, c->channels, c->pt, c->fmtp});
    audio.telephone_event = true;
    // While it rings the monitor only listens (and watches); it talks once answered.
    audio.direction = early ? "recvonly" : "sendrecv";
    audio.crypto = audio_keys_;
    audio.srtp_mandatory = settings_.media_encryption_mandatory;
    audio.rtcp_mux = !audio_keys_.empty();  // the SRTP elements split and send muxed RTCP
    m.streams.push_back(audio);
  }
  sdp::LocalStream video;
  video.type = "video";
  video.port = video_.port;
  video.direction = "recvonly";  // a monitor has no camera
  int pt = 96;
  for (const auto &c : settings_.video_codecs) {
    if (is_h264(c))
      video.codecs.push_back(
          {"H264", 90000, 1, pt++, "profile-level-id=42e01f;packetization-mode=1"});
    else
      video.codecs.push_back({"VP8", 90000, 1, pt++, ""});
  }
  video.crypto = video_keys_;
  video.srtp_mandatory = settings_.media_encryption_mandatory;
  video.rtcp_mux = !video_keys_.empty();
  m.streams.push_back(video);
  return m;
}

// The decoder for `codec`: the configured element, or the highest-ranked
// decoder installed for it (a hardware decoder outranks software when its
// plugin gives it the higher rank).
std::string MonitorMedia::pick_decoder(const std::string &codec) const {
  if (settings_.video_decoder != "auto") return settings_.video_decoder;
  // What our depayloader (and h264parse) hand on: this keeps out decoders of
  // other flavours of the codec, such as vp8alphadecodebin (VP8 with alpha).
  const char *caps_str = is_h264(codec) ? "video/x-h264,stream-format=byte-stream,alignment=au"
                                        : "video/x-vp8,codec-alpha=(boolean)false";
  GList *all = gst_element_factory_list_get_elements(
      GST_ELEMENT_FACTORY_TYPE_DECODER | GST_ELEMENT_FACTORY_TYPE_MEDIA_VIDEO, GST_RANK_MARGINAL);
  GstCaps *caps = gst_caps_from_string(caps_str);
  GList *fit = gst_element_factory_list_filter(all, caps, GST_PAD_SINK, FALSE);
  fit = g_list_sort(fit, gst_plugin_feature_rank_compare_func);
  std::string name;
  if (fit) name = GST_OBJECT_NAME(fit->data);
  gst_plugin_feature_list_free(fit);
  gst_plugin_feature_list_free(all);
  gst_caps_unref(caps);
  return name;
}

bool MonitorMedia::build(const std::vector<sdp::Agreed> &agreed, std::string *error) {
  const sdp::Agreed *video = nullptr, *audio = nullptr;
  for (const auto &a : agreed) {
    if (a.type == "video" && a.active && a.recv && !video) video = &a;
    if (a.type == "audio" && a.active && !audio) audio = &a;
  }
  if (!video && !audio) {
    *error = "no stream to receive or send";
    return false;
  }
  const std::string latency = std::to_string(settings_.jitter_ms);
  std::string desc = "rtpbin name=rtpbin rtp-profile=avpf latency=" + latency + " ";
  if (video) {
    video_codec_ = is_h264(video->codec.encoding) ? "H264" : "VP8";
    desc +=
        "udpsrc name=video_rtp_in caps=\"application/x-rtp,media=video,clock-rate=90000,"
        "encoding-name=" +
        video_codec_ + ",payload=" + std::to_string(video->codec.pt) +
        "\" ! rtpbin.recv_rtp_sink_1 "
        "udpsrc name=video_rtcp_in caps=application/x-rtcp ! rtpbin.recv_rtcp_sink_1 "
        "rtpbin.send_rtcp_src_1 ! multiudpsink name=video_rtcp sync=false async=false ";
  }
  const audio::AudioCodec *codec = audio ? audio::find_audio_codec(audio->codec.encoding) : nullptr;
  if (audio && !codec) {
    *error = "audio codec " + audio->codec.encoding + " has no pipeline";
    return false;
  }
  if (audio) {
    audio_codec_ = audio::audio_codec_label(*codec);
    audio_rate_ = codec->sample_rate;
    audio_packet_ms_ = audio::audio_packet_ms(*codec, settings_.ptime_ms);
    const int samples = codec->sample_rate / 1000 * audio_packet_ms_;
    std::string src;
    const std::string &mic = settings_.microphone;
    if (mic == "test")
      src = "audiotestsrc is-live=true wave=sine freq=440 volume=0.05 samplesperbuffer=" +
            std::to_string(samples);
    else if (mic == "none" || (mic == "auto" && !have_element("autoaudiosrc")))
      src = "audiotestsrc is-live=true wave=silence samplesperbuffer=" + std::to_string(samples);
    else if (mic == "auto")
      src = "autoaudiosrc";
    else
      src = "alsasrc device=" + mic;
    // The microphone at the codec's own rate: 48 kHz for opus, 16 kHz for G.722.
    desc += src + " ! audioconvert ! audioresample ! audio/x-raw,rate=" +
            std::to_string(codec->sample_rate) + ",channels=1 ! volume name=mic ! " +
            audio::audio_encoder_chain(*codec, audio_packet_ms_, "audio_pay") +
            " pt=" + std::to_string(audio->codec.pt) +
            " ! rtpbin.send_rtp_sink_0 "
            "rtpbin.send_rtp_src_0 ! multiudpsink name=audio_rtp sync=false async=false "
            "rtpbin.send_rtcp_src_0 ! multiudpsink name=audio_rtcp sync=false async=false "
            "udpsrc name=audio_rtp_in caps=\"" +
            audio::audio_rtp_caps(*codec, audio->codec.pt) +
            "\" ! rtpbin.recv_rtp_sink_0 "
            "udpsrc name=audio_rtcp_in caps=application/x-rtcp ! rtpbin.recv_rtcp_sink_0 ";
  }
  GstElement *p = parse_pipeline(desc, "call pipeline", error);
  if (!p) return false;
  pipeline_ = p;
  rtpbin_ = gst_bin_get_by_name(GST_BIN(p), "rtpbin");
  if (video) {
    // The decode chain waits in the pipeline; rtpbin's pad for the door's
    // SSRC is linked to it when the first packet arrives.
    video_decoder_ = pick_decoder(video_codec_);
    if (video_decoder_.empty()) {
      *error = "no " + video_codec_ + " decoder installed";
      return false;
    }
    const std::string depay = is_h264(video_codec_) ? "rtph264depay request-keyframe=true "
                                                      "wait-for-keyframe=true ! h264parse"
                                                    : "rtpvp8depay request-keyframe=true "
                                                      "wait-for-keyframe=true";
    const std::string frames =
        "videoconvert ! video/x-raw,format=RGB ! appsink name=frames sync=false max-buffers=1 "
        "drop=true";
    GstElement *display = callbacks_.display_sink ? callbacks_.display_sink() : nullptr;
    // With a display: a tee after the decoder and a queue (a thread) per
    // branch, as a tee needs: without one, the first sink's preroll would
    // wait for the second one's, which never gets its buffer. The queues are
    // leaky, so a slow screen drops frames instead of holding up the counter.
    video_bin_ = make_bin(depay + " ! " + video_decoder_ + " ! " +
                              (display ? "tee name=split ! queue leaky=downstream "
                                         "max-size-buffers=3 ! " +
                                             frames +
                                             " split. ! queue leaky=downstream "
                                             "max-size-buffers=3 ! videoconvert name=display_in"
                                       : frames),
                          "video_decode", error);
    if (!video_bin_) {
      if (display) gst_object_unref(gst_object_ref_sink(display));
      return false;
    }
    gst_bin_add(GST_BIN(p), video_bin_);
    gst_object_ref(video_bin_);
    if (display) {
      // The parser ghosted the display branch's open end as the bin's "src":
      // the display sink takes its place inside the bin.
      if (GstPad *ghost = gst_element_get_static_pad(video_bin_, "src")) {
        gst_element_remove_pad(video_bin_, ghost);
        gst_object_unref(ghost);
      }
      GstElement *in = gst_bin_get_by_name(GST_BIN(video_bin_), "display_in");
      gst_bin_add(GST_BIN(video_bin_), display);
      if (!gst_element_link(in, display)) PLOG_WARN("media: cannot link the display sink");
      gst_object_unref(in);
    }
    GstElement *sink = gst_bin_get_by_name(GST_BIN(video_bin_), "frames");
    GstAppSinkCallbacks cbs{};
    cbs.new_sample = [](GstAppSink *s, gpointer self) { return on_frame(GST_ELEMENT(s), self); };
    gst_app_sink_set_callbacks(GST_APP_SINK(sink), &cbs, this, nullptr);
    gst_object_unref(sink);
    GstElement *rtp_in = element_on_socket(p, "video_rtp_in", video_.rtp);
    GstPad *pad = gst_element_get_static_pad(rtp_in, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_video_in, this, nullptr);
    gst_object_unref(pad);
    gst_object_unref(rtp_in);
    GstElement *rtcp_in = element_on_socket(p, "video_rtcp_in", video_.rtcp);
    hear_only_peer(rtcp_in, &video_rtcp_peer_);
    gst_object_unref(rtcp_in);
    video_rtcp_sink_ = element_on_socket(p, "video_rtcp", video_.rtcp);
  }
  if (audio) {
    std::string sink;
    const std::string &spk = settings_.speaker;
    if (spk == "none" || (spk == "auto" && !have_element("autoaudiosink")))
      sink = "fakesink sync=false async=false";
    else if (spk == "auto")
      sink = "autoaudiosink";
    else
      sink = "alsasink device=" + spk;
    speaker_ =
        make_bin(audio::audio_decoder_chain(*codec) + " ! audioconvert ! audioresample ! " + sink,
                 "speaker", error);
    if (!speaker_) return false;
    gst_bin_add(GST_BIN(p), speaker_);
    gst_object_ref(speaker_);
    audio_rtp_sink_ = element_on_socket(p, "audio_rtp", audio_.rtp);
    audio_rtcp_sink_ = element_on_socket(p, "audio_rtcp", audio_.rtcp);
    GstElement *rtcp_in = element_on_socket(p, "audio_rtcp_in", audio_.rtcp);
    hear_only_peer(rtcp_in, &audio_rtcp_peer_);
    gst_object_unref(rtcp_in);
    GstElement *rtp_in = element_on_socket(p, "audio_rtp_in", audio_.rtp);
    GstPad *pad = gst_element_get_static_pad(rtp_in, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_audio_in, this, nullptr);
    gst_object_unref(pad);
    gst_object_unref(rtp_in);
    GstElement *pay = gst_bin_get_by_name(GST_BIN(p), "audio_pay");
    pad = gst_element_get_static_pad(pay, "src");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_audio_out, this, nullptr);
    gst_object_unref(pad);
    gst_object_unref(pay);
    mic_volume_ = gst_bin_get_by_name(GST_BIN(p), "mic");
    g_object_set(mic_volume_, "mute", mic_on_ ? FALSE : TRUE, nullptr);
    audio_pt_ = audio->codec.pt;
  }
  if (settings_.media_encryption == "srtp" &&
      ((audio && !audio_srtp_.insert(p, rtpbin_, 0, audio_.rtp, nullptr, error)) ||
       (video && !video_srtp_.insert(p, rtpbin_, 1, video_.rtp, nullptr, error))))
    return false;
  g_signal_connect(rtpbin_, "pad-added", G_CALLBACK(on_pad_added), this);
  GstBus *bus = gst_pipeline_get_bus(GST_PIPELINE(p));
  bus_watch_ = gst_bus_add_watch(bus, on_bus, this);
  gst_object_unref(bus);
  if (gst_element_set_state(p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    *error = "the call pipeline does not start";
    return false;
  }
  PLOG_INFO("media: video %s (%s)%s%s", video ? video_codec_.c_str() : "none",
            video ? video_decoder_.c_str() : "-", audio ? ", audio " : "",
            audio ? audio_codec_.c_str() : "");
  return true;
}

void MonitorMedia::on_pad_added(GstElement *, GstPad *pad, gpointer data) {
  auto *self = static_cast<MonitorMedia *>(data);
  gchar *name = gst_pad_get_name(pad);
  GstElement *target = nullptr;
  if (g_str_has_prefix(name, "recv_rtp_src_1_")) target = self->video_bin_;
  if (g_str_has_prefix(name, "recv_rtp_src_0_")) target = self->speaker_;
  g_free(name);
  if (!target) return;
  if (!link_replacing(pad, target))
    PLOG_WARN("media: cannot link the door's %s stream (caps?)",
              target == self->video_bin_ ? "video" : "audio");
}

GstPadProbeReturn MonitorMedia::on_video_in(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *self = static_cast<MonitorMedia *>(data);
  // Only the peer the SDP named (the relay) puts pictures on our screen.
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  // Muxed RTCP (RFC 5761) is heard as RTCP is, and takes no RTP latch.
  if (is_muxed_rtcp(buf))
    return from_peer(buf, self->video_rtcp_peer_) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
  if (!from_peer(buf, self->video_rtp_peer_)) return GST_PAD_PROBE_DROP;
  if (self->video_received_++ == 0)
    post_to_main(self->alive_, [](MonitorMedia *m) {
      if (m->callbacks_.first_video_rtp) m->callbacks_.first_video_rtp();
    });
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn MonitorMedia::on_audio_in(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *self = static_cast<MonitorMedia *>(data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  // Muxed RTCP (RFC 5761) is heard as RTCP is, and takes no RTP latch; it
  // goes on to srtpdec, which hands it to rtpbin's RTCP input.
  if (is_muxed_rtcp(buf))
    return from_peer(buf, self->audio_rtcp_peer_) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
  if (!from_peer(buf, self->audio_rtp_peer_)) return GST_PAD_PROBE_DROP;
  guint8 head[2];
  if (gst_buffer_extract(buf, 0, head, 2) != 2) return GST_PAD_PROBE_DROP;
  // Only voice counts (and reaches the decoder): not the door's events, if any.
  if ((head[1] & 0x7f) != self->audio_pt_.load()) return GST_PAD_PROBE_DROP;
  self->audio_received_++;
  return GST_PAD_PROBE_OK;
}

// Every packet of our voice passes here: dropped until the call is answered,
// replaced by a telephone-event packet while a key is sent.
GstPadProbeReturn MonitorMedia::on_audio_out(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *self = static_cast<MonitorMedia *>(data);
  if (!self->sending_audio_.load()) return GST_PAD_PROBE_DROP;
  self->audio_sent_++;
  std::lock_guard<std::mutex> guard(self->lock_);
  if (!self->dtmf_.busy()) return GST_PAD_PROBE_OK;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  std::vector<uint8_t> bytes(gst_buffer_get_size(buf));
  gst_buffer_extract(buf, 0, bytes.data(), bytes.size());
  if (!self->dtmf_.rewrite(bytes)) return GST_PAD_PROBE_OK;
  GstBuffer *event = gst_buffer_new_allocate(nullptr, bytes.size(), nullptr);
  gst_buffer_fill(event, 0, bytes.data(), bytes.size());
  gst_buffer_copy_into(event, buf, GST_BUFFER_COPY_TIMESTAMPS, 0, -1);
  gst_buffer_unref(buf);
  GST_PAD_PROBE_INFO_DATA(info) = event;
  return GST_PAD_PROBE_OK;
}

GstFlowReturn MonitorMedia::on_frame(GstElement *appsink, gpointer data) {
  auto *self = static_cast<MonitorMedia *>(data);
  GstSample *sample = gst_app_sink_pull_sample(GST_APP_SINK(appsink));
  if (!sample) return GST_FLOW_OK;
  if (self->frames_++ == 0) {
    GstVideoInfo vi;
    if (gst_video_info_from_caps(&vi, gst_sample_get_caps(sample))) {
      self->width_ = GST_VIDEO_INFO_WIDTH(&vi);
      self->height_ = GST_VIDEO_INFO_HEIGHT(&vi);
    }
    post_to_main(self->alive_, [](MonitorMedia *m) {
      if (m->callbacks_.first_frame) m->callbacks_.first_frame(m->width_, m->height_);
    });
  }
  std::lock_guard<std::mutex> guard(self->lock_);
  if (self->last_frame_) gst_sample_unref(self->last_frame_);
  self->last_frame_ = sample;
  return GST_FLOW_OK;
}

gboolean MonitorMedia::on_bus(GstBus *, GstMessage *msg, gpointer) {
  const std::string problem = bus_problem(msg);
  if (!problem.empty()) PLOG_WARN("media: %s", problem.c_str());
  return G_SOURCE_CONTINUE;
}

bool MonitorMedia::apply(const std::vector<sdp::Agreed> &agreed, std::string *error) {
  if (!video_.port) {
    *error = "no media open";
    return false;
  }
  if (!pipeline_ && !build(agreed, error)) {
    close();
    return false;
  }
  for (const sdp::Agreed &a : agreed) {
    PLOG_INFO("media: %s %s%s%s %s pt %d <-> %s:%u", a.type.c_str(), a.active ? "" : "inactive ",
              a.send ? "send" : "", a.recv ? "recv" : "", a.codec.encoding.c_str(), a.codec.pt,
              a.remote_address.c_str(), a.remote_rtp);
    if (a.type == "video") {
      video_srtp_.set(a.srtp);
      video_srtp_.set_mux(a.active && a.rtcp_mux, a.remote_address, a.remote_rtp);
      video_rtp_peer_.expect(a.active ? a.remote_address : "");
      video_rtcp_peer_.expect(a.active ? a.remote_address : "");
      // Receiver reports and keyframe requests go to the sender's RTCP port.
      set_destination(video_rtcp_sink_, a.active ? a.remote_address : "", a.remote_rtcp,
                      &video_rtcp_dest_);
      keep_open(a, video_);
    } else if (a.type == "audio" && audio_rtp_sink_) {
      audio_srtp_.set(a.srtp);
      audio_srtp_.set_mux(a.active && a.rtcp_mux, a.remote_address, a.remote_rtp);
      audio_rtp_peer_.expect(a.active ? a.remote_address : "");
      audio_rtcp_peer_.expect(a.active ? a.remote_address : "");
      const bool send = a.active && a.send;
      set_destination(audio_rtp_sink_, send ? a.remote_address : "", a.remote_rtp, &audio_dest_);
      set_destination(audio_rtcp_sink_, a.active ? a.remote_address : "", a.remote_rtcp,
                      &audio_rtcp_dest_);
      keep_open(a, audio_);
      telephone_event_pt_ = a.telephone_event_pt;
      if (a.telephone_event_pt >= 0) {
        TelephoneEventOptions o;
        o.payload_type = a.telephone_event_pt;
        // Events count in the audio's clock (RFC 4733 §2.1): 960 a 20 ms
        // packet at opus's 48 kHz, 160 at 8 kHz.
        const int ms = audio_packet_ms_ > 0 ? audio_packet_ms_ : settings_.ptime_ms;
        o.packet_duration = audio::rtp_units(a.codec.clock_rate, ms);
        // About 100 ms of tone, three end packets, then a gap of about 60 ms.
        o.tone_packets = std::max(1, 100 / ms);
        o.gap_packets = std::max(2, 60 / ms);
        std::lock_guard<std::mutex> guard(lock_);
        if (!dtmf_.busy()) dtmf_ = TelephoneEventWriter(o);
      }
      sending_audio_ = send;
    }
  }
  return true;
}

bool MonitorMedia::request_keyframe() {
  if (!video_bin_ || video_received_.load() == 0) return false;
  // Pushed upstream from the decode chain's sink: rtpssrcdemux names the
  // SSRC, rtpsession sends a PLI for it (all-headers FALSE: PLI, not FIR).
  GstPad *sinkpad = gst_element_get_static_pad(video_bin_, "sink");
  const bool ok = gst_pad_push_event(
      sinkpad, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, FALSE, 0));
  gst_object_unref(sinkpad);
  return ok;
}

void MonitorMedia::set_mic(bool on) {
  mic_on_ = on;
  // Muted, the monitor keeps sending RTP with silence, as Linphone does: the
  // stream, its timing and the relay's latching stay as they are.
  if (mic_volume_) g_object_set(mic_volume_, "mute", on ? FALSE : TRUE, nullptr);
}

bool MonitorMedia::send_dtmf(const std::string &keys, std::string *error) {
  if (!sending_audio_.load()) {
    *error = "no audio is being sent (not answered, or audio off)";
    return false;
  }
  if (telephone_event_pt_ < 0) {
    *error = "the door agreed no telephone-event payload type (RFC 4733)";
    return false;
  }
  std::lock_guard<std::mutex> guard(lock_);
  if (!dtmf_.queue(keys)) {
    *error = "not a DTMF key sequence";
    return false;
  }
  return true;
}

uint64_t MonitorMedia::dtmf_keys_sent() const {
  std::lock_guard<std::mutex> guard(lock_);
  return dtmf_.keys_sent();
}

bool MonitorMedia::snapshot_png(const std::string &path, std::string *error) const {
  GstSample *sample = nullptr;
  {
    std::lock_guard<std::mutex> guard(lock_);
    if (last_frame_) sample = gst_sample_ref(last_frame_);
  }
  if (!sample) {
    *error = "no frame decoded yet";
    return false;
  }
  // A one-frame pipeline: the frame in, PNG out, done at EOS.
  GstElement *p = parse_pipeline(
      "appsrc name=src format=time ! videoconvert ! pngenc snapshot=false ! filesink name=out",
      "snapshot pipeline", error);
  if (!p) {
    gst_sample_unref(sample);
    return false;
  }
  GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
  GstElement *out = gst_bin_get_by_name(GST_BIN(p), "out");
  g_object_set(out, "location", path.c_str(), nullptr);
  g_object_set(src, "caps", gst_sample_get_caps(sample), nullptr);
  gst_element_set_state(p, GST_STATE_PLAYING);
  GstBuffer *buf = gst_buffer_copy(gst_sample_get_buffer(sample));
  GST_BUFFER_PTS(buf) = 0;
  GST_BUFFER_DTS(buf) = GST_CLOCK_TIME_NONE;
  gst_app_src_push_buffer(GST_APP_SRC(src), buf);
  gst_app_src_end_of_stream(GST_APP_SRC(src));
  GstBus *bus = gst_pipeline_get_bus(GST_PIPELINE(p));
  GstMessage *msg = gst_bus_timed_pop_filtered(
      bus, 5 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  bool ok = msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS;
  if (!ok) *error = msg ? bus_problem(msg) : "the PNG encoder did not finish within 5 s";
  if (msg) gst_message_unref(msg);
  gst_object_unref(bus);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(src);
  gst_object_unref(out);
  gst_object_unref(p);
  gst_sample_unref(sample);
  return ok;
}

void MonitorMedia::keep_open(const sdp::Agreed &a, const PortPool::Pair &ports) {
  // RFC 6263: from each socket the peer sends to, towards where it sends
  // from (the SDP's address: the relay's public one). Muxed RTCP shares the
  // RTP socket's mapping.
  const std::string host = a.active ? a.remote_address : "";
  nat_.target(ports.rtp, host, a.remote_rtp);
  nat_.target(ports.rtcp, a.rtcp_mux ? "" : host, a.remote_rtcp);
}

void MonitorMedia::close() {
  nat_.stop();
  if (bus_watch_) g_source_remove(bus_watch_), bus_watch_ = 0;
  if (pipeline_) {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    audio_srtp_.reset();
    video_srtp_.reset();
    for (GstElement **e : {&rtpbin_, &video_bin_, &speaker_, &video_rtcp_sink_, &audio_rtp_sink_,
                           &audio_rtcp_sink_, &mic_volume_})
      if (*e) gst_object_unref(*e), *e = nullptr;
    gst_object_unref(pipeline_);
    pipeline_ = nullptr;
  }
  // The last frame stays: what the monitor showed can be saved after the call.
  if (audio_.port) ports_.give_back(audio_);
  if (video_.port) ports_.give_back(video_);
  audio_ = {};
  video_ = {};
  audio_keys_.clear(), video_keys_.clear();
  sending_audio_ = false;
  video_rtcp_dest_.clear(), audio_dest_.clear(), audio_rtcp_dest_.clear();
}

}  // namespace portier::monitor
