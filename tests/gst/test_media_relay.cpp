// The media relay of portier-proxy driven directly, without SIP: real sockets
// on loopback, real GStreamer pipelines. The SIP-level cases (sipp, Linphone)
// are in tests/sip and tests/interop; these cover what is awkward there: IPv6
// (c=IN IP6, RFC 4566 §5.7), a port range that runs out, and offers the relay
// must refuse without keeping a port. Ports 39100-39799: no other test binds
// there (the SIP cases' relays use 40000 and up).
#include <arpa/inet.h>
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "common/sdp/sdp_rewrite.h"
#include "proxy/media_relay.h"

namespace {

using portier::proxy::MediaRelay;
using portier::proxy::RelaySettings;

// A UDP socket of a test peer (the door or a device) on the loopback address.
class Peer {
 public:
  explicit Peer(const std::string &address) : v6_(address.find(':') != std::string::npos) {
    fd_ = socket(v6_ ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    sockaddr_storage ss{};
    socklen_t len = fill(address, 0, &ss);
    if (bind(fd_, reinterpret_cast<sockaddr *>(&ss), len) != 0) ADD_FAILURE() << strerror(errno);
    getsockname(fd_, reinterpret_cast<sockaddr *>(&ss), &len);
    port_ = ntohs(v6_ ? reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port
                      : reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
    address_ = address;
  }
  ~Peer() { close(fd_); }
  Peer(const Peer &) = delete;
  Peer &operator=(const Peer &) = delete;

  uint16_t port() const { return port_; }

  void send_rtp(uint16_t to_port, uint16_t seq, uint32_t ssrc) {
    // VP8 payload descriptor with S=1 and a keyframe bit pattern (RFC 7741 §4.2/4.3)
    uint8_t pkt[40] = {0x80, 96};
    pkt[2] = seq >> 8, pkt[3] = seq & 0xff;
    const uint32_t ts = seq * 3000u;
    for (int i = 0; i < 4; ++i) pkt[4 + i] = ts >> (24 - 8 * i), pkt[8 + i] = ssrc >> (24 - 8 * i);
    pkt[12] = 0x10;
    pkt[13] = 0x00;  // P=0: a keyframe
    sockaddr_storage ss{};
    socklen_t len = fill(address_, to_port, &ss);
    sendto(fd_, pkt, sizeof pkt, 0, reinterpret_cast<sockaddr *>(&ss), len);
  }

  // SSRCs of the RTP packets that arrive within `ms` (a bound on the wait,
  // not an assertion about speed).
  std::vector<uint32_t> receive(int ms) {
    std::vector<uint32_t> ssrcs;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            end - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) break;
      uint8_t buf[2048];
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n >= 12 && (buf[0] >> 6) == 2 && !(buf[1] >= 200 && buf[1] <= 206))
        ssrcs.push_back(uint32_t(buf[8]) << 24 | uint32_t(buf[9]) << 16 | uint32_t(buf[10]) << 8 |
                        buf[11]);
    }
    return ssrcs;
  }

 private:
  socklen_t fill(const std::string &address, uint16_t port, sockaddr_storage *ss) const {
    if (v6_) {
      auto *a = reinterpret_cast<sockaddr_in6 *>(ss);
      a->sin6_family = AF_INET6;
      a->sin6_port = htons(port);
      inet_pton(AF_INET6, address.c_str(), &a->sin6_addr);
      return sizeof *a;
    }
    auto *a = reinterpret_cast<sockaddr_in *>(ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, address.c_str(), &a->sin_addr);
    return sizeof *a;
  }

  bool v6_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::string address_;
};

std::string sdp(const std::string &address, uint16_t video_port, const char *direction) {
  const std::string ip = address.find(':') != std::string::npos ? "IP6" : "IP4";
  return "v=0\r\no=peer 1 1 IN " + ip + " " + address + "\r\ns=-\r\nc=IN " + ip + " " + address +
         "\r\nt=0 0\r\nm=video " + std::to_string(video_port) +
         " RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=" + direction + "\r\n";
}

// The relay's port and address in an SDP the relay wrote.
portier::sdp::Media video_of(const std::string &text) {
  std::string error;
  auto s = portier::sdp::parse(text, &error);
  EXPECT_TRUE(s) << error << "\n" << text;
  return s && !s->media.empty() ? s->media[0] : portier::sdp::Media{};
}

RelaySettings settings(const std::string &address, uint16_t min, uint16_t max) {
  RelaySettings r;
  r.enabled = true;
  r.sdp_address = address;
  r.port_min = min;
  r.port_max = max;
  return r;
}

constexpr uint32_t kDoor = 0xd00d, kMon0 = 0xa0, kMon1 = 0xa1;

class RelayFamily : public ::testing::TestWithParam<const char *> {};

// Scenario 1 through the relay over IPv4 and IPv6: both devices see the door
// while ringing; after the 200 only the winner does, and its media reaches
// the door; every port is free after the call.
TEST_P(RelayFamily, ForksEarlyMediaThenOnlyTheWinner) {
  const std::string addr = GetParam();
  const uint16_t base = addr == "::1" ? 39200 : 39100;
  MediaRelay relay(settings(addr, base, base + 99));
  Peer door(addr), mon0(addr), mon1(addr);
  std::string error;
  ASSERT_TRUE(relay.start_call("c1", sdp(addr, door.port(), "sendrecv"), &error)) << error;

  std::vector<portier::sdp::Media> to_branch;
  for (size_t b = 0; b < 2; ++b) {
    auto offer = relay.offer_for_branch("c1", b, &error);
    ASSERT_TRUE(offer) << error;
    to_branch.push_back(video_of(*offer));
    EXPECT_EQ(to_branch[b].address, addr) << "a branch's offer must point at the relay";
    EXPECT_NE(to_branch[b].port, door.port());
  }
  auto a0 = relay.answer_from_branch("c1", 0, sdp(addr, mon0.port(), "recvonly"), false);
  auto a1 = relay.answer_from_branch("c1", 1, sdp(addr, mon1.port(), "recvonly"), false);
  EXPECT_TRUE(a0.forward) << "the first 183 with SDP reaches the door";
  EXPECT_FALSE(a1.forward) << "later 183s are absorbed: the door sees one early dialog";
  const auto door_facing = video_of(a0.sdp);
  EXPECT_EQ(door_facing.address, addr);
  EXPECT_EQ(door_facing.port, video_of(a1.sdp).port)
      << "every branch's answer names the same door-facing port";

  // Ringing: the door's video reaches both devices.
  for (uint16_t seq = 1; seq <= 20; ++seq) door.send_rtp(door_facing.port, seq, kDoor);
  auto got0 = mon0.receive(2000), got1 = mon1.receive(500);
  EXPECT_FALSE(got0.empty()) << "mon0 received nothing while ringing";
  EXPECT_FALSE(got1.empty()) << "mon1 received nothing while ringing";
  for (uint32_t s : got0) EXPECT_EQ(s, kDoor);

  // mon1 answers.
  auto ok = relay.answer_from_branch("c1", 1, sdp(addr, mon1.port(), "sendrecv"), true);
  EXPECT_TRUE(ok.forward);
  mon0.receive(200);  // what was still in flight before the 200
  for (uint16_t seq = 21; seq <= 40; ++seq) door.send_rtp(door_facing.port, seq, kDoor);
  EXPECT_FALSE(mon1.receive(2000).empty()) << "the winner stopped receiving the door";
  EXPECT_TRUE(mon0.receive(300).empty()) << "a loser still receives the door after the 200";
  for (uint16_t seq = 1; seq <= 10; ++seq) mon1.send_rtp(to_branch[1].port, seq, kMon1);
  auto back = door.receive(2000);
  ASSERT_FALSE(back.empty()) << "the winner's media did not reach the door";
  EXPECT_EQ(back[0], kMon1);

  EXPECT_GT(relay.ports_in_use(), 0u);
  relay.end_call("c1", "test");
  EXPECT_EQ(relay.ports_in_use(), 0u);
  EXPECT_EQ(relay.calls(), 0u);
}

// A loser's packets never reach the door, before or after the answer.
TEST_P(RelayFamily, OnlyTheWinnerTalksToTheDoor) {
  const std::string addr = GetParam();
  const uint16_t base = addr == "::1" ? 39400 : 39300;
  MediaRelay relay(settings(addr, base, base + 99));
  Peer door(addr), mon0(addr), mon1(addr);
  std::string error;
  ASSERT_TRUE(relay.start_call("c2", sdp(addr, door.port(), "sendrecv"), &error)) << error;
  std::vector<uint16_t> branch_port;
  for (size_t b = 0; b < 2; ++b)
    branch_port.push_back(video_of(*relay.offer_for_branch("c2", b, &error)).port);
  relay.answer_from_branch("c2", 0, sdp(addr, mon0.port(), "sendrecv"), false);
  relay.answer_from_branch("c2", 1, sdp(addr, mon1.port(), "sendrecv"), false);
  for (uint16_t seq = 1; seq <= 10; ++seq) mon0.send_rtp(branch_port[0], seq, kMon0);
  EXPECT_TRUE(door.receive(300).empty()) << "an early device's RTP reached the door";
  relay.answer_from_branch("c2", 1, sdp(addr, mon1.port(), "sendrecv"), true);
  for (uint16_t seq = 11; seq <= 20; ++seq) {
    mon0.send_rtp(branch_port[0], seq, kMon0);
    mon1.send_rtp(branch_port[1], seq, kMon1);
  }
  auto back = door.receive(1500);
  ASSERT_FALSE(back.empty());
  for (uint32_t s : back) EXPECT_EQ(s, kMon1) << "a loser's RTP reached the door";
}

INSTANTIATE_TEST_SUITE_P(Loopback, RelayFamily, ::testing::Values("127.0.0.1", "::1"),
                         [](const auto &info) {
                           return std::string(info.param) == "::1" ? "IPv6" : "IPv4";
                         });

// Offers the relay cannot use are refused with a reason, and keep no port.
TEST(MediaRelay, RefusesUnusableOffersAndKeepsNoPort) {
  MediaRelay relay(settings("127.0.0.1", 39500, 39599));
  std::string error;
  EXPECT_FALSE(relay.start_call("bad", "v=0\r\nthis is not SDP\r\n", &error));
  EXPECT_FALSE(error.empty());
  error.clear();
  const std::string app =
      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
      "m=audio 4000 RTP/AVP 0\r\nm=application 5000 UDP/BFCP *\r\n";
  EXPECT_FALSE(relay.start_call("app", app, &error));
  EXPECT_NE(error.find("cannot relay"), std::string::npos) << error;
  EXPECT_EQ(relay.ports_in_use(), 0u) << "a refused call kept its ports";
  EXPECT_EQ(relay.calls(), 0u);
  EXPECT_FALSE(relay.offer_for_branch("nope", 0, &error));
}

// A range with room for three pairs: a call with two streams takes two, its
// first branch cannot get two more, and nothing leaks.
TEST(MediaRelay, PortRangeRunsOutCleanly) {
  MediaRelay relay(settings("127.0.0.1", 39600, 39605));
  std::string error;
  const std::string two =
      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
      "m=audio 4000 RTP/AVP 0\r\nm=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
  ASSERT_TRUE(relay.start_call("c", two, &error)) << error;
  EXPECT_EQ(relay.ports_in_use(), 4u);
  EXPECT_FALSE(relay.offer_for_branch("c", 0, &error));
  EXPECT_NE(error.find("no free relay port"), std::string::npos) << error;
  EXPECT_EQ(relay.ports_in_use(), 4u) << "a branch that failed half way kept a port";
  ASSERT_TRUE(relay.start_call("d", sdp("127.0.0.1", 4010, "sendrecv"), &error)) << error;
  error.clear();
  EXPECT_FALSE(relay.start_call("e", sdp("127.0.0.1", 4012, "sendrecv"), &error));
  EXPECT_FALSE(error.empty());
  relay.end_call("c", "test");
  relay.end_call("d", "test");
  EXPECT_EQ(relay.ports_in_use(), 0u);
}

// The proxy must not run itself out of file descriptors (GLib aborts the
// whole process when a thread cannot get its wake-up fd): with a low
// RLIMIT_NOFILE the relay refuses the call that would not fit, cleanly, and
// takes calls again once others end.
TEST(MediaRelay, RefusesCallsBeforeRunningOutOfFileDescriptors) {
  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  struct rlimit low = saved;
  low.rlim_cur = portier::proxy::PortPool::kFdReserve + 4 * portier::proxy::PortPool::kFdsPerPair;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  std::string error;
  {
    MediaRelay relay(settings("127.0.0.1", 39700, 39799));
    std::vector<std::string> started;
    for (int i = 0; i < 10; ++i) {
      const std::string id = "fd" + std::to_string(i);
      if (!relay.start_call(id, sdp("127.0.0.1", 4000 + 2 * i, "sendrecv"), &error)) break;
      started.push_back(id);
    }
    EXPECT_EQ(started.size(), 4u) << "four pairs fit, the fifth is refused";
    EXPECT_NE(error.find("RLIMIT_NOFILE"), std::string::npos) << error;
    EXPECT_NE(error.find("no free relay port"), std::string::npos)
        << "the router answers 503 Media relay full for this";
    relay.end_call(started.front(), "test");
    EXPECT_TRUE(relay.start_call("again", sdp("127.0.0.1", 4100, "sendrecv"), &error)) << error;
  }
  setrlimit(RLIMIT_NOFILE, &saved);
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
