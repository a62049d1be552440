// SDES a=crypto lines (RFC 4568) as the relay reads and writes them: the lines
// Linphone and baresip send, the suites of RFC 4568 §6.2, RFC 6188 and RFC 7714,
// and malformed lines from the network, whose errors never show a key.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/log.h"
#include "sip/sdp/crypto_attr.h"

using portier::sdp::CryptoAttr;
using portier::sdp::CryptoKey;
using portier::sdp::kAllSrtpSuites;
using portier::sdp::key_salt_length;
using portier::sdp::parse_crypto;
using portier::sdp::print_crypto;
using portier::sdp::SrtpSuite;
using portier::sdp::suite_name;

namespace {
// 30 bytes of base64 (RFC 4568 §9.1's example key)
constexpr char kKey30[] = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
}  // namespace

TEST(CryptoAttr, Rfc4568Sec9_1ExampleLine) {
  std::string error;
  auto a =
      parse_crypto(std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + "|2^20|1:4", &error);
  // Its lifetime (2^20) and MKI are what the relay refuses: it never re-keys.
  EXPECT_FALSE(a);
  a = parse_crypto(std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30, &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->tag, 1u);
  EXPECT_EQ(a->key.suite, SrtpSuite::AesCm128HmacSha1_80);
  EXPECT_EQ(a->key.size, 30u);
  EXPECT_EQ(print_crypto(*a), std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30);
}

TEST(CryptoAttr, LifetimeOf2To31AndMoreIsAccepted) {
  std::string error;
  auto a =
      parse_crypto(std::string("3 AES_CM_128_HMAC_SHA1_32 inline:") + kKey30 + "|2^31", &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->tag, 3u);
  EXPECT_EQ(a->key.suite, SrtpSuite::AesCm128HmacSha1_32);
}

TEST(CryptoAttr, EverySuiteRoundTripsWithAFreshKey) {
  for (SrtpSuite s : kAllSrtpSuites) {
    SCOPED_TRACE(suite_name(s));
    auto k = CryptoKey::generate(s);
    ASSERT_TRUE(k);
    EXPECT_EQ(k->size, key_salt_length(s));
    CryptoAttr a{7, *k};
    std::string error;
    auto back = parse_crypto(print_crypto(a), &error);
    ASSERT_TRUE(back) << error;
    EXPECT_EQ(back->tag, 7u);
    EXPECT_TRUE(back->key == *k);
  }
}

TEST(CryptoAttr, PaddingIsOptional) {
  // AEAD_AES_128_GCM: 28 bytes, "=" at the end (RFC 7714 §12).
  auto k = CryptoKey::generate(SrtpSuite::AeadAes128Gcm);
  ASSERT_TRUE(k);
  std::string line = print_crypto({1, *k});
  ASSERT_EQ(line.back(), '=');
  line.pop_back();
  std::string error;
  auto back = parse_crypto(line, &error);
  ASSERT_TRUE(back) << error;
  EXPECT_TRUE(back->key == *k);
}

TEST(CryptoAttr, FreshKeysDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    auto k = CryptoKey::generate(SrtpSuite::AesCm128HmacSha1_80);
    ASSERT_TRUE(k);
    EXPECT_TRUE(seen.insert(print_crypto({1, *k})).second);
  }
}

struct CryptoBadLine {
  const char *name;
  std::string value;
  bool unsupported;  // well-formed, but not for the relay (RFC 4568 §6.1: skip it)
};

class CryptoAttrErrors : public ::testing::TestWithParam<CryptoBadLine> {};

TEST_P(CryptoAttrErrors, RefusedWithOneLineThatShowsNoKey) {
  const CryptoBadLine &c = GetParam();
  std::string error;
  bool unsupported = !c.unsupported;
  EXPECT_FALSE(parse_crypto(c.value, &error, &unsupported));
  EXPECT_EQ(unsupported, c.unsupported);
  EXPECT_FALSE(error.empty());
  EXPECT_EQ(error.find('\n'), std::string::npos);
  EXPECT_EQ(error.find(kKey30), std::string::npos) << error;
  EXPECT_EQ(error.find("PS1uQCVe"), std::string::npos) << error;
}

INSTANTIATE_TEST_SUITE_P(
    Sdp, CryptoAttrErrors,
    ::testing::ValuesIn(std::vector<CryptoBadLine>{
        {"Empty", "", false},
        {"NoKey", "1 AES_CM_128_HMAC_SHA1_80", false},
        {"TagNotNumber", std::string("x AES_CM_128_HMAC_SHA1_80 inline:") + kKey30, false},
        {"TagZero", std::string("0 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30, false},
        {"TagTooLong", std::string("1234567890 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30, false},
        {"UnknownSuite", std::string("1 F8_128_HMAC_SHA1_80 inline:") + kKey30, true},
        {"NotInline", std::string("1 AES_CM_128_HMAC_SHA1_80 uri:") + kKey30, false},
        {"KeyTooShort", "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFC", false},
        {"KeyWrongLengthForSuite", std::string("1 AES_256_CM_HMAC_SHA1_80 inline:") + kKey30,
         false},
        {"KeyNotBase64",
         "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFC!!!jcjkpPywjNWhcYD0mXXtxaVBR", false},
        {"Mki", std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + "|1:4", true},
        {"ShortLifetime", std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + "|2^20",
         true},
        {"BadLifetime", std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + "|2^x", false},
        {"TwoKeys", std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + ";inline:" + kKey30,
         true},
        {"SessionParameter",
         std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + " UNENCRYPTED_SRTP", true},
    }),
    [](const ::testing::TestParamInfo<CryptoBadLine> &info) { return info.param.name; });

TEST(CryptoAttr, LogRedactionHidesEveryKeyOfABody) {
  const std::string body =
      std::string("m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") +
      kKey30 + "|2^31\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" + kKey30 + "\r\n";
  const std::string r = portier::log::redact_sdes_keys(body);
  EXPECT_EQ(r.find(kKey30), std::string::npos) << r;
  EXPECT_NE(r.find("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:...|2^31\r\n"), std::string::npos)
      << r;
  EXPECT_NE(r.find("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:...\r\n"), std::string::npos) << r;
}
