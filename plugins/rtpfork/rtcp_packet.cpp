#include "rtcp_packet.h"

#include "rtp_header.h"

namespace portier::rtp {
namespace {

// Calls f(packet, length) for each packet of a compound packet (RFC 3550
// §6.1) until one is malformed or f returns false; false when one was.
template <typename Byte, typename F>
bool each_packet(Byte *p, size_t n, F &&f) {
  for (size_t off = 0; off + 4 <= n;) {
    Byte *pkt = p + off;
    const size_t len = (static_cast<size_t>(read16(pkt + 2)) + 1) * 4;
    if ((pkt[0] >> 6) != 2 || off + len > n) return false;
    if (!f(pkt, len)) return true;
    off += len;
  }
  return true;
}

}  // namespace

bool asks_for_keyframe(const uint8_t *p, size_t n) {
  bool wants = false;
  each_packet(p, n, [&](const uint8_t *pkt, size_t) {
    const int fmt = pkt[0] & 0x1f;
    wants = (pkt[1] == 206 && (fmt == 1 || fmt == 4)) || pkt[1] == 192;
    return !wants;
  });
  return wants;
}

void rewrite_rtcp_ssrc(uint8_t *p, size_t n, uint32_t from, uint32_t to) {
  each_packet(p, n, [&](uint8_t *pkt, size_t len) {
    const uint8_t type = pkt[1];
    if (len >= 8 && type >= 200 && type <= 203 && read32(pkt + 4) == from) write32(pkt + 4, to);
    return true;
  });
}

void write_pli(uint8_t out[kPliSize], uint32_t sender, uint32_t media) {
  out[0] = 0x80 | 1;  // V=2, FMT=1 (PLI)
  out[1] = 206;       // PSFB
  out[2] = 0;
  out[3] = 2;  // length in 32-bit words minus one
  write32(out + 4, sender);
  write32(out + 8, media);
}

}  // namespace portier::rtp
