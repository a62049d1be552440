// media::NatKeepalive: the STUN Binding Indication a NATed monitor sends from
// its media sockets (RFC 5389 §6, RFC 6263 §4.4), over real loopback sockets.
#include <gio/gio.h>
#include <gtest/gtest.h>

#include "media/nat_keepalive.h"

namespace portier::media {
namespace {

TEST(NatKeepalive, BindingIndicationIsWellFormed) {
  const std::vector<uint8_t> a = stun_binding_indication(), b = stun_binding_indication();
  ASSERT_EQ(a.size(), 20u);
  // Binding (method 0x001) of class indication: 0x0011; no attributes.
  EXPECT_EQ(a[0], 0x00);
  EXPECT_EQ(a[1], 0x11);
  EXPECT_EQ(a[2], 0x00);
  EXPECT_EQ(a[3], 0x00);
  // The magic cookie (§6), and a first byte a relay never takes for RTP (RFC 7983).
  EXPECT_EQ(std::vector<uint8_t>(a.begin() + 4, a.begin() + 8),
            (std::vector<uint8_t>{0x21, 0x12, 0xA4, 0x42}));
  // A new transaction id each time.
  EXPECT_NE(std::vector<uint8_t>(a.begin() + 8, a.end()),
            std::vector<uint8_t>(b.begin() + 8, b.end()));
}

GSocket *udp_socket(uint16_t *port) {
  GSocket *s = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_DATAGRAM,
                            G_SOCKET_PROTOCOL_UDP, nullptr);
  GInetAddress *lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
  GSocketAddress *any = g_inet_socket_address_new(lo, 0);
  g_socket_bind(s, any, TRUE, nullptr);
  g_object_unref(any);
  g_object_unref(lo);
  GSocketAddress *bound = g_socket_get_local_address(s, nullptr);
  *port = g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound));
  g_object_unref(bound);
  return s;
}

TEST(NatKeepalive, SendsAtOnceFromTheSocketToThePeerAndStops) {
  uint16_t ours = 0, peer = 0;
  GSocket *mine = udp_socket(&ours), *relay = udp_socket(&peer);
  g_socket_set_timeout(relay, 2);
  NatKeepalive k(3600);
  k.target(mine, "127.0.0.1", peer);
  char buf[64];
  GSocketAddress *from = nullptr;
  const gssize n = g_socket_receive_from(relay, &from, buf, sizeof buf, nullptr, nullptr);
  ASSERT_EQ(n, 20);
  EXPECT_EQ(static_cast<uint8_t>(buf[1]), 0x11);
  // From the media socket itself: the mapping the NAT makes is that socket's.
  EXPECT_EQ(g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(from)), ours);
  EXPECT_EQ(k.sent(), 1u);
  g_object_unref(from);
  // An empty host stops that socket's keep-alives.
  k.target(mine, "", 0);
  k.stop();
  g_object_unref(mine);
  g_object_unref(relay);
}

}  // namespace
}  // namespace portier::media
