// sipmsg's helpers: the URL helpers, fed with URLs sofia-sip parsed from a
// message's text (no socket): what the registrar stores, the router compares
// and the control socket shows; and address_text, the source address the proxy
// binds nonces to, logs and keeps with a binding, written as inet_ntop writes
// it (RFC 5952 for IPv6).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/sip_header.h>

#include <cstring>
#include <string>

#include "sip/sip_message.h"

namespace portier::sipmsg {
namespace {

struct Parsed {
  msg_t *msg;
  explicit Parsed(const std::string &text)
      : msg(msg_make(sip_default_mclass(), 0, text.data(), text.size())) {}
  ~Parsed() { msg_destroy(msg); }
  sip_t *sip() const { return sip_object(msg); }
};

std::string request(const std::string &contact) {
  return "REGISTER sip:home.example SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK1\r\n"
         "From: <sip:mon1@home.example>;tag=1\r\n"
         "To: <sip:mon1@home.example>\r\n"
         "Call-ID: a@b\r\n"
         "CSeq: 1 REGISTER\r\n"
         "Contact: " +
         contact +
         "\r\n"
         "Content-Length: 0\r\n\r\n";
}

TEST(SipMessage, UrlStringAndBareHost) {
  // RFC 3261 §19.1.1 URIs as a Contact carries them; §25.1 IPv6reference.
  const struct {
    const char *contact, *url, *host;
  } cases[] = {
      {"<sip:mon1@192.0.2.1:5062;transport=tcp>", "sip:mon1@192.0.2.1:5062;transport=tcp",
       "192.0.2.1"},
      {"<sip:mon1@[2001:db8::1]:5062>", "sip:mon1@[2001:db8::1]:5062", "2001:db8::1"},
      {"\"Mon\" <sip:Mon1@Home.Example>", "sip:Mon1@Home.Example", "Home.Example"},
  };
  for (const auto &c : cases) {
    Parsed p(request(c.contact));
    ASSERT_TRUE(p.sip() && p.sip()->sip_contact) << c.contact;
    EXPECT_EQ(url_string(p.sip()->sip_contact->m_url), c.url) << c.contact;
    EXPECT_EQ(contact_uri(p.sip()), c.url) << c.contact;
    EXPECT_EQ(bare_host(p.sip()->sip_contact->m_url), c.host) << c.contact;
  }
  EXPECT_EQ(url_string(nullptr), "");
  EXPECT_EQ(bare_host(nullptr), "");
}

TEST(SipMessage, AUrlTooLongIsEmpty) {
  Parsed p(request("<sip:" + std::string(600, 'a') + "@home.example>"));
  ASSERT_TRUE(p.sip() && p.sip()->sip_contact);
  EXPECT_EQ(url_string(p.sip()->sip_contact->m_url), "");
}

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
