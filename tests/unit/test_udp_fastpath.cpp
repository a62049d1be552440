// portier-proxy's stand-ins for sofia-sip's socket helpers (proxy/udp_fastpath.h).
// A test program of their own: like portier-proxy, it exports them, so every
// sofia call in it goes through them, and the other unit tests stay on sofia's.
// Real sockets on loopback, real sofia-sip.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "proxy/udp_fastpath.h"

namespace fp = portier::proxy::udp_fastpath;

namespace {

// A UDP socket on 127.0.0.1 with IP_RECVERR, as sofia opens its transports.
struct Udp {
  int fd = -1;
  sockaddr_in addr{};
  Udp() {
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr), 0);
    socklen_t len = sizeof addr;
    getsockname(fd, reinterpret_cast<sockaddr *>(&addr), &len);
    int on = 1;
    setsockopt(fd, IPPROTO_IP, IP_RECVERR, &on, sizeof on);
  }
  ~Udp() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  void send_to(const Udp &to, const std::string &text) const {
    ASSERT_EQ(sendto(fd, text.data(), text.size(), 0, reinterpret_cast<const sockaddr *>(&to.addr),
                     sizeof to.addr),
              static_cast<ssize_t>(text.size()));
  }
  // Waits (bounded) for one of events.
  bool wait(short events) const {
    pollfd p{fd, events, 0};
    return poll(&p, 1, 2000) == 1 && (p.revents & events);
  }
  std::string read_rest() const {
    char buf[2048];
    const ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    return n < 0 ? std::string("<nothing>") : std::string(buf, static_cast<size_t>(n));
  }
};

// Another sofia-sip leaves the fast path off by design (udp_fastpath.h).
bool checked_sofia() { return fp::unavailable().rfind("off: not checked with", 0) != 0; }

// An ICMP port unreachable left on `from`: it sent to a port nobody holds.
// On loopback the error is there once poll() says so.
void leave_icmp_error(const Udp &from) {
  Udp gone;
  gone.close();  // its port is free now: the next datagram to it is refused
  from.send_to(gone, "to nobody");
  ASSERT_TRUE(from.wait(POLLERR)) << "no ICMP error arrived";
}

class UdpFastPath : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!checked_sofia()) GTEST_SKIP() << fp::unavailable();
    fp::detach();
  }
  void TearDown() override { fp::detach(); }
};

}  // namespace

TEST_F(UdpFastPath, IsAvailableWithTheCheckedSofiaSip) {
  // The symbols are exported from this program, the real ones found behind them.
  EXPECT_EQ(fp::unavailable(), "");
  Udp a;
  EXPECT_TRUE(fp::take_socket(a.fd));
  EXPECT_TRUE(fp::status().active);
  EXPECT_EQ(fp::status().sockets, 1u);
}

TEST_F(UdpFastPath, OneReadServesBothSizeAndData) {
  Udp a, peer;
  ASSERT_TRUE(fp::take_socket(a.fd));
  const uint64_t before = fp::status().datagrams;
  peer.send_to(a, "OPTIONS sip:x SIP/2.0");
  ASSERT_TRUE(a.wait(POLLIN));
  EXPECT_EQ(su_getmsgsize(a.fd), 21);
  // The datagram has left the socket: su_getmsgsize read it.
  EXPECT_EQ(a.read_rest(), "<nothing>");
  char head[8], tail[64];
  su_iovec_t iov[2] = {{head, sizeof head}, {tail, sizeof tail}};
  su_sockaddr_t from{};
  socklen_t from_len = sizeof from;
  ASSERT_EQ(su_vrecv(a.fd, iov, 2, 0, &from, &from_len), 21);
  EXPECT_EQ(std::string(head, 8) + std::string(tail, 13), "OPTIONS sip:x SIP/2.0");
  ASSERT_EQ(from_len, sizeof(sockaddr_in));
  EXPECT_EQ(from.su_sin.sin_port, peer.addr.sin_port);
  EXPECT_EQ(from.su_sin.sin_addr.s_addr, peer.addr.sin_addr.s_addr);
  EXPECT_EQ(fp::status().datagrams, before + 1);
}

TEST_F(UdpFastPath, AnEmptyDatagramIsSkippedNotTheNextOnesFirstByte) {
  Udp a, peer;
  ASSERT_TRUE(fp::take_socket(a.fd));
  peer.send_to(a, "");
  peer.send_to(a, "xy");
  ASSERT_TRUE(a.wait(POLLIN));
  usleep(20000);  // both queued (loopback delivers at once; this is margin)
  EXPECT_EQ(su_getmsgsize(a.fd), 2);
  char buf[8];
  su_iovec_t iov[1] = {{buf, sizeof buf}};
  ASSERT_EQ(su_vrecv(a.fd, iov, 1, 0, nullptr, nullptr), 2);
  EXPECT_EQ(std::string(buf, 2), "xy");
}

TEST_F(UdpFastPath, NothingToReadIsZeroAsSofiaExpects) {
  Udp a;
  ASSERT_TRUE(fp::take_socket(a.fd));
  EXPECT_EQ(su_getmsgsize(a.fd), 0);
}

TEST_F(UdpFastPath, OtherSocketsAreReadBySofiaItself) {
  Udp a, other, peer;
  ASSERT_TRUE(fp::take_socket(a.fd));
  peer.send_to(other, "abc");
  ASSERT_TRUE(other.wait(POLLIN));
  // sofia's own su_getmsgsize (FIONREAD) leaves the datagram in the socket.
  EXPECT_EQ(su_getmsgsize(other.fd), 3);
  EXPECT_EQ(other.read_rest(), "abc");
}

TEST_F(UdpFastPath, ASendAfterAnIcmpErrorStillGoesOut) {
  // RFC 3261 §18.1.1 wants the next request sent whatever an earlier one to
  // another host drew; sofia cleared SO_ERROR before each send for that.
  Udp a, monitor;
  ASSERT_TRUE(fp::take_socket(a.fd));
  leave_icmp_error(a);
  EXPECT_EQ(su_soerror(a.fd), 0);  // skipped: no system call, the error stays
  const uint64_t resends = fp::status().resends;
  char text[] = "INVITE sip:monitor SIP/2.0";
  su_iovec_t iov[1] = {{text, sizeof text - 1}};
  su_sockaddr_t to{};
  std::memcpy(&to.su_sin, &monitor.addr, sizeof monitor.addr);
  EXPECT_EQ(su_vsend(a.fd, iov, 1, MSG_NOSIGNAL, &to, sizeof monitor.addr),
            static_cast<issize_t>(sizeof text - 1));
  EXPECT_EQ(fp::status().resends, resends + 1);
  ASSERT_TRUE(monitor.wait(POLLIN));
  EXPECT_EQ(monitor.read_rest(), "INVITE sip:monitor SIP/2.0");
}

TEST_F(UdpFastPath, WithoutTheRetryTheSendWouldFail) {
  // The same on a socket not taken over, sending without sofia's su_soerror:
  // the stale error fails the send. This is what the retry above is for.
  Udp b, monitor;
  leave_icmp_error(b);
  char text[] = "INVITE";
  su_iovec_t iov[1] = {{text, 6}};
  su_sockaddr_t to{};
  std::memcpy(&to.su_sin, &monitor.addr, sizeof monitor.addr);
  EXPECT_EQ(su_vsend(b.fd, iov, 1, MSG_NOSIGNAL, &to, sizeof monitor.addr), -1);
  EXPECT_EQ(errno, ECONNREFUSED);
  // And sofia's own su_soerror still reports errors on sockets not taken over.
  leave_icmp_error(b);
  EXPECT_EQ(su_soerror(b.fd), ECONNREFUSED);
}

TEST_F(UdpFastPath, DetachGivesTheSocketsBack) {
  Udp a, peer;
  ASSERT_TRUE(fp::take_socket(a.fd));
  fp::detach();
  EXPECT_FALSE(fp::status().active);
  peer.send_to(a, "abc");
  ASSERT_TRUE(a.wait(POLLIN));
  EXPECT_EQ(su_getmsgsize(a.fd), 3);
  EXPECT_EQ(a.read_rest(), "abc");
}

TEST_F(UdpFastPath, TheEnvironmentTurnsItOff) {
  setenv("PORTIER_UDP_FASTPATH", "0", 1);
  Udp a;
  EXPECT_FALSE(fp::take_socket(a.fd));
  EXPECT_EQ(fp::status().why, "off: PORTIER_UDP_FASTPATH=0");
  unsetenv("PORTIER_UDP_FASTPATH");
}
