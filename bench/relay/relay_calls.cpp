// relay_calls: the relay end to end, many calls at once (issue 3).
//
//   relay_calls serve portier CALLS BRANCHES
//       portier-proxy's real MediaRelay (the portier_relay library) on a GLib
//       main loop: per call start_call() with a door offer (PCMU
//       audio + VP8 video), offer_for_branch() and a 183 recvonly answer from
//       every branch, so every branch gets the early media (the intercom's worst
//       case). Relay ports RELAY_MIN-RELAY_MAX.
//   relay_calls serve portier CALLS BRANCHES --srtp [SUITE]
//       the same with SRTP terminated (encryption = terminate): the door offers
//       RTP/SAVP with an AES_CM_128_HMAC_SHA1_32 key, every branch takes the
//       relay's SUITE line with a key of its own: by default
//       AES_CM_128_HMAC_SHA1_80, what Linphone 5.1 takes (it has no GCM) and
//       what the rtpengine run re-keys to (rtpengine_ng.py); AEAD_AES_128_GCM
//       is what portier-monitor takes (the relay offers it first); also prints "srtp CALL STREAM
//       BRANCH KEY" per stream: the door's key (BRANCH -1) and the key of each branch's offer (what
//       its device decrypts with), "SUITE BASE64" as in a=crypto. Bench keys, not secrets.
//   relay_calls serve tee CALLS BRANCHES
//       the floor: per call one pipeline with, per stream, a plain
//       `udpsrc ! tee ! udpsink sync=false async=false` x BRANCHES.
//       Both print "stream CALL STREAM PORT" (where the door must send) per
//       call and stream, then "ready", and run until SIGTERM.
//   relay_calls load PORTS_FILE CALLS BRANCHES MULT SECONDS [options]
//       the door and the devices: per call audio (50 pps x MULT, 172-byte RTP)
//       and video (300 pps x MULT, 1,000-byte VP8 RTP) from the door's ports to
//       the ports in PORTS_FILE, each packet carrying its CLOCK_MONOTONIC send
//       time; counts what every branch's device port receives and its latency
//       from the kernel's arrival timestamp (SO_TIMESTAMPNS). Prints one line of
//       key=value figures.
//       --baseline      also send every packet straight to a receiver (no
//                       relay), to subtract the loopback's own latency
//       --pid PID       the relay process: its CPU (all threads, ns) over the step
//       --cpu N         the relay's core: its busy time from /proc/stat, to
//                       see what else ran there
//       --relay-ports MIN-MAX   the relay's UDP ports: kernel drops on them
//       --slow US       print (stderr) the first 200 relayed packets later than US
//       --srtp          the door protects each packet with its key and every
//                       device (and the baseline receiver) checks and decrypts
//                       it with the key PORTS_FILE names (the relay's own SrtpContext); a packet
//                       that fails counts as bad, not received
//
// Ports (the same layout in rtpengine_ng.py): door call C stream S (0 audio,
// 1 video) sends from DOOR_BASE + 4C + 2S; device of branch b receives on
// DEV_BASE + 2((2C + S)B + b); the baseline receiver on BASE_BASE + 2(2C + S).
// Below the ephemeral range (32768+), away from the tests' 35100-36299.
#include <arpa/inet.h>
#include <glib-unix.h>
#include <gst/gst.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "common/log.h"
#include "proxy/media_relay.h"
#include "proxy/relay_srtp.h"
#include "sip/sdp/sdes.h"
#include "sip/sdp/sdp_rewrite.h"

namespace {

constexpr int kDoorBase = 18000, kBaselineBase = 18200, kDevBase = 10000;
constexpr uint16_t kRelayMin = 14000, kRelayMax = 17999;
constexpr int kStreams = 2;                   // audio, video
constexpr double kPps[kStreams] = {50, 300};  // per call, at MULT 1
constexpr size_t kSize[kStreams] = {172, 1000};
constexpr uint32_t kMagic = 0x706f7274;  // "port"
constexpr size_t kStampAt = 16;          // after the RTP header and VP8's 2 bytes

int door_port(int c, int s) { return kDoorBase + 4 * c + 2 * s; }
int device_port(int c, int s, int b, int branches) {
  return kDevBase + 2 * ((2 * c + s) * branches + b);
}
int baseline_port(int c, int s) { return kBaselineBase + 2 * (2 * c + s); }

int64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// ------------------------------------------------------------------ serve

namespace sdp = portier::sdp;

// An a=crypto line's suite and key, as the load reads them back: "SUITE BASE64".
std::string inline_key(const sdp::CryptoAttr &a) {
  const std::string line = sdp::print_crypto(a);
  return std::string(sdp::suite_name(a.key.suite)) + " " + line.substr(line.find("inline:") + 7);
}

// keys: none for plain RTP, else one a=crypto value per stream.
std::string door_offer(int c, const std::vector<std::string> &keys = {}) {
  const char *profile = keys.empty() ? "RTP/AVP" : "RTP/SAVP";
  std::ostringstream o;
  o << "v=0\r\no=door " << c << " 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    << "m=audio " << door_port(c, 0) << " " << profile
    << " 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";
  if (!keys.empty()) o << "a=crypto:" << keys[0] << "\r\n";
  o << "m=video " << door_port(c, 1) << " " << profile
    << " 96\r\na=rtpmap:96 VP8/90000\r\na=sendrecv\r\n";
  if (!keys.empty()) o << "a=crypto:" << keys[1] << "\r\n";
  return o.str();
}

std::string device_answer(int c, int b, int branches, const std::vector<std::string> &keys = {}) {
  const char *profile = keys.empty() ? "RTP/AVP" : "RTP/SAVP";
  std::ostringstream o;
  o << "v=0\r\no=dev" << b << " " << c << " 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
    << "t=0 0\r\nm=audio " << device_port(c, 0, b, branches) << " " << profile
    << " 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\n";
  if (!keys.empty()) o << "a=crypto:" << keys[0] << "\r\n";
  o << "m=video " << device_port(c, 1, b, branches) << " " << profile
    << " 96\r\na=rtpmap:96 VP8/90000\r\na=recvonly\r\n";
  if (!keys.empty()) o << "a=crypto:" << keys[1] << "\r\n";
  return o.str();
}

// One fresh a=crypto value of `suite` per stream, with `tags` (default 1).
std::vector<std::string> fresh_keys(std::vector<sdp::CryptoAttr> *attrs, sdp::SrtpSuite suite,
                                    const std::vector<unsigned> &tags = {1, 1}) {
  std::vector<std::string> out;
  for (int s = 0; s < kStreams; ++s) {
    attrs->push_back({tags[s], *sdp::CryptoKey::generate(suite)});
    out.push_back(sdp::print_crypto(attrs->back()));
  }
  return out;
}

// The n-th m= line's offered a=crypto line of `suite` (the one a device takes).
std::optional<sdp::CryptoAttr> offered_line(const std::string &offer, int n, sdp::SrtpSuite suite,
                                            std::string *error) {
  auto parsed = sdp::parse(offer, error);
  if (!parsed || parsed->media.size() != kStreams) return std::nullopt;
  for (const std::string &line : parsed->media[n].crypto)
    if (auto a = sdp::parse_crypto(line, error); a && a->key.suite == suite) return a;
  *error = std::string("no ") + sdp::suite_name(suite) + " line";
  return std::nullopt;
}

// The port of the n-th m= line of an SDP.
int media_port(const std::string &sdp, int n) {
  size_t at = 0;
  for (int i = 0; i <= n; ++i) {
    at = sdp.find("\nm=", at);
    if (at == std::string::npos) return 0;
    ++at;
  }
  size_t sp = sdp.find(' ', at);
  return sp == std::string::npos ? 0 : std::atoi(sdp.c_str() + sp + 1);
}

gboolean on_term(gpointer loop) {
  g_main_loop_quit(static_cast<GMainLoop *>(loop));
  return G_SOURCE_REMOVE;
}

int serve_portier(int calls, int branches, bool srtp, sdp::SrtpSuite device_suite) {
  portier::log::set_level(portier::log::Level::Warning);
  portier::proxy::RelaySettings rs;
  rs.sdp_address = "127.0.0.1";
  rs.listen_address = "127.0.0.1";
  rs.port_min = kRelayMin;
  rs.port_max = kRelayMax;
  // The default (10) would leave branches 11-16 without early media.
  rs.max_early_media = std::max(branches, 10);
  rs.inactivity_timeout = 3600;
  auto relay = std::make_unique<portier::proxy::MediaRelay>(rs);
  const int64_t t0 = mono_ns();
  for (int c = 0; c < calls; ++c) {
    const std::string id = "bench-" + std::to_string(c);
    std::string error;
    // As in the rtpengine run (rtpengine_ng.py --srtp): the door sends
    // AES_CM_128_HMAC_SHA1_32, every device takes the relay's device_suite line.
    std::vector<sdp::CryptoAttr> door_keys;
    const std::vector<std::string> door_lines =
        srtp ? fresh_keys(&door_keys, sdp::SrtpSuite::AesCm128HmacSha1_32)
             : std::vector<std::string>{};
    std::vector<std::vector<unsigned>> device_tags(branches, std::vector<unsigned>(kStreams, 1));
    if (!relay->start_call(id, door_offer(c, door_lines), &error)) {
      std::fprintf(stderr, "relay_calls: call %d: start_call: %s\n", c, error.c_str());
      return 1;
    }
    for (int s = 0; s < kStreams && srtp; ++s)
      std::printf("srtp %d %d -1 %s\n", c, s, inline_key(door_keys[s]).c_str());
    for (int b = 0; b < branches; ++b) {
      auto offer = relay->offer_for_branch(id, static_cast<size_t>(b), &error);
      if (!offer) {
        std::fprintf(stderr, "relay_calls: call %d branch %d: %s\n", c, b, error.c_str());
        return 1;
      }
      // The device takes the relay's device_suite line: its key is what it
      // decrypts with.
      for (int s = 0; s < kStreams && srtp; ++s) {
        auto a = offered_line(*offer, s, device_suite, &error);
        if (!a) {
          std::fprintf(stderr, "relay_calls: call %d branch %d: no a=crypto: %s\n", c, b,
                       error.c_str());
          return 1;
        }
        std::printf("srtp %d %d %d %s\n", c, s, b, inline_key(*a).c_str());
        device_tags[b][s] = a->tag;
      }
    }
    std::string caller_sdp;
    for (int b = 0; b < branches; ++b) {
      std::vector<sdp::CryptoAttr> device_keys;
      const std::vector<std::string> device_lines =
          srtp ? fresh_keys(&device_keys, device_suite, device_tags[b])
               : std::vector<std::string>{};
      auto a = relay->answer_from_branch(id, static_cast<size_t>(b),
                                         device_answer(c, b, branches, device_lines), false);
      if (!a.error.empty() || a.sdp.empty()) {
        std::fprintf(stderr, "relay_calls: call %d branch %d: 183: %s\n", c, b, a.error.c_str());
        return 1;
      }
      if (a.forward) caller_sdp = a.sdp;  // the door sees the first 183 only
    }
    for (int s = 0; s < kStreams; ++s)
      std::printf("stream %d %d %d\n", c, s, media_port(caller_sdp, s));
  }
  std::printf("ready setup_ms=%.0f ports=%zu\n", (mono_ns() - t0) / 1e6, relay->ports_in_use());
  std::fflush(stdout);
  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  g_unix_signal_add(SIGTERM, on_term, loop);
  g_unix_signal_add(SIGINT, on_term, loop);
  g_main_loop_run(loop);
  // Tearing every call down is part of what a proxy does at BYE: time it.
  const int64_t t1 = mono_ns();
  relay.reset();
  std::fprintf(stderr, "relay_calls: %d calls freed in %.0f ms\n", calls, (mono_ns() - t1) / 1e6);
  g_main_loop_unref(loop);
  return 0;
}

int serve_tee(int calls, int branches) {
  gst_init(nullptr, nullptr);
  static const char *caps[kStreams] = {
      "application/x-rtp,media=audio,encoding-name=PCMU,payload=0,clock-rate=8000",
      "application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000"};
  std::vector<GstElement *> pipelines;
  const int64_t t0 = mono_ns();
  for (int c = 0; c < calls; ++c) {
    std::ostringstream d;
    for (int s = 0; s < kStreams; ++s) {
      const int port = kRelayMin + 2 * (2 * c + s);
      d << "udpsrc address=127.0.0.1 port=" << port << " caps=\"" << caps[s] << "\" ! tee name=t"
        << s << " allow-not-linked=true ";
      for (int b = 0; b < branches; ++b)
        d << "t" << s << ". ! udpsink host=127.0.0.1 port=" << device_port(c, s, b, branches)
          << " sync=false async=false ";
    }
    GError *err = nullptr;
    GstElement *p = gst_parse_launch(d.str().c_str(), &err);
    if (!p || gst_element_set_state(p, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
      std::fprintf(stderr, "relay_calls: tee call %d: %s\n", c, err ? err->message : "no start");
      return 1;
    }
    pipelines.push_back(p);
    for (int s = 0; s < kStreams; ++s)
      std::printf("stream %d %d %d\n", c, s, kRelayMin + 2 * (2 * c + s));
  }
  std::printf("ready setup_ms=%.0f\n", (mono_ns() - t0) / 1e6);
  std::fflush(stdout);
  GMainLoop *loop = g_main_loop_new(nullptr, FALSE);
  g_unix_signal_add(SIGTERM, on_term, loop);
  g_unix_signal_add(SIGINT, on_term, loop);
  g_main_loop_run(loop);
  for (GstElement *p : pipelines) {
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
  }
  g_main_loop_unref(loop);
  return 0;
}

// ------------------------------------------------------------------ load

// Latencies in 100 ns buckets up to 100 ms; the max is kept exactly.
struct Histogram {
  static constexpr size_t kBuckets = 1000000;
  std::vector<uint32_t> counts = std::vector<uint32_t>(kBuckets + 1, 0);
  uint64_t n = 0;
  int64_t max_ns = 0;
  void add(int64_t ns) {
    if (ns < 0) ns = 0;
    counts[std::min<size_t>(static_cast<size_t>(ns / 100), kBuckets)]++;
    ++n;
    max_ns = std::max(max_ns, ns);
  }
  double percentile_us(double p) const {
    if (!n) return -1;
    const uint64_t want = static_cast<uint64_t>(std::ceil(p * static_cast<double>(n)));
    uint64_t seen = 0;
    for (size_t i = 0; i <= kBuckets; ++i) {
      seen += counts[i];
      if (seen >= want) return i / 10.0;
    }
    return max_ns / 1000.0;
  }
};

struct RecvSocket {
  int fd = -1;
  int call = 0, stream = 0, branch = -1;  // branch -1: the baseline receiver
  uint64_t received = 0;
  uint32_t overflows = 0;  // SO_RXQ_OVFL: what the kernel dropped at our own socket
  std::shared_ptr<portier::proxy::SrtpContext> srtp;  // --srtp: checks and decrypts
};

// --srtp: the keys of PORTS_FILE's "srtp CALL STREAM BRANCH SUITE KEY" lines.
std::shared_ptr<portier::proxy::SrtpContext> srtp_context(const std::string &key, bool inbound) {
  std::string error;
  auto a = sdp::parse_crypto(
      "1 " + key.substr(0, key.find(' ')) + " inline:" + key.substr(key.find(' ') + 1), &error);
  if (!a) {
    std::fprintf(stderr, "relay_calls: bad key in the ports file: %s\n", error.c_str());
    return nullptr;
  }
  auto c = portier::proxy::SrtpContext::create(
      a->key,
      inbound ? portier::proxy::SrtpContext::Direction::Inbound
              : portier::proxy::SrtpContext::Direction::Outbound,
      &error);
  if (!c) std::fprintf(stderr, "relay_calls: %s\n", error.c_str());
  return std::shared_ptr<portier::proxy::SrtpContext>(c.release());
}

int udp_socket(int port, int rcvbuf) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) < 0) {
    std::fprintf(stderr, "relay_calls: bind %d: %s\n", port, std::strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

// CPU time of every thread of a process, in ns (more precise than the 10 ms
// ticks of /proc/PID/stat at a few thousand packets).
int64_t process_cpu_ns(int pid) {
  if (pid <= 0) return 0;
  int64_t sum = 0;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  GDir *d = g_dir_open(dir.c_str(), 0, nullptr);
  if (!d) return 0;
  while (const char *t = g_dir_read_name(d)) {
    std::ifstream f(dir + "/" + t + "/schedstat");
    int64_t run = 0;
    if (f >> run) sum += run;
  }
  g_dir_close(d);
  return sum;
}

// utime + stime of /proc/PID/stat, in clock ticks: the classic figure, as a check.
long process_ticks(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (pid <= 0 || !std::getline(f, line)) return 0;
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::atol(field.c_str());
    if (i == 15) stime = std::atol(field.c_str());
  }
  return utime + stime;
}

// Busy ticks of one core (everything but idle and iowait).
long core_busy_ticks(int cpu) {
  std::ifstream f("/proc/stat");
  std::string line, want = "cpu" + std::to_string(cpu) + " ";
  while (std::getline(f, line)) {
    if (line.compare(0, want.size(), want)) continue;
    std::istringstream in(line.substr(want.size()));
    long v, total = 0, idle = 0;
    for (int i = 0; in >> v; ++i) {
      if (i == 3 || i == 4) idle += v;
      if (i < 8) total += v;  // guest time is already in user
    }
    return total - idle;
  }
  return 0;
}

// Kernel drops (receive buffer full) summed over the UDP sockets bound in a range.
long udp_drops(int min, int max) {
  if (max <= 0) return 0;
  std::ifstream f("/proc/net/udp");
  std::string line;
  std::getline(f, line);
  long drops = 0;
  while (std::getline(f, line)) {
    unsigned port = 0;
    const size_t colon = line.find(':', line.find(':') + 1);
    if (colon == std::string::npos || std::sscanf(line.c_str() + colon + 1, "%x", &port) != 1)
      continue;
    if (static_cast<int>(port) < min || static_cast<int>(port) > max) continue;
    std::istringstream fields(line);  // drops is the last field (lines end in blanks)
    std::string field, last;
    while (fields >> field) last = field;
    drops += std::atol(last.c_str());
  }
  return drops;
}

// Packets the kernel dropped before any socket: a full per-core backlog
// (netdev_max_backlog), e.g. when a busy core leaves its softirq work to
// ksoftirqd and ksoftirqd does not get to run.
long backlog_drops() {
  std::ifstream f("/proc/net/softnet_stat");
  std::string processed, dropped, rest;
  long drops = 0;
  while (f >> processed >> dropped && std::getline(f, rest))
    drops += std::strtol(dropped.c_str(), nullptr, 16);
  return drops;
}

struct Receiver {
  std::vector<RecvSocket> sockets;
  Histogram relayed, direct;
  std::atomic<int64_t> last_arrival{0};
  std::atomic<bool> stop{false};
  uint64_t bad = 0;
  int64_t slow_ns = 0;  // --slow: print the relayed packets later than this
  int slow_printed = 0;

  void run() {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    for (size_t i = 0; i < sockets.size(); ++i) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u32 = static_cast<uint32_t>(i);
      epoll_ctl(ep, EPOLL_CTL_ADD, sockets[i].fd, &ev);
    }
    constexpr int kBatch = 64;
    std::vector<std::vector<uint8_t>> bufs(kBatch, std::vector<uint8_t>(2048));
    std::vector<std::vector<uint8_t>> ctl(kBatch, std::vector<uint8_t>(128));
    std::vector<mmsghdr> msgs(kBatch);
    std::vector<iovec> iov(kBatch);
    epoll_event events[256];
    while (!stop) {
      const int n = epoll_wait(ep, events, 256, 20);
      for (int e = 0; e < n; ++e) {
        RecvSocket &rs = sockets[events[e].data.u32];
        for (;;) {
          for (int i = 0; i < kBatch; ++i) {
            iov[i] = {bufs[i].data(), bufs[i].size()};
            msgs[i] = {};
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_control = ctl[i].data();
            msgs[i].msg_hdr.msg_controllen = ctl[i].size();
          }
          const int r = recvmmsg(rs.fd, msgs.data(), kBatch, MSG_DONTWAIT, nullptr);
          if (r <= 0) break;
          // Kernel stamps are CLOCK_REALTIME, ours CLOCK_MONOTONIC: the offset
          // between the two, read now, moves by NTP slew only.
          timespec rt, mo;
          clock_gettime(CLOCK_REALTIME, &rt);
          clock_gettime(CLOCK_MONOTONIC, &mo);
          const int64_t offset = (rt.tv_sec - mo.tv_sec) * 1000000000LL + rt.tv_nsec - mo.tv_nsec;
          last_arrival = mo.tv_sec * 1000000000LL + mo.tv_nsec;
          for (int i = 0; i < r; ++i) take(rs, msgs[i], bufs[i].data(), offset);
          if (r < kBatch) break;
        }
      }
    }
    close(ep);
  }

  void take(RecvSocket &rs, mmsghdr &m, const uint8_t *p, int64_t offset) {
    int64_t arrival = -1;
    for (cmsghdr *c = CMSG_FIRSTHDR(&m.msg_hdr); c; c = CMSG_NXTHDR(&m.msg_hdr, c)) {
      if (c->cmsg_level != SOL_SOCKET) continue;
      if (c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec ts;
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        arrival = ts.tv_sec * 1000000000LL + ts.tv_nsec - offset;
      } else if (c->cmsg_type == SO_RXQ_OVFL) {
        uint32_t o;
        std::memcpy(&o, CMSG_DATA(c), sizeof o);
        rs.overflows = std::max(rs.overflows, o);
      }
    }
    uint32_t magic;
    int64_t sent;
    if (rs.srtp) {
      size_t size = m.msg_len;
      if (!rs.srtp->unprotect_rtp(const_cast<uint8_t *>(p), &size)) return void(++bad);
      m.msg_len = static_cast<unsigned>(size);
    }
    if (m.msg_len < kStampAt + 16) return void(++bad);
    std::memcpy(&magic, p + kStampAt, 4);
    std::memcpy(&sent, p + kStampAt + 8, 8);
    if (magic != kMagic) return void(++bad);
    ++rs.received;
    if (arrival < 0) return;
    (rs.branch < 0 ? direct : relayed).add(arrival - sent);
    if (slow_ns > 0 && arrival - sent > slow_ns && rs.branch >= 0 && slow_printed++ < 200) {
      uint32_t k;
      std::memcpy(&k, p + kStampAt + 4, 4);
      std::fprintf(stderr, "slow: t=%.6f call %d stream %d branch %d packet %u: %.0f us\n",
                   sent / 1e9, rs.call, rs.stream, rs.branch, k, (arrival - sent) / 1e3);
    }
  }
};

struct SendStream {
  std::shared_ptr<portier::proxy::SrtpContext> srtp;  // --srtp: the door's key
  int fd = -1;
  int call = 0, stream = 0;
  sockaddr_in relay{}, direct{};
  int64_t period_ns = 0, next_ns = 0;
  uint64_t k = 0;  // packets sent
  uint16_t seq = 0;
  uint32_t ssrc = 0;
};

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Fills packet k of a stream: RTP header, VP8 descriptor (a keyframe every 300
// packets, 1 s at x1, so rtpfork's GOP cache works as with a real door), our stamp.
void fill(SendStream &st, uint8_t *p, int64_t now) {
  const bool video = st.stream == 1;
  const uint64_t k = st.k;
  p[0] = 0x80;
  p[1] = static_cast<uint8_t>(video ? 96 : 0);
  if (video && k % 10 == 9) p[1] |= 0x80;  // marker: last packet of a 10-packet frame
  p[2] = static_cast<uint8_t>(st.seq >> 8);
  p[3] = static_cast<uint8_t>(st.seq);
  const uint32_t ts = static_cast<uint32_t>(video ? k / 10 * 3000 : k * 160);
  p[4] = static_cast<uint8_t>(ts >> 24), p[5] = static_cast<uint8_t>(ts >> 16);
  p[6] = static_cast<uint8_t>(ts >> 8), p[7] = static_cast<uint8_t>(ts);
  p[8] = static_cast<uint8_t>(st.ssrc >> 24), p[9] = static_cast<uint8_t>(st.ssrc >> 16);
  p[10] = static_cast<uint8_t>(st.ssrc >> 8), p[11] = static_cast<uint8_t>(st.ssrc);
  if (video) {
    // Doors are independent: each call's keyframes at its own point of the
    // 300-packet cycle, so the GOP caches do not all turn over at once.
    const uint64_t cycle_at = (k + 113u * static_cast<unsigned>(st.call)) % 300;
    p[12] = 0x10;                         // S=1, partition 0
    p[13] = cycle_at == 0 ? 0x50 : 0x51;  // P bit clear: keyframe
  }
  std::memcpy(p + kStampAt, &kMagic, 4);
  const uint32_t seq32 = static_cast<uint32_t>(k);
  std::memcpy(p + kStampAt + 4, &seq32, 4);
  std::memcpy(p + kStampAt + 8, &now, 8);
}

int load(const char *ports_file, int calls, int branches, double mult, double seconds, int argc,
         char **argv) {
  bool baseline = false, srtp = false;
  double slow_us = 0;
  int pid = 0, cpu = -1, drop_min = 0, drop_max = 0;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--baseline") baseline = true;
    if (a == "--srtp") srtp = true;
    if (a == "--slow" && i + 1 < argc) slow_us = std::atof(argv[++i]);
    if (a == "--pid" && i + 1 < argc) pid = std::atoi(argv[++i]);
    if (a == "--cpu" && i + 1 < argc) cpu = std::atoi(argv[++i]);
    if (a == "--relay-ports" && i + 1 < argc) std::sscanf(argv[++i], "%d-%d", &drop_min, &drop_max);
  }
  std::map<std::pair<int, int>, int> relay_port;
  std::map<std::tuple<int, int, int>, std::string> srtp_key;  // (call, stream, branch or -1)
  {
    std::ifstream f(ports_file);
    std::string word, suite, key;
    int c, s, p, b;
    while (f >> word) {
      if (word == "stream" && f >> c >> s >> p) relay_port[{c, s}] = p;
      if (word == "srtp" && f >> c >> s >> b >> suite >> key)
        srtp_key[{c, s, b}] = suite + " " + key;
    }
  }
  auto key_of = [&](int c, int s, int b) -> std::shared_ptr<portier::proxy::SrtpContext> {
    auto it = srtp_key.find({c, s, b});
    if (it == srtp_key.end()) {
      std::fprintf(stderr, "relay_calls: --srtp: no key for call %d stream %d branch %d in %s\n", c,
                   s, b, ports_file);
      return nullptr;
    }
    return srtp_context(it->second, true);
  };
  Receiver rx;
  rx.slow_ns = static_cast<int64_t>(slow_us * 1000);
  // Room for a few seconds of a stream at the highest rates: a drop at our
  // own socket must never be blamed on the relay (SO_RXQ_OVFL tells).
  const int rcvbuf = 4 << 20;
  const int on = 1;
  auto add_receiver = [&](int port, int c, int s, int b) {
    RecvSocket rs;
    if (srtp) {
      // A device decrypts with its branch's key; the baseline receiver with the door's.
      rs.srtp = b >= 0 ? key_of(c, s, b) : nullptr;
      if (b < 0) {
        auto it = srtp_key.find({c, s, -1});
        if (it != srtp_key.end()) rs.srtp = srtp_context(it->second, true);
      }
      if (!rs.srtp) return false;
    }
    rs.fd = udp_socket(port, rcvbuf);
    if (rs.fd < 0) return false;
    setsockopt(rs.fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
    setsockopt(rs.fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
    rs.call = c, rs.stream = s, rs.branch = b;
    rx.sockets.push_back(rs);
    return true;
  };
  std::vector<SendStream> streams;
  for (int c = 0; c < calls; ++c)
    for (int s = 0; s < kStreams; ++s) {
      auto it = relay_port.find({c, s});
      if (it == relay_port.end() || !it->second) {
        std::fprintf(stderr, "relay_calls: no relay port for call %d stream %d in %s\n", c, s,
                     ports_file);
        return 2;
      }
      for (int b = 0; b < branches; ++b)
        if (!add_receiver(device_port(c, s, b, branches), c, s, b)) return 2;
      if (baseline && !add_receiver(baseline_port(c, s), c, s, -1)) return 2;
      SendStream st;
      if (srtp) {
        auto it = srtp_key.find({c, s, -1});
        st.srtp = it == srtp_key.end() ? nullptr : srtp_context(it->second, false);
        if (!st.srtp) {
          std::fprintf(stderr, "relay_calls: --srtp: no door key for call %d stream %d\n", c, s);
          return 2;
        }
      }
      st.fd = udp_socket(door_port(c, s), 0);
      if (st.fd < 0) return 2;
      int sndbuf = 4 << 20;
      setsockopt(st.fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf);
      st.call = c, st.stream = s;
      st.relay = loopback(it->second);
      st.direct = loopback(baseline_port(c, s));
      st.period_ns = static_cast<int64_t>(1e9 / (kPps[s] * mult));
      // Spread the streams' phases over a period (golden ratio), so the
      // calls do not all send in the same tick.
      st.next_ns = static_cast<int64_t>(std::fmod((2 * c + s) * 0.6180339887, 1.0) *
                                        static_cast<double>(st.period_ns));
      st.ssrc = 0x10000000u + static_cast<uint32_t>(2 * c + s);
      st.seq = static_cast<uint16_t>(1000 * c);
      streams.push_back(std::move(st));
    }
  std::thread rx_thread([&] { rx.run(); });
  usleep(50000);

  const long drops0 = udp_drops(drop_min, drop_max), backlog0 = backlog_drops();
  const int64_t cpu0 = process_cpu_ns(pid);
  const long ticks0 = process_ticks(pid), core0 = cpu >= 0 ? core_busy_ticks(cpu) : 0;
  rusage ru0;
  getrusage(RUSAGE_SELF, &ru0);
  const int64_t start = mono_ns(), end = start + static_cast<int64_t>(seconds * 1e9);
  for (auto &st : streams) st.next_ns += start;

  constexpr int kBatch = 128;
  std::vector<std::vector<uint8_t>> pkts(kBatch, std::vector<uint8_t>(1100, 0x55));
  std::vector<mmsghdr> msgs(kBatch);
  std::vector<iovec> iov(kBatch);
  uint64_t sent_in = 0;
  std::vector<uint64_t> sent(streams.size(), 0);
  int64_t tick = start;
  while (true) {
    const int64_t now = mono_ns();
    if (now >= end) break;
    for (size_t i = 0; i < streams.size(); ++i) {
      SendStream &st = streams[i];
      // Due packets of this stream, the relay's copy and the baseline's next
      // to each other so both see the same batching delay.
      while (st.next_ns <= now && st.next_ns < end) {
        int n = 0;
        const int64_t stamp = mono_ns();
        while (st.next_ns <= now && st.next_ns < end && n + 2 <= kBatch) {
          size_t size = kSize[st.stream];
          fill(st, pkts[n].data(), stamp);
          if (st.srtp && !st.srtp->protect_rtp(pkts[n].data(), &size)) {
            std::fprintf(stderr, "relay_calls: srtp_protect failed\n");
            return 1;
          }
          if (baseline) std::memcpy(pkts[n + 1].data(), pkts[n].data(), size);
          for (int copy = 0; copy < (baseline ? 2 : 1); ++copy, ++n) {
            iov[n] = {pkts[n].data(), size};
            msgs[n] = {};
            msgs[n].msg_hdr.msg_name = copy ? &st.direct : &st.relay;
            msgs[n].msg_hdr.msg_namelen = sizeof(sockaddr_in);
            msgs[n].msg_hdr.msg_iov = &iov[n];
            msgs[n].msg_hdr.msg_iovlen = 1;
          }
          ++st.k, ++st.seq;
          st.next_ns += st.period_ns;
        }
        for (int off = 0; off < n;) {
          const int r = sendmmsg(st.fd, msgs.data() + off, static_cast<unsigned>(n - off), 0);
          if (r < 0) {
            if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) continue;
            std::perror("relay_calls: sendmmsg");
            return 1;
          }
          off += r;
        }
        sent[i] += static_cast<uint64_t>(baseline ? n / 2 : n);
        sent_in += static_cast<uint64_t>(baseline ? n / 2 : n);
      }
    }
    // Wake up every 250 us: fine enough for 300 pps x 64 per stream without
    // big bursts, cheap enough for the load's own core.
    tick += 250000;
    if (tick < now) tick = now;
    const timespec ts{static_cast<time_t>(tick / 1000000000), static_cast<long>(tick % 1000000000)};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
  }
  const int64_t send_end = mono_ns();
  // Drained: nothing new for 300 ms (at most 3 s: an overloaded relay's
  // queues are its receive buffers, a few hundred ms of packets).
  uint64_t expected_out = 0;
  for (size_t i = 0; i < streams.size(); ++i) expected_out += sent[i] * branches;
  auto received_out = [&] {
    uint64_t n = 0;
    for (auto &rs : rx.sockets)
      if (rs.branch >= 0) n += rs.received;
    return n;
  };
  while (mono_ns() - send_end < 3000000000LL) {
    usleep(50000);
    const int64_t last = rx.last_arrival;
    if (mono_ns() - std::max(last, send_end) > 300000000LL) break;
  }
  const int64_t stop = mono_ns();
  const int64_t cpu_ns = process_cpu_ns(pid) - cpu0;
  const long ticks = process_ticks(pid) - ticks0;
  const long core_ticks = cpu >= 0 ? core_busy_ticks(cpu) - core0 : 0;
  const long drops = udp_drops(drop_min, drop_max) - drops0;
  const long backlog = backlog_drops() - backlog0;
  rusage ru1;
  getrusage(RUSAGE_SELF, &ru1);
  rx.stop = true;
  rx_thread.join();

  uint64_t out = received_out(), direct = 0, ovfl = 0;
  int lossy = 0;
  for (auto &rs : rx.sockets) {
    ovfl += rs.overflows;
    if (rs.branch < 0) {
      direct += rs.received;
      continue;
    }
    const size_t si = static_cast<size_t>(2 * rs.call + rs.stream);
    if (rs.received >= sent[si]) continue;
    if (++lossy <= 5)  // which ones, on stderr: a pattern (one call, one stream) tells a lot
      std::fprintf(stderr, "relay_calls: x%g call %d stream %d branch %d got %llu of %llu\n", mult,
                   rs.call, rs.stream, rs.branch, (unsigned long long)rs.received,
                   (unsigned long long)sent[si]);
  }
  const double wall = (stop - start) / 1e9;
  auto us = [](const timeval &t) { return t.tv_sec * 1e6 + t.tv_usec; };
  const double gen_cpu =
      (us(ru1.ru_utime) + us(ru1.ru_stime) - us(ru0.ru_utime) - us(ru0.ru_stime)) / 1e6;
  const long hz = sysconf(_SC_CLK_TCK);
  // Another process's work on the relay's core during the step, in % of the core.
  const double other =
      cpu >= 0 ? 100.0 * (core_ticks / static_cast<double>(hz) - cpu_ns / 1e9) / wall : -1;
  std::printf(
      "mult=%g secs=%g in_pps=%.0f sent=%llu expected_out=%llu received_out=%llu lost=%lld "
      "lossy_branches=%d of=%zu direct=%llu lat_p50=%.1f lat_p99=%.1f lat_max=%.1f "
      "base_p50=%.1f base_p99=%.1f base_max=%.1f cpu_ns=%lld ticks=%ld wall=%.3f "
      "relay_cpu_pct=%.1f other_pct=%.1f gen_cpu_pct=%.1f gen_ovfl=%llu relay_drops=%ld "
      "backlog_drops=%ld bad=%llu\n",
      mult, seconds, sent_in / ((send_end - start) / 1e9), (unsigned long long)sent_in,
      (unsigned long long)expected_out, (unsigned long long)out,
      static_cast<long long>(expected_out) - static_cast<long long>(out), lossy,
      rx.sockets.size() - (baseline ? streams.size() : 0), (unsigned long long)direct,
      rx.relayed.percentile_us(0.5), rx.relayed.percentile_us(0.99), rx.relayed.max_ns / 1e3,
      rx.direct.percentile_us(0.5), rx.direct.percentile_us(0.99), rx.direct.max_ns / 1e3,
      static_cast<long long>(cpu_ns), ticks, wall, 100.0 * cpu_ns / 1e9 / wall, other,
      100.0 * gen_cpu / wall, (unsigned long long)ovfl, drops, backlog, (unsigned long long)rx.bad);
  for (auto &rs : rx.sockets) close(rs.fd);
  for (auto &st : streams) close(st.fd);
  return 0;
}

int usage() {
  std::fprintf(stderr,
               "usage: relay_calls serve portier|tee CALLS BRANCHES [--srtp]\n"
               "       relay_calls load PORTS_FILE CALLS BRANCHES MULT SECONDS [--baseline]\n"
               "                   [--pid PID] [--cpu N] [--relay-ports MIN-MAX] [--srtp]\n");
  return 2;
}

}  // namespace

int main(int argc, char **argv) {
  if (argc >= 5 && !std::strcmp(argv[1], "serve")) {
    const int calls = std::atoi(argv[3]), branches = std::atoi(argv[4]);
    if (calls < 1 || calls > 50 || branches < 1 || branches > 16) {
      std::fprintf(stderr, "relay_calls: 1-50 calls, 1-16 branches (the port layout)\n");
      return 2;
    }
    const bool srtp = argc >= 6 && !std::strcmp(argv[5], "--srtp");
    auto suite = argc >= 7 ? sdp::suite_from_name(argv[6]) : sdp::SrtpSuite::AesCm128HmacSha1_80;
    if (!suite) {
      std::fprintf(stderr, "relay_calls: %s: not an SRTP suite\n", argv[6]);
      return 2;
    }
    if (!std::strcmp(argv[2], "portier")) return serve_portier(calls, branches, srtp, *suite);
    if (!std::strcmp(argv[2], "tee")) return serve_tee(calls, branches);
    return usage();
  }
  if (argc >= 7 && !std::strcmp(argv[1], "load"))
    return load(argv[2], std::atoi(argv[3]), std::atoi(argv[4]), std::atof(argv[5]),
                std::atof(argv[6]), argc - 7, argv + 7);
  return usage();
}
