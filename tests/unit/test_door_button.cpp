// The bell button: evdev records written by the test into a pipe (the kernel's
// own struct input_event), GPIO edges through the stand-in libgpiod, and the
// guard that keeps one call per visit.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/input.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <vector>

#include "door/actuator.h"
#include "door/button.h"
#include "door_test_util.h"
#include "fake_gpiod/fake_gpiod.h"

using namespace std::chrono_literals;
using portier::door::EvdevButton;
using portier::door::GpioButton;
using portier::door::GpioButtonConfig;
using portier::door::parse_key_code;
using portier::door::RingGuard;

namespace {

input_event record(uint16_t type, uint16_t code, int32_t value) {
  input_event ev;
  memset(&ev, 0, sizeof ev);
  ev.type = type;
  ev.code = code;
  ev.value = value;
  return ev;
}

struct EvdevPipe {
  int fds[2] = {-1, -1};
  std::unique_ptr<EvdevButton> button;
  explicit EvdevPipe(int key) {
    EXPECT_EQ(pipe(fds), 0);
    button = EvdevButton::adopt(fds[0], key);
  }
  ~EvdevPipe() {
    if (fds[1] >= 0) close(fds[1]);
  }
  void send(const std::vector<input_event> &events) {
    for (const auto &ev : events) ASSERT_EQ(write(fds[1], &ev, sizeof ev), (ssize_t)sizeof ev);
  }
  // A key press as the kernel reports it: the key event and a SYN_REPORT.
  void press_and_release(uint16_t key) {
    send({record(EV_MSC, MSC_SCAN, 0x1c), record(EV_KEY, key, 1), record(EV_SYN, SYN_REPORT, 0),
          record(EV_KEY, key, 0), record(EV_SYN, SYN_REPORT, 0)});
  }
};

timespec at_ms(long ms) { return {ms / 1000, (ms % 1000) * 1000000L}; }

}  // namespace

TEST(DoorEvdevButton, KeyNamesAndNumbers) {
  EXPECT_EQ(parse_key_code("KEY_ENTER"), KEY_ENTER);
  EXPECT_EQ(parse_key_code("BTN_0"), BTN_0);
  EXPECT_EQ(parse_key_code("KEY_PROG1"), KEY_PROG1);
  EXPECT_EQ(parse_key_code("28"), 28);
  EXPECT_EQ(parse_key_code("767"), KEY_MAX);
  EXPECT_EQ(parse_key_code("768"), -1);
  EXPECT_EQ(parse_key_code("KEY_NOPE"), -1);
  EXPECT_EQ(parse_key_code("key_enter"), -1);
  EXPECT_EQ(parse_key_code(""), -1);
}

TEST(DoorEvdevButton, APressIsValueOneOfTheConfiguredKey) {
  EvdevPipe p(KEY_ENTER);
  std::string error;
  EXPECT_EQ(p.button->read_presses(&error), 0);  // nothing pending: no blocking
  p.press_and_release(KEY_ENTER);
  ASSERT_TRUE(door_test::wait_readable(p.button->fd()));
  EXPECT_EQ(p.button->read_presses(&error), 1) << error;
  // Autorepeat (2), releases (0) and other keys are no presses.
  p.send({record(EV_KEY, KEY_ENTER, 1), record(EV_KEY, KEY_ENTER, 2), record(EV_KEY, KEY_ENTER, 2),
          record(EV_KEY, KEY_ENTER, 0), record(EV_KEY, KEY_A, 1), record(EV_KEY, KEY_A, 0),
          record(EV_SW, KEY_ENTER, 1), record(EV_SYN, SYN_REPORT, 0)});
  EXPECT_EQ(p.button->read_presses(&error), 1);
  p.press_and_release(KEY_ENTER);
  p.press_and_release(KEY_ENTER);
  EXPECT_EQ(p.button->read_presses(&error), 2);
}

TEST(DoorEvdevButton, ARecordSplitAcrossReadsIsPutBackTogether) {
  EvdevPipe p(BTN_0);
  input_event ev = record(EV_KEY, BTN_0, 1);
  const char *bytes = reinterpret_cast<const char *>(&ev);
  const size_t half = sizeof ev / 2;
  ASSERT_EQ(write(p.fds[1], bytes, half), (ssize_t)half);
  std::string error;
  EXPECT_EQ(p.button->read_presses(&error), 0);
  ASSERT_EQ(write(p.fds[1], bytes + half, sizeof ev - half), (ssize_t)(sizeof ev - half));
  EXPECT_EQ(p.button->read_presses(&error), 1);
}

TEST(DoorEvdevButton, AGoneDeviceIsAnError) {
  EvdevPipe p(KEY_ENTER);
  close(p.fds[1]);
  p.fds[1] = -1;
  std::string error;
  EXPECT_EQ(p.button->read_presses(&error), -1);
  EXPECT_EQ(error, "the input device was closed");

  EXPECT_FALSE(EvdevButton::open("/nonexistent/event0", KEY_ENTER, &error));
  EXPECT_EQ(error, "cannot open input device '/nonexistent/event0': No such file or directory");
  EXPECT_FALSE(EvdevButton::open("/dev/null", KEY_ENTER, &error));
  EXPECT_EQ(error.rfind("'/dev/null' is not an input event device: ", 0), 0u) << error;
}

class GpioButtonTest : public ::testing::Test {
 protected:
  void SetUp() override { fake_gpiod::set_record_file(""); }
  std::unique_ptr<GpioButton> open(GpioButtonConfig::Edge edge,
                                   std::chrono::milliseconds debounce) {
    GpioButtonConfig c;
    c.chip = "gpiochip0";
    c.line = 27;
    c.edge = edge;
    c.debounce = debounce;
    std::string error;
    auto b = GpioButton::open(c, &error);
    EXPECT_TRUE(b) << error;
    return b;
  }
  void edge(bool rising, long ms) {
    ASSERT_TRUE(fake_gpiod::inject_edge("gpiochip0", 27, rising, at_ms(ms)));
  }
};

TEST_F(GpioButtonTest, FallingEdgesArePressesAndBouncesAreNot) {
  auto b = open(GpioButtonConfig::Edge::Falling, 50ms);
  ASSERT_TRUE(b);
  std::string error;
  EXPECT_EQ(b->read_presses(&error), 0);
  // Press at 1.000 s with contact chatter, release at 1.300 s with chatter.
  edge(false, 1000);
  edge(true, 1002);
  edge(false, 1004);
  edge(true, 1300);
  edge(false, 1302);
  edge(true, 1305);
  ASSERT_TRUE(door_test::wait_readable(b->fd()));
  EXPECT_EQ(b->read_presses(&error), 1) << error;
  pollfd p{b->fd(), POLLIN, 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);  // all read
  // A clean second press after a quiet line counts.
  edge(false, 2000);
  edge(true, 2200);
  EXPECT_EQ(b->read_presses(&error), 1);
}

TEST_F(GpioButtonTest, RisingEdgeButtonAndNoDebounce) {
  auto b = open(GpioButtonConfig::Edge::Rising, 0ms);
  ASSERT_TRUE(b);
  edge(true, 100);
  edge(false, 101);
  edge(true, 102);
  std::string error;
  EXPECT_EQ(b->read_presses(&error), 2);
}

TEST_F(GpioButtonTest, EdgesReadInSeveralRoundsKeepTheirDebounce) {
  auto b = open(GpioButtonConfig::Edge::Falling, 50ms);
  ASSERT_TRUE(b);
  std::string error;
  edge(false, 5000);
  EXPECT_EQ(b->read_presses(&error), 1);
  edge(true, 5010);  // bounce, read in a later round
  edge(false, 5020);
  EXPECT_EQ(b->read_presses(&error), 0);
}

TEST_F(GpioButtonTest, MissingChipWrongLineAndTheActuatorsLine) {
  GpioButtonConfig c;
  c.chip = "nochip";
  c.line = 1;
  std::string error;
  EXPECT_FALSE(GpioButton::open(c, &error));
  EXPECT_EQ(error, "GPIO chip 'nochip' not found (try gpiodetect)");
  c.chip = "gpiochip1";
  c.line = 8;
  EXPECT_FALSE(GpioButton::open(c, &error));
  EXPECT_EQ(error, "line 8 does not exist on GPIO chip 'gpiochip1' (8 lines, 0-7)");
  fake_gpiod::set_busy("gpiochip1", 7, true);
  c.line = 7;
  EXPECT_FALSE(GpioButton::open(c, &error));
  EXPECT_EQ(error, "line 7 of GPIO chip 'gpiochip1' is busy (used by another program)");
  fake_gpiod::set_busy("gpiochip1", 7, false);
  EXPECT_TRUE(GpioButton::open(c, &error)) << error;
}

TEST(DoorRingGuard, OneCallPerVisit) {
  RingGuard g;
  EXPECT_EQ(g.state(), RingGuard::State::Idle);
  EXPECT_TRUE(g.press());
  EXPECT_STREQ(RingGuard::state_name(g.state()), "ringing");
  EXPECT_FALSE(g.press());  // pressed again while ringing
  g.answered();
  EXPECT_STREQ(RingGuard::state_name(g.state()), "in-call");
  EXPECT_FALSE(g.press());  // and while talking
  g.ended();
  EXPECT_STREQ(RingGuard::state_name(g.state()), "idle");
  EXPECT_TRUE(g.press());  // a new visit
  g.ended();               // nobody answered (or the call failed to start)
  EXPECT_TRUE(g.press());
  g.answered();
  g.answered();
  EXPECT_EQ(g.state(), RingGuard::State::InCall);
}
