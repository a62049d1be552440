#include "proxy/udp_fastpath.h"

#include <dlfcn.h>
#include <netinet/in.h>
#include <sofia-sip/sofia_features.h>
#include <sofia-sip/su.h>
#include <sofia-sip/tport.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace portier::proxy::udp_fastpath {
namespace {

// sofia's own functions, for every socket and caller that is not ours.
using GetMsgSize = issize_t (*)(su_socket_t);
using SoError = int (*)(su_socket_t);
using VSend = issize_t (*)(su_socket_t, su_iovec_t const *, isize_t, int, su_sockaddr_t const *,
                           socklen_t);
using VRecv = issize_t (*)(su_socket_t, su_iovec_t *, isize_t, int, su_sockaddr_t *, socklen_t *);
GetMsgSize real_getmsgsize;
SoError real_soerror;
VSend real_vsend;
VRecv real_vrecv;

// Everything below runs on the thread that runs the sofia root, the only one
// that touches the agent's sockets; attach() and detach() run there too.
constexpr size_t kMaxSockets = 32;  // sofia opens one per address for sip:*
std::array<int, kMaxSockets> sockets;
unsigned socket_count = 0;
bool active = false;
std::string why = "not attached";
uint64_t datagrams = 0;
uint64_t resends = 0;

// The datagram su_getmsgsize() read, waiting for sofia's su_vrecv(). A UDP
// datagram carries at most 65,507 bytes of payload.
struct Pending {
  int fd = -1;
  size_t size = 0;
  sockaddr_storage from{};
  socklen_t from_len = 0;
  alignas(16) char data[65536];
};
Pending pending;

bool ours(int fd) {
  for (unsigned i = 0; i < socket_count; ++i)
    if (sockets[i] == fd) return true;
  return false;
}

template <typename F>
bool resolve(F &f, const char *name) {
  f = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
  return f != nullptr;
}

bool same_address(const sockaddr *a, const sockaddr_storage &b) {
  if (a->sa_family != b.ss_family) return false;
  if (a->sa_family == AF_INET) {
    const auto *x = reinterpret_cast<const sockaddr_in *>(a);
    const auto *y = reinterpret_cast<const sockaddr_in *>(&b);
    return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6) {
    const auto *x = reinterpret_cast<const sockaddr_in6 *>(a);
    const auto *y = reinterpret_cast<const sockaddr_in6 *>(&b);
    return x->sin6_port == y->sin6_port &&
           std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
  }
  return false;
}

// The descriptor of the UDP socket bound to addr: sofia names no transport's
// socket in its public API, so look for it among ours (once, at start-up).
int find_socket(const sockaddr *addr) {
  const int limit = static_cast<int>(std::min<long>(sysconf(_SC_OPEN_MAX), 65536));
  for (int fd = 0; fd < limit; ++fd) {
    int type = 0;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_DGRAM) continue;
    sockaddr_storage bound{};
    len = sizeof bound;
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&bound), &len) != 0) continue;
    if (same_address(addr, bound)) return fd;
  }
  return -1;
}

// The errors an ICMP message can leave on a UDP socket for the next send.
bool may_be_stale(int err) {
  switch (err) {
    case ECONNREFUSED:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:
    case EPROTO:
    case EMSGSIZE:
    case ENOPROTOOPT:
    case EOPNOTSUPP:
    case ENONET:
    case EACCES:  // ICMPv6 administratively prohibited
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string unavailable() {
  if (const char *env = std::getenv("PORTIER_UDP_FASTPATH"); env && std::strcmp(env, "0") == 0)
    return "off: PORTIER_UDP_FASTPATH=0";
  // The order of calls this relies on is tport_type_udp.c's of 1.12.11.
  if (!sofia_sip_name_version || std::strncmp(sofia_sip_name_version, "sofia-sip-1.12.11", 17) != 0)
    return std::string("off: not checked with ") +
           (sofia_sip_name_version ? sofia_sip_name_version : "this sofia-sip");
  // The executable's definitions must be the ones the dynamic linker gives
  // sofia: not so in a static link, or where the symbols were not exported.
  if (dlsym(RTLD_DEFAULT, "su_getmsgsize") != reinterpret_cast<void *>(&::su_getmsgsize) ||
      dlsym(RTLD_DEFAULT, "su_soerror") != reinterpret_cast<void *>(&::su_soerror) ||
      dlsym(RTLD_DEFAULT, "su_vsend") != reinterpret_cast<void *>(&::su_vsend) ||
      dlsym(RTLD_DEFAULT, "su_vrecv") != reinterpret_cast<void *>(&::su_vrecv))
    return "off: sofia-sip does not call the proxy's socket helpers (static link?)";
  if (!resolve(real_getmsgsize, "su_getmsgsize") || !resolve(real_soerror, "su_soerror") ||
      !resolve(real_vsend, "su_vsend") || !resolve(real_vrecv, "su_vrecv"))
    return "off: sofia-sip's socket helpers not found";
  return "";
}

bool take_socket(int fd) {
  if (fd < 0 || ours(fd)) return fd >= 0;
  if (std::string no = unavailable(); !no.empty()) {
    why = no;
    return false;
  }
  if (socket_count == kMaxSockets) return false;  // the rest stay with sofia alone
  sockets[socket_count++] = fd;
  active = true;
  why.clear();
  return true;
}

bool attach(tport_t *tports) {
  detach();
  if (std::string no = unavailable(); !no.empty()) {
    why = no;
    return false;
  }
  for (tport_t *tp = tports; tp; tp = tport_next(tp)) {
    if (!tport_is_udp(tp)) continue;
    const su_addrinfo_t *ai = tport_get_address(tp);
    if (ai && ai->ai_addr) take_socket(find_socket(ai->ai_addr));
  }
  if (socket_count == 0) {
    why = "off: no UDP transport";
    return false;
  }
  return true;
}

void detach() {
  active = false;
  socket_count = 0;
  pending.fd = -1;
  why = "not attached";
}

Status status() { return Status{active, why, datagrams, resends, socket_count}; }

}  // namespace portier::proxy::udp_fastpath

// The stand-ins for sofia's helpers. Until attach() (and for every socket not
// taken over) they hand the call on unchanged; the real functions are looked
// up on first use for the calls sofia makes before attach().
namespace fp = portier::proxy::udp_fastpath;

extern "C" {

__attribute__((visibility("default"))) issize_t su_getmsgsize(su_socket_t s) {
  if (!fp::active || !fp::ours(s)) {
    if (!fp::real_getmsgsize && !fp::resolve(fp::real_getmsgsize, "su_getmsgsize")) return -1;
    return fp::real_getmsgsize(s);
  }
  fp::Pending &p = fp::pending;
  p.fd = -1;
  // A zero-length datagram is read and skipped here: answering 0 would make
  // sofia read one byte to drop it, which would be the next datagram's.
  for (int empty = 0; empty < 16; ++empty) {
    iovec v{p.data, sizeof p.data};
    msghdr m{};
    m.msg_name = &p.from;
    m.msg_namelen = sizeof p.from;
    m.msg_iov = &v;
    m.msg_iovlen = 1;
    const ssize_t n = recvmsg(s, &m, MSG_DONTWAIT);
    if (n < 0) {
      // Nothing left (a spurious wake-up): 0 makes sofia read a byte, which
      // finds nothing too, and go back to waiting without a log line.
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -1;
    }
    if (n == 0) continue;
    p.fd = s;
    p.size = static_cast<size_t>(n);
    p.from_len = m.msg_namelen;
    ++fp::datagrams;
    return n;
  }
  return 0;
}

__attribute__((visibility("default"))) issize_t su_vrecv(su_socket_t s, su_iovec_t iov[],
                                                         isize_t len, int flags,
                                                         su_sockaddr_t *from, socklen_t *from_len) {
  fp::Pending &p = fp::pending;
  if (p.fd < 0 || p.fd != s) {
    if (!fp::real_vrecv && !fp::resolve(fp::real_vrecv, "su_vrecv")) return -1;
    return fp::real_vrecv(s, iov, len, flags, from, from_len);
  }
  p.fd = -1;
  // As recvmsg(): what does not fit in the buffers is dropped.
  size_t copied = 0;
  for (isize_t i = 0; i < len && copied < p.size; ++i) {
    const size_t n = std::min<size_t>(iov[i].siv_len, p.size - copied);
    std::memcpy(iov[i].siv_base, p.data + copied, n);
    copied += n;
  }
  if (from && from_len) {
    std::memcpy(from, &p.from, std::min<socklen_t>(*from_len, p.from_len));
    *from_len = p.from_len;
  }
  return static_cast<issize_t>(copied);
}

__attribute__((visibility("default"))) int su_soerror(su_socket_t s) {
  // sofia reads SO_ERROR before each UDP send only to clear it; su_vsend
  // below clears it when it matters, at no cost when it does not.
  if (fp::active && fp::ours(s)) return 0;
  if (!fp::real_soerror && !fp::resolve(fp::real_soerror, "su_soerror")) return -1;
  return fp::real_soerror(s);
}

__attribute__((visibility("default"))) issize_t su_vsend(su_socket_t s, su_iovec_t const iov[],
                                                         isize_t len, int flags,
                                                         su_sockaddr_t const *to,
                                                         socklen_t to_len) {
  if (!fp::real_vsend && !fp::resolve(fp::real_vsend, "su_vsend")) return -1;
  issize_t n = fp::real_vsend(s, iov, len, flags, to, to_len);
  if (n < 0 && fp::active && fp::ours(s) && fp::may_be_stale(errno)) {
    ++fp::resends;
    n = fp::real_vsend(s, iov, len, flags, to, to_len);
  }
  return n;
}

}  // extern "C"
