// DTMF as it reaches the door: RFC 4733 telephone-events inside RTP, and SIP INFO
// bodies of type application/dtmf-relay. Plain C++ on bytes and strings, so the
// daemon's RTP pad probe and its nua INFO callback both end in these functions
// and the unit tests drive them without a network.
//
// A key is one of '0'-'9', '*', '#', 'A'-'D' (RFC 4733 §3.2 events 0-15).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portier::door {

// One event block of an RFC 4733 §2.3 payload (4 bytes on the wire).
struct TelephoneEvent {
  uint8_t event = 0;      // §2.3.1; 0-15 are DTMF
  bool end = false;       // §2.3.2 E bit: the last packets of the event
  uint8_t volume = 0;     // §2.3.4: 0..63, in -dBm0
  uint16_t duration = 0;  // §2.3.5: in RTP timestamp units, from the event's start
};

// '0'-'9', '*', '#', 'A'-'D' for events 0-15; '\0' for any other event code.
char dtmf_key(uint8_t event);

// Parses a telephone-event payload: one 4-byte block, or several (§2.5.1.5 packs
// earlier, finished events before the current one). Returns false with a log-safe
// *reason for an empty payload or a length that is not a multiple of 4.
bool parse_telephone_events(const uint8_t *payload, size_t size, std::vector<TelephoneEvent> *out,
                            std::string *reason);

// Turns the telephone-event packets of one RTP stream (one SSRC) into key presses,
// each exactly once. An event is identified by its start time, the RTP timestamp
// that all its packets share (§2.5.1.2): updates, the redundant end packets
// (§2.5.1.4), retransmissions and duplicates carry a known timestamp and are
// dropped; a new press of the same key has a new timestamp. A packet that arrives
// behind a later one (older sequence number) never starts a press, since handing it
// on late would reorder the digits of a code. Long events cut into segments
// (§2.5.1.3, §2.5.2.3) are one press. Memory is a fixed ring of recent timestamps.
class DtmfDeduplicator {
 public:
  struct Result {
    std::string keys;    // new presses in this packet, in order (usually 0 or 1)
    std::string reason;  // set when the payload was rejected (log-safe)
  };

  // `marker` is the RTP M bit, set on the first packet of an event (§2.5.1.2).
  Result feed(uint32_t timestamp, uint16_t seq, bool marker, const uint8_t *payload, size_t size);
  // A new RTP stream (SSRC change, re-INVITE): forget everything.
  void reset();

 private:
  static constexpr size_t kRecent = 16;
  bool recent(uint32_t start) const;
  void remember(uint32_t start);

  bool started_ = false;
  uint16_t highest_seq_ = 0;
  uint32_t recent_[kRecent] = {};
  size_t recent_count_ = 0, recent_next_ = 0;
  // The last press, for long-event segments.
  uint8_t last_event_ = 0;
  uint32_t last_segment_start_ = 0;
  bool last_ended_ = true;
};

// A SIP INFO application/dtmf-relay body: "Signal=5\r\nDuration=160\r\n".
struct DtmfRelay {
  char key = 0;
  std::optional<int> duration_ms;
};

// Tolerant of key case, blanks around '=', LF-only line ends and unknown keys;
// Signal is one of 0-9 * # A-D (either case) or a number 10-15 (RFC 4733 event
// numbering: 10 '*', 11 '#', 12-15 'A'-'D'). Returns nullopt with a log-safe
// *reason (never echoing the body) when there is no valid single Signal.
std::optional<DtmfRelay> parse_dtmf_relay(std::string_view body, std::string *reason);

}  // namespace portier::door
