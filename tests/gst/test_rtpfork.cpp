// rtpfork under GstHarness: what each branch's device would receive.
// The plugin is loaded from the build tree (GST_PLUGIN_PATH), the system
// plugin path is emptied by ctest so the host's plugins do not matter.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video-event.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "rtpfork/rtp_header.h"

namespace {

constexpr const char *kVp8Caps =
    "application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload=96";
constexpr uint32_t kSsrc = 0x11223344;

// A VP8 RTP packet (RFC 7741): descriptor S=1 PID=0, then the payload header
// whose lowest bit is 0 for a keyframe. The byte after it marks the packet.
GstBuffer *vp8_packet(uint16_t seq, uint32_t ts, bool key, uint8_t mark = 0,
                      uint32_t ssrc = kSsrc) {
  uint8_t data[16] = {0x80, 96};
  portier::rtp::write16(data + 2, seq);
  portier::rtp::write32(data + 4, ts);
  portier::rtp::write32(data + 8, ssrc);
  data[12] = 0x10;
  data[13] = key ? 0x50 : 0x51;
  data[14] = mark;
  data[15] = 0;
  return gst_buffer_new_memdup(data, sizeof data);
}

struct Ids {
  uint16_t seq;
  uint32_t ts;
  uint32_t ssrc;
  uint8_t mark;
};

Ids ids_of(GstBuffer *buf) {
  GstMapInfo map;
  EXPECT_TRUE(gst_buffer_map(buf, &map, GST_MAP_READ));
  portier::rtp::Header h{};
  EXPECT_TRUE(portier::rtp::parse(map.data, map.size, &h));
  Ids ids{h.seq, h.timestamp, h.ssrc, map.size > 14 ? map.data[14] : uint8_t(0)};
  gst_buffer_unmap(buf, &map);
  return ids;
}

// Everything a branch harness received so far.
std::vector<Ids> drain(GstHarness *branch) {
  std::vector<Ids> out;
  while (GstBuffer *b = gst_harness_try_pull(branch)) {
    out.push_back(ids_of(b));
    gst_buffer_unref(b);
  }
  return out;
}

int keyframe_requests_upstream(GstHarness *h) {
  int n = 0;
  while (GstEvent *e = gst_harness_try_pull_upstream_event(h)) {
    if (gst_video_event_is_force_key_unit(e)) ++n;
    gst_event_unref(e);
  }
  return n;
}

class RtpFork : public ::testing::Test {
 protected:
  void SetUp() override {
    h = gst_harness_new_with_padnames("rtpfork", "sink", nullptr);
    ASSERT_NE(h, nullptr) << "rtpfork not found: is GST_PLUGIN_PATH set to build/plugins?";
    fork = h->element;
    g_object_add_weak_pointer(G_OBJECT(fork), reinterpret_cast<gpointer *>(&fork));
    gst_harness_play(h);  // first: an inactive pad refuses the sticky events
    gst_harness_set_src_caps_str(h, kVp8Caps);
  }
  void TearDown() override {
    for (GstHarness *b : branches) gst_harness_teardown(b);
    gst_harness_teardown(h);
    // no leak: the element and every packet we pushed are gone
    EXPECT_EQ(fork, nullptr) << "rtpfork was not finalized";
    for (GstBuffer *b : pushed) {
      EXPECT_EQ(GST_MINI_OBJECT_REFCOUNT_VALUE(b), 1) << "a packet is still referenced";
      gst_buffer_unref(b);
    }
  }
  // a new branch, as a device answering 183 would get
  GstHarness *add_branch() {
    GstHarness *b = gst_harness_new_with_element(fork, nullptr, "src_%u");
    branches.push_back(b);
    return b;
  }
  void push(GstBuffer *buf) {
    pushed.push_back(gst_buffer_ref(buf));
    ASSERT_EQ(gst_harness_push(h, buf), GST_FLOW_OK);
  }
  guint64 branch_stat(guint id, const char *field) {
    GstStructure *stats = nullptr;
    g_object_get(fork, "stats", &stats, nullptr);
    const GValue *list = gst_structure_get_value(stats, "branches");
    guint64 v = G_MAXUINT64;
    for (guint i = 0; i < gst_value_array_get_size(list); ++i) {
      const GstStructure *b = gst_value_get_structure(gst_value_array_get_value(list, i));
      guint bid;
      gst_structure_get_uint(b, "id", &bid);
      if (bid == id) gst_structure_get_uint64(b, field, &v);
    }
    gst_structure_free(stats);
    return v;
  }

  GstHarness *h = nullptr;
  GstElement *fork = nullptr;
  std::vector<GstHarness *> branches;
  std::vector<GstBuffer *> pushed;
};

TEST_F(RtpFork, EveryBranchGetsEveryPacket) {
  GstHarness *a = add_branch(), *b = add_branch(), *c = add_branch();
  for (uint16_t i = 0; i < 10; ++i)
    push(vp8_packet(1000 + i, 3000u * i, i == 0, static_cast<uint8_t>(i)));
  for (GstHarness *br : {a, b, c}) {
    std::vector<Ids> got = drain(br);
    ASSERT_EQ(got.size(), 10u);
    for (uint16_t i = 0; i < 10; ++i) {
      EXPECT_EQ(got[i].seq, 1000 + i);
      EXPECT_EQ(got[i].ssrc, kSsrc);
      EXPECT_EQ(got[i].mark, i);
    }
  }
  // branches get the stream's caps before their first packet
  GstCaps *caps = gst_pad_get_current_caps(b->sinkpad);
  ASSERT_NE(caps, nullptr);
  EXPECT_STREQ(gst_structure_get_string(gst_caps_get_structure(caps, 0), "encoding-name"), "VP8");
  gst_caps_unref(caps);
}

TEST_F(RtpFork, AJoiningBranchGetsTheGopSinceTheLastKeyframeFirst) {
  GstHarness *early = add_branch();
  push(vp8_packet(100, 0, false, 1));    // before any keyframe: not cached
  push(vp8_packet(101, 3000, true, 2));  // keyframe
  push(vp8_packet(102, 6000, false, 3));
  push(vp8_packet(103, 9000, false, 4));
  EXPECT_EQ(drain(early).size(), 4u);

  struct First {
    guint branch = G_MAXUINT, replayed = 0;
  } first;
  g_signal_connect(fork, "branch-first-packet",
                   G_CALLBACK(+[](GstElement *, guint id, guint replayed, gpointer data) {
                     auto *f = static_cast<First *>(data);
                     f->branch = id;
                     f->replayed = replayed;
                   }),
                   &first);
  GstHarness *late = add_branch();  // a device answers 183 mid-GOP
  push(vp8_packet(104, 12000, false, 5));

  std::vector<Ids> got = drain(late);
  ASSERT_EQ(got.size(), 4u) << "the keyframe and what followed it, then the live packet";
  const uint8_t marks[] = {2, 3, 4, 5};
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].mark, marks[i]) << "packet " << i << " out of order";
    EXPECT_EQ(got[i].seq, 101 + i) << "the branch's sequence must be continuous";
  }
  EXPECT_EQ(first.branch, 1u);
  EXPECT_EQ(first.replayed, 3u);
  EXPECT_EQ(branch_stat(1, "replayed"), 3u);
  EXPECT_EQ(branch_stat(1, "packets"), 4u);
  // the early branch got only the live packet, no replay
  got = drain(early);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].mark, 5);
}

// The GOP goes out when the branch joins (its pad is linked), not with the
// next live packet: a device whose door sends slowly shows a picture at once.
TEST_F(RtpFork, TheGopGoesOutWhenTheBranchJoinsNotWithTheNextPacket) {
  push(vp8_packet(200, 0, true, 1));
  push(vp8_packet(201, 3000, false, 2));
  GstHarness *late = add_branch();
  std::vector<Ids> got = drain(late);
  ASSERT_EQ(got.size(), 2u) << "the replay, before any live packet";
  EXPECT_EQ(got[0].mark, 1);
  EXPECT_EQ(got[1].mark, 2);
  push(vp8_packet(202, 6000, false, 3));
  got = drain(late);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].seq, 202);
}

// The branches' flow returns combine as tee's do: NOT_LINKED only when no
// branch is linked, a branch's error is returned (the others still get the
// packet), anything else is OK.
TEST_F(RtpFork, FlowReturnsCombineAsTeeDoes) {
  GstHarness *a = add_branch(), *b = add_branch();
  push(vp8_packet(1, 0, true));
  // one branch unlinked: the other is still fed, OK
  GstPad *src0 = gst_element_get_static_pad(fork, "src_0");
  ASSERT_TRUE(gst_pad_unlink(src0, a->sinkpad));
  push(vp8_packet(2, 3000, false));
  EXPECT_EQ(drain(b).size(), 2u);
  // none linked: NOT_LINKED
  GstPad *src1 = gst_element_get_static_pad(fork, "src_1");
  ASSERT_TRUE(gst_pad_unlink(src1, b->sinkpad));
  GstBuffer *buf = vp8_packet(3, 6000, false);
  pushed.push_back(gst_buffer_ref(buf));
  EXPECT_EQ(gst_harness_push(h, buf), GST_FLOW_NOT_LINKED);
  // a branch whose device fails: its error comes back, the other gets the packet
  ASSERT_EQ(gst_pad_link(src1, b->sinkpad), GST_PAD_LINK_OK);
  GstPad *failing = gst_pad_new("failing", GST_PAD_SINK);
  gst_pad_set_chain_function(failing, [](GstPad *, GstObject *, GstBuffer *buffer) {
    gst_buffer_unref(buffer);
    return GST_FLOW_ERROR;
  });
  gst_pad_set_active(failing, TRUE);
  ASSERT_EQ(gst_pad_link(src0, failing), GST_PAD_LINK_OK);
  drain(b);
  buf = vp8_packet(4, 9000, false);
  pushed.push_back(gst_buffer_ref(buf));
  EXPECT_EQ(gst_harness_push(h, buf), GST_FLOW_ERROR);
  EXPECT_EQ(drain(b).size(), 1u);
  gst_pad_unlink(src0, failing);
  gst_pad_set_active(failing, FALSE);
  gst_object_unref(failing);
  gst_object_unref(src0);
  gst_object_unref(src1);
}

TEST_F(RtpFork, ReplayCanBeTurnedOff) {
  g_object_set(fork, "replay-gop", FALSE, nullptr);
  push(vp8_packet(1, 0, true, 1));
  push(vp8_packet(2, 3000, false, 2));
  GstHarness *late = add_branch();
  push(vp8_packet(3, 6000, false, 3));
  std::vector<Ids> got = drain(late);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].mark, 3);
}

TEST_F(RtpFork, OneKeyframeRequestUpstreamForManyJoins) {
  g_object_set(fork, "keyframe-min-interval", 0u, nullptr);
  push(vp8_packet(1, 0, true));
  keyframe_requests_upstream(h);             // start clean
  for (int i = 0; i < 5; ++i) add_branch();  // five devices answer 183 at once
  EXPECT_EQ(keyframe_requests_upstream(h), 1);
  // a device's own PLI (a force-key-unit event from downstream) while the
  // request is outstanding adds nothing
  gst_harness_push_upstream_event(
      branches[2], gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 1));
  EXPECT_EQ(keyframe_requests_upstream(h), 0);
  // the keyframe arrives; the next join asks again
  push(vp8_packet(2, 3000, true));
  add_branch();
  EXPECT_EQ(keyframe_requests_upstream(h), 1);
  GstStructure *stats = nullptr;
  g_object_get(fork, "stats", &stats, nullptr);
  guint64 sent = 0;
  gst_structure_get_uint64(stats, "keyframe-requests-sent", &sent);
  EXPECT_EQ(sent, 2u);
  gst_structure_free(stats);
}

TEST_F(RtpFork, TheKeyframeRequestIsRetriedOnceWhenNoKeyframeComes) {
  g_object_set(fork, "keyframe-retry", 1u, "keyframe-min-interval", 0u, nullptr);
  push(vp8_packet(1, 0, false));
  keyframe_requests_upstream(h);
  add_branch();
  EXPECT_EQ(keyframe_requests_upstream(h), 1);
  // packets without a keyframe keep coming: one retry, then no more
  for (uint16_t i = 0; i < 20; ++i) {
    g_usleep(2000);
    push(vp8_packet(2 + i, 3000u * (i + 1), false));
  }
  EXPECT_EQ(keyframe_requests_upstream(h), 1);
}

TEST_F(RtpFork, AudioNeverAsksForKeyframes) {
  gst_harness_set_src_caps_str(h,
                               "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000");
  push(vp8_packet(1, 0, true));
  add_branch();
  push(vp8_packet(2, 960, true));
  EXPECT_EQ(keyframe_requests_upstream(h), 0);
  EXPECT_EQ(drain(branches[0]).size(), 1u) << "no GOP replay for audio";
}

TEST_F(RtpFork, AfterSelectOnlyTheWinnerReceives) {
  GstHarness *a = add_branch(), *b = add_branch(), *c = add_branch();
  push(vp8_packet(10, 0, true, 1));
  gboolean ok = FALSE;
  g_signal_emit_by_name(fork, "select-branch", 1u, &ok);
  EXPECT_TRUE(ok);
  push(vp8_packet(11, 3000, false, 2));
  push(vp8_packet(12, 6000, false, 3));
  EXPECT_EQ(drain(a).size(), 1u);
  EXPECT_EQ(drain(c).size(), 1u);
  std::vector<Ids> won = drain(b);
  ASSERT_EQ(won.size(), 3u);
  EXPECT_EQ(won[1].seq, 11);  // same numbering before and after the 200
  EXPECT_EQ(won[2].seq, 12);
  g_signal_emit_by_name(fork, "select-branch", 42u, &ok);
  EXPECT_FALSE(ok) << "an unknown branch cannot win";
}

TEST_F(RtpFork, ABranchKeepsItsSsrcAndSequenceWhenTheSourceRestarts) {
  GstHarness *a = add_branch();
  push(vp8_packet(500, 1000, true, 1));
  push(vp8_packet(501, 4000, false, 2));
  push(vp8_packet(7, 90, true, 3, 0xabcdef01));  // the door's encoder restarted
  push(vp8_packet(8, 3090, false, 4, 0xabcdef01));
  std::vector<Ids> got = drain(a);
  ASSERT_EQ(got.size(), 4u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].ssrc, kSsrc);
    EXPECT_EQ(got[i].seq, 500 + i);
  }
  EXPECT_GT(got[2].ts, got[1].ts);
  EXPECT_EQ(got[3].ts - got[2].ts, 3000u);
}

TEST_F(RtpFork, RemoveBranchReleasesItsPads) {
  GstHarness *a = add_branch();
  gboolean ok = FALSE;
  g_signal_emit_by_name(fork, "remove-branch", 0u, &ok);
  EXPECT_TRUE(ok);
  EXPECT_EQ(gst_element_get_static_pad(fork, "src_0"), nullptr);
  push(vp8_packet(1, 0, true));
  EXPECT_EQ(drain(a).size(), 0u);
  g_signal_emit_by_name(fork, "remove-branch", 0u, &ok);
  EXPECT_FALSE(ok);
}

TEST_F(RtpFork, AddBranchSignalCreatesRtpAndRtcpPads) {
  guint id = G_MAXUINT;
  g_signal_emit_by_name(fork, "add-branch", &id);
  ASSERT_EQ(id, 0u);
  GstPad *rtp_pad = gst_element_get_static_pad(fork, "src_0");
  GstPad *rtcp_pad = gst_element_get_static_pad(fork, "rtcp_src_0");
  EXPECT_NE(rtp_pad, nullptr);
  EXPECT_NE(rtcp_pad, nullptr);
  if (rtp_pad) gst_object_unref(rtp_pad);
  if (rtcp_pad) gst_object_unref(rtcp_pad);
  gboolean ok = FALSE;
  g_signal_emit_by_name(fork, "remove-branch", id, &ok);
  EXPECT_TRUE(ok);
}

TEST_F(RtpFork, RtcpFromTheSourceReachesReceivingBranches) {
  add_branch();  // src_0
  GstHarness *rtcp = gst_harness_new_with_element(fork, "rtcp_sink", "rtcp_src_%u");
  gst_harness_set_src_caps_str(rtcp, "application/x-rtcp");
  // a sender report (RFC 3550 §6.4.1) from the source
  uint8_t sr[28] = {0x80, 200, 0, 6};
  portier::rtp::write32(sr + 4, kSsrc);
  GstBuffer *buf = gst_buffer_new_memdup(sr, sizeof sr);
  pushed.push_back(gst_buffer_ref(buf));
  EXPECT_EQ(gst_harness_push(rtcp, buf), GST_FLOW_OK);
  GstBuffer *out = gst_harness_try_pull(rtcp);
  ASSERT_NE(out, nullptr);
  GstMapInfo map;
  gst_buffer_map(out, &map, GST_MAP_READ);
  EXPECT_EQ(map.size, sizeof sr);
  EXPECT_EQ(map.data[1], 200);
  gst_buffer_unmap(out, &map);
  gst_buffer_unref(out);
  branches.push_back(rtcp);
}

TEST_F(RtpFork, InvalidPacketsAreDroppedAndCounted) {
  GstHarness *a = add_branch();
  uint8_t junk[5] = {1, 2, 3, 4, 5};
  push(gst_buffer_new_memdup(junk, sizeof junk));
  push(vp8_packet(1, 0, true));
  EXPECT_EQ(drain(a).size(), 1u);
  GstStructure *stats = nullptr;
  g_object_get(fork, "stats", &stats, nullptr);
  guint64 invalid = 0;
  gst_structure_get_uint64(stats, "invalid-in", &invalid);
  EXPECT_EQ(invalid, 1u);
  gst_structure_free(stats);
}

// Devices come and go while the door's stream flows: a streaming thread pushes
// packets while this thread adds and removes branches. Every branch that
// stays sees an increasing sequence; nothing crashes or leaks.
TEST_F(RtpFork, AddAndRemoveBranchesUnderLoad) {
  constexpr uint16_t kPackets = 20000;
  std::thread streaming([&] {
    for (uint16_t i = 0; i < kPackets; ++i)  // bounded: 20,000 packets
      gst_harness_push(h, vp8_packet(i, 3000u * i, i % 30 == 0));
  });
  for (int round = 0; round < 50; ++round) {
    guint id = G_MAXUINT;
    g_signal_emit_by_name(fork, "add-branch", &id);
    ASSERT_NE(id, G_MAXUINT);
    g_usleep(200);
    gboolean ok = FALSE;
    g_signal_emit_by_name(fork, "remove-branch", id, &ok);
    EXPECT_TRUE(ok);
  }
  GstHarness *stays = add_branch();
  streaming.join();
  std::vector<Ids> got = drain(stays);
  for (size_t i = 1; i < got.size(); ++i)
    ASSERT_EQ(static_cast<uint16_t>(got[i].seq - got[i - 1].seq), 1) << "at " << i;
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
