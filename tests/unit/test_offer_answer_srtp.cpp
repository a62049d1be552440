// SRTP keyed by SDES (RFC 4568) and rtcp-mux (RFC 5761) in the door's and
// monitors' offer/answer: which suite and tag, whose key, mandatory or best
// effort, against our own offers and the SDP Linphone sends. Golden files:
// after a deliberate change, run with PORTIER_UPDATE_GOLDEN=1 and review the
// diff of tests/unit/sdp/ line by line.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>

#include "common/text_file.h"
#include "sip/sdp/offer_answer.h"
#include "sip/sdp/sdp_rewrite.h"

namespace {

using namespace portier::sdp;

std::string golden(const std::string &name, const std::string *actual = nullptr) {
  const std::string path = std::string(PORTIER_SOURCE_DIR) + "/tests/unit/sdp/" + name;
  if (const char *update = std::getenv("PORTIER_UPDATE_GOLDEN"); actual && update && *update)
    std::ofstream(path, std::ios::binary) << *actual;
  std::string text, error;
  EXPECT_TRUE(portier::read_text_file(std::string(PORTIER_SOURCE_DIR) + "/tests/unit/sdp/" + name,
                                      "golden SDP", &text, &error))
      << error;
  return text;
}

// Keys of a fixed pattern (`seed` tells the streams and sides apart), so the
// SDP is the same every run.
std::vector<CryptoAttr> keys(uint8_t seed) {
  std::vector<CryptoAttr> out;
  unsigned tag = 1;
  for (SrtpSuite s : kAllSrtpSuites) {
    CryptoAttr c{tag, {}};
    c.key.suite = s;
    c.key.size = key_salt_length(s);
    for (size_t j = 0; j < c.key.size; ++j) c.key.bytes[j] = uint8_t(seed + tag * 16 + j);
    out.push_back(c);
    ++tag;
  }
  return out;
}

LocalMedia door(bool mandatory, bool mux = true) {
  LocalMedia m;
  m.address = "192.168.1.30";
  m.session_id = 42;
  LocalStream audio{"audio", 7078, {{"PCMU", 8000, 1, 0, ""}, {"PCMA", 8000, 1, 8, ""}}};
  audio.telephone_event = true;
  audio.crypto = keys(0);
  LocalStream video{"video", 9078, {{"VP8", 90000, 1, 96, ""}}};
  video.direction = "sendonly";
  video.crypto = keys(100);
  for (LocalStream *s : {&audio, &video}) s->srtp_mandatory = mandatory, s->rtcp_mux = mux;
  m.streams = {audio, video};
  return m;
}

LocalMedia monitor(bool mandatory, bool srtp = true) {
  LocalMedia m;
  m.address = "192.168.1.41";
  LocalStream audio{"audio", 5004, {{"PCMU", 8000, 1, 0, ""}, {"PCMA", 8000, 1, 8, ""}}};
  audio.telephone_event = true;
  LocalStream video{"video", 5006, {{"VP8", 90000, 1, 96, ""}}};
  video.direction = "recvonly";
  if (srtp) audio.crypto = keys(50), video.crypto = keys(150);
  for (LocalStream *s : {&audio, &video}) s->srtp_mandatory = mandatory, s->rtcp_mux = true;
  m.streams = {audio, video};
  return m;
}

TEST(OfferAnswerSrtp, MandatoryOfferIsSavpWithEverySuiteAndMux) {
  const std::string text = write_offer(door(true));
  EXPECT_EQ(text, golden("door_srtp_offer.sdp", &text));
  std::string error;
  auto s = parse(text, &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->media[0].protocol, "RTP/SAVP");
  EXPECT_EQ(s->media[1].protocol, "RTP/SAVP") << "one secure profile for both (baresip 1.0)";
  EXPECT_NE(text.find("a=rtcp-fb:96 nack pli"), std::string::npos) << "keyframe requests kept";
  EXPECT_TRUE(s->media[0].rtcp_mux);
  const auto &lines = s->media[0].crypto;
  ASSERT_EQ(lines.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    auto c = parse_crypto(lines[i], &error);
    ASSERT_TRUE(c) << lines[i] << ": " << error;
    EXPECT_EQ(c->tag, i + 1);
    EXPECT_EQ(c->key.suite, kAllSrtpSuites[i]);
  }
}

TEST(OfferAnswerSrtp, OptionalOfferIsAvpWithCrypto) {
  // What Linphone does for media_encryption=srtp without mandatory: RTP/AVP
  // with a=crypto, so a plain peer still answers.
  const std::string text = write_offer(door(false));
  EXPECT_NE(text.find("m=audio 7078 RTP/AVP "), std::string::npos) << text;
  EXPECT_NE(text.find("m=video 9078 RTP/AVP "), std::string::npos) << text;
  EXPECT_NE(text.find("a=crypto:1 AEAD_AES_256_GCM inline:"), std::string::npos) << text;
}

TEST(OfferAnswerSrtp, MonitorTakesTheFirstSuiteWithItsOwnKey) {
  std::string error;
  const LocalMedia ours = monitor(true);
  auto ans = answer_offer(write_offer(door(true)), ours, &error);
  ASSERT_TRUE(ans) << error;
  EXPECT_EQ(ans->sdp, golden("monitor_srtp_answer.sdp", &ans->sdp));
  ASSERT_EQ(ans->streams.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const Agreed &a = ans->streams[i];
    ASSERT_TRUE(a.active);
    ASSERT_TRUE(a.srtp);
    EXPECT_EQ(a.srtp->send_key.suite, SrtpSuite::AeadAes256Gcm)
        << "the offerer's first (RFC 4568 §7.1.1)";
    EXPECT_TRUE(a.srtp->send_key == ours.streams[i].crypto[0].key) << "our own key";
    EXPECT_TRUE(a.srtp->recv_key == door(true).streams[i].crypto[0].key) << "the door's key";
    EXPECT_TRUE(a.rtcp_mux);
    EXPECT_EQ(a.remote_rtcp, a.remote_rtp) << "RTCP on the RTP port (RFC 5761 §4)";
  }
  // The door applies that answer: it sends under its key of tag 1, hears the monitor's.
  auto agreed = apply_answer(door(true), ans->sdp, &error);
  ASSERT_TRUE(agreed) << error;
  for (size_t i = 0; i < 2; ++i) {
    const Agreed &a = (*agreed)[i];
    ASSERT_TRUE(a.srtp);
    EXPECT_TRUE(a.srtp->send_key == door(true).streams[i].crypto[0].key);
    EXPECT_TRUE(a.srtp->recv_key == ours.streams[i].crypto[0].key);
    EXPECT_TRUE(a.rtcp_mux);
    EXPECT_EQ(a.remote_rtcp, a.remote_rtp);
  }
}

TEST(OfferAnswerSrtp, DoorAnswersLinphonesBestEffortOffer) {
  std::string error;
  auto ans = answer_offer(golden("linphone_sdes_offer.sdp"), door(false), &error);
  ASSERT_TRUE(ans) << error;
  // Linphone's order decides: its first line, AES_CM_128_HMAC_SHA1_80, tag 1.
  EXPECT_NE(ans->sdp.find("m=audio 7078 RTP/AVP 0 97\r\n"), std::string::npos) << ans->sdp;
  auto answer = parse(ans->sdp, &error);
  ASSERT_TRUE(answer) << error;
  ASSERT_EQ(answer->media.size(), 2u);
  const auto &lines = answer->media[0].crypto;
  ASSERT_EQ(lines.size(), 1u) << "one a=crypto per answered stream (RFC 4568 §7.1.1)";
  auto c = parse_crypto(lines[0], &error);
  ASSERT_TRUE(c) << error;
  EXPECT_EQ(c->tag, 1u);
  EXPECT_EQ(c->key.suite, SrtpSuite::AesCm128HmacSha1_80);
  EXPECT_TRUE(c->key == door(false).streams[0].crypto[3].key) << "our AES_CM_128_HMAC_SHA1_80 key";
  ASSERT_TRUE(ans->streams[0].srtp);
  EXPECT_EQ(ans->streams[0].srtp->recv_key.size, 30u);
  EXPECT_TRUE(ans->streams[0].rtcp_mux) << "Linphone offers a=rtcp-mux";
  EXPECT_NE(ans->sdp.find("a=rtcp-mux"), std::string::npos);
}

TEST(OfferAnswerSrtp, LinesWeCannotHonourAreSkipped) {
  const std::string offer =
      "v=0\r\no=p 1 1 IN IP4 192.168.1.41\r\ns=-\r\nc=IN IP4 192.168.1.41\r\nt=0 0\r\n"
      "m=audio 5004 RTP/SAVP 0\r\n"
      "a=crypto:1 F8_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"
      "a=crypto:2 AES_CM_128_HMAC_SHA1_80 "
      "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32\r\n"
      "a=crypto:3 AES_CM_128_HMAC_SHA1_80 inline:not*base64\r\n"
      "a=crypto:4 AES_CM_128_HMAC_SHA1_32 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n";
  std::string error;
  auto ans = answer_offer(offer, door(true), &error);
  ASSERT_TRUE(ans) << error;
  EXPECT_NE(ans->sdp.find("m=audio 7078 RTP/SAVP 0\r\n"), std::string::npos) << ans->sdp;
  EXPECT_NE(ans->sdp.find("a=crypto:4 AES_CM_128_HMAC_SHA1_32 inline:"), std::string::npos)
      << ans->sdp;
  ASSERT_TRUE(ans->streams[0].srtp);
  EXPECT_EQ(ans->streams[0].srtp->send_key.suite, SrtpSuite::AesCm128HmacSha1_32);
}

TEST(OfferAnswerSrtp, MandatoryRefusesAPlainOffer) {
  std::string error;
  const std::string plain = write_offer(door(false));  // AVP, but with keys: take them away
  LocalMedia no_keys = door(false);
  for (auto &s : no_keys.streams) s.crypto.clear();
  EXPECT_FALSE(answer_offer(write_offer(no_keys), monitor(true), &error));
  EXPECT_NE(error.find("SRTP is mandatory"), std::string::npos) << error;
  // A best-effort offer (AVP with a=crypto) gives it keys: taken.
  auto ans = answer_offer(plain, monitor(true), &error);
  ASSERT_TRUE(ans) << error;
  EXPECT_TRUE(ans->streams[0].srtp);
}

TEST(OfferAnswerSrtp, OptionalAnswersAPlainOfferPlainly) {
  LocalMedia no_keys = door(false, false);
  for (auto &s : no_keys.streams) s.crypto.clear();
  std::string error;
  auto ans = answer_offer(write_offer(no_keys), monitor(false), &error);
  ASSERT_TRUE(ans) << error;
  EXPECT_EQ(ans->sdp.find("a=crypto"), std::string::npos) << ans->sdp;
  EXPECT_EQ(ans->sdp.find("a=rtcp-mux"), std::string::npos) << "not offered: not answered";
  EXPECT_FALSE(ans->streams[0].srtp);
  EXPECT_FALSE(ans->streams[0].rtcp_mux);
  EXPECT_EQ(ans->streams[0].remote_rtcp, ans->streams[0].remote_rtp + 1);
}

TEST(OfferAnswerSrtp, WithoutSrtpASavpOfferIsRefused) {
  std::string error;
  EXPECT_FALSE(answer_offer(write_offer(door(true)), monitor(false, false), &error));
}

TEST(OfferAnswerSrtp, AnswersToOurOffer) {
  std::string error;
  const std::string head =
      "v=0\r\no=m 1 1 IN IP4 192.168.1.41\r\ns=-\r\nc=IN IP4 192.168.1.41\r\nt=0 0\r\n";
  // Plain answer: refused where SRTP is mandatory, taken where optional.
  const std::string plain =
      head + "m=audio 5004 RTP/AVP 0\r\na=sendrecv\r\nm=video 5006 RTP/AVP 96\r\na=recvonly\r\n";
  EXPECT_FALSE(apply_answer(door(true), plain, &error));
  EXPECT_NE(error.find("SRTP is mandatory"), std::string::npos) << error;
  auto agreed = apply_answer(door(false), plain, &error);
  ASSERT_TRUE(agreed) << error;
  EXPECT_FALSE((*agreed)[0].srtp);
  EXPECT_FALSE((*agreed)[0].rtcp_mux);
  EXPECT_EQ((*agreed)[0].remote_rtcp, 5005) << "no mux: RTCP on port + 1";
  // A tag we did not offer with that suite: the answer is unusable (RFC 4568
  // §7.1.2). baresip 1.0's early answer does this (tag 1 with the suite we
  // offered as tag 4), and what it then decrypts with is not what it said.
  const std::string wrong_tag = head +
                                "m=audio 5004 RTP/SAVP 0\r\na=crypto:2 AES_CM_128_HMAC_SHA1_80 "
                                "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n"
                                "m=video 5006 RTP/SAVP 96\r\na=recvonly\r\n";
  EXPECT_FALSE(apply_answer(door(true), wrong_tag, &error));
  EXPECT_NE(error.find("tag 2"), std::string::npos) << error;
  // A malformed key: unusable too.
  const std::string bad_key = head +
                              "m=audio 5004 RTP/SAVP 0\r\na=crypto:4 AES_CM_128_HMAC_SHA1_80 "
                              "inline:short\r\nm=video 5006 RTP/SAVP 96\r\n";
  EXPECT_FALSE(apply_answer(door(true), bad_key, &error));
}

}  // namespace
