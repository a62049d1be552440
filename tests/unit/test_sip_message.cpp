// sipmsg::address_text: the source address the proxy binds nonces to, logs and
// keeps with a binding, written as inet_ntop writes it (RFC 5952 for IPv6).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

#include "common/sip_message.h"

namespace portier::sipmsg {
namespace {

std::string text_of(int family, const char *address) {
  sockaddr_storage ss{};
  ss.ss_family = static_cast<sa_family_t>(family);
  void *where = family == AF_INET
                    ? static_cast<void *>(&reinterpret_cast<sockaddr_in *>(&ss)->sin_addr)
                    : static_cast<void *>(&reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_addr);
  EXPECT_EQ(inet_pton(family, address, where), 1) << address;
  char buf[kAddressTextSize];
  return address_text(reinterpret_cast<sockaddr *>(&ss), buf);
}

TEST(AddressText, SameAsInetNtop) {
  for (const char *a : {"0.0.0.0", "127.0.0.1", "192.0.2.1", "10.20.30.40", "9.99.100.255",
                        "255.255.255.255", "100.10.1.0"})
    EXPECT_EQ(text_of(AF_INET, a), a);
  for (const char *a : {"::1", "2001:db8::1", "fe80::1:2:3:4", "::ffff:192.0.2.1"})
    EXPECT_EQ(text_of(AF_INET6, a), a);
}

TEST(AddressText, OtherFamiliesAreUnknown) {
  sockaddr sa{};
  sa.sa_family = AF_UNIX;
  char buf[kAddressTextSize];
  EXPECT_STREQ(address_text(&sa, buf), "?");
  EXPECT_STREQ(address_text(nullptr, buf), "?");
}

}  // namespace
}  // namespace portier::sipmsg
