#include "door/door_media.h"

#include <gst/app/gstappsink.h>
#include <gst/video/video.h>

#include <cstdio>
#include <memory>

#include "common/audio_codecs.h"
#include "common/log.h"
#include "media/gst_util.h"

namespace portier::door {
DoorMedia::DoorMedia(MediaSettings settings, DoorCamera &camera, Callbacks callbacks)
    : settings_(std::move(settings)),
      camera_(camera),
      callbacks_(std::move(callbacks)),
      ports_(settings_.address, settings_.port_min, settings_.port_max, "RTP"),
      alive_(std::make_shared<DoorMedia *>(this)) {}

DoorMedia::~DoorMedia() {
  alive_.reset();
  close();
}

bool DoorMedia::open(std::string *error) {
  if (pipeline_) return true;
  auto video = ports_.take(error);
  auto audio = video ? ports_.take(error) : std::nullopt;
  if (!video || !audio) {
    if (video) ports_.give_back(*video);
    close();
    return false;
  }
  video_ = *video;
  audio_ = *audio;
  // New keys for every call (RFC 3711 §9.1: a key stream is never reused).
  srtp_ = settings_.media_encryption == "srtp";
  if (srtp_ && (!sdp::make_offer_keys(&audio_keys_) || !sdp::make_offer_keys(&video_keys_))) {
    *error = "no random bytes for SRTP keys";
    close();
    return false;
  }
  if (!build_video(error)) {
    close();
    return false;
  }
  return true;
}

bool DoorMedia::build_video(std::string *error) {
  const bool h264 = settings_.video_codec == "h264";
  const std::string pay = h264 ? "rtph264pay config-interval=-1 aggregate-mode=zero-latency"
                               : "rtpvp8pay picture-id-mode=15-bit";
  // The camera's encoded frames come in through the appsrc (stamped with this
  // pipeline's clock on arrival); the payload type is set in apply() to the
  // one agreed. A bounded queue: a stalled call drops frames, the camera never waits.
  const std::string desc =
      "rtpbin name=rtpbin rtp-profile=avpf "
      "appsrc name=video_in is-live=true format=time do-timestamp=true max-bytes=4000000 "
      "block=false leaky-type=downstream ! " +
      pay +
      " name=video_pay pt=96 mtu=1200 ! rtpbin.send_rtp_sink_1 "
      "rtpbin.send_rtp_src_1 ! multiudpsink name=video_rtp sync=false async=false "
      "rtpbin.send_rtcp_src_1 ! multiudpsink name=video_rtcp sync=false async=false "
      "udpsrc name=video_rtcp_in caps=application/x-rtcp ! rtpbin.recv_rtcp_sink_1";
  GstElement *p = parse_pipeline(desc, "call pipeline", error);
  if (!p) return false;
  pipeline_ = p;
  rtpbin_ = gst_bin_get_by_name(GST_BIN(p), "rtpbin");
  video_in_ = gst_bin_get_by_name(GST_BIN(p), "video_in");
  video_pay_ = gst_bin_get_by_name(GST_BIN(p), "video_pay");
  video_rtp_sink_ = element_on_socket(p, "video_rtp", video_.rtp);
  video_rtcp_sink_ = element_on_socket(p, "video_rtcp", video_.rtcp);
  GstElement *rtcp_in = element_on_socket(p, "video_rtcp_in", video_.rtcp);
  hear_only_peer(rtcp_in, &video_rtcp_peer_);
  gst_object_unref(rtcp_in);
  if (srtp_ && !video_srtp_.insert(p, rtpbin_, 1, video_.rtp, &video_rtcp_peer_, error))
    return false;
  // Payloaders push a frame's packets as one buffer list (rtpvp8pay does).
  GstPad *pad = gst_element_get_static_pad(video_rtp_sink_, "sink");
  gst_pad_add_probe(
      pad, static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
      on_video_out, this, nullptr);
  gst_object_unref(pad);
  // A keyframe request from the peer (RTCP PLI/FIR turned into GstForceKeyUnit
  // by rtpsession) stops at the appsrc: the encoder is in the camera's pipeline.
  pad = gst_element_get_static_pad(video_in_, "src");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM, on_keyframe_request, this, nullptr);
  gst_object_unref(pad);
  g_signal_connect(rtpbin_, "pad-added", G_CALLBACK(on_pad_added), this);
  g_signal_connect(rtpbin_, "request-pt-map", G_CALLBACK(on_request_pt_map), this);
  GstBus *bus = gst_pipeline_get_bus(GST_PIPELINE(p));
  bus_watch_ = gst_bus_add_watch(bus, on_bus, this);
  gst_object_unref(bus);
  // Wait for PLAYING: the audio branch joins this pipeline later, and a bin
  // added while the pipeline is still on its way up can leave it stuck short
  // of PLAYING. Live sources do not preroll, so this is quick.
  if (gst_element_set_state(p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE ||
      gst_element_get_state(p, nullptr, nullptr, 3 * GST_SECOND) == GST_STATE_CHANGE_FAILURE) {
    *error = "the call pipeline does not start";
    return false;
  }
  return camera_.add(GST_APP_SRC(video_in_), &camera_id_, error);
}

GstPadProbeReturn DoorMedia::on_keyframe_request(GstPad *, GstPadProbeInfo *info, gpointer data) {
  GstEvent *event = GST_PAD_PROBE_INFO_EVENT(info);
  if (!gst_video_event_is_force_key_unit(event)) return GST_PAD_PROBE_OK;
  auto *self = static_cast<DoorMedia *>(data);
  post_to_main(self->alive_, [](DoorMedia *m) { m->camera_.request_keyframe(); });
  return GST_PAD_PROBE_DROP;
}

bool DoorMedia::build_audio(const sdp::Agreed &a, std::string *error) {
  const audio::AudioCodec *codec = audio::find_audio_codec(a.codec.encoding);
  if (!codec) {
    *error = "audio codec " + a.codec.encoding + " has no pipeline";
    return false;
  }
  // The receive side: its decoder chain is linked when rtpbin sees the peer's SSRC.
  const std::string caps = audio::audio_rtp_caps(*codec, a.codec.pt);
  GstElement *rtp_in = gst_element_factory_make("udpsrc", "audio_rtp_in");
  GstElement *rtcp_in = gst_element_factory_make("udpsrc", "audio_rtcp_in");
  audio_rtp_sink_ = gst_element_factory_make("multiudpsink", "audio_rtp");
  audio_rtcp_sink_ = gst_element_factory_make("multiudpsink", "audio_rtcp");
  GstCaps *c = gst_caps_from_string(caps.c_str());
  g_object_set(rtp_in, "socket", audio_.rtp, "close-socket", FALSE, "caps", c, nullptr);
  gst_caps_unref(c);
  GstCaps *rtcp_caps = gst_caps_new_empty_simple("application/x-rtcp");
  g_object_set(rtcp_in, "socket", audio_.rtcp, "close-socket", FALSE, "caps", rtcp_caps, nullptr);
  gst_caps_unref(rtcp_caps);
  for (GstElement *s : {audio_rtp_sink_, audio_rtcp_sink_})
    g_object_set(s, "sync", FALSE, "async", FALSE, "close-socket", FALSE, nullptr);
  g_object_set(audio_rtp_sink_, "socket", audio_.rtp, nullptr);
  g_object_set(audio_rtcp_sink_, "socket", audio_.rtcp, nullptr);
  gst_object_ref(audio_rtp_sink_);
  gst_object_ref(audio_rtcp_sink_);
  gst_bin_add_many(GST_BIN(pipeline_), rtp_in, rtcp_in, audio_rtp_sink_, audio_rtcp_sink_, nullptr);
  telephone_event_pt_ = a.telephone_event_pt;
  te_pt_for_probe_ = a.telephone_event_pt;
  hear_only_peer(rtcp_in, &audio_rtcp_peer_);
  // on_audio_in checks the RTP packets' source itself: a probe's DROP is no
  // reason for GStreamer not to call the next probe on the pad.
  GstPad *pad = gst_element_get_static_pad(rtp_in, "src");
  gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, on_audio_in, this, nullptr);
  gst_object_unref(pad);
  // rtpbin makes send_rtp_src_0 once send_rtp_sink_0 is asked for; the send
  // chain (build_audio_codec) links to that pad, and a later one to it again.
  if (GstPad *send_sink = gst_element_request_pad_simple(rtpbin_, "send_rtp_sink_0"))
    gst_object_unref(send_sink);
  bool ok = gst_element_link_pads(rtpbin_, "send_rtp_src_0", audio_rtp_sink_, "sink") &&
            gst_element_link_pads(rtpbin_, "send_rtcp_src_0", audio_rtcp_sink_, "sink") &&
            gst_element_link_pads(rtp_in, "src", rtpbin_, "recv_rtp_sink_0") &&
            gst_element_link_pads(rtcp_in, "src", rtpbin_, "recv_rtcp_sink_0");
  if (!ok) {
    *error = "audio pipeline: cannot link to rtpbin";
    return false;
  }
  if (srtp_) {
    if (!audio_srtp_.insert(pipeline_, rtpbin_, 0, audio_.rtp, nullptr, error)) return false;
    // RFC 4733 events are read once decrypted and authenticated.
    GstPad *clear = audio_srtp_.decrypted_rtp_pad();
    gst_pad_add_probe(clear, GST_PAD_PROBE_TYPE_BUFFER, on_audio_decrypted, this, nullptr);
    gst_object_unref(clear);
  }
  // Downstream first, as a pipeline's own state change goes: the peer may be
  // sending already (it answered), and a udpsrc whose first push meets an
  // srtpdec not yet active is refused (flushing) and stops reading for good.
  for (GstElement *e : {audio_rtp_sink_, audio_rtcp_sink_}) gst_element_sync_state_with_parent(e);
  audio_srtp_.sync_state();
  for (GstElement *e : {rtp_in, rtcp_in}) gst_element_sync_state_with_parent(e);
  audio_built_ = true;
  return build_audio_codec(*codec, a.codec.pt, error);
}

// The codec's own part of the audio: microphone -> canceller -> encoder into
// rtpbin, and the speaker path out of it. A forked call can agree one codec
// in an early dialog (183) and another in the dialog that answers (200): the
// second time, a new send chain takes the old one's place and a new speaker
// path waits for the new payload type's pad (rtpbin gives each payload type
// its own); the old speaker path stays, idle, until the call ends, since
// taking it out from under rtpbin's streaming thread would stop that thread.
bool DoorMedia::build_audio_codec(const audio::AudioCodec &codec, int pt, std::string *error) {
  {
    std::lock_guard<std::mutex> guard(pt_lock_);
    pt_caps_[pt] = audio::audio_rtp_caps(codec, pt);
  }
  const int generation = ++audio_generation_;
  const std::string probe = "door_speaker_probe_" + std::to_string(generation);
  // Microphone, canceller and speaker all run at the codec's own rate (48 kHz
  // for opus, 16 kHz for G.722), so nothing is thrown away before the encoder
  // and the canceller's far end is at its near end's rate.
  const std::string raw = "audio/x-raw,rate=" + std::to_string(codec.sample_rate) + ",channels=1";
  // 20 ms packets (RFC 3551 §4.5: the default ptime), however big the source's buffers are.
  const std::string enc = audio::audio_encoder_chain(codec, 20, "audio_pay");
  std::string src;
  if (settings_.audio_source == "none" || !have_element("autoaudiosrc"))
    src = "audiotestsrc is-live=true wave=silence samplesperbuffer=" +
          std::to_string(codec.sample_rate / 50);
  else if (settings_.audio_source == "auto")
    src = "autoaudiosrc";
  else
    src = "alsasrc device=" + settings_.audio_source;
  const bool aec =
      settings_.echo_cancel && have_element("portieraec") && have_element("portieraecprobe");
  const std::string send = src + " ! audioconvert ! audioresample ! " + raw + " ! " +
                           (aec ? "portieraec probe-name=" + probe + " ! " : "") + enc +
                           " pt=" + std::to_string(pt) + " ! queue";
  GstElement *send_bin = parse_bin(send, "audio pipeline", error);
  if (!send_bin) return false;
  if (audio_send_bin_) {
    gst_element_set_state(audio_send_bin_, GST_STATE_NULL);
    gst_element_unlink(audio_send_bin_, rtpbin_);
    gst_bin_remove(GST_BIN(pipeline_), audio_send_bin_);
    gst_object_unref(audio_send_bin_);
    audio_send_bin_ = nullptr;
  }
  // The speaker first: the canceller in send_bin looks for its probe when it starts.
  if (GstElement *speaker = build_speaker(codec, generation, probe)) {
    gst_bin_add(GST_BIN(pipeline_), speaker);
    gst_element_sync_state_with_parent(speaker);
  }
  gst_bin_add(GST_BIN(pipeline_), send_bin);
  if (!gst_element_link_pads(send_bin, nullptr, rtpbin_, "send_rtp_sink_0")) {
    *error = "audio pipeline: cannot link the encoder to rtpbin";
    return false;
  }
  gst_element_sync_state_with_parent(send_bin);
  audio_send_bin_ = GST_ELEMENT(gst_object_ref(send_bin));
  audio_codec_ = audio::audio_codec_label(codec);
  audio_pt_ = pt;
  audio_pt_for_probe_ = pt;  // now that its caps and speaker path are in place
  audio_rate_ = codec.sample_rate;
  PLOG_INFO("media: audio %s pt %d at %d Hz%s%s", audio_codec_.c_str(), pt, audio_rate_,
            aec ? ", echo cancelled" : "",
            src.rfind("audiotestsrc", 0) == 0 ? ", no microphone (silence)" : "");
  return true;
}

// The caps of a payload type of ours: rtpbin asks when a packet of a type the
// udpsrc's caps do not name arrives (the codec changed with the 200).
GstCaps *DoorMedia::on_request_pt_map(GstElement *, guint session, guint pt, gpointer data) {
  auto *self = static_cast<DoorMedia *>(data);
  if (session != 0) return nullptr;
  std::lock_guard<std::mutex> guard(self->pt_lock_);
  auto it = self->pt_caps_.find(static_cast<int>(pt));
  return it == self->pt_caps_.end() ? nullptr : gst_caps_from_string(it->second.c_str());
}

// The speaker path exists from the start of the call (so the echo canceller
// finds its probe at once); rtpbin's pad for the peer's SSRC is linked to it
// when the first packet arrives, and a new SSRC (the peer restarted its
// stream) replaces the old one.
GstElement *DoorMedia::build_speaker(const audio::AudioCodec &codec, int generation,
                                     const std::string &probe) {
  const auto &m = settings_;
  std::string sink;
  if (m.audio_sink == "none" || !have_element("autoaudiosink"))
    sink = "fakesink sync=false async=false";
  else if (m.audio_sink == "auto")
    sink = "autoaudiosink";
  else
    sink = "alsasink device=" + m.audio_sink;
  const bool aec = m.echo_cancel && have_element("portieraecprobe") && have_element("portieraec");
  // The canceller's far end is taken at the codec's rate (the microphone's),
  // whatever rate the sound card then plays.
  const std::string desc =
      audio::audio_decoder_chain(codec) +
      " ! audioconvert ! audioresample ! audio/x-raw,rate=" + std::to_string(codec.sample_rate) +
      ",channels=1 ! " +
      (aec ? "portieraecprobe name=" + probe +
                 " ! audioconvert ! "
                 "audioresample ! "
           : std::string()) +
      sink;
  std::string error;
  GstElement *bin = parse_bin(desc, "speaker path", &error);
  if (!bin) {
    PLOG_WARN("media: %s", error.c_str());
    return nullptr;
  }
  const std::string name = "speaker_" + std::to_string(generation);
  gst_element_set_name(bin, name.c_str());
  std::lock_guard<std::mutex> guard(pt_lock_);
  speaker_name_ = name;
  return bin;
}

void DoorMedia::on_pad_added(GstElement *, GstPad *pad, gpointer data) {
  auto *self = static_cast<DoorMedia *>(data);
  gchar *name = gst_pad_get_name(pad);
  const bool audio = g_str_has_prefix(name, "recv_rtp_src_0_");
  g_free(name);
  if (!audio) return;  // the door shows no video
  std::string speaker_name;
  {
    std::lock_guard<std::mutex> guard(self->pt_lock_);
    speaker_name = self->speaker_name_;
  }
  GstElement *speaker = gst_bin_get_by_name(GST_BIN(self->pipeline_), speaker_name.c_str());
  if (!speaker) return;
  if (!link_replacing(pad, speaker)) PLOG_WARN("media: cannot play the peer's audio (caps?)");
  gst_object_unref(speaker);
}

// RFC 4733 events ride in the audio RTP session with their own payload type:
// they go to the door's action logic, not to the decoder.
GstPadProbeReturn DoorMedia::on_audio_in(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *self = static_cast<DoorMedia *>(data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  // Muxed RTCP (RFC 5761) is heard as RTCP is, and takes no RTP latch: a
  // ringing branch's receiver reports must not shut out the answerer's voice.
  if (is_muxed_rtcp(buf))
    return from_peer(buf, self->audio_rtcp_peer_) ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
  // Keys typed into the call are credited to the resident the proxy
  // asserted: only the peer the SDP named may send them.
  if (!from_peer(buf, self->audio_rtp_peer_)) return GST_PAD_PROBE_DROP;
  guint8 head[2];
  if (gst_buffer_extract(buf, 0, head, 2) != 2 || (head[0] >> 6) != 2) return GST_PAD_PROBE_DROP;
  const int pt = head[1] & 0x7f;
  const int te = self->te_pt_for_probe_.load();
  // With SRTP the payload is still ciphertext here (the header is not):
  // on_audio_decrypted reads the event once srtpdec has checked it.
  if (te >= 0 && pt == te) return self->srtp_ ? GST_PAD_PROBE_OK : self->take_event(buf);
  // Voice of the agreed payload type only. Another one (the codec an early
  // dialog agreed, or the answer's before the door has applied it) has no
  // decoder here, and a payload type rtpbin cannot map stops its stream.
  if (pt != self->audio_pt_for_probe_.load()) return GST_PAD_PROBE_DROP;
  self->audio_received_++;
  return GST_PAD_PROBE_OK;
}

GstPadProbeReturn DoorMedia::on_audio_decrypted(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *self = static_cast<DoorMedia *>(data);
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER(info);
  guint8 head[2];
  const int te = self->te_pt_for_probe_.load();
  if (te < 0 || gst_buffer_extract(buf, 0, head, 2) != 2 || (head[1] & 0x7f) != te)
    return GST_PAD_PROBE_OK;
  return self->take_event(buf);
}

// A telephone-event packet goes to the action logic and no further.
GstPadProbeReturn DoorMedia::take_event(GstBuffer *buf) {
  GstMapInfo map;
  if (!gst_buffer_map(buf, &map, GST_MAP_READ)) return GST_PAD_PROBE_DROP;
  const uint8_t *d = map.data;
  if (map.size >= 12) {
    const size_t csrc = d[0] & 0x0f;
    size_t off = 12 + 4 * csrc;
    size_t end = map.size;
    if ((d[0] & 0x10) && off + 4 <= end) off += 4 + 4 * ((size_t(d[off + 2]) << 8) | d[off + 3]);
    if ((d[0] & 0x20) && end > off) end -= std::min<size_t>(d[end - 1], end - off);
    if (off <= end) {
      std::vector<uint8_t> payload(d + off, d + end);
      const uint16_t seq = static_cast<uint16_t>(d[2] << 8 | d[3]);
      const uint32_t ts = uint32_t(d[4]) << 24 | uint32_t(d[5]) << 16 | uint32_t(d[6]) << 8 | d[7];
      const bool marker = (d[1] & 0x80) != 0;
      post_to_main(alive_, [ts, seq, marker, payload](DoorMedia *m) {
        if (m->callbacks_.telephone_event) m->callbacks_.telephone_event(ts, seq, marker, payload);
      });
    }
  }
  gst_buffer_unmap(buf, &map);
  return GST_PAD_PROBE_DROP;  // an event, not voice
}

GstPadProbeReturn DoorMedia::on_video_out(GstPad *, GstPadProbeInfo *info, gpointer data) {
  auto *self = static_cast<DoorMedia *>(data);
  if (!self->sending_video_.load()) return GST_PAD_PROBE_OK;
  if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST)
    self->video_sent_ += gst_buffer_list_length(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
  else
    self->video_sent_++;
  if (!self->first_sent_reported_.exchange(true))
    post_to_main(self->alive_, [](DoorMedia *m) {
      if (m->callbacks_.first_video_sent) m->callbacks_.first_video_sent();
    });
  return GST_PAD_PROBE_OK;
}

gboolean DoorMedia::on_bus(GstBus *, GstMessage *msg, gpointer) {
  const std::string problem = bus_problem(msg);
  if (!problem.empty()) PLOG_WARN("media: %s", problem.c_str());
  return G_SOURCE_CONTINUE;
}

sdp::LocalMedia DoorMedia::local() const {
  sdp::LocalMedia m;
  m.address = settings_.address;
  sdp::LocalStream audio;
  audio.type = "audio";
  audio.port = audio_.port;
  for (const audio::AudioCodec *c :
       audio::usable_audio_codecs(settings_.audio_codecs, have_element))
    audio.codecs.push_back({c->name, c->clock_rate, c->channels, c->pt, c->fmtp});
  audio.telephone_event = true;
  audio.crypto = audio_keys_;
  sdp::LocalStream video;
  video.type = "video";
  video.port = video_.port;
  video.direction = "sendonly";  // the door has no screen
  if (settings_.video_codec == "h264")
    video.codecs.push_back({"H264", 90000, 1, 96, "profile-level-id=42e01f;packetization-mode=1"});
  else
    video.codecs.push_back({"VP8", 90000, 1, 96, ""});
  video.crypto = video_keys_;
  for (sdp::LocalStream *s : {&audio, &video}) {
    s->srtp_mandatory = settings_.media_encryption_mandatory;
    s->rtcp_mux = srtp_;  // the SRTP elements split and send muxed RTCP
  }
  m.streams = {audio, video};
  return m;
}

bool DoorMedia::apply(const std::vector<sdp::Agreed> &agreed, std::string *error) {
  if (!pipeline_) {
    *error = "no media open";
    return false;
  }
  for (const sdp::Agreed &a : agreed) {
    PLOG_INFO("media: %s %s%s%s %s pt %d -> %s:%u", a.type.c_str(), a.active ? "" : "inactive ",
              a.send ? "send" : "", a.recv ? "recv" : "", a.codec.encoding.c_str(), a.codec.pt,
              a.remote_address.c_str(), a.remote_rtp);
    if (a.type == "video") {
      video_rtcp_peer_.expect(a.active ? a.remote_address : "");
      video_srtp_.set(a.srtp);
      video_srtp_.set_mux(a.active && a.rtcp_mux, a.remote_address, a.remote_rtp);
      if (a.active && a.send) {
        g_object_set(video_pay_, "pt", static_cast<guint>(a.codec.pt), nullptr);
        set_destination(video_rtp_sink_, a.remote_address, a.remote_rtp, &video_dest_);
        set_destination(video_rtcp_sink_, a.remote_address, a.remote_rtcp, &video_rtcp_dest_);
        if (!sending_video_.exchange(true)) {
          // What the camera has since its last keyframe goes out now; a fresh
          // keyframe follows at once.
          camera_.replay(camera_id_);
          request_keyframe();
        }
      } else {
        sending_video_ = false;
        set_destination(video_rtp_sink_, "", 0, &video_dest_);
      }
    } else if (a.type == "audio") {
      audio_rtp_peer_.expect(a.active ? a.remote_address : "");
      audio_rtcp_peer_.expect(a.active ? a.remote_address : "");
      if (!a.active) {
        if (audio_rtp_sink_) set_destination(audio_rtp_sink_, "", 0, &audio_dest_);
        continue;
      }
      if (!audio_built_) {
        if (!build_audio(a, error)) return false;
      } else if (a.codec.pt != audio_pt_) {
        const audio::AudioCodec *codec = audio::find_audio_codec(a.codec.encoding);
        if (!codec) {
          *error = "audio codec " + a.codec.encoding + " has no pipeline";
          return false;
        }
        // Each change leaves an idle speaker path behind: a peer's endless
        // re-INVITEs must not grow the pipeline without end.
        constexpr int kMaxAudioCodecs = 4;
        if (audio_generation_ >= kMaxAudioCodecs) {
          *error = "the audio codec changed too often in one call";
          return false;
        }
        PLOG_INFO("media: the answer changes the audio codec from %s to %s", audio_codec_.c_str(),
                  audio::audio_codec_label(*codec).c_str());
        if (!build_audio_codec(*codec, a.codec.pt, error)) return false;
      }
      audio_srtp_.set(a.srtp);
      audio_srtp_.set_mux(a.rtcp_mux, a.remote_address, a.remote_rtp);
      te_pt_for_probe_ = a.telephone_event_pt;
      set_destination(audio_rtp_sink_, a.send ? a.remote_address : "", a.send ? a.remote_rtp : 0,
                      &audio_dest_);
      set_destination(audio_rtcp_sink_, a.remote_address, a.remote_rtcp, &audio_rtcp_dest_);
    }
  }
  return true;
}

std::string DoorMedia::pipeline_state() const {
  if (!pipeline_) return "none";
  GstState cur = GST_STATE_NULL, pending = GST_STATE_VOID_PENDING;
  gst_element_get_state(pipeline_, &cur, &pending, 0);
  std::string s = gst_element_state_get_name(cur);
  if (pending != GST_STATE_VOID_PENDING)
    s += std::string("->") + gst_element_state_get_name(pending);
  return s;
}

void DoorMedia::request_keyframe() { camera_.request_keyframe(); }

void DoorMedia::close() {
  if (camera_id_) camera_.remove(camera_id_), camera_id_ = 0;
  if (bus_watch_) g_source_remove(bus_watch_), bus_watch_ = 0;
  if (pipeline_) {
    gst_element_set_state(pipeline_, GST_STATE_NULL);
    audio_srtp_.reset();
    video_srtp_.reset();
    for (GstElement **e : {&rtpbin_, &video_in_, &video_pay_, &video_rtp_sink_, &video_rtcp_sink_,
                           &audio_rtp_sink_, &audio_rtcp_sink_, &audio_send_bin_})
      if (*e) gst_object_unref(*e), *e = nullptr;
    gst_object_unref(pipeline_);
    pipeline_ = nullptr;
  }
  ports_.give_back(audio_);
  ports_.give_back(video_);
  audio_built_ = false;
  audio_keys_.clear(), video_keys_.clear();
  audio_codec_.clear();
  audio_rate_ = 0;
  audio_pt_ = -1;
  audio_pt_for_probe_ = -1;
  {
    std::lock_guard<std::mutex> guard(pt_lock_);
    pt_caps_.clear();
    speaker_name_.clear();
  }
  telephone_event_pt_ = -1;
  te_pt_for_probe_ = -1;
  video_dest_.clear(), video_rtcp_dest_.clear(), audio_dest_.clear(), audio_rtcp_dest_.clear();
  sending_video_ = false;
  first_sent_reported_ = false;
  video_sent_ = 0;
}

}  // namespace portier::door
