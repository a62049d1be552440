// What the relay and rtpfork need of RTCP (RFC 3550 §6): walking a compound
// packet, keyframe requests (RFC 4585 §6.3.1, RFC 5104 §4.3.1), the SSRC a
// branch's receivers know, and telling RTCP from RTP on one port (RFC 5761 §4).
// Plain C++ on bytes, unit-tested without a network.
#pragma once

#include <cstddef>
#include <cstdint>

namespace portier::rtp {

// Does this compound RTCP packet carry a keyframe request: PLI or FIR
// (RFC 4585 §6.3.1, RFC 5104 §4.3.1), or the old FIR of RFC 2032?
bool asks_for_keyframe(const uint8_t *p, size_t n);

// Replaces `from` by `to` where a compound packet names its sender: SR/RR
// sender SSRC, the first SDES chunk, the first BYE SSRC.
void rewrite_rtcp_ssrc(uint8_t *p, size_t n, uint32_t from, uint32_t to);

// RFC 5761 §4: on a port that carries both, RTCP packet types 192-223 sit
// where RTP has the marker bit and a payload type 64-95, which RTP avoids.
inline bool is_rtcp(const uint8_t *p, size_t n) {
  return n >= 8 && (p[0] >> 6) == 2 && p[1] >= 192 && p[1] <= 223;
}

// A PLI (RFC 4585 §6.3.1) from `sender` about `media`, 12 bytes.
constexpr size_t kPliSize = 12;
void write_pli(uint8_t out[kPliSize], uint32_t sender, uint32_t media);

}  // namespace portier::rtp
