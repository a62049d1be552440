// TrustedHops: a device takes requests only from its proxy (RFC 3325 §3: an
// asserted identity is believed only from inside the trust domain).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>

#include "sip/sip_trusted_hops.h"

using portier::sip::TrustedHops;

namespace {

sockaddr_in v4(const char *ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

sockaddr_in6 v6(const char *ip, uint16_t port) {
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_port = htons(port);
  inet_pton(AF_INET6, ip, &a.sin6_addr);
  return a;
}

template <typename A>
bool trusts(const TrustedHops &t, const A &a, int proto = IPPROTO_UDP) {
  return t.trusts(reinterpret_cast<const sockaddr *>(&a), sizeof a, proto);
}

}  // namespace

TEST(TrustedHops, NothingIsTrustedByDefault) {
  TrustedHops t;
  EXPECT_FALSE(trusts(t, v4("127.0.0.1", 5060)));
  EXPECT_EQ(t.describe(), "nobody");
}

TEST(TrustedHops, TheProxyUriGivesAddressAndPort) {
  TrustedHops t;
  std::string error;
  ASSERT_TRUE(t.add("sip:10.0.0.1:5070;transport=udp", &error)) << error;
  EXPECT_TRUE(trusts(t, v4("10.0.0.1", 5070)));
  // Another program on the proxy's host, or anyone else on the LAN: no.
  EXPECT_FALSE(trusts(t, v4("10.0.0.1", 40000)));
  EXPECT_FALSE(trusts(t, v4("10.0.0.2", 5070)));
  // Over TCP only the connection to the proxy's listening address: the one
  // the device opened to register, which the proxy reuses. Any local process
  // could connect from another port of the proxy's host.
  EXPECT_TRUE(trusts(t, v4("10.0.0.1", 5070), IPPROTO_TCP));
  EXPECT_FALSE(trusts(t, v4("10.0.0.1", 40000), IPPROTO_TCP));
  EXPECT_FALSE(trusts(t, v4("10.0.0.2", 40000), IPPROTO_TCP));
  EXPECT_EQ(t.describe(), "10.0.0.1:5070");
}

TEST(TrustedHops, DefaultPortsFollowTheScheme) {
  TrustedHops t;
  std::string error;
  ASSERT_TRUE(t.add("<sip:user@10.0.0.1>", &error)) << error;
  ASSERT_TRUE(t.add("sips:10.0.0.3", &error)) << error;
  EXPECT_TRUE(trusts(t, v4("10.0.0.1", 5060)));
  EXPECT_FALSE(trusts(t, v4("10.0.0.1", 5061)));
  EXPECT_TRUE(trusts(t, v4("10.0.0.3", 5061)));
}

TEST(TrustedHops, ABareHostTrustsEveryPort) {
  TrustedHops t;
  std::string error;
  ASSERT_TRUE(t.add("10.0.0.9", &error)) << error;
  EXPECT_TRUE(trusts(t, v4("10.0.0.9", 1234)));
  ASSERT_TRUE(t.add("10.0.0.8:5080", &error)) << error;
  EXPECT_FALSE(trusts(t, v4("10.0.0.8", 1234)));
  EXPECT_TRUE(trusts(t, v4("10.0.0.8", 5080)));
}

TEST(TrustedHops, IPv6AndMappedIPv4) {
  TrustedHops t;
  std::string error;
  ASSERT_TRUE(t.add("sip:[::1]:5060", &error)) << error;
  ASSERT_TRUE(t.add("sip:192.0.2.7:5060", &error)) << error;
  EXPECT_TRUE(trusts(t, v6("::1", 5060)));
  EXPECT_FALSE(trusts(t, v6("::2", 5060)));
  // A dual-stack socket reports an IPv4 proxy as ::ffff:192.0.2.7.
  EXPECT_TRUE(trusts(t, v6("::ffff:192.0.2.7", 5060)));
  const sockaddr_in6 one = v6("::1", 9);
  EXPECT_EQ(TrustedHops::address_text(reinterpret_cast<const sockaddr *>(&one), sizeof one),
            "[::1]:9");
}

TEST(TrustedHops, NamesAreResolvedAndBadInputIsAnError) {
  TrustedHops t;
  std::string error;
  ASSERT_TRUE(t.add("sip:localhost:5060", &error)) << error;
  EXPECT_TRUE(trusts(t, v4("127.0.0.1", 5060)));
  EXPECT_FALSE(t.add("sip:no-such-host.invalid", &error));
  EXPECT_NE(error.find("no-such-host.invalid"), std::string::npos) << error;
  EXPECT_FALSE(t.add("sip:10.0.0.1:99999", &error));
  EXPECT_FALSE(t.add("sip:[::1", &error));
  EXPECT_FALSE(t.add("sip:", &error));
  EXPECT_FALSE(t.trusts(nullptr, 0, IPPROTO_UDP));
}
