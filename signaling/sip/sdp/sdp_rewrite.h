// The one SDP rewriter: the proxy's media relay puts itself into every call by
// pointing each m= line of an offer (once per fork branch) and of each 18x/2xx
// answer at its own UDP ports. Plain C++ over sofia-sip's SDP parser and printer;
// no network, no GStreamer, so unit tests drive it with golden SDP files.
//
// The input comes from the network: every function here checks what it reads,
// never crashes on garbage, and says in one line what was wrong. Lines that
// sofia-sip would drop silently (unknown line types, a blank line in the middle)
// are errors rather than silent losses.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portier::sdp {

// One RTP payload type of an m= line, from a=rtpmap or, for the static payload
// types of RFC 3551 §6 (0 = PCMU/8000, 8 = PCMA/8000, 9 = G722/8000, ...), from
// the table. A dynamic type without a=rtpmap has an empty encoding and rate 0.
struct Payload {
  int pt = 0;
  std::string encoding;
  uint32_t clock_rate = 0;
};

struct Media {
  std::string type;          // "audio", "video", ...
  std::string protocol;      // "RTP/AVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVPF", ...
  std::string address;       // media c= if any, else session c=
  uint16_t port = 0;         // 0: rejected or disabled stream (RFC 3264 §6)
  uint16_t rtcp_port = 0;    // a=rtcp port if given (RFC 3605), else port + 1; 0 if rejected
  std::string rtcp_address;  // a=rtcp address if given, else address
  bool rtcp_mux = false;     // a=rtcp-mux (RFC 5761)
  // The values of its a=crypto lines (RFC 4568), as written; sdes.h reads them.
  std::vector<std::string> crypto;
  // sendrecv, sendonly, recvonly or inactive: the media's own attribute, else the
  // session's, else sendrecv (RFC 4566 §6). Reported as written even when port is 0.
  std::string direction;
  std::vector<Payload> payloads;  // in m= line order; empty for non-RTP media
  // ICE (RFC 8839 §5.4): the device's a=ice-ufrag and a=ice-pwd, the media's
  // own or else the session's. ice: both are there and the device is a full
  // agent (no session a=ice-lite: two lite agents do no checks, RFC 8445
  // §6.1.1, and the relay treats such a device as one without ICE).
  std::string ice_ufrag;
  std::string ice_pwd;
  bool ice = false;
};

struct Session {
  std::vector<Media> media;  // one per m= line, in order
};

// Parses an SDP body. On failure returns nullopt and sets *error (if given) to a
// one-line message.
std::optional<Session> parse(std::string_view text, std::string *error);

// Where the relay wants one m= line to point.
struct RelayEndpoint {
  RelayEndpoint() = default;
  RelayEndpoint(std::string address_, uint16_t rtp, uint16_t rtcp = 0)
      : address(std::move(address_)), rtp_port(rtp), rtcp_port(rtcp) {}

  std::string address;     // IPv4 or IPv6 literal, no brackets
  uint16_t rtp_port = 0;   // 0: the relay refuses this stream, its m= port becomes 0
  uint16_t rtcp_port = 0;  // 0 means rtp_port + 1
  // Set: every a=crypto line of the m= line (relayed or rejected) is replaced
  // by these values, in order (none: removed); unset: the lines stay as written.
  std::optional<std::vector<std::string>> crypto;
  // a=rtcp-mux in the output (RFC 5761 §5.1.1: offered, or accepted in an answer).
  bool rtcp_mux = false;
  // Set: the relay is an ICE-lite agent toward this device (RFC 8445 §2.5,
  // RFC 8839): the line gets these a=ice-ufrag/a=ice-pwd, a host candidate
  // for component 1 at (address, rtp_port) and, with rtcp_candidate, one for
  // component 2 at the RTCP port; the session gets a=ice-lite.
  struct Ice {
    std::string ufrag;
    std::string pwd;
    bool rtcp_candidate = true;
  };
  std::optional<Ice> ice;
};

// Returns `text` with m= line i pointed at endpoints[i]:
// - session and media c= lines get the relay address ("IN IP4" or "IN IP6");
//   a media without its own c= gets one when its relay address differs from the
//   session one;
// - the m= port becomes rtp_port; a rejected line (port 0) keeps its port, c=
//   and a=rtcp, and its endpoint is ignored (RFC 3264 §6: the answer keeps
//   every m= line, rejected ones with port 0); an endpoint with rtp_port 0
//   rejects its line the same way (RFC 3264 §6 in an answer, §8.2 in an offer);
// - a=rtcp is rewritten to the relay's RTCP port (and address, if it named one),
//   or added when the RTCP port is not rtp_port + 1 (RFC 3605 §2.1);
// - the device's ICE attributes (RFC 8839: a=candidate, a=ice-*,
//   a=end-of-candidates, a=remote-candidates) and a=rtcp-mux-only are removed:
//   its candidates are not the relay's; an endpoint with `ice` gets the relay's
//   own ICE-lite attributes instead (a=ice-lite once at session level);
//   a=rtcp-mux is there only when the endpoint says so (RFC 5761 §5.1.1: the
//   relay offers it to a device when the caller offered it, and accepts it);
// - a=crypto lines are replaced when the endpoint gives its own (the relay's
//   keys, RFC 4568), else kept;
// - codecs, directions, o= and every other line keep their meaning; sofia-sip
//   prints a=rtpmap/a=fmtp of RTP/AVP and RTP/SAVP lines first, in m= order.
// The output has CRLF line endings. Errors: unparsable SDP, an endpoint count
// that differs from the number of m= lines, an unusable endpoint.
std::optional<std::string> rewrite(std::string_view text,
                                   const std::vector<RelayEndpoint> &endpoints, std::string *error);

class Document;

// One SDP parsed once, for its summary and any number of rewrites (as
// rewrite() does them): the relay points one offer at every branch's ports,
// and checks an answer before it rewrites it. Every print must relay the same
// m= lines (a line one print rejects keeps what an earlier one wrote in it);
// one that does not fails.
class Rewriter {
 public:
  Rewriter();
  ~Rewriter();
  Rewriter(const Rewriter &) = delete;
  Rewriter &operator=(const Rewriter &) = delete;

  bool load(std::string_view text, std::string *error);
  // What load() parsed (only after it succeeded).
  const Session &summary() const;
  std::optional<std::string> print(const std::vector<RelayEndpoint> &endpoints, std::string *error);

 private:
  std::unique_ptr<Document> doc_;
  std::vector<bool> relayed_;  // which lines the first print relayed
};

// RFC 3264 §6: an answer has exactly as many m= lines as the offer, in the same
// order. Some devices leave out the lines they refuse (audio only, for an
// audio+video offer). Returns `answer` with every missing line put back as a
// rejected one (port 0, with the offer's media, protocol and formats); answer
// lines are matched to offer lines by media type, in order. An answer that
// already has every line comes back unchanged. Errors: unparsable SDP, more m=
// lines than the offer, an answer line that matches no offered line (in a
// complete answer: an accepted line whose media type is not its offer line's).
std::optional<std::string> restore_rejected_lines(std::string_view offer, std::string_view answer,
                                                  std::string *error);
// The same, for an offer and an answer already parsed (`offered`, `answered`).
std::optional<std::string> restore_rejected_lines(std::string_view offer, const Session &offered,
                                                  std::string_view answer, const Session &answered,
                                                  std::string *error);

}  // namespace portier::sdp
