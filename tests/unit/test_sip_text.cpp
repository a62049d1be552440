// Free text in Warning and Reason headers: RFC 3261 §25.1 quoted-string.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "common/sip_text.h"

namespace portier::siptext {
namespace {

TEST(SipText, Rfc3261Sec25_1QuotedString) {
  const struct {
    const char *in, *out;
  } cases[] = {
      {"plain text", "\"plain text\""},
      // An SDP error quoting the line it refused: a bare `"` would end the
      // warn-text early, making the header invalid (the caller would get 500).
      {"SDP line 3: \"x=1\"", "\"SDP line 3: \\\"x=1\\\"\""},
      {"back\\slash", "\"back\\\\slash\""},
      // CR and LF would end the header; a quoted-pair cannot carry them.
      {"two\r\nlines", "\"two??lines\""},
      {"tab\there", "\"tab here\""},
      {"caf\xc3\xa9", "\"caf??\""},
      {"", "\"\""},
  };
  for (const auto &c : cases) EXPECT_EQ(quoted(c.in), c.out) << c.in;
}

TEST(SipText, LongTextIsCut) { EXPECT_EQ(quoted(std::string(300, 'a'), 5), "\"aaaaa...\""); }

TEST(SipText, Rfc3261Sec20_43Warning) {
  EXPECT_EQ(warning(399, "portier", "bad \"SDP\""), "399 portier \"bad \\\"SDP\\\"\"");
}

TEST(SipText, Rfc3326Sec2Reason) {
  EXPECT_EQ(reason(603, "Decline"), "SIP;cause=603;text=\"Decline\"");
  EXPECT_EQ(reason(600, "Busy \"Everywhere\""), "SIP;cause=600;text=\"Busy \\\"Everywhere\\\"\"");
}

TEST(SipText, StripQuotesAndBrackets) {
  // RFC 3261 §25.1: a quoted-string parameter (realm="...", +sip.instance="<urn:...>")
  // and an IPv6reference host ("[" IPv6address "]").
  const struct {
    std::string_view in, quotes, brackets;
  } cases[] = {
      {"\"home.example\"", "home.example", "\"home.example\""},
      {"\"<urn:uuid:1>\"", "<urn:uuid:1>", "\"<urn:uuid:1>\""},
      {"home.example", "home.example", "home.example"},
      {"[2001:db8::1]", "[2001:db8::1]", "2001:db8::1"},
      {"[]", "[]", ""},
      {"\"\"", "", "\"\""},
      {"\"", "\"", "\""},  // a lone quote is not a pair
      {"[::1", "[::1", "[::1"},
      {"", "", ""},
  };
  for (const auto &c : cases) {
    EXPECT_EQ(strip_quotes(c.in), c.quotes) << c.in;
    EXPECT_EQ(strip_brackets(c.in), c.brackets) << c.in;
  }
}

TEST(SipText, Ipv4TextIsWhatInetNtopWrites) {
  // Every value in every position: lengths 7 to 15, no leading zeros.
  for (unsigned v = 0; v < 256; ++v) {
    for (int pos = 0; pos < 4; ++pos) {
      unsigned char a[4] = {192, 0, 2, 1};
      a[pos] = static_cast<unsigned char>(v);
      char expected[INET_ADDRSTRLEN], got[kIpv4TextSize];
      ASSERT_NE(inet_ntop(AF_INET, a, expected, sizeof expected), nullptr);
      EXPECT_EQ(ipv4_text(a, got), strlen(expected));
      EXPECT_STREQ(got, expected);
    }
  }
  const unsigned char widest[4] = {255, 255, 255, 255};
  char out[kIpv4TextSize];
  EXPECT_EQ(ipv4_text(widest, out), kIpv4TextSize - 1);
  EXPECT_STREQ(out, "255.255.255.255");
}

}  // namespace
}  // namespace portier::siptext
