// The monitor's media for one call, on one rtpbin (RTCP, receiver reports and
// PLI keyframe requests the standard way):
//   video: RTP -> jitter buffer -> depayloader -> decoder -> videoconvert ->
//          appsink, which counts frames and keeps the last one for snapshots;
//          the window face adds a tee before videoconvert with a second
//          branch (leaky queue -> videoconvert -> its display sink, gtksink);
//   audio: microphone -> G.711 in ptime packets -> RTP (telephone-events take
//          the place of voice packets while a key is sent, RFC 4733), and
//          RTP -> decoder -> speaker.
// open() binds the RTP/RTCP sockets (their ports go into our SDP answer or
// offer); the first apply() builds the pipeline for the agreed codecs; a later
// apply() (the 200 after our 183) only changes who sends where. Each stream
// sends and receives on one socket (symmetric RTP, RFC 4961), which the
// proxy's relay latches onto.
//
// Runs on the GLib main loop; callbacks arrive there too.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/rtp_source_latch.h"
#include "media/nat_keepalive.h"
#include "media/port_pool.h"
#include "media/srtp_session.h"
#include "monitor/monitor_config.h"
#include "monitor/telephone_event_writer.h"
#include "sip/sdp/offer_answer.h"

namespace portier::monitor {

class MonitorMedia {
 public:
  struct Callbacks {
    std::function<void()> first_video_rtp;
    std::function<void(int width, int height)> first_frame;
    // Makes the element that shows the video (a floating ref, taken into the
    // pipeline), on the main loop when the call's pipeline is built; unset or
    // returning null: no display, only the frame counter (headless).
    std::function<GstElement *()> display_sink;
  };

  MonitorMedia(MonitorMediaSettings settings, Callbacks callbacks);
  ~MonitorMedia();
  MonitorMedia(const MonitorMedia &) = delete;
  MonitorMedia &operator=(const MonitorMedia &) = delete;

  bool open(std::string *error);
  // Our streams with the bound ports: audio (sendrecv, or recvonly while
  // `early`) and video (recvonly: a monitor has no camera). Its o= line is
  // the call's (sip::CallLeg).
  sdp::LocalMedia local(bool early) const;
  bool apply(const std::vector<sdp::Agreed> &agreed, std::string *error);

  // RTCP PLI for the door's video (an upstream GstForceKeyUnit that rtpsession
  // turns into a PLI, RFC 4585 §6.3.1). False when no video is received yet.
  bool request_keyframe();
  void set_mic(bool on);
  bool mic() const { return mic_on_; }
  // RFC 4733 events in the audio stream; false with *error when audio is not
  // sent or no telephone-event payload type was agreed.
  bool send_dtmf(const std::string &keys, std::string *error);
  // The last decoded frame as PNG.
  bool snapshot_png(const std::string &path, std::string *error) const;

  uint64_t frames_decoded() const { return frames_.load(); }
  uint64_t video_packets_received() const { return video_received_.load(); }
  uint64_t audio_packets_sent() const { return audio_sent_.load(); }
  uint64_t audio_packets_received() const { return audio_received_.load(); }
  uint64_t dtmf_keys_sent() const;
  const std::string &video_codec() const { return video_codec_; }
  const std::string &video_decoder() const { return video_decoder_; }
  const std::string &audio_codec() const { return audio_codec_; }
  int audio_rate() const { return audio_rate_; }
  bool audio_sending() const { return sending_audio_.load(); }
  // SRTP per stream: the suite agreed, "" for plain RTP (never the key).
  std::string audio_srtp() const { return audio_srtp_.suite(); }
  std::string video_srtp() const { return video_srtp_.suite(); }
  // Packets srtpdec refused (failed authentication or replay, RFC 3711 §3.3).
  uint64_t srtp_dropped() const { return audio_srtp_.dropped() + video_srtp_.dropped(); }
  // STUN keep-alives sent towards the peer this call (RFC 6263).
  uint64_t nat_keepalives() const { return nat_.sent(); }
  // RTCP on the RTP ports (RFC 5761), per stream.
  bool audio_rtcp_mux() const { return audio_srtp_.muxed(); }
  bool video_rtcp_mux() const { return video_srtp_.muxed(); }
  int width() const { return width_.load(); }
  int height() const { return height_.load(); }
  void close();

 private:
  bool build(const std::vector<sdp::Agreed> &agreed, std::string *error);
  void keep_open(const sdp::Agreed &a, const PortPool::Pair &ports);
  std::string pick_decoder(const std::string &codec) const;
  static void on_pad_added(GstElement *rtpbin, GstPad *pad, gpointer self);
  static GstPadProbeReturn on_video_in(GstPad *, GstPadProbeInfo *info, gpointer self);
  static GstPadProbeReturn on_audio_in(GstPad *, GstPadProbeInfo *info, gpointer self);
  static GstPadProbeReturn on_audio_out(GstPad *, GstPadProbeInfo *info, gpointer self);
  static GstFlowReturn on_frame(GstElement *appsink, gpointer self);
  static gboolean on_bus(GstBus *, GstMessage *msg, gpointer self);

  MonitorMediaSettings settings_;
  Callbacks callbacks_;
  PortPool ports_;
  PortPool::Pair audio_, video_;
  GstElement *pipeline_ = nullptr;
  GstElement *rtpbin_ = nullptr;
  GstElement *video_bin_ = nullptr, *speaker_ = nullptr;
  GstElement *video_rtcp_sink_ = nullptr;
  GstElement *audio_rtp_sink_ = nullptr, *audio_rtcp_sink_ = nullptr, *mic_volume_ = nullptr;
  std::string video_rtcp_dest_, audio_dest_, audio_rtcp_dest_;
  // Opens and keeps open our NAT's mappings towards the peer (a phone behind
  // a home router receiving early media sends nothing else).
  media::NatKeepalive nat_;
  guint bus_watch_ = 0;
  std::string video_codec_, video_decoder_, audio_codec_;  // audio_codec_: "opus/48000"
  int audio_rate_ = 0;                                     // the PCM rate of microphone and speaker
  int audio_packet_ms_ = 0;                                // what one audio packet holds
  bool mic_on_ = true;
  int telephone_event_pt_ = -1;

  // Touched by streaming threads.
  std::atomic<bool> sending_audio_{false};
  std::atomic<uint64_t> frames_{0}, video_received_{0}, audio_sent_{0}, audio_received_{0};
  // Who our udpsrcs hear: the peer the SDP names, latched on its first packet
  // (common/rtp_source_latch.h).
  RtpSourceLatch video_rtp_peer_, video_rtcp_peer_, audio_rtp_peer_, audio_rtcp_peer_;
  std::atomic<int> width_{0}, height_{0};
  std::atomic<int> audio_pt_{-1};
  mutable std::mutex lock_;  // guards last_frame_ and dtmf_
  GstSample *last_frame_ = nullptr;
  TelephoneEventWriter dtmf_;
  // Lives as long as this object; streaming threads post to the main loop
  // through it, and it is cut off when the object goes away.
  std::shared_ptr<MonitorMedia *> alive_;
  // SRTP (settings_.media_encryption): our keys for the call, one per suite
  // and stream (sdes.h), and srtpenc/srtpdec around rtpbin's sessions.
  std::vector<sdp::CryptoAttr> audio_keys_, video_keys_;
  SrtpSession audio_srtp_, video_srtp_;
};

}  // namespace portier::monitor
