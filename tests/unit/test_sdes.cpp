// a=crypto (RFC 4568 SDES) parsing, printing, keys and their redaction.
#include <gtest/gtest.h>

#include <algorithm>

#include "sip/sdp/sdes.h"

namespace {

using namespace portier::sdp::sdes;

// The key of RFC 4568's examples (§9.1, §8.1): 30 bytes, AES_CM_128's 16 + 14.
constexpr const char *kKey30 = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

TEST(Sdes, ParsesEverySuiteWeRun) {
  for (Suite s : offered_suites()) {
    std::vector<uint8_t> key;
    ASSERT_TRUE(make_key(s, &key));
    EXPECT_EQ(key.size(), info(s).key_len + info(s).salt_len);
    Crypto c{7, s, key};
    const std::string line = print(c);
    std::string error;
    auto back = parse(line, &error);
    ASSERT_TRUE(back) << line << ": " << error;
    EXPECT_EQ(back->tag, 7u);
    EXPECT_EQ(back->suite, s);
    EXPECT_EQ(back->key, key);
  }
}

TEST(Sdes, KeySizesOfTheRfcs) {
  // RFC 4568 §6.2: 128-bit key, 112-bit salt; RFC 6188 §7.1: 256-bit key;
  // RFC 7714 §14.2: AEAD suites use a 96-bit salt.
  EXPECT_EQ(
      info(Suite::aes_cm_128_hmac_sha1_80).key_len + info(Suite::aes_cm_128_hmac_sha1_80).salt_len,
      30u);
  EXPECT_EQ(
      info(Suite::aes_256_cm_hmac_sha1_80).key_len + info(Suite::aes_256_cm_hmac_sha1_80).salt_len,
      46u);
  EXPECT_EQ(info(Suite::aead_aes_128_gcm).key_len + info(Suite::aead_aes_128_gcm).salt_len, 28u);
  EXPECT_EQ(info(Suite::aead_aes_256_gcm).key_len + info(Suite::aead_aes_256_gcm).salt_len, 44u);
  // RFC 4568 §6.2.2: SRTCP keeps the 80-bit tag under the 32-bit suite.
  EXPECT_STREQ(info(Suite::aes_cm_128_hmac_sha1_32).rtp_auth, "hmac-sha1-32");
  EXPECT_STREQ(info(Suite::aes_cm_128_hmac_sha1_32).rtcp_auth, "hmac-sha1-80");
}

TEST(Sdes, OfferOrderPutsAeadFirstAndKeepsTheMandatorySuite) {
  const auto &o = offered_suites();
  ASSERT_EQ(o.size(), 5u);
  EXPECT_EQ(o.front(), Suite::aead_aes_256_gcm);
  EXPECT_NE(std::find(o.begin(), o.end(), Suite::aes_cm_128_hmac_sha1_80), o.end());
}

TEST(Sdes, Rfc4568Examples) {
  std::string error;
  // §9.1's lifetime and MKI form: well-formed, but an MKI we do not use and a
  // 2^20 lifetime we would have to re-key for: an answerer skips the line (§6.1).
  EXPECT_FALSE(
      parse(std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + "|2^20|1:32", &error));
  EXPECT_FALSE(
      parse(std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + "|2^31|1:4", &error));
  EXPECT_NE(error.find("MKI"), std::string::npos) << error;
  EXPECT_FALSE(parse(std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + "|1:4", &error));
  EXPECT_NE(error.find("MKI"), std::string::npos) << error;
  EXPECT_FALSE(parse(std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + "|2^20", &error));
  EXPECT_NE(error.find("lifetime"), std::string::npos) << error;
  // The same key without either: usable.
  auto c = parse(std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->key.size(), 30u);
  EXPECT_EQ(print(*c), std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30);
  // §9.1: several keys need MKIs.
  EXPECT_FALSE(parse(std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 +
                         "|2^20|1:4;inline:" + kKey30 + "|2^20|2:4",
                     &error));
  // §6.3's session parameters (KDR, UNENCRYPTED_SRTP, ...): not supported, skipped.
  EXPECT_FALSE(parse(std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + " KDR=1", &error));
}

TEST(Sdes, LifetimesWeCanHonour) {
  std::string error;
  EXPECT_TRUE(parse(std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + "|2^31", &error))
      << error;
  EXPECT_TRUE(parse(std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + "|2^48", &error))
      << error;
  EXPECT_TRUE(
      parse(std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + "|4294967296", &error))
      << error;
  EXPECT_FALSE(parse(std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + "|1000", &error));
  EXPECT_FALSE(parse(std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + "|2^x", &error));
  EXPECT_FALSE(parse(
      std::string("1 AES_CM_128_HMAC_SHA1_80 inline:") + kKey30 + "|2^99999999999999999999999",
      &error));
}

TEST(Sdes, MalformedLines) {
  std::string error;
  const std::string k = kKey30;
  for (const std::string &bad : std::vector<std::string>{
           std::string(""), std::string("1"), std::string("1 AES_CM_128_HMAC_SHA1_80"),
           "x AES_CM_128_HMAC_SHA1_80 inline:" + k,            // tag not digits
           "1234567890 AES_CM_128_HMAC_SHA1_80 inline:" + k,   // tag of 10 digits
           "1 F8_128_HMAC_SHA1_80 inline:" + k,                // a suite we do not run
           "1 aes_cm_128_hmac_sha1_80 inline:" + k,            // suite names are case-sensitive
           "1 AES_CM_128_HMAC_SHA1_80 uri:" + k,               // not inline
           "1 AES_CM_128_HMAC_SHA1_80 inline:" + k.substr(4),  // 27 bytes: wrong length
           "1 AES_256_CM_HMAC_SHA1_80 inline:" + k,            // 30 bytes for a 46-byte suite
           "1 AEAD_AES_128_GCM inline:" + k,                   // 30 bytes for a 28-byte suite
           "1 AES_CM_128_HMAC_SHA1_80 inline:" + k.substr(0, 39) + "!",  // bad base64
           "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + "|",                // empty lifetime
           "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + "|1:x",             // bad MKI
           "1 AES_CM_128_HMAC_SHA1_80 inline:" + k + "|1|2|3",           // too many fields
       }) {
    EXPECT_FALSE(parse(bad, &error)) << bad;
    EXPECT_FALSE(error.empty()) << bad;
  }
}

TEST(Sdes, UnpaddedBase64IsAccepted) {
  std::vector<uint8_t> key;
  ASSERT_TRUE(make_key(Suite::aes_256_cm_hmac_sha1_80, &key));
  std::string line = print({1, Suite::aes_256_cm_hmac_sha1_80, key});
  ASSERT_EQ(line.back(), '=');  // 46 bytes: padded in what we send
  while (line.back() == '=') line.pop_back();
  std::string error;
  auto c = parse(line, &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->key, key);
}

TEST(Sdes, KeysAreFresh) {
  std::vector<uint8_t> a, b;
  ASSERT_TRUE(make_key(Suite::aes_cm_128_hmac_sha1_80, &a));
  ASSERT_TRUE(make_key(Suite::aes_cm_128_hmac_sha1_80, &b));
  EXPECT_NE(a, b);
}

TEST(Sdes, CryptoValuesPerMediaSection) {
  const std::string sdp =
      "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
      "a=crypto:9 AES_CM_128_HMAC_SHA1_80 inline:session-level-is-ignored\r\n"
      "m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n"
      "a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:BBBB\r\n"
      "m=video 4002 RTP/SAVP 96\n"
      "m=video 4004 RTP/SAVP 96\na=crypto:3 AEAD_AES_128_GCM inline:CCCC\n";
  auto v = crypto_values(sdp);
  ASSERT_EQ(v.size(), 3u);
  ASSERT_EQ(v[0].size(), 2u);
  EXPECT_EQ(v[0][1], "2 AES_CM_128_HMAC_SHA1_32 inline:BBBB");
  EXPECT_TRUE(v[1].empty());
  ASSERT_EQ(v[2].size(), 1u);
  EXPECT_EQ(v[2][0], "3 AEAD_AES_128_GCM inline:CCCC");
}

TEST(Sdes, RedactHidesEveryKeyAndKeepsTheRest) {
  const std::string sdp =
      std::string("m=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:") +
      kKey30 + "|2^31\r\na=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:" + kKey30 +
      "\r\na=sendrecv\r\n";
  const std::string r = redact(sdp);
  EXPECT_EQ(r.find(kKey30), std::string::npos) << r;
  EXPECT_NE(r.find("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:...|2^31\r\n"), std::string::npos)
      << r;
  EXPECT_NE(r.find("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:...\r\na=sendrecv"),
            std::string::npos)
      << r;
  EXPECT_EQ(redact("no keys here"), "no keys here");
  EXPECT_EQ(redact("inline:"), "inline:...");
}

}  // namespace
