// The media relay of portier-proxy driven directly, without SIP: real sockets
// on loopback, real GStreamer pipelines. The SIP-level cases (sipp, Linphone)
// are in tests/sip and tests/interop; these cover what is awkward there: IPv6
// (c=IN IP6, RFC 4566 §5.7), a port range that runs out, and offers the relay
// must refuse without keeping a port; and what the relay's own I/O threads
// must get right: GOP replay at once, many calls on few threads, junk, and
// calls ended while their packets flow, ICE-lite checks. Ports 39100-39879 and 31000-31999: no
// other test binds there (the SIP cases' relays use 40000 and up, the door's
// default range is 30000-30999).
#include <arpa/inet.h>
#include <dirent.h>
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "proxy/ice_lite.h"
#include "proxy/media_relay.h"
#include "sip/sdp/sdp_rewrite.h"

namespace {

using portier::proxy::MediaRelay;
using portier::proxy::RelaySettings;

// A UDP socket of a test peer (the door or a device) on the loopback address.
class Peer {
 public:
  // Bound to `address`; sends to the relay at `relay` (default: the same address).
  explicit Peer(const std::string &address, const std::string &relay = "")
      : v6_(address.find(':') != std::string::npos) {
    fd_ = socket(v6_ ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
    sockaddr_storage ss{};
    socklen_t len = fill(address, 0, &ss);
    if (bind(fd_, reinterpret_cast<sockaddr *>(&ss), len) != 0) ADD_FAILURE() << strerror(errno);
    getsockname(fd_, reinterpret_cast<sockaddr *>(&ss), &len);
    port_ = ntohs(v6_ ? reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port
                      : reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
    address_ = relay.empty() ? address : relay;
  }
  ~Peer() { close(fd_); }
  Peer(const Peer &) = delete;
  Peer &operator=(const Peer &) = delete;

  uint16_t port() const { return port_; }
  int fd() const { return fd_; }

  void send_raw(uint16_t to_port, const std::vector<uint8_t> &bytes) {
    sockaddr_storage ss{};
    socklen_t len = fill(address_, to_port, &ss);
    sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr *>(&ss), len);
  }

  // Whole RTP datagrams, until `count` came or `ms` passed (a bound on the
  // wait). RTCP is left out: a test peer's port + 1 may be another peer's
  // port, where the relay's PLIs to the door (RTCP port = RTP port + 1) land.
  std::vector<std::vector<uint8_t>> receive_packets(size_t count, int ms) {
    std::vector<std::vector<uint8_t>> got;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (got.size() < count) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            end - std::chrono::steady_clock::now())
                            .count();
      if (left <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) break;
      uint8_t buf[2048];
      const ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n > 0 && !(n >= 2 && buf[1] >= 192 && buf[1] <= 223)) got.emplace_back(buf, buf + n);
    }
    return got;
  }

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
    for (const auto &buf : receive_packets(SIZE_MAX, ms))
      if (buf.size() >= 12 && (buf[0] >> 6) == 2)
        ssrcs.push_back(uint32_t(buf[8]) << 24 | uint32_t(buf[9]) << 16 | uint32_t(buf[10]) << 8 |
                        buf[11]);
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

// A VP8 RTP packet (RFC 7741): `start` sets S (the first packet of a frame),
// `key` clears P (a keyframe); the byte after the payload header names the
// packet, so a receiver can tell which one it got.
std::vector<uint8_t> vp8_packet(uint16_t seq, uint32_t ts, uint32_t ssrc, bool start, bool key,
                                uint8_t tag) {
  std::vector<uint8_t> p(60, 0);
  p[0] = 0x80, p[1] = 96;
  p[2] = seq >> 8, p[3] = seq & 0xff;
  for (int i = 0; i < 4; ++i) p[4 + i] = ts >> (24 - 8 * i), p[8 + i] = ssrc >> (24 - 8 * i);
  p[12] = start ? 0x10 : 0x00;
  p[13] = key ? 0x00 : 0x01;
  p[14] = tag;
  return p;
}

uint16_t seq_of(const std::vector<uint8_t> &p) { return static_cast<uint16_t>(p[2] << 8 | p[3]); }
uint32_t ssrc_of(const std::vector<uint8_t> &p) {
  return uint32_t(p[8]) << 24 | uint32_t(p[9]) << 16 | uint32_t(p[10]) << 8 | p[11];
}

size_t threads_of_this_process() {
  size_t n = 0;
  if (DIR *d = opendir("/proc/self/task")) {
    while (dirent *e = readdir(d)) n += e->d_name[0] != '.';
    closedir(d);
  }
  return n;
}

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

std::string offer_with(const std::string &c_line, const std::string &media) {
  return "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n" + c_line + "\r\nt=0 0\r\n" + media;
}

// Offers the relay cannot use are refused with a reason, and keep no port.
TEST(MediaRelay, RefusesUnusableOffersAndKeepsNoPort) {
  MediaRelay relay(settings("127.0.0.1", 39500, 39599));
  std::string error;
  MediaRelay::Refusal why = MediaRelay::Refusal::None;
  EXPECT_FALSE(relay.start_call("bad", "v=0\r\nthis is not SDP\r\n", &error, {}, &why));
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(why, MediaRelay::Refusal::BadSdp);
  const struct {
    const char *name, *c_line, *expected;
  } refused[] = {
      // A name would need a blocking DNS lookup on the SIP thread.
      {"host name", "c=IN IP4 door.example", "is not an IP address"},
      // RFC 4566 §5.7: an IPv6 peer, and the relay has only an IPv4 address.
      {"IPv6 on an IPv4 relay", "c=IN IP6 ::1", "IPv6 address ::1"},
      {"no stream to relay", "c=IN IP4 127.0.0.1", "no audio or video"},
  };
  for (const auto &r : refused) {
    SCOPED_TRACE(r.name);
    error.clear();
    const std::string media = std::string(r.name) == "no stream to relay"
                                  ? "m=text 4000 RTP/AVP 98\r\na=rtpmap:98 t140/1000\r\n"
                                  : "m=audio 4000 RTP/AVP 0\r\n";
    EXPECT_FALSE(relay.start_call("x", offer_with(r.c_line, media), &error, {}, &why));
    EXPECT_NE(error.find(r.expected), std::string::npos) << error;
    EXPECT_EQ(why, MediaRelay::Refusal::BadSdp);
  }
  EXPECT_EQ(relay.ports_in_use(), 0u) << "a refused call kept its ports";
  EXPECT_EQ(relay.calls(), 0u);
  EXPECT_FALSE(relay.offer_for_branch("nope", 0, &error));
}

// One stream the relay cannot carry (BFCP, m=text) is rejected with port 0
// towards the devices and in the caller's answer (RFC 3264 §6, §8.2); the
// audio is relayed all the same.
TEST(MediaRelay, UnrelayableStreamIsRejectedAndTheRestRelayed) {
  MediaRelay relay(settings("127.0.0.1", 39610, 39699));
  std::string error;
  const std::string offer = offer_with("c=IN IP4 127.0.0.1",
                                       "m=audio 4000 RTP/AVP 0\r\nm=application 5000 UDP/BFCP *\r\n"
                                       "m=text 5002 RTP/AVP 98\r\na=rtpmap:98 t140/1000\r\n");
  ASSERT_TRUE(relay.start_call("app", offer, &error)) << error;
  EXPECT_EQ(relay.ports_in_use(), 2u) << "only the audio takes relay ports";
  auto to_device = relay.offer_for_branch("app", 0, &error);
  ASSERT_TRUE(to_device) << error;
  auto o = portier::sdp::parse(*to_device, &error);
  ASSERT_TRUE(o) << error;
  ASSERT_EQ(o->media.size(), 3u);
  EXPECT_NE(o->media[0].port, 0);
  EXPECT_EQ(o->media[1].port, 0) << *to_device;
  EXPECT_EQ(o->media[2].port, 0) << *to_device;
  const std::string answer = offer_with("c=IN IP4 127.0.0.1",
                                        "m=audio 4100 RTP/AVP 0\r\nm=application 0 UDP/BFCP *\r\n"
                                        "m=text 0 RTP/AVP 98\r\n");
  auto a = relay.answer_from_branch("app", 0, answer, true);
  ASSERT_TRUE(a.error.empty()) << a.error;
  auto up = portier::sdp::parse(a.sdp, &error);
  ASSERT_TRUE(up) << error;
  ASSERT_EQ(up->media.size(), 3u);
  EXPECT_NE(up->media[0].port, 4100) << "the caller's audio must go to the relay";
  EXPECT_EQ(up->media[1].port, 0);
  EXPECT_EQ(up->media[2].port, 0);
  relay.end_call("app", "test");
  EXPECT_EQ(relay.ports_in_use(), 0u);
}

// RFC 3264 §6: an answer that leaves out the video line of an audio+video
// offer is taken as rejecting the video; the caller gets both lines, the
// audio pointed at the relay (not at the device, which would bypass it).
TEST(MediaRelay, AnswerLeavingOutALineIsRestoredAndStaysRelayed) {
  MediaRelay relay(settings("127.0.0.1", 31800, 31899));
  std::string error;
  const std::string offer =
      offer_with("c=IN IP4 127.0.0.1",
                 "m=audio 4000 RTP/AVP 0\r\nm=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n");
  ASSERT_TRUE(relay.start_call("av", offer, &error)) << error;
  ASSERT_TRUE(relay.offer_for_branch("av", 0, &error)) << error;
  auto a = relay.answer_from_branch(
      "av", 0, offer_with("c=IN IP4 127.0.0.1", "m=audio 4100 RTP/AVP 0\r\n"), true);
  ASSERT_TRUE(a.error.empty()) << a.error;
  auto up = portier::sdp::parse(a.sdp, &error);
  ASSERT_TRUE(up) << error;
  ASSERT_EQ(up->media.size(), 2u) << a.sdp;
  EXPECT_EQ(up->media[0].type, "audio");
  EXPECT_NE(up->media[0].port, 4100) << a.sdp;
  EXPECT_NE(up->media[0].port, 0) << a.sdp;
  EXPECT_EQ(up->media[1].type, "video");
  EXPECT_EQ(up->media[1].port, 0) << a.sdp;
  // A device that answers with a host name or an IPv6 address gets the
  // stream rejected, never relayed to nowhere.
  ASSERT_TRUE(relay.offer_for_branch("av", 1, &error)) << error;
  auto v6 = relay.answer_from_branch(
      "av", 1,
      offer_with("c=IN IP6 ::1",
                 "m=audio 4100 RTP/AVP 0\r\nm=video 4102 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"),
      false);
  ASSERT_TRUE(v6.error.empty()) << v6.error;
  auto v6up = portier::sdp::parse(v6.sdp, &error);
  ASSERT_TRUE(v6up) << error;
  EXPECT_EQ(v6up->media[0].port, 0) << v6.sdp;
  EXPECT_EQ(v6up->media[1].port, 0) << v6.sdp;
  relay.end_call("av", "test");
  EXPECT_EQ(relay.ports_in_use(), 0u);
}

// One resident cannot take every relay port: beyond max-calls-per-user (or
// max-calls-per-source) calls are refused before a port is taken, while
// others still get through; an ended call makes room again.
TEST(MediaRelay, PerUserAndPerSourceLimitsTakeNoPort) {
  RelaySettings rs = settings("127.0.0.1", 31900, 31999);
  rs.max_calls_per_user = 2;
  rs.max_calls_per_source = 3;
  MediaRelay relay(rs);
  std::string error;
  MediaRelay::Refusal why = MediaRelay::Refusal::None;
  const MediaRelay::Owner alice{"sip:alice@home.example", "127.0.0.2"};
  const MediaRelay::Owner bob{"sip:bob@home.example", "127.0.0.2"};
  const MediaRelay::Owner carol{"sip:carol@home.example", "127.0.0.1"};
  ASSERT_TRUE(relay.start_call("a1", sdp("127.0.0.1", 4000, "sendrecv"), &error, alice, &why));
  ASSERT_TRUE(relay.start_call("a2", sdp("127.0.0.1", 4002, "sendrecv"), &error, alice, &why));
  const size_t ports = relay.ports_in_use();
  EXPECT_FALSE(relay.start_call("a3", sdp("127.0.0.1", 4004, "sendrecv"), &error, alice, &why));
  EXPECT_EQ(why, MediaRelay::Refusal::UserLimit);
  EXPECT_NE(error.find("max-calls-per-user"), std::string::npos) << error;
  EXPECT_EQ(relay.ports_in_use(), ports) << "a refused call took ports";
  ASSERT_TRUE(relay.start_call("b1", sdp("127.0.0.1", 4006, "sendrecv"), &error, bob, &why));
  EXPECT_FALSE(relay.start_call("b2", sdp("127.0.0.1", 4008, "sendrecv"), &error, bob, &why));
  EXPECT_EQ(why, MediaRelay::Refusal::SourceLimit) << "three calls from 127.0.0.2 already";
  EXPECT_TRUE(relay.start_call("c1", sdp("127.0.0.1", 4010, "sendrecv"), &error, carol, &why))
      << error;
  relay.end_call("a1", "test");
  EXPECT_TRUE(relay.start_call("a3", sdp("127.0.0.1", 4004, "sendrecv"), &error, alice, &why))
      << error;
  for (const char *id : {"a2", "a3", "b1", "c1"}) relay.end_call(id, "test");
  EXPECT_EQ(relay.ports_in_use(), 0u);
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

// A device whose 183 comes in the middle of a GOP gets the cached GOP from
// the keyframe on at once, before any new live packet, with sequence numbers
// that go on without a gap into the live stream (a picture at once).
TEST(MediaRelay, NewBranchGetsTheCachedGopAtOnce) {
  MediaRelay relay(settings("127.0.0.1", 31000, 31099));
  Peer door("127.0.0.1"), mon0("127.0.0.1"), mon1("127.0.0.1");
  std::string error;
  ASSERT_TRUE(relay.start_call("gop", sdp("127.0.0.1", door.port(), "sendrecv"), &error)) << error;
  ASSERT_TRUE(relay.offer_for_branch("gop", 0, &error)) << error;
  ASSERT_TRUE(relay.offer_for_branch("gop", 1, &error)) << error;
  const auto a0 =
      relay.answer_from_branch("gop", 0, sdp("127.0.0.1", mon0.port(), "recvonly"), false);
  const uint16_t relay_port = video_of(a0.sdp).port;

  // A delta frame before any keyframe (nothing to replay), then a keyframe
  // in three packets and three delta frames: the GOP is tags 1-6.
  door.send_raw(relay_port, vp8_packet(99, 0, kDoor, true, false, 0));
  door.send_raw(relay_port, vp8_packet(100, 3000, kDoor, true, true, 1));
  door.send_raw(relay_port, vp8_packet(101, 3000, kDoor, false, true, 2));
  door.send_raw(relay_port, vp8_packet(102, 3000, kDoor, false, true, 3));
  for (uint16_t i = 0; i < 3; ++i)
    door.send_raw(relay_port, vp8_packet(103 + i, 6000 + 3000 * i, kDoor, true, false, 4 + i));
  ASSERT_EQ(mon0.receive_packets(7, 3000).size(), 7u) << "mon0 did not get the door's packets";

  relay.answer_from_branch("gop", 1, sdp("127.0.0.1", mon1.port(), "recvonly"), false);
  const auto replayed = mon1.receive_packets(6, 3000);
  ASSERT_EQ(replayed.size(), 6u) << "the joining branch did not get the cached GOP at once";
  for (size_t i = 0; i < replayed.size(); ++i) {
    EXPECT_EQ(replayed[i][14], i + 1) << "packet " << i << " of the replay is not the GOP's";
    if (i > 0) {
      EXPECT_EQ(seq_of(replayed[i]), uint16_t(seq_of(replayed[i - 1]) + 1));
    }
    EXPECT_EQ(ssrc_of(replayed[i]), ssrc_of(replayed[0]));
  }
  EXPECT_EQ(replayed[0][13] & 0x01, 0) << "the replay does not start with the keyframe";

  // The live stream goes on where the replay ended.
  door.send_raw(relay_port, vp8_packet(106, 15000, kDoor, true, false, 7));
  const auto live = mon1.receive_packets(1, 3000);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_EQ(live[0][14], 7);
  EXPECT_EQ(seq_of(live[0]), uint16_t(seq_of(replayed.back()) + 1));
  EXPECT_EQ(ssrc_of(live[0]), ssrc_of(replayed[0]));
  // The counter is raised after the send returns: the device may be faster.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (relay.json().find("\"packets\":7") == std::string::npos &&
         std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_NE(relay.json().find("\"packets\":7"), std::string::npos) << relay.json();
}

// 40 calls x 4 early branches run on the configured number of I/O threads,
// not threads per socket, and every branch gets every packet.
TEST(MediaRelay, ManyCallsShareAFewIoThreads) {
  constexpr int kCalls = 40, kBranches = 4, kPackets = 5;
  RelaySettings rs = settings("127.0.0.1", 31100, 31599);
  rs.threads = 2;
  const size_t threads_before = threads_of_this_process();
  MediaRelay relay(rs);
  std::vector<std::unique_ptr<Peer>> doors, devices;
  std::vector<uint16_t> door_facing;
  std::string error;
  for (int c = 0; c < kCalls; ++c) {
    const std::string id = "many" + std::to_string(c);
    doors.push_back(std::make_unique<Peer>("127.0.0.1"));
    ASSERT_TRUE(relay.start_call(id, sdp("127.0.0.1", doors.back()->port(), "sendrecv"), &error))
        << error;
    for (int b = 0; b < kBranches; ++b) ASSERT_TRUE(relay.offer_for_branch(id, b, &error)) << error;
    for (int b = 0; b < kBranches; ++b) {
      devices.push_back(std::make_unique<Peer>("127.0.0.1"));
      auto a = relay.answer_from_branch(id, b, sdp("127.0.0.1", devices.back()->port(), "recvonly"),
                                        false);
      if (b == 0) door_facing.push_back(video_of(a.sdp).port);
    }
  }
  EXPECT_EQ(relay.io_threads(), 2u);
  EXPECT_LE(threads_of_this_process() - threads_before, 2u)
      << "the relay must not start threads per call or socket";
  for (int c = 0; c < kCalls; ++c)
    for (uint16_t seq = 1; seq <= kPackets; ++seq)
      doors[c]->send_rtp(door_facing[c], seq, kDoor + c);
  for (size_t d = 0; d < devices.size(); ++d) {
    const auto got = devices[d]->receive_packets(kPackets, 5000);
    EXPECT_EQ(got.size(), size_t(kPackets))
        << "device " << d << " (call " << d / kBranches << ") lost packets";
    for (const auto &p : got) EXPECT_EQ(ssrc_of(p), kDoor + d / kBranches);
  }
  EXPECT_LE(threads_of_this_process() - threads_before, 2u);
}

// Junk on a relay socket (not RTP, truncated headers, RTCP with lengths that
// lie, datagrams bigger than a packet buffer) crashes nothing and does not
// stop another call; the flooded call still relays afterwards.
TEST(MediaRelay, JunkOnOneSocketStopsNoOtherCall) {
  MediaRelay relay(settings("127.0.0.1", 31600, 31699));
  Peer door_a("127.0.0.1"), dev_a("127.0.0.1"), door_b("127.0.0.1"), dev_b("127.0.0.1");
  std::string error;
  uint16_t caller_port[2], branch_port[2];
  Peer *doors[2] = {&door_a, &door_b}, *devs[2] = {&dev_a, &dev_b};
  for (int c = 0; c < 2; ++c) {
    const std::string id = c ? "b" : "a";
    ASSERT_TRUE(relay.start_call(id, sdp("127.0.0.1", doors[c]->port(), "sendrecv"), &error));
    branch_port[c] = video_of(*relay.offer_for_branch(id, 0, &error)).port;
    caller_port[c] =
        video_of(
            relay.answer_from_branch(id, 0, sdp("127.0.0.1", devs[c]->port(), "recvonly"), false)
                .sdp)
            .port;
  }
  std::vector<std::vector<uint8_t>> junk = {
      {},
      {0x80},
      std::vector<uint8_t>(11, 0x80),                              // shorter than an RTP header
      {0x8f, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0},              // 15 CSRCs in 14 bytes
      {0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xff, 0xff},  // extension past the end
      {0xa0, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff},              // padding past the end
      {0x81, 206, 0xff, 0xff, 0, 0, 0, 1},                         // RTCP longer than it is
      {0x81, 206, 0, 0},                                           // RTCP PLI cut short
      {0x80, 200, 0, 6, 0, 0, 0, 1, 0x81, 206, 0, 9},              // compound, second one lies
      {0x81, 206, 0, 2, 0, 0, 0, 1},                               // a PLI without its media SSRC
      std::vector<uint8_t>(3000, 0x80),                            // bigger than a packet buffer
  };
  std::mt19937 rng(3);
  for (int i = 0; i < 200; ++i) {
    std::vector<uint8_t> r(rng() % 1500);
    for (auto &b : r) b = static_cast<uint8_t>(rng());
    junk.push_back(r);
  }
  std::atomic<bool> flooding{true};
  std::thread flood([&] {
    // Another host of the LAN (127.0.0.2: loopback answers all of 127/8).
    Peer attacker("127.0.0.2", "127.0.0.1");
    for (int round = 0; round < 40 && flooding; ++round)
      for (const auto &j : junk)
        for (uint16_t port :
             {caller_port[0], uint16_t(caller_port[0] + 1), uint16_t(branch_port[0] + 1)})
          attacker.send_raw(port, j);
  });
  for (uint16_t seq = 1; seq <= 20; ++seq) door_b.send_rtp(caller_port[1], seq, kDoor);
  const auto got_b = dev_b.receive_packets(20, 5000);
  flooding = false;
  flood.join();
  EXPECT_EQ(got_b.size(), 20u) << "junk on call a's sockets held up call b";
  // The junk came from a host the SDP does not name: none of it reached the
  // device, and the real door's packets go through (the attacker did not
  // take the door's place).
  EXPECT_TRUE(dev_a.receive_packets(100000, 300).empty()) << "the attacker's bytes reached call a";
  for (uint16_t seq = 100; seq < 110; ++seq) door_a.send_rtp(caller_port[0], seq, kDoor);
  const auto got_a = dev_a.receive_packets(10, 3000);
  EXPECT_EQ(got_a.size(), 10u) << "the flooded call stopped relaying";
}

// Nobody but the peer puts media into a call (what rtpengine calls strict
// source, on by default here). Before the door's first packet, a host the SDP
// does not name is not heard; after it, not even another port of the door's
// own host. With latch = anywhere (devices behind a NAT), the first packet from
// anywhere latches, and then only that address is heard.
TEST(MediaRelay, OnlyThePeerPutsMediaIntoTheCall) {
  for (bool anywhere : {false, true}) {
    RelaySettings rs = settings("127.0.0.1", 39800, 39849);
    rs.latch_anywhere = anywhere;
    MediaRelay relay(rs);
    Peer door("127.0.0.1"), dev("127.0.0.1"), other_port("127.0.0.1");
    Peer other_host("127.0.0.3", "127.0.0.1");
    std::string error;
    ASSERT_TRUE(relay.start_call("c", sdp("127.0.0.1", door.port(), "sendrecv"), &error));
    ASSERT_TRUE(relay.offer_for_branch("c", 0, &error));
    const uint16_t caller_port =
        video_of(
            relay.answer_from_branch("c", 0, sdp("127.0.0.1", dev.port(), "recvonly"), false).sdp)
            .port;
    constexpr uint32_t kIntruder = 0xbad;
    // Before any packet of the door.
    for (uint16_t seq = 1; seq <= 5; ++seq) other_host.send_rtp(caller_port, seq, kIntruder);
    const auto first = dev.receive(500);
    if (anywhere) {
      // The intruder was first and latched: that is the price of NAT mode.
      EXPECT_EQ(first.size(), 5u);
      continue;
    }
    EXPECT_TRUE(first.empty()) << "a host the SDP does not name put media into the call";
    for (uint16_t seq = 10; seq < 15; ++seq) door.send_rtp(caller_port, seq, kDoor);
    EXPECT_EQ(dev.receive(2000), std::vector<uint32_t>(5, kDoor));
    // After the door latched: neither another host nor another port of its own.
    for (uint16_t seq = 20; seq < 25; ++seq) {
      other_host.send_rtp(caller_port, seq, kIntruder);
      other_port.send_rtp(caller_port, seq, kIntruder);
    }
    for (uint16_t seq = 30; seq < 35; ++seq) door.send_rtp(caller_port, seq, kDoor);
    EXPECT_EQ(dev.receive(1000), std::vector<uint32_t>(5, kDoor));
  }
}

// ICE-lite toward a device that answers with ICE (RFC 8445 §2.5): the
// device's SDP names an address its packets do not come from (a NAT), its
// nominated check moves the relay's media to where the check came from
// (§7.3.1.5), and an attacker on 127.0.0.2 who knows the ports but not the
// relay's ice-pwd gets 401 and moves nothing, by STUN or by RTP.
TEST(MediaRelay, IceCheckLatchesTheDeviceAndForgeriesDoNot) {
  namespace ice = portier::proxy::ice;
  MediaRelay relay(settings("127.0.0.1", 39850, 39869));
  Peer door("127.0.0.1"), phone("127.0.0.1"), nat_hole("127.0.0.1");
  Peer attacker("127.0.0.2", "127.0.0.1");
  std::string error;
  ASSERT_TRUE(relay.start_call("c", sdp("127.0.0.1", door.port(), "sendrecv"), &error)) << error;
  auto offer = relay.offer_for_branch("c", 0, &error);
  ASSERT_TRUE(offer) << error;
  // The relay's ICE-lite offer: its credentials and candidates (RFC 8839).
  EXPECT_NE(offer->find("a=ice-lite\r\n"), std::string::npos) << *offer;
  const portier::sdp::Media relay_side = video_of(*offer);
  ASSERT_EQ(relay_side.ice_ufrag.size(), 8u) << *offer;
  ASSERT_EQ(relay_side.ice_pwd.size(), 24u) << *offer;
  const uint16_t branch_port = relay_side.port;
  EXPECT_NE(offer->find("a=candidate:1 1 UDP 2130706431 127.0.0.1 " + std::to_string(branch_port) +
                        " typ host"),
            std::string::npos)
      << *offer;
  // The phone answers with ICE; its SDP names nat_hole's port (its private
  // side), its packets come from `phone` (the NAT's public side).
  const std::string answer = sdp("127.0.0.1", nat_hole.port(), "sendrecv") +
                             "a=ice-ufrag:ph0n\r\na=ice-pwd:phonePasswordOf24Chars00\r\n";
  const MediaRelay::Answer a = relay.answer_from_branch("c", 0, answer, true);
  ASSERT_TRUE(a.error.empty()) << a.error;
  const uint16_t caller_port = video_of(a.sdp).port;
  // The door is no ICE agent: its answer has no ICE at all.
  EXPECT_EQ(a.sdp.find("ice"), std::string::npos) << a.sdp;
  EXPECT_EQ(a.sdp.find("candidate"), std::string::npos) << a.sdp;

  auto check = [&](Peer &from, const std::string &pwd, uint8_t id, bool nominate = true) {
    ice::Request r;
    r.username = relay_side.ice_ufrag + ":ph0n";
    r.pwd = pwd;
    r.use_candidate = nominate;
    r.transaction[0] = id;
    const std::string bytes = ice::build_request(r);
    from.send_raw(branch_port, std::vector<uint8_t>(bytes.begin(), bytes.end()));
    const auto got = from.receive_packets(1, 2000);
    std::optional<ice::Parsed> p;
    if (!got.empty()) p = ice::parse_response(got[0].data(), got[0].size(), relay_side.ice_pwd);
    return p;
  };
  auto door_sends = [&](uint16_t first) {
    for (uint16_t seq = first; seq < first + 5; ++seq) door.send_rtp(caller_port, seq, kDoor);
  };

  // Before any check, the door's media goes where the SDP said.
  door_sends(1);
  EXPECT_EQ(nat_hole.receive(2000), std::vector<uint32_t>(5, kDoor));
  // A forged check (the attacker knows the ufrags: they are no secret) gets 401.
  auto forged = check(attacker, "attackerGuessesThePwd000", 1);
  ASSERT_TRUE(forged);
  EXPECT_EQ(forged->error_code, 401);
  EXPECT_FALSE(forged->has_integrity);
  door_sends(10);
  EXPECT_EQ(nat_hole.receive(2000), std::vector<uint32_t>(5, kDoor));
  EXPECT_TRUE(attacker.receive(300).empty());
  // A valid check of the controlling phone that nominates nothing moves
  // nothing (RFC 8445 §7.3.1.5: the nomination does).
  auto unnominated = check(phone, relay_side.ice_pwd, 4, false);
  ASSERT_TRUE(unnominated);
  EXPECT_EQ(unnominated->type, 0x0101);
  door_sends(15);
  EXPECT_EQ(nat_hole.receive(2000), std::vector<uint32_t>(5, kDoor));
  // The phone's check: success, its own address mapped back, signed with the relay's pwd.
  auto ok = check(phone, relay_side.ice_pwd, 2);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->type, 0x0101);
  EXPECT_EQ(ok->mapped, "127.0.0.1:" + std::to_string(phone.port()));
  EXPECT_TRUE(ok->integrity_ok);
  EXPECT_TRUE(ok->fingerprint_ok);
  // The nominated pair carries the media now, both ways.
  door_sends(20);
  EXPECT_EQ(phone.receive(2000), std::vector<uint32_t>(5, kDoor));
  for (uint16_t seq = 1; seq <= 5; ++seq) phone.send_rtp(branch_port, seq, kMon0);
  EXPECT_EQ(door.receive(2000), std::vector<uint32_t>(5, kMon0));
  // The attacker again: a forged check, RTP (which media latching would have
  // taken before ICE), and the phone's own SDP address: none moves the pair.
  forged = check(attacker, "attackerGuessesThePwd000", 3);
  ASSERT_TRUE(forged);
  EXPECT_EQ(forged->error_code, 401);
  for (uint16_t seq = 100; seq < 105; ++seq) attacker.send_rtp(branch_port, seq, 0xbad);
  std::string again_error;
  ASSERT_TRUE(relay.pass_sdp("c", false, answer, &again_error)) << again_error;  // a re-offer
  door_sends(30);
  EXPECT_EQ(phone.receive(2000), std::vector<uint32_t>(5, kDoor));
  EXPECT_TRUE(attacker.receive(300).empty());
  EXPECT_TRUE(nat_hole.receive(300).empty());
  EXPECT_TRUE(door.receive(300).empty()) << "the attacker's RTP reached the door";
  // Counted for portierctl stats: two answered, two refused.
  const std::string stats = relay.json();
  EXPECT_NE(stats.find("\"stun_answered\":2"), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"stun_refused\":2"), std::string::npos) << stats;
}

// liblinphone 5.1 answers an ICE-lite offer as the controlled agent and so
// never nominates: its valid check (ICE-CONTROLLED) is the choice, and the
// latest valid one wins; a forged one still moves nothing.
TEST(MediaRelay, ControlledPeersValidCheckLatches) {
  namespace ice = portier::proxy::ice;
  MediaRelay relay(settings("127.0.0.1", 39606, 39609));
  Peer door("127.0.0.1"), phone("127.0.0.1"), nat_hole("127.0.0.1");
  Peer attacker("127.0.0.2", "127.0.0.1");
  std::string error;
  ASSERT_TRUE(relay.start_call("c", sdp("127.0.0.1", door.port(), "sendrecv"), &error)) << error;
  auto offer = relay.offer_for_branch("c", 0, &error);
  ASSERT_TRUE(offer) << error;
  const portier::sdp::Media relay_side = video_of(*offer);
  const MediaRelay::Answer a =
      relay.answer_from_branch("c", 0,
                               sdp("127.0.0.1", nat_hole.port(), "sendrecv") +
                                   "a=ice-ufrag:ph0n\r\na=ice-pwd:phonePasswordOf24Chars00\r\n",
                               true);
  ASSERT_TRUE(a.error.empty()) << a.error;
  const uint16_t caller_port = video_of(a.sdp).port;
  auto controlled_check = [&](Peer &from, const std::string &pwd) {
    ice::Request r;
    r.username = relay_side.ice_ufrag + ":ph0n";
    r.pwd = pwd;
    r.controlled = true;
    const std::string bytes = ice::build_request(r);
    from.send_raw(relay_side.port, std::vector<uint8_t>(bytes.begin(), bytes.end()));
    return from.receive_packets(1, 2000).size();
  };
  EXPECT_EQ(controlled_check(attacker, "attackerGuessesThePwd000"), 1u);  // a 401
  for (uint16_t seq = 1; seq <= 5; ++seq) door.send_rtp(caller_port, seq, kDoor);
  EXPECT_EQ(nat_hole.receive(2000), std::vector<uint32_t>(5, kDoor));
  EXPECT_EQ(controlled_check(phone, relay_side.ice_pwd), 1u);
  for (uint16_t seq = 10; seq < 15; ++seq) door.send_rtp(caller_port, seq, kDoor);
  EXPECT_EQ(phone.receive(2000), std::vector<uint32_t>(5, kDoor));
  EXPECT_TRUE(attacker.receive(300).empty());
}

// A caller that offers ICE gets an ICE-lite answer: no RTCP candidate when
// it offered rtcp-mux (RFC 8839 §5.1), and its check is answered.
TEST(MediaRelay, CallerOfferingIceGetsAnIceLiteAnswer) {
  namespace ice = portier::proxy::ice;
  MediaRelay relay(settings("127.0.0.1", 39870, 39879));
  Peer phone("127.0.0.1"), monitor("127.0.0.1");
  std::string error;
  const std::string offer =
      sdp("127.0.0.1", phone.port(), "sendrecv") +
      "a=rtcp-mux\r\na=ice-ufrag:ph0n\r\na=ice-pwd:phonePasswordOf24Chars00\r\n"
      "a=candidate:1 1 UDP 2130706431 127.0.0.1 " +
      std::to_string(phone.port()) + " typ host\r\n";
  ASSERT_TRUE(relay.start_call("c", offer, &error)) << error;
  auto branch_offer = relay.offer_for_branch("c", 0, &error);
  ASSERT_TRUE(branch_offer) << error;
  // The phone's ICE never reaches the branch: the relay's own instead.
  EXPECT_EQ(branch_offer->find("ph0n"), std::string::npos) << *branch_offer;
  const MediaRelay::Answer a =
      relay.answer_from_branch("c", 0, sdp("127.0.0.1", monitor.port(), "sendrecv"), true);
  ASSERT_TRUE(a.error.empty()) << a.error;
  EXPECT_NE(a.sdp.find("a=ice-lite\r\n"), std::string::npos) << a.sdp;
  const portier::sdp::Media m = video_of(a.sdp);
  EXPECT_NE(a.sdp.find("a=candidate:1 1 UDP 2130706431 127.0.0.1 " + std::to_string(m.port)),
            std::string::npos)
      << a.sdp;
  EXPECT_EQ(a.sdp.find("a=candidate:1 2"), std::string::npos) << a.sdp;
  ice::Request r;
  r.username = m.ice_ufrag + ":ph0n";
  r.pwd = m.ice_pwd;
  const std::string bytes = ice::build_request(r);
  phone.send_raw(m.port, std::vector<uint8_t>(bytes.begin(), bytes.end()));
  const auto got = phone.receive_packets(1, 2000);
  ASSERT_EQ(got.size(), 1u);
  auto p = ice::parse_response(got[0].data(), got[0].size(), m.ice_pwd);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->type, 0x0101);
  EXPECT_TRUE(p->integrity_ok);
  // A check is never media: the monitor got nothing.
  EXPECT_TRUE(monitor.receive_packets(1, 300).empty());
}

// Calls end and new ones take their ports while packets keep arriving: no
// event for a socket that is gone may touch freed state (run it under ASan or
// valgrind), and every port comes back.
TEST(MediaRelay, EndCallWhilePacketsFlow) {
  RelaySettings rs = settings("127.0.0.1", 31700, 31799);
  rs.threads = 2;
  MediaRelay relay(rs);
  std::string error;
  std::atomic<bool> running{true};
  std::thread blaster([&] {
    Peer door("127.0.0.1");
    uint16_t seq = 0;
    while (running) {
      ++seq;
      for (uint16_t port = 31700; port < 31800; ++port) {
        // keyframes and deltas on every port, RTP and RTCP alike
        door.send_raw(port, vp8_packet(seq, seq * 3000u, kDoor, true, seq % 10 == 0, 0));
        if (port & 1) door.send_raw(port, {0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0xd0, 0x0d});
      }
    }
  });
  std::vector<std::unique_ptr<Peer>> devices;
  for (int i = 0; i < 6; ++i) devices.push_back(std::make_unique<Peer>("127.0.0.1"));
  for (int round = 0; round < 60; ++round) {
    const std::string id = "flow" + std::to_string(round);
    if (!relay.start_call(id, sdp("127.0.0.1", 4000, "sendrecv"), &error)) {
      ADD_FAILURE() << error;
      break;
    }
    for (size_t b = 0; b < 3; ++b) {
      ASSERT_TRUE(relay.offer_for_branch(id, b, &error)) << error;
      relay.answer_from_branch(
          id, b, sdp("127.0.0.1", devices[(round + b) % 6]->port(), "recvonly"), false);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (round % 3 == 1) relay.answer_from_branch(id, 1, sdp("127.0.0.1", 4100, "sendrecv"), true);
    relay.branch_gone(id, 2);
    if (round >= 2) relay.end_call("flow" + std::to_string(round - 2), "test");
  }
  running = false;
  blaster.join();
  for (int round = 58; round < 60; ++round) relay.end_call("flow" + std::to_string(round), "test");
  EXPECT_EQ(relay.calls(), 0u);
  EXPECT_EQ(relay.ports_in_use(), 0u);
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
