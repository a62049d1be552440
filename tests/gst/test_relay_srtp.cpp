// The relay engine terminating SRTP (RFC 3711) per leg, against senders and
// receivers written here on libsrtp2 directly: a door that protects its video
// with its key D, devices that each hold the key of their branch's offer. Real
// sockets on 127.0.0.1 with ports from the kernel.
//
// RFC 3711 §9.1 forbids one key protecting two streams: each branch's packets
// must decrypt with that branch's key and with no other (not the door's, not
// another branch's); the joining branch's GOP replay decrypts with fresh
// indexes; the keyframe request to the door is SRTCP under the door-side key;
// forged and replayed packets are dropped and counted; and after the 200 the
// winner's media reaches the door re-encrypted under the door-side key.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <srtp2/srtp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "libsrtp_peer.h"
#include "proxy/media_relay.h"
#include "proxy/relay_engine.h"
#include "proxy/relay_srtp.h"
#include "rtpfork/rtcp_packet.h"
#include "rtpfork/rtp_header.h"
#include "sip/sdp/sdes.h"
#include "sip/sdp/sdp_rewrite.h"

namespace {

namespace rtp = portier::rtp;
namespace sdp = portier::sdp;
using portier::proxy::RelayAddress;
using portier::proxy::RelayEngine;
using portier::proxy::SrtpContext;
using Packet = std::vector<uint8_t>;
using portier::sdp::print_crypto;

constexpr uint32_t kDoor = 0x11223344;
constexpr int kWaitMs = 3000;  // a bound on every wait, not a speed check

// libsrtp2 as the peer (tests/gst/libsrtp_peer.h).
using PeerSrtp = portier::test::LibsrtpPeer;

sdp::CryptoKey fresh(sdp::SrtpSuite s = sdp::SrtpSuite::AesCm128HmacSha1_80) {
  return *sdp::CryptoKey::generate(s);
}

std::unique_ptr<SrtpContext> context(const sdp::CryptoKey &k, SrtpContext::Direction d) {
  std::string error;
  auto c = SrtpContext::create(k, d, &error);
  EXPECT_TRUE(c) << error;
  return c;
}

// A UDP socket on `host`, port chosen by the kernel.
struct Socket {
  explicit Socket(const char *host = "127.0.0.1") {
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, host, &a.sin_addr);
    bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a);
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len);
    port = ntohs(a.sin_port);
    this->host = host;
  }
  ~Socket() { close(fd); }
  Socket(const Socket &) = delete;
  Socket &operator=(const Socket &) = delete;

  RelayAddress address() const { return RelayAddress::from(host, port); }
  void send_to(const Socket &to, const Packet &bytes) const {
    const RelayAddress a = to.address();
    sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr *>(&a.addr), a.len);
  }
  // Datagrams until `count` came or the bound passed.
  std::vector<Packet> receive(size_t count, int ms = kWaitMs) const {
    std::vector<Packet> got;
    const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (got.size() < count) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                            end - std::chrono::steady_clock::now())
                            .count();
      pollfd p{fd, POLLIN, 0};
      if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) break;
      uint8_t buf[2048];
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) got.emplace_back(buf, buf + n);
    }
    return got;
  }
  // Whatever is there now, after a short quiet wait.
  std::vector<Packet> drain(int ms = 200) const { return receive(1000, ms); }

  int fd = -1;
  uint16_t port = 0;
  std::string host;
};

// A VP8 packet (RFC 7741 §4.2, §4.3): S=1, the keyframe bit, then `mark`
// and some payload, so that a decryption is told from garbage.
Packet vp8(uint16_t seq, uint32_t ts, bool key, uint8_t mark, uint32_t ssrc = kDoor) {
  Packet p(60, 0);
  p[0] = 0x80;
  p[1] = 96;
  rtp::write16(&p[2], seq);
  rtp::write32(&p[4], ts);
  rtp::write32(&p[8], ssrc);
  p[12] = 0x10;
  p[13] = key ? 0x50 : 0x51;
  p[14] = mark;
  for (size_t i = 15; i < p.size(); ++i) p[i] = static_cast<uint8_t>(mark + i);
  return p;
}

bool same_payload(const Packet &a, const Packet &b) {
  return a.size() == b.size() && std::equal(a.begin() + 12, a.end(), b.begin() + 12);
}

// A call of one video stream: the door and its relay sockets, and branches
// that join with keys of their own.
struct SrtpCall {
  struct Branch {
    Socket device_rtp, device_rtcp, relay_rtp, relay_rtcp;
    sdp::CryptoKey relay_key;   // the branch's offer: the relay sends with it
    sdp::CryptoKey device_key;  // its answer: the device sends with it
  };

  explicit SrtpCall(bool caller_mux = false)
      : engine(1, RelayEngine::Latch::SignalledHost, {60'000'000, 0}),
        door_key(fresh()),
        relay_door_key(fresh()),
        door_out(door_key, false) {
    call = engine.open_call("srtp", 0x5e1f5e1f);
    RelayEngine::Leg leg{caller_rtp.fd, caller_rtcp.fd, door_rtp.address(), door_rtcp.address()};
    leg.rtcp_mux = caller_mux;
    leg.srtp_in = context(door_key, SrtpContext::Direction::Inbound);
    leg.srtp_out = context(relay_door_key, SrtpContext::Direction::Outbound);
    engine.add_stream(call, 0, std::move(leg), rtp::VideoCodec::VP8, 90000);
  }
  ~SrtpCall() { engine.close_call(call); }

  Branch &add(size_t id, sdp::SrtpSuite suite = sdp::SrtpSuite::AesCm128HmacSha1_80,
              bool mux = false) {
    auto b = std::make_unique<Branch>();
    b->relay_key = fresh(suite);
    b->device_key = fresh(suite);
    RelayEngine::Leg leg{b->relay_rtp.fd, b->relay_rtcp.fd, b->device_rtp.address(),
                         b->device_rtcp.address()};
    leg.rtcp_mux = mux;
    leg.srtp_in = context(b->device_key, SrtpContext::Direction::Inbound);
    leg.srtp_out = context(b->relay_key, SrtpContext::Direction::Outbound);
    engine.add_branch(call, 0, id, std::move(leg));
    if (branches.size() <= id) branches.resize(id + 1);
    branches[id] = std::move(b);
    return *branches[id];
  }
  void door_sends(const Packet &plain) { door_rtp.send_to(caller_rtp, door_out.protect(plain)); }

  RelayEngine engine;
  RelayEngine::Call *call = nullptr;
  Socket door_rtp, door_rtcp, caller_rtp, caller_rtcp;
  sdp::CryptoKey door_key;        // the door's offer: the door sends with it
  sdp::CryptoKey relay_door_key;  // the answer to the door: the relay sends with it
  PeerSrtp door_out;
  std::vector<std::unique_ptr<Branch>> branches;
};

}  // namespace

TEST(RelaySrtp, Rfc3711Sec9_1EachBranchDecryptsWithItsOwnKeyOnly) {
  SrtpCall c;
  c.add(0);
  c.add(1, sdp::SrtpSuite::AeadAes128Gcm);  // each leg its own suite
  c.add(2, sdp::SrtpSuite::AesCm128HmacSha1_32);
  std::vector<Packet> sent;
  for (uint16_t i = 0; i < 5; ++i) {
    sent.push_back(
        vp8(static_cast<uint16_t>(1000 + i), 3000u * i, i == 0, static_cast<uint8_t>(i)));
    c.door_sends(sent.back());
  }
  std::vector<std::vector<Packet>> got(3);
  for (size_t b = 0; b < 3; ++b) {
    got[b] = c.branches[b]->device_rtp.receive(sent.size());
    ASSERT_EQ(got[b].size(), sent.size()) << "branch " << b;
  }
  for (size_t b = 0; b < 3; ++b) {
    SCOPED_TRACE("branch " + std::to_string(b));
    PeerSrtp own(c.branches[b]->relay_key, true);
    for (size_t i = 0; i < sent.size(); ++i) {
      EXPECT_FALSE(same_payload(got[b][i], sent[i]));  // encrypted
      auto plain = own.unprotect(got[b][i]);
      ASSERT_TRUE(plain) << "packet " << i;
      EXPECT_TRUE(same_payload(*plain, sent[i])) << "packet " << i;
    }
    // Neither the door's key nor another branch's opens it.
    PeerSrtp door(c.door_key, true);
    EXPECT_FALSE(door.unprotect(got[b][0]));
    for (size_t other = 0; other < 3; ++other) {
      if (other == b) continue;
      sdp::CryptoKey k = c.branches[other]->relay_key;
      k.suite = c.branches[b]->relay_key.suite;  // same suite, so only the key differs
      k.size = sdp::key_salt_length(k.suite);
      PeerSrtp wrong(k, true);
      EXPECT_FALSE(wrong.unprotect(got[b][0])) << "with branch " << other << "'s key";
    }
  }
  const RelayEngine::ForkCounters f = c.engine.fork_counters(c.call, 0);
  EXPECT_EQ(f.packets_in, sent.size());
  EXPECT_EQ(f.srtp_rejected, 0u);
}

TEST(RelaySrtp, JoiningBranchGetsTheGopReplayedWithFreshIndexes) {
  SrtpCall c;
  c.add(0);
  std::vector<Packet> sent;
  for (uint16_t i = 0; i < 4; ++i) {
    sent.push_back(
        vp8(static_cast<uint16_t>(500 + i), 3000u * i, i == 0, static_cast<uint8_t>(10 + i)));
    c.door_sends(sent.back());
  }
  ASSERT_EQ(c.branches[0]->device_rtp.receive(sent.size()).size(), sent.size());
  SrtpCall::Branch &late = c.add(1);
  // The cached GOP at once, before any live packet.
  auto replayed = late.device_rtp.receive(sent.size());
  ASSERT_EQ(replayed.size(), sent.size());
  c.door_sends(vp8(504, 12000, false, 14));
  auto live = late.device_rtp.receive(1);
  ASSERT_EQ(live.size(), 1u);
  replayed.push_back(live[0]);
  PeerSrtp own(late.relay_key, true);
  uint16_t last = 0;
  for (size_t i = 0; i < replayed.size(); ++i) {
    auto plain = own.unprotect(replayed[i]);  // libsrtp's replay check: each index once
    ASSERT_TRUE(plain) << "packet " << i;
    rtp::Header h;
    ASSERT_TRUE(rtp::parse(plain->data(), plain->size(), &h));
    if (i > 0) {
      EXPECT_EQ(h.seq, static_cast<uint16_t>(last + 1)) << "packet " << i;
    }
    last = h.seq;
    EXPECT_EQ((*plain)[14], 10 + i);
  }
}

TEST(RelaySrtp, Rfc3711Sec3_4KeyframeRequestToTheDoorIsSrtcpUnderTheDoorSideKey) {
  SrtpCall c;
  c.door_sends(vp8(1, 0, false, 1));  // the door's SSRC is known
  // The relay's own keyframe request waits for the engine to see the packet.
  ASSERT_TRUE([&] {
    for (int i = 0; i < 300 && c.engine.fork_counters(c.call, 0).packets_in == 0; ++i)
      usleep(10000);
    return c.engine.fork_counters(c.call, 0).packets_in == 1;
  }());
  c.add(0);
  auto got = c.door_rtcp.receive(1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_GT(got[0].size(), rtp::kPliSize);  // not a plain PLI
  PeerSrtp door_in(c.relay_door_key, true);
  PeerSrtp wrong(c.door_key, true);
  EXPECT_FALSE(wrong.unprotect(got[0], true));
  auto plain = door_in.unprotect(got[0], true);
  ASSERT_TRUE(plain);
  ASSERT_EQ(plain->size(), rtp::kPliSize);
  EXPECT_TRUE(rtp::asks_for_keyframe(plain->data(), plain->size()));
  EXPECT_EQ(rtp::read32(plain->data() + 8), kDoor);  // RFC 4585 §6.3.1: media source
}

// `encryption = passthrough`: the door's SRTP goes through untouched and the
// relay holds no key, so a PLI of its own could only go unprotected, which the
// door's SRTP receiver drops (RFC 3711 §3.4). It sends none; a plain caller
// gets one (the same call with keyless_srtp off).
TEST(RelaySrtp, Rfc3711Sec3_4NoKeyframeRequestOfTheRelaysOwnToAPassthroughSrtpDoor) {
  for (bool keyless : {true, false}) {
    SCOPED_TRACE(keyless ? "SRTP passed through" : "plain RTP");
    RelayEngine engine(1, RelayEngine::Latch::SignalledHost, {60'000'000, 0});
    Socket door_rtp, door_rtcp, caller_rtp, caller_rtcp, device_rtp, device_rtcp, relay_rtp,
        relay_rtcp;
    RelayEngine::Call *call = engine.open_call("passthrough", 0x5e1f5e1f);
    RelayEngine::Leg leg{caller_rtp.fd, caller_rtcp.fd, door_rtp.address(), door_rtcp.address()};
    leg.keyless_srtp = keyless;
    engine.add_stream(call, 0, std::move(leg), rtp::VideoCodec::VP8, 90000);
    PeerSrtp door_out(fresh(), false);
    const Packet first = vp8(1, 0, true, 1);
    door_rtp.send_to(caller_rtp, keyless ? door_out.protect(first) : first);
    for (int i = 0; i < 300 && engine.fork_counters(call, 0).packets_in == 0; ++i) usleep(10000);
    ASSERT_EQ(engine.fork_counters(call, 0).packets_in, 1u);
    RelayEngine::Leg device{relay_rtp.fd, relay_rtcp.fd, device_rtp.address(),
                            device_rtcp.address()};
    device.keyless_srtp = keyless;
    engine.add_branch(call, 0, 0, std::move(device));
    // The door gets a keyframe request only where it can read one.
    auto got = door_rtcp.drain(300);
    if (keyless) {
      EXPECT_TRUE(got.empty()) << got.size() << " datagram(s), the first of "
                               << (got.empty() ? 0 : got[0].size()) << " bytes";
    } else {
      ASSERT_EQ(got.size(), 1u);
      EXPECT_TRUE(rtp::asks_for_keyframe(got[0].data(), got[0].size()));
    }
    engine.close_call(call);
  }
}

TEST(RelaySrtp, RtcpMuxPutsTheKeyframeRequestOnTheDoorsRtpPort) {
  SrtpCall c(/*caller_mux=*/true);
  c.door_sends(vp8(1, 0, false, 1));
  for (int i = 0; i < 300 && c.engine.fork_counters(c.call, 0).packets_in == 0; ++i) usleep(10000);
  c.add(0);
  // RFC 5761 §4: the door agreed to mux, so RTCP goes to its RTP port.
  auto got = c.door_rtp.receive(1);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(rtp::is_rtcp(got[0].data(), got[0].size()));
  PeerSrtp door_in(c.relay_door_key, true);
  auto plain = door_in.unprotect(got[0], true);
  ASSERT_TRUE(plain);
  EXPECT_TRUE(rtp::asks_for_keyframe(plain->data(), plain->size()));
  EXPECT_TRUE(c.door_rtcp.drain(100).empty());
}

TEST(RelaySrtp, ForgedAndReplayedPacketsFromTheDoorAreDroppedAndCounted) {
  SrtpCall c;
  c.add(0);
  const Packet good = c.door_out.protect(vp8(100, 0, true, 1));
  c.door_rtp.send_to(c.caller_rtp, good);
  ASSERT_EQ(c.branches[0]->device_rtp.receive(1).size(), 1u);
  // A forgery from the door's own address and port, under a key the relay
  // never agreed to (RFC 3711 §3.3 step 5: authentication fails).
  PeerSrtp forger(fresh(), false);
  c.door_rtp.send_to(c.caller_rtp, forger.protect(vp8(101, 3000, false, 2)));
  // The same valid packet again (RFC 3711 §3.3.2 replay protection).
  c.door_rtp.send_to(c.caller_rtp, good);
  // Plain RTP where SRTP was agreed.
  c.door_rtp.send_to(c.caller_rtp, vp8(102, 6000, false, 3));
  for (int i = 0; i < 300 && c.engine.fork_counters(c.call, 0).srtp_rejected < 3; ++i)
    usleep(10000);
  EXPECT_EQ(c.engine.fork_counters(c.call, 0).srtp_rejected, 3u);
  EXPECT_EQ(c.engine.fork_counters(c.call, 0).packets_in, 1u);
  EXPECT_TRUE(c.branches[0]->device_rtp.drain().empty()) << "a rejected packet was forwarded";
  // The next real packet still goes through.
  c.door_sends(vp8(103, 9000, false, 4));
  EXPECT_EQ(c.branches[0]->device_rtp.receive(1).size(), 1u);
}

TEST(RelaySrtp, Rfc7983StunKeepAlivesAreNoSrtpFailures) {
  SrtpCall c;
  c.add(0);
  // A STUN binding request (RFC 5389 §6: first byte 0-3), as Linphone sends
  // to its peer's media port: dropped, neither forwarded nor counted.
  Packet stun(20, 0);
  stun[1] = 0x01;
  rtp::write32(&stun[4], 0x2112a442);
  c.door_rtp.send_to(c.caller_rtp, stun);
  c.door_sends(vp8(1, 0, true, 1));
  ASSERT_EQ(c.branches[0]->device_rtp.receive(1).size(), 1u);
  EXPECT_EQ(c.engine.fork_counters(c.call, 0).srtp_rejected, 0u);
  EXPECT_TRUE(c.branches[0]->device_rtp.drain().empty());
}

TEST(RelaySrtp, WinnersMediaReachesTheDoorUnderTheDoorSideKey) {
  SrtpCall c;
  SrtpCall::Branch &a = c.add(0);
  SrtpCall::Branch &b = c.add(1, sdp::SrtpSuite::AeadAes256Gcm);
  c.engine.select_branch(c.call, 1);
  PeerSrtp device_a(a.device_key, false), device_b(b.device_key, false);
  // The loser's media goes nowhere; the winner's is re-encrypted for the door.
  a.device_rtp.send_to(a.relay_rtp, device_a.protect(vp8(7, 0, true, 70, 0xaaaa)));
  const Packet plain = vp8(9, 0, true, 90, 0xbbbb);
  b.device_rtp.send_to(b.relay_rtp, device_b.protect(plain));
  auto got = c.door_rtp.receive(2, 500);
  ASSERT_EQ(got.size(), 1u);
  PeerSrtp door_in(c.relay_door_key, true);
  EXPECT_FALSE(PeerSrtp(b.device_key, true).unprotect(got[0]));
  auto opened = door_in.unprotect(got[0]);
  ASSERT_TRUE(opened);
  EXPECT_TRUE(same_payload(*opened, plain));
  // Its RTCP too, as SRTCP under the door-side key.
  Packet rr = {0x80, 201, 0, 1, 0, 0, 0xbb, 0xbb};
  b.device_rtcp.send_to(b.relay_rtcp, device_b.protect(rr, true));
  auto rtcp = c.door_rtcp.receive(1);
  ASSERT_EQ(rtcp.size(), 1u);
  auto rr_plain = door_in.unprotect(rtcp[0], true);
  ASSERT_TRUE(rr_plain);
  EXPECT_EQ(*rr_plain, rr);
  // A forgery from the winner is dropped and counted on its leg.
  PeerSrtp forger(fresh(sdp::SrtpSuite::AeadAes256Gcm), false);
  b.device_rtp.send_to(b.relay_rtp, forger.protect(vp8(10, 3000, false, 91, 0xbbbb)));
  for (int i = 0; i < 300 && c.engine.branch_counters(c.call, 1).srtp_rejected == 0; ++i)
    usleep(10000);
  EXPECT_EQ(c.engine.branch_counters(c.call, 1).srtp_rejected, 1u);
  EXPECT_TRUE(c.door_rtp.drain().empty());
}

TEST(RelaySrtp, BranchKeyframeRequestIsDecryptedBeforeDeDuplication) {
  SrtpCall c;
  SrtpCall::Branch &b = c.add(0);
  c.door_sends(vp8(1, 0, true, 1));
  ASSERT_EQ(b.device_rtp.receive(1).size(), 1u);
  auto requests = [&] {
    const RelayEngine::ForkCounters f = c.engine.fork_counters(c.call, 0);
    return f.keyframe_requests_sent + f.keyframe_requests_suppressed;
  };
  const uint64_t before = requests();
  // A PLI under a key the relay never agreed to: dropped and counted, no request.
  Packet pli(rtp::kPliSize);
  rtp::write_pli(pli.data(), 0xaaaa, kDoor);
  PeerSrtp forger(fresh(), false);
  b.device_rtcp.send_to(b.relay_rtcp, forger.protect(pli, true));
  for (int i = 0; i < 300 && c.engine.branch_counters(c.call, 0).srtp_rejected == 0; ++i)
    usleep(10000);
  EXPECT_EQ(c.engine.branch_counters(c.call, 0).srtp_rejected, 1u);
  EXPECT_EQ(requests(), before);
  // The device's own SRTCP PLI (RFC 4585 §6.3.1 inside RFC 3711 §3.4) counts.
  PeerSrtp device_out(b.device_key, false);
  b.device_rtcp.send_to(b.relay_rtcp, device_out.protect(pli, true));
  for (int i = 0; i < 300 && requests() == before; ++i) usleep(10000);
  EXPECT_EQ(requests(), before + 1);
}

TEST(RelaySrtp, Rfc5761TheDoorsRtcpReachesAMuxedBranchOnItsRtpPort) {
  SrtpCall c;
  SrtpCall::Branch &b = c.add(0, sdp::SrtpSuite::AesCm128HmacSha1_80, /*mux=*/true);
  c.door_sends(vp8(1, 0, true, 1));
  ASSERT_EQ(b.device_rtp.receive(1).size(), 1u);
  // A sender report from the door, as SRTCP under its key.
  Packet sr(28, 0);
  sr[0] = 0x80, sr[1] = 200, sr[3] = 6;
  rtp::write32(&sr[4], kDoor);
  c.door_rtcp.send_to(c.caller_rtcp, c.door_out.protect(sr, true));
  auto got = b.device_rtp.receive(1);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(rtp::is_rtcp(got[0].data(), got[0].size()));
  PeerSrtp own(b.relay_key, true);
  auto plain = own.unprotect(got[0], true);
  ASSERT_TRUE(plain);
  EXPECT_EQ((*plain)[1], 200);
  EXPECT_TRUE(b.device_rtcp.drain(100).empty());
}

// ------------------------------------------------------------------ MediaRelay
// The signalling side: keys in SDP, the policy, and one call end to end.
// Relay ports 38600-38699 (no other test binds there).

namespace {

using portier::proxy::MediaRelay;
using portier::proxy::RelaySettings;

RelaySettings relay_settings(bool mandatory = false,
                             RelaySettings::Encryption e = RelaySettings::Encryption::Terminate) {
  RelaySettings r;
  r.sdp_address = "127.0.0.1";
  r.port_min = 38600;
  r.port_max = 38699;
  r.threads = 1;
  r.encryption = e;
  r.encryption_mandatory = mandatory;
  return r;
}

std::string srtp_sdp(uint16_t port, const std::vector<std::string> &crypto, bool mux = true,
                     const char *profile = "RTP/SAVPF", const char *direction = "sendrecv") {
  std::string out =
      "v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
      "m=video " +
      std::to_string(port) + " " + profile + " 96\r\na=rtpmap:96 VP8/90000\r\na=" + direction +
      "\r\n";
  if (mux) out += "a=rtcp-mux\r\n";
  for (const std::string &c : crypto) out += "a=crypto:" + c + "\r\n";
  return out;
}

portier::sdp::Media media_of(const std::string &text) {
  std::string error;
  auto s = portier::sdp::parse(text, &error);
  EXPECT_TRUE(s) << error << "\n" << text;
  return s && !s->media.empty() ? s->media[0] : portier::sdp::Media{};
}

sdp::CryptoAttr only_crypto(const portier::sdp::Media &m) {
  EXPECT_EQ(m.crypto.size(), 1u);
  std::string error;
  auto a = m.crypto.empty() ? std::nullopt : sdp::parse_crypto(m.crypto[0], &error);
  EXPECT_TRUE(a) << error;
  return a ? *a : sdp::CryptoAttr{};
}

}  // namespace

TEST(RelaySrtpSdp, Rfc3711Sec9_1ThreeBranchOffersCarryThreeFreshKeysNoneTheDoors) {
  MediaRelay relay(relay_settings());
  const sdp::CryptoAttr door{1, fresh()};
  const sdp::CryptoAttr door32{2, fresh(sdp::SrtpSuite::AesCm128HmacSha1_32)};
  std::string error;
  ASSERT_TRUE(
      relay.start_call("c1", srtp_sdp(5000, {print_crypto(door), print_crypto(door32)}), &error))
      << error;
  std::vector<sdp::CryptoKey> seen{door.key, door32.key};
  for (size_t b = 0; b < 3; ++b) {
    auto offer = relay.offer_for_branch("c1", b, &error);
    ASSERT_TRUE(offer) << error;
    const portier::sdp::Media m = media_of(*offer);
    EXPECT_EQ(m.protocol, "RTP/SAVPF");
    EXPECT_TRUE(m.rtcp_mux);  // RFC 5761 §5.1.1: the door offered it
    // srtp-crypto-suites in order (RFC 4568 §7.1.1), AEAD_AES_128_GCM first;
    // the door's suite is among them, so nothing is added.
    const std::vector<sdp::SrtpSuite> suites = RelaySettings{}.branch_suites;
    ASSERT_EQ(m.crypto.size(), suites.size());
    EXPECT_EQ(suites.front(), sdp::SrtpSuite::AeadAes128Gcm);
    for (size_t i = 0; i < m.crypto.size(); ++i) {
      auto a = sdp::parse_crypto(m.crypto[i], &error);
      ASSERT_TRUE(a) << error;
      EXPECT_EQ(a->tag, i + 1);
      EXPECT_EQ(a->key.suite, suites[i]);
      for (const sdp::CryptoKey &k : seen) {
        EXPECT_FALSE(k == a->key) << "a key used twice";
      }
      seen.push_back(a->key);
    }
  }
}

TEST(RelaySrtpSdp, Rfc4568Sec7_1_2AnswersCarryTheRelaysKeysUnderTheChosenTags) {
  MediaRelay relay(relay_settings());
  const sdp::CryptoAttr door{1, fresh(sdp::SrtpSuite::AeadAes128Gcm)};
  std::string error;
  ASSERT_TRUE(relay.start_call("c2", srtp_sdp(5000, {print_crypto(door)}), &error)) << error;
  auto offer = relay.offer_for_branch("c2", 0, &error);
  ASSERT_TRUE(offer) << error;
  const portier::sdp::Media offered = media_of(*offer);
  // The device picks the relay's third line (tag 3) with a key of its own.
  auto third = sdp::parse_crypto(offered.crypto.at(2), &error);
  ASSERT_TRUE(third) << error;
  const sdp::CryptoAttr device{3, fresh(third->key.suite)};
  MediaRelay::Answer a = relay.answer_from_branch(
      "c2", 0, srtp_sdp(6000, {print_crypto(device)}, true, "RTP/SAVPF", "recvonly"), false);
  ASSERT_TRUE(a.error.empty()) << a.error;
  const portier::sdp::Media to_door = media_of(a.sdp);
  const sdp::CryptoAttr relay_key = only_crypto(to_door);
  EXPECT_EQ(relay_key.tag, 1u);  // the door's tag and suite
  EXPECT_EQ(relay_key.key.suite, sdp::SrtpSuite::AeadAes128Gcm);
  EXPECT_FALSE(relay_key.key == door.key);
  EXPECT_FALSE(relay_key.key == device.key) << "the device's key reached the door";
  EXPECT_NE(a.sdp.find("a=rtcp-mux"), std::string::npos);
  EXPECT_NE(relay.json().find("\"srtp\":\"terminated\""), std::string::npos) << relay.json();
}

struct PolicyCase {
  const char *name;
  RelaySettings settings;
  std::string offer;
  const char *says;  // in the error (the Warning of the 488)
};

class RelaySrtpPolicy : public ::testing::TestWithParam<PolicyCase> {};

TEST_P(RelaySrtpPolicy, OfferRefusedWithAReasonAndNoKeyInIt) {
  const PolicyCase &c = GetParam();
  MediaRelay relay(c.settings);
  std::string error;
  MediaRelay::Refusal why = MediaRelay::Refusal::None;
  EXPECT_FALSE(relay.start_call("p", c.offer, &error, {}, &why));
  EXPECT_EQ(why, MediaRelay::Refusal::BadSdp);  // 488 (RFC 3261 §21.4.26)
  EXPECT_NE(error.find(c.says), std::string::npos) << error;
  EXPECT_EQ(error.find("inline"), std::string::npos) << error;
  EXPECT_EQ(relay.ports_in_use(), 0u);
}

const std::string kKey = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

INSTANTIATE_TEST_SUITE_P(
    Relay, RelaySrtpPolicy,
    ::testing::ValuesIn(std::vector<PolicyCase>{
        {"PlainRtpWhenMandatory", relay_settings(true), srtp_sdp(5000, {}, false, "RTP/AVP"),
         "requires SRTP"},
        {"PlainRtpWhenMandatoryPassthrough",
         relay_settings(true, RelaySettings::Encryption::Passthrough),
         srtp_sdp(5000, {}, false, "RTP/AVP"), "requires SRTP"},
        {"NoSuiteTheRelayDoes", relay_settings(),
         srtp_sdp(5000, {"1 F8_128_HMAC_SHA1_80 inline:" + kKey}), "no a=crypto line"},
        {"NoCryptoLine", relay_settings(), srtp_sdp(5000, {}), "no a=crypto line"},
        {"MalformedCrypto", relay_settings(),
         srtp_sdp(5000, {"1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey.substr(0, 20)}),
         "is not 30 bytes"},
        {"MalformedTag", relay_settings(),
         srtp_sdp(5000, {"x AES_CM_128_HMAC_SHA1_80 inline:" + kKey}), "tag"},
        {"DtlsSrtp", relay_settings(), srtp_sdp(5000, {}, true, "UDP/TLS/RTP/SAVPF"), "DTLS"},
    }),
    [](const ::testing::TestParamInfo<PolicyCase> &info) { return info.param.name; });

TEST(RelaySrtpSdp, BranchAnswerThatBreaksThePolicyFailsTheBranch) {
  MediaRelay relay(relay_settings());
  std::string error;
  ASSERT_TRUE(relay.start_call("c3", srtp_sdp(5000, {print_crypto({1, fresh()})}), &error))
      << error;
  ASSERT_TRUE(relay.offer_for_branch("c3", 0, &error)) << error;
  // Plain RTP in the answer to an SRTP offer.
  auto a = relay.answer_from_branch("c3", 0, srtp_sdp(6000, {}, false, "RTP/AVPF"), true);
  EXPECT_NE(a.error.find("the offer was SRTP"), std::string::npos) << a.error;
  // A tag the relay never offered.
  a = relay.answer_from_branch("c3", 0, srtp_sdp(6000, {print_crypto({9, fresh()})}), true);
  EXPECT_NE(a.error.find("answers no offered line"), std::string::npos) << a.error;
  // Two lines in an answer.
  a = relay.answer_from_branch(
      "c3", 0, srtp_sdp(6000, {print_crypto({1, fresh()}), print_crypto({2, fresh()})}), true);
  EXPECT_NE(a.error.find("not one"), std::string::npos) << a.error;
  EXPECT_EQ(a.error.find("inline"), std::string::npos) << a.error;
}

TEST(RelaySrtpSdp, PassthroughCopiesTheDoorsKeysAsFlexisipDoes) {
  MediaRelay relay(relay_settings(false, RelaySettings::Encryption::Passthrough));
  const sdp::CryptoAttr door{1, fresh()};
  std::string error;
  ASSERT_TRUE(relay.start_call("c4", srtp_sdp(5000, {print_crypto(door)}), &error)) << error;
  auto offer = relay.offer_for_branch("c4", 0, &error);
  ASSERT_TRUE(offer) << error;
  EXPECT_TRUE(only_crypto(media_of(*offer)).key == door.key);
}

TEST(RelaySrtpSdp, Rfc4568Sec7_1_4ReInviteKeepsTheKeysAndNewOnesAreRefused) {
  MediaRelay relay(relay_settings());
  const sdp::CryptoAttr door{1, fresh()};
  std::string error;
  ASSERT_TRUE(relay.start_call("c6", srtp_sdp(5000, {print_crypto(door)}), &error)) << error;
  auto offer = relay.offer_for_branch("c6", 0, &error);
  ASSERT_TRUE(offer) << error;
  auto to_device = sdp::parse_crypto(media_of(*offer).crypto.at(0), &error);
  ASSERT_TRUE(to_device) << error;
  const sdp::CryptoAttr device{1, fresh(to_device->key.suite)};  // the first line
  auto a = relay.answer_from_branch("c6", 0, srtp_sdp(6000, {print_crypto(device)}), true);
  ASSERT_TRUE(a.error.empty()) << a.error;
  const sdp::CryptoAttr to_door = only_crypto(media_of(a.sdp));
  // The door's re-INVITE with its key: the device gets the relay's key toward it.
  auto re = relay.pass_sdp("c6", true, srtp_sdp(5000, {print_crypto(door)}), &error);
  ASSERT_TRUE(re) << error;
  EXPECT_TRUE(only_crypto(media_of(*re)).key == to_device->key);
  // The device's answer with its key: the door gets the relay's key toward it.
  re = relay.pass_sdp("c6", false, srtp_sdp(6000, {print_crypto(device)}), &error);
  ASSERT_TRUE(re) << error;
  EXPECT_TRUE(only_crypto(media_of(*re)).key == to_door.key);
  // A new key inside the call is refused (488): the relay does not re-key yet.
  EXPECT_FALSE(relay.pass_sdp("c6", true, srtp_sdp(5000, {print_crypto({1, fresh()})}), &error));
  EXPECT_NE(error.find("new SRTP key"), std::string::npos) << error;
  EXPECT_EQ(error.find("inline"), std::string::npos) << error;
}

// One call through MediaRelay: the door's SRTP reaches a device that decrypts
// it with the key of its own offer; the device's reaches the door under the
// key of the door's answer.
TEST(RelaySrtpCall, DoorToDeviceAndBackThroughTheSdpKeys) {
  MediaRelay relay(relay_settings());
  Socket door, device;
  const sdp::CryptoAttr door_key{1, fresh()};
  std::string error;
  ASSERT_TRUE(relay.start_call("c5", srtp_sdp(door.port, {print_crypto(door_key)}, false), &error))
      << error;
  auto offer = relay.offer_for_branch("c5", 0, &error);
  ASSERT_TRUE(offer) << error;
  const portier::sdp::Media offered = media_of(*offer);
  // The device takes the first line, AEAD_AES_128_GCM (RFC 7714), while
  // the door speaks AES_CM_128_HMAC_SHA1_80: each leg is keyed apart.
  auto chosen = sdp::parse_crypto(offered.crypto.at(0), &error);
  ASSERT_TRUE(chosen) << error;
  EXPECT_EQ(chosen->key.suite, sdp::SrtpSuite::AeadAes128Gcm);
  const sdp::CryptoAttr device_key{1, fresh(chosen->key.suite)};
  auto a = relay.answer_from_branch("c5", 0,
                                    srtp_sdp(device.port, {print_crypto(device_key)}, false), true);
  ASSERT_TRUE(a.error.empty()) << a.error;
  const portier::sdp::Media to_door = media_of(a.sdp);
  const sdp::CryptoAttr answer_key = only_crypto(to_door);

  // The door sends to the relay port of its answer.
  PeerSrtp door_out(door_key.key, false);
  const RelayAddress to_relay = RelayAddress::from("127.0.0.1", to_door.port);
  const Packet plain = vp8(1, 0, true, 42);
  const Packet wire = door_out.protect(plain);
  sendto(door.fd, wire.data(), wire.size(), 0, reinterpret_cast<const sockaddr *>(&to_relay.addr),
         to_relay.len);
  auto got = device.receive(1);
  ASSERT_EQ(got.size(), 1u);
  PeerSrtp device_in(chosen->key, true);
  auto opened = device_in.unprotect(got[0]);
  ASSERT_TRUE(opened);
  EXPECT_TRUE(same_payload(*opened, plain));

  PeerSrtp device_out(device_key.key, false);
  const Packet back = vp8(7, 0, true, 43, 0xdede);
  const Packet back_wire = device_out.protect(back);
  const RelayAddress to_branch = RelayAddress::from("127.0.0.1", offered.port);
  sendto(device.fd, back_wire.data(), back_wire.size(), 0,
         reinterpret_cast<const sockaddr *>(&to_branch.addr), to_branch.len);
  auto at_door = door.receive(1);
  ASSERT_EQ(at_door.size(), 1u);
  PeerSrtp door_in(answer_key.key, true);
  auto back_opened = door_in.unprotect(at_door[0]);
  ASSERT_TRUE(back_opened);
  EXPECT_TRUE(same_payload(*back_opened, back));
  EXPECT_NE(relay.json().find("\"srtp\":\"terminated\""), std::string::npos) << relay.json();
}

int main(int argc, char **argv) {
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
