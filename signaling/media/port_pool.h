// A pool of UDP port pairs for RTP and RTCP. GIO only, no GStreamer.
#pragma once

#include <gio/gio.h>
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

namespace portier {

// RTP/RTCP socket pairs (even, even + 1, RFC 3550 §11) bound from a port
// range: the proxy's relay takes one per stream and branch, the door one per
// stream of its call.
class PortPool {
 public:
  // GLib: every pair as GSockets (the door's and the monitor's pipelines take
  // them); Plain: file descriptors only (the proxy's relay engine reads them).
  enum class Sockets { GLib, Plain };
  struct Pair {
    GSocket *rtp = nullptr;  // null with Sockets::Plain
    GSocket *rtcp = nullptr;
    uint16_t port = 0;
    int rtp_fd = -1;
    int rtcp_fd = -1;
  };
  // `what` names the ports in errors ("relay port pair").
  PortPool(std::string address, uint16_t min, uint16_t max, std::string what = "relay",
           Sockets sockets = Sockets::GLib);
  // Binds the next free pair; nullopt (and *error) when the range is exhausted,
  // or when one more pair would leave the process short of file descriptors.
  std::optional<Pair> take(std::string *error);
  void give_back(Pair &p);
  size_t pairs_in_use() const { return used_.size(); }
  size_t max_pairs() const { return max_pairs_; }

  // File descriptors one port pair costs: its two sockets. The relay reads
  // them from a few epoll threads (the GStreamer relay cost about 10 fds a
  // pair); the door's pipelines cost more, but the door takes two pairs.
  static constexpr size_t kFdsPerPair = 2;
  // Kept for SIP, the control socket, logs, state files and the relay's
  // I/O threads (an epoll fd and an eventfd each).
  static constexpr size_t kFdReserve = 256;

 private:
  std::string address_;
  std::string what_;
  Sockets sockets_;
  sockaddr_storage bind_address_{};  // address_, parsed once
  socklen_t bind_address_len_ = 0;   // 0: address_ is no IP address
  uint16_t min_, max_;
  uint16_t next_;
  std::set<uint16_t> used_;
  size_t max_pairs_;  // from RLIMIT_NOFILE at construction
};

}  // namespace portier
