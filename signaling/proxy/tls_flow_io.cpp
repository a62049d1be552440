#include "proxy/tls_flow_io.h"

#include <dlfcn.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

namespace portier::proxy::flow_io {
namespace {

// Off until a domain registration needs keep-alives: a proxy without one (a
// cloud with 100k TLS phones) pays one atomic load per SSL_set_bio/SSL_free.
std::atomic<bool> enabled{false};

struct Entry {
  SSL *ssl;
  uint64_t seq;
  std::string peer;  // the key in by_peer once known, else empty
};
// sofia runs its TLS on the main loop's thread; the mutex is for any other SSL
// user in the process (push's curl). Every lookup is O(1) or O(log n): the
// closing of one connection among many must not walk them all.
std::mutex mu;
std::unordered_map<int, Entry> by_fd;                    // fd -> the SSL sofia set on it last
std::unordered_map<SSL *, int> by_ssl;                   // the reverse, for SSL_free
std::map<std::string, std::map<uint64_t, int>> by_peer;  // peer -> seq -> fd
// Sockets whose peer was not known yet: an outgoing connection gets its SSL
// while still connecting (getpeername says ENOTCONN); find() retries them,
// each until it is known, so each socket is looked at a bounded number of times.
std::set<int> unresolved;
uint64_t next_seq = 0;

// Answering pings (RFC 5626 §4.4.1) on TLS connections, which Debian's
// sofia-sip does on TCP only (TPTAG_PONG2PING; its TLS receive path feeds the
// CRLFCRLF to the parser, which skips it). On from enable_pongs().
std::atomic<bool> pongs{false};
// Whether an SSL's last SSL_write wanted to be retried (WANT_WRITE/WANT_READ):
// OpenSSL then holds a record of sofia's (and sofia the rest of that message)
// until sofia writes again, and a pong now would go into the middle of it.
// SSL_want_write cannot tell once a read came in between, so the writes are
// followed, in an ex_data slot of the SSL itself: every write of every TLS
// connection passes here, so no lock and no lookup (an SSL is used by one
// thread at a time, and the slot goes with it when it is freed).
int pending_slot() {
  static const int slot = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return slot;
}
bool write_pending(SSL *s) { return SSL_get_ex_data(s, pending_slot()) != nullptr; }
void set_write_pending(SSL *s, bool pending) {
  if (write_pending(s) != pending)
    SSL_set_ex_data(s, pending_slot(), pending ? reinterpret_cast<void *>(1) : nullptr);
}

// OpenSSL's own SSL_write: what our pings and pongs use (our SSL_write below
// takes `mu`, which ping() already holds).
using Write = int (*)(SSL *, const void *, int);
Write real_write() {
  static const Write real = reinterpret_cast<Write>(dlsym(RTLD_NEXT, "SSL_write"));
  return real;
}

// The bytes that identify a peer (family, port, address), or "" when unknown.
std::string peer_key(const sockaddr *sa, socklen_t len) {
  if (sa->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto *a = reinterpret_cast<const sockaddr_in *>(sa);
    std::string k(1, '4');
    k.append(reinterpret_cast<const char *>(&a->sin_port), sizeof a->sin_port);
    k.append(reinterpret_cast<const char *>(&a->sin_addr), sizeof a->sin_addr);
    return k;
  }
  if (sa->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto *a = reinterpret_cast<const sockaddr_in6 *>(sa);
    std::string k(1, '6');
    k.append(reinterpret_cast<const char *>(&a->sin6_port), sizeof a->sin6_port);
    k.append(reinterpret_cast<const char *>(&a->sin6_addr), sizeof a->sin6_addr);
    return k;
  }
  return {};
}

// Puts fd under its peer in by_peer; false while the peer is not known.
bool resolve(int fd, Entry &e) {
  sockaddr_storage ss;
  socklen_t l = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr *>(&ss), &l) != 0) return false;
  e.peer = peer_key(reinterpret_cast<sockaddr *>(&ss), l);
  if (e.peer.empty()) return true;  // not IP: never a flow we look for
  by_peer[e.peer][e.seq] = fd;
  return true;
}

void forget(int fd) {
  const auto it = by_fd.find(fd);
  if (it == by_fd.end()) return;
  by_ssl.erase(it->second.ssl);
  unresolved.erase(fd);
  if (!it->second.peer.empty()) {
    const auto p = by_peer.find(it->second.peer);
    if (p != by_peer.end()) {
      p->second.erase(it->second.seq);
      if (p->second.empty()) by_peer.erase(p);
    }
  }
  by_fd.erase(it);
}

}  // namespace

void enable() { enabled.store(true); }

Handle find(const sockaddr *peer, socklen_t len) {
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = unresolved.begin(); it != unresolved.end();) {
    auto e = by_fd.find(*it);
    it = e == by_fd.end() || resolve(*it, e->second) ? unresolved.erase(it) : std::next(it);
  }
  const auto p = by_peer.find(peer_key(peer, len));
  if (p == by_peer.end() || p->second.empty()) return {};
  const int fd = p->second.rbegin()->second;  // the newest connection to that peer
  return Handle{fd, by_fd.at(fd).ssl};
}

PingResult ping(const Handle &h) {
  std::lock_guard<std::mutex> lock(mu);
  const auto it = by_fd.find(h.fd);
  if (it == by_fd.end() || it->second.ssl != h.ssl) return PingResult::failed;  // freed/replaced
  // OpenSSL: a write that wanted to write more must be retried, with the same
  // bytes, before any other SSL_write on that SSL (SSL_write(3)): sofia's then.
  if (SSL_want_write(h.ssl) || write_pending(h.ssl)) return PingResult::skipped;
  // Room for the record right now, so that our SSL_write completes and never
  // leaves OpenSSL holding half of it when sofia writes next (POLLOUT means
  // far more free space than a 30-byte record needs).
  pollfd pfd{h.fd, POLLOUT, 0};
  if (poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT)) return PingResult::skipped;
  // RFC 5626 §3.5.1: the ping is CRLFCRLF, in one record.
  return real_write()(h.ssl, "\r\n\r\n", 4) == 4 ? PingResult::sent : PingResult::failed;
}

void enable_pongs() { pongs.store(true); }

uint64_t bytes_received(int fd) {
  tcp_info info;
  socklen_t len = sizeof info;
  memset(&info, 0, sizeof info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return 0;
  return info.tcpi_bytes_received;
}

}  // namespace portier::proxy::flow_io

namespace fio = portier::proxy::flow_io;

// sofia's tport_tls.c gives each connection's SSL its socket with
// SSL_set_bio(BIO_new_socket(fd)): remember which SSL a socket has.
extern "C" __attribute__((visibility("default"))) void SSL_set_bio(SSL *s, BIO *rbio, BIO *wbio) {
  using SetBio = void (*)(SSL *, BIO *, BIO *);
  static const SetBio real = reinterpret_cast<SetBio>(dlsym(RTLD_NEXT, "SSL_set_bio"));
  real(s, rbio, wbio);
  int fd = -1;
  if (fio::enabled.load() && s && rbio && BIO_get_fd(rbio, &fd) >= 0 && fd >= 0) {
    std::lock_guard<std::mutex> lock(fio::mu);
    fio::forget(fd);  // a socket number reused: its old SSL is not this one
    if (const auto old = fio::by_ssl.find(s); old != fio::by_ssl.end()) fio::forget(old->second);
    fio::by_fd[fd] = {s, ++fio::next_seq, {}};
    fio::by_ssl[s] = fd;
    fio::unresolved.insert(fd);
  }
}

extern "C" __attribute__((visibility("default"))) void SSL_free(SSL *s) {
  using Free = void (*)(SSL *);
  static const Free real = reinterpret_cast<Free>(dlsym(RTLD_NEXT, "SSL_free"));
  if (s && fio::enabled.load()) {
    std::lock_guard<std::mutex> lock(fio::mu);
    if (const auto it = fio::by_ssl.find(s); it != fio::by_ssl.end()) fio::forget(it->second);
  }
  real(s);
}

// Every write: whether OpenSSL now holds a record that must be retried first.
extern "C" __attribute__((visibility("default"))) int SSL_write(SSL *s, const void *buf, int num) {
  const int r = fio::real_write()(s, buf, num);
  if (fio::enabled.load() || fio::pongs.load()) {
    const int e = r > 0 ? SSL_ERROR_NONE : SSL_get_error(s, r);
    fio::set_write_pending(s, e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ);
  }
  return r;
}

// A record of exactly CRLFCRLF is a keep-alive ping (RFC 5626 §4.4.1: the
// client writes it on its own, so it is one record; no SIP message and no
// HTTP/2 frame of push's curl is ever those four bytes alone): answer it with
// CRLF at once, when nothing of sofia's is half-written (else the pong would
// land inside a message; a connection that busy proves itself anyway, as the
// client counts any bytes as a pong) and the socket has room. What was read
// still goes to sofia, whose parser skips the empty lines (RFC 3261 §7.5).
extern "C" __attribute__((visibility("default"))) int SSL_read(SSL *s, void *buf, int num) {
  using Read = int (*)(SSL *, void *, int);
  static const Read real = reinterpret_cast<Read>(dlsym(RTLD_NEXT, "SSL_read"));
  const int r = real(s, buf, num);
  if (r == 4 && fio::pongs.load() && memcmp(buf, "\r\n\r\n", 4) == 0) {
    if (fio::write_pending(s)) return r;
    const int fd = SSL_get_fd(s);
    pollfd pfd{fd, POLLOUT, 0};
    if (fd < 0 || poll(&pfd, 1, 0) != 1 || !(pfd.revents & POLLOUT)) return r;
    // Half a pong would break the stream for sofia's next record: end the
    // connection instead (the client reconnects, RFC 5626 §4.5).
    if (fio::real_write()(s, "\r\n", 2) != 2) shutdown(fd, SHUT_RDWR);
  }
  return r;
}
