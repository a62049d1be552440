#include "media/port_pool.h"

#include <sys/resource.h>

namespace portier {
namespace {

GSocket *bind_udp(const std::string &what, const std::string &address, uint16_t port,
                  std::string *error) {
  GInetAddress *ia = g_inet_address_new_from_string(address.c_str());
  if (!ia) {
    *error = what + " address '" + address + "' is not an IP address";
    return nullptr;
  }
  GError *gerr = nullptr;
  GSocket *s = g_socket_new(g_inet_address_get_family(ia), G_SOCKET_TYPE_DATAGRAM,
                            G_SOCKET_PROTOCOL_UDP, &gerr);
  if (s) {
    GSocketAddress *sa = g_inet_socket_address_new(ia, port);
    if (!g_socket_bind(s, sa, FALSE, &gerr)) g_clear_object(&s);
    g_object_unref(sa);
  }
  g_object_unref(ia);
  if (!s) {
    *error = gerr ? gerr->message : "socket error";
    g_clear_error(&gerr);
  }
  return s;
}

}  // namespace

PortPool::PortPool(std::string address, uint16_t min, uint16_t max, std::string what)
    : address_(std::move(address)),
      what_(std::move(what)),
      min_(static_cast<uint16_t>(min + (min & 1))),
      max_(max),
      next_(min_) {
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
    GSocket *rtp = bind_udp(what_, address_, port, &last_error);
    if (!rtp) continue;
    GSocket *rtcp = bind_udp(what_, address_, static_cast<uint16_t>(port + 1), &last_error);
    if (!rtcp) {
      g_object_unref(rtp);
      continue;
    }
    used_.insert(port);
    return Pair{rtp, rtcp, port};
  }
  *error = "no free " + what_ + " port pair in " + std::to_string(min_) + "-" +
           std::to_string(max_) + " (" + last_error + ")";
  return std::nullopt;
}

void PortPool::give_back(Pair &p) {
  if (!p.port) return;
  if (p.rtp) g_socket_close(p.rtp, nullptr), g_object_unref(p.rtp);
  if (p.rtcp) g_socket_close(p.rtcp, nullptr), g_object_unref(p.rtcp);
  used_.erase(p.port);
  p = Pair{};
}

}  // namespace portier
