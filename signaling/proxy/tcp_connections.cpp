// First: proxy.h sets sofia-sip's magic types before any sofia-sip header.
// clang-format off
#include "proxy/proxy.h"
// clang-format on

#include "proxy/tcp_connections.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nta_tport.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/log.h"
#include "proxy/accept_guard.h"

namespace portier::proxy {
namespace {

struct End {
  std::string host;  // numeric, IPv6 without brackets, v4-mapped as IPv4
  uint16_t port = 0;
  bool any = false;
};

bool end_of(const sockaddr *sa, End *out) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (sa->sa_family == AF_INET) {
    auto *in = reinterpret_cast<const sockaddr_in *>(sa);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    out->port = ntohs(in->sin_port);
    out->any = in->sin_addr.s_addr == htonl(INADDR_ANY);
  } else if (sa->sa_family == AF_INET6) {
    auto *in6 = reinterpret_cast<const sockaddr_in6 *>(sa);
    // sofia names a v4-mapped peer by its IPv4 address (SU_CANONIZE_SOCKADDR).
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
      inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, sizeof buf);
    else
      inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    out->port = ntohs(in6->sin6_port);
    out->any = IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr);
  } else {
    return false;
  }
  out->host = buf;
  return true;
}

std::string key_of(const End &peer, uint16_t local_port) {
  return peer.host + ":" + std::to_string(peer.port) + ">" + std::to_string(local_port);
}

std::string peer_of(const End &peer) { return peer.host + ":" + std::to_string(peer.port); }

struct Accepted {
  int fd;
  End peer;
  uint16_t local_port;
  bool ended_by_us;  // our side sent its FIN, the peer keeps its side open
};

// The connections our TCP listeners accepted, seen from the kernel: every
// stream socket of ours whose local port is a listening socket's port (and
// address, unless that listens on any). Connections the proxy opened itself
// have ephemeral local ports and are left to sofia's idle rule. The proxy has
// no other TCP listener (the control socket is a UNIX socket).
std::vector<Accepted> accepted_connections(size_t *fds_open) {
  std::vector<Accepted> out;
  *fds_open = 0;
  DIR *dir = opendir("/proc/self/fd");
  if (!dir) return out;
  const int dir_fd = dirfd(dir);
  std::vector<End> listeners;
  std::vector<std::pair<Accepted, End>> connected;  // with its local end
  while (dirent *e = readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const int fd = atoi(e->d_name);
    if (fd == dir_fd) continue;
    ++*fds_open;
    int domain = 0, type = 0, listening = 0;
    socklen_t len = sizeof domain;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 ||
        (domain != AF_INET && domain != AF_INET6))
      continue;
    len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) continue;
    sockaddr_storage local{};
    socklen_t local_len = sizeof local;
    End local_end;
    if (getsockname(fd, reinterpret_cast<sockaddr *>(&local), &local_len) != 0 ||
        !end_of(reinterpret_cast<sockaddr *>(&local), &local_end))
      continue;
    len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening) {
      listeners.push_back(local_end);
      continue;
    }
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    tcp_info info{};
    len = sizeof info;
    const bool ended = getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0 &&
                       (info.tcpi_state == TCP_FIN_WAIT1 || info.tcpi_state == TCP_FIN_WAIT2);
    Accepted a{fd, {}, local_end.port, ended};
    if (getpeername(fd, reinterpret_cast<sockaddr *>(&peer), &peer_len) != 0 ||
        !end_of(reinterpret_cast<sockaddr *>(&peer), &a.peer))
      continue;  // not connected (yet, or any more)
    connected.push_back({a, local_end});
  }
  closedir(dir);
  for (const auto &[a, local] : connected)
    for (const auto &l : listeners)
      if (l.port == local.port && (l.any || l.host == local.host)) {
        out.push_back(a);
        break;
      }
  return out;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Descriptors kept free of accepted connections, for everything else the
// proxy opens (relay ports, state files, outgoing connections): an eighth of
// the limit, at least 32. GLib aborts the program when it cannot get one.
size_t descriptors_for_others(size_t limit) { return std::max<size_t>(32, limit / 8); }

}  // namespace

TcpConnections::TcpConnections(nta_agent_t *agent, ConnectionLimits::Settings settings)
    : agent_(agent), limits_(settings), max_per_source_(settings.max_per_source) {
  if (!accept_guard::arm())
    PLOG_WARN("tcp: no file descriptor to keep in reserve for a flood of connections");
  accept_guard::set_filter(
      [](const sockaddr *peer, void *self) {
        End end;
        return !end_of(peer, &end) ||
               static_cast<TcpConnections *>(self)->limits_.accept_from(end.host);
      },
      this);
}

TcpConnections::~TcpConnections() {
  accept_guard::set_filter(nullptr, nullptr);
  for (auto &[peer, tp] : flows_) tport_unref(tp);
}

void TcpConnections::note_request(msg_t *msg, bool is_register) {
  tport_t *tp = nta_incoming_transport(agent_, nullptr, msg);
  if (!tp) return;
  const su_addrinfo_t *ai = tport_get_address(tp);
  const su_addrinfo_t *lai = tport_get_address(tport_parent(tp));
  End peer, local;
  if (tport_is_stream(tp) && tport_is_secondary(tp) && ai && ai->ai_addr && lai && lai->ai_addr &&
      end_of(ai->ai_addr, &peer) && end_of(lai->ai_addr, &local)) {
    if (is_register) {
      // Held until the next review decides whether a binding lives on it.
      auto [it, fresh] = flows_.emplace(peer_of(peer), tp);
      if (fresh) {
        tport_ref(tp);
      } else if (it->second != tp) {
        tport_unref(it->second);
        it->second = tport_ref(tp);
      }
    }
    // A new connection's first request is counted here too; its source was
    // checked when it was accepted (accept_guard), so no review is needed
    // now (one per new connection would cost a flood dearly).
    limits_.note_request(key_of(peer, local.port), now_ms());
  }
  tport_unref(tp);
}

void TcpConnections::review(const LocationStore &locations, int64_t now_s) {
  // With no connection accepted since the last walk, none open then and no flow
  // held, the walk over every descriptor (the relay's sockets too) and every
  // binding would find nothing: a UDP-only house pays nothing for it.
  const bool accepted = accept_guard::take_accepted() > 0;
  if (accepted || connections_seen_ || !flows_.empty()) review_connections(locations, now_s);
  // One line per source and second in a flood, not one per connection.
  for (const auto &[host, n] : over_limit_)
    PLOG_WARN("tcp: closed %zu connection(s) from %s: over max-connections-per-source (%zu)", n,
              host.c_str(), max_per_source_);
  over_limit_.clear();
  if (size_t n = accept_guard::take_refused_by_filter())
    PLOG_WARN(
        "tcp: refused %zu connection(s) at once: their source is at "
        "max-connections-per-source (%zu)",
        n, max_per_source_);
  if (size_t n = accept_guard::take_refused_no_fd() + no_descriptors_)
    PLOG_WARN(
        "tcp: refused or closed %zu connection(s): out of file descriptors "
        "(RLIMIT_NOFILE); the newest unregistered connections go first",
        n);
  no_descriptors_ = 0;
}

void TcpConnections::review_connections(const LocationStore &locations, int64_t now_s) {
  registered_.clear();
  for (const auto &[aor, bindings] : locations.records())
    for (const auto &b : bindings) {
      // "tcp:host:port" or "tls:host:port" (IPv6 hosts bracketed), as the
      // registrar writes it.
      if (b.expires_at <= now_s ||
          (b.received.compare(0, 4, "tcp:") != 0 && b.received.compare(0, 4, "tls:") != 0))
        continue;
      std::string hp = b.received.substr(4);
      const size_t colon = hp.rfind(':');
      if (colon == std::string::npos) continue;
      std::string host = hp.substr(0, colon);
      if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
      registered_.insert(host + hp.substr(colon));
    }
  for (auto it = flows_.begin(); it != flows_.end();) {
    if (registered_.count(it->first) && !tport_is_closed(it->second)) {
      ++it;
      continue;
    }
    tport_unref(it->second);
    it = flows_.erase(it);
  }
  review_now(now_ms());
}

void TcpConnections::review_now(int64_t now) {
  size_t fds_open = 0;
  const std::vector<Accepted> accepted = accepted_connections(&fds_open);
  connections_seen_ = !accepted.empty();
  std::vector<OpenConnection> open;
  open.reserve(accepted.size());
  struct rlimit rl {};
  const size_t limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                           ? static_cast<size_t>(rl.rlim_cur)
                           : SIZE_MAX / 2;
  const size_t others = fds_open - accepted.size() + descriptors_for_others(limit);
  const size_t max_accepted = limit > others ? limit - others : 0;
  std::map<std::string, int> fd_of;
  size_t ended = 0;
  for (const auto &a : accepted) {
    if (a.ended_by_us) {
      // nta gave up on it (a 400 to a message cut short by
      // tcp-incomplete-message-timeout, a 413...) and sent a FIN, but sofia
      // keeps reading until the peer closes too: a peer that never does would
      // hold the descriptor until idle-timeout.
      shutdown(a.fd, SHUT_RDWR);
      ++ended;
      continue;
    }
    OpenConnection c;
    c.key = key_of(a.peer, a.local_port);
    c.host = a.peer.host;
    c.registered = registered_.count(peer_of(a.peer)) > 0;
    fd_of[c.key] = a.fd;
    open.push_back(std::move(c));
  }
  size_t idle = 0;
  for (const auto &c : limits_.review(open, now, max_accepted)) {
    // sofia owns the socket: shutdown(2) ends the connection without taking
    // the descriptor from under it; sofia reads the end of stream, closes the
    // socket and frees its transport (the peer sees its connection closed).
    auto fd = fd_of.find(c.key);
    if (fd == fd_of.end()) continue;
    shutdown(fd->second, SHUT_RDWR);
    if (c.why == Closing::Why::OverLimit)
      ++over_limit_[c.host];
    else if (c.why == Closing::Why::NoDescriptors)
      ++no_descriptors_;
    else
      ++idle;
  }
  if (idle || ended)
    PLOG_DEBUG("tcp: closed %zu idle connection(s), %zu half-closed one(s)", idle, ended);
}

}  // namespace portier::proxy
