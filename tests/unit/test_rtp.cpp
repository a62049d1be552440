// The plain C++ under rtpfork: RTP header parsing (RFC 3550 §5.1), keyframe
// detection per payload format, keyframe request de-duplication, the GOP
// cache and per-branch sequence continuity.
#include <algorithm>
#include <gtest/gtest.h>

#include <vector>

#include "rtpfork/branch_sequencer.h"
#include "rtpfork/gop_cache.h"
#include "rtpfork/keyframe_detect.h"
#include "rtpfork/keyframe_requests.h"
#include "rtpfork/rtcp_packet.h"
#include "rtpfork/rtp_header.h"

using namespace portier::rtp;

namespace {

std::vector<uint8_t> packet(uint16_t seq, uint32_t ts, uint32_t ssrc, std::vector<uint8_t> payload,
                            uint8_t first = 0x80) {
  // Sized once: growing a 12-byte vector by insert() made GCC 12 warn
  // (-Warray-bounds, a false positive inside std::vector).
  std::vector<uint8_t> p(12 + payload.size(), 0);
  p[0] = first;
  p[1] = 96;
  write16(&p[2], seq);
  write32(&p[4], ts);
  write32(&p[8], ssrc);
  std::copy(payload.begin(), payload.end(), p.begin() + 12);
  return p;
}

TEST(RtpHeader, ParsesFixedHeader) {
  auto p = packet(0xfffe, 123456, 0xdeadbeef, {1, 2, 3});
  p[1] = 0x80 | 100;  // marker, PT 100
  Header h;
  ASSERT_TRUE(parse(p.data(), p.size(), &h));
  EXPECT_TRUE(h.marker);
  EXPECT_EQ(h.payload_type, 100);
  EXPECT_EQ(h.seq, 0xfffe);
  EXPECT_EQ(h.timestamp, 123456u);
  EXPECT_EQ(h.ssrc, 0xdeadbeefu);
  EXPECT_EQ(h.payload_offset, 12u);
  EXPECT_EQ(h.payload_size, 3u);
}

TEST(RtpHeader, SkipsCsrcExtensionAndPadding) {
  // CC=1, X=1, P=1: one CSRC, a one-word extension, two bytes of padding
  auto p = packet(1, 2, 3, {0, 0, 0, 9, 0xbe, 0xde, 0, 1, 7, 7, 7, 7, 0xaa, 0xbb, 0, 2},
                  0x80 | 0x20 | 0x10 | 1);
  Header h;
  ASSERT_TRUE(parse(p.data(), p.size(), &h));
  EXPECT_EQ(h.payload_offset, 12u + 4 + 8);
  EXPECT_EQ(h.payload_size, 2u);
  EXPECT_EQ(p[h.payload_offset], 0xaa);
}

TEST(RtpHeader, RejectsWhatIsNotRtp) {
  Header h;
  auto p = packet(1, 2, 3, {});
  EXPECT_FALSE(parse(p.data(), 11, &h));  // truncated
  p[0] = 0x40;                            // version 1
  EXPECT_FALSE(parse(p.data(), p.size(), &h));
  auto csrc = packet(1, 2, 3, {}, 0x80 | 15);  // 15 CSRCs announced, none there
  EXPECT_FALSE(parse(csrc.data(), csrc.size(), &h));
  auto pad = packet(1, 2, 3, {1, 200}, 0xa0);  // padding longer than the packet
  EXPECT_FALSE(parse(pad.data(), pad.size(), &h));
}

TEST(RtpHeader, RewritesIdsInPlace) {
  auto p = packet(1, 2, 3, {4});
  rewrite(p.data(), 500, 600, 700);
  Header h;
  ASSERT_TRUE(parse(p.data(), p.size(), &h));
  EXPECT_EQ(h.seq, 500);
  EXPECT_EQ(h.timestamp, 600u);
  EXPECT_EQ(h.ssrc, 700u);
  EXPECT_EQ(p[12], 4);
}

struct KeyCase {
  const char *what;
  VideoCodec codec;
  std::vector<uint8_t> payload;
  bool key;
};

TEST(KeyframeDetect, PayloadFormats) {
  const KeyCase cases[] = {
      // H.264 (RFC 6184): single NAL, STAP-A, FU-A
      {"h264 IDR", VideoCodec::H264, {0x65, 0x88}, true},
      {"h264 SPS", VideoCodec::H264, {0x67, 0x42}, true},
      {"h264 PPS", VideoCodec::H264, {0x68, 0xce}, false},
      {"h264 P slice", VideoCodec::H264, {0x41, 0x9a}, false},
      {"h264 STAP-A with SPS", VideoCodec::H264, {0x78, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce}, true},
      {"h264 STAP-A without key", VideoCodec::H264, {0x78, 0, 2, 0x06, 0x05}, false},
      {"h264 STAP-A truncated", VideoCodec::H264, {0x78, 0, 9, 0x67}, false},
      {"h264 FU-A IDR start", VideoCodec::H264, {0x7c, 0x85, 0x88}, true},
      {"h264 FU-A IDR middle", VideoCodec::H264, {0x7c, 0x05, 0x88}, false},
      {"h264 FU-A P start", VideoCodec::H264, {0x7c, 0x81, 0x9a}, false},
      // H.265 (RFC 7798): IDR_W_RADL (19), VPS (32), TRAIL_R (1), FU with IDR
      {"h265 IDR", VideoCodec::H265, {19 << 1, 1, 0xaf}, true},
      {"h265 VPS", VideoCodec::H265, {32 << 1, 1, 0x0c}, true},
      {"h265 trail", VideoCodec::H265, {1 << 1, 1, 0xaf}, false},
      {"h265 FU IDR start", VideoCodec::H265, {49 << 1, 1, 0x80 | 19, 0xaf}, true},
      {"h265 FU IDR middle", VideoCodec::H265, {49 << 1, 1, 19, 0xaf}, false},
      // VP8 (RFC 7741): descriptor S=1 PID=0, then P bit 0 = keyframe
      {"vp8 key", VideoCodec::VP8, {0x10, 0x50, 0x2a}, true},
      {"vp8 inter", VideoCodec::VP8, {0x10, 0x51, 0x2a}, false},
      {"vp8 not start", VideoCodec::VP8, {0x00, 0x50, 0x2a}, false},
      {"vp8 key, 15-bit picture id", VideoCodec::VP8, {0x90, 0x80, 0x81, 0x23, 0x50}, true},
      {"vp8 inter, picture id + TL0 + TID",
       VideoCodec::VP8,
       {0x90, 0xe0, 0x05, 0x01, 0x40, 0x51},
       false},
      {"vp8 truncated", VideoCodec::VP8, {0x90, 0x80}, false},
      // VP9: B set and P clear
      {"vp9 key start", VideoCodec::VP9, {0x08}, true},
      {"vp9 inter start", VideoCodec::VP9, {0x48}, false},
      {"vp9 key middle", VideoCodec::VP9, {0x00}, false},
      {"audio", VideoCodec::None, {0x65}, false},
      {"empty", VideoCodec::H264, {}, false},
  };
  for (const auto &c : cases)
    EXPECT_EQ(starts_keyframe(c.codec, c.payload.data(), c.payload.size()), c.key) << c.what;
}

TEST(KeyframeDetect, CodecNames) {
  EXPECT_EQ(codec_from_encoding_name("H264"), VideoCodec::H264);
  EXPECT_EQ(codec_from_encoding_name("vp8"), VideoCodec::VP8);
  EXPECT_EQ(codec_from_encoding_name("H265"), VideoCodec::H265);
  EXPECT_EQ(codec_from_encoding_name("OPUS"), VideoCodec::None);
  EXPECT_EQ(codec_from_encoding_name("H2640"), VideoCodec::None);
}

constexpr int64_t ms = 1000;

TEST(KeyframeRequests, OneRequestServesEveryJoinUntilTheKeyframe) {
  KeyframeRequests r({500 * ms, 100 * ms});
  EXPECT_TRUE(r.request(1, 0));
  for (int i = 1; i < 10; ++i) EXPECT_FALSE(r.request(1, i * ms)) << "join " << i;
  EXPECT_EQ(r.sent(), 1u);
  EXPECT_EQ(r.suppressed(), 9u);
}

TEST(KeyframeRequests, RetriesOnceThenGivesUp) {
  KeyframeRequests r({500 * ms, 100 * ms});
  EXPECT_TRUE(r.request(1, 0));
  EXPECT_FALSE(r.poll(1, 499 * ms));
  EXPECT_TRUE(r.poll(1, 500 * ms));  // the retry
  EXPECT_FALSE(r.poll(1, 600 * ms));
  EXPECT_FALSE(r.poll(1, 1000 * ms));  // gave up
  EXPECT_FALSE(r.poll(1, 5000 * ms));
  EXPECT_EQ(r.sent(), 2u);
  EXPECT_TRUE(r.request(1, 5000 * ms));  // a later join asks again
}

TEST(KeyframeRequests, KeyframeEndsTheRequestAndMinIntervalHoldsTheNext) {
  KeyframeRequests r({500 * ms, 100 * ms});
  EXPECT_TRUE(r.request(1, 0));
  r.keyframe_seen(1);
  EXPECT_FALSE(r.poll(1, 600 * ms));    // no retry: the keyframe came
  EXPECT_TRUE(r.request(1, 700 * ms));  // a new join, interval passed
  r.keyframe_seen(1);
  EXPECT_FALSE(r.request(1, 750 * ms));  // too soon: held back
  EXPECT_FALSE(r.poll(1, 790 * ms));
  EXPECT_TRUE(r.poll(1, 800 * ms));  // sent when the interval has passed
  EXPECT_EQ(r.sent(), 3u);
}

TEST(KeyframeRequests, StreamsAreIndependent) {
  KeyframeRequests r;
  EXPECT_TRUE(r.request(1, 0));
  EXPECT_TRUE(r.request(2, 0));
  EXPECT_FALSE(r.request(1, 1));
}

TEST(GopCache, KeepsPacketsFromTheLastKeyframe) {
  GopCache<int> c(100, 100000);
  c.push(1, 10, false, 0);  // before any keyframe: useless, not kept
  EXPECT_FALSE(c.has_keyframe());
  c.push(2, 10, true, 3000);  // SPS
  c.push(3, 10, true, 3000);  // IDR of the same frame: same GOP
  c.push(4, 10, false, 6000);
  EXPECT_EQ(c.packets(), (std::deque<int>{2, 3, 4}));
  c.push(5, 10, true, 9000);  // next keyframe: a new GOP
  c.push(6, 10, false, 12000);
  EXPECT_EQ(c.packets(), (std::deque<int>{5, 6}));
  EXPECT_EQ(c.bytes(), 20u);
}

TEST(GopCache, DropsAGopThatOutgrowsItsBoundsAndReleasesEverything) {
  int released = 0;
  {
    GopCache<int> c(3, 1000, [&](int &) { ++released; });
    c.push(1, 10, true, 0);
    c.push(2, 10, false, 1);
    c.push(3, 10, false, 2);
    c.push(4, 10, false, 3);  // the 4th: the GOP is too long
    EXPECT_FALSE(c.has_keyframe());
    EXPECT_TRUE(c.packets().empty());
    c.push(5, 10, false, 4);  // still no keyframe: not kept
    EXPECT_EQ(released, 5);
    c.push(6, 10, true, 5);
    EXPECT_TRUE(c.has_keyframe());
  }
  EXPECT_EQ(released, 6);  // the destructor released the last one
}

// The GOP a keyframe ends is handed back to the caller, to free after the
// keyframe went out, not freed inside push().
TEST(GopCache, RetiresTheEndedGopForTheCallerToRelease) {
  int released = 0;
  GopCache<int> c(100, 100000, [&](int &) { ++released; });
  c.push(1, 10, true, 0);
  c.push(2, 10, false, 1);
  c.push(3, 10, true, 2);  // a new GOP
  EXPECT_EQ(released, 0) << "released inside push(), before the keyframe was sent";
  EXPECT_EQ(c.packets(), (std::deque<int>{3}));
  EXPECT_EQ(c.take_retired(), (std::deque<int>{1, 2}));
  EXPECT_TRUE(c.take_retired().empty());
  c.push(4, 10, true, 3);
  c.clear();  // what was retired and not taken is released with the rest
  EXPECT_EQ(released, 2);
}

TEST(BranchSequencer, PassesThroughAContinuousStream) {
  BranchSequencer s(90000);
  for (uint16_t i = 0; i < 5; ++i) {
    RtpIds out = s.map({7, static_cast<uint16_t>(65534 + i), 1000u + i * 3000}, i * 33 * ms);
    EXPECT_EQ(out.ssrc, 7u);
    EXPECT_EQ(out.seq, static_cast<uint16_t>(65534 + i));  // wraps like the input
    EXPECT_EQ(out.timestamp, 1000u + i * 3000);
  }
  EXPECT_FALSE(s.rewriting());
}

TEST(BranchSequencer, ContinuesAcrossASourceRestart) {
  BranchSequencer s(90000);
  s.map({7, 100, 5000}, 0);
  s.map({7, 101, 8000}, 33 * ms);
  // the encoder restarts: new SSRC, new numbering, 100 ms later
  RtpIds out = s.map({9, 40000, 123}, 133 * ms);
  EXPECT_EQ(out.ssrc, 7u);
  EXPECT_EQ(out.seq, 102);
  EXPECT_EQ(out.timestamp, 8000u + 9000);  // 100 ms at 90 kHz
  out = s.map({9, 40001, 3123}, 166 * ms);
  EXPECT_EQ(out.seq, 103);
  EXPECT_EQ(out.timestamp, 8000u + 9000 + 3000);
  EXPECT_TRUE(s.rewriting());
  EXPECT_EQ(s.discontinuities(), 1u);
}

TEST(BranchSequencer, KeepsLossAndReorderingVisible) {
  BranchSequencer s;
  s.map({7, 10, 0}, 0);
  EXPECT_EQ(s.map({7, 13, 0}, 1).seq, 13);  // two lost: still a gap
  EXPECT_EQ(s.map({7, 12, 0}, 2).seq, 12);  // late packet keeps its place
  EXPECT_EQ(s.map({7, 14, 0}, 3).seq, 14);
  EXPECT_EQ(s.discontinuities(), 0u);
}

TEST(BranchSequencer, AJumpIsANewNumbering) {
  BranchSequencer s;
  s.map({7, 10, 0}, 0);
  EXPECT_EQ(s.map({7, 30000, 0}, 1).seq, 11);
  EXPECT_EQ(s.map({7, 30001, 0}, 2).seq, 12);
}

// RTCP: keyframe requests anywhere in a compound packet (RFC 3550 §6.1),
// nothing read past a length that lies.
TEST(RtcpPacket, FindsKeyframeRequestsInCompoundPackets) {
  const std::vector<uint8_t> rr = {0x80, 201, 0, 1, 0, 0, 0, 1};  // RR, no report blocks
  std::vector<uint8_t> pli(kPliSize), fir = {0x84, 206, 0, 4, 0, 0, 0, 1, 0, 0, 0, 0,
                                             0, 0, 0, 2, 1, 0, 0, 0};
  write_pli(pli.data(), 1, 0xd00d);
  EXPECT_EQ(pli, (std::vector<uint8_t>{0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0xd0, 0x0d}));
  EXPECT_TRUE(asks_for_keyframe(pli.data(), pli.size()));
  EXPECT_TRUE(asks_for_keyframe(fir.data(), fir.size()));
  const std::vector<uint8_t> rr_pli = {0x80, 201, 0, 1, 0, 0, 0, 1,  // the RR, then the PLI
                                       0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0xd0, 0x0d};
  EXPECT_TRUE(asks_for_keyframe(rr_pli.data(), rr_pli.size()));
  EXPECT_FALSE(asks_for_keyframe(rr.data(), rr.size()));
  auto lying = rr_pli;
  lying[3] = 200;  // the RR claims 804 bytes: the PLI behind it is not reached
  EXPECT_FALSE(asks_for_keyframe(lying.data(), lying.size()));
  EXPECT_FALSE(asks_for_keyframe(pli.data(), 3));
}

TEST(RtcpPacket, RewritesTheSenderSsrcOnly) {
  std::vector<uint8_t> p = {0x80, 200, 0, 1, 0, 0, 0, 7,   // SR (cut short) from 7
                            0x81, 206, 0, 2, 0, 0, 0, 9, 0, 0, 0, 7};  // PLI from 9 about 7
  rewrite_rtcp_ssrc(p.data(), p.size(), 7, 0xabcd);
  EXPECT_EQ(read32(p.data() + 4), 0xabcdu);
  EXPECT_EQ(read32(p.data() + 12), 9u);
  EXPECT_EQ(read32(p.data() + 16), 7u) << "a feedback packet's media SSRC is not the sender's";
}

TEST(RtcpPacket, TellsRtcpFromRtpOnOnePort) {  // RFC 5761 §4
  const uint8_t rtp[12] = {0x80, 96}, rtp_marker[12] = {0x80, 0x80 | 96};
  const uint8_t sr[8] = {0x80, 200}, app[8] = {0x80, 204}, pli[8] = {0x81, 206};
  EXPECT_FALSE(is_rtcp(rtp, sizeof rtp));
  EXPECT_FALSE(is_rtcp(rtp_marker, sizeof rtp_marker));
  EXPECT_TRUE(is_rtcp(sr, sizeof sr));
  EXPECT_TRUE(is_rtcp(app, sizeof app));
  EXPECT_TRUE(is_rtcp(pli, sizeof pli));
  EXPECT_FALSE(is_rtcp(sr, 4));
}

}  // namespace
