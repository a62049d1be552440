#include "proxy/tls_flow_io.h"

#include <dlfcn.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <cstring>
#include <map>
#include <mutex>

namespace portier::proxy::flow_io {
namespace {

struct Entry {
  SSL *ssl;
  uint64_t seq;
};
// fd -> the SSL sofia set on it last. sofia runs its TLS on the main loop's
// thread; the mutex is for any other SSL user in the process (push's curl).
std::mutex mu;
std::map<int, Entry> by_fd;
uint64_t next_seq = 0;

bool same_peer(int fd, const sockaddr *peer, socklen_t len) {
  sockaddr_storage ss;
  socklen_t l = sizeof ss;
  if (getpeername(fd, reinterpret_cast<sockaddr *>(&ss), &l) != 0) return false;
  if (ss.ss_family != peer->sa_family) return false;
  if (ss.ss_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto *a = reinterpret_cast<const sockaddr_in *>(&ss);
    const auto *b = reinterpret_cast<const sockaddr_in *>(peer);
    return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
  }
  if (ss.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    const auto *a = reinterpret_cast<const sockaddr_in6 *>(&ss);
    const auto *b = reinterpret_cast<const sockaddr_in6 *>(peer);
    return a->sin6_port == b->sin6_port &&
           memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
  }
  return false;
}

}  // namespace

Handle find(const sockaddr *peer, socklen_t len) {
  std::lock_guard<std::mutex> lock(mu);
  Handle best;
  uint64_t best_seq = 0;
  for (const auto &[fd, e] : by_fd)
    if ((!best || e.seq > best_seq) && same_peer(fd, peer, len)) {
      best = Handle{fd, e.ssl};
      best_seq = e.seq;
    }
  return best;
}

bool ping(const Handle &h) {
  std::lock_guard<std::mutex> lock(mu);
  const auto it = by_fd.find(h.fd);
  if (it == by_fd.end() || it->second.ssl != h.ssl) return false;  // freed or replaced
  // RFC 5626 §3.5.1: the ping is CRLFCRLF, in one record.
  return SSL_write(h.ssl, "\r\n\r\n", 4) == 4;
}

uint64_t bytes_received(int fd) {
  tcp_info info;
  socklen_t len = sizeof info;
  memset(&info, 0, sizeof info);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return 0;
  return info.tcpi_bytes_received;
}

}  // namespace portier::proxy::flow_io

using portier::proxy::flow_io::by_fd;
using portier::proxy::flow_io::mu;
using portier::proxy::flow_io::next_seq;

// sofia's tport_tls.c gives each connection's SSL its socket with
// SSL_set_bio(BIO_new_socket(fd)): remember which SSL a socket has.
extern "C" __attribute__((visibility("default"))) void SSL_set_bio(SSL *s, BIO *rbio, BIO *wbio) {
  using SetBio = void (*)(SSL *, BIO *, BIO *);
  static const SetBio real = reinterpret_cast<SetBio>(dlsym(RTLD_NEXT, "SSL_set_bio"));
  real(s, rbio, wbio);
  int fd = -1;
  if (s && rbio && BIO_get_fd(rbio, &fd) >= 0 && fd >= 0) {
    std::lock_guard<std::mutex> lock(mu);
    by_fd[fd] = {s, ++next_seq};
  }
}

extern "C" __attribute__((visibility("default"))) void SSL_free(SSL *s) {
  using Free = void (*)(SSL *);
  static const Free real = reinterpret_cast<Free>(dlsym(RTLD_NEXT, "SSL_free"));
  if (s) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto it = by_fd.begin(); it != by_fd.end();)
      it = it->second.ssl == s ? by_fd.erase(it) : std::next(it);
  }
  real(s);
}
