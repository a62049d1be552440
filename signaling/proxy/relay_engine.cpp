#include "proxy/relay_engine.h"

#include <arpa/inet.h>
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
#include <utility>

#include "common/log.h"
#include "rtpfork/rtcp_packet.h"
#include "rtpfork/rtp_fork_core.h"
#include "rtpfork/rtp_header.h"

namespace portier::proxy {
namespace {

constexpr int kBatch = RelayEngine::kBatch;
constexpr int kMaxEvents = 64;
// Room for about a second of a door's keyframe burst (the kernel's default,
// 208 KB, held 0.3 s of video); SO_*BUFFORCE needs CAP_NET_ADMIN, without it
// net.core.rmem_max / wmem_max cap what we get.
constexpr int kSocketBuffer = 1 << 20;
// What the fork core hands over at once fits one sendmmsg() batch.
static_assert(rtp::RtpForkCore::kMaxSend <= static_cast<size_t>(kBatch));
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

// Room after a packet for an SRTP/SRTCP trailer, so that one can be protected in place.
constexpr size_t kTail = SrtpContext::kTrailer;

// A datagram. refs: one for the receive array, one while the GOP cache keeps it.
struct Packet {
  uint32_t refs = 0;
  uint32_t size = 0;
  alignas(4) uint8_t data[RelayEngine::kMaxPacket + kTail];  // received: kMaxPacket at most
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

bool same_endpoint(const sockaddr_storage &a, socklen_t alen, const sockaddr_storage &b,
                   socklen_t blen, bool port);
bool same_address(const RelayAddress &a, const RelayAddress &b);

// One direction of a leg: where it sends, and whether the peer's own packets said so.
struct Route {
  RelayAddress to;
  bool latched = false;
  bool by_ice = false;  // latched by an ICE check (on_stun): only another valid one moves it
  // The sources of the peer's latest valid checks on an ICE leg (RFC 7675:
  // each has consent). Media is heard from them too, not only from the
  // nominated pair's: an agent bound to the any-address sends its media from
  // the address its routing picks, which on a host with two interfaces need
  // not be the candidate it nominated (liblinphone does this).
  RelayAddress checked[4];
  uint8_t next_checked = 0;
  bool from_checked(const sockaddr_storage &from, socklen_t len) const {
    for (const RelayAddress &c : checked)
      if (!c.empty() && same_endpoint(from, len, c.addr, c.len, true)) return true;
    return false;
  }
  void add_checked(const RelayAddress &a) {
    for (const RelayAddress &c : checked)
      if (same_address(c, a)) return;
    checked[next_checked++ % 4] = a;
  }
};

// A socket pair and its peer; [kRtp] and [kRtcp].
struct LegState {
  int fd[2] = {-1, -1};
  uint32_t slot[2] = {kNoSlot, kNoSlot};
  Route route[2];
  bool mux = false;  // RTCP goes to the peer's RTP port, from ours (RFC 5761)
  std::unique_ptr<SrtpContext> srtp_in, srtp_out;
  bool keyless_srtp = false;  // RelayEngine::Leg::keyless_srtp
  std::atomic<uint64_t> srtp_rejected{0};
  std::optional<ice::Credentials> ice;  // RelayEngine::Leg::ice
  std::atomic<uint64_t> stun_answered{0}, stun_refused{0};

  void set(RelayEngine::Leg &leg) {
    fd[kRtp] = leg.rtp_fd;
    fd[kRtcp] = leg.rtcp_fd;
    route[kRtp].to = leg.rtp;
    route[kRtcp].to = leg.rtcp;
    mux = leg.rtcp_mux;
    srtp_in = std::move(leg.srtp_in);
    srtp_out = std::move(leg.srtp_out);
    keyless_srtp = leg.keyless_srtp;
    ice = std::move(leg.ice);
  }
  // Where RTCP to the peer goes out, and from which socket.
  int rtcp_kind() const { return mux ? kRtp : kRtcp; }
};

// A branch's sockets; what it receives is the stream's fork core's business.
struct BranchState {
  explicit BranchState(size_t branch) : id(branch) {}
  size_t id;
  LegState leg;
  bool winner = false;  // its media goes to the caller
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

// Big buffers. Blocking or not does not matter: every read and write here
// passes MSG_DONTWAIT (and the pool's sockets are non-blocking from socket(2)
// on). Without CAP_NET_ADMIN the FORCE options fail on every socket: after the
// first refusal only the capped ones are tried, two system calls a socket.
void tune_socket(int fd) {
  static std::atomic<bool> may_force{true};
  if (fd < 0) return;
  const int size = kSocketBuffer;
  for (const auto &[forced, capped] :
       {std::pair{SO_RCVBUFFORCE, SO_RCVBUF}, {SO_SNDBUFFORCE, SO_SNDBUF}}) {
    if (may_force.load(std::memory_order_relaxed)) {
      if (setsockopt(fd, SOL_SOCKET, forced, &size, sizeof size) == 0) continue;
      if (errno == EPERM) may_force.store(false, std::memory_order_relaxed);
    }
    setsockopt(fd, SOL_SOCKET, capped, &size, sizeof size);
  }
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

// One relayed m= line: the caller-facing leg, the branches' sockets, and the
// fork core that decides what each branch gets. The stream is the core's
// edge: packets are the worker's pool buffers, branches its BranchStates.
struct Stream final : rtp::ForkEdge {
  Stream(RelayEngine::Call *c, size_t i, RelayEngine::Worker *w,
         const rtp::RtpForkCore::Settings &settings)
      : call(c), index(i), worker(w), fork(*this, settings) {}
  // The GOP goes back to the pool while this edge is whole, not from the
  // core's own destructor.
  ~Stream() { fork.drop_gop(); }

  void hold(rtp::PacketHandle p) override;
  void release(rtp::PacketHandle p) override;
  void send(rtp::BranchHandle b, const rtp::Outgoing *pkts, size_t n, bool replay) override;
  void forward_rtcp(rtp::BranchHandle b, uint32_t from, uint32_t to) override;
  void request_keyframe(uint32_t ssrc) override;

  RelayEngine::Call *call;
  size_t index;
  RelayEngine::Worker *worker;
  LegState caller;
  std::vector<std::unique_ptr<BranchState>> branches;
  rtp::RtpForkCore fork;

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
  std::atomic<uint64_t> stun_answered{0}, stun_refused{0};  // the worker's legs, since start
  PacketPool pool;   // the rest: under mu

  void watch(Stream *s, BranchState *b, LegState &leg);
  void unwatch(LegState &leg);
  // Keyframe requests and GOP replays of `c`, sent by the worker right away.
  void kick(Call *c);
  void forget(Call *c) {
    pending_.erase(std::remove(pending_.begin(), pending_.end(), c), pending_.end());
  }

  // What a stream's fork core asks for (Stream's ForkEdge), under mu.
  void send_rtp(BranchState *b, const rtp::Outgoing *pkts, int n);
  void send_rtcp(BranchState *b, uint32_t from, uint32_t to);
  void send_pli(Stream *s, uint32_t ssrc);

 private:
  void run();
  void do_pending(int64_t now);
  void on_ready(const Slot &slot, int64_t now);
  int receive(int fd);
  bool admit(const Stream *s, const LegState &leg, Route &route, int kind, int packet);
  bool on_stun(const Stream *s, LegState &leg, int kind, int packet);

  void from_caller_rtp(Stream *s, Packet **pkts, int n, int64_t now);
  bool unprotect(LegState &leg, Packet *p, bool rtcp);
  void to_caller(Stream *s, Packet **pkts, int n, bool rtcp);
  void from_branch_rtcp(Stream *s, Packet **pkts, int n, int64_t now);
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
  // RTCP with a branch's SSRC, and SRTP for one branch: copies, with room for the tag.
  alignas(4) uint8_t tx_rtcp_[kBatch][RelayEngine::kMaxPacket + kTail];
  alignas(4) uint8_t tx_srtp_[kBatch][RelayEngine::kMaxPacket + kTail];
  // An ICE check's response, sent from the worker.
  alignas(4) uint8_t stun_tx_[ice::kMaxResponse];
  // The caller's RTCP being forwarded (Stream::forward_rtcp sends it).
  Packet *const *rtcp_batch_ = nullptr;
  int rtcp_count_ = 0;

  std::thread thread_;
};

RelayEngine::Worker::Worker(unsigned index, Latch latch) : latch_(latch) {
  // The receive array is set up once: the kernel writes back only each
  // message's length, flags and source address length.
  for (int i = 0; i < kBatch; ++i) {
    msghdr &h = rx_msg_[i].msg_hdr;
    h = msghdr{};
    h.msg_name = &rx_from_[i];
    h.msg_iov = &rx_iov_[i];
    h.msg_iovlen = 1;
  }
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

// ------------------------------------------------------------------ fork edge

void Stream::hold(rtp::PacketHandle p) { ++static_cast<Packet *>(p)->refs; }

void Stream::release(rtp::PacketHandle p) { worker->pool.unref(static_cast<Packet *>(p)); }

void Stream::send(rtp::BranchHandle b, const rtp::Outgoing *pkts, size_t n, bool) {
  worker->send_rtp(static_cast<BranchState *>(b), pkts, static_cast<int>(n));
}

void Stream::forward_rtcp(rtp::BranchHandle b, uint32_t from, uint32_t to) {
  worker->send_rtcp(static_cast<BranchState *>(b), from, to);
}

void Stream::request_keyframe(uint32_t ssrc) { worker->send_pli(this, ssrc); }

// ------------------------------------------------------------------ worker

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
    for (auto &s : c->streams)
      if (s) s->fork.tick(now);
  }
  pending_.clear();
}

int RelayEngine::Worker::receive(int fd) {
  for (int i = 0; i < kBatch; ++i) {
    if (!rx_[i]) {  // the last batch's buffer stayed in the GOP cache
      rx_[i] = pool.take();
      rx_iov_[i] = {rx_[i]->data, RelayEngine::kMaxPacket};
    }
    rx_msg_[i].msg_hdr.msg_namelen = sizeof rx_from_[i];
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
bool RelayEngine::Worker::admit(const Stream *s, const LegState &leg, Route &route, int kind,
                                int packet) {
  const sockaddr_storage &from = rx_from_[packet];
  const socklen_t len = rx_msg_[packet].msg_hdr.msg_namelen;
  // An ICE leg is latched by checks only (on_stun): media is heard from where
  // the SDP or the nominated pair says, exactly.
  if (leg.ice)
    return same_endpoint(from, len, route.to.addr, route.to.len, true) ||
           route.from_checked(from, len);
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
    if (p->size == 0) continue;
    if (leg.ice && ice::is_stun(p->data, p->size)) {
      // A check is the device's too (RFC 7675 consent): it keeps the call alive.
      if (on_stun(s, leg, slot.kind, i))
        s->call->last_packet_s.store(now / 1000000, std::memory_order_relaxed);
      continue;
    }
    if (!admit(s, leg, leg.route[slot.kind], slot.kind, i)) continue;
    // RFC 7983 §7: only 128-191 is RTP or RTCP. A STUN keep-alive (0-3, which
    // Linphone and portier-monitor send to their peer's media port to keep
    // their NAT open, RFC 6263) has done its work once admitted (it latched
    // a NATed device); it is neither forwarded nor a failed SRTP check. (On
    // an ICE leg STUN never gets here: on_stun took it.)
    if (p->data[0] < 128 || p->data[0] > 191) continue;
    const bool rtcp = slot.kind == kRtcp || rtp::is_rtcp(p->data, p->size);
    if (leg.srtp_in) {
      // An early device's RTP goes nowhere: not worth a decryption.
      if (b && !b->winner && !rtcp) continue;
      if (!unprotect(leg, p, rtcp)) continue;
    }
    if (rtcp)
      rtcp_pkts[n_rtcp++] = p;
    else
      rtp_pkts[n_rtp++] = p;
  }
  // Only the peer's packets keep the call alive (a flood from elsewhere does not).
  if (n_rtp + n_rtcp) s->call->last_packet_s.store(now / 1000000, std::memory_order_relaxed);
  if (!b) {
    if (n_rtp) from_caller_rtp(s, rtp_pkts, n_rtp, now);
    if (n_rtcp) {
      rtcp_batch_ = rtcp_pkts;
      rtcp_count_ = n_rtcp;
      s->fork.on_rtcp();
    }
  } else if (b->winner) {  // only the device that answered talks to the caller
    if (n_rtp) to_caller(s, rtp_pkts, n_rtp, false);
    if (n_rtcp) to_caller(s, rtcp_pkts, n_rtcp, true);
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

// An ICE check on an ICE leg (RFC 8445 §7.3): answered from the socket it
// came to, to its source (§7.3.1: responses are sent symmetrically). A valid
// one with USE-CANDIDATE nominates its pair (§7.3.1.5): the peer's packets
// are heard from, and ours go to, its source from now on. Returns whether the
// check was valid. Refusals are counted, the first one of a leg logged.
bool RelayEngine::Worker::on_stun(const Stream *s, LegState &leg, int kind, int packet) {
  Packet *p = rx_[packet];
  const sockaddr_storage &from = rx_from_[packet];
  const socklen_t len = rx_msg_[packet].msg_hdr.msg_namelen;
  const ice::Answer a = ice::answer(p->data, p->size, *leg.ice, from, len, stun_tx_);
  if (a.size)
    sendto(leg.fd[kind], stun_tx_, a.size, MSG_DONTWAIT, reinterpret_cast<const sockaddr *>(&from),
           len);
  RelayAddress source;
  memcpy(&source.addr, &from, len);
  source.len = len;
  if (a.verdict != ice::Verdict::Success) {
    stun_refused.fetch_add(1, std::memory_order_relaxed);
    if (leg.stun_refused.fetch_add(1, std::memory_order_relaxed) == 0)
      PLOG_INFO("relay: call-id=%s %s: STUN from %s refused (%s)", s->call->id.c_str(),
                kind_name(kind), source.text().c_str(),
                a.verdict == ice::Verdict::Unauthorized ? "401: wrong USERNAME or integrity"
                : a.verdict == ice::Verdict::BadRequest ? "400"
                : a.verdict == ice::Verdict::UnknownAttribute
                    ? "420"
                    : "malformed or not a request: dropped");
    return false;
  }
  stun_answered.fetch_add(1, std::memory_order_relaxed);
  leg.stun_answered.fetch_add(1, std::memory_order_relaxed);
  leg.route[kind].add_checked(source);
  // A controlling peer's check moves nothing until it nominates the pair. A
  // peer that stays controlled (liblinphone as the answerer) never
  // nominates: its valid check is taken as the choice, the latest one
  // winning. Either way only who holds our ice-pwd moves the media.
  if (!a.use_candidate && !a.peer_controlled) return true;
  Route &route = leg.route[kind];
  if (!(route.by_ice && same_address(route.to, source)))
    PLOG_INFO("relay: call-id=%s %s: ICE pair %s by %s (was %s): latched", s->call->id.c_str(),
              kind_name(kind), a.use_candidate ? "nominated" : "checked by the controlled peer",
              source.text().c_str(), route.to.text().c_str());
  route.to = source;
  route.latched = route.by_ice = true;
  return true;
}

// Checked and decrypted in its receive buffer (RFC 3711 §3.3 and §3.4, with
// libsrtp's replay check). One that fails is counted, not logged: a flood of
// forgeries must not fill the log.
bool RelayEngine::Worker::unprotect(LegState &leg, Packet *p, bool rtcp) {
  size_t size = p->size;
  const bool ok = rtcp ? leg.srtp_in->unprotect_rtcp(p->data, &size)
                       : leg.srtp_in->unprotect_rtp(p->data, &size);
  if (!ok) {
    // The first one of a leg is logged (what it looked like, never its bytes).
    if (leg.srtp_rejected.fetch_add(1, std::memory_order_relaxed) == 0)
      PLOG_DEBUG("relay: %s of %u bytes (first byte %02x) failed the SRTP check: dropped",
                 rtcp ? "RTCP" : "RTP", p->size, p->data[0]);
    return false;
  }
  p->size = static_cast<uint32_t>(size);
  return true;
}

// The winner's media to the caller: protected in place under the caller-facing
// context (the buffer has room for the tag and nobody else holds it).
void RelayEngine::Worker::to_caller(Stream *s, Packet **pkts, int n, bool rtcp) {
  LegState &caller = s->caller;
  int k = 0;
  for (int i = 0; i < n; ++i) {
    Packet *p = pkts[i];
    if (caller.srtp_out) {
      size_t size = p->size;
      if (!(rtcp ? caller.srtp_out->protect_rtcp(p->data, &size)
                 : caller.srtp_out->protect_rtp(p->data, &size)))
        continue;
      p->size = static_cast<uint32_t>(size);
    }
    pkts[k++] = p;
  }
  const int kind = rtcp ? caller.rtcp_kind() : kRtp;
  send_whole(caller.fd[kind], caller.route[kind], pkts, k);
}

void RelayEngine::Worker::from_caller_rtp(Stream *s, Packet **pkts, int n, int64_t now) {
  rtp::Incoming in[kBatch];
  for (int i = 0; i < n; ++i) in[i] = {pkts[i], pkts[i]->data, pkts[i]->size};
  const uint64_t changes = s->fork.counters().source_changes;
  const uint32_t ssrc = s->fork.source_ssrc();
  s->fork.on_rtp(in, static_cast<size_t>(n), now);
  if (s->fork.counters().source_changes != changes)  // not INFO: junk would flood the log
    PLOG_DEBUG("relay: call-id=%s stream %zu: source SSRC %08x -> %08x", s->call->id.c_str(),
               s->index, ssrc, s->fork.source_ssrc());
}

void RelayEngine::Worker::send_rtcp(BranchState *b, uint32_t from, uint32_t to) {
  LegState &leg = b->leg;
  const int kind = leg.rtcp_kind();
  const Route &route = leg.route[kind];
  if (route.to.empty()) return;
  int k = 0;
  for (int i = 0; i < rtcp_count_; ++i) {
    Packet *p = rtcp_batch_[i];
    uint8_t *data = p->data;
    size_t size = p->size;
    if (from != to || leg.srtp_out) {
      memcpy(tx_rtcp_[k], data, size);
      data = tx_rtcp_[k];
      if (from != to) rtp::rewrite_rtcp_ssrc(data, size, from, to);
      if (leg.srtp_out && !leg.srtp_out->protect_rtcp(data, &size)) continue;
    }
    tx_iov_[k][0] = {data, size};
    add_message(k++, route, 1);
  }
  send_batch(leg.fd[kind], k, nullptr);
}

void RelayEngine::Worker::from_branch_rtcp(Stream *s, Packet **pkts, int n, int64_t now) {
  // An early device's keyframe request goes through the de-duplication.
  for (int i = 0; i < n; ++i)
    if (rtp::asks_for_keyframe(pkts[i]->data, pkts[i]->size)) {
      s->fork.branch_wants_keyframe(now);
      return;
    }
}

// Also from the main loop (a branch added or selected): one datagram, no
// shared send arrays.
void RelayEngine::Worker::send_pli(Stream *s, uint32_t ssrc) {
  LegState &caller = s->caller;
  const int kind = caller.rtcp_kind();
  const Route &route = caller.route[kind];
  if (route.to.empty() || caller.keyless_srtp) return;
  alignas(4) uint8_t pli[rtp::kPliSize + kTail];
  size_t size = rtp::kPliSize;
  rtp::write_pli(pli, s->call->pli_ssrc, ssrc);
  // SRTCP in the caller-facing context (RFC 3711 §3.4): the door's receiver
  // drops anything else.
  if (caller.srtp_out && !caller.srtp_out->protect_rtcp(pli, &size)) return;
  sendto(caller.fd[kind], pli, size, MSG_DONTWAIT,
         reinterpret_cast<const sockaddr *>(&route.to.addr), route.to.len);
  PLOG_DEBUG("relay: call-id=%s PLI to the caller %s", s->call->id.c_str(),
             route.to.text().c_str());
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
void RelayEngine::Worker::send_rtp(BranchState *b, const rtp::Outgoing *pkts, int n) {
  const Route &route = b->leg.route[kRtp];
  if (route.to.empty() || n == 0) return;
  if (SrtpContext *out = b->leg.srtp_out.get()) {
    // Each branch its own ciphertext: a whole copy, protected under its key
    // with its own sequence numbers (a replayed GOP too: fresh indexes).
    int k = 0;
    for (int i = 0; i < n; ++i) {
      const Packet *p = static_cast<const Packet *>(pkts[i].packet);
      size_t size = p->size;
      memcpy(tx_srtp_[k], p->data, size);
      if (pkts[i].rewritten) {
        const rtp::RtpIds &ids = pkts[i].ids;
        rtp::rewrite(tx_srtp_[k], ids.seq, ids.timestamp, ids.ssrc);
      }
      if (!out->protect_rtp(tx_srtp_[k], &size)) continue;
      tx_iov_[k][0] = {tx_srtp_[k], size};
      add_message(k++, route, 1);
    }
    uint64_t bytes = 0;
    const int sent = send_batch(b->leg.fd[kRtp], k, &bytes);
    b->packets.fetch_add(static_cast<uint64_t>(sent), std::memory_order_relaxed);
    b->bytes.fetch_add(bytes, std::memory_order_relaxed);
    return;
  }
  for (int i = 0; i < n; ++i) {
    Packet *p = static_cast<Packet *>(pkts[i].packet);
    if (pkts[i].rewritten) {
      const rtp::RtpIds &out = pkts[i].ids;
      memcpy(tx_head_[i], p->data, sizeof tx_head_[i]);
      rtp::rewrite(tx_head_[i], out.seq, out.timestamp, out.ssrc);
      tx_iov_[i][0] = {tx_head_[i], sizeof tx_head_[i]};
      tx_iov_[i][1] = {p->data + sizeof tx_head_[i], p->size - sizeof tx_head_[i]};
      add_message(i, route, 2);
    } else {
      tx_iov_[i][0] = {p->data, p->size};
      add_message(i, route, 1);
    }
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

RelayEngine::RelayEngine(unsigned threads, Latch latch, const rtp::KeyframeRequests::Timing &keyframes)
    : threads_(threads), latch_(latch), keyframes_(keyframes) {
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

void RelayEngine::add_stream(Call *c, size_t stream, Leg caller, rtp::VideoCodec codec,
                             uint32_t clock_rate) {
  tune_socket(caller.rtp_fd);
  tune_socket(caller.rtcp_fd);
  Worker *w = c->worker;
  std::lock_guard<std::mutex> l(w->mu);
  rtp::RtpForkCore::Settings settings;
  settings.codec = codec;
  if (clock_rate) settings.clock_rate = clock_rate;
  settings.timing = keyframes_;
  auto s = std::make_unique<Stream>(c, stream, w, settings);
  s->caller.set(caller);
  if (c->streams.size() <= stream) c->streams.resize(stream + 1);
  w->watch(s.get(), nullptr, s->caller);
  c->streams[stream] = std::move(s);
}

void RelayEngine::add_branch(Call *c, size_t stream, size_t branch, Leg device) {
  tune_socket(device.rtp_fd);
  tune_socket(device.rtcp_fd);
  Worker *w = c->worker;
  std::lock_guard<std::mutex> l(w->mu);
  Stream *s = stream_of(c, stream);
  if (!s || s->branch(branch)) return;
  auto b = std::make_unique<BranchState>(branch);
  b->leg.set(device);
  w->watch(s, b.get(), b->leg);
  // Its keyframe request goes now; the worker sends its GOP replay.
  s->fork.add_branch(static_cast<uint32_t>(branch), b.get(), mono_us());
  s->branches.push_back(std::move(b));
  w->kick(c);
}

void RelayEngine::select_branch(Call *c, size_t branch) {
  Worker *w = c->worker;
  std::lock_guard<std::mutex> l(w->mu);
  const int64_t now = mono_us();
  for (auto &s : c->streams) {
    if (!s || !s->branch(branch)) continue;
    for (auto &b : s->branches) b->winner = b->id == branch;
    s->fork.select_branch(static_cast<uint32_t>(branch), now);
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
        s->fork.remove_branch(static_cast<uint32_t>(branch));
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
    // A nominated ICE pair stays: the device's re-offer names its own
    // candidate, not the NAT's side of it.
    if (r.by_ice) continue;
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

RelayEngine::ForkCounters RelayEngine::fork_counters(const Call *c, size_t stream) const {
  ForkCounters out;
  std::lock_guard<std::mutex> l(c->worker->mu);
  const Stream *s = stream < c->streams.size() ? c->streams[stream].get() : nullptr;
  if (!s) return out;
  out.packets_in = s->fork.counters().packets_in;
  out.keyframe_requests_sent = s->fork.keyframe_requests().sent();
  out.keyframe_requests_suppressed = s->fork.keyframe_requests().suppressed();
  out.srtp_rejected = s->caller.srtp_rejected.load(std::memory_order_relaxed);
  out.stun_answered = s->caller.stun_answered.load(std::memory_order_relaxed);
  out.stun_refused = s->caller.stun_refused.load(std::memory_order_relaxed);
  return out;
}

RelayEngine::Counters RelayEngine::branch_counters(const Call *c, size_t branch) const {
  // Only the main loop changes the branch lists, and this runs on it.
  Counters sum;
  for (auto &s : c->streams)
    if (s)
      if (BranchState *b = s->branch(branch)) {
        sum.packets += b->packets.load(std::memory_order_relaxed);
        sum.bytes += b->bytes.load(std::memory_order_relaxed);
        sum.srtp_rejected += b->leg.srtp_rejected.load(std::memory_order_relaxed);
        sum.stun_answered += b->leg.stun_answered.load(std::memory_order_relaxed);
        sum.stun_refused += b->leg.stun_refused.load(std::memory_order_relaxed);
      }
  return sum;
}

RelayEngine::StunCounters RelayEngine::stun_counters() const {
  StunCounters sum;
  for (const auto &w : workers_) {
    sum.answered += w->stun_answered.load(std::memory_order_relaxed);
    sum.refused += w->stun_refused.load(std::memory_order_relaxed);
  }
  return sum;
}

}  // namespace portier::proxy
