#include "proxy/relay_engine.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "common/log.h"
#include "rtpfork/branch_sequencer.h"
#include "rtpfork/gop_cache.h"
#include "rtpfork/keyframe_requests.h"
#include "rtpfork/rtcp_packet.h"
#include "rtpfork/rtp_header.h"

namespace portier::proxy {
namespace {

constexpr int kBatch = RelayEngine::kBatch;
constexpr int kMaxEvents = 64;
// Room for about a second of a door's keyframe burst (the kernel's default,
// 208 KB, held 0.3 s of video); SO_*BUFFORCE needs CAP_NET_ADMIN, without it
// net.core.rmem_max / wmem_max cap what we get.
constexpr int kSocketBuffer = 1 << 20;
// The GOP a joining branch gets, at most (rtpfork's defaults).
constexpr size_t kGopMaxPackets = 3000;
constexpr size_t kGopMaxBytes = 4 * 1024 * 1024;
constexpr uint32_t kNoSlot = UINT32_MAX;  // also the eventfd's epoll tag
enum Kind { kRtp = 0, kRtcp = 1 };

const char *kind_name(int kind) { return kind == kRtp ? "RTP" : "RTCP"; }

// Read once per wake-up. The coarse clock (a tick, 1-4 ms) is plenty for what
// needs the time (keyframe request intervals of 100 ms and more, a timestamp
// gap across a source change, idle calls) and costs less than the precise one.
int64_t mono_us() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

// A datagram. refs: one for the receive array, one while the GOP cache keeps it.
struct Packet {
  uint32_t refs = 0;
  uint32_t size = 0;
  uint8_t data[RelayEngine::kMaxPacket];
};

// The worker's packet buffers: taken and given back without malloc once warm.
class PacketPool {
 public:
  Packet *take() {
    if (free_.empty()) grow();
    Packet *p = free_.back();
    free_.pop_back();
    p->refs = 1;
    return p;
  }
  void unref(Packet *p) {
    if (--p->refs == 0) free_.push_back(p);
  }

 private:
  void grow() {
    constexpr size_t kChunk = 64;
    chunks_.push_back(std::make_unique<Packet[]>(kChunk));
    for (size_t i = 0; i < kChunk; ++i) free_.push_back(&chunks_.back()[i]);
  }
  std::vector<std::unique_ptr<Packet[]>> chunks_;
  std::vector<Packet *> free_;
};

// One direction of a leg: where it sends, and whether the peer's own packets said so.
struct Route {
  RelayAddress to;
  bool latched = false;
};

// A socket pair and its peer; [kRtp] and [kRtcp].
struct LegState {
  int fd[2] = {-1, -1};
  uint32_t slot[2] = {kNoSlot, kNoSlot};
  Route route[2];

  void set(const RelayEngine::Leg &leg) {
    fd[kRtp] = leg.rtp_fd;
    fd[kRtcp] = leg.rtcp_fd;
    route[kRtp].to = leg.rtp;
    route[kRtcp].to = leg.rtcp;
  }
};

struct BranchState {
  explicit BranchState(size_t branch, uint32_t clock_rate) : id(branch), sequencer(clock_rate) {}
  size_t id;
  LegState leg;
  rtp::BranchSequencer sequencer;
  bool receiving = true;     // the caller's media goes to it
  bool winner = false;       // its media goes to the caller
  bool needs_replay = true;  // the cached GOP, before any live packet
  std::atomic<uint64_t> packets{0};
  std::atomic<uint64_t> bytes{0};
};

// Do two socket addresses name the same host (and, with `port`, the same
// port)? Read in place: the receive path compares every packet's source.
bool same_endpoint(const sockaddr_storage &a, socklen_t alen, const sockaddr_storage &b,
                   socklen_t blen, bool port) {
  if (alen == 0 || blen == 0 || a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET) {
    auto *x = reinterpret_cast<const sockaddr_in *>(&a);
    auto *y = reinterpret_cast<const sockaddr_in *>(&b);
    return (!port || x->sin_port == y->sin_port) && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  auto *x = reinterpret_cast<const sockaddr_in6 *>(&a);
  auto *y = reinterpret_cast<const sockaddr_in6 *>(&b);
  return (!port || x->sin6_port == y->sin6_port) && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

bool same_host(const RelayAddress &a, const RelayAddress &b) {
  return same_endpoint(a.addr, a.len, b.addr, b.len, false);
}

bool same_address(const RelayAddress &a, const RelayAddress &b) {
  return same_endpoint(a.addr, a.len, b.addr, b.len, true);
}

// Big buffers, never blocking.
void tune_socket(int fd) {
  if (fd < 0) return;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  const int size = kSocketBuffer;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
}

}  // namespace

// ------------------------------------------------------------------ addresses

RelayAddress RelayAddress::from(const std::string &host, uint16_t port) {
  RelayAddress a;
  if (host.empty() || port == 0) return a;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  hints.ai_flags = AI_NUMERICHOST;
  addrinfo *res = nullptr;
  // Never a name: resolving it would block the SIP thread on DNS (MediaRelay
  // refuses such SDP before it gets here).
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return a;
  memcpy(&a.addr, res->ai_addr, res->ai_addrlen);
  a.len = res->ai_addrlen;
  freeaddrinfo(res);
  if (a.addr.ss_family == AF_INET)
    reinterpret_cast<sockaddr_in *>(&a.addr)->sin_port = htons(port);
  else
    reinterpret_cast<sockaddr_in6 *>(&a.addr)->sin6_port = htons(port);
  return a;
}

std::string RelayAddress::text() const {
  if (!len) return "(none)";
  char host[INET6_ADDRSTRLEN] = "?";
  if (addr.ss_family == AF_INET) {
    auto *a = reinterpret_cast<const sockaddr_in *>(&addr);
    inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(a->sin_port));
  }
  auto *a = reinterpret_cast<const sockaddr_in6 *>(&addr);
  inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
  return "[" + std::string(host) + "]:" + std::to_string(ntohs(a->sin6_port));
}

// ------------------------------------------------------------------ call state

namespace {

struct Stream {
  Stream(RelayEngine::Call *c, size_t i, rtp::VideoCodec vc, uint32_t rate, PacketPool *pool)
      : call(c),
        index(i),
        codec(vc),
        clock_rate(rate ? rate : 90000),
        gop(kGopMaxPackets, kGopMaxBytes, [pool](Packet *&p) { pool->unref(p); }) {}
  RelayEngine::Call *call;
  size_t index;
  LegState caller;
  rtp::VideoCodec codec;
  uint32_t clock_rate;
  bool have_ssrc = false;
  uint32_t ssrc = 0;              // the caller's latest, named by our PLIs
  bool keyframe_wanted = false;   // asked for before the caller's first packet
  bool keyframe_pending = false;  // a branch joined or was selected: the worker asks
  rtp::KeyframeRequests requests;
  rtp::GopCache<Packet *> gop;
  std::vector<std::unique_ptr<BranchState>> branches;

  BranchState *branch(size_t id) {
    for (auto &b : branches)
      if (b->id == id) return b.get();
    return nullptr;
  }
};

// What an epoll event points at; gen tells a reused slot from the one it was.
struct Slot {
  uint32_t gen = 0;
  bool used = false;
  int kind = kRtp;
  Stream *stream = nullptr;
  BranchState *branch = nullptr;  // null: the caller-facing leg
};

}  // namespace

struct RelayEngine::Call {
  Worker *worker = nullptr;
  std::string id;
  uint32_t pli_ssrc = 0;
  std::vector<std::unique_ptr<Stream>> streams;  // by m= line; null: not relayed
  std::atomic<int64_t> last_packet_s{0};
  bool pending = false;  // in the worker's to-do list
};

namespace {
Stream *stream_of(RelayEngine::Call *c, size_t index) {
  return index < c->streams.size() ? c->streams[index].get() : nullptr;
}
}  // namespace

// ------------------------------------------------------------------ worker

class RelayEngine::Worker {
 public:
  Worker(unsigned index, Latch latch);
  ~Worker();

  // Held by the worker while it handles one socket's batch, by the main loop
  // while it changes a call of this worker.
  std::mutex mu;
  size_t calls = 0;  // main loop only
  PacketPool pool;   // the rest: under mu

  void watch(Stream *s, BranchState *b, LegState &leg);
  void unwatch(LegState &leg);
  // Keyframe requests and GOP replays of `c`, sent by the worker right away.
  void kick(Call *c);
  void forget(Call *c) {
    pending_.erase(std::remove(pending_.begin(), pending_.end(), c), pending_.end());
  }

 private:
  void run();
  void do_pending(int64_t now);
  void on_ready(const Slot &slot, int64_t now);
  int receive(int fd);
  bool admit(const Stream *s, Route &route, int kind, int packet);

  void from_caller_rtp(Stream *s, Packet **pkts, int n, int64_t now);
  void from_caller_rtcp(Stream *s, Packet **pkts, int n);
  void from_branch_rtcp(Stream *s, Packet **pkts, int n, int64_t now);
  void want_keyframe(Stream *s, int64_t now);
  void send_pli(Stream *s);
  void replay(Stream *s, BranchState *b, int64_t now);
  void send_rtp(BranchState *b, Packet *const *pkts, int n, int64_t now);
  void send_whole(int fd, const Route &route, Packet *const *pkts, int n);
  void add_message(int i, const Route &route, int iovs);
  int send_batch(int fd, int n, uint64_t *bytes);

  Latch latch_;
  int epoll_ = -1;
  int wake_ = -1;
  bool stop_ = false;
  std::vector<Slot> slots_;
  std::vector<uint32_t> free_slots_;
  std::vector<Call *> pending_;

  // Receive and send arrays, reused for every batch.
  Packet *rx_[kBatch] = {};
  mmsghdr rx_msg_[kBatch];
  iovec rx_iov_[kBatch];
  sockaddr_storage rx_from_[kBatch];
  mmsghdr tx_msg_[kBatch];
  iovec tx_iov_[kBatch][2];
  uint8_t tx_head_[kBatch][12];
  uint8_t tx_rtcp_[kBatch][RelayEngine::kMaxPacket];  // RTCP with a branch's SSRC

  std::thread thread_;
};

RelayEngine::Worker::Worker(unsigned index, Latch latch) : latch_(latch) {
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  wake_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epoll_ < 0 || wake_ < 0) {
    PLOG_ERROR("relay: I/O thread %u: epoll/eventfd: %s", index, strerror(errno));
    return;
  }
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kNoSlot;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &ev);
  thread_ = std::thread([this] { run(); });
  const std::string name = "relay-io-" + std::to_string(index);
  pthread_setname_np(thread_.native_handle(), name.c_str());
}

RelayEngine::Worker::~Worker() {
  if (thread_.joinable()) {
    {
      std::lock_guard<std::mutex> l(mu);
      stop_ = true;
    }
    const uint64_t one = 1;
    if (write(wake_, &one, sizeof one) < 0) PLOG_WARN("relay: waking an I/O thread failed");
    thread_.join();
  }
  for (Packet *p : rx_)
    if (p) pool.unref(p);
  if (epoll_ >= 0) close(epoll_);
  if (wake_ >= 0) close(wake_);
}

void RelayEngine::Worker::watch(Stream *s, BranchState *b, LegState &leg) {
  for (int kind : {kRtp, kRtcp}) {
    if (leg.fd[kind] < 0) continue;
    uint32_t index;
    if (!free_slots_.empty()) {
      index = free_slots_.back();
      free_slots_.pop_back();
    } else {
      index = static_cast<uint32_t>(slots_.size());
      slots_.emplace_back();
    }
    Slot &slot = slots_[index];
    slot.used = true;
    slot.kind = kind;
    slot.stream = s;
    slot.branch = b;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<uint64_t>(slot.gen) << 32 | index;
    if (epoll_ctl(epoll_, EPOLL_CTL_ADD, leg.fd[kind], &ev) != 0)
      PLOG_ERROR("relay: call-id=%s: epoll_ctl: %s", s->call->id.c_str(), strerror(errno));
    leg.slot[kind] = index;
  }
}

void RelayEngine::Worker::unwatch(LegState &leg) {
  for (int kind : {kRtp, kRtcp}) {
    const uint32_t index = leg.slot[kind];
    if (index == kNoSlot) continue;
    epoll_ctl(epoll_, EPOLL_CTL_DEL, leg.fd[kind], nullptr);
    // Events for it that epoll_wait returned already no longer match.
    ++slots_[index].gen;
    slots_[index].used = false;
    free_slots_.push_back(index);
    leg.slot[kind] = kNoSlot;
  }
}

void RelayEngine::Worker::kick(Call *c) {
  if (!c->pending) {
    c->pending = true;
    pending_.push_back(c);
  }
  const uint64_t one = 1;
  if (write(wake_, &one, sizeof one) < 0) PLOG_WARN("relay: waking an I/O thread failed");
}

void RelayEngine::Worker::run() {
  epoll_event events[kMaxEvents];
  for (;;) {
    const int n = epoll_wait(epoll_, events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      PLOG_ERROR("relay: epoll_wait: %s", strerror(errno));
      return;
    }
    const int64_t now = mono_us();  // once per wake-up, not per packet
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      const auto index = static_cast<uint32_t>(tag);
      std::lock_guard<std::mutex> l(mu);
      if (index == kNoSlot) {
        uint64_t count;
        if (read(wake_, &count, sizeof count) < 0 && errno != EAGAIN)
          PLOG_WARN("relay: eventfd: %s", strerror(errno));
        if (stop_) return;
        do_pending(now);
        continue;
      }
      if (index >= slots_.size()) continue;
      const Slot &slot = slots_[index];
      if (!slot.used || slot.gen != static_cast<uint32_t>(tag >> 32)) continue;  // removed
      on_ready(slot, now);
    }
  }
}

void RelayEngine::Worker::do_pending(int64_t now) {
  for (Call *c : pending_) {
    c->pending = false;
    for (auto &s : c->streams) {
      if (!s) continue;
      if (s->keyframe_pending) {
        s->keyframe_pending = false;
        want_keyframe(s.get(), now);
      }
      for (auto &b : s->branches)
        if (b->receiving && b->needs_replay) replay(s.get(), b.get(), now);
    }
  }
  pending_.clear();
}

int RelayEngine::Worker::receive(int fd) {
  for (int i = 0; i < kBatch; ++i) {
    if (!rx_[i]) rx_[i] = pool.take();
    rx_iov_[i] = {rx_[i]->data, sizeof rx_[i]->data};
    msghdr &h = rx_msg_[i].msg_hdr;
    h = msghdr{};
    h.msg_name = &rx_from_[i];
    h.msg_namelen = sizeof rx_from_[i];
    h.msg_iov = &rx_iov_[i];
    h.msg_iovlen = 1;
  }
  const int n = recvmmsg(fd, rx_msg_, kBatch, MSG_DONTWAIT, nullptr);
  for (int i = 0; i < n; ++i)  // a datagram too big for a buffer is dropped
    rx_[i]->size = (rx_msg_[i].msg_hdr.msg_flags & MSG_TRUNC) ? 0 : rx_msg_[i].msg_len;
  return n;
}

// Is packet `packet` of the batch the peer's? Symmetric RTP: the first one
// accepted fixes where the peer's packets go (latching), and from then on only
// that address is the peer. Before that, with Latch::SignalledHost, only the
// host the SDP names may send. One compare per packet.
bool RelayEngine::Worker::admit(const Stream *s, Route &route, int kind, int packet) {
  const sockaddr_storage &from = rx_from_[packet];
  const socklen_t len = rx_msg_[packet].msg_hdr.msg_namelen;
  if (route.latched) return same_endpoint(from, len, route.to.addr, route.to.len, true);
  RelayAddress source;
  memcpy(&source.addr, &from, len);
  source.len = len;
  if (latch_ == Latch::SignalledHost && !route.to.empty() && !same_host(source, route.to)) {
    PLOG_DEBUG("relay: call-id=%s %s from %s dropped: the peer is %s", s->call->id.c_str(),
               kind_name(kind), source.text().c_str(), route.to.text().c_str());
    return false;
  }
  route.latched = true;
  if (same_address(source, route.to)) return true;
  PLOG_INFO("relay: call-id=%s %s from %s, not %s as signalled: latched", s->call->id.c_str(),
            kind_name(kind), source.text().c_str(), route.to.text().c_str());
  route.to = source;
  return true;
}

void RelayEngine::Worker::on_ready(const Slot &slot, int64_t now) {
  Stream *s = slot.stream;
  BranchState *b = slot.branch;
  LegState &leg = b ? b->leg : s->caller;
  const int n = receive(leg.fd[slot.kind]);
  if (n <= 0) return;
  // RTCP on the RTP port (rtcp-mux, RFC 5761 §4) is RTCP all the same.
  Packet *rtp_pkts[kBatch], *rtcp_pkts[kBatch];
  int n_rtp = 0, n_rtcp = 0;
  for (int i = 0; i < n; ++i) {
    Packet *p = rx_[i];
    if (p->size == 0 || !admit(s, leg.route[slot.kind], slot.kind, i)) continue;
    if (slot.kind == kRtcp || rtp::is_rtcp(p->data, p->size))
      rtcp_pkts[n_rtcp++] = p;
    else
      rtp_pkts[n_rtp++] = p;
  }
  // Only the peer's packets keep the call alive (a flood from elsewhere does not).
  if (n_rtp + n_rtcp) s->call->last_packet_s.store(now / 1000000, std::memory_order_relaxed);
  if (!b) {
    if (n_rtp) from_caller_rtp(s, rtp_pkts, n_rtp, now);
    if (n_rtcp) from_caller_rtcp(s, rtcp_pkts, n_rtcp);
  } else if (b->winner) {  // only the device that answered talks to the caller
    if (n_rtp) send_whole(s->caller.fd[kRtp], s->caller.route[kRtp], rtp_pkts, n_rtp);
    if (n_rtcp) send_whole(s->caller.fd[kRtcp], s->caller.route[kRtcp], rtcp_pkts, n_rtcp);
  } else if (n_rtcp) {
    from_branch_rtcp(s, rtcp_pkts, n_rtcp, now);
  }
  // Buffers the GOP cache kept are its own now; the others serve the next batch.
  for (int i = 0; i < n; ++i)
    if (rx_[i]->refs > 1) {
      pool.unref(rx_[i]);
      rx_[i] = nullptr;
    }
}

void RelayEngine::Worker::from_caller_rtp(Stream *s, Packet **pkts, int n, int64_t now) {
  // A branch that joined since the last batch gets the GOP as it was before it.
  for (auto &b : s->branches)
    if (b->receiving && b->needs_replay) replay(s, b.get(), now);
  Packet *valid[kBatch];
  int n_valid = 0;
  bool ask = false, gop_turned = false;
  for (int i = 0; i < n; ++i) {
    Packet *p = pkts[i];
    rtp::Header h;
    if (!rtp::parse(p->data, p->size, &h)) continue;
    valid[n_valid++] = p;
    if (!s->have_ssrc || h.ssrc != s->ssrc) {
      if (s->have_ssrc)  // not INFO: a flood of junk would flood the log
        PLOG_DEBUG("relay: call-id=%s stream %zu: source SSRC %08x -> %08x", s->call->id.c_str(),
                   s->index, s->ssrc, h.ssrc);
      s->gop.clear();  // the old stream's GOP decodes nothing of the new one
      s->have_ssrc = true;
      s->ssrc = h.ssrc;
      if (s->keyframe_wanted && s->codec != rtp::VideoCodec::None) {
        s->keyframe_wanted = false;
        ask |= s->requests.request(h.ssrc, now);
      }
    }
    if (s->codec == rtp::VideoCodec::None) continue;
    const bool key = rtp::starts_keyframe(s->codec, p->data + h.payload_offset, h.payload_size);
    if (key) s->requests.keyframe_seen(h.ssrc);
    ++p->refs;
    s->gop.push(p, p->size, key, h.timestamp);
    gop_turned |= key;
  }
  // A retry or a held-back request is due by the clock, and the whole batch
  // has one "now": asking once per batch is asking once per packet.
  if (n_valid && s->codec != rtp::VideoCodec::None) ask |= s->requests.poll(s->ssrc, now);
  if (ask) send_pli(s);
  for (auto &b : s->branches)
    if (b->receiving) send_rtp(b.get(), valid, n_valid, now);
  // A GOP the keyframe ended goes after the keyframe went out.
  if (gop_turned)
    for (Packet *old : s->gop.take_retired()) pool.unref(old);
}

void RelayEngine::Worker::from_caller_rtcp(Stream *s, Packet **pkts, int n) {
  for (auto &b : s->branches) {
    const Route &route = b->leg.route[kRtcp];
    if (!b->receiving || route.to.empty()) continue;
    // The branch's receivers know the SSRC its sequencer gave the stream.
    const rtp::BranchSequencer &seq = b->sequencer;
    const bool rewrite = seq.started() && seq.ssrc() != seq.source_ssrc();
    for (int i = 0; i < n; ++i) {
      uint8_t *data = pkts[i]->data;
      if (rewrite) {
        memcpy(tx_rtcp_[i], data, pkts[i]->size);
        data = tx_rtcp_[i];
        rtp::rewrite_rtcp_ssrc(data, pkts[i]->size, seq.source_ssrc(), seq.ssrc());
      }
      tx_iov_[i][0] = {data, pkts[i]->size};
      add_message(i, route, 1);
    }
    send_batch(b->leg.fd[kRtcp], n, nullptr);
  }
}

void RelayEngine::Worker::from_branch_rtcp(Stream *s, Packet **pkts, int n, int64_t now) {
  // An early device's keyframe request goes through the de-duplication.
  for (int i = 0; i < n; ++i)
    if (rtp::asks_for_keyframe(pkts[i]->data, pkts[i]->size)) {
      want_keyframe(s, now);
      return;
    }
}

void RelayEngine::Worker::want_keyframe(Stream *s, int64_t now) {
  if (s->codec == rtp::VideoCodec::None) return;
  if (!s->have_ssrc) {  // asked with the caller's first packet
    s->keyframe_wanted = true;
    return;
  }
  if (s->requests.request(s->ssrc, now)) send_pli(s);
}

void RelayEngine::Worker::send_pli(Stream *s) {
  const Route &route = s->caller.route[kRtcp];
  if (route.to.empty()) return;
  uint8_t pli[rtp::kPliSize];
  rtp::write_pli(pli, s->call->pli_ssrc, s->ssrc);
  sendto(s->caller.fd[kRtcp], pli, sizeof pli, MSG_DONTWAIT,
         reinterpret_cast<const sockaddr *>(&route.to.addr), route.to.len);
  PLOG_DEBUG("relay: call-id=%s PLI to the caller %s", s->call->id.c_str(),
             route.to.text().c_str());
}

void RelayEngine::Worker::replay(Stream *s, BranchState *b, int64_t now) {
  b->needs_replay = false;
  Packet *chunk[kBatch];
  int k = 0;
  for (Packet *p : s->gop.packets()) {
    chunk[k++] = p;
    if (k == kBatch) send_rtp(b, chunk, k, now), k = 0;
  }
  if (k) send_rtp(b, chunk, k, now);
  if (!s->gop.packets().empty())
    PLOG_DEBUG("relay: call-id=%s branch %zu: %zu GOP packets replayed", s->call->id.c_str(), b->id,
               s->gop.packets().size());
}

void RelayEngine::Worker::add_message(int i, const Route &route, int iovs) {
  msghdr &h = tx_msg_[i].msg_hdr;
  h = msghdr{};
  h.msg_name = const_cast<sockaddr_storage *>(&route.to.addr);
  h.msg_namelen = route.to.len;
  h.msg_iov = tx_iov_[i];
  h.msg_iovlen = static_cast<size_t>(iovs);
  tx_msg_[i].msg_len = 0;
}

// RTP to a branch with the branch's ids: a rewritten copy of the fixed header,
// the rest of the packet where it is.
void RelayEngine::Worker::send_rtp(BranchState *b, Packet *const *pkts, int n, int64_t now) {
  const Route &route = b->leg.route[kRtp];
  if (route.to.empty() || n == 0) return;
  for (int i = 0; i < n; ++i) {
    const uint8_t *d = pkts[i]->data;
    const rtp::RtpIds out =
        b->sequencer.map({rtp::read32(d + 8), rtp::read16(d + 2), rtp::read32(d + 4)}, now);
    memcpy(tx_head_[i], d, sizeof tx_head_[i]);
    rtp::rewrite(tx_head_[i], out.seq, out.timestamp, out.ssrc);
    tx_iov_[i][0] = {tx_head_[i], sizeof tx_head_[i]};
    tx_iov_[i][1] = {pkts[i]->data + sizeof tx_head_[i], pkts[i]->size - sizeof tx_head_[i]};
    add_message(i, route, 2);
  }
  uint64_t bytes = 0;
  const int sent = send_batch(b->leg.fd[kRtp], n, &bytes);
  b->packets.fetch_add(static_cast<uint64_t>(sent), std::memory_order_relaxed);
  b->bytes.fetch_add(bytes, std::memory_order_relaxed);
}

void RelayEngine::Worker::send_whole(int fd, const Route &route, Packet *const *pkts, int n) {
  if (route.to.empty()) return;
  for (int i = 0; i < n; ++i) {
    tx_iov_[i][0] = {pkts[i]->data, pkts[i]->size};
    add_message(i, route, 1);
  }
  send_batch(fd, n, nullptr);
}

// sendmmsg() until every message is out; a full socket buffer drops the rest
// (as a router would), an unsendable message is skipped. Returns how many went.
int RelayEngine::Worker::send_batch(int fd, int n, uint64_t *bytes) {
  int done = 0, sent = 0;
  while (done < n) {
    const int r = sendmmsg(fd, tx_msg_ + done, static_cast<unsigned>(n - done), MSG_DONTWAIT);
    if (r > 0) {
      for (int i = done; i < done + r; ++i)
        if (bytes) *bytes += tx_msg_[i].msg_len;
      done += r, sent += r;
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      ++done;
    }
  }
  return sent;
}

// ------------------------------------------------------------------ engine

RelayEngine::RelayEngine(unsigned threads, Latch latch) : threads_(threads), latch_(latch) {
  if (threads_ == 0) {
    // One per online CPU this process may run on (taskset, a cgroup cpuset).
    cpu_set_t set;
    const long cpus = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set)
                                                                  : sysconf(_SC_NPROCESSORS_ONLN);
    threads_ = cpus > 0 ? static_cast<unsigned>(cpus) : 1;
  }
}

RelayEngine::~RelayEngine() = default;

RelayEngine::Worker *RelayEngine::least_loaded() {
  if (workers_.empty())
    for (unsigned i = 0; i < threads_; ++i) workers_.push_back(std::make_unique<Worker>(i, latch_));
  return std::min_element(workers_.begin(), workers_.end(),
                          [](const auto &a, const auto &b) { return a->calls < b->calls; })
      ->get();
}

RelayEngine::Call *RelayEngine::open_call(const std::string &id, uint32_t pli_ssrc) {
  auto *c = new Call();
  c->worker = least_loaded();
  c->id = id;
  c->pli_ssrc = pli_ssrc;
  ++c->worker->calls;
  return c;
}

void RelayEngine::add_stream(Call *c, size_t stream, const Leg &caller, rtp::VideoCodec codec,
                             uint32_t clock_rate) {
  tune_socket(caller.rtp_fd);
  tune_socket(caller.rtcp_fd);
  Worker *w = c->worker;
  std::lock_guard<std::mutex> l(w->mu);
  auto s = std::make_unique<Stream>(c, stream, codec, clock_rate, &w->pool);
  s->caller.set(caller);
  if (c->streams.size() <= stream) c->streams.resize(stream + 1);
  w->watch(s.get(), nullptr, s->caller);
  c->streams[stream] = std::move(s);
}

void RelayEngine::add_branch(Call *c, size_t stream, size_t branch, const Leg &device) {
  tune_socket(device.rtp_fd);
  tune_socket(device.rtcp_fd);
  Worker *w = c->worker;
  std::lock_guard<std::mutex> l(w->mu);
  Stream *s = stream_of(c, stream);
  if (!s || s->branch(branch)) return;
  auto b = std::make_unique<BranchState>(branch, s->clock_rate);
  b->leg.set(device);
  w->watch(s, b.get(), b->leg);
  s->branches.push_back(std::move(b));
  s->keyframe_pending = true;
  w->kick(c);
}

void RelayEngine::select_branch(Call *c, size_t branch) {
  Worker *w = c->worker;
  std::lock_guard<std::mutex> l(w->mu);
  for (auto &s : c->streams) {
    if (!s || !s->branch(branch)) continue;
    for (auto &b : s->branches) b->receiving = b->winner = b->id == branch;
    s->keyframe_pending = true;
  }
  w->kick(c);
}

void RelayEngine::remove_branch(Call *c, size_t branch) {
  Worker *w = c->worker;
  std::lock_guard<std::mutex> l(w->mu);
  for (auto &s : c->streams) {
    if (!s) continue;
    auto &v = s->branches;
    for (auto it = v.begin(); it != v.end(); ++it)
      if ((*it)->id == branch) {
        w->unwatch((*it)->leg);
        v.erase(it);
        break;
      }
  }
}

void RelayEngine::update_peer(Call *c, size_t stream, std::optional<size_t> branch,
                              const RelayAddress &rtp_to, const RelayAddress &rtcp_to) {
  std::lock_guard<std::mutex> l(c->worker->mu);
  Stream *s = stream_of(c, stream);
  if (!s) return;
  BranchState *b = branch ? s->branch(*branch) : nullptr;
  if (branch && !b) return;
  LegState &leg = b ? b->leg : s->caller;
  // Not latched: follow the SDP. Latched: keep where the packets come from,
  // unless the SDP names another host (the device moved): then wait for
  // its first packet again.
  for (auto [kind, to] : {std::pair<int, const RelayAddress *>{kRtp, &rtp_to}, {kRtcp, &rtcp_to}}) {
    Route &r = leg.route[kind];
    if (r.latched && same_host(r.to, *to)) continue;
    r.to = *to;
    r.latched = false;
  }
}

void RelayEngine::close_call(Call *c) {
  Worker *w = c->worker;
  {
    std::lock_guard<std::mutex> l(w->mu);
    for (auto &s : c->streams) {
      if (!s) continue;
      for (auto &b : s->branches) w->unwatch(b->leg);
      w->unwatch(s->caller);
    }
    w->forget(c);
    delete c;  // its GOP goes back to the worker's pool: under the lock
  }
  --w->calls;
}

int64_t RelayEngine::last_packet_s(const Call *c) const {
  return c->last_packet_s.load(std::memory_order_relaxed);
}

RelayEngine::Counters RelayEngine::branch_counters(const Call *c, size_t branch) const {
  // Only the main loop changes the branch lists, and this runs on it.
  Counters sum;
  for (auto &s : c->streams)
    if (s)
      if (BranchState *b = s->branch(branch)) {
        sum.packets += b->packets.load(std::memory_order_relaxed);
        sum.bytes += b->bytes.load(std::memory_order_relaxed);
      }
  return sum;
}

}  // namespace portier::proxy
