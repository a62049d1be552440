// One packet sequence through both edges of the RTP fork core: the rtpfork
// element (GstHarness) and the proxy's relay engine (real sockets on
// loopback). What each branch receives, and the keyframe requests that go
// upstream, must be the same: a source restart, keyframes, a lost packet, a
// branch that joins mid-GOP, one that joins after the restart, and PLIs from
// two branches while a request is outstanding and after the keyframe.
#include <arpa/inet.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video-event.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "proxy/relay_engine.h"
#include "rtpfork/gstrtpfork.h"
#include "rtpfork/rtcp_packet.h"
#include "rtpfork/rtp_header.h"

namespace {

namespace rtp = portier::rtp;
using portier::proxy::RelayAddress;
using portier::proxy::RelayEngine;

constexpr uint32_t kDoor = 0x11223344;     // the door's SSRC
constexpr uint32_t kRestart = 0xabcdef01;  // after its encoder restarted
constexpr int kWaitMs = 5000;              // a bound on every wait, not a speed check

struct Step {
  enum Kind { Packet, AddBranch, Pli } kind;
  unsigned branch = 0;  // AddBranch, Pli
  uint16_t seq = 0;
  uint32_t ts = 0;
  uint32_t ssrc = 0;
  bool key = false;
  uint8_t mark = 0;  // names the packet in its payload
};

Step packet(uint16_t seq, uint32_t ts, uint32_t ssrc, bool key, uint8_t mark) {
  return {Step::Packet, 0, seq, ts, ssrc, key, mark};
}
Step add(unsigned branch) { return {Step::AddBranch, branch}; }
Step pli(unsigned branch) { return {Step::Pli, branch}; }

const std::vector<Step> kSequence = {
    add(0),  // before the door's first packet: the keyframe is asked for with it
    packet(100, 0, kDoor, false, 1),  // before any keyframe: not cached
    packet(101, 3000, kDoor, true, 2),
    packet(102, 6000, kDoor, false, 3),
    packet(103, 9000, kDoor, false, 4),
    packet(105, 15000, kDoor, false, 6),  // 104 is lost
    add(1),                               // mid-GOP: 2, 3, 4, 6 replayed
    pli(0),                               // while the join's request is outstanding
    pli(1),
    packet(106, 18000, kDoor, true, 7),
    packet(107, 21000, kDoor, false, 8),
    pli(1),                               // after the keyframe: asks again
    packet(5000, 90, kRestart, true, 9),  // the door's encoder restarted
    packet(5001, 3090, kRestart, false, 10),
    add(2),  // after the restart: only the new source's GOP
    packet(5002, 6090, kRestart, false, 11),
};
constexpr unsigned kBranches = 3;

// A VP8 packet (RFC 7741 §4.2, §4.3): S=1, the keyframe bit, then the mark.
std::vector<uint8_t> vp8(const Step &s) {
  std::vector<uint8_t> p(16, 0);
  p[0] = 0x80;
  p[1] = 96;
  rtp::write16(&p[2], s.seq);
  rtp::write32(&p[4], s.ts);
  rtp::write32(&p[8], s.ssrc);
  p[12] = 0x10;
  p[13] = s.key ? 0x50 : 0x51;
  p[14] = s.mark;
  return p;
}

struct Received {
  uint8_t mark;
  uint16_t seq;
  uint32_t ts;
  uint32_t ssrc;
  bool operator==(const Received &o) const {
    return mark == o.mark && seq == o.seq && ts == o.ts && ssrc == o.ssrc;
  }
};

Received received(const uint8_t *data, size_t size) {
  rtp::Header h;
  EXPECT_TRUE(rtp::parse(data, size, &h));
  return {size > 14 ? data[14] : uint8_t(0), h.seq, h.timestamp, h.ssrc};
}

// What one edge did: per branch what it received, and after each step how
// many packets each branch had and how many keyframe requests were sent or
// de-duplicated (the engine edge waits for the same before its next step).
struct Outcome {
  std::vector<Received> branch[kBranches];
  struct Progress {
    size_t received[kBranches] = {};
    uint64_t requests_sent = 0, requests_suppressed = 0;
  };
  std::vector<Progress> after_step;
  std::vector<uint32_t> requests;  // the SSRC each request named (0: not said)
};

// ------------------------------------------------------------------ the element

Outcome through_the_element() {
  Outcome out;
  GstHarness *h = gst_harness_new_with_padnames("rtpfork", "sink", nullptr);
  GstElement *fork = h->element;
  g_object_set(fork, "keyframe-min-interval", 0u, "keyframe-retry", 60000u, nullptr);
  gst_harness_play(h);
  gst_harness_set_src_caps_str(
      h, "application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,payload=96");
  GstHarness *branches[kBranches] = {};
  for (const Step &s : kSequence) {
    switch (s.kind) {
      case Step::AddBranch:
        branches[s.branch] = gst_harness_new_with_element(fork, nullptr, "src_%u");
        break;
      case Step::Pli:
        gst_harness_push_upstream_event(
            branches[s.branch],
            gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 1));
        break;
      case Step::Packet: {
        const std::vector<uint8_t> bytes = vp8(s);
        EXPECT_EQ(gst_harness_push(h, gst_buffer_new_memdup(bytes.data(), bytes.size())),
                  GST_FLOW_OK);
        break;
      }
    }
    Outcome::Progress progress;
    for (unsigned b = 0; b < kBranches; ++b) {
      while (branches[b] && gst_harness_buffers_in_queue(branches[b]) > 0) {
        GstBuffer *buf = gst_harness_pull(branches[b]);
        GstMapInfo map;
        gst_buffer_map(buf, &map, GST_MAP_READ);
        out.branch[b].push_back(received(map.data, map.size));
        gst_buffer_unmap(buf, &map);
        gst_buffer_unref(buf);
      }
      progress.received[b] = out.branch[b].size();
    }
    while (GstEvent *e = gst_harness_try_pull_upstream_event(h)) {
      if (gst_video_event_is_force_key_unit(e)) out.requests.push_back(0);
      gst_event_unref(e);
    }
    GstStructure *stats = nullptr;
    g_object_get(fork, "stats", &stats, nullptr);
    gst_structure_get_uint64(stats, "keyframe-requests-sent", &progress.requests_sent);
    gst_structure_get_uint64(stats, "keyframe-requests-suppressed", &progress.requests_suppressed);
    gst_structure_free(stats);
    out.after_step.push_back(progress);
  }
  for (GstHarness *b : branches)
    if (b) gst_harness_teardown(b);
  gst_harness_teardown(h);
  return out;
}

// ------------------------------------------------------------------ the engine

// A UDP socket on 127.0.0.1, port chosen by the kernel.
struct Socket {
  Socket() {
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Socket() { close(fd); }
  Socket(const Socket &) = delete;
  Socket &operator=(const Socket &) = delete;

  RelayAddress address() const { return RelayAddress::from("127.0.0.1", port); }
  void send_to(const Socket &to, const std::vector<uint8_t> &bytes) const {
    const RelayAddress a = to.address();
    sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr *>(&a.addr), a.len);
  }
  // Every datagram waiting now, or the first one within `ms`.
  std::vector<std::vector<uint8_t>> receive(int ms) const {
    std::vector<std::vector<uint8_t>> got;
    pollfd p{fd, POLLIN, 0};
    while (poll(&p, 1, got.empty() ? ms : 0) > 0) {
      uint8_t buf[2048];
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) got.emplace_back(buf, buf + n);
    }
    return got;
  }

  int fd = -1;
  uint16_t port = 0;
};

// Calls `done` until it says yes, reading what arrived in between; false
// when the bound passed first.
template <typename Read, typename Done>
bool wait_for(Read read, Done done) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(kWaitMs);
  for (;;) {
    read();
    if (done()) return true;
    if (std::chrono::steady_clock::now() > end) return false;
  }
}

Outcome through_the_engine(const Outcome &reference) {
  Outcome out;
  RelayEngine engine(1, RelayEngine::Latch::SignalledHost, {60'000'000, 0});
  Socket door_rtp, door_rtcp, caller_rtp, caller_rtcp;
  std::unique_ptr<Socket> device_rtp[kBranches], device_rtcp[kBranches], relay_rtp[kBranches],
      relay_rtcp[kBranches];
  RelayEngine::Call *call = engine.open_call("parity", 0x5e1f5e1f);
  engine.add_stream(
      call, 0,
      RelayEngine::Leg{caller_rtp.fd, caller_rtcp.fd, door_rtp.address(), door_rtcp.address()},
      rtp::VideoCodec::VP8, 90000);

  auto read = [&] {
    for (unsigned b = 0; b < kBranches; ++b)
      if (device_rtp[b])
        for (const auto &d : device_rtp[b]->receive(1))
          out.branch[b].push_back(received(d.data(), d.size()));
    for (const auto &d : door_rtcp.receive(0))
      if (d.size() == rtp::kPliSize && rtp::asks_for_keyframe(d.data(), d.size()))
        out.requests.push_back(rtp::read32(d.data() + 8));
  };
  for (size_t i = 0; i < kSequence.size(); ++i) {
    const Step &s = kSequence[i];
    switch (s.kind) {
      case Step::AddBranch: {
        const unsigned b = s.branch;
        device_rtp[b] = std::make_unique<Socket>();
        device_rtcp[b] = std::make_unique<Socket>();
        relay_rtp[b] = std::make_unique<Socket>();
        relay_rtcp[b] = std::make_unique<Socket>();
        engine.add_branch(call, 0, b,
                          RelayEngine::Leg{relay_rtp[b]->fd, relay_rtcp[b]->fd,
                                           device_rtp[b]->address(), device_rtcp[b]->address()});
        break;
      }
      case Step::Pli: {
        std::vector<uint8_t> bytes(rtp::kPliSize);
        rtp::write_pli(bytes.data(), 0x0d0d0d00 + s.branch, kDoor);
        device_rtcp[s.branch]->send_to(*relay_rtcp[s.branch], bytes);
        break;
      }
      case Step::Packet:
        door_rtp.send_to(caller_rtp, vp8(s));
        break;
    }
    // The engine works on its own thread: the next step waits until this
    // one has had the effect it had on the element.
    const Outcome::Progress &want = reference.after_step[i];
    const bool caught_up = wait_for(read, [&] {
      const RelayEngine::ForkCounters f = engine.fork_counters(call, 0);
      for (unsigned b = 0; b < kBranches; ++b)
        if (out.branch[b].size() < want.received[b]) return false;
      return f.keyframe_requests_sent == want.requests_sent &&
             f.keyframe_requests_suppressed == want.requests_suppressed;
    });
    EXPECT_TRUE(caught_up) << "step " << i << ": the engine did not do what the element did";
    if (!caught_up) break;
  }
  wait_for(read, [&] { return out.requests.size() >= reference.requests.size(); });
  engine.close_call(call);
  return out;
}

// Timestamps after a source restart go on with the time that really passed,
// which differs between two runs: from the restart on, a branch's
// timestamps are compared as steps from its first packet of the new source.
std::vector<Received> comparable(std::vector<Received> got) {
  for (size_t i = 0; i < got.size(); ++i)
    if (got[i].mark >= 9) {
      const uint32_t base = got[i].ts;
      for (size_t j = i; j < got.size(); ++j) got[j].ts -= base;
      break;
    }
  return got;
}

std::string describe(const std::vector<Received> &v) {
  std::string s;
  for (const Received &r : v)
    s += "#" + std::to_string(r.mark) + " seq " + std::to_string(r.seq) + " ts " +
         std::to_string(r.ts) + " ssrc " + std::to_string(r.ssrc) + "\n";
  return s;
}

TEST(RtpForkParity, TheElementAndTheRelayEngineForkAlike) {
  const Outcome element = through_the_element();
  // What the sequence must give, whichever edge runs the core.
  auto marks = [](const std::vector<Received> &v) {
    std::vector<int> m;
    for (const Received &r : v) m.push_back(r.mark);
    return m;
  };
  EXPECT_EQ(marks(element.branch[0]), (std::vector<int>{1, 2, 3, 4, 6, 7, 8, 9, 10, 11}));
  EXPECT_EQ(marks(element.branch[1]), (std::vector<int>{2, 3, 4, 6, 7, 8, 9, 10, 11}))
      << "the GOP first (without the lost packet), then live";
  EXPECT_EQ(marks(element.branch[2]), (std::vector<int>{9, 10, 11})) << "only the new GOP";
  for (const Received &r : element.branch[0]) EXPECT_EQ(r.ssrc, kDoor);
  EXPECT_EQ(element.branch[0][7].seq, 108) << "the restart continues the branch's numbering";
  EXPECT_EQ(element.requests.size(), 4u)
      << "join before the first packet, the mid-GOP join, the PLI after the keyframe, the join "
         "after the restart; the PLIs during an outstanding request add nothing";
  EXPECT_EQ(element.after_step.back().requests_suppressed, 2u);

  const Outcome engine = through_the_engine(element);
  for (unsigned b = 0; b < kBranches; ++b)
    EXPECT_EQ(comparable(engine.branch[b]), comparable(element.branch[b]))
        << "branch " << b << "\nengine:\n"
        << describe(engine.branch[b]) << "element:\n"
        << describe(element.branch[b]);
  ASSERT_EQ(engine.requests.size(), element.requests.size());
  EXPECT_EQ(engine.requests, (std::vector<uint32_t>{kDoor, kDoor, kDoor, kRestart}))
      << "each PLI names the door's SSRC of the time";
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  GST_ELEMENT_REGISTER(rtpfork, nullptr);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
