#include "rtp_header.h"

namespace portier::rtp {

bool parse(const uint8_t *data, size_t size, Header *out) {
  if (size < 12 || (data[0] >> 6) != 2) return false;
  const size_t csrc_count = data[0] & 0x0f;
  size_t offset = 12 + 4 * csrc_count;
  if (offset > size) return false;
  if (data[0] & 0x10) {  // header extension: 16-bit profile, 16-bit length in words
    if (offset + 4 > size) return false;
    offset += 4 + 4 * static_cast<size_t>(read16(data + offset + 2));
    if (offset > size) return false;
  }
  size_t padding = 0;
  if (data[0] & 0x20) {
    padding = data[size - 1];
    if (padding == 0 || offset + padding > size) return false;
  }
  out->marker = (data[1] & 0x80) != 0;
  out->payload_type = data[1] & 0x7f;
  out->seq = read16(data + 2);
  out->timestamp = read32(data + 4);
  out->ssrc = read32(data + 8);
  out->payload_offset = offset;
  out->payload_size = size - offset - padding;
  return true;
}

void rewrite(uint8_t *data, uint16_t seq, uint32_t timestamp, uint32_t ssrc) {
  write16(data + 2, seq);
  write32(data + 4, timestamp);
  write32(data + 8, ssrc);
}

}  // namespace portier::rtp
