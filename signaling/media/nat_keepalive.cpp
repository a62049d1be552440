#include "media/nat_keepalive.h"

#include <algorithm>

namespace portier::media {

std::vector<uint8_t> stun_binding_indication() {
  // RFC 5389 §6: type 0x0011 (Binding, class indication), length 0, the magic
  // cookie, a 96-bit transaction id (random, §6: "uniformly and randomly").
  std::vector<uint8_t> m = {0x00, 0x11, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42};
  for (int i = 0; i < 3; ++i) {
    const guint32 r = g_random_int();
    for (int b = 0; b < 4; ++b) m.push_back(static_cast<uint8_t>(r >> (8 * b)));
  }
  return m;
}

void NatKeepalive::target(GSocket *socket, const std::string &host, uint16_t port) {
  auto it = std::find_if(targets_.begin(), targets_.end(),
                         [socket](const Target &t) { return t.socket == socket; });
  if (it != targets_.end()) {
    g_object_unref(it->to);
    targets_.erase(it);
  }
  if (!socket || host.empty() || port == 0) return;
  GSocketAddress *to = g_inet_socket_address_new_from_string(host.c_str(), port);
  if (!to) return;
  targets_.push_back({socket, to});
  send(targets_.back());
  if (!timer_ && interval_s_) timer_ = g_timeout_add_seconds(interval_s_, on_timer, this);
}

void NatKeepalive::stop() {
  if (timer_) g_source_remove(timer_), timer_ = 0;
  for (auto &t : targets_) g_object_unref(t.to);
  targets_.clear();
}

void NatKeepalive::send(const Target &t) {
  const std::vector<uint8_t> m = stun_binding_indication();
  // Non-blocking and best effort: a keep-alive lost is sent again next time.
  if (g_socket_send_to(t.socket, t.to, reinterpret_cast<const gchar *>(m.data()), m.size(),
                       nullptr, nullptr) == static_cast<gssize>(m.size()))
    ++sent_;
}

gboolean NatKeepalive::on_timer(gpointer self) {
  auto *k = static_cast<NatKeepalive *>(self);
  for (const auto &t : k->targets_) k->send(t);
  return G_SOURCE_CONTINUE;
}

}  // namespace portier::media
