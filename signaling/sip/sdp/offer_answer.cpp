#include "sip/sdp/offer_answer.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include "common/ascii.h"
#include "sip/sdp/sdp_rewrite.h"

namespace portier::sdp {
namespace {

std::string ip_kind(const std::string &address) {
  return address.find(':') != std::string::npos ? "IP6" : "IP4";
}

bool may_send(const std::string &dir) { return dir == "sendrecv" || dir == "sendonly"; }
bool may_recv(const std::string &dir) { return dir == "sendrecv" || dir == "recvonly"; }

std::string direction_of(bool send, bool recv) {
  return send && recv ? "sendrecv" : send ? "sendonly" : recv ? "recvonly" : "inactive";
}

bool same_codec(const Codec &ours, const Payload &theirs) {
  return ascii::iequals(ours.encoding, theirs.encoding) && ours.clock_rate == theirs.clock_rate;
}

bool is_telephone_event(const Payload &p) { return ascii::iequals(p.encoding, "telephone-event"); }

// A telephone-event payload type and its clock.
struct Event {
  int pt;
  uint32_t clock_rate;
};

// The telephone-event of `payloads` at `clock_rate`, or -1.
int event_at(const std::vector<Payload> &payloads, uint32_t clock_rate) {
  for (const Payload &p : payloads)
    if (is_telephone_event(p) && p.clock_rate == clock_rate) return p.pt;
  return -1;
}

// What we offer: one telephone-event per clock rate of our codecs, in their
// order; /8000 keeps `pt_8000`, the others take the next numbers no codec uses.
std::vector<Event> offered_events(const LocalStream &s) {
  std::vector<Event> out;
  if (s.type != "audio" || !s.telephone_event) return out;
  int next = s.telephone_event_pt + 1;
  auto taken = [&](int pt) {
    for (const Codec &c : s.codecs)
      if (c.pt == pt) return true;
    for (const Event &e : out)
      if (e.pt == pt) return true;
    return pt == s.telephone_event_pt;
  };
  for (const Codec &c : s.codecs) {
    bool have = false;
    for (const Event &e : out) have = have || e.clock_rate == c.clock_rate;
    if (have) continue;
    if (c.clock_rate == 8000) {
      out.push_back({s.telephone_event_pt, 8000});
      continue;
    }
    while (next <= 127 && taken(next)) ++next;
    if (next > 127) continue;  // no number left: this clock goes without events
    out.push_back({next++, c.clock_rate});
  }
  return out;
}

// RTP/AVP and RTP/AVPF (RFC 4585 §3.5: an AVPF offer may be answered by an
// AVP endpoint and the other way round), and their secure twins when we have
// SRTP keys to give (RFC 3711 §12, SDES: RFC 4568). DTLS-SRTP (UDP/TLS/...)
// is not ours.
bool secure_rtp(const std::string &protocol) {
  return protocol == "RTP/SAVP" || protocol == "RTP/SAVPF";
}
bool usable_rtp(const std::string &protocol, bool srtp) {
  return protocol == "RTP/AVP" || protocol == "RTP/AVPF" || (srtp && secure_rtp(protocol));
}

// Our key for `suite`, if we have one.
const CryptoAttr *our_key(const LocalStream &ours, SrtpSuite suite) {
  for (const CryptoAttr &c : ours.crypto)
    if (c.key.suite == suite) return &c;
  return nullptr;
}

std::string srtp_refusal(const std::string &type) {
  return "the " + type +
         " stream has no a=crypto we can use, and SRTP is mandatory here "
         "(media-encryption-mandatory; RFC 4568)";
}

// The m= line and attributes of one stream; `codecs` with their final payload types.
std::string media_lines(const std::string &type, uint16_t port, const std::string &protocol,
                        const std::vector<Codec> &codecs, const std::vector<Event> &events,
                        bool feedback, const std::string &direction,
                        const std::vector<CryptoAttr> &crypto, bool rtcp_mux) {
  std::string m = "m=" + type + " " + std::to_string(port) + " " + protocol;
  for (const Codec &c : codecs) m += " " + std::to_string(c.pt);
  for (const Event &e : events) m += " " + std::to_string(e.pt);
  m += "\r\n";
  for (const Codec &c : codecs) {
    m += "a=rtpmap:" + std::to_string(c.pt) + " " + c.encoding + "/" +
         std::to_string(c.clock_rate) +
         (type == "audio" && c.channels != 1 ? "/" + std::to_string(c.channels) : "") + "\r\n";
    if (!c.fmtp.empty()) m += "a=fmtp:" + std::to_string(c.pt) + " " + c.fmtp + "\r\n";
    if (feedback && type == "video") {
      m += "a=rtcp-fb:" + std::to_string(c.pt) + " nack pli\r\n";
      m += "a=rtcp-fb:" + std::to_string(c.pt) + " ccm fir\r\n";
    }
  }
  for (const Event &e : events) {
    m += "a=rtpmap:" + std::to_string(e.pt) + " telephone-event/" + std::to_string(e.clock_rate) +
         "\r\n";
    m += "a=fmtp:" + std::to_string(e.pt) + " 0-15\r\n";  // the DTMF events (RFC 4733 §3.2)
  }
  m += "a=" + direction + "\r\n";
  if (rtcp_mux) m += "a=rtcp-mux\r\n";
  for (const CryptoAttr &c : crypto) m += "a=crypto:" + print_crypto(c) + "\r\n";
  return m;
}

std::string session_lines(const LocalMedia &local) {
  const std::string kind = ip_kind(local.address);
  return "v=0\r\no=portier " + std::to_string(local.session_id) + " " +
         std::to_string(local.version) + " IN " + kind + " " + local.address +
         "\r\ns=portier\r\nc=IN " + kind + " " + local.address + "\r\nt=0 0\r\n";
}

// Fills the remote side of `a` from the peer's m= line.
void remote_of(const Media &m, Agreed *a) {
  a->remote_address = m.address;
  a->remote_rtp = m.port;
  a->remote_rtcp = m.rtcp_port ? m.rtcp_port : static_cast<uint16_t>(m.port + 1);
}

// A connection address of all zeros puts the stream on hold (RFC 3264 §8.4,
// the old RFC 2543 way): nothing can be sent there.
bool on_hold(const Media &m) { return m.address == "0.0.0.0" || m.address == "::"; }

// AF_INET or AF_INET6 for an IP literal, else 0 (a host name).
int family_of(const std::string &address) {
  unsigned char buf[sizeof(in6_addr)];
  if (inet_pton(AF_INET, address.c_str(), buf) == 1) return AF_INET;
  if (inet_pton(AF_INET6, address.c_str(), buf) == 1) return AF_INET6;
  return 0;
}

// Our media sockets are of our address's family only: a peer of the other
// family (or a host name, which would need a lookup) cannot be sent to, and
// GStreamer's multiudpsink crashes on a destination its socket cannot reach.
// "" when `m` can be served, else why not, for the 488's Warning.
std::string unservable_address(const Media &m, const std::string &local_address) {
  if (on_hold(m)) return "";
  const int theirs = family_of(m.address), ours = family_of(local_address);
  if (theirs && theirs == ours) return "";
  return "the " + m.type + " stream's address " + (theirs ? "is IPv" : "is not an IP address") +
         (theirs == AF_INET6  ? "6"
          : theirs == AF_INET ? "4"
                              : "") +
         "; our media is IPv" + (ours == AF_INET6 ? "6" : "4");
}

}  // namespace

std::string write_offer(const LocalMedia &local) {
  std::string out = session_lines(local);
  for (const LocalStream &s : local.streams) {
    // A mandatory SRTP offer says so in its profile (RFC 3711 §12). RTP/SAVP
    // for video too, with a=rtcp-fb as our RTP/AVP offers have it: baresip
    // 1.0 takes one secure profile for every stream (srtp-mand: SAVP only,
    // srtp-mandf: SAVPF only) and refuses the rest; Linphone takes either.
    const std::string protocol = s.srtp_mandatory && !s.crypto.empty() ? "RTP/SAVP" : "RTP/AVP";
    out += media_lines(s.type, s.port, protocol, s.codecs, offered_events(s), s.keyframe_feedback,
                       s.direction, s.crypto, s.rtcp_mux);
  }
  return out;
}

std::optional<std::vector<Agreed>> apply_answer(const LocalMedia &offered, std::string_view answer,
                                                std::string *error) {
  auto session = parse(answer, error);
  if (!session) return std::nullopt;
  if (session->media.size() != offered.streams.size()) {
    *error = "the answer has " + std::to_string(session->media.size()) +
             " m= lines for an offer of " + std::to_string(offered.streams.size()) +
             " (RFC 3264 §6)";
    return std::nullopt;
  }
  std::vector<Agreed> out;
  for (size_t i = 0; i < offered.streams.size(); ++i) {
    const LocalStream &ours = offered.streams[i];
    const Media &theirs = session->media[i];
    if (theirs.type != ours.type) {
      *error = "m= line " + std::to_string(i + 1) + " is " + theirs.type + " in the answer, " +
               ours.type + " in the offer";
      return std::nullopt;
    }
    Agreed a;
    a.type = ours.type;
    remote_of(theirs, &a);
    bool found = false;
    for (const Payload &p : theirs.payloads) {
      for (const Codec &c : ours.codecs) {
        if (!found && same_codec(c, p)) {
          a.codec = c;
          a.codec.pt = p.pt;
          found = true;
        }
      }
    }
    // The events that count in the codec's clock (RFC 4733 §2.1), else the
    // answerer's others: baresip 1.0 answers opus with telephone-event/8000
    // only, and the door's receiver goes by the events' start timestamps,
    // whatever their clock, so its code still gets through.
    if (found && ours.telephone_event) {
      a.telephone_event_pt = event_at(theirs.payloads, a.codec.clock_rate);
      for (const Payload &p : theirs.payloads)
        if (a.telephone_event_pt < 0 && is_telephone_event(p)) a.telephone_event_pt = p.pt;
    }
    a.active = ours.port != 0 && theirs.port != 0 && found &&
               usable_rtp(theirs.protocol, !ours.crypto.empty());
    if (a.active) {
      // RFC 4568 §7.1.2: the answer's one a=crypto names the tag and suite
      // of the offered line it took, with the answerer's key.
      const auto &lines = theirs.crypto;
      if (!ours.crypto.empty() && !lines.empty()) {
        std::string why;
        auto c = parse_crypto(lines[0], &why);
        const CryptoAttr *mine = c ? our_key(ours, c->key.suite) : nullptr;
        if (!c || !mine || mine->tag != c->tag) {
          *error = "the " + ours.type + " stream's a=crypto answers none of ours (" +
                   (c ? "tag " + std::to_string(c->tag) + " " + suite_name(c->key.suite) : why) +
                   "; RFC 4568 §7.1.2)";
          return std::nullopt;
        }
        a.srtp = Agreed::Srtp{mine->key, c->key};
      }
      if (!a.srtp && (secure_rtp(theirs.protocol) || ours.srtp_mandatory)) {
        *error = srtp_refusal(ours.type);
        return std::nullopt;
      }
      a.rtcp_mux = ours.rtcp_mux && theirs.rtcp_mux;
      if (a.rtcp_mux) a.remote_rtcp = a.remote_rtp;
      if (std::string why = unservable_address(theirs, offered.address); !why.empty()) {
        *error = why;
        return std::nullopt;
      }
      a.send = may_send(ours.direction) && may_recv(theirs.direction) && !on_hold(theirs);
      a.recv = may_recv(ours.direction) && may_send(theirs.direction);
    }
    out.push_back(std::move(a));
  }
  return out;
}

std::optional<Answered> answer_offer(std::string_view offer, const LocalMedia &local,
                                     std::string *error) {
  auto session = parse(offer, error);
  if (!session) return std::nullopt;
  Answered out;
  out.sdp = session_lines(local);
  std::vector<bool> used(local.streams.size(), false);
  bool any = false;
  std::string srtp_why;  // a stream refused for want of SRTP
  for (size_t i = 0; i < session->media.size(); ++i) {
    const Media &theirs = session->media[i];
    Agreed a;
    a.type = theirs.type;
    const LocalStream *ours = nullptr;
    for (size_t j = 0; j < local.streams.size(); ++j) {
      if (!used[j] && local.streams[j].type == theirs.type && local.streams[j].port) {
        ours = &local.streams[j];
        used[j] = true;
        break;
      }
    }
    std::vector<Codec> chosen;
    int te = -1;
    std::optional<CryptoAttr> answered_key;
    if (ours && theirs.port && usable_rtp(theirs.protocol, !ours->crypto.empty())) {
      // The offerer's order (we have one encoder, so one codec); its numbers stay.
      bool any_event = false;
      for (const Payload &p : theirs.payloads) any_event = any_event || is_telephone_event(p);
      const bool want_event = ours->telephone_event && any_event;
      for (int pass = want_event ? 0 : 1; pass < 2 && chosen.empty(); ++pass) {
        for (const Payload &p : theirs.payloads) {
          for (const Codec &c : ours->codecs) {
            if (!chosen.empty() || !same_codec(c, p)) continue;
            if (pass == 0 && event_at(theirs.payloads, c.clock_rate) < 0) continue;
            Codec agreed = c;
            agreed.pt = p.pt;
            chosen.push_back(agreed);
          }
        }
      }
      if (!chosen.empty() && ours->telephone_event)
        te = event_at(theirs.payloads, chosen[0].clock_rate);
      // RFC 4568 §7.1.1: the first line we can honour, in the offerer's
      // order; lines we cannot are skipped (§6.1). In RTP/AVP too: Linphone
      // offers optional SRTP that way.
      if (!ours->crypto.empty()) {
        for (const std::string &line : theirs.crypto) {
          auto c = parse_crypto(line, nullptr);
          const CryptoAttr *mine = c ? our_key(*ours, c->key.suite) : nullptr;
          if (!mine) continue;
          answered_key = CryptoAttr{c->tag, mine->key};
          a.srtp = Agreed::Srtp{mine->key, c->key};
          break;
        }
      }
      if (!chosen.empty() && !a.srtp &&
          (secure_rtp(theirs.protocol) || (!ours->crypto.empty() && ours->srtp_mandatory))) {
        chosen.clear();
        srtp_why = srtp_refusal(theirs.type);
      }
    }
    if (chosen.empty()) {
      a.srtp.reset();
      // Refused: port 0 and the offer's first format (RFC 3264 §6: one is needed).
      std::string fmt = theirs.payloads.empty() ? "0" : std::to_string(theirs.payloads[0].pt);
      out.sdp += "m=" + theirs.type + " 0 " + theirs.protocol + " " + fmt + "\r\n";
      out.streams.push_back(std::move(a));
      continue;
    }
    if (std::string why = unservable_address(theirs, local.address); !why.empty()) {
      *error = why;
      return std::nullopt;
    }
    remote_of(theirs, &a);
    a.active = true;
    a.codec = chosen[0];
    a.telephone_event_pt = te;
    a.send = may_send(ours->direction) && may_recv(theirs.direction) && !on_hold(theirs);
    a.recv = may_recv(ours->direction) && may_send(theirs.direction);
    a.rtcp_mux = ours->rtcp_mux && theirs.rtcp_mux;
    if (a.rtcp_mux) a.remote_rtcp = a.remote_rtp;
    std::vector<CryptoAttr> key;
    if (answered_key) key.push_back(*answered_key);
    std::vector<Event> events;
    if (te >= 0) events.push_back({te, chosen[0].clock_rate});
    out.sdp += media_lines(theirs.type, ours->port, theirs.protocol, chosen, events,
                           ours->keyframe_feedback, direction_of(a.send, a.recv), key, a.rtcp_mux);
    out.streams.push_back(std::move(a));
    any = true;
  }
  if (!any) {
    *error = !srtp_why.empty() ? srtp_why
                               : "no stream of the offer can be used (no common codec, or no "
                                 "RTP profile we run)";
    return std::nullopt;
  }
  return out;
}

}  // namespace portier::sdp
