// The visitor's bell button: a GPIO line (libgpiod v1), an evdev key
// (/dev/input/eventN), or nothing but the control socket ("portierctl ring"). A
// button is a poll-able descriptor and a read that turns what is pending into
// presses, so the daemon puts fd() into its GLib main loop:
//
//   g_unix_fd_add(button->fd(), G_IO_IN, on_button, ...);  // on_button:
//     // int n = button->read_presses(&err);
//     // if (n < 0) { log err; return G_SOURCE_REMOVE; }
//     // if (n > 0 && ring_guard.press()) start the call;
//
// Every source of presses (button, control socket) goes through one RingGuard.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct gpiod_chip;
struct gpiod_line;

namespace portier::door {

class Button {
 public:
  virtual ~Button() = default;
  virtual int fd() const = 0;
  // Call when fd() is readable; never blocks. The number of presses read (0 for
  // releases, bounces, other keys or nothing pending), or -1 with *error when the
  // device is gone (unplugged, read error): the daemon drops the button then.
  virtual int read_presses(std::string *error) = 0;
};

// A push button on a GPIO line. `edge` is the level change that is a press: a
// button that pulls a line with a pull-up to ground presses on the falling edge.
// Both edges are watched so that bounces can be told apart: a press counts only
// when the line was quiet (no edge at all) for `debounce` before it, which drops
// the chatter of the contact on press and on release. Edge times come from the
// kernel's event timestamps, not from when the daemon reads them.
struct GpioButtonConfig {
  std::string chip;  // as GpioLineConfig::chip
  unsigned line = 0;
  enum class Edge { Falling, Rising } edge = Edge::Falling;
  std::chrono::milliseconds debounce{50};
};

class GpioButton : public Button {
 public:
  // nullptr with *error when the chip or line is missing or busy.
  static std::unique_ptr<GpioButton> open(const GpioButtonConfig &config, std::string *error);
  ~GpioButton() override;
  int fd() const override;
  int read_presses(std::string *error) override;

 private:
  GpioButton() = default;
  GpioButtonConfig config_;
  gpiod_chip *chip_ = nullptr;
  gpiod_line *line_ = nullptr;
  bool have_edge_ = false;
  int64_t last_edge_ns_ = 0;
};

// "KEY_ENTER", "BTN_0", "28" -> the evdev key code; -1 when unknown. Names are
// those of <linux/input-event-codes.h>; any code can be given as a number.
int parse_key_code(std::string_view name);

// A key of an input device (a GPIO keys driver, a USB button, a keypad): reads
// struct input_event records; an EV_KEY event of the configured code with value
// 1 is a press, 0 (release) and 2 (autorepeat) are not.
class EvdevButton : public Button {
 public:
  // Opens the device read-only and non-blocking; nullptr with *error when it
  // cannot be opened or has no such key.
  static std::unique_ptr<EvdevButton> open(const std::string &device, int key_code,
                                           std::string *error);
  // Takes an open descriptor that delivers input_event records (tests, or a
  // descriptor passed by systemd); it is made non-blocking.
  static std::unique_ptr<EvdevButton> adopt(int fd, int key_code);
  ~EvdevButton() override;
  int fd() const override { return fd_; }
  int read_presses(std::string *error) override;

 private:
  EvdevButton(int fd, int key_code) : fd_(fd), key_code_(key_code) {}
  int fd_ = -1;
  int key_code_ = 0;
  // A record split across reads (a pipe may deliver part of one).
  unsigned char partial_[64] = {};
  size_t partial_size_ = 0;
};

// One call at a time from the door's button: a press while a call rings or runs
// does not start another (visitors press twice); a press after the call ended
// does. The daemon reports the call's life with answered() and ended(); ended()
// also covers a call that failed to start.
class RingGuard {
 public:
  enum class State { Idle, Ringing, InCall };
  static const char *state_name(State s);

  // True when this press should start a call (the guard is then Ringing).
  bool press();
  void answered();
  void ended();
  State state() const { return state_; }

 private:
  State state_ = State::Idle;
};

}  // namespace portier::door
