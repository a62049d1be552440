// The media relay as the router's observer (proxy/relay_observer.h), fed with
// parsed SIP messages and no SIP socket: what each hook does to the message
// the router forwards, and which typed refusal the router gets. The relay is
// the real one, on loopback ports 38700-38799 (no other test binds there).
#include <gtest/gtest.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>

#include <memory>
#include <string>

#include "sip/sdp/sdp_rewrite.h"
#include "proxy/media_relay.h"
#include "proxy/relay_observer.h"
#include "proxy/sip_body.h"

namespace portier::proxy {
namespace {

using Refusal = CallObserver::Refusal;
using Action = CallObserver::Action;

struct MsgFree {
  void operator()(msg_t *m) const { msg_destroy(m); }
};
using Msg = std::unique_ptr<msg_t, MsgFree>;

Msg parse(const std::string &text) {
  msg_t *m = msg_make(sip_default_mclass(), 0, text.data(), static_cast<isize_t>(text.size()));
  EXPECT_NE(m, nullptr) << text;
  return Msg(m);
}

std::string sdp(const std::string &host, int audio_port, int video_port) {
  return "v=0\r\no=- 1 1 IN IP4 " + host + "\r\ns=-\r\nc=IN IP4 " + host + "\r\nt=0 0\r\nm=audio " +
         std::to_string(audio_port) + " RTP/AVP 0\r\nm=video " + std::to_string(video_port) +
         " RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
}

std::string with_body(const std::string &head, const std::string &body) {
  return head + "Content-Type: application/sdp\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n\r\n" + body;
}

Msg invite(const std::string &call_id, const std::string &body) {
  return parse(
      with_body("INVITE sip:home@example.org SIP/2.0\r\n"
                "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
                "From: <sip:door@example.org>;tag=d1\r\n"
                "To: <sip:home@example.org>\r\n"
                "Call-ID: " +
                    call_id +
                    "\r\n"
                    "CSeq: 1 INVITE\r\n"
                    "Supported: 100rel, timer\r\n"
                    "Contact: <sip:door@127.0.0.1:5070>\r\n",
                body));
}

Msg response(int status, const std::string &call_id, const std::string &body) {
  const std::string head = "SIP/2.0 " + std::to_string(status) +
                           (status == 200 ? " OK" : " Session Progress") +
                           "\r\n"
                           "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"
                           "From: <sip:door@example.org>;tag=d1\r\n"
                           "To: <sip:home@example.org>;tag=m1\r\n"
                           "Call-ID: " +
                           call_id +
                           "\r\n"
                           "CSeq: 1 INVITE\r\n"
                           "Contact: <sip:monitor@127.0.0.3:5080>\r\n";
  return body.empty() ? parse(head + "Content-Length: 0\r\n\r\n") : parse(with_body(head, body));
}

std::string body_of(msg_t *m) {
  const auto b = sdp_body(sip_object(m));
  return b ? std::string(*b) : std::string();
}

// The video port a message's SDP announces.
int video_port(msg_t *m) {
  std::string error;
  auto s = sdp::parse(body_of(m), &error);
  EXPECT_TRUE(s) << error;
  return s && s->media.size() > 1 ? s->media[1].port : -1;
}

RelaySettings settings(uint16_t min, uint16_t max) {
  RelaySettings s;
  s.sdp_address = "127.0.0.1";
  s.port_min = min;
  s.port_max = max;
  s.threads = 1;
  return s;
}

CallObserver::Call call(const std::string &id, const std::string &user = "sip:door@example.org") {
  return {id, user, "127.0.0.1", std::nullopt};
}

// A call the observer follows, with its branch 0 sent.
bool fork_one_branch(RelayObserver &o, const CallObserver::Call &c) {
  Msg inv = invite(c.call_id, sdp("127.0.0.1", 5004, 5006));
  Msg b0 = invite(c.call_id, sdp("127.0.0.1", 5004, 5006));
  bool watching = false;
  return o.on_fork(c, inv.get(), &watching).ok() && watching &&
         o.on_branch_request(c, 0, b0.get()).ok();
}

TEST(RelayObserver, ForkedCallEachBranchItsOwnOfferOneEarlyDialog) {
  MediaRelay relay(settings(38700, 38739));
  RelayObserver o(relay);
  CallObserver::Call c = call("fork-1");
  Msg inv = invite(c.call_id, sdp("127.0.0.1", 5004, 5006));
  bool watching = false;
  ASSERT_TRUE(o.on_fork(c, inv.get(), &watching).ok());
  ASSERT_TRUE(watching);

  // Each branch's copy points at its own relay ports, without 100rel (RFC 3262 §3).
  Msg b0 = invite(c.call_id, sdp("127.0.0.1", 5004, 5006));
  Msg b1 = invite(c.call_id, sdp("127.0.0.1", 5004, 5006));
  ASSERT_TRUE(o.on_branch_request(c, 0, b0.get()).ok());
  ASSERT_TRUE(o.on_branch_request(c, 1, b1.get()).ok());
  EXPECT_GE(video_port(b0.get()), 38700);
  EXPECT_LE(video_port(b0.get()), 38739);
  EXPECT_NE(video_port(b0.get()), video_port(b1.get()));
  const sip_t *s0 = sip_object(b0.get());
  ASSERT_TRUE(s0->sip_supported);
  EXPECT_STREQ(s0->sip_supported->k_items[0], "timer");
  EXPECT_EQ(s0->sip_supported->k_items[1], nullptr);

  // RFC 3261 §16.7 step 5 forwards 18x; the caller sees one early dialog.
  Msg r0 = response(183, c.call_id, sdp("127.0.0.3", 6000, 6002));
  Msg r1 = response(183, c.call_id, sdp("127.0.0.4", 7000, 7002));
  EXPECT_EQ(o.on_branch_response(c, 0, 183, r0.get()).action, Action::Forward);
  EXPECT_EQ(o.on_branch_response(c, 1, 183, r1.get()).action, Action::Absorb);
  const int caller_facing = video_port(r0.get());
  EXPECT_GE(caller_facing, 38700);
  EXPECT_EQ(body_of(r0.get()).find("c=IN IP4 127.0.0.3"), std::string::npos) << body_of(r0.get());

  // The 2xx goes up pointed at the same caller-facing ports.
  Msg ok0 = response(200, c.call_id, sdp("127.0.0.3", 6000, 6002));
  EXPECT_EQ(o.on_branch_response(c, 0, 200, ok0.get()).action, Action::Forward);
  EXPECT_EQ(video_port(ok0.get()), caller_facing);

  // A second device answering at once: its dialog is ended by the proxy.
  c.answered_by = 0;
  Msg ok1 = response(200, c.call_id, sdp("127.0.0.4", 7000, 7002));
  EXPECT_EQ(o.on_branch_response(c, 1, 200, ok1.get()).action, Action::Drop);
  o.on_branch_end(c, 1);

  o.on_end(c, "BYE");
  EXPECT_EQ(relay.calls(), 0u);
  EXPECT_EQ(relay.ports_in_use(), 0u);
}

TEST(RelayObserver, UnusableAnswers) {
  MediaRelay relay(settings(38740, 38769));
  RelayObserver o(relay);
  CallObserver::Call c = call("bad-answer");
  ASSERT_TRUE(fork_one_branch(o, c));

  // RFC 3264 §6: an answer with more m= lines than the offer. An 18x goes up
  // without its SDP; a 2xx is refused (488 with the relay's reason).
  const std::string three = sdp("127.0.0.3", 6000, 6002) + "m=audio 6004 RTP/AVP 0\r\n";
  Msg early = response(183, c.call_id, three);
  EXPECT_EQ(o.on_branch_response(c, 0, 183, early.get()).action, Action::Forward);
  EXPECT_EQ(body_of(early.get()), "");
  Msg ok = response(200, c.call_id, three);
  const CallObserver::ResponseVerdict v = o.on_branch_response(c, 0, 200, ok.get());
  EXPECT_EQ(v.action, Action::Refuse);
  EXPECT_EQ(v.verdict.refusal, Refusal::BadSdp);
  EXPECT_NE(v.verdict.detail.find("m= lines"), std::string::npos) << v.verdict.detail;
  o.on_end(c, "refused");
}

TEST(RelayObserver, TypedRefusalsOfTheOffer) {
  RelaySettings s = settings(38770, 38773);  // two port pairs
  s.max_calls_per_user = 1;
  MediaRelay relay(s);
  RelayObserver o(relay);
  bool watching = true;

  // No SDP: nothing to relay, the call goes on without the observer.
  Msg bare = parse(
      "INVITE sip:home@example.org SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bK2\r\n"
      "From: <sip:door@example.org>;tag=1\r\nTo: <sip:home@example.org>\r\nCall-ID: none\r\n"
      "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(o.on_fork(call("none"), bare.get(), &watching).ok());
  EXPECT_FALSE(watching);

  // A c= the relay cannot send to: 488 (RFC 3261 §21.4.26).
  Msg named = invite("named", sdp("door.example.org", 5004, 5006));
  CallObserver::Verdict v = o.on_fork(call("named"), named.get(), &watching);
  EXPECT_EQ(v.refusal, Refusal::BadSdp);
  EXPECT_FALSE(watching);

  // The caller's own call takes both pairs (audio and video).
  Msg first = invite("first", sdp("127.0.0.1", 5004, 5006));
  ASSERT_TRUE(o.on_fork(call("first"), first.get(), &watching).ok());
  // Another call of the same caller: the per-user limit, before any port.
  Msg again = invite("again", sdp("127.0.0.1", 5004, 5006));
  EXPECT_EQ(o.on_fork(call("again"), again.get(), &watching).refusal, Refusal::UserLimit);
  // Somebody else's call: the range is full (503 with Retry-After).
  Msg other = invite("other", sdp("127.0.0.1", 5004, 5006));
  v = o.on_fork(call("other", "sip:alice@example.org"), other.get(), &watching);
  EXPECT_EQ(v.refusal, Refusal::NoPorts);
  EXPECT_EQ(refusal_response(v.refusal).status, 503);
  // And a branch of the first call gets no ports either: that branch fails.
  Msg b0 = invite("first", sdp("127.0.0.1", 5004, 5006));
  EXPECT_EQ(o.on_branch_request(call("first"), 0, b0.get()).refusal, Refusal::NoPorts);
  o.on_end(call("first"), "done");
  EXPECT_EQ(relay.ports_in_use(), 0u);
}

TEST(RelayObserver, InDialogOfferAndAnswer) {
  MediaRelay relay(settings(38780, 38799));
  RelayObserver o(relay);
  CallObserver::Call c = call("reinvite");
  ASSERT_TRUE(fork_one_branch(o, c));
  bool watching = false;
  Msg ok = response(200, c.call_id, sdp("127.0.0.3", 6000, 6002));
  ASSERT_EQ(o.on_branch_response(c, 0, 200, ok.get()).action, Action::Forward);

  // A call the relay does not carry: not watched.
  Msg stranger = invite("stranger", sdp("127.0.0.1", 5004, 5006));
  EXPECT_TRUE(o.on_dialog_offer(call("stranger"), true, stranger.get(), &watching).ok());
  EXPECT_FALSE(watching);

  // The caller moves its media (RFC 3264 §8): the offer the device gets
  // points at the relay, and so does the answer the caller gets.
  Msg reinvite = invite(c.call_id, sdp("127.0.0.1", 5104, 5106));
  ASSERT_TRUE(o.on_dialog_offer(c, true, reinvite.get(), &watching).ok());
  EXPECT_TRUE(watching);
  EXPECT_GE(video_port(reinvite.get()), 38780);
  Msg answer = response(200, c.call_id, sdp("127.0.0.3", 6000, 6002));
  ASSERT_TRUE(o.on_dialog_answer(c, true, answer.get()).ok());
  EXPECT_GE(video_port(answer.get()), 38780);

  // An offer that changes the number of streams: 488, the call unchanged.
  Msg one = invite(c.call_id,
                   "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\n"
                   "t=0 0\r\nm=audio 5004 RTP/AVP 0\r\n");
  const CallObserver::Verdict v = o.on_dialog_offer(c, true, one.get(), &watching);
  EXPECT_EQ(v.refusal, Refusal::BadSdp);
  EXPECT_EQ(relay.calls(), 1u);

  // An ACK whose answer the relay cannot use goes on without it.
  Msg ack =
      parse(with_body("ACK sip:monitor@127.0.0.3:5080 SIP/2.0\r\n"
                      "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK3\r\n"
                      "From: <sip:door@example.org>;tag=d1\r\n"
                      "To: <sip:home@example.org>;tag=m1\r\n"
                      "Call-ID: reinvite\r\nCSeq: 2 ACK\r\n",
                      "junk"));
  o.on_dialog_ack(c, true, ack.get());
  EXPECT_EQ(body_of(ack.get()), "");
  o.on_end(c, "BYE");
  EXPECT_EQ(relay.calls(), 0u);
}

}  // namespace
}  // namespace portier::proxy
