// Keeping a media path open through the device's own NAT (RFC 6263). A
// monitor used as a phone behind a home router answers a ringing call with
// early media and then only receives: until a packet leaves each of its
// media sockets, the router has no mapping for the relay's packets to come
// back through, and the relay (latching, symmetric RTP) does not know where
// the phone really is. So each socket sends a STUN Binding Indication (RFC
// 5389 §6 and §10: no answer expected) to the peer at once and every
// `interval` seconds while the stream lives: what Linphone does (RFC 6263
// §4.4), and what a relay tells from RTP and SRTP by its first byte (RFC 7983).
#pragma once

#include <gio/gio.h>

#include <cstdint>
#include <string>
#include <vector>

namespace portier::media {

// The 20 bytes of a STUN Binding Indication with a fresh transaction id.
std::vector<uint8_t> stun_binding_indication();

class NatKeepalive {
 public:
  explicit NatKeepalive(unsigned interval_s = 15) : interval_s_(interval_s) {}
  ~NatKeepalive() { stop(); }
  NatKeepalive(const NatKeepalive &) = delete;
  NatKeepalive &operator=(const NatKeepalive &) = delete;

  // Where `socket` (ours, not owned; it must outlive stop()) sends its
  // keep-alives: host (an IP literal) and port; replaces the earlier target of
  // that socket; an empty host or port 0 stops it. Sends one at once.
  void target(GSocket *socket, const std::string &host, uint16_t port);
  // No more keep-alives (the call's media closes).
  void stop();
  // Keep-alives sent so far (status, tests).
  uint64_t sent() const { return sent_; }

 private:
  struct Target {
    GSocket *socket;
    GSocketAddress *to;  // owned
  };
  void send(const Target &t);
  static gboolean on_timer(gpointer self);

  unsigned interval_s_;
  std::vector<Target> targets_;
  guint timer_ = 0;
  uint64_t sent_ = 0;
};

}  // namespace portier::media
