#include "media/port_pool.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace portier {
namespace {

// A non-blocking UDP socket bound to address:port: socket and bind, where a
// GSocket costs about seven system calls more (the relay takes six sockets
// for every forked call).
int bind_udp(const sockaddr_storage &address, socklen_t len, uint16_t port, std::string *error) {
  sockaddr_storage ss = address;
  if (ss.ss_family == AF_INET6)
    reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port = htons(port);
  else
    reinterpret_cast<sockaddr_in *>(&ss)->sin_port = htons(port);
  const int fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = strerror(errno);
    return -1;
  }
  // Dual-stack on the IPv6 wildcard address, as GLib sets up its sockets.
  const int off = 0;
  if (ss.ss_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
  if (bind(fd, reinterpret_cast<const sockaddr *>(&ss), len) != 0) {
    *error = strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

GSocket *wrap(int fd, std::string *error) {
  GError *gerr = nullptr;
  GSocket *s = g_socket_new_from_fd(fd, &gerr);
  if (!s) {
    *error = gerr ? gerr->message : "socket error";
    g_clear_error(&gerr);
    close(fd);
  }
  return s;
}

void close_half(GSocket *&s, int &fd) {
  if (s)
    g_socket_close(s, nullptr), g_object_unref(s);
  else if (fd >= 0)
    close(fd);
  s = nullptr;
  fd = -1;
}

}  // namespace

PortPool::PortPool(std::string address, uint16_t min, uint16_t max, std::string what,
                   Sockets sockets)
    : address_(std::move(address)),
      what_(std::move(what)),
      sockets_(sockets),
      min_(static_cast<uint16_t>(min + (min & 1))),
      max_(max),
      next_(min_) {
  auto *v4 = reinterpret_cast<sockaddr_in *>(&bind_address_);
  auto *v6 = reinterpret_cast<sockaddr_in6 *>(&bind_address_);
  if (inet_pton(AF_INET, address_.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    bind_address_len_ = sizeof *v4;
  } else if (inet_pton(AF_INET6, address_.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    bind_address_len_ = sizeof *v6;
  }
  // Running out of file descriptors makes GLib abort the whole program (it
  // cannot create a thread's wake-up fd), so the pool stops well before.
  struct rlimit rl {};
  const rlim_t limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
  max_pairs_ = limit == RLIM_INFINITY || limit > 1000000
                   ? 100000
                   : (limit > kFdReserve ? (limit - kFdReserve) / kFdsPerPair : 0);
}

std::optional<PortPool::Pair> PortPool::take(std::string *error) {
  if (max_ <= min_) {
    *error = "empty port range";
    return std::nullopt;
  }
  if (!bind_address_len_) {
    *error = what_ + " address '" + address_ + "' is not an IP address";
    return std::nullopt;
  }
  if (used_.size() >= max_pairs_) {
    *error = "no free " + what_ + " port pair: the file descriptor limit (RLIMIT_NOFILE) allows " +
             std::to_string(max_pairs_) + " pairs; raise LimitNOFILE";
    return std::nullopt;
  }
  const unsigned pairs = (max_ - min_ + 1) / 2;
  std::string last_error = "every port is in use";
  for (unsigned i = 0; i < pairs; ++i) {
    const uint16_t port = next_;
    next_ = static_cast<uint16_t>(next_ + 2 > max_ - 1 ? min_ : next_ + 2);
    if (used_.count(port)) continue;
    // Ports in use by something else are skipped: bind both or neither.
    Pair p;
    p.rtp_fd = bind_udp(bind_address_, bind_address_len_, port, &last_error);
    if (p.rtp_fd < 0) continue;
    p.rtcp_fd = bind_udp(bind_address_, bind_address_len_, port + 1, &last_error);
    if (p.rtcp_fd < 0) {
      close(p.rtp_fd);
      continue;
    }
    if (sockets_ == Sockets::GLib) {
      p.rtp = wrap(p.rtp_fd, &last_error);
      p.rtcp = p.rtp ? wrap(p.rtcp_fd, &last_error) : nullptr;
      if (!p.rtcp) {
        if (p.rtp)
          g_object_unref(p.rtp);
        else
          close(p.rtcp_fd);
        continue;
      }
    }
    p.port = port;
    used_.insert(port);
    return p;
  }
  *error = "no free " + what_ + " port pair in " + std::to_string(min_) + "-" +
           std::to_string(max_) + " (" + last_error + ")";
  return std::nullopt;
}

void PortPool::give_back(Pair &p) {
  if (!p.port) return;
  close_half(p.rtp, p.rtp_fd);
  close_half(p.rtcp, p.rtcp_fd);
  used_.erase(p.port);
  p = Pair{};
}

}  // namespace portier
