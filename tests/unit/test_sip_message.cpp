// sipmsg's URL helpers, fed with URLs sofia-sip parsed from a message's text
// (no socket): what the registrar stores, the router compares and the
// control socket shows.
#include <gtest/gtest.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/sip_header.h>

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

}  // namespace
}  // namespace portier::sipmsg
