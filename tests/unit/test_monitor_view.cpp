// What the monitor's window shows and allows, per call state (monitor_view.h):
// the buttons a resident can press, the state line, the ringing title.
#include <gtest/gtest.h>

#include "monitor/monitor_view.h"

using namespace portier::monitor;

namespace {

MonitorView view(CallState state, bool incoming = true) {
  MonitorView v;
  v.aor = "sip:mon1@home.example";
  v.registered = true;
  v.registration = "registered";
  v.state = state;
  v.incoming = incoming;
  v.peer = "sip:door@home.example";
  v.has_open_door = true;
  v.has_doors = true;
  return v;
}

struct Row {
  CallState state;
  bool incoming;
  bool answer, open_door, hangup, doors;
};

TEST(MonitorView, ControlsFollowTheCallState) {
  const Row rows[] = {
      {CallState::Idle, false, false, false, false, true},
      {CallState::Ringing, true, true, false, true, false},
      {CallState::Early, true, true, false, true, false},
      {CallState::Answered, true, false, true, true, false},
      {CallState::Calling, false, false, false, true, false},
      {CallState::Early, false, false, false, true, false},  // our call, the door's 183
      {CallState::Answered, false, false, true, true, false},
      {CallState::Ended, true, false, false, false, true},
  };
  for (const Row &r : rows) {
    SCOPED_TRACE(call_state_name(r.state) + std::string(r.incoming ? " in" : " out"));
    const Controls c = controls_for(view(r.state, r.incoming));
    EXPECT_EQ(c.answer, r.answer);
    EXPECT_EQ(c.open_door, r.open_door);
    EXPECT_FALSE(c.light);  // no light code configured
    EXPECT_TRUE(c.mic);
    EXPECT_EQ(c.hangup, r.hangup);
    EXPECT_EQ(c.doors, r.doors);
  }
}

TEST(MonitorView, MessageActionsNeedNoAnsweredCall) {
  MonitorView v = view(CallState::Idle, false);
  v.action_method = ActionMethod::Message;
  EXPECT_TRUE(controls_for(v).open_door);  // to the first door
  v.has_doors = false;
  EXPECT_FALSE(controls_for(v).open_door);
  EXPECT_FALSE(controls_for(v).doors);
  v.state = CallState::Early;
  v.incoming = true;
  EXPECT_TRUE(controls_for(v).open_door);  // to the caller
}

TEST(MonitorView, LinesAndTitle) {
  EXPECT_EQ(call_line(view(CallState::Idle)), "No call");
  EXPECT_EQ(call_line(view(CallState::Early)), "Ringing: sip:door@home.example");
  EXPECT_EQ(call_line(view(CallState::Answered)), "Answered: sip:door@home.example");
  EXPECT_EQ(call_line(view(CallState::Calling, false)), "Calling: sip:door@home.example");
  EXPECT_EQ(call_line(view(CallState::Answered, false)), "Watching: sip:door@home.example");
  MonitorView ended = view(CallState::Ended);
  ended.reason = kAnsweredElsewhere;
  EXPECT_EQ(call_line(ended), "Answered elsewhere");
  ended.reason = kMissed;
  EXPECT_EQ(call_line(ended), "Missed call: sip:door@home.example");
  EXPECT_EQ(window_title(view(CallState::Ringing)), "portier - RINGING: sip:door@home.example");
  EXPECT_TRUE(is_ringing(view(CallState::Early)));
  EXPECT_FALSE(is_ringing(view(CallState::Early, false)));
  EXPECT_EQ(window_title(view(CallState::Answered)), "portier - sip:mon1@home.example");
  EXPECT_EQ(registration_line(view(CallState::Idle)), "Registered as sip:mon1@home.example");
  MonitorView refused = view(CallState::Idle);
  refused.registered = false;
  refused.registration = "refused: wrong user name or password?";
  EXPECT_EQ(registration_line(refused), "Not registered (refused: wrong user name or password?)");
}

}  // namespace
