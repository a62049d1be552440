// The monitor's call vocabulary and what it sends: RFC 4733 telephone-events
// in place of voice packets, INFO bodies, the CANCEL Reason that tells
// "answered elsewhere" from "missed", and its answers to INFO.
#include <gtest/gtest.h>

#include <string_view>
#include <vector>

#include "door/dtmf.h"
#include "monitor/call_signals.h"
#include "monitor/telephone_event_writer.h"

using portier::monitor::dtmf_event_code;
using portier::monitor::TelephoneEventOptions;
using portier::monitor::TelephoneEventWriter;

namespace {

// A PCMU voice packet as the payloader makes it: 12-byte header, 160 bytes.
std::vector<uint8_t> voice(uint16_t seq, uint32_t ts, uint32_t ssrc = 0x11223344) {
  std::vector<uint8_t> p(12 + 160, 0xff);
  p[0] = 0x80;
  p[1] = 0;  // PT 0
  p[2] = seq >> 8, p[3] = seq & 0xff;
  p[4] = ts >> 24, p[5] = (ts >> 16) & 0xff, p[6] = (ts >> 8) & 0xff, p[7] = ts & 0xff;
  p[8] = ssrc >> 24, p[9] = (ssrc >> 16) & 0xff, p[10] = (ssrc >> 8) & 0xff, p[11] = ssrc & 0xff;
  return p;
}

uint32_t ts_of(const std::vector<uint8_t> &p) {
  return uint32_t(p[4]) << 24 | uint32_t(p[5]) << 16 | uint32_t(p[6]) << 8 | p[7];
}
uint16_t seq_of(const std::vector<uint8_t> &p) { return uint16_t(p[2] << 8 | p[3]); }

struct Out {
  std::vector<uint8_t> bytes;
  bool event;
};

// Feeds `n` voice packets (20 ms each) through the writer.
std::vector<Out> run(TelephoneEventWriter &w, int n, uint16_t seq0 = 1000, uint32_t ts0 = 5000) {
  std::vector<Out> out;
  for (int i = 0; i < n; ++i) {
    auto p = voice(static_cast<uint16_t>(seq0 + i), ts0 + 160 * i);
    const bool ev = w.rewrite(p);
    out.push_back({p, ev});
  }
  return out;
}

}  // namespace

TEST(TelephoneEventWriter, OneKeyIsToneThenThreeEndPacketsWithOneTimestamp) {
  TelephoneEventOptions o;  // PT 101, 160 per packet, 5 tone packets, 3 ends, 3 gap
  TelephoneEventWriter w(o);
  ASSERT_TRUE(w.queue("5"));
  auto out = run(w, 14);
  std::vector<Out> events;
  for (auto &p : out)
    if (p.event) events.push_back(p);
  ASSERT_EQ(events.size(), 8u);
  for (size_t i = 0; i < events.size(); ++i) {
    const auto &p = events[i].bytes;
    ASSERT_EQ(p.size(), 16u);
    EXPECT_EQ(p[1] & 0x7f, 101);
    EXPECT_EQ((p[1] & 0x80) != 0, i == 0) << "the marker bit only on the first (RFC 4733 2.5.1.2)";
    EXPECT_EQ(ts_of(p), 5000u) << "every packet of the event has its start time";
    EXPECT_EQ(seq_of(p), 1000 + i) << "the stream's sequence numbers go on";
    EXPECT_EQ(p[8], 0x11);  // SSRC kept
    EXPECT_EQ(p[12], 5);
    const bool end = (p[13] & 0x80) != 0;
    EXPECT_EQ(end, i >= 5) << i;
    const unsigned duration = p[14] << 8 | p[15];
    EXPECT_EQ(duration, i < 5 ? 160u * (i + 1) : 800u) << i;
  }
  // The gap and everything after: voice untouched.
  for (size_t i = 8; i < out.size(); ++i) EXPECT_FALSE(out[i].event) << i;
  EXPECT_FALSE(w.busy());
  EXPECT_EQ(w.keys_sent(), 1u);
}

// With opus the events count in its 48 kHz clock (RFC 4733 §2.1): one 20 ms
// packet is 960 units, and the event's timestamp is the opus packet's.
TEST(TelephoneEventWriter, AtOpusClockDurationsGrowBy960) {
  TelephoneEventOptions o;
  o.payload_type = 102;
  o.packet_duration = 960;
  TelephoneEventWriter w(o);
  ASSERT_TRUE(w.queue("#"));
  std::vector<Out> out;
  for (int i = 0; i < 12; ++i) {
    auto p = voice(static_cast<uint16_t>(7 + i), 96000 + 960 * i);
    p[1] = 96;  // opus
    const bool ev = w.rewrite(p);
    out.push_back({p, ev});
  }
  for (int i = 0; i < 8; ++i) {
    const auto &p = out[i].bytes;
    ASSERT_TRUE(out[i].event) << i;
    EXPECT_EQ(p[1] & 0x7f, 102);
    EXPECT_EQ(ts_of(p), 96000u);
    EXPECT_EQ(p[12], 11) << "'#' is event 11 (RFC 4733 §3.2)";
    const unsigned duration = p[14] << 8 | p[15];
    EXPECT_EQ(duration, i < 5 ? 960u * (i + 1) : 4800u) << i;
  }
  EXPECT_FALSE(out[8].event);
  EXPECT_EQ(out[8].bytes[1] & 0x7f, 96);
}

TEST(TelephoneEventWriter, TheDoorReadsACodeOnceEachKey) {
  TelephoneEventWriter w;
  ASSERT_TRUE(w.queue("583920"));
  auto out = run(w, 6 * 11 + 5);
  portier::door::DtmfDeduplicator dedup;
  std::string keys;
  uint32_t last_ts = 0;
  int starts = 0;
  for (auto &p : out) {
    if (!p.event) continue;
    const auto &b = p.bytes;
    if (ts_of(b) != last_ts) ++starts, last_ts = ts_of(b);
    keys += dedup.feed(ts_of(b), seq_of(b), (b[1] & 0x80) != 0, b.data() + 12, 4).keys;
  }
  EXPECT_EQ(keys, "583920");
  EXPECT_EQ(starts, 6) << "each key starts at its own timestamp";
  EXPECT_EQ(w.keys_sent(), 6u);
}

TEST(TelephoneEventWriter, RefusesWhatIsNotAKeyAndLeavesOtherPacketsAlone) {
  TelephoneEventWriter w;
  EXPECT_FALSE(w.queue("12x"));
  EXPECT_FALSE(w.busy());
  auto p = voice(1, 1);
  EXPECT_FALSE(w.rewrite(p));
  ASSERT_TRUE(w.queue("#"));
  std::vector<uint8_t> junk{1, 2, 3};
  EXPECT_FALSE(w.rewrite(junk));
  EXPECT_EQ(junk.size(), 3u);
  EXPECT_EQ(dtmf_event_code('#'), 11);
  EXPECT_EQ(dtmf_event_code('*'), 10);
  EXPECT_EQ(dtmf_event_code('D'), 15);
  EXPECT_EQ(dtmf_event_code('x'), -1);
}

TEST(CallSignals, CancelReasonTellsAnsweredElsewhereFromMissed) {
  using portier::monitor::reason_is_answered_elsewhere;
  using V = std::vector<std::string_view>;
  EXPECT_TRUE(
      reason_is_answered_elsewhere("SIP", V{"cause=200", "text=\"Call completed elsewhere\""}));
  EXPECT_TRUE(reason_is_answered_elsewhere("sip", V{"text=\"x\"", "cause = 200"}));
  EXPECT_FALSE(reason_is_answered_elsewhere("SIP", V{"cause=487"}));
  EXPECT_FALSE(reason_is_answered_elsewhere("Q.850", V{"cause=200"}));
  EXPECT_FALSE(reason_is_answered_elsewhere("SIP", V{}));
  EXPECT_FALSE(reason_is_answered_elsewhere("SIP", V{"cause=2000"}));
}

TEST(CallSignals, BodiesTheDoorUnderstands) {
  const std::string relay = portier::monitor::dtmf_relay_body('7', 100);
  EXPECT_EQ(relay, "Signal=7\r\nDuration=100\r\n");
  std::string why;
  auto parsed = portier::door::parse_dtmf_relay(relay, &why);
  ASSERT_TRUE(parsed) << why;
  EXPECT_EQ(parsed->key, '7');
  const std::string pfu = portier::monitor::picture_fast_update_body();
  EXPECT_NE(pfu.find("<media_control>"), std::string::npos);
  EXPECT_NE(pfu.find("<to_encoder>"), std::string::npos);
  EXPECT_NE(pfu.find("<picture_fast_update/>"), std::string::npos);
}

TEST(CallSignals, InfoAnswers) {
  using portier::monitor::info_verdict;
  EXPECT_EQ(info_verdict("application/dtmf-relay", true).status, 200);
  EXPECT_EQ(info_verdict("Application/Media_Control+XML; charset=utf-8", true).status, 200);
  EXPECT_EQ(info_verdict("text/plain", true).status, 415);
  EXPECT_EQ(info_verdict("", false).status, 200);
  EXPECT_EQ(portier::monitor::call_state_name(portier::monitor::CallState::Early),
            std::string("early"));
}
