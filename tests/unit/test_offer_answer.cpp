// SDP offer/answer for the door and monitors (RFC 3264), against the SDP the
// peers we meet really send (golden files shared with test_sdp_rewrite).
#include <gtest/gtest.h>

#include "common/audio_codecs.h"
#include "common/text_file.h"
#include "sip/sdp/offer_answer.h"
#include "sip/sdp/sdp_rewrite.h"

namespace {

using namespace portier::sdp;

std::string golden(const std::string &name) {
  std::string text, error;
  EXPECT_TRUE(portier::read_text_file(std::string(PORTIER_SOURCE_DIR) + "/tests/unit/sdp/" + name,
                                      "golden SDP", &text, &error))
      << error;
  return text;
}

// The door: PCMU/PCMA and DTMF events both ways; VP8 video it only sends.
LocalMedia door(const std::string &address = "192.168.1.30") {
  LocalMedia m;
  m.address = address;
  m.session_id = 42;
  LocalStream audio{"audio", 7078, {{"PCMU", 8000, 1, 0, ""}, {"PCMA", 8000, 1, 8, ""}}};
  audio.telephone_event = true;
  LocalStream video{"video", 9078, {{"VP8", 90000, 1, 96, ""}}};
  video.direction = "sendonly";
  m.streams = {audio, video};
  return m;
}

TEST(OfferAnswer, OfferParsesBackAsWritten) {
  std::string error;
  const std::string text = write_offer(door());
  auto s = parse(text, &error);
  ASSERT_TRUE(s) << error << "\n" << text;
  ASSERT_EQ(s->media.size(), 2u);
  EXPECT_EQ(s->media[0].type, "audio");
  EXPECT_EQ(s->media[0].port, 7078);
  EXPECT_EQ(s->media[0].address, "192.168.1.30");
  ASSERT_EQ(s->media[0].payloads.size(), 3u);
  EXPECT_EQ(s->media[0].payloads[2].encoding, "telephone-event");
  EXPECT_EQ(s->media[0].payloads[2].pt, 101);
  EXPECT_EQ(s->media[1].direction, "sendonly");
  EXPECT_EQ(s->media[1].payloads[0].encoding, "VP8");
  // a keyframe request channel for the devices (RFC 4585 §4.2, RFC 5104 §7.1)
  EXPECT_NE(text.find("a=rtcp-fb:96 nack pli\r\n"), std::string::npos);
  EXPECT_NE(text.find("a=rtcp-fb:96 ccm fir\r\n"), std::string::npos);
}

TEST(OfferAnswer, OfferOverIPv6) {
  std::string error;
  auto s = parse(write_offer(door("2001:db8::30")), &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->media[1].address, "2001:db8::30");
}

// An auto-answered INVITE naming an IPv6 address must not reach the door's
// multiudpsink (its socket is IPv4: it would crash). An address of the other family,
// or a host name, is refused before anything reaches a sink; the door and the
// monitor answer 488 with this text as the Warning.
TEST(OfferAnswer, OfferOfTheOtherFamilyIsRefused) {
  const std::string v6_offer =
      "v=0\r\no=x 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\n"
      "m=audio 40000 RTP/AVP 0\r\n";
  std::string error;
  EXPECT_FALSE(answer_offer(v6_offer, door(), &error));
  EXPECT_NE(error.find("IPv6"), std::string::npos) << error;
  EXPECT_NE(error.find("our media is IPv4"), std::string::npos) << error;
  error.clear();
  EXPECT_TRUE(answer_offer(v6_offer, door("2001:db8::30"), &error)) << error;
  const std::string v4_offer =
      "v=0\r\no=x 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n"
      "m=audio 40000 RTP/AVP 0\r\n";
  EXPECT_FALSE(answer_offer(v4_offer, door("2001:db8::30"), &error));
  const std::string named =
      "v=0\r\no=x 1 1 IN IP4 a.example\r\ns=-\r\nc=IN IP4 a.example\r\nt=0 0\r\n"
      "m=audio 40000 RTP/AVP 0\r\n";
  EXPECT_FALSE(answer_offer(named, door(), &error));
  EXPECT_NE(error.find("not an IP address"), std::string::npos) << error;
}

TEST(OfferAnswer, AnswerOfTheOtherFamilyIsRefused) {
  const std::string answer =
      "v=0\r\no=x 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\n"
      "m=audio 40000 RTP/AVP 0\r\nm=video 40002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
  std::string error;
  EXPECT_FALSE(apply_answer(door(), answer, &error));
  EXPECT_NE(error.find("IPv6"), std::string::npos) << error;
}

// A monitor's 183: audio sendrecv (so the door hears nothing yet but may), video
// recvonly (early media: it shows the door). RFC 3264 §6.1 directions.
TEST(OfferAnswer, EarlyAnswerOfAMonitor) {
  std::string error;
  auto agreed = apply_answer(door(), golden("monitor_answer_recvonly.sdp"), &error);
  ASSERT_TRUE(agreed) << error;
  ASSERT_EQ(agreed->size(), 2u);
  const Agreed &audio = (*agreed)[0], &video = (*agreed)[1];
  EXPECT_TRUE(audio.active);
  EXPECT_EQ(audio.codec.encoding, "PCMU") << "the answer's first codec that we have";
  EXPECT_EQ(audio.codec.pt, 0);
  EXPECT_EQ(audio.telephone_event_pt, 101);
  EXPECT_TRUE(audio.send);
  EXPECT_TRUE(audio.recv);
  EXPECT_EQ(audio.remote_address, "192.168.1.41");
  EXPECT_EQ(audio.remote_rtp, 5004);
  EXPECT_EQ(audio.remote_rtcp, 5005);
  EXPECT_TRUE(video.active);
  EXPECT_TRUE(video.send) << "the monitor is recvonly: the door sends";
  EXPECT_FALSE(video.recv) << "the door offered sendonly video";
  EXPECT_EQ(video.remote_rtp, 5006);
}

TEST(OfferAnswer, AnswerThatRefusesVideoAndHolds) {
  std::string error;
  const std::string answer =
      "v=0\r\no=m 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"
      "m=audio 5004 RTP/AVP 8\r\na=sendrecv\r\nm=video 0 RTP/AVP 96\r\n";
  auto agreed = apply_answer(door(), answer, &error);
  ASSERT_TRUE(agreed) << error;
  EXPECT_TRUE((*agreed)[0].active);
  EXPECT_EQ((*agreed)[0].codec.encoding, "PCMA");
  EXPECT_FALSE((*agreed)[0].send) << "c=0.0.0.0 is hold (RFC 3264 §8.4): nowhere to send";
  EXPECT_TRUE((*agreed)[0].recv);
  EXPECT_EQ((*agreed)[0].telephone_event_pt, -1) << "not in the answer: no events";
  EXPECT_FALSE((*agreed)[1].active) << "port 0 refuses the stream (RFC 3264 §6)";
  EXPECT_FALSE((*agreed)[1].send);
}

TEST(OfferAnswer, BadAnswersAreErrors) {
  std::string error;
  EXPECT_FALSE(apply_answer(door(), "not sdp at all", &error));
  EXPECT_FALSE(error.empty());
  error.clear();
  const std::string one_line =
      "v=0\r\no=m 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
      "m=audio 5004 RTP/AVP 0\r\n";
  EXPECT_FALSE(apply_answer(door(), one_line, &error));
  EXPECT_NE(error.find("RFC 3264"), std::string::npos) << error;
  error.clear();
  const std::string swapped =
      "v=0\r\no=m 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
      "m=video 5006 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\nm=audio 5004 RTP/AVP 0\r\n";
  EXPECT_FALSE(apply_answer(door(), swapped, &error));
  error.clear();
  // the m= line that makes Debian's sofia-sip allocate without end
  const std::string hostile =
      "v=0\r\no=m 1 1 IN IP4 10.0.0.5\r\ns=-\r\nc=IN IP4 10.0.0.5\r\nt=0 0\r\n"
      "m=audio 5000 X /\r\nm=video 5006 RTP/AVP 96\r\n";
  EXPECT_FALSE(apply_answer(door(), hostile, &error));
  EXPECT_FALSE(error.empty());
}

// A Linphone call to the door (seed scenario 2): its offer, the door's answer.
TEST(OfferAnswer, DoorAnswersLinphonesOffer) {
  std::string error;
  auto a = answer_offer(golden("linphone_offer.sdp"), door("192.168.1.20"), &error);
  ASSERT_TRUE(a) << error;
  auto s = parse(a->sdp, &error);
  ASSERT_TRUE(s) << error << "\n" << a->sdp;
  ASSERT_EQ(s->media.size(), 2u) << "every offered m= line is answered (RFC 3264 §6)";
  // audio: Linphone prefers opus, the door has none: PCMU with the offer's number
  EXPECT_EQ(s->media[0].port, 7078);
  ASSERT_FALSE(s->media[0].payloads.empty());
  EXPECT_EQ(s->media[0].payloads[0].encoding, "PCMU");
  EXPECT_EQ(s->media[0].payloads[0].pt, 0);
  EXPECT_EQ(a->streams[0].telephone_event_pt, 97) << "telephone-event/8000 of the offer";
  EXPECT_EQ(s->media[0].direction, "sendrecv");
  // video: VP8 keeps the offerer's payload type 96; the door only sends
  EXPECT_EQ(s->media[1].port, 9078);
  EXPECT_EQ(s->media[1].payloads[0].pt, 96);
  EXPECT_EQ(s->media[1].direction, "sendonly");
  EXPECT_TRUE(a->streams[1].send);
  EXPECT_FALSE(a->streams[1].recv);
  EXPECT_EQ(a->streams[1].remote_address, "192.168.1.30");
  EXPECT_EQ(a->streams[1].remote_rtp, 9078);
  EXPECT_EQ(a->streams[1].remote_rtcp, 9079);
}

TEST(OfferAnswer, UnknownStreamsAreRefusedWithPortZero) {
  std::string error;
  const std::string offer =
      "v=0\r\no=p 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n"
      "m=audio 4000 RTP/AVP 0\r\nm=text 4010 RTP/AVP 98\r\na=rtpmap:98 t140/1000\r\n"
      "m=video 4020 RTP/SAVP 96\r\na=rtpmap:96 VP8/90000\r\n";
  auto a = answer_offer(offer, door(), &error);
  ASSERT_TRUE(a) << error;
  auto s = parse(a->sdp, &error);
  ASSERT_TRUE(s) << error << "\n" << a->sdp;
  ASSERT_EQ(s->media.size(), 3u);
  EXPECT_EQ(s->media[0].port, 7078);
  EXPECT_EQ(s->media[1].port, 0) << "no text stream";
  EXPECT_EQ(s->media[2].port, 0) << "SRTP needs keys this answer does not carry";
  EXPECT_FALSE(a->streams[2].active);
}

TEST(OfferAnswer, NothingInCommonIsAnError) {
  std::string error;
  const std::string offer =
      "v=0\r\no=p 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n"
      "m=audio 4000 RTP/AVP 9\r\nm=video 4020 RTP/AVP 98\r\na=rtpmap:98 H265/90000\r\n";
  EXPECT_FALSE(answer_offer(offer, door(), &error));
  EXPECT_NE(error.find("no stream"), std::string::npos) << error;
}

TEST(OfferAnswer, H264WithItsParameters) {
  LocalMedia m = door();
  m.streams[1].codecs = {{"H264", 90000, 1, 102, "profile-level-id=42e01f;packetization-mode=1"}};
  const std::string text = write_offer(m);
  EXPECT_NE(text.find("a=rtpmap:102 H264/90000\r\n"), std::string::npos) << text;
  EXPECT_NE(text.find("a=fmtp:102 profile-level-id=42e01f;packetization-mode=1\r\n"),
            std::string::npos)
      << text;
  std::string error;
  auto s = parse(text, &error);
  ASSERT_TRUE(s) << error;
  EXPECT_EQ(s->media[1].payloads[0].encoding, "H264");
}

// The door as shipped: opus, G.722, PCMU, PCMA from the codec table, as
// door_media builds its stream.
LocalMedia wideband_door(const std::string &address = "192.168.1.30") {
  LocalMedia m = door(address);
  m.streams[0].codecs.clear();
  for (const auto &c : portier::audio::audio_codecs())
    m.streams[0].codecs.push_back({c.name, c.clock_rate, c.channels, c.pt, c.fmtp});
  return m;
}

std::string offer_with_audio(const std::string &audio_lines) {
  return "v=0\r\no=p 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n" + audio_lines;
}

// RFC 7587 §7 (opus/48000/2 whatever is sent), RFC 3551 §4.5.2 (G722/8000),
// RFC 4733 §2.1 (a telephone-event per clock rate, as Linphone offers them).
TEST(OfferAnswerWideband, OurOfferIsTheGoldenOne) {
  EXPECT_EQ(write_offer(wideband_door()), golden("door_wideband_offer.sdp"));
}

TEST(OfferAnswerWideband, LinphonesOfferGetsOpusWithItsEventsAt48kHz) {
  std::string error;
  auto a = answer_offer(golden("linphone_offer.sdp"), wideband_door("192.168.1.20"), &error);
  ASSERT_TRUE(a) << error;
  const Agreed &audio = a->streams[0];
  EXPECT_EQ(audio.codec.encoding, "opus");
  EXPECT_EQ(audio.codec.pt, 96);
  EXPECT_EQ(audio.codec.clock_rate, 48000u);
  EXPECT_EQ(audio.telephone_event_pt, 101) << "telephone-event/48000 of the offer, not /8000 (97)";
  EXPECT_NE(a->sdp.find("m=audio 7078 RTP/AVP 96 101\r\n"), std::string::npos) << a->sdp;
  EXPECT_NE(a->sdp.find("a=rtpmap:96 opus/48000/2\r\n"), std::string::npos) << a->sdp;
  EXPECT_NE(a->sdp.find("a=fmtp:96 useinbandfec=1"), std::string::npos) << a->sdp;
  EXPECT_NE(a->sdp.find("a=rtpmap:101 telephone-event/48000\r\n"), std::string::npos) << a->sdp;
}

TEST(OfferAnswerWideband, TheOfferersOrderDecidesSection5_1) {
  std::string error;
  // PCMU first, opus second: answered with PCMU, as Linphone answers.
  auto a = answer_offer(offer_with_audio("m=audio 4000 RTP/AVP 0 111 101\r\n"
                                         "a=rtpmap:111 opus/48000/2\r\n"
                                         "a=rtpmap:101 telephone-event/8000\r\n"),
                        wideband_door(), &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->streams[0].codec.encoding, "PCMU");
  EXPECT_EQ(a->streams[0].telephone_event_pt, 101);
}

TEST(OfferAnswerWideband, G722OnlyIsG722WithEventsAt8000) {
  std::string error;
  auto a = answer_offer(offer_with_audio("m=audio 4000 RTP/AVP 9 100\r\n"
                                         "a=rtpmap:100 telephone-event/8000\r\n"),
                        wideband_door(), &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->streams[0].codec.encoding, "G722");
  EXPECT_EQ(a->streams[0].codec.pt, 9);
  EXPECT_EQ(a->streams[0].codec.clock_rate, 8000u) << "RFC 3551 §4.5.2";
  EXPECT_EQ(a->streams[0].telephone_event_pt, 100);
  EXPECT_NE(a->sdp.find("m=audio 7078 RTP/AVP 9 100\r\n"), std::string::npos) << a->sdp;
}

TEST(OfferAnswerWideband, PcmuOnlyFallsBack) {
  std::string error;
  auto a = answer_offer(offer_with_audio("m=audio 4000 RTP/AVP 0\r\n"), wideband_door(), &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->streams[0].codec.encoding, "PCMU");
  EXPECT_EQ(a->streams[0].telephone_event_pt, -1) << "no events offered, none agreed";
}

// Events at 8000 cannot ride an opus stream whose timestamps count at 48000
// (RFC 4733 §2.1), and the door's code must get through: the first codec of
// the offer that has its events wins over a better one without.
TEST(OfferAnswerWideband, OpusWithEventsAt8000OnlyPicksACodecThatHasThem) {
  std::string error;
  auto a = answer_offer(offer_with_audio("m=audio 4000 RTP/AVP 96 0 101\r\n"
                                         "a=rtpmap:96 opus/48000/2\r\n"
                                         "a=rtpmap:101 telephone-event/8000\r\n"),
                        wideband_door(), &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->streams[0].codec.encoding, "PCMU");
  EXPECT_EQ(a->streams[0].telephone_event_pt, 101);
  // Only opus in common: opus, and no events (a key then goes by SIP INFO).
  a = answer_offer(offer_with_audio("m=audio 4000 RTP/AVP 96 101\r\n"
                                    "a=rtpmap:96 opus/48000/2\r\n"
                                    "a=rtpmap:101 telephone-event/8000\r\n"),
                   wideband_door(), &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->streams[0].codec.encoding, "opus");
  EXPECT_EQ(a->streams[0].telephone_event_pt, -1);
  EXPECT_EQ(a->sdp.find("telephone-event"), std::string::npos) << a->sdp;
}

TEST(OfferAnswerWideband, OpusUnderAnotherDynamicNumberKeepsTheOfferers) {
  std::string error;
  auto a = answer_offer(offer_with_audio("m=audio 4000 RTP/AVP 111 110\r\n"
                                         "a=rtpmap:111 OPUS/48000/2\r\n"
                                         "a=fmtp:111 stereo=1;sprop-stereo=1\r\n"
                                         "a=rtpmap:110 telephone-event/48000\r\n"),
                        wideband_door(), &error);
  ASSERT_TRUE(a) << error;
  EXPECT_EQ(a->streams[0].codec.encoding, "opus") << "encoding names are case-insensitive";
  EXPECT_EQ(a->streams[0].codec.pt, 111) << "RFC 3264 §6.1";
  EXPECT_EQ(a->streams[0].telephone_event_pt, 110);
  EXPECT_NE(a->sdp.find("a=rtpmap:111 opus/48000/2\r\n"), std::string::npos) << a->sdp;
  EXPECT_NE(a->sdp.find("a=fmtp:111 useinbandfec=1;stereo=0;sprop-stereo=0\r\n"), std::string::npos)
      << "our own receive parameters (RFC 7587 §7.1): " << a->sdp;
}

// Our offer answered: the events agreed are those at the chosen codec's clock.
TEST(OfferAnswerWideband, AnAnswerWithOpusTakesTheEventsAt48kHz) {
  std::string error;
  const std::string answer =
      "v=0\r\no=m 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n"
      "m=audio 4000 RTP/AVP 96 101 102\r\na=rtpmap:96 opus/48000/2\r\n"
      "a=rtpmap:101 telephone-event/8000\r\na=rtpmap:102 telephone-event/48000\r\n"
      "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=recvonly\r\n";
  auto agreed = apply_answer(wideband_door(), answer, &error);
  ASSERT_TRUE(agreed) << error;
  EXPECT_EQ((*agreed)[0].codec.encoding, "opus");
  EXPECT_EQ((*agreed)[0].telephone_event_pt, 102);
  // G.722 answered: its events are the /8000 ones.
  const std::string g722 =
      "v=0\r\no=m 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n"
      "m=audio 4000 RTP/AVP 9 101\r\na=rtpmap:101 telephone-event/8000\r\n"
      "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=recvonly\r\n";
  agreed = apply_answer(wideband_door(), g722, &error);
  ASSERT_TRUE(agreed) << error;
  EXPECT_EQ((*agreed)[0].codec.encoding, "G722");
  EXPECT_EQ((*agreed)[0].telephone_event_pt, 101);
  // baresip 1.0 answers opus with telephone-event/8000 only: taken all the same.
  const std::string baresip =
      "v=0\r\no=m 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n"
      "m=audio 4000 RTP/AVP 96 0 101\r\na=rtpmap:96 opus/48000/2\r\n"
      "a=rtpmap:101 telephone-event/8000\r\n"
      "m=video 4002 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\na=recvonly\r\n";
  agreed = apply_answer(wideband_door(), baresip, &error);
  ASSERT_TRUE(agreed) << error;
  EXPECT_EQ((*agreed)[0].codec.encoding, "opus");
  EXPECT_EQ((*agreed)[0].telephone_event_pt, 101);
}

TEST(AudioCodecs, AMissingElementLeavesTheCodecOut) {
  using namespace portier::audio;
  std::vector<std::string> missing;
  auto no_libav = [](const char *e) { return std::string(e).rfind("av", 0) != 0; };
  auto usable = usable_audio_codecs({"opus", "g722", "PCMU"}, no_libav, &missing);
  ASSERT_EQ(usable.size(), 2u);
  EXPECT_STREQ(usable[0]->name, "opus");
  EXPECT_STREQ(usable[1]->name, "PCMU");
  EXPECT_EQ(missing, std::vector<std::string>{"G722"});
  EXPECT_EQ(default_audio_codec_list(), "opus G722 PCMU PCMA");
}

TEST(AudioCodecs, RatesAndPacketDurations) {
  using namespace portier::audio;
  const AudioCodec &opus = *find_audio_codec("OPUS");
  EXPECT_EQ(opus.sample_rate, 48000);
  EXPECT_EQ(find_audio_codec("G722")->sample_rate, 16000) << "16 kHz audio, 8000 clock";
  EXPECT_EQ(rtp_units(48000, 20), 960u);
  EXPECT_EQ(rtp_units(8000, 20), 160u);
  EXPECT_EQ(audio_packet_ms(opus, 30), 20) << "no 30 ms opus frame (RFC 6716 §2.1.4)";
  EXPECT_EQ(audio_packet_ms(opus, 40), 40);
  EXPECT_EQ(audio_packet_ms(*find_audio_codec("PCMU"), 30), 30);
  EXPECT_EQ(audio_rtp_caps(opus, 111),
            "application/x-rtp,media=audio,clock-rate=48000,encoding-name=OPUS,payload=111");
  EXPECT_EQ(find_audio_codec("speex"), nullptr);
}

}  // namespace
