// Reading and rewriting the fixed RTP header (RFC 3550 §5.1) in place, and
// finding the payload behind CSRCs, the header extension and padding.
// Plain C++: the element and the relay use it, unit tests drive it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace portier::rtp {

struct Header {
  bool marker = false;
  uint8_t payload_type = 0;
  uint16_t seq = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
  size_t payload_offset = 0;  // from the start of the packet
  size_t payload_size = 0;    // without padding
};

// Parses a packet; false when it is not RTP version 2 or is truncated.
bool parse(const uint8_t *data, size_t size, Header *out);

// Rewrites sequence number, timestamp and SSRC of a packet parse() accepted.
void rewrite(uint8_t *data, uint16_t seq, uint32_t timestamp, uint32_t ssrc);

inline uint16_t read16(const uint8_t *p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t read32(const uint8_t *p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}
inline void write16(uint8_t *p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void write32(uint8_t *p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Serial-number arithmetic on 16-bit sequence numbers (RFC 3550 A.1): a - b.
inline int16_t seq_diff(uint16_t a, uint16_t b) { return static_cast<int16_t>(a - b); }

}  // namespace portier::rtp
