// SDES a=crypto lines (RFC 4568) as the door, the monitor and the relay read
// and write them: the suites of RFC 4568 §6.2, RFC 6188 and RFC 7714, the
// lines Linphone and baresip send, fresh keys, and malformed lines from the
// network, whose errors never show a key; and the redaction of keys in logs.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "common/log.h"
#include "sip/sdp/sdes.h"
#include "sip/sdp/sdp_rewrite.h"

namespace {

using namespace portier::sdp;

// The key of RFC 4568's examples (§9.1, §8.1): 30 bytes, AES_CM_128's 16 + 14.
const std::string kKey30 = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
const std::string kLine = "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30;

TEST(Sdes, KeySizesOfTheRfcs) {
  // RFC 4568 §6.2: 128-bit key, 112-bit salt; RFC 6188 §7.1: 256-bit key;
  // RFC 7714: the AEAD suites use a 96-bit salt.
  EXPECT_EQ(key_salt_length(SrtpSuite::AesCm128HmacSha1_80), 30u);
  EXPECT_EQ(key_salt_length(SrtpSuite::AesCm128HmacSha1_32), 30u);
  EXPECT_EQ(key_salt_length(SrtpSuite::Aes256CmHmacSha1_80), 46u);
  EXPECT_EQ(key_salt_length(SrtpSuite::AeadAes128Gcm), 28u);
  EXPECT_EQ(key_salt_length(SrtpSuite::AeadAes256Gcm), 44u);
  for (SrtpSuite s : kAllSrtpSuites) EXPECT_LE(key_salt_length(s), kMaxKeySalt);
  // RFC 4568 §6.2.2: SRTCP keeps the 80-bit tag under the 32-bit suite.
  const SrtpSuiteInfo &short_tag = suite_info(SrtpSuite::AesCm128HmacSha1_32);
  EXPECT_EQ(short_tag.rtp_tag_len, 4u);
  EXPECT_EQ(short_tag.rtcp_tag_len, 10u);
  EXPECT_STREQ(short_tag.gst_rtp_auth, "hmac-sha1-32");
  EXPECT_STREQ(short_tag.gst_rtcp_auth, "hmac-sha1-80");
  // RFC 7714: GCM authenticates with its own 16-byte tag, no HMAC.
  const SrtpSuiteInfo &gcm = suite_info(SrtpSuite::AeadAes128Gcm);
  EXPECT_TRUE(gcm.aead);
  EXPECT_EQ(gcm.rtp_tag_len, 16u);
  EXPECT_EQ(gcm.rtcp_tag_len, 16u);
  EXPECT_STREQ(gcm.gst_rtp_auth, "null");
  EXPECT_FALSE(suite_info(SrtpSuite::Aes256CmHmacSha1_80).aead);
  for (SrtpSuite s : kAllSrtpSuites) {
    EXPECT_EQ(suite_info(s).suite, s);
    EXPECT_EQ(suite_from_name(suite_name(s)), s);
  }
}

TEST(Sdes, OfferOrderPutsAeadFirstAndKeepsTheMandatorySuite) {
  EXPECT_EQ(kAllSrtpSuites.front(), SrtpSuite::AeadAes256Gcm);
  EXPECT_NE(std::find(kAllSrtpSuites.begin(), kAllSrtpSuites.end(), SrtpSuite::AesCm128HmacSha1_80),
            kAllSrtpSuites.end());
  std::vector<CryptoAttr> offer;
  ASSERT_TRUE(make_offer_keys(&offer));
  ASSERT_EQ(offer.size(), kSrtpSuites);
  for (size_t i = 0; i < offer.size(); ++i) {
    EXPECT_EQ(offer[i].tag, i + 1);
    EXPECT_EQ(offer[i].key.suite, kAllSrtpSuites[i]);
    EXPECT_EQ(offer[i].key.size, key_salt_length(kAllSrtpSuites[i]));
  }
}

TEST(Sdes, EverySuiteRoundTripsWithAFreshKey) {
  for (SrtpSuite s : kAllSrtpSuites) {
    SCOPED_TRACE(suite_name(s));
    auto k = CryptoKey::generate(s);
    ASSERT_TRUE(k);
    EXPECT_EQ(k->size, key_salt_length(s));
    const std::string line = print_crypto({7, *k});
    std::string error;
    auto back = parse_crypto(line, &error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(back->tag, 7u);
    EXPECT_EQ(back->key.suite, s);
    EXPECT_TRUE(back->key == *k);
    EXPECT_EQ(print_crypto(*back), line);
  }
}

TEST(Sdes, KeysCompareByKeyAndSuite) {
  auto a = CryptoKey::generate(SrtpSuite::AesCm128HmacSha1_80);
  ASSERT_TRUE(a);
  CryptoKey b = *a;
  EXPECT_TRUE(b == *a);
  b.suite = SrtpSuite::AesCm128HmacSha1_32;  // the same bytes under another suite
  EXPECT_TRUE(b != *a);
  b = *a;
  b.bytes[29] ^= 1;
  EXPECT_TRUE(b != *a);
}

TEST(Sdes, FreshKeysDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    auto k = CryptoKey::generate(SrtpSuite::AesCm128HmacSha1_80);
    ASSERT_TRUE(k);
    EXPECT_TRUE(seen.insert(print_crypto({1, *k})).second);
  }
  std::vector<CryptoAttr> a, b;
  ASSERT_TRUE(make_offer_keys(&a));
  ASSERT_TRUE(make_offer_keys(&b));
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(a[i].key != b[i].key);
}

TEST(Sdes, Rfc4568Examples) {
  std::string error;
  bool unsupported = false;
  // §9.1's lifetime and MKI form: well-formed, but an MKI we do not use and a
  // 2^20 lifetime we would have to re-key for: an answerer skips the line (§6.1).
  EXPECT_FALSE(parse_crypto(kLine + "|2^20|1:32", &error, &unsupported));
  EXPECT_TRUE(unsupported);
  EXPECT_FALSE(parse_crypto(kLine + "|2^20|1:4", &error, &unsupported));
  EXPECT_TRUE(unsupported);
  EXPECT_FALSE(parse_crypto(kLine + "|2^31|1:4", &error));
  EXPECT_NE(error.find("MKI"), std::string::npos) << error;
  EXPECT_FALSE(parse_crypto(kLine + "|1:4", &error));
  EXPECT_NE(error.find("MKI"), std::string::npos) << error;
  EXPECT_FALSE(parse_crypto(kLine + "|2^20", &error));
  EXPECT_NE(error.find("lifetime"), std::string::npos) << error;
  // The same key without either: usable.
  auto a = parse_crypto(kLine, &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->tag, 1u);
  EXPECT_EQ(a->key.suite, SrtpSuite::AesCm128HmacSha1_80);
  EXPECT_EQ(a->key.size, 30u);
  EXPECT_EQ(print_crypto(*a), kLine);
  // Several keys need MKIs (§9.1's "key-param *(";" key-param)").
  EXPECT_FALSE(
      parse_crypto(kLine + "|2^20|1:4;inline:" + kKey30 + "|2^20|2:4", &error, &unsupported));
  EXPECT_TRUE(unsupported);
  // §6.3's session parameters (KDR, UNENCRYPTED_SRTP, ...): not supported, skipped.
  EXPECT_FALSE(parse_crypto(kLine + " KDR=1", &error, &unsupported));
  EXPECT_TRUE(unsupported);
}

TEST(Sdes, LifetimesWeCanHonour) {
  std::string error;
  for (const char *lifetime : {"|2^31", "|2^48", "|2147483648", "|4294967296"})
    EXPECT_TRUE(parse_crypto(kLine + lifetime, &error)) << lifetime << ": " << error;
  auto a = parse_crypto("3 AES_CM_128_HMAC_SHA1_32 inline:" + kKey30 + "|2^31", &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->tag, 3u);
  EXPECT_EQ(a->key.suite, SrtpSuite::AesCm128HmacSha1_32);
  bool unsupported = false;
  for (const char *lifetime : {"|1000", "|2147483647", "|2^30", "|2^0"}) {
    EXPECT_FALSE(parse_crypto(kLine + lifetime, &error, &unsupported)) << lifetime;
    EXPECT_TRUE(unsupported) << lifetime;
  }
}

TEST(Sdes, TagsAsWritten) {
  std::string error;
  // RFC 4568 §9.1: tag = 1*9DIGIT, zero included.
  auto a = parse_crypto("0 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30, &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->tag, 0u);
  a = parse_crypto("999999999 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30, &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->tag, 999999999u);
  EXPECT_EQ(print_crypto(*a), "999999999 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30);
}

TEST(Sdes, KeyMethodIsCaseInsensitiveSuiteIsNot) {
  // RFC 5234 §2.3: "inline" is an ABNF string, case-insensitive; the suite is
  // a registered token (RFC 4568 §9.2) written as registered.
  std::string error;
  auto a = parse_crypto("1 AES_CM_128_HMAC_SHA1_80 INLINE:" + kKey30, &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(print_crypto(*a), kLine);
  bool unsupported = false;
  EXPECT_FALSE(parse_crypto("1 aes_cm_128_hmac_sha1_80 inline:" + kKey30, &error, &unsupported));
  EXPECT_TRUE(unsupported);
}

TEST(Sdes, PaddingIsOptionalButNotHalf) {
  // 46 and 28 bytes both end in "==" (RFC 4648 §4); some peers send none.
  for (SrtpSuite s : {SrtpSuite::Aes256CmHmacSha1_80, SrtpSuite::AeadAes128Gcm}) {
    SCOPED_TRACE(suite_name(s));
    auto k = CryptoKey::generate(s);
    ASSERT_TRUE(k);
    std::string line = print_crypto({1, *k});
    ASSERT_EQ(line.substr(line.size() - 2), "==");
    std::string error;
    auto half = line.substr(0, line.size() - 1);
    EXPECT_FALSE(parse_crypto(half, &error)) << "one '=' of two";
    while (line.back() == '=') line.pop_back();
    auto back = parse_crypto(line, &error);
    ASSERT_TRUE(back) << error;
    EXPECT_TRUE(back->key == *k);
  }
}

struct CryptoBadLine {
  const char *name;
  std::string value;
  bool unsupported;  // well-formed, but not for us (RFC 4568 §6.1: skip it)
};

class SdesErrors : public ::testing::TestWithParam<CryptoBadLine> {};

TEST_P(SdesErrors, RefusedWithOneLineThatShowsNoKey) {
  const CryptoBadLine &c = GetParam();
  std::string error;
  bool unsupported = !c.unsupported;
  EXPECT_FALSE(parse_crypto(c.value, &error, &unsupported));
  EXPECT_EQ(unsupported, c.unsupported);
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(error.find('\n'), std::string::npos);
  EXPECT_EQ(error.find(kKey30), std::string::npos) << error;
  EXPECT_EQ(error.find("PS1uQCVe"), std::string::npos) << error;
  EXPECT_FALSE(parse_crypto(c.value, nullptr)) << "no error string wanted: still refused";
}

INSTANTIATE_TEST_SUITE_P(
    Sdp, SdesErrors,
    ::testing::ValuesIn(std::vector<CryptoBadLine>{
        {"Empty", "", false},
        {"TagOnly", "1", false},
        {"NoKey", "1 AES_CM_128_HMAC_SHA1_80", false},
        {"TagNotNumber", "x AES_CM_128_HMAC_SHA1_80 inline:" + kKey30, false},
        {"TagTooLong", "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30, false},
        {"TagSigned", "-1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30, false},
        // We answer with the tag as a number: "01" would come back as "1".
        {"TagLeadingZero", "01 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30, true},
        {"UnknownSuite", "1 F8_128_HMAC_SHA1_80 inline:" + kKey30, true},
        {"LowerCaseSuite", "1 aes_cm_128_hmac_sha1_80 inline:" + kKey30, true},
        {"NotInline", "1 AES_CM_128_HMAC_SHA1_80 uri:" + kKey30, false},
        {"KeyTooShort", "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFC", false},
        {"Key27Bytes", "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30.substr(4), false},
        {"KeyEmpty", "1 AES_CM_128_HMAC_SHA1_80 inline:", false},
        {"Key30BytesFor46", "1 AES_256_CM_HMAC_SHA1_80 inline:" + kKey30, false},
        {"Key30BytesFor28", "1 AEAD_AES_128_GCM inline:" + kKey30, false},
        {"KeyTooLongForAnySuite", "1 AES_256_CM_HMAC_SHA1_80 inline:" + kKey30 + kKey30, false},
        {"KeyNotBase64",
         "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFC!!!jcjkpPywjNWhcYD0mXXtxaVBR", false},
        {"KeyLastCharNotBase64", "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30.substr(0, 39) + "!",
         false},
        {"KeyPaddingInside",
         "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFC=nVmcjkpPywjNWhcYD0mXXtxaVBR", false},
        {"KeyTooMuchPadding", "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + "===", false},
        {"Mki", "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + "|1:4", true},
        {"MkiNotNumber", "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + "|1:x", false},
        {"MkiLengthTooLong", "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + "|1:1234", false},
        {"MkiBeforeLifetime", "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + "|1:4|2^31", false},
        {"ShortLifetime", "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + "|2^20", true},
        {"EmptyLifetime", "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + "|", false},
        {"BadLifetime", "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + "|2^x", false},
        {"TwoLifetimes", "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + "|2^31|2^31", false},
        {"TooManyFields", "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + "|1|2|3", false},
        // Neither fits 64 bits; std::stoull threw on the first (a daemon abort).
        {"LifetimeOf20Digits",
         "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + "|99999999999999999999", false},
        {"LifetimeExponentHuge",
         "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + "|2^99999999999999999999999", false},
        {"TwoKeys", "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + ";inline:" + kKey30, true},
        {"SessionParameter", "1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + " UNENCRYPTED_SRTP",
         true},
    }),
    [](const ::testing::TestParamInfo<CryptoBadLine> &info) { return info.param.name; });

TEST(Sdes, MangledLinesNeverThrow) {
  // Every prefix of a line with every optional field, and every byte of it
  // replaced by one that matters to the grammar: refused or parsed, never an
  // exception (a daemon would abort on it). What parses prints back parsable.
  const std::string full =
      "12 AES_256_CM_HMAC_SHA1_80 inline:" + kKey30 + "PS1uQCVeeCFCanVmcjkpPw==|2^48|7:4 KDR=1";
  std::vector<std::string> lines;
  for (size_t n = 0; n <= full.size(); ++n) lines.push_back(full.substr(0, n));
  for (size_t i = 0; i < full.size(); ++i)
    for (char c : std::string("|:;^= \t09Z+/\x7f\0", 15))
      lines.push_back(full.substr(0, i) + c + full.substr(i + 1));
  lines.push_back("1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 + "|" + std::string(200, '9'));
  lines.push_back(std::string(5000, '9') + " AES_CM_128_HMAC_SHA1_80 inline:" + kKey30);
  size_t parsed = 0;
  for (const std::string &line : lines) {
    std::string error;
    bool unsupported = false;
    std::optional<CryptoAttr> a;
    ASSERT_NO_THROW(a = parse_crypto(line, &error, &unsupported)) << line;
    if (!a) {
      EXPECT_FALSE(error.empty()) << line;
      continue;
    }
    ++parsed;
    EXPECT_TRUE(parse_crypto(print_crypto(*a), &error)) << line << ": " << error;
  }
  EXPECT_GT(parsed, 0u) << "some mangled lines are still valid ones";
}

TEST(Sdes, CryptoLinesPerMediaSection) {
  // What offer/answer reads: each m= line's own a=crypto values, as written;
  // a session-level a=crypto is not SDES's (RFC 4568 §4: media level only).
  const std::string sdp =
      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
      "a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:session-level-is-ignored\r\n"
      "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n"
      "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:BBBB\r\n"
      "m=video 4002 RTP/SAVP 96\r\na=rtpmap:96 VP8/90000\r\n"
      "m=video 4004 RTP/SAVP 96\r\na=rtpmap:96 VP8/90000\r\n"
      "a=crypto:3 AEAD_AES_128_GCM inline:CCCC\r\n";
  std::string error;
  auto s = parse(sdp, &error);
  ASSERT_TRUE(s) << error;
  ASSERT_EQ(s->media.size(), 3u);
  ASSERT_EQ(s->media[0].crypto.size(), 2u);
  EXPECT_EQ(s->media[0].crypto[1], "2 AES_CM_128_HMAC_SHA1_32 inline:BBBB");
  EXPECT_TRUE(s->media[1].crypto.empty());
  ASSERT_EQ(s->media[2].crypto.size(), 1u);
  EXPECT_EQ(s->media[2].crypto[0], "3 AEAD_AES_128_GCM inline:CCCC");
}

TEST(Sdes, LogRedactionHidesEveryKeyAndKeepsTheRest) {
  const std::string body =
      "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:" + kKey30 +
      "|2^31\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" + kKey30 +
      "\r\na=crypto:3 AES_CM_128_HMAC_SHA1_80 INLINE:" + kKey30 + "\r\na=sendrecv\r\n";
  const std::string r = portier::log::redact_sdes_keys(body);
  EXPECT_EQ(r.find(kKey30), std::string::npos) << r;
  EXPECT_NE(r.find("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:...|2^31\r\n"), std::string::npos)
      << r;
  EXPECT_NE(r.find("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:...\r\na=crypto:3"),
            std::string::npos)
      << r;
  // The parser takes the method in any case, so the log hides it in any case.
  EXPECT_NE(r.find("a=crypto:3 AES_CM_128_HMAC_SHA1_80 INLINE:...\r\na=sendrecv"),
            std::string::npos)
      << r;
  EXPECT_EQ(portier::log::redact_sdes_keys("no keys here"), "no keys here");
  EXPECT_EQ(portier::log::redact_sdes_keys("inline:"), "inline:...");
}

}  // namespace
