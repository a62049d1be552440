// json::quote: what the control socket prints comes from the network, so the
// output must stay valid JSON and valid UTF-8 whatever bytes came in.
#include <gtest/gtest.h>

#include <string>

#include "common/json.h"

namespace portier::json {
namespace {

TEST(JsonQuote, PlainTextAndTheJsonEscapes) {
  EXPECT_EQ(quote("sip:alice@home.example"), "\"sip:alice@home.example\"");
  EXPECT_EQ(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quote("l1\nl2\r\t"), "\"l1\\nl2\\r\\t\"");
  EXPECT_EQ(quote(""), "\"\"");
}

TEST(JsonQuote, ControlCharactersAreEscaped) {
  // RFC 8259 §7: U+0000..U+001F must be escaped; DEL is escaped too so a
  // terminal never sees it raw.
  EXPECT_EQ(quote(std::string("a\0b", 3)), "\"a\\u0000b\"");
  EXPECT_EQ(quote("\x01\x1b[2J\x7f"), "\"\\u0001\\u001b[2J\\u007f\"");
}

TEST(JsonQuote, WellFormedUtf8IsKept) {
  const std::string text = "Tür \xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x94";  // é € 🔔
  EXPECT_EQ(quote(text), "\"" + text + "\"");
}

TEST(JsonQuote, InvalidUtf8BecomesReplacementCharacters) {
  struct Case {
    std::string in, out;
  } cases[] = {
      {"\xff", "\\ufffd"},                                   // never valid in UTF-8
      {"\x80", "\\ufffd"},                                   // a lone continuation byte
      {"\xc3", "\\ufffd"},                                   // cut short at the end
      {"\xc3(", "\\ufffd("},                                 // cut short before ASCII
      {"\xc0\xaf", "\\ufffd\\ufffd"},                        // overlong '/'
      {"\xe0\x80\xaf", "\\ufffd\\ufffd\\ufffd"},             // overlong, 3 bytes
      {"\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"},             // a UTF-16 surrogate (U+D800)
      {"\xf4\x90\x80\x80", "\\ufffd\\ufffd\\ufffd\\ufffd"},  // above U+10FFFF
      {"sip:\x01\xfe\xfd@h", "sip:\\u0001\\ufffd\\ufffd@h"},
  };
  for (const auto &c : cases) EXPECT_EQ(quote(c.in), "\"" + c.out + "\"") << c.out;
}

TEST(JsonQuote, EveryByteStringGivesValidUtf8) {
  // Each byte value alone and behind a lead byte: the output never holds a
  // byte >= 0x80 that is not part of a sequence copied whole.
  for (int a = 0; a < 256; ++a) {
    for (int b : {0x00, 0x41, 0x80, 0xbf, 0xc3, 0xff}) {
      std::string in{static_cast<char>(a), static_cast<char>(b)};
      std::string out = quote(in);
      for (size_t i = 0; i < out.size();) {
        auto c = static_cast<unsigned char>(out[i]);
        if (c < 0x80) {
          ASSERT_GE(c, 0x20) << "raw control byte for input " << a << "," << b;
          ++i;
          continue;
        }
        size_t n = detail::utf8_sequence(out, i);
        ASSERT_NE(n, 0u) << "invalid UTF-8 for input " << a << "," << b;
        i += n;
      }
    }
  }
}

}  // namespace
}  // namespace portier::json
