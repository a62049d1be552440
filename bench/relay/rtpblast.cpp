// rtpblast: the load generator and the counter of the relay benchmark.
//
//   rtpblast send HOST PORT RATE SECONDS [PAYLOAD_BYTES]
//       sends RTP (one SSRC, VP8-like payload, a keyframe every 300 packets)
//       at RATE packets/s for SECONDS, in batches of sendmmsg every millisecond;
//       prints "sent N"
//   rtpblast recv SECONDS PORT [PORT...]
//       counts the packets that arrive on each port until SECONDS pass with
//       nothing new (at most 120 s); prints "received N" per port and in all
//
// Plain C++ and sockets: the generator must cost far less than what it measures.
#include <arpa/inet.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

double now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int send_mode(const char *host, int port, double rate, double seconds, int payload) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  int buf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, host, &to.sin_addr) != 1) {
    std::fprintf(stderr, "rtpblast: bad address %s\n", host);
    return 2;
  }
  const size_t size = 12 + static_cast<size_t>(payload);
  const long total = static_cast<long>(rate * seconds);
  constexpr int kBatch = 256;
  std::vector<std::vector<uint8_t>> pkts(kBatch, std::vector<uint8_t>(size, 0x55));
  std::vector<mmsghdr> msgs(kBatch);
  std::vector<iovec> iov(kBatch);
  long sent = 0;
  const double start = now();
  uint16_t seq = 0;
  while (sent < total) {
    // how many packets should be out by now
    const double elapsed = now() - start;
    long due = static_cast<long>(elapsed * rate) + 1;
    if (due > total) due = total;
    int n = static_cast<int>(due - sent);
    if (n <= 0) {
      usleep(200);
      continue;
    }
    if (n > kBatch) n = kBatch;
    for (int i = 0; i < n; ++i) {
      uint8_t *p = pkts[i].data();
      const long k = sent + i;
      p[0] = 0x80;
      p[1] = 96;
      p[2] = static_cast<uint8_t>(seq >> 8);
      p[3] = static_cast<uint8_t>(seq);
      ++seq;
      const uint32_t ts = static_cast<uint32_t>(k / 10 * 3000);
      p[4] = ts >> 24, p[5] = ts >> 16, p[6] = ts >> 8, p[7] = ts;
      p[8] = 0x12, p[9] = 0x34, p[10] = 0x56, p[11] = 0x78;
      p[12] = 0x10;                          // VP8 descriptor: S=1, PID 0
      p[13] = (k % 300 == 0) ? 0x50 : 0x51;  // keyframe every 300 packets
      iov[i] = {p, size};
      msgs[i] = {};
      msgs[i].msg_hdr.msg_name = &to;
      msgs[i].msg_hdr.msg_namelen = sizeof to;
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int r = sendmmsg(fd, msgs.data(), static_cast<unsigned>(n), 0);
    if (r < 0) {
      if (errno == ENOBUFS || errno == EAGAIN) continue;
      std::perror("rtpblast: sendmmsg");
      return 1;
    }
    sent += r;
  }
  std::printf("sent %ld in %.3f s\n", sent, now() - start);
  return 0;
}

int recv_mode(double quiet, const std::vector<int> &ports) {
  std::vector<pollfd> fds;
  for (int port : ports) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int buf = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) < 0) {
      std::fprintf(stderr, "rtpblast: bind %d: %s\n", port, std::strerror(errno));
      return 2;
    }
    fds.push_back({fd, POLLIN, 0});
  }
  std::printf("ready\n");
  std::fflush(stdout);
  std::vector<long> counts(ports.size(), 0);
  constexpr int kBatch = 256;
  std::vector<std::vector<uint8_t>> bufs(kBatch, std::vector<uint8_t>(2048));
  std::vector<mmsghdr> msgs(kBatch);
  std::vector<iovec> iov(kBatch);
  const double start = now();
  double last = now();
  bool any = false;
  while (now() - start < 120 && (!any || now() - last < quiet)) {
    if (poll(fds.data(), fds.size(), 100) <= 0) {
      if (!any && now() - start > 60) break;
      continue;
    }
    for (size_t f = 0; f < fds.size(); ++f) {
      if (!(fds[f].revents & POLLIN)) continue;
      for (int i = 0; i < kBatch; ++i) {
        iov[i] = {bufs[i].data(), bufs[i].size()};
        msgs[i] = {};
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
      }
      int r = recvmmsg(fds[f].fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (r > 0) {
        counts[f] += r;
        any = true;
        last = now();
      }
    }
  }
  long total = 0;
  for (size_t f = 0; f < ports.size(); ++f) {
    std::printf("port %d received %ld\n", ports[f], counts[f]);
    total += counts[f];
  }
  std::printf("received %ld\n", total);
  return 0;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc >= 6 && !std::strcmp(argv[1], "send"))
    return send_mode(argv[2], std::atoi(argv[3]), std::atof(argv[4]), std::atof(argv[5]),
                     argc > 6 ? std::atoi(argv[6]) : 1000);
  if (argc >= 4 && !std::strcmp(argv[1], "recv")) {
    std::vector<int> ports;
    for (int i = 3; i < argc; ++i) ports.push_back(std::atoi(argv[i]));
    return recv_mode(std::atof(argv[2]), ports);
  }
  std::fprintf(stderr,
               "usage: rtpblast send HOST PORT RATE SECONDS [PAYLOAD_BYTES]\n"
               "       rtpblast recv QUIET_SECONDS PORT [PORT...]\n");
  return 2;
}
