// The plain SIP URI (RFC 3261 §19.1.1) and the AOR keys built on it: what the
// registrar, the configs and the digest-uri check read, without sofia-sip.
#include <gtest/gtest.h>

#include "common/sip_address.h"

namespace portier {
namespace {

struct UriCase {
  const char *text;
  bool secure;
  const char *user;  // nullptr: no userinfo
  const char *password;
  const char *host, *port, *params, *headers;
};

TEST(SipUri, Rfc3261Section19_1_1Parts) {
  const UriCase cases[] = {
      {"sip:alice@atlanta.com", false, "alice", nullptr, "atlanta.com", "", "", ""},
      {"sip:alice:secretword@atlanta.com;transport=tcp", false, "alice", "secretword",
       "atlanta.com", "", "transport=tcp", ""},
      {"sips:alice@atlanta.com?subject=project%20x&priority=urgent", true, "alice", nullptr,
       "atlanta.com", "", "", "subject=project%20x&priority=urgent"},
      {"sip:+1-212-555-1212:1234@gateway.com;user=phone", false, "+1-212-555-1212", "1234",
       "gateway.com", "", "user=phone", ""},
      {"sips:1212@gateway.com", true, "1212", nullptr, "gateway.com", "", "", ""},
      {"sip:alice@192.0.2.4", false, "alice", nullptr, "192.0.2.4", "", "", ""},
      {"sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com", false, nullptr, nullptr,
       "atlanta.com", "", "method=REGISTER", "to=alice%40atlanta.com"},
      {"sip:alice;day=tuesday@atlanta.com", false, "alice;day=tuesday", nullptr, "atlanta.com", "",
       "", ""},
      // The scheme is case-insensitive; the rest is kept as written.
      {"SIP:Bob@Biloxi.COM:5060", false, "Bob", nullptr, "Biloxi.COM", "5060", "", ""},
      {"sip:bob@[2001:db8::1]:5070;lr", false, "bob", nullptr, "[2001:db8::1]", "5070", "lr", ""},
  };
  for (const UriCase &c : cases) {
    const auto uri = parse_sip_uri(c.text);
    ASSERT_TRUE(uri) << c.text;
    EXPECT_EQ(uri->secure, c.secure) << c.text;
    EXPECT_EQ(uri->user.has_value(), c.user != nullptr) << c.text;
    if (c.user) {
      EXPECT_EQ(*uri->user, c.user) << c.text;
    }
    EXPECT_EQ(uri->password.has_value(), c.password != nullptr) << c.text;
    if (c.password) {
      EXPECT_EQ(*uri->password, c.password) << c.text;
    }
    EXPECT_EQ(uri->host, c.host) << c.text;
    EXPECT_EQ(uri->port, c.port) << c.text;
    EXPECT_EQ(uri->params, c.params) << c.text;
    EXPECT_EQ(uri->headers, c.headers) << c.text;
  }
}

TEST(SipUri, NotASipUri) {
  for (const char *text :
       {"", "sip:", "tel:+15551234", "home.example", "sip:alice@", "sip:alice@host:port",
        "sip:alice@host:123456", "sip:[::1", "sip:alice@[::1]x", "sip:;transport=tcp"})
    EXPECT_FALSE(parse_sip_uri(text)) << text;
}

TEST(SipAddress, AorKeys) {
  const std::pair<const char *, const char *> cases[] = {
      {"sip:Alice@Home.Example", "sip:Alice@home.example"},
      {"<sip:alice@home.example:5060;transport=tcp>", "sip:alice@home.example"},
      {"sip:alice@[2001:DB8::1]:5070", "sip:alice@[2001:db8::1]"},
      {"sip:home.example", ""},  // no user: not an AOR
      {"sips:alice@home.example", ""},
      {"alice@home.example", ""},
      {"sip:@home.example", ""},
  };
  for (const auto &[text, aor] : cases) EXPECT_EQ(parse_aor(text), aor) << text;
}

}  // namespace
}  // namespace portier
