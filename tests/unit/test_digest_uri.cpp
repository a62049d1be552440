// The digest uri against the Request-URI (RFC 2617 §3.2.2.5), compared as SIP
// URIs by RFC 3261 §19.1.4: its examples first, then what clients send.
#include <gtest/gtest.h>

#include "common/auth/digest_uri.h"

namespace portier::auth {
namespace {

struct Pair {
  const char *a, *b;
};

TEST(DigestUri, Rfc3261Section19_1_4Equivalent) {
  const Pair equal[] = {
      {"sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"},
      {"sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"},
      {"sip:carol@chicago.com", "sip:carol@chicago.com;security=on"},
      {"sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"},
      {"sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
       "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"},
      {"sip:alice@atlanta.com?subject=project%20x&priority=urgent",
       "sip:alice@atlanta.com?priority=urgent&subject=project%20x"},
      // What our own tests' clients send.
      {"sip:home.example", "sip:home.example"},
      {"sip:home.example", "sip:HOME.example"},
      {"sip:home@home.example", "sip:home@home.example"},
  };
  for (const Pair &p : equal) {
    EXPECT_TRUE(same_sip_uri(p.a, p.b)) << p.a << " vs " << p.b;
    EXPECT_TRUE(same_sip_uri(p.b, p.a)) << p.b << " vs " << p.a;
  }
}

TEST(DigestUri, Rfc3261Section19_1_4NotEquivalent) {
  const Pair differ[] = {
      {"SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"},
      {"sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"},
      {"sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"},
      {"sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"},
      {"sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"},
      {"sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"},
      // The attack: a response computed for another target or another domain.
      {"sip:door@home.example", "sip:home@home.example"},
      {"sip:home.example", "sip:other.example"},
      {"sip:home.example", "sips:home.example"},
      {"sip:alice@home.example;user=phone", "sip:alice@home.example"},
      {"sip:alice@home.example;maddr=10.0.0.1", "sip:alice@home.example"},
      {"sip:alice@home.example;lr=on", "sip:alice@home.example;lr=off"},
      {"sip:home.example", ""},
      {"sip:home.example", "home.example"},
  };
  for (const Pair &p : differ) {
    EXPECT_FALSE(same_sip_uri(p.a, p.b)) << p.a << " vs " << p.b;
    EXPECT_FALSE(same_sip_uri(p.b, p.a)) << p.b << " vs " << p.a;
  }
}

TEST(DigestUri, NonSipUrisCompareAsBytes) {
  EXPECT_TRUE(same_sip_uri("tel:+15551234", "tel:+15551234"));
  EXPECT_FALSE(same_sip_uri("tel:+15551234", "tel:+15551235"));
  EXPECT_TRUE(same_sip_uri("", ""));
}

}  // namespace
}  // namespace portier::auth
