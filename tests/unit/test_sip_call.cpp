// The call leg the door and the monitor share (common/call_leg.h): where the
// call stands after each response, request and hang-up (RFC 3261 §9, §13,
// §14, §15), and which SDP answers which offer (RFC 3264). The SDP is the
// door's and the monitor's, written and answered by common/sdp.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "sip/call_leg.h"

namespace {

using portier::sip::CallEnd;
using portier::sip::CallLeg;
using portier::sip::CallState;
using portier::sip::in_call;
using namespace portier::sdp;

constexpr uint64_t kSession = 1700000000;

// The door: audio both ways, VP8 it only sends.
LocalMedia door() {
  LocalMedia m;
  m.address = "192.168.1.30";
  LocalStream audio{"audio", 7078, {{"PCMU", 8000, 1, 0, ""}}};
  audio.telephone_event = true;
  LocalStream video{"video", 9078, {{"VP8", 90000, 1, 96, ""}}};
  video.direction = "sendonly";
  m.streams = {audio, video};
  return m;
}

// A monitor: it listens while it rings (early) and talks once answered.
LocalMedia monitor(bool early, uint16_t audio_port = 8078) {
  LocalMedia m;
  m.address = "192.168.1.41";
  LocalStream audio{"audio", audio_port, {{"PCMU", 8000, 1, 0, ""}}};
  audio.direction = early ? "recvonly" : "sendrecv";
  LocalStream video{"video", static_cast<uint16_t>(audio_port + 2), {{"VP8", 90000, 1, 96, ""}}};
  video.direction = "recvonly";
  m.streams = {audio, video};
  return m;
}

std::string door_offer() { return write_offer(door()); }

// A monitor's answer to the door's offer; `port` tells two devices apart.
std::string answer_from(uint16_t port, bool early = false) {
  std::string error;
  auto a = answer_offer(door_offer(), monitor(early, port), &error);
  EXPECT_TRUE(a) << error;
  return a ? a->sdp : "";
}

// The media side: counts what it was given, or refuses it.
struct Media {
  bool ok = true;
  std::vector<std::vector<Agreed>> applied;
  portier::sip::ApplyMedia fn() {
    return [this](const std::vector<Agreed> &agreed, std::string *error) {
      applied.push_back(agreed);
      if (!ok) *error = "no decoder";
      return ok;
    };
  }
};

// "o=portier <session> <version> ..." of our SDP.
std::pair<uint64_t, uint64_t> origin(const std::string &text) {
  const size_t o = text.find("o=portier ");
  if (o == std::string::npos) return {0, 0};
  uint64_t session = 0, version = 0;
  std::sscanf(text.c_str() + o, "o=portier %lu %lu", &session, &version);
  return {session, version};
}

// Our INVITE's responses, in order (RFC 3261 §13.2.2; RFC 3264 §5: the
// answer comes in the 18x, then in the 2xx).
TEST(CallLeg, Rfc3261_13_2_2_ResponsesToOurInvite) {
  using R = CallLeg::Response;
  const std::string a = answer_from(8078), b = answer_from(8178);
  struct Resp {
    int status;
    std::string sdp;
    R expect;
  };
  struct Row {
    const char *name;
    std::vector<Resp> responses;
    bool media_ok;
    CallState state;
    size_t applied;  // answers the media was given
  } rows[] = {
      {"§13.2.2.1 100 and 180 without SDP: still calling",
       {{100, "", R::nothing}, {180, "", R::nothing}},
       true,
       CallState::Calling,
       0},
      {"RFC 3960: a 183 with an answer is early media",
       {{183, a, R::early}},
       true,
       CallState::Early,
       1},
      {"a repeated 183 is not applied again",
       {{183, a, R::early}, {183, a, R::nothing}},
       true,
       CallState::Early,
       1},
      {"another early dialog's answer is applied (§13.2.2.1: forking)",
       {{183, a, R::early}, {183, b, R::nothing}},
       true,
       CallState::Early,
       2},
      {"an unusable early answer is ignored: the call goes on",
       {{183, "v=0\r\nthis is not SDP\r\n", R::nothing}},
       true,
       CallState::Calling,
       0},
      {"an early answer the media cannot take is not early media",
       {{183, a, R::nothing}},
       false,
       CallState::Calling,
       1},
      {"§13.2.2.4 the 2xx answers the call and its answer is applied",
       {{183, a, R::early}, {200, a, R::answered}},
       true,
       CallState::Answered,
       2},
      {"a 2xx without early media", {{200, a, R::answered}}, true, CallState::Answered, 1},
      {"a second 2xx (another branch, a repeat) changes nothing",
       {{200, a, R::answered}, {200, b, R::nothing}},
       true,
       CallState::Answered,
       1},
      {"a 2xx whose answer the media refuses still answers the call",
       {{200, a, R::answered}},
       false,
       CallState::Answered,
       1},
      {"§22.2 a 407 is a challenge to answer",
       {{407, "", R::challenged}},
       true,
       CallState::Calling,
       0},
      {"§22.2 a 401 after early media too",
       {{183, a, R::early}, {401, "", R::challenged}},
       true,
       CallState::Early,
       1},
      {"§13.2.2.3 a 486 ends the call",
       {{183, a, R::early}, {486, "", R::rejected}},
       true,
       CallState::Ended,
       1},
      {"§13.2.2.3 a 603 before any answer", {{603, "", R::rejected}}, true, CallState::Ended, 0},
      {"nothing more once rejected",
       {{480, "", R::rejected}, {200, a, R::nothing}},
       true,
       CallState::Ended,
       0},
  };
  for (const Row &row : rows) {
    SCOPED_TRACE(row.name);
    CallLeg leg;
    Media media;
    media.ok = row.media_ok;
    ASSERT_TRUE(leg.dial(door(), kSession));
    EXPECT_EQ(leg.state(), CallState::Calling);
    for (const Resp &r : row.responses) {
      std::string error;
      EXPECT_EQ(leg.on_response(r.status, r.sdp, media.fn(), &error), r.expect) << r.status;
    }
    EXPECT_EQ(leg.state(), row.state);
    EXPECT_EQ(media.applied.size(), row.applied);
    EXPECT_FALSE(leg.incoming());
  }
}

TEST(CallLeg, UnusableAnswerSaysWhy) {
  CallLeg leg;
  Media media;
  ASSERT_TRUE(leg.dial(door(), kSession));
  std::string error;
  // RFC 3264 §6: the answer has as many m= lines as the offer.
  const std::string one_line =
      "v=0\r\no=x 1 1 IN IP4 192.168.1.41\r\ns=-\r\nc=IN IP4 192.168.1.41\r\nt=0 0\r\n"
      "m=audio 8078 RTP/AVP 0\r\n";
  EXPECT_EQ(leg.on_response(183, one_line, media.fn(), &error), CallLeg::Response::nothing);
  EXPECT_FALSE(error.empty());
  EXPECT_TRUE(media.applied.empty());
}

// How we end it (RFC 3261 §15): CANCEL until the INVITE is answered (§9.1),
// BYE once it is (§15.1.1), 486 to an INVITE that rings here (§16.7 step 5:
// a 6xx would end every other device's ringing too).
TEST(CallLeg, Rfc3261_15_Hangup) {
  using H = CallLeg::Hangup;
  Media media;
  const std::string a = answer_from(8078);
  auto idle = [](CallLeg &) {};
  auto calling = [](CallLeg &l) { l.dial(door(), kSession); };
  auto early_out = [&](CallLeg &l) {
    std::string e;
    l.dial(door(), kSession);
    l.on_response(183, a, media.fn(), &e);
  };
  auto answered_out = [&](CallLeg &l) {
    std::string e;
    l.dial(door(), kSession);
    l.on_response(200, a, media.fn(), &e);
  };
  auto ringing_in = [&](CallLeg &l) {
    std::string e;
    l.accept(door_offer(), monitor(true), kSession, true, media.fn(), &e);
  };
  auto early_in = [&](CallLeg &l) {
    ringing_in(l);
    l.early_answer_sent();
  };
  auto answered_in = [&](CallLeg &l) {
    std::string e;
    l.accept(door_offer(), door(), kSession, false, media.fn(), &e);
  };
  auto ended = [&](CallLeg &l) {
    answered_out(l);
    l.hangup();
  };
  struct Row {
    const char *name;
    std::function<void(CallLeg &)> setup;
    CallState before;
    H expect;
  } rows[] = {
      {"no call", idle, CallState::Idle, H::none},
      {"our INVITE, unanswered: CANCEL", calling, CallState::Calling, H::cancel},
      {"our INVITE with early media: CANCEL", early_out, CallState::Early, H::cancel},
      {"our call answered: BYE", answered_out, CallState::Answered, H::bye},
      {"ringing here: 486", ringing_in, CallState::Ringing, H::decline},
      {"ringing here with early media: 486", early_in, CallState::Early, H::decline},
      {"answered here: BYE", answered_in, CallState::Answered, H::bye},
      {"over already", ended, CallState::Ended, H::none},
  };
  for (const Row &row : rows) {
    SCOPED_TRACE(row.name);
    CallLeg leg;
    row.setup(leg);
    ASSERT_EQ(leg.state(), row.before);
    EXPECT_EQ(leg.hangup(), row.expect);
    EXPECT_EQ(leg.state(), row.before == CallState::Idle ? CallState::Idle : CallState::Ended);
    EXPECT_EQ(leg.hangup(), H::none);  // once
  }
}

// The other side or the network ends it: a BYE (§15.1.2), a CANCEL (§9.2),
// nua ending the dialog. The INVITE sent again with credentials (§22.2) is a
// new transaction: the challenged one's end is not the call's.
TEST(CallLeg, Rfc3261_15_EndedByTheOtherSide) {
  struct Row {
    const char *name;
    bool dial, resent;
    std::vector<std::pair<CallEnd, bool>> events;  // event, ended the call
  } rows[] = {
      {"BYE in a call", true, false, {{CallEnd::bye, true}, {CallEnd::terminated, false}}},
      {"CANCEL of an INVITE", true, false, {{CallEnd::cancel, true}, {CallEnd::bye, false}}},
      {"nua's end of the dialog", true, false, {{CallEnd::terminated, true}}},
      {"the challenged INVITE's end, then the call's",
       true,
       true,
       {{CallEnd::terminated, false}, {CallEnd::terminated, true}}},
      {"no call to end", false, false, {{CallEnd::bye, false}, {CallEnd::terminated, false}}},
  };
  for (const Row &row : rows) {
    SCOPED_TRACE(row.name);
    CallLeg leg;
    if (row.dial) leg.dial(door(), kSession);
    if (row.resent) leg.resent();
    for (const auto &[why, ends] : row.events) EXPECT_EQ(leg.ended(why), ends);
    EXPECT_FALSE(in_call(leg.state()));
  }
}

// RFC 3264 §5 and §8: our o= line keeps its session id for the whole call
// and every offer or answer of ours is its next version.
TEST(CallLeg, Rfc3264_8_VersionsWithinOneSession) {
  Media media;
  std::string error;
  CallLeg leg;
  auto ringing = leg.accept(door_offer(), monitor(true), kSession, true, media.fn(), &error);
  ASSERT_TRUE(ringing) << error;
  EXPECT_EQ(leg.state(), CallState::Ringing);
  EXPECT_TRUE(leg.incoming());
  EXPECT_EQ(origin(*ringing), std::make_pair(kSession, uint64_t{1}));
  EXPECT_NE(ringing->find("a=recvonly"), std::string::npos);
  leg.early_answer_sent();
  EXPECT_EQ(leg.state(), CallState::Early);
  // A re-INVITE while it rings: answered as the next version.
  auto re = leg.answer_reoffer(door_offer(), monitor(true), media.fn(), &error);
  ASSERT_TRUE(re) << error;
  EXPECT_EQ(origin(*re), std::make_pair(kSession, uint64_t{2}));
  // Answered: the INVITE's offer answered again, sendrecv now (RFC 3264 §8).
  auto answered = leg.answer(monitor(false), media.fn(), &error);
  ASSERT_TRUE(answered) << error;
  EXPECT_EQ(origin(*answered), std::make_pair(kSession, uint64_t{3}));
  EXPECT_NE(answered->find("a=sendrecv"), std::string::npos);
  EXPECT_EQ(leg.state(), CallState::Answered);
  EXPECT_EQ(media.applied.size(), 3u);
  // Nothing to answer twice.
  EXPECT_FALSE(leg.answer(monitor(false), media.fn(), &error));
  EXPECT_EQ(error, "nothing to answer (answered)");

  // A new call is a new session, from version 1.
  leg.hangup();
  auto offer = leg.dial(door(), kSession + 60);
  ASSERT_TRUE(offer);
  EXPECT_EQ(origin(*offer), std::make_pair(kSession + 60, uint64_t{1}));
  EXPECT_FALSE(leg.incoming());
  // The INVITE sent again with credentials carries the same offer (§22.2).
  EXPECT_EQ(leg.offer(), *offer);
}

// An INVITE we cannot answer changes nothing: the device refuses it (488)
// and the call that was, or none, stays as it was.
TEST(CallLeg, RefusedOfferChangesNothing) {
  struct Row {
    const char *name;
    std::string offer;
    bool media_ok;
  } rows[] = {
      {"not SDP", "this is not SDP at all\r\n", true},
      {"SDP without media", "v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n", true},
      {"the media cannot take it", door_offer(), false},
  };
  for (const Row &row : rows) {
    SCOPED_TRACE(row.name);
    CallLeg leg;
    Media media;
    media.ok = row.media_ok;
    std::string error;
    EXPECT_FALSE(leg.accept(row.offer, monitor(true), kSession, true, media.fn(), &error));
    EXPECT_FALSE(error.empty());
    EXPECT_EQ(leg.state(), CallState::Idle);
    EXPECT_FALSE(leg.incoming());
  }
}

// One call at a time: a second INVITE or a second dial while one is on.
TEST(CallLeg, OneCallAtATime) {
  Media media;
  std::string error;
  CallLeg leg;
  ASSERT_TRUE(leg.dial(door(), kSession));
  EXPECT_FALSE(leg.dial(door(), kSession));
  EXPECT_FALSE(leg.accept(door_offer(), monitor(true), kSession, true, media.fn(), &error));
  EXPECT_EQ(leg.state(), CallState::Calling);
  EXPECT_TRUE(media.applied.empty());
  // An incoming call's responses are not ours to take.
  CallLeg in;
  ASSERT_TRUE(in.accept(door_offer(), door(), kSession, false, media.fn(), &error));
  EXPECT_EQ(in.on_response(200, answer_from(8078), media.fn(), &error), CallLeg::Response::nothing);
}

TEST(CallLeg, StateNames) {
  const std::pair<CallState, const char *> names[] = {
      {CallState::Idle, "idle"},         {CallState::Calling, "calling"},
      {CallState::Ringing, "ringing"},   {CallState::Early, "early"},
      {CallState::Answered, "answered"}, {CallState::Ended, "ended"},
  };
  for (const auto &[state, name] : names) {
    EXPECT_STREQ(portier::sip::call_state_name(state), name);
    EXPECT_EQ(in_call(state), state != CallState::Idle && state != CallState::Ended) << name;
  }
}

}  // namespace
