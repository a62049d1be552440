#include "monitor/telephone_event_writer.h"

namespace portier::monitor {

int dtmf_event_code(char key) {
  if (key >= '0' && key <= '9') return key - '0';
  if (key == '*') return 10;
  if (key == '#') return 11;
  if (key >= 'A' && key <= 'D') return 12 + (key - 'A');
  return -1;
}

bool TelephoneEventWriter::queue(const std::string &keys) {
  for (char k : keys)
    if (dtmf_event_code(k) < 0) return false;
  for (char k : keys) keys_.push_back(k);
  return true;
}

bool TelephoneEventWriter::rewrite(std::vector<uint8_t> &packet) {
  if (keys_.empty()) return false;
  if (packet.size() < 12 || (packet[0] >> 6) != 2) return false;
  const int tone = options_.tone_packets, ends = options_.end_copies, gap = options_.gap_packets;
  const int at = step_++;
  if (at >= tone + ends) {
    // The gap after a key: the audio packet goes out as it is.
    if (step_ >= tone + ends + gap) {
      step_ = 0;
      keys_.pop_front();
      ++keys_sent_;
    }
    return false;
  }
  if (at == 0)
    start_ts_ = uint32_t(packet[4]) << 24 | uint32_t(packet[5]) << 16 | uint32_t(packet[6]) << 8 |
                packet[7];
  const bool end = at >= tone;
  const uint32_t duration = options_.packet_duration * uint32_t(end ? tone : at + 1);
  const uint8_t event = static_cast<uint8_t>(dtmf_event_code(keys_.front()));
  // Header: version 2, no padding, extension or CSRC (the event replaces the
  // payload, not the stream); the sequence number and SSRC stay.
  std::vector<uint8_t> out(16);
  out[0] = 0x80;
  out[1] = static_cast<uint8_t>((at == 0 ? 0x80 : 0) | (options_.payload_type & 0x7f));
  out[2] = packet[2], out[3] = packet[3];
  out[4] = static_cast<uint8_t>(start_ts_ >> 24), out[5] = static_cast<uint8_t>(start_ts_ >> 16);
  out[6] = static_cast<uint8_t>(start_ts_ >> 8), out[7] = static_cast<uint8_t>(start_ts_);
  for (int i = 8; i < 12; ++i) out[i] = packet[i];
  // §2.3: event, E R volume, duration.
  out[12] = event;
  out[13] = static_cast<uint8_t>((end ? 0x80 : 0) | (options_.volume & 0x3f));
  const uint32_t d = duration > 0xffff ? 0xffff : duration;
  out[14] = static_cast<uint8_t>(d >> 8), out[15] = static_cast<uint8_t>(d);
  packet.swap(out);
  if (gap == 0 && step_ >= tone + ends) {
    step_ = 0;
    keys_.pop_front();
    ++keys_sent_;
  }
  return true;
}

}  // namespace portier::monitor
