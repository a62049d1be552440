// rtp::RtpForkCore, the fork the rtpfork element and the relay engine share,
// driven without GStreamer or sockets: packets in, what each branch would be
// sent and the keyframe requests upstream out.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <vector>

#include "rtpfork/rtp_fork_core.h"
#include "rtpfork/rtp_header.h"

using namespace portier::rtp;

namespace {

constexpr uint32_t kSsrc = 0x11223344;

// A VP8 packet (RFC 7741 §4.2, §4.3): descriptor S=1, then the payload header
// whose lowest bit is 0 for a keyframe; the byte after it names the packet.
struct TestPacket {
  std::vector<uint8_t> bytes;
  int refs = 1;  // the test's own
};

// The edge: records what the core asks for and counts the references it holds.
class RecordingEdge final : public ForkEdge {
 public:
  struct Sent {
    uint8_t mark;
    RtpIds ids;
    bool rewritten;
    bool replay;
  };
  void hold(PacketHandle p) override { ++static_cast<TestPacket *>(p)->refs; }
  void release(PacketHandle p) override { --static_cast<TestPacket *>(p)->refs; }
  void send(BranchHandle b, const Outgoing *pkts, size_t n, bool replay) override {
    EXPECT_LE(n, RtpForkCore::kMaxSend);
    ++sends;
    for (size_t i = 0; i < n; ++i) {
      auto *p = static_cast<TestPacket *>(pkts[i].packet);
      EXPECT_GE(p->refs, 1) << "a packet sent after it was released";
      sent[b].push_back({p->bytes[14], pkts[i].ids, pkts[i].rewritten, replay});
    }
  }
  void forward_rtcp(BranchHandle b, uint32_t from, uint32_t to) override {
    rtcp[b].push_back({from, to});
  }
  void request_keyframe(uint32_t ssrc) override { requests.push_back(ssrc); }

  std::vector<Sent> take(BranchHandle b) { return std::exchange(sent[b], {}); }
  size_t take_requests() { return std::exchange(requests, {}).size(); }

  std::map<BranchHandle, std::vector<Sent>> sent;
  std::map<BranchHandle, std::vector<std::pair<uint32_t, uint32_t>>> rtcp;
  std::vector<uint32_t> requests;
  int sends = 0;
};

class ForkCore : public ::testing::Test {
 protected:
  ForkCore() : core(std::make_unique<RtpForkCore>(edge, video())) {}
  ~ForkCore() override {
    core.reset();  // its GOP goes back
    for (auto &p : packets) EXPECT_EQ(p->refs, 1) << "a reference the core never gave back";
  }
  static RtpForkCore::Settings video() {
    RtpForkCore::Settings s;
    s.codec = VideoCodec::VP8;
    s.timing = {60'000'000, 0};  // no retry within a test, no interval
    return s;
  }
  TestPacket *make(uint16_t seq, uint32_t ts, bool key, uint8_t mark, uint32_t ssrc = kSsrc) {
    auto p = std::make_unique<TestPacket>();
    p->bytes.assign(16, 0);
    p->bytes[0] = 0x80;
    p->bytes[1] = 96;
    write16(&p->bytes[2], seq);
    write32(&p->bytes[4], ts);
    write32(&p->bytes[8], ssrc);
    p->bytes[12] = 0x10;
    p->bytes[13] = key ? 0x50 : 0x51;
    p->bytes[14] = mark;
    packets.push_back(std::move(p));
    return packets.back().get();
  }
  void push(uint16_t seq, uint32_t ts, bool key, uint8_t mark, uint32_t ssrc = kSsrc) {
    TestPacket *p = make(seq, ts, key, mark, ssrc);
    const Incoming in{p, p->bytes.data(), p->bytes.size()};
    core->on_rtp(&in, 1, now += 1000);
  }
  static std::vector<uint8_t> marks(const std::vector<RecordingEdge::Sent> &sent) {
    std::vector<uint8_t> out;
    for (auto &s : sent) out.push_back(s.mark);
    return out;
  }

  RecordingEdge edge;
  std::vector<std::unique_ptr<TestPacket>> packets;
  std::unique_ptr<RtpForkCore> core;
  int64_t now = 1'000'000;
  int a = 0, b = 0, c = 0;  // their addresses are the branches' handles
};

TEST_F(ForkCore, EveryReceivingBranchGetsEveryPacketWithItsIds) {  // RFC 3550 §5.1
  core->add_branch(0, &a, now);
  core->add_branch(1, &b, now);
  for (uint8_t i = 0; i < 5; ++i) push(100 + i, 3000u * i, i == 0, i);
  for (void *br : {static_cast<void *>(&a), static_cast<void *>(&b)}) {
    auto got = edge.take(br);
    ASSERT_EQ(got.size(), 5u);
    for (uint8_t i = 0; i < 5; ++i) {
      EXPECT_EQ(got[i].mark, i);
      EXPECT_EQ(got[i].ids.seq, 100 + i);
      EXPECT_EQ(got[i].ids.ssrc, kSsrc);
      EXPECT_FALSE(got[i].rewritten) << "nothing to rewrite: the packet goes as it is";
    }
  }
  EXPECT_EQ(core->counters().packets_in, 5u);
  EXPECT_EQ(core->counters().keyframes_in, 1u);
}

// The GOP replay is due at add_branch and goes out with the next tick (the
// engine's wake-up, the element's link), before any live packet.
TEST_F(ForkCore, AJoiningBranchGetsTheGopAtTheNextTick) {
  push(10, 0, false, 1);  // before any keyframe: undecodable, not cached
  push(11, 3000, true, 2);
  push(12, 6000, false, 3);
  core->add_branch(0, &a, now);
  EXPECT_TRUE(edge.take(&a).empty()) << "add_branch itself sends nothing";
  core->tick(now);
  auto got = edge.take(&a);
  ASSERT_EQ(marks(got), (std::vector<uint8_t>{2, 3}));
  EXPECT_TRUE(got[0].replay && got[1].replay);
  push(13, 9000, false, 4);
  got = edge.take(&a);
  ASSERT_EQ(marks(got), (std::vector<uint8_t>{4}));
  EXPECT_FALSE(got[0].replay);
  core->tick(now);
  EXPECT_TRUE(edge.take(&a).empty()) << "one replay per join";
}

TEST_F(ForkCore, WithoutATickTheReplayPrecedesTheNextLivePacket) {
  push(11, 3000, true, 2);
  core->add_branch(0, &a, now);
  push(12, 6000, false, 3);
  auto got = edge.take(&a);
  ASSERT_EQ(marks(got), (std::vector<uint8_t>{2, 3}));
  EXPECT_TRUE(got[0].replay);
  EXPECT_FALSE(got[1].replay);
}

TEST_F(ForkCore, AReplayLongerThanOneSendIsSplit) {
  push(0, 0, true, 0);
  for (uint16_t i = 1; i < 70; ++i) push(i, 3000u * i, false, static_cast<uint8_t>(i));
  core->add_branch(0, &a, now);
  edge.sends = 0;
  core->tick(now);
  EXPECT_EQ(edge.take(&a).size(), 70u);
  EXPECT_EQ(edge.sends, 3) << "32 + 32 + 6";
}

// RFC 4585 §6.3.1 (PLI): one request is outstanding per SSRC whatever the
// number of branches that want a keyframe; the keyframe ends it.
TEST_F(ForkCore, KeyframeRequestsAreDeduplicatedPerSsrc) {
  push(1, 0, true, 1);
  int devices[5];
  for (uint32_t i = 0; i < 5; ++i) core->add_branch(i, &devices[i], now);  // five 183s at once
  EXPECT_EQ(edge.take_requests(), 1u);
  core->branch_wants_keyframe(now);  // a device's own PLI while one is outstanding
  EXPECT_EQ(edge.take_requests(), 0u);
  push(2, 3000, true, 2);  // the keyframe
  core->branch_wants_keyframe(now);
  ASSERT_EQ(edge.requests.size(), 1u);
  EXPECT_EQ(edge.requests[0], kSsrc);
  EXPECT_EQ(core->keyframe_requests().sent(), 2u);
  EXPECT_EQ(core->keyframe_requests().suppressed(), 5u);
}

TEST_F(ForkCore, AKeyframeWantedBeforeTheFirstPacketIsAskedForWithIt) {
  core->add_branch(0, &a, now);
  EXPECT_EQ(edge.take_requests(), 0u) << "no SSRC to name yet";
  push(1, 0, false, 1);
  ASSERT_EQ(edge.requests.size(), 1u);
  EXPECT_EQ(edge.requests[0], kSsrc);
}

TEST_F(ForkCore, ARequestWithoutAKeyframeIsRetriedOnceByTheClock) {
  RtpForkCore::Settings s = video();
  s.timing = {500'000, 0};
  core = std::make_unique<RtpForkCore>(edge, s);
  push(1, 0, false, 1);
  core->add_branch(0, &a, now);
  EXPECT_EQ(edge.take_requests(), 1u);
  core->tick(now + 400'000);
  EXPECT_EQ(edge.take_requests(), 0u);
  core->tick(now + 600'000);
  EXPECT_EQ(edge.take_requests(), 1u) << "the retry";
  core->tick(now + 2'000'000);
  EXPECT_EQ(edge.take_requests(), 0u) << "given up: the next join asks again";
}

// RFC 3550 §8.2: a new SSRC (the door's encoder restarted) drops the GOP of
// the old one; each branch goes on with its own SSRC and sequence.
TEST_F(ForkCore, ASourceRestartDropsTheGopAndBranchesGoOn) {
  core->add_branch(0, &a, now);
  push(500, 1000, true, 1);
  push(501, 4000, false, 2);
  push(7, 90, true, 3, 0xabcdef01);
  push(8, 3090, false, 4, 0xabcdef01);
  auto got = edge.take(&a);
  ASSERT_EQ(got.size(), 4u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].ids.ssrc, kSsrc);
    EXPECT_EQ(got[i].ids.seq, 500 + i);
  }
  EXPECT_TRUE(got[2].rewritten);
  EXPECT_EQ(got[3].ids.timestamp - got[2].ids.timestamp, 3000u);
  EXPECT_EQ(core->counters().source_changes, 1u);
  EXPECT_EQ(core->gop_packets(), 2u) << "only the new source's GOP";
  core->add_branch(1, &b, now);
  core->tick(now);
  EXPECT_EQ(marks(edge.take(&b)), (std::vector<uint8_t>{3, 4}));
}

// RFC 3550 §A.1: a lost packet stays a gap in the branch's sequence.
TEST_F(ForkCore, LossStaysVisibleToTheBranch) {
  core->add_branch(0, &a, now);
  push(10, 0, true, 1);
  push(12, 6000, false, 2);  // 11 lost
  auto got = edge.take(&a);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].ids.seq - got[0].ids.seq, 2);
}

TEST_F(ForkCore, AfterSelectOnlyTheWinnerReceivesAndAsksForAKeyframe) {
  core->add_branch(0, &a, now);
  core->add_branch(1, &b, now);
  push(1, 0, true, 1);
  edge.take_requests();
  push(2, 3000, true, 2);  // the keyframe ends the outstanding request
  EXPECT_TRUE(core->select_branch(1, now));
  EXPECT_EQ(edge.take_requests(), 1u) << "the winner's decoder starts over";
  EXPECT_EQ(core->selected(), 1);
  edge.take(&a);
  edge.take(&b);
  push(3, 6000, false, 3);
  EXPECT_TRUE(edge.take(&a).empty());
  EXPECT_EQ(marks(edge.take(&b)), (std::vector<uint8_t>{3}));
  core->add_branch(2, &c, now);  // a 183 that comes after the 200
  push(4, 9000, false, 4);
  EXPECT_TRUE(edge.take(&c).empty()) << "after the 200 only the winner receives";
  EXPECT_FALSE(core->select_branch(7, now)) << "an unknown branch cannot win";
  EXPECT_TRUE(core->remove_branch(1));
  EXPECT_EQ(core->selected(), -1);
  EXPECT_FALSE(core->remove_branch(1));
}

TEST_F(ForkCore, AudioHasNoKeyframesAndNoGop) {
  RtpForkCore::Settings s;
  s.codec = VideoCodec::None;
  core = std::make_unique<RtpForkCore>(edge, s);
  push(1, 0, true, 1);
  core->add_branch(0, &a, now);
  core->tick(now);
  EXPECT_TRUE(edge.take(&a).empty());
  EXPECT_EQ(edge.take_requests(), 0u);
  EXPECT_EQ(core->gop_packets(), 0u);
}

TEST_F(ForkCore, ReplayOffKeepsNoGop) {
  core->set_replay_gop(false);
  push(1, 0, true, 1);
  core->add_branch(0, &a, now);
  core->tick(now);
  EXPECT_TRUE(edge.take(&a).empty());
  EXPECT_EQ(edge.take_requests(), 1u) << "the keyframe request still goes";
}

TEST_F(ForkCore, InvalidPacketsAreCountedAndTheRestOfTheRunGoes) {
  core->add_branch(0, &a, now);
  TestPacket *good = make(1, 0, true, 1);
  TestPacket junk;
  junk.bytes = {1, 2, 3};
  const Incoming in[] = {{good, good->bytes.data(), good->bytes.size()},
                         {&junk, junk.bytes.data(), junk.bytes.size()}};
  core->on_rtp(in, 2, now);
  EXPECT_EQ(edge.take(&a).size(), 1u);
  EXPECT_EQ(core->counters().invalid_in, 1u);
  EXPECT_EQ(junk.refs, 1);
}

// RFC 3550 §6.4.1: the source's sender reports reach each receiving branch
// naming the SSRC that branch knows.
TEST_F(ForkCore, RtcpGoesToReceivingBranchesWithTheirSsrc) {
  core->add_branch(0, &a, now);
  push(1, 0, true, 1);
  push(2, 90, true, 2, 0xabcdef01);  // a restart: branch 0 keeps kSsrc
  core->add_branch(1, &b, now);
  core->tick(now);
  core->on_rtcp();
  ASSERT_EQ(edge.rtcp[&a].size(), 1u);
  EXPECT_EQ(edge.rtcp[&a][0], std::make_pair(0xabcdef01u, kSsrc));
  ASSERT_EQ(edge.rtcp[&b].size(), 1u);
  EXPECT_EQ(edge.rtcp[&b][0].first, edge.rtcp[&b][0].second) << "nothing to rewrite";
}

TEST_F(ForkCore, EveryCachedPacketIsReleasedAcrossGopTurnsAndLimits) {
  core->set_gop_limits(4, 1 << 20);
  core->add_branch(0, &a, now);
  for (uint16_t i = 0; i < 40; ++i) push(i, 3000u * i, i % 7 == 0, static_cast<uint8_t>(i));
  EXPECT_LE(core->gop_packets(), 4u);
  core->drop_gop();
  EXPECT_EQ(core->gop_packets(), 0u);
  // the fixture's destructor checks every reference came back
}

}  // namespace
