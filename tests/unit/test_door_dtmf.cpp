// DTMF into the door: RFC 4733 telephone-event payloads and their de-duplication
// into key presses, and SIP INFO application/dtmf-relay bodies.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "door/dtmf.h"

using portier::door::dtmf_key;
using portier::door::DtmfDeduplicator;
using portier::door::parse_dtmf_relay;
using portier::door::parse_telephone_events;
using portier::door::TelephoneEvent;

namespace {

// One RFC 4733 §2.3 block: event, E bit, R bit, volume, duration.
std::vector<uint8_t> block(uint8_t event, bool end, uint16_t duration, uint8_t volume = 10,
                           bool reserved = false) {
  return {event, static_cast<uint8_t>((end ? 0x80 : 0) | (reserved ? 0x40 : 0) | volume),
          static_cast<uint8_t>(duration >> 8), static_cast<uint8_t>(duration & 0xff)};
}

// Feeds one packet and returns the keys it produced.
struct Stream {
  DtmfDeduplicator dedup;
  std::string packet(uint32_t ts, uint16_t seq, bool marker, const std::vector<uint8_t> &payload) {
    auto r = dedup.feed(ts, seq, marker, payload.data(), payload.size());
    EXPECT_EQ(r.reason, "");
    return r.keys;
  }
  // A whole event as a sender emits it (§2.5.1.2 start + updates, §2.5.1.4 three
  // end packets): 5 updates of 160 units each.
  std::string press(uint8_t event, uint32_t ts, uint16_t *seq) {
    std::string keys = packet(ts, (*seq)++, true, block(event, false, 0));
    for (uint16_t d = 160; d <= 800; d += 160)
      keys += packet(ts, (*seq)++, false, block(event, false, d));
    for (int i = 0; i < 3; ++i) keys += packet(ts, (*seq)++, false, block(event, true, 960));
    return keys;
  }
};

}  // namespace

TEST(DoorDtmf, PayloadFieldsFollowRfc4733Section2_3) {
  auto p = block(5, true, 0x1234, 37, /*reserved=*/true);
  std::vector<TelephoneEvent> events;
  std::string reason;
  ASSERT_TRUE(parse_telephone_events(p.data(), p.size(), &events, &reason)) << reason;
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, 5);
  EXPECT_TRUE(events[0].end);       // §2.3.2 E bit
  EXPECT_EQ(events[0].volume, 37);  // §2.3.4, the R bit (§2.3.3) ignored
  EXPECT_EQ(events[0].duration, 0x1234);
}

TEST(DoorDtmf, EventCodesAreTheKeysOfRfc4733Section3_2) {
  EXPECT_EQ(std::string(1, dtmf_key(0)), "0");
  EXPECT_EQ(dtmf_key(9), '9');
  EXPECT_EQ(dtmf_key(10), '*');
  EXPECT_EQ(dtmf_key(11), '#');
  EXPECT_EQ(dtmf_key(12), 'A');
  EXPECT_EQ(dtmf_key(15), 'D');
  EXPECT_EQ(dtmf_key(16), '\0');  // flash and other tones are no keys
}

TEST(DoorDtmf, ShortAndOddPayloadsAreRejected) {
  const uint8_t bytes[12] = {5, 0x8a, 0, 160, 6, 0x8a, 0, 160, 7, 0x0a, 0, 0};
  std::vector<TelephoneEvent> events;
  std::string reason;
  EXPECT_FALSE(parse_telephone_events(bytes, 0, &events, &reason));
  EXPECT_EQ(reason, "empty telephone-event payload");
  for (size_t size : {1, 3, 5, 7, 11}) {
    EXPECT_FALSE(parse_telephone_events(bytes, size, &events, &reason)) << size;
    EXPECT_EQ(reason,
              "telephone-event payload of " + std::to_string(size) + " bytes, not a multiple of 4");
  }
  // §2.5.1.5: several blocks in one packet are fine.
  EXPECT_TRUE(parse_telephone_events(bytes, 12, &events, &reason));
  EXPECT_EQ(events.size(), 3u);

  // A rejected packet does not disturb the stream's state.
  Stream s;
  uint16_t seq = 100;
  EXPECT_EQ(s.press(1, 8000, &seq), "1");
  auto r = s.dedup.feed(9000, seq++, true, bytes, 3);
  EXPECT_EQ(r.keys, "");
  EXPECT_FALSE(r.reason.empty());
  EXPECT_EQ(s.press(2, 9000, &seq), "2");
}

TEST(DoorDtmf, OneEventIsOneKeyWhateverItsPacketsSection2_5_1_2And2_5_1_4) {
  Stream s;
  uint16_t seq = 1;
  // Start, five updates (§2.5.1.2) and the three redundant end packets
  // (§2.5.1.4) share the event's timestamp: one key.
  EXPECT_EQ(s.press(5, 160000, &seq), "5");
}

TEST(DoorDtmf, RetransmittedAndDuplicatedPacketsAreDropped) {
  Stream s;
  EXPECT_EQ(s.packet(1000, 10, true, block(3, false, 0)), "3");
  EXPECT_EQ(s.packet(1000, 10, true, block(3, false, 0)), "");  // the same packet twice
  EXPECT_EQ(s.packet(1000, 11, true, block(3, false, 0)), "");  // start sent again
  EXPECT_EQ(s.packet(1000, 12, false, block(3, true, 400)), "");
  EXPECT_EQ(s.packet(1000, 11, false, block(3, false, 160)), "");  // late update
}

TEST(DoorDtmf, TheSameDigitAgainIsANewPress) {
  Stream s;
  uint16_t seq = 1;
  std::string keys;
  uint32_t ts = 3200;
  for (int i = 0; i < 4; ++i, ts += 2000) keys += s.press(7, ts, &seq);
  EXPECT_EQ(keys, "7777");
}

TEST(DoorDtmf, AStartLostOnTheWayStillGivesTheKeyOnce) {
  Stream s;
  // Only the end packets of '9' arrive (start and updates lost).
  EXPECT_EQ(s.packet(5000, 20, false, block(9, true, 800)), "9");
  EXPECT_EQ(s.packet(5000, 21, false, block(9, true, 800)), "");
  EXPECT_EQ(s.packet(5000, 22, false, block(9, true, 800)), "");
}

TEST(DoorDtmf, ReorderedPacketsKeepTheDigitsInOrder) {
  Stream s;
  // '1' at ts 1000 (seq 1-3), '2' at ts 3000 (seq 4-6); seq 4 overtakes seq 3.
  EXPECT_EQ(s.packet(1000, 1, true, block(1, false, 0)), "1");
  EXPECT_EQ(s.packet(1000, 2, false, block(1, true, 400)), "");
  EXPECT_EQ(s.packet(3000, 4, true, block(2, false, 0)), "2");
  EXPECT_EQ(s.packet(1000, 3, false, block(1, true, 400)), "");  // late end of '1'
  EXPECT_EQ(s.packet(3000, 5, false, block(2, true, 400)), "");
}

TEST(DoorDtmf, AnEventOvertakenWholeIsDroppedNotAppendedOutOfOrder) {
  Stream s;
  // Every packet of '4' (seq 1-3) arrives after '8' (seq 4-5): handing '4' on
  // now would turn a typed "48" into "84".
  EXPECT_EQ(s.packet(9000, 4, true, block(8, false, 0)), "8");
  EXPECT_EQ(s.packet(9000, 5, false, block(8, true, 400)), "");
  EXPECT_EQ(s.packet(7000, 1, true, block(4, false, 0)), "");
  EXPECT_EQ(s.packet(7000, 3, false, block(4, true, 400)), "");
  // The stream goes on normally.
  EXPECT_EQ(s.packet(11000, 6, true, block(0, false, 0)), "0");
}

TEST(DoorDtmf, LongEventSegmentsAreOnePressSection2_5_1_3) {
  Stream s;
  // A key held past the 16-bit duration: segment 1 ends at 0xFFFF without E, and
  // segment 2 starts at ts + 0xFFFF with the same event and no marker.
  const uint32_t ts = 0xfffff000u;  // segment 2 starts past the 32-bit wrap
  EXPECT_EQ(s.packet(ts, 1, true, block(6, false, 0)), "6");
  EXPECT_EQ(s.packet(ts, 2, false, block(6, false, 0xffff)), "");
  EXPECT_EQ(s.packet(ts + 0xffff, 3, false, block(6, false, 160)), "");
  EXPECT_EQ(s.packet(ts + 0xffff, 4, false, block(6, true, 800)), "");
  // After its end, the same key is a new press even without a marker.
  EXPECT_EQ(s.packet(ts + 0xffff + 2000, 5, false, block(6, true, 400)), "6");
}

TEST(DoorDtmf, SeveralEventsInOnePacketSection2_5_1_5) {
  Stream s;
  // '1' finished (800 units) and '2' starting at ts + 800, in one packet.
  std::vector<uint8_t> two = block(1, true, 800);
  auto current = block(2, false, 160);
  two.insert(two.end(), current.begin(), current.end());
  EXPECT_EQ(s.packet(16000, 1, true, two), "12");
  // Later packets of '2' carry its own start time.
  EXPECT_EQ(s.packet(16800, 2, false, block(2, true, 480)), "");
}

TEST(DoorDtmf, SequenceWrapAndSenderRestart) {
  Stream s;
  EXPECT_EQ(s.packet(100, 65535, true, block(1, true, 400)), "1");
  EXPECT_EQ(s.packet(900, 0, true, block(2, true, 400)), "2");  // 65535 -> 0 is in order
  // A sender that restarts its numbering far back (RFC 3550 A.1) is followed.
  EXPECT_EQ(s.packet(50, 65000, true, block(3, true, 400)), "3");
  EXPECT_EQ(s.packet(850, 65001, true, block(4, true, 400)), "4");
  // Plain reordering (a few packets back) is not mistaken for a restart.
  EXPECT_EQ(s.packet(50, 64990, true, block(3, true, 400)), "");
}

TEST(DoorDtmf, MemoryStaysBoundedOverManyPresses) {
  Stream s;
  uint16_t seq = 0;
  std::string keys;
  for (uint32_t i = 0; i < 2000; ++i) keys += s.press(static_cast<uint8_t>(i % 10), i * 1600, &seq);
  ASSERT_EQ(keys.size(), 2000u);
  EXPECT_EQ(keys.substr(0, 12), "012345678901");
  // Fixed-size state, no container growing with the stream.
  EXPECT_LE(sizeof(DtmfDeduplicator), 128u);
}

TEST(DoorDtmf, NonDtmfEventsGiveNoKey) {
  Stream s;
  EXPECT_EQ(s.packet(100, 1, true, block(16, true, 400)), "");  // flash (RFC 4733 §3.2)
  EXPECT_EQ(s.packet(900, 2, true, block(1, true, 400)), "1");
}

// With opus the events count in its 48 kHz clock (RFC 4733 §2.1, §2.5.1.3:
// durations are in timestamp units): a 40 ms update says 1920, not 320, and
// a key is held past the 16-bit field after 1.37 s instead of 8.2 s.
TEST(DoorDtmf, EventsAt48kHzSection2_1) {
  Stream s;
  uint16_t seq = 1;
  uint32_t ts = 480000;
  std::string keys;
  for (uint8_t key : {1, 2, 3, 11}) {  // "123#", 20 ms packets of 960 units
    keys += s.packet(ts, seq++, true, block(key, false, 0));
    for (uint16_t d = 960; d <= 4800; d += 960)
      keys += s.packet(ts, seq++, false, block(key, false, d));
    for (int i = 0; i < 3; ++i) keys += s.packet(ts, seq++, false, block(key, true, 5760));
    ts += 5760 + 3 * 960;  // the event and a 60 ms gap
  }
  EXPECT_EQ(keys, "123#");
  // Held for 2 s at 48 kHz (96000 units): two segments, one press.
  EXPECT_EQ(s.packet(ts, seq++, true, block(5, false, 0)), "5");
  EXPECT_EQ(s.packet(ts, seq++, false, block(5, false, 0xffff)), "");
  EXPECT_EQ(s.packet(ts + 0xffff, seq++, false, block(5, false, 96000 - 0xffff)), "");
  EXPECT_EQ(s.packet(ts + 0xffff, seq++, false, block(5, true, 96000 - 0xffff)), "");
  // Two finished events packed before the current one (§2.5.1.5), at 48 kHz.
  std::vector<uint8_t> packed = block(7, true, 4800);
  for (auto b : {block(8, true, 4800), block(9, false, 960)})
    packed.insert(packed.end(), b.begin(), b.end());
  EXPECT_EQ(s.packet(ts + 200000, seq++, true, packed), "789");
  EXPECT_EQ(s.packet(ts + 200000 + 9600, seq++, false, block(9, true, 1920)), "");
}

TEST(DoorDtmfRelay, TheUsualBody) {
  std::string reason;
  auto r = parse_dtmf_relay("Signal=5\r\nDuration=160\r\n", &reason);
  ASSERT_TRUE(r) << reason;
  EXPECT_EQ(r->key, '5');
  EXPECT_EQ(r->duration_ms, 160);
}

TEST(DoorDtmfRelay, ToleratesCaseBlanksAndBareLineFeeds) {
  std::string reason;
  for (const char *body : {"signal = 5\nduration= 100\n", "SIGNAL=5", "  Signal =\t5  \r\n\r\n",
                           "Signal=5\nVolume=10\nDuration=250"}) {
    auto r = parse_dtmf_relay(body, &reason);
    ASSERT_TRUE(r) << body << ": " << reason;
    EXPECT_EQ(r->key, '5') << body;
  }
}

TEST(DoorDtmfRelay, StarHashLettersAndTheirNumbers) {
  struct Case {
    const char *body;
    char key;
  } cases[] = {{"Signal=*", '*'},  {"Signal=#", '#'},  {"Signal=A", 'A'},  {"Signal=d", 'D'},
               {"Signal=10", '*'}, {"Signal=11", '#'}, {"Signal=12", 'A'}, {"Signal=0", '0'}};
  for (const auto &c : cases) {
    std::string reason;
    auto r = parse_dtmf_relay(c.body, &reason);
    ASSERT_TRUE(r) << c.body << ": " << reason;
    EXPECT_EQ(r->key, c.key) << c.body;
    EXPECT_FALSE(r->duration_ms);
  }
}

TEST(DoorDtmfRelay, GarbageIsRejectedWithAReasonThatDoesNotEchoIt) {
  struct Case {
    const char *body, *reason;
  } cases[] = {
      {"", "dtmf-relay body has no Signal"},
      {"Duration=160", "dtmf-relay body has no Signal"},
      {"Signal=", "dtmf-relay Signal is not one of 0-9 * # A-D"},
      {"Signal=16", "dtmf-relay Signal is not one of 0-9 * # A-D"},
      {"Signal=98765", "dtmf-relay Signal is not one of 0-9 * # A-D"},
      {"Signal=E", "dtmf-relay Signal is not one of 0-9 * # A-D"},
      {"Signal=5\nSignal=6", "dtmf-relay body has more than one Signal"},
      {"Signal=5\nDuration=long", "dtmf-relay Duration is not a number of milliseconds"},
      {"Signal=5\nhello 1234", "dtmf-relay line 2 is not 'Key=Value'"},
  };
  for (const auto &c : cases) {
    std::string reason;
    EXPECT_FALSE(parse_dtmf_relay(c.body, &reason)) << c.body;
    EXPECT_EQ(reason, c.reason) << c.body;
  }
}
