// Sends keys as RFC 4733 telephone-events inside the call's audio RTP stream.
//
// The events take the place of outgoing audio packets: an event packet gets the
// audio packet's SSRC and sequence number (so the stream stays one stream with
// no gap, §2.1) and the RTP timestamp of the event's first packet (§2.3.1:
// every packet of an event shares its start time). Voice is not sent while a
// key sounds, which §2.5.1.2 asks for anyway. Per key:
//   tone_packets packets: the first with the marker bit (§2.5.1.2), the
//                         duration growing by one packet's worth each time;
//   end_copies packets:   the E bit, the final duration, the same timestamp
//                         (§2.5.1.4: the end is sent three times);
//   gap_packets packets:  plain audio, so the next key has a new start time.
// Plain C++ on packet bytes: the monitor's pad probe on its audio payloader
// calls rewrite(); the unit tests read what comes out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace portier::monitor {

struct TelephoneEventOptions {
  int payload_type = 101;          // the telephone-event payload type agreed in SDP
  uint32_t packet_duration = 160;  // RTP timestamp units per packet (20 ms at 8 kHz)
  int tone_packets = 5;            // 100 ms at 20 ms packets
  int end_copies = 3;
  int gap_packets = 3;
  uint8_t volume = 10;  // -dBm0 (§2.3.4)
};

// 0-15 for '0'-'9', '*', '#', 'A'-'D' (§3.2); -1 for anything else.
int dtmf_event_code(char key);

class TelephoneEventWriter {
 public:
  explicit TelephoneEventWriter(TelephoneEventOptions options = {}) : options_(options) {}

  // Queues keys (each one of 0-9 * # A-D); false, queueing nothing, when one is not.
  bool queue(const std::string &keys);
  // Keys queued or sounding.
  bool busy() const { return !keys_.empty(); }
  size_t keys_sent() const { return keys_sent_; }

  // Offered every outgoing audio RTP packet in order. Returns true when the
  // packet was replaced in place by a telephone-event packet; false leaves it
  // untouched (no event due, or not an RTP packet).
  bool rewrite(std::vector<uint8_t> &packet);

 private:
  TelephoneEventOptions options_;
  std::deque<char> keys_;
  int step_ = 0;  // packets of the current key so far (tone, end copies, gap)
  uint32_t start_ts_ = 0;
  size_t keys_sent_ = 0;
};

}  // namespace portier::monitor
