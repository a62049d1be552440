// The relay's SDP rewriter against golden SDPs from the peers we meet (Linphone,
// sipp, a monitor's 183), compared byte for byte with what sofia-sip prints.
// To regenerate the expected files after a deliberate change, run with
// PORTIER_UPDATE_GOLDEN=1 and review the diff of tests/unit/sdp/ line by line.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <ostream>
#include <string>
#include <vector>

#include "common/text_file.h"
#include "sip/sdp/sdp_rewrite.h"

using portier::sdp::Media;
using portier::sdp::parse;
using portier::sdp::Payload;
using portier::sdp::RelayEndpoint;
using portier::sdp::restore_rejected_lines;
using portier::sdp::rewrite;
using portier::sdp::Rewriter;
using portier::sdp::Session;

namespace {

std::string sdp_path(const std::string &name) {
  return std::string(PORTIER_SOURCE_DIR) + "/tests/unit/sdp/" + name;
}

std::string read_sdp(const std::string &name) {
  std::string text, error;
  EXPECT_TRUE(portier::read_text_file(sdp_path(name), "golden SDP", &text, &error)) << error;
  return text;
}

std::string lf_only(std::string text) {
  std::string out;
  for (char c : text) {
    if (c != '\r') out += c;
  }
  return out;
}

bool same_payloads(const std::vector<Payload> &a, const std::vector<Payload> &b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].pt != b[i].pt || a[i].encoding != b[i].encoding ||
        a[i].clock_rate != b[i].clock_rate) {
      return false;
    }
  }
  return true;
}

std::string describe(const std::vector<Payload> &payloads) {
  std::string out;
  for (const Payload &p : payloads) {
    out += std::to_string(p.pt) + "=" + p.encoding + "/" + std::to_string(p.clock_rate) + " ";
  }
  return out;
}

Session parse_ok(const std::string &text) {
  std::string error;
  auto s = parse(text, &error);
  EXPECT_TRUE(s) << error;
  return s ? *s : Session{};
}

// A minimal offer around one media description, for the small cases.
std::string offer_with(const std::string &media_lines, const std::string &session_lines = "") {
  return "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n" +
         session_lines + media_lines;
}

const RelayEndpoint kRelayAudio{"10.0.0.1", 40000, 40001};
const RelayEndpoint kRelayVideo{"10.0.0.1", 40002, 40003};

// The relay's own keys for a branch (fixed here so that the output is golden).
RelayEndpoint srtp_endpoint(RelayEndpoint e, std::vector<std::string> crypto) {
  e.crypto = std::move(crypto);
  e.rtcp_mux = true;
  return e;
}
const RelayEndpoint kRelaySrtpAudio = srtp_endpoint(
    kRelayAudio, {"1 AES_CM_128_HMAC_SHA1_80 inline:QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
                  "2 AES_CM_128_HMAC_SHA1_32 inline:QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJC"});
const RelayEndpoint kRelaySrtpVideo = srtp_endpoint(
    kRelayVideo, {"1 AEAD_AES_128_GCM inline:Q0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0NDQw=="});

}  // namespace

// ---------------------------------------------------------------------------
// Golden files: input, relay endpoints, expected output.

struct GoldenCase {
  const char *name;
  const char *input;
  std::vector<RelayEndpoint> relay;
  const char *expected;
};

// gtest names the case instead of dumping its bytes.
void PrintTo(const GoldenCase &c, std::ostream *os) { *os << c.name; }

class SdpGolden : public ::testing::TestWithParam<GoldenCase> {};

TEST_P(SdpGolden, RewriteMatchesExpectedFileAndParsesBackToTheRelay) {
  const GoldenCase &c = GetParam();
  const std::string input = read_sdp(c.input);
  std::string error;
  auto out = rewrite(input, c.relay, &error);
  ASSERT_TRUE(out) << error;
  if (const char *update = std::getenv("PORTIER_UPDATE_GOLDEN"); update && *update) {
    std::ofstream(sdp_path(c.expected), std::ios::binary) << *out;
  }
  EXPECT_EQ(*out, read_sdp(c.expected)) << "rewritten:\n" << *out;

  const Session before = parse_ok(input);
  const Session after = parse_ok(*out);
  // RFC 3264 §6: the answer has exactly as many m= lines as the offer, so the
  // relay never adds or drops one.
  ASSERT_EQ(after.media.size(), before.media.size());
  for (size_t i = 0; i < after.media.size(); ++i) {
    SCOPED_TRACE("m= line " + std::to_string(i + 1));
    const Media &b = before.media[i];
    const Media &a = after.media[i];
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.protocol, b.protocol);
    EXPECT_EQ(a.direction, b.direction);
    EXPECT_TRUE(same_payloads(a.payloads, b.payloads))
        << describe(a.payloads) << "vs " << describe(b.payloads);
    if (b.port == 0) {
      EXPECT_EQ(a.port, 0);  // RFC 3264 §6: rejected stays rejected
      continue;
    }
    const RelayEndpoint &r = c.relay[i];
    EXPECT_EQ(a.address, r.address);
    EXPECT_EQ(a.port, r.rtp_port);
    EXPECT_EQ(a.rtcp_port, r.rtcp_port ? r.rtcp_port : r.rtp_port + 1);
    EXPECT_EQ(a.rtcp_address, r.address);
    // RFC 5761 §5.1.1: mux where the relay offers or accepts it, else declined.
    EXPECT_EQ(a.rtcp_mux, r.rtcp_mux);
    // RFC 4568: the relay's own a=crypto lines, or the ones written.
    EXPECT_EQ(a.crypto, r.crypto ? *r.crypto : b.crypto);
  }
  for (const char *gone : {"a=candidate", "a=ice-", "a=end-of-candidates", "a=remote-candidates"}) {
    EXPECT_EQ(out->find(gone), std::string::npos) << gone;
  }
  // Rewriting what we wrote changes nothing: a re-INVITE through the relay
  // with the same ports keeps the same body (RFC 3264 §8).
  auto again = rewrite(*out, c.relay, &error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(*again, *out);
}

INSTANTIATE_TEST_SUITE_P(
    Sdp, SdpGolden,
    ::testing::ValuesIn(std::vector<GoldenCase>{
        // Session c=, a=rtcp, a=rtcp-mux, ICE candidates, a=rtcp-fb, Opus/PCMU/PCMA
        // and two telephone-events + VP8.
        {"LinphoneOffer",
         "linphone_offer.sdp",
         {kRelayAudio, kRelayVideo},
         "linphone_offer.relayed.sdp"},
        {"SippMinimalOffer", "sipp_offer.sdp", {{"10.0.0.1", 40000, 0}}, "sipp_offer.relayed.sdp"},
        // RFC 3605 §2.1: an RTCP port that is not RTP + 1 needs a=rtcp.
        {"SippOfferRtcpNotAdjacent",
         "sipp_offer.sdp",
         {{"10.0.0.1", 40000, 40011}},
         "sipp_offer.rtcp_added.sdp"},
        // A monitor's 183: static PTs without rtpmap, recvonly video, b=TIAS.
        {"MonitorAnswerRecvonlyVideo",
         "monitor_answer_recvonly.sdp",
         {{"10.0.0.1", 40100, 40101}, {"10.0.0.1", 40102, 40103}},
         "monitor_answer_recvonly.relayed.sdp"},
        // RFC 4566 §5.7: media c= lines override the session one.
        {"MediaLevelConnection",
         "media_level_c.sdp",
         {kRelayAudio, {"10.0.0.2", 40002, 40003}},
         "media_level_c.relayed.sdp"},
        {"Ipv6",
         "ipv6.sdp",
         {{"2001:db8::1", 30000, 30001}, {"2001:db8::1", 30002, 30003}},
         "ipv6.relayed.sdp"},
        // RFC 3264 §6: port 0 stays 0 and its endpoint is ignored.
        {"RejectedVideo", "rejected_video.sdp", {kRelayAudio, {}}, "rejected_video.relayed.sdp"},
        // RFC 3605 §2.1 example: a=rtcp with its own address.
        {"RtcpWithAddress",
         "rtcp_with_address.sdp",
         {{"10.0.0.1", 40000, 40005}},
         "rtcp_with_address.relayed.sdp"},
        // RTP/AVPF: sofia-sip keeps a=rtpmap as plain attributes, in place.
        {"AvpfOffer", "avpf_offer.sdp", {kRelayAudio, kRelayVideo}, "avpf_offer.relayed.sdp"},
        // Two relay addresses and no media c=: the second stream gets its own.
        // RFC 4568 and RFC 5761: SAVP/SAVPF with a=crypto and a=rtcp-mux; the
        // relay's keys replace the door's, mux is offered on.
        {"LinphoneSrtpOfferRelayKeys",
         "linphone_srtp_offer.sdp",
         {kRelaySrtpAudio, kRelaySrtpVideo},
         "linphone_srtp_offer.relayed.sdp"},
        // encryption = passthrough: the keys stay as written, mux is declined.
        {"LinphoneSrtpOfferPassthrough",
         "linphone_srtp_offer.sdp",
         {kRelayAudio, kRelayVideo},
         "linphone_srtp_offer.passthrough.sdp"},
        {"AvpfOfferTwoRelayAddresses",
         "avpf_offer.sdp",
         {kRelayAudio, {"10.0.0.2", 40002, 40003}},
         "avpf_offer.two_addresses.sdp"},
    }),
    [](const ::testing::TestParamInfo<GoldenCase> &info) { return info.param.name; });

// ---------------------------------------------------------------------------
// parse()

TEST(SdpParse, LinphoneOfferMediaPayloadsAndRtcp) {
  const Session s = parse_ok(read_sdp("linphone_offer.sdp"));
  ASSERT_EQ(s.media.size(), 2u);
  const Media &audio = s.media[0];
  EXPECT_EQ(audio.type, "audio");
  EXPECT_EQ(audio.protocol, "RTP/AVP");
  EXPECT_EQ(audio.address, "192.168.1.30");  // from the session c= (RFC 4566 §5.7)
  EXPECT_EQ(audio.port, 7078);
  EXPECT_EQ(audio.rtcp_port, 7079);
  EXPECT_EQ(audio.rtcp_address, "192.168.1.30");
  EXPECT_TRUE(audio.rtcp_mux);
  EXPECT_EQ(audio.direction, "sendrecv");
  EXPECT_TRUE(same_payloads(audio.payloads, {{96, "opus", 48000},
                                             {0, "PCMU", 8000},
                                             {8, "PCMA", 8000},
                                             {101, "telephone-event", 48000},
                                             {97, "telephone-event", 8000}}))
      << describe(audio.payloads);
  const Media &video = s.media[1];
  EXPECT_EQ(video.type, "video");
  EXPECT_EQ(video.port, 9078);
  EXPECT_EQ(video.rtcp_port, 9079);
  EXPECT_TRUE(same_payloads(video.payloads, {{96, "VP8", 90000}})) << describe(video.payloads);
}

// RFC 3551 §6: static payload types need no a=rtpmap, under every RTP profile
// (sofia-sip fills them in for RTP/AVP and RTP/SAVP, we do for the others).
class SdpStaticPayloads : public ::testing::TestWithParam<const char *> {};

TEST_P(SdpStaticPayloads, Rfc3551Sec6TableWithoutRtpmap) {
  const Session s =
      parse_ok(offer_with(std::string("m=audio 5000 ") + GetParam() + " 0 3 4 8 9 13 18 96\r\n"));
  ASSERT_EQ(s.media.size(), 1u);
  EXPECT_TRUE(same_payloads(s.media[0].payloads, {{0, "PCMU", 8000},
                                                  {3, "GSM", 8000},
                                                  {4, "G723", 8000},
                                                  {8, "PCMA", 8000},
                                                  {9, "G722", 8000},  // 8000 by RFC 3551 §4.5.2
                                                  {13, "CN", 8000},
                                                  {18, "G729", 8000},
                                                  {96, "", 0}}))  // dynamic, no rtpmap
      << describe(s.media[0].payloads);
}

INSTANTIATE_TEST_SUITE_P(Sdp, SdpStaticPayloads,
                         ::testing::Values("RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF",
                                           "UDP/TLS/RTP/SAVPF"));

TEST(SdpParse, RtpmapOverridesStaticAndMapsDynamicUnderAvpf) {
  const Session s = parse_ok(offer_with(
      "m=video 5000 RTP/AVPF 97 96 34\r\na=rtpmap:96 H264/90000\r\na=rtpmap:97 VP8/90000\r\n"
      "a=rtpmap:98 H265/90000\r\n"));
  ASSERT_EQ(s.media.size(), 1u);
  // The map for 98, which the m= line does not list, means nothing.
  EXPECT_TRUE(same_payloads(s.media[0].payloads,
                            {{97, "VP8", 90000}, {96, "H264", 90000}, {34, "H263", 90000}}))
      << describe(s.media[0].payloads);
}

TEST(SdpParse, NonRtpMediaHasNoPayloads) {
  const Session s =
      parse_ok(offer_with("m=image 5000 udptl t38\r\nm=application 5002 UDP/BFCP *\r\n"));
  ASSERT_EQ(s.media.size(), 2u);
  EXPECT_EQ(s.media[0].type, "image");
  EXPECT_TRUE(s.media[0].payloads.empty());
  EXPECT_EQ(s.media[1].protocol, "UDP/BFCP");
}

struct DirectionCase {
  const char *name;
  const char *session_attribute;  // "" for none
  const char *media_attribute;    // "" for none
  const char *expected;
};

// gtest names the case instead of dumping its bytes.
void PrintTo(const DirectionCase &c, std::ostream *os) { *os << c.name; }

class SdpDirection : public ::testing::TestWithParam<DirectionCase> {};

// RFC 4566 §6 and RFC 3264 §5.1: sendrecv by default; a session-level direction
// applies to every media that has none of its own.
TEST_P(SdpDirection, Rfc4566Sec6MediaThenSessionThenSendrecv) {
  const DirectionCase &c = GetParam();
  std::string session =
      *c.session_attribute ? std::string("a=") + c.session_attribute + "\r\n" : "";
  std::string media = "m=audio 5000 RTP/AVP 0\r\n";
  if (*c.media_attribute) media += std::string("a=") + c.media_attribute + "\r\n";
  const Session s = parse_ok(offer_with(media, session));
  ASSERT_EQ(s.media.size(), 1u);
  EXPECT_EQ(s.media[0].direction, c.expected);
}

INSTANTIATE_TEST_SUITE_P(Sdp, SdpDirection,
                         ::testing::ValuesIn(std::vector<DirectionCase>{
                             {"Default", "", "", "sendrecv"},
                             {"MediaRecvonly", "", "recvonly", "recvonly"},
                             {"SessionSendonlyInherited", "sendonly", "", "sendonly"},
                             {"MediaOverridesSession", "sendonly", "recvonly", "recvonly"},
                             {"MediaInactive", "", "inactive", "inactive"},
                             {"SessionInactiveMediaSendrecv", "inactive", "sendrecv", "sendrecv"},
                         }),
                         [](const ::testing::TestParamInfo<DirectionCase> &info) {
                           return info.param.name;
                         });

TEST(SdpParse, MonitorAnswerRecvonlyVideoAndStaticAudio) {
  const Session s = parse_ok(read_sdp("monitor_answer_recvonly.sdp"));
  ASSERT_EQ(s.media.size(), 2u);
  EXPECT_EQ(s.media[0].direction, "sendrecv");
  EXPECT_TRUE(same_payloads(s.media[0].payloads,
                            {{0, "PCMU", 8000}, {8, "PCMA", 8000}, {101, "telephone-event", 8000}}))
      << describe(s.media[0].payloads);
  EXPECT_EQ(s.media[1].direction, "recvonly");
  EXPECT_FALSE(s.media[1].rtcp_mux);
  EXPECT_EQ(s.media[1].rtcp_port, 5007);  // RFC 3550 §11: RTP port + 1
}

TEST(SdpParse, Rfc4566Sec5_7MediaConnectionOverridesSession) {
  const Session s = parse_ok(read_sdp("media_level_c.sdp"));
  ASSERT_EQ(s.media.size(), 2u);
  EXPECT_EQ(s.media[0].address, "198.51.100.2");
  EXPECT_EQ(s.media[0].rtcp_address, "198.51.100.2");
  EXPECT_EQ(s.media[1].address, "198.51.100.3");
  EXPECT_TRUE(same_payloads(s.media[1].payloads, {{31, "H261", 90000}}));
}

TEST(SdpParse, Rfc3605Sec2_1RtcpWithAddress) {
  const Session s = parse_ok(read_sdp("rtcp_with_address.sdp"));
  ASSERT_EQ(s.media.size(), 1u);
  EXPECT_EQ(s.media[0].address, "192.0.2.10");
  EXPECT_EQ(s.media[0].port, 49170);
  EXPECT_EQ(s.media[0].rtcp_port, 53020);
  EXPECT_EQ(s.media[0].rtcp_address, "126.16.64.4");
}

TEST(SdpParse, Ipv6Addresses) {
  const Session s = parse_ok(read_sdp("ipv6.sdp"));
  ASSERT_EQ(s.media.size(), 2u);
  EXPECT_EQ(s.media[0].address, "2001:db8::10");
  EXPECT_EQ(s.media[0].rtcp_port, 49171);
  EXPECT_EQ(s.media[0].rtcp_address, "2001:db8::10");
  EXPECT_TRUE(same_payloads(s.media[0].payloads,
                            {{9, "G722", 8000}, {0, "PCMU", 8000}, {8, "PCMA", 8000}}));
}

TEST(SdpParse, Rfc3264Sec6RejectedStreamHasPortZero) {
  const Session s = parse_ok(read_sdp("rejected_video.sdp"));
  ASSERT_EQ(s.media.size(), 2u);
  EXPECT_EQ(s.media[0].port, 8000);
  EXPECT_EQ(s.media[1].port, 0);
  EXPECT_EQ(s.media[1].rtcp_port, 0);
  EXPECT_TRUE(same_payloads(s.media[1].payloads, {{96, "VP8", 90000}}));
}

TEST(SdpParse, BareLineFeedsAreAccepted) {
  const Session s = parse_ok(lf_only(read_sdp("linphone_offer.sdp")));
  ASSERT_EQ(s.media.size(), 2u);
  EXPECT_EQ(s.media[1].payloads.size(), 1u);
}

// ---------------------------------------------------------------------------
// Errors: one line each, the same from parse() and rewrite(), never a crash.

struct ErrorCase {
  const char *name;
  std::string text;
  const char *expected;        // part of the message
  const char *file = nullptr;  // read the text from this golden file instead
};

// gtest names the case instead of dumping its bytes.
void PrintTo(const ErrorCase &c, std::ostream *os) { *os << c.name; }

class SdpErrors : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(SdpErrors, ParseAndRewriteRefuseWithOneLine) {
  const ErrorCase &c = GetParam();
  const std::string text = c.file ? read_sdp(c.file) : c.text;
  std::string parse_error, rewrite_error;
  EXPECT_FALSE(parse(text, &parse_error));
  EXPECT_NE(parse_error.find(c.expected), std::string::npos) << parse_error;
  EXPECT_EQ(parse_error.find_first_of("\r\n"), std::string::npos) << parse_error;
  for (unsigned char ch : parse_error) EXPECT_TRUE(ch >= 0x20 && ch < 0x7f) << parse_error;
  EXPECT_FALSE(rewrite(text, {kRelayAudio, kRelayVideo}, &rewrite_error));
  EXPECT_EQ(rewrite_error, parse_error);
  EXPECT_FALSE(parse(text, nullptr));  // the error is optional
}

INSTANTIATE_TEST_SUITE_P(
    Sdp, SdpErrors,
    ::testing::ValuesIn(std::vector<ErrorCase>{
        // RFC 4566 §5: a c= on the session or on every media.
        {"NoConnectionAnywhere", "", "No c=", "no_connection.sdp"},
        {"Empty", "", "bad SDP message"},
        {"NotSdp", "hello world", "not a <type>=<value> line"},
        {"HttpResponse", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "not a <type>=<value>"},
        {"BinaryGarbage", std::string("\x01\xff\xfe=\x80\x7f\r\n\x1b[2J", 11),
         "not a <type>=<value>"},
        {"BinaryTypeLetter", std::string("\xff=\x80\r\n", 5), "unknown line type \"?=\""},
        {"NulByte", std::string("v=0\r\no=- 1 1 IN IP4 1.2.3.4\0\r\n", 30), "NUL byte"},
        {"VersionOnly", "v=0\r\n", "No o= present"},
        {"OriginWithTtl",
         "v=0\r\no=- 1 1 IN IP4 192.0.2.1/127\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n",
         "o= has no plain address"},
        {"WrongVersion", "v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nc=IN IP4 1.2.3.4\r\nt=0 0\r\n",
         "bad SDP message"},
        {"PortOutOfRange", offer_with("m=audio 70000 RTP/AVP 0\r\n"), "port 70000 is out of range"},
        {"PortNegative", offer_with("m=audio -1 RTP/AVP 0\r\n"), "SDP line 6: not \"m=<media>"},
        // The Debian sofia-sip allocates without end on a format (or a stray byte in
        // the protocol) that does not start with a token character.
        {"FormatNotAToken", offer_with("m=audio 5000 X /\r\n"), "of tokens"},
        {"StrayByteInProtocol", offer_with("m=video 5000 RT\xff/AVPF 97\r\n"), "RT?/AVPF"},
        {"PortCount", offer_with("m=video 49170/2 RTP/AVP 31\r\n"), "port count"},
        {"NoFormats", offer_with("m=audio 5000 RTP/AVP\r\n"), "no media formats"},
        {"PayloadTypeTooLarge", offer_with("m=audio 5000 RTP/AVP 128\r\n"), "invalid format"},
        {"AvpfPayloadTypeNotANumber", offer_with("m=audio 5000 RTP/AVPF opus\r\n"),
         "is not a number from 0 to 127"},
        {"RtpmapWithoutClockRate", offer_with("m=audio 5000 RTP/AVP 96\r\na=rtpmap:96 opus\r\n"),
         "clock rate"},
        {"RtpmapSignedClockRate", offer_with("m=audio 5000 RTP/AVP 96\r\na=rtpmap:96 +8000\r\n"),
         "clock rate"},
        {"AvpfRtpmapWithoutClockRate",
         offer_with("m=audio 5000 RTP/AVPF 96\r\na=rtpmap:96 opus\r\n"), "bad a=rtpmap:96 opus"},
        {"AvpfRtpmapHugeClockRate",
         offer_with("m=audio 5000 RTP/AVPF 96\r\na=rtpmap:96 opus/99999999999\r\n"),
         "bad a=rtpmap"},
        {"RtcpNotANumber", offer_with("m=audio 5000 RTP/AVP 0\r\na=rtcp:abc\r\n"),
         "bad a=rtcp:abc"},
        {"RtcpPortZero", offer_with("m=audio 5000 RTP/AVP 0\r\na=rtcp:0\r\n"), "bad a=rtcp:0"},
        {"RtcpPortTooLarge", offer_with("m=audio 5000 RTP/AVP 0\r\na=rtcp:65536\r\n"),
         "bad a=rtcp"},
        {"RtcpAddressMissing", offer_with("m=audio 5000 RTP/AVP 0\r\na=rtcp:5001 IN IP4\r\n"),
         "bad a=rtcp"},
        {"TwoRtcp", offer_with("m=audio 5000 RTP/AVP 0\r\na=rtcp:5001\r\na=rtcp:5003\r\n"),
         "more than one a=rtcp"},
        {"NoRoomForRtcp", offer_with("m=audio 65535 RTP/AVP 0\r\n"), "port 65535"},
        // RFC 4566 §5: an unknown type letter voids the whole description; sofia-sip
        // would skip it inside a media description.
        {"UnknownLineInMedia", offer_with("m=audio 5000 RTP/AVP 0\r\nx=whatever\r\n"),
         "SDP line 7: unknown line type \"x=\""},
        {"SessionLineInMedia", offer_with("m=audio 5000 RTP/AVP 0\r\ns=again\r\n"),
         "not allowed inside a media description"},
        // sofia-sip stops at a whitespace-only line and would drop the video.
        {"BlankLineBeforeVideo",
         offer_with("m=audio 5000 RTP/AVP 0\r\n \r\nm=video 5002 RTP/AVP 31\r\n"),
         "SDP line 7: blank line"},
        {"TwoSessionConnections",
         offer_with("m=audio 5000 RTP/AVP 0\r\n", "c=IN IP4 192.0.2.2\r\n"),
         "second session-level c="},
        {"UnknownAddressType", offer_with("m=audio 5000 RTP/AVP 0\r\nc=IN IPX foo\r\n"),
         "unknown IN address type"},
    }),
    [](const ::testing::TestParamInfo<ErrorCase> &info) { return info.param.name; });

// ---------------------------------------------------------------------------
// rewrite(): endpoints and the details the golden files do not spell out.

TEST(SdpRewrite, Rfc3264Sec6EndpointCountMustMatchMediaLines) {
  const std::string offer = read_sdp("linphone_offer.sdp");
  for (const auto &relay : std::vector<std::vector<RelayEndpoint>>{
           {}, {kRelayAudio}, {kRelayAudio, kRelayVideo, kRelayVideo}}) {
    std::string error;
    EXPECT_FALSE(rewrite(offer, relay, &error));
    EXPECT_NE(
        error.find("SDP has 2 m= lines but " + std::to_string(relay.size()) + " relay endpoints"),
        std::string::npos)
        << error;
  }
}

TEST(SdpRewrite, RefusesUnusableRelayEndpoints) {
  const std::string offer = read_sdp("sipp_offer.sdp");
  for (const RelayEndpoint &bad : std::vector<RelayEndpoint>{
           {"", 40000, 40001},
           {"relay.example.org", 40000, 40001},  // a c= could name it, the relay does not
           {"[2001:db8::1]", 40000, 40001},
           {"10.0.0.1\r\na=evil", 40000, 40001},
           {"10.0.0.256", 40000, 40001},
           {"10.0.0.1", 65535, 0},
       }) {
    std::string error;
    EXPECT_FALSE(rewrite(offer, {bad}, &error)) << bad.address;
    EXPECT_NE(error.find("relay endpoint 1: "), std::string::npos) << error;
    EXPECT_EQ(error.find_first_of("\r\n"), std::string::npos) << error;
  }
}

TEST(SdpRewrite, Rfc3264Sec6RejectedLineIgnoresItsEndpoint) {
  std::string error;
  auto out = rewrite(read_sdp("rejected_video.sdp"), {kRelayAudio, {"garbage", 0, 0}}, &error);
  ASSERT_TRUE(out) << error;
  EXPECT_EQ(*out, read_sdp("rejected_video.relayed.sdp"));
}

// The relay refuses a stream it cannot carry (say m=application) by port 0, in
// an offer (RFC 3264 section 8.2) as in an answer (section 6).
TEST(SdpRewrite, Rfc3264Sec6EndpointPortZeroRejectsTheStream) {
  std::string error;
  auto out = rewrite(read_sdp("linphone_offer.sdp"), {kRelayAudio, {"", 0, 0}}, &error);
  ASSERT_TRUE(out) << error;
  EXPECT_NE(out->find("m=video 0 RTP/AVP 96\r\n"), std::string::npos) << *out;
  const Session s = parse_ok(*out);
  ASSERT_EQ(s.media.size(), 2u);
  EXPECT_EQ(s.media[0].port, 40000);
  EXPECT_EQ(s.media[0].address, "10.0.0.1");
  EXPECT_EQ(s.media[1].port, 0);
  EXPECT_EQ(out->find("a=candidate"), std::string::npos);
}

// One parsed offer printed for several branches (the relay's forks) comes out
// each time as a fresh rewrite of the text would, whatever the prints before.
TEST(SdpRewriter, EveryPrintEqualsAFreshRewrite) {
  const std::vector<std::pair<std::string, std::vector<RelayEndpoint>>> cases = {
      {"linphone_offer.sdp", {kRelayAudio, kRelayVideo}},
      {"linphone_offer.sdp", {{"10.0.0.2", 41000, 41001}, {"10.0.0.2", 41002, 41005}}},
      {"linphone_offer.sdp", {{"10.0.0.3", 42000, 0}, {"10.0.0.3", 42002, 0}}},
      {"rejected_video.sdp", {kRelayAudio, {"garbage", 0, 0}}},
      {"sipp_offer.sdp", {{"10.0.0.1", 40000, 40005}}},
      {"sipp_offer.sdp", {kRelayAudio}},
      {"ipv6.sdp", {{"2001:db8::1", 40000, 0}, {"2001:db8::1", 40002, 0}}},
      {"ipv6.sdp", {{"2001:db8::2", 40010, 0}, {"2001:db8::2", 40012, 0}}},
  };
  for (const std::string file :
       {"linphone_offer.sdp", "rejected_video.sdp", "sipp_offer.sdp", "ipv6.sdp"}) {
    Rewriter r;
    std::string error;
    ASSERT_TRUE(r.load(read_sdp(file), &error)) << error;
    EXPECT_EQ(r.summary().media.size(), parse_ok(read_sdp(file)).media.size());
    for (const auto &[name, endpoints] : cases) {
      if (name != file) continue;
      auto printed = r.print(endpoints, &error);
      auto fresh = rewrite(read_sdp(file), endpoints, &error);
      ASSERT_TRUE(printed && fresh) << error;
      EXPECT_EQ(*printed, *fresh) << file << " " << endpoints[0].rtp_port;
    }
  }
  // A print that would reject a line an earlier print relayed fails.
  Rewriter r;
  std::string error;
  ASSERT_TRUE(r.load(read_sdp("linphone_offer.sdp"), &error)) << error;
  ASSERT_TRUE(r.print({kRelayAudio, kRelayVideo}, &error)) << error;
  EXPECT_FALSE(r.print({kRelayAudio, {"", 0, 0}}, &error));
  EXPECT_NE(error.find("other m= lines"), std::string::npos) << error;
}

// ---------------------------------------------------------------------------
// restore_rejected_lines(): RFC 3264 section 6, an answer keeps every m= line.

TEST(SdpRestoreRejectedLines, Rfc3264Sec6MissingVideoLineComesBackWithPortZero) {
  std::string error;
  auto out = restore_rejected_lines(read_sdp("linphone_offer.sdp"),
                                    read_sdp("audio_only_answer.sdp"), &error);
  ASSERT_TRUE(out) << error;
  EXPECT_EQ(*out, read_sdp("audio_only_answer.restored.sdp"));
  const Session s = parse_ok(*out);
  ASSERT_EQ(s.media.size(), 2u);
  EXPECT_EQ(s.media[0].port, 5004);
  EXPECT_EQ(s.media[1].type, "video");
  EXPECT_EQ(s.media[1].port, 0);
}

TEST(SdpRestoreRejectedLines, Rfc3264Sec6MissingFirstLineIsPutInFront) {
  const std::string offer =
      offer_with("m=audio 5000 RTP/AVP 0\r\nm=video 5002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n");
  std::string error;
  auto out = restore_rejected_lines(
      offer, offer_with("m=video 6002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"), &error);
  ASSERT_TRUE(out) << error;
  const Session s = parse_ok(*out);
  ASSERT_EQ(s.media.size(), 2u) << *out;
  EXPECT_EQ(s.media[0].type, "audio");
  EXPECT_EQ(s.media[0].port, 0);
  EXPECT_EQ(s.media[1].port, 6002);
}

TEST(SdpRestoreRejectedLines, CompleteAnswerIsUnchangedAndMismatchesAreRefused) {
  const std::string offer = read_sdp("linphone_offer.sdp");
  std::string error;
  const std::string same = read_sdp("monitor_answer_recvonly.sdp");
  auto out = restore_rejected_lines(offer, same, &error);
  ASSERT_TRUE(out) << error;
  EXPECT_EQ(*out, same);
  // More lines than the offer, and a line the offer never had.
  for (const std::string &bad :
       {offer_with("m=audio 1 RTP/AVP 0\r\nm=video 2 RTP/AVP 96\r\nm=video 3 RTP/AVP 96\r\n"),
        offer_with("m=text 1 RTP/AVP 98\r\n")}) {
    error.clear();
    EXPECT_FALSE(restore_rejected_lines(offer, bad, &error)) << bad;
    EXPECT_NE(error.find("RFC 3264 section 6"), std::string::npos) << error;
  }
}

TEST(SdpRestoreRejectedLines, Rfc3264Sec6CompleteAnswerLinesMustKeepTheirOfferLinesType) {
  const std::string offer =
      offer_with("m=audio 5000 RTP/AVP 0\r\nm=video 5002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n");
  std::string error;
  // The same number of lines, swapped; and a video line answering an audio-only offer.
  EXPECT_FALSE(restore_rejected_lines(
      offer, offer_with("m=video 6002 RTP/AVP 96\r\nm=audio 6000 RTP/AVP 0\r\n"), &error));
  EXPECT_NE(error.find("answers an m=audio line"), std::string::npos) << error;
  error.clear();
  EXPECT_FALSE(restore_rejected_lines(offer_with("m=audio 5000 RTP/AVP 0\r\n"),
                                      offer_with("m=video 6002 RTP/AVP 96\r\n"), &error));
  EXPECT_NE(error.find("RFC 3264 section 6"), std::string::npos) << error;
  // A rejected line (port 0) refuses its stream whatever it says.
  const std::string rejected = offer_with("m=audio 6000 RTP/AVP 0\r\nm=text 0 RTP/AVP 98\r\n");
  auto out = restore_rejected_lines(offer, rejected, &error);
  ASSERT_TRUE(out) << error;
  EXPECT_EQ(*out, rejected);
}

TEST(SdpRewrite, Rfc3605RtcpZeroMeansNextPortAndNeedsNoAttribute) {
  std::string error;
  auto out = rewrite(read_sdp("sipp_offer.sdp"), {{"10.0.0.1", 40000, 0}}, &error);
  ASSERT_TRUE(out) << error;
  EXPECT_EQ(out->find("a=rtcp"), std::string::npos);
  const Session s = parse_ok(*out);
  EXPECT_EQ(s.media[0].rtcp_port, 40001);
}

TEST(SdpRewrite, Rfc3605ExistingRtcpFollowsTheRelayEvenWhenAdjacent) {
  std::string error;
  auto out = rewrite(read_sdp("linphone_offer.sdp"), {kRelayAudio, kRelayVideo}, &error);
  ASSERT_TRUE(out) << error;
  EXPECT_NE(out->find("a=rtcp:40001\r\n"), std::string::npos);
  EXPECT_NE(out->find("a=rtcp:40003\r\n"), std::string::npos);
  EXPECT_EQ(out->find("a=rtcp:7079"), std::string::npos);
}

// The Debian build of sofia-sip parses every b= type but CT as AS: b=TIAS:500000
// (bit/s, RFC 3890) would come out as 500 Mbit/s.
TEST(SdpRewrite, KeepsBandwidthTypesSofiaWouldTurnIntoAs) {
  std::string error;
  auto out = rewrite(offer_with("m=video 5000 RTP/AVP 31\r\nb=AS:512\r\nb=TIAS:500000\r\n"
                                "b=X-YZ:7\r\nb=CT:1000\r\n",
                                "b=TIAS:1000000\r\n"),
                     {kRelayVideo}, &error);
  ASSERT_TRUE(out) << error;
  EXPECT_NE(out->find("t=0 0\r\n"), std::string::npos);
  EXPECT_NE(out->find("b=TIAS:1000000\r\n"), std::string::npos) << *out;
  EXPECT_NE(out->find("b=AS:512\r\nb=TIAS:500000\r\nb=X-YZ:7\r\nb=CT:1000\r\n"), std::string::npos)
      << *out;
}

// sofia-sip drops a media-level i= line; we put it back.
TEST(SdpRewrite, KeepsMediaInformation) {
  std::string error;
  auto out = rewrite(offer_with("m=video 5000 RTP/AVP 31\r\ni=front door camera\r\n"),
                     {kRelayVideo}, &error);
  ASSERT_TRUE(out) << error;
  EXPECT_NE(out->find("m=video 40002 RTP/AVP 31\r\ni=front door camera\r\n"), std::string::npos)
      << *out;
}

TEST(SdpRewrite, MulticastAndLayeredConnectionsBecomeOneUnicastRelayAddress) {
  std::string error;
  auto out = rewrite(offer_with("m=video 5000 RTP/AVP 31\r\nc=IN IP4 224.2.1.1/127\r\n"
                                "c=IN IP4 224.2.1.2/127\r\n"),
                     {kRelayVideo}, &error);
  ASSERT_TRUE(out) << error;
  EXPECT_NE(out->find("m=video 40002 RTP/AVP 31\r\nc=IN IP4 10.0.0.1\r\n"), std::string::npos)
      << *out;
  EXPECT_EQ(out->find("224.2.1"), std::string::npos) << *out;
}

TEST(SdpRewrite, RemovesIceAtSessionAndMediaLevel) {
  std::string error;
  auto out =
      rewrite(offer_with("m=audio 5000 RTP/AVP 0\r\na=ice-ufrag:x\r\na=ice-pwd:y\r\n"
                         "a=candidate:1 1 UDP 1 192.0.2.1 5000 typ host\r\n"
                         "a=remote-candidates:1 192.0.2.9 6000\r\na=end-of-candidates\r\n"
                         "a=ice-pacing:50\r\na=rtcp-mux\r\na=rtcp-mux-only\r\na=ptime:20\r\n",
                         "a=ice-lite\r\na=ice-options:trickle\r\na=tool:door\r\n"),
              {kRelayAudio}, &error);
  ASSERT_TRUE(out) << error;
  EXPECT_EQ(*out,
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
            "a=tool:door\r\nm=audio 40000 RTP/AVP 0\r\na=ptime:20\r\n");
}

// ICE (RFC 8839 §5.4): a device's credentials, media-level over session-level;
// a lite device is not one the relay does ICE with (two lite agents do no
// checks, RFC 8445 §6.1.1).
TEST(SdpParse, IceCredentialsOfTheDevice) {
  const Session linphone = parse_ok(read_sdp("linphone_offer.sdp"));
  ASSERT_EQ(linphone.media.size(), 2u);
  EXPECT_TRUE(linphone.media[0].ice);
  EXPECT_EQ(linphone.media[0].ice_ufrag, "7c6f9a1e");  // session-level in Linphone's offer
  EXPECT_EQ(linphone.media[0].ice_pwd, "31ec21eb38b2ec6d36e8dc7b");
  const Session media_level =
      parse_ok(offer_with("m=audio 5000 RTP/AVP 0\r\na=ice-ufrag:mine\r\na=ice-pwd:mypwd\r\n",
                          "a=ice-ufrag:sess\r\na=ice-pwd:sesspwd\r\n"));
  EXPECT_EQ(media_level.media[0].ice_ufrag, "mine");
  EXPECT_EQ(media_level.media[0].ice_pwd, "mypwd");
  EXPECT_FALSE(parse_ok(read_sdp("sipp_offer.sdp")).media[0].ice);
  EXPECT_FALSE(parse_ok(offer_with("m=audio 5000 RTP/AVP 0\r\na=ice-ufrag:x\r\n")).media[0].ice);
  EXPECT_FALSE(parse_ok(offer_with("m=audio 5000 RTP/AVP 0\r\n",
                                   "a=ice-lite\r\na=ice-ufrag:x\r\na=ice-pwd:y\r\n"))
                   .media[0]
                   .ice);
}

// The relay as an ICE-lite agent (RFC 8445 §2.5, RFC 8839 §5.1-5.4): the
// device's ICE lines are replaced by the relay's a=ice-lite, credentials and
// one host candidate per component at the relay's address and ports.
TEST(SdpRewrite, IceLiteEndpointGetsTheRelaysCandidates) {
  std::string error;
  RelayEndpoint audio = kRelayAudio, video = kRelayVideo;
  audio.ice = RelayEndpoint::Ice{"RELAYufr", "relayPasswordOf24Chars+/", true};
  video.ice = RelayEndpoint::Ice{"VIDEOufr", "videoPasswordOf24Chars+/", false};
  video.rtcp_mux = true;
  Rewriter r;
  ASSERT_TRUE(r.load(read_sdp("linphone_offer.sdp"), &error)) << error;
  auto out = r.print({audio, video}, &error);
  ASSERT_TRUE(out) << error;
  const std::string &o = *out;
  // Session level, once.
  EXPECT_NE(o.find("a=ice-lite\r\n"), std::string::npos) << o;
  EXPECT_LT(o.find("a=ice-lite"), o.find("m=audio"));
  EXPECT_EQ(o.find("a=ice-lite"), o.rfind("a=ice-lite"));
  // Linphone's own credentials and candidates are gone (a private address, a srflx).
  for (const char *gone : {"7c6f9a1e", "31ec21eb38b2ec6d36e8dc7b", "192.168.1.30 7078", "203.0.113.7",
                           "typ srflx"})
    EXPECT_EQ(o.find(gone), std::string::npos) << gone << "\n" << o;
  const std::string audio_part = o.substr(o.find("m=audio"), o.find("m=video") - o.find("m=audio"));
  const std::string video_part = o.substr(o.find("m=video"));
  EXPECT_NE(audio_part.find("a=ice-ufrag:RELAYufr\r\n"), std::string::npos) << o;
  EXPECT_NE(audio_part.find("a=ice-pwd:relayPasswordOf24Chars+/\r\n"), std::string::npos) << o;
  EXPECT_NE(audio_part.find("a=candidate:1 1 UDP 2130706431 10.0.0.1 40000 typ host\r\n"),
            std::string::npos)
      << o;
  EXPECT_NE(audio_part.find("a=candidate:1 2 UDP 2130706430 10.0.0.1 40001 typ host\r\n"),
            std::string::npos)
      << o;
  // rtcp-mux agreed: component 1 only (RFC 8839 §5.1).
  EXPECT_NE(video_part.find("a=ice-ufrag:VIDEOufr\r\n"), std::string::npos) << o;
  EXPECT_NE(video_part.find("a=candidate:1 1 UDP 2130706431 10.0.0.1 40002 typ host\r\n"),
            std::string::npos)
      << o;
  EXPECT_EQ(video_part.find("a=candidate:1 2"), std::string::npos) << o;
  // What the relay wrote reads back as an ICE-lite agent's SDP: not one the
  // relay would do ICE with, and with the relay's credentials.
  const Session back = parse_ok(o);
  EXPECT_EQ(back.media[0].ice_ufrag, "RELAYufr");
  EXPECT_FALSE(back.media[0].ice);
  // A second print (the next branch) without ICE has none of it left.
  auto plain = r.print({kRelayAudio, kRelayVideo}, &error);
  ASSERT_TRUE(plain) << error;
  for (const char *gone : {"a=ice-", "a=candidate"})
    EXPECT_EQ(plain->find(gone), std::string::npos) << gone << "\n" << *plain;
  // And a third with ICE again has it once.
  auto again = r.print({audio, video}, &error);
  ASSERT_TRUE(again) << error;
  EXPECT_EQ(*again, o);
}

TEST(SdpRewrite, IceOnlyOnRelayedLines) {
  // A rejected line (port 0) gets no candidates, and with no relayed ICE line
  // the session gets no a=ice-lite.
  std::string error;
  RelayEndpoint rejected{"10.0.0.1", 0, 0};
  rejected.ice = RelayEndpoint::Ice{"RELAYufr", "relayPasswordOf24Chars+/", true};
  auto out = rewrite(offer_with("m=audio 5000 RTP/AVP 0\r\na=ice-ufrag:x\r\na=ice-pwd:y\r\n"),
                     {rejected}, &error);
  ASSERT_TRUE(out) << error;
  EXPECT_EQ(out->find("a=ice"), std::string::npos) << *out;
  EXPECT_EQ(out->find("a=candidate"), std::string::npos) << *out;
}

TEST(SdpRewrite, BareLineFeedsComeOutAsCrlf) {
  std::string error;
  auto out = rewrite(lf_only(read_sdp("sipp_offer.sdp")), {{"10.0.0.1", 40000, 0}}, &error);
  ASSERT_TRUE(out) << error;
  EXPECT_EQ(*out, read_sdp("sipp_offer.relayed.sdp"));
}

// ---------------------------------------------------------------------------
// Robustness: every prefix of a real offer and every single-byte damage to it
// either parses or fails cleanly; under valgrind this also proves no leak and
// no read out of bounds.

TEST(SdpRobustness, TruncatedAndDamagedOffersNeverCrash) {
  const std::string offer = read_sdp("linphone_offer.sdp");
  auto exercise = [](const std::string &text) {
    std::string error;
    auto s = parse(text, &error);
    if (!s) {
      EXPECT_FALSE(error.empty());
      EXPECT_EQ(error.find_first_of("\r\n"), std::string::npos) << error;
      return;
    }
    std::vector<RelayEndpoint> relay(s->media.size(), kRelayAudio);
    auto out = rewrite(text, relay, &error);
    if (!out) {
      EXPECT_FALSE(error.empty());
      return;
    }
    EXPECT_TRUE(parse(*out, &error)) << error << "\n" << *out;
  };
  for (size_t n = 0; n <= offer.size(); ++n) exercise(offer.substr(0, n));
  for (size_t i = 0; i < offer.size(); ++i) {
    for (char damage : {'\0', '\r', ' ', '=', '/', '9', '\xff'}) {
      std::string text = offer;
      text[i] = damage;
      exercise(text);
    }
  }
}
