// SDP offer/answer (RFC 3264) for the endpoints: portier-door and
// portier-monitor. Plain C++: what we can send and receive goes in, SDP text and
// the agreed media (peer address, payload type, who sends) come out.
//
// Why not sofia-sip's soa: nua hands a peer's SDP to soa before the program sees
// it, and the Debian build of sofia-sip's SDP parser allocates without end on
// some malformed m= lines (see sdp_rewrite.cpp). Everything a peer sends goes
// through sdp::parse, which refuses those lines first, and nua runs with its
// media handling off (NUTAG_MEDIA_ENABLE(0)).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sip/sdp/sdes.h"

namespace portier::sdp {

// A codec we support, in preference order within a stream.
struct Codec {
  std::string encoding;  // "PCMU", "opus", "VP8", "H264" (matched case-insensitively)
  uint32_t clock_rate = 0;
  int channels = 1;  // audio only; written as /2 when not 1
  int pt = -1;       // the payload type we offer (a static one, or 96-127)
  std::string fmtp;  // written as a=fmtp when not empty
};

// One m= line of ours.
struct LocalStream {
  std::string type;   // "audio" or "video"
  uint16_t port = 0;  // our RTP port (RTCP on port + 1); 0 declines the stream
  std::vector<Codec> codecs;
  // audio: RFC 4733 events, one telephone-event per clock rate of `codecs`
  // (§2.1: events count in the audio's clock), telephone_event_pt for 8000
  // and the next free numbers above it for the others.
  bool telephone_event = false;
  int telephone_event_pt = 101;
  bool keyframe_feedback = true;       // video: a=rtcp-fb nack pli / ccm fir (RFC 4585, RFC 5104)
  std::string direction = "sendrecv";  // what we are willing to do
  // SRTP keyed by SDES (RFC 4568): our key for each suite we offer, in our
  // order of preference (one key per suite: their lengths differ); empty:
  // plain RTP only, a=crypto in an offer is ignored.
  std::vector<CryptoAttr> crypto{};
  // With keys: offer RTP/SAVP and refuse a peer without SRTP. Without it,
  // offer RTP/AVP(F) with a=crypto, as Linphone does for optional SRTP: a plain
  // peer ignores the lines, an SDES peer answers with one (best effort).
  bool srtp_mandatory = false;
  bool rtcp_mux = false;  // offer a=rtcp-mux and accept it (RFC 5761 §5.1.1)
};

struct LocalMedia {
  std::string address;  // IPv4 or IPv6 literal
  uint64_t session_id = 1;
  uint64_t version = 1;  // bump for every new offer or answer in a session (RFC 3264 §8)
  std::vector<LocalStream> streams;
};

// What one m= line came to.
struct Agreed {
  std::string type;
  bool active = false;  // both sides kept the stream and share a codec
  std::string remote_address;
  uint16_t remote_rtp = 0, remote_rtcp = 0;
  Codec codec;                  // the first codec in common; pt is the payload type both use for it
  int telephone_event_pt = -1;  // -1: none agreed; its clock is codec.clock_rate
  bool send = false;            // we send on this stream
  bool recv = false;            // we receive on it
  // SRTP as agreed (RFC 4568): our key (what we send under) and the peer's
  // (what we receive under), both of the one agreed suite. Unset: plain RTP.
  struct Srtp {
    CryptoKey send_key, recv_key;
  };
  std::optional<Srtp> srtp;
  bool rtcp_mux = false;  // RTCP on the RTP ports (RFC 5761); remote_rtcp == remote_rtp then
};

// The SDP text of our offer (CRLF lines).
std::string write_offer(const LocalMedia &local);

// A peer's answer to our offer (an 18x or a 2xx): what each of our streams
// does. Errors: unparsable SDP, a different number of m= lines (RFC 3264
// §6), a stream whose media type changed, an a=crypto that answers none of
// ours (RFC 4568 §7.1.2), a plain answer where SRTP is mandatory.
std::optional<std::vector<Agreed>> apply_answer(const LocalMedia &offered, std::string_view answer,
                                                std::string *error);

// A peer's offer (an INVITE we answer): our answer's text and the agreement.
// Every m= line is answered, refused ones with port 0 (RFC 3264 §6); payload
// types are the offerer's (§6.1). The codec is the first of the offer's list
// that we have (the offerer's preference, §5.1, as Linphone answers), taking
// on audio the first one whose clock rate has a telephone-event in the offer
// when there is any: the door's code must reach it. SRTP: the first a=crypto
// we can honour is answered with its tag and suite and our own key (RFC 4568
// §7.1.1). Errors: unparsable SDP, nothing usable (the error says why: for a
// 488's Warning).
struct Answered {
  std::string sdp;
  std::vector<Agreed> streams;
};
std::optional<Answered> answer_offer(std::string_view offer, const LocalMedia &local,
                                     std::string *error);

}  // namespace portier::sdp
