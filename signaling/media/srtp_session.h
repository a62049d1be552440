// SRTP and SRTCP (RFC 3711) for one RTP session of a call's rtpbin: srtpenc
// between rtpbin's send pads and the sockets, srtpdec between the sockets and
// its receive pads. Keyed by SDES (sip/sdp/sdes.h) through set(); until then,
// and for a peer without SRTP, both pass packets through unchanged.
//
// Why not rtpbin's request-rtp-encoder/-decoder signals: the door's and the
// monitor's pipelines come from gst_parse_launch, which requests rtpbin's pads
// (and so emits those signals) before a handler can be connected. insert()
// puts the same elements in the same places afterwards, before the pipeline
// plays.
//
// srtpdec drops what fails authentication or replay checks (RFC 3711 §3.3,
// §3.3.2) before rtpbin sees it; dropped() counts those packets.
#pragma once

#include <gio/gio.h>
#include <gst/gst.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/rtp_source_latch.h"
#include "sip/sdp/offer_answer.h"

namespace portier {

// RFC 5761 §4: RTCP packet types 192-223 read as RTP payload types 64-95 (the
// second byte without the marker bit), which RTP must not use.
inline bool is_muxed_rtcp(GstBuffer *buf) {
  guint8 head[2];
  return gst_buffer_extract(buf, 0, head, 2) == 2 && (head[0] >> 6) == 2 &&
         (head[1] & 0x7f) >= 64 && (head[1] & 0x7f) <= 95;
}

class SrtpSession {
 public:
  SrtpSession() = default;
  ~SrtpSession() { reset(); }
  SrtpSession(const SrtpSession &) = delete;
  SrtpSession &operator=(const SrtpSession &) = delete;

  // Wraps rtpbin's session `id` in `pipeline`: every one of its pads that is
  // linked (send_rtp_src_ID, send_rtcp_src_ID, recv_rtp_sink_ID,
  // recv_rtcp_sink_ID) gets srtpenc or srtpdec in between. A receive pad's
  // upstream element with a "caps" property (udpsrc) is told the packets are
  // application/x-srtp(x-srtcp). Call before the new elements' state is set.
  //
  // rtcp-mux (RFC 5761): with `rtp_socket`, RTCP that comes in on the RTP
  // socket is split off by payload type (§4) into rtpbin's RTCP input
  // (srtpdec does it for SRTCP; we do it for plain RTCP); a session that
  // receives no RTP gets a udpsrc on that socket, heard through `latch`.
  // Once set_mux() turns it on, rtpbin's RTCP leaves through the RTP socket.
  bool insert(GstElement *pipeline, GstElement *rtpbin, unsigned id, GSocket *rtp_socket,
              RtpSourceLatch *latch, std::string *error);
  // RTCP to host:port (the peer's RTP port) through the RTP socket, or not.
  void set_mux(bool on, const std::string &host, uint16_t port);
  bool muxed() const { return mux_.load(); }
  // The new elements to the pipeline's state (when it already plays).
  void sync_state();
  // The agreed keys, at once (a re-INVITE's or another branch's new key too);
  // unset: plain RTP.
  void set(const std::optional<sdp::Agreed::Srtp> &srtp);
  // srtpdec's RTP output (decrypted packets), with a reference the caller
  // owns; null without one.
  GstPad *decrypted_rtp_pad() const;
  // Packets srtpdec refused (authentication, replay, no key).
  uint64_t dropped() const;
  // The suite's name, "" when plain.
  std::string suite() const;
  // Drops the element references (the pipeline owns the elements).
  void reset();

 private:
  struct Entry;  // one sink pad of srtpenc or srtpdec: where its packets go when plain
  static GstCaps *on_request_key(GstElement *dec, guint ssrc, gpointer self);
  static GstPadProbeReturn on_enter(GstPad *, GstPadProbeInfo *info, gpointer entry);
  static GstPadProbeReturn count(GstPad *, GstPadProbeInfo *info, gpointer counter);
  static GstPadProbeReturn on_rtcp_out(GstPad *, GstPadProbeInfo *info, gpointer self);
  void watch(GstPad *sink, GstPad *src, GstPad *rtcp_src, bool decoder);

  GstElement *enc_ = nullptr, *dec_ = nullptr;
  gulong key_handler_ = 0;
  mutable std::mutex lock_;  // keys_: read by srtpdec's streaming thread
  std::optional<sdp::Agreed::Srtp> keys_;
  bool configured_ = false;  // set() was called: keys_ unset then means plain
  // What the elements do with a packet: nothing before the SDP is settled,
  // pass it by (plain RTP), or protect/check it. Plain packets go round the
  // elements: GStreamer 1.22's srtpenc fails on its first packet with no
  // cipher set, which stops the stream.
  enum Mode { drop, plain, srtp };
  std::atomic<int> mode_{drop};
  std::atomic<uint64_t> in_{0}, out_{0};
  std::vector<GstPad *> counted_;  // srtpdec's pads whose output out_ counts
  GSocket *rtp_socket_ = nullptr;  // ours: RTCP leaves by it when muxed
  std::atomic<bool> mux_{false};
  GSocketAddress *mux_dest_ = nullptr;  // under lock_
};

}  // namespace portier
