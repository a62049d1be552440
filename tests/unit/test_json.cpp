// json::quote and json::Writer: what the control socket prints comes from the
// network, so the output must stay valid JSON (RFC 8259) and valid UTF-8
// whatever bytes came in.
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

TEST(JsonWriter, CommasGoBetweenItemsOnly) {
  // RFC 8259 §4, §5: members and elements are separated by one comma each;
  // none before the first, none after the last, none after a name's colon.
  struct Case {
    const char *what;
    std::string got, want;
  } cases[] = {
      {"empty object", Writer().begin_object().end_object().take(), "{}"},
      {"empty array", Writer().begin_array().end_array().take(), "[]"},
      {"members",
       Writer().begin_object().field("a", 1).field("b", "x").field("c", true).end_object().take(),
       R"({"a":1,"b":"x","c":true})"},
      {"nested",
       Writer()
           .begin_object()
           .key("calls")
           .begin_array()
           .begin_object()
           .field("id", "1")
           .end_object()
           .begin_object()
           .end_object()
           .end_array()
           .field("n", 2)
           .end_object()
           .take(),
       R"({"calls":[{"id":"1"},{}],"n":2})"},
      {"array of values",
       Writer().begin_array().value(-1).value("s").null().value(false).end_array().take(),
       R"([-1,"s",null,false])"},
      {"raw values", Writer().begin_array().raw(R"({"a":1})").raw("[2]").end_array().take(),
       R"([{"a":1},[2]])"},
      {"raw field", Writer().begin_object().raw_field("q", "0.5").end_object().take(),
       R"({"q":0.5})"},
      {"64-bit and unsigned",
       Writer()
           .begin_object()
           .field("ms", int64_t{1714564800123})
           .field("n", size_t{7})
           .end_object()
           .take(),
       R"({"ms":1714564800123,"n":7})"},
  };
  for (const auto &c : cases) EXPECT_EQ(c.got, c.want) << c.what;
}

TEST(JsonWriter, KeysAndStringsAreQuoted) {
  EXPECT_EQ(Writer().begin_object().field("a\"b", "l1\nl2\xff").end_object().take(),
            "{\"a\\\"b\":\"l1\\nl2\\ufffd\"}");
  const char *none = nullptr;
  EXPECT_EQ(Writer().begin_array().value(none).end_array().take(), "[\"\"]");
  EXPECT_EQ(object_of("error", "no \"such\" call"), "{\"error\":\"no \\\"such\\\" call\"}");
}

}  // namespace
}  // namespace portier::json
