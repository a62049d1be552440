// The door's media for one call: camera → encoder → RTP, microphone → RTP,
// RTP → speaker, over one rtpbin so RTCP (and the devices' PLI/FIR keyframe
// requests, RFC 4585 / RFC 5104) is handled the standard way.
//
// open() binds the RTP/RTCP sockets (their ports go into our SDP) and starts
// the camera and the video encoder at once, sending nowhere: by the time the
// first 183 arrives, frames are ready and only a keyframe is needed. apply()
// takes the offer/answer result and starts sending to (and receiving from) the
// peer; it may run again (the 200 after an early 183). Sending and receiving
// use the same socket per stream (symmetric RTP, RFC 4961), which a relay that
// latches onto our source address depends on.
//
// Runs on the GLib main loop; callbacks arrive there too.
#pragma once

#include <gio/gio.h>
#include <gst/gst.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/audio_codecs.h"
#include "common/rtp_source_latch.h"
#include "door/door_camera.h"
#include "door/door_config.h"
#include "media/port_pool.h"
#include "media/srtp_session.h"
#include "sip/sdp/offer_answer.h"

namespace portier::door {

class DoorMedia {
 public:
  struct Callbacks {
    // An RFC 4733 telephone-event packet (its RTP timestamp, sequence number
    // and payload) from the peer.
    std::function<void(uint32_t ts, uint16_t seq, bool marker, const std::vector<uint8_t> &payload)>
        telephone_event;
    // The first video RTP packet went out to the peer.
    std::function<void()> first_video_sent;
  };

  DoorMedia(MediaSettings settings, DoorCamera &camera, Callbacks callbacks);
  ~DoorMedia();
  DoorMedia(const DoorMedia &) = delete;
  DoorMedia &operator=(const DoorMedia &) = delete;

  bool open(std::string *error);
  bool is_open() const { return pipeline_ != nullptr; }
  // Our streams (audio, video) with the bound ports, for an offer or answer
  // (its o= line is the call's: sip::CallLeg).
  sdp::LocalMedia local() const;
  // Sends and receives as agreed. False (and *error) when a stream cannot be set up.
  bool apply(const std::vector<sdp::Agreed> &agreed, std::string *error);
  // An immediate keyframe (a device joined, or asked by SIP INFO).
  void request_keyframe();
  void close();

  // What is in use, for logs and the control socket.
  std::string video_source() const { return camera_.source(); }
  std::string video_encoder() const { return camera_.encoder(); }
  uint64_t video_packets_sent() const { return video_sent_.load(); }
  // The peer's audio packets (the resident's voice, to the door's speaker).
  uint64_t audio_packets_received() const { return audio_received_.load(); }
  // RTP and RTCP packets dropped because they did not come from the peer the
  // SDP named (common/rtp_source_latch.h).
  uint64_t foreign_packets_dropped() const {
    return audio_rtp_peer_.dropped() + audio_rtcp_peer_.dropped() + video_rtcp_peer_.dropped();
  }
  std::string pipeline_state() const;
  // SRTP per stream: the suite agreed, "" for plain RTP (never the key).
  std::string audio_srtp() const { return audio_srtp_.suite(); }
  std::string video_srtp() const { return video_srtp_.suite(); }
  // Packets srtpdec refused (failed authentication or replay, RFC 3711 §3.3).
  uint64_t srtp_dropped() const { return audio_srtp_.dropped() + video_srtp_.dropped(); }
  // RTCP on the RTP ports (RFC 5761), per stream.
  bool audio_rtcp_mux() const { return audio_srtp_.muxed(); }
  bool video_rtcp_mux() const { return video_srtp_.muxed(); }
  // The agreed audio codec ("opus/48000"; "" before one is) and the rate the
  // microphone, canceller and speaker run at.
  const std::string &audio_codec() const { return audio_codec_; }
  int audio_rate() const { return audio_rate_; }

 private:
  bool build_video(std::string *error);
  bool build_audio(const sdp::Agreed &a, std::string *error);
  bool build_audio_codec(const audio::AudioCodec &codec, int pt, std::string *error);
  GstElement *build_speaker(const audio::AudioCodec &codec, int generation,
                            const std::string &probe);
  static GstCaps *on_request_pt_map(GstElement *rtpbin, guint session, guint pt, gpointer self);
  static void on_pad_added(GstElement *rtpbin, GstPad *pad, gpointer self);
  static GstPadProbeReturn on_audio_in(GstPad *, GstPadProbeInfo *info, gpointer self);
  static GstPadProbeReturn on_audio_decrypted(GstPad *, GstPadProbeInfo *info, gpointer self);
  GstPadProbeReturn take_event(GstBuffer *buf);
  static GstPadProbeReturn on_video_out(GstPad *, GstPadProbeInfo *info, gpointer self);
  static GstPadProbeReturn on_keyframe_request(GstPad *, GstPadProbeInfo *info, gpointer self);
  static gboolean on_bus(GstBus *, GstMessage *msg, gpointer self);

  MediaSettings settings_;
  DoorCamera &camera_;
  int camera_id_ = 0;  // our place among the camera's consumers
  Callbacks callbacks_;
  GstElement *pipeline_ = nullptr;
  GstElement *rtpbin_ = nullptr;
  GstElement *video_pay_ = nullptr, *video_rtp_sink_ = nullptr, *video_rtcp_sink_ = nullptr;
  GstElement *video_in_ = nullptr;  // appsrc fed by the camera
  GstElement *audio_rtp_sink_ = nullptr, *audio_rtcp_sink_ = nullptr;
  bool audio_built_ = false;
  GstElement *audio_send_bin_ = nullptr;  // microphone -> canceller -> encoder
  std::string audio_codec_;
  int audio_rate_ = 0;
  int audio_pt_ = -1;
  int audio_generation_ = 0;  // names each codec's speaker path and canceller probe
  // What rtpbin's streaming threads read: the caps of each payload type
  // agreed in this call, and the speaker path the peer's audio goes to.
  std::mutex pt_lock_;
  std::map<int, std::string> pt_caps_;
  std::string speaker_name_;
  int telephone_event_pt_ = -1;
  std::atomic<int> te_pt_for_probe_{-1};
  std::atomic<int> audio_pt_for_probe_{-1};  // the voice on_audio_in lets through
  std::string video_dest_, video_rtcp_dest_, audio_dest_, audio_rtcp_dest_;
  PortPool ports_;  // the call's RTP/RTCP pairs, from [media] port-range
  PortPool::Pair audio_, video_;
  guint bus_watch_ = 0;
  std::atomic<uint64_t> video_sent_{0};
  std::atomic<uint64_t> audio_received_{0};
  // Who our udpsrcs hear: the peer the SDP names, latched on its first packet.
  RtpSourceLatch audio_rtp_peer_, audio_rtcp_peer_, video_rtcp_peer_;
  std::atomic<bool> first_sent_reported_{false};
  std::atomic<bool> sending_video_{false};
  // Lives as long as this object; streaming threads post to the main loop
  // through it, and it is cut off when the object goes away.
  std::shared_ptr<DoorMedia *> alive_;
  // SRTP (settings_.media_encryption): our keys for the call, one per suite
  // and stream (sdes.h), and srtpenc/srtpdec around rtpbin's sessions.
  bool srtp_ = false;
  std::vector<sdp::CryptoAttr> audio_keys_, video_keys_;
  SrtpSession audio_srtp_, video_srtp_;
};

}  // namespace portier::door
