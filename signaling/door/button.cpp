#include "door/button.h"

#include <errno.h>
#include <fcntl.h>
#include <gpiod.h>
#include <linux/input.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include "door/gpio_open.h"

namespace portier::door {
namespace {

constexpr const char *kConsumer = "portier-door";
// A read never takes more than this many records at once, so a flood (a stuck
// key repeating, a noisy line) cannot hold the main loop; the rest waits for the
// next round, since the descriptor stays readable.
constexpr int kMaxEventsPerRead = 64;

bool readable_now(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & POLLIN);
}

struct KeyName {
  const char *name;
  int code;
};

#define PORTIER_KEY(n) \
  { #n, n }
// The keys a door button is likely wired to; any other code works as a number.
const KeyName kKeyNames[] = {
    PORTIER_KEY(KEY_ESC),     PORTIER_KEY(KEY_1),
    PORTIER_KEY(KEY_2),       PORTIER_KEY(KEY_3),
    PORTIER_KEY(KEY_4),       PORTIER_KEY(KEY_5),
    PORTIER_KEY(KEY_6),       PORTIER_KEY(KEY_7),
    PORTIER_KEY(KEY_8),       PORTIER_KEY(KEY_9),
    PORTIER_KEY(KEY_0),       PORTIER_KEY(KEY_ENTER),
    PORTIER_KEY(KEY_SPACE),   PORTIER_KEY(KEY_A),
    PORTIER_KEY(KEY_B),       PORTIER_KEY(KEY_C),
    PORTIER_KEY(KEY_D),       PORTIER_KEY(KEY_E),
    PORTIER_KEY(KEY_F),       PORTIER_KEY(KEY_G),
    PORTIER_KEY(KEY_H),       PORTIER_KEY(KEY_I),
    PORTIER_KEY(KEY_J),       PORTIER_KEY(KEY_K),
    PORTIER_KEY(KEY_L),       PORTIER_KEY(KEY_M),
    PORTIER_KEY(KEY_N),       PORTIER_KEY(KEY_O),
    PORTIER_KEY(KEY_P),       PORTIER_KEY(KEY_Q),
    PORTIER_KEY(KEY_R),       PORTIER_KEY(KEY_S),
    PORTIER_KEY(KEY_T),       PORTIER_KEY(KEY_U),
    PORTIER_KEY(KEY_V),       PORTIER_KEY(KEY_W),
    PORTIER_KEY(KEY_X),       PORTIER_KEY(KEY_Y),
    PORTIER_KEY(KEY_Z),       PORTIER_KEY(KEY_F1),
    PORTIER_KEY(KEY_F2),      PORTIER_KEY(KEY_F3),
    PORTIER_KEY(KEY_F4),      PORTIER_KEY(KEY_F5),
    PORTIER_KEY(KEY_F6),      PORTIER_KEY(KEY_F7),
    PORTIER_KEY(KEY_F8),      PORTIER_KEY(KEY_F9),
    PORTIER_KEY(KEY_F10),     PORTIER_KEY(KEY_F11),
    PORTIER_KEY(KEY_F12),     PORTIER_KEY(KEY_KP0),
    PORTIER_KEY(KEY_KP1),     PORTIER_KEY(KEY_KP2),
    PORTIER_KEY(KEY_KP3),     PORTIER_KEY(KEY_KP4),
    PORTIER_KEY(KEY_KP5),     PORTIER_KEY(KEY_KP6),
    PORTIER_KEY(KEY_KP7),     PORTIER_KEY(KEY_KP8),
    PORTIER_KEY(KEY_KP9),     PORTIER_KEY(KEY_KPENTER),
    PORTIER_KEY(KEY_UP),      PORTIER_KEY(KEY_DOWN),
    PORTIER_KEY(KEY_LEFT),    PORTIER_KEY(KEY_RIGHT),
    PORTIER_KEY(KEY_HOME),    PORTIER_KEY(KEY_POWER),
    PORTIER_KEY(KEY_MENU),    PORTIER_KEY(KEY_WAKEUP),
    PORTIER_KEY(KEY_PROG1),   PORTIER_KEY(KEY_PROG2),
    PORTIER_KEY(KEY_PROG3),   PORTIER_KEY(KEY_PROG4),
    PORTIER_KEY(KEY_PHONE),   PORTIER_KEY(KEY_HELP),
    PORTIER_KEY(KEY_SOUND),   PORTIER_KEY(KEY_CAMERA),
    PORTIER_KEY(KEY_OK),      PORTIER_KEY(KEY_SELECT),
    PORTIER_KEY(KEY_UNKNOWN), PORTIER_KEY(BTN_0),
    PORTIER_KEY(BTN_1),       PORTIER_KEY(BTN_2),
    PORTIER_KEY(BTN_3),       PORTIER_KEY(BTN_4),
    PORTIER_KEY(BTN_5),       PORTIER_KEY(BTN_6),
    PORTIER_KEY(BTN_7),       PORTIER_KEY(BTN_8),
    PORTIER_KEY(BTN_9),       PORTIER_KEY(BTN_LEFT),
    PORTIER_KEY(BTN_RIGHT),   PORTIER_KEY(BTN_MIDDLE),
    PORTIER_KEY(BTN_TRIGGER), PORTIER_KEY(BTN_SOUTH),
    PORTIER_KEY(BTN_A),       PORTIER_KEY(BTN_TRIGGER_HAPPY1),
};
#undef PORTIER_KEY

}  // namespace

int parse_key_code(std::string_view name) {
  for (const auto &k : kKeyNames)
    if (name == k.name) return k.code;
  if (name.empty() || name.size() > 4) return -1;
  int n = 0;
  for (char c : name) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n <= KEY_MAX ? n : -1;
}

// --- GPIO ------------------------------------------------------------------

std::unique_ptr<GpioButton> GpioButton::open(const GpioButtonConfig &config, std::string *error) {
  std::unique_ptr<GpioButton> b(new GpioButton());
  b->config_ = config;
  gpiod_chip *chip = nullptr;
  gpiod_line *line = nullptr;
  if (!gpio_open_line(config.chip, config.line, &chip, &line, error)) return nullptr;
  b->chip_ = chip;
  if (gpiod_line_request_both_edges_events(line, kConsumer) < 0) {
    const int err = errno;
    *error = "line " + std::to_string(config.line) + " of GPIO chip '" + config.chip + "' " +
             (err == EBUSY ? std::string("is busy (used by another program)")
                           : "cannot watch its edges: " + std::string(strerror(err)));
    return nullptr;
  }
  b->line_ = line;
  return b;
}

GpioButton::~GpioButton() {
  if (line_) gpiod_line_release(line_);
  if (chip_) gpiod_chip_close(chip_);
}

int GpioButton::fd() const { return gpiod_line_event_get_fd(line_); }

int GpioButton::read_presses(std::string *error) {
  const int fd = gpiod_line_event_get_fd(line_);
  const int press_type = config_.edge == GpioButtonConfig::Edge::Falling
                             ? GPIOD_LINE_EVENT_FALLING_EDGE
                             : GPIOD_LINE_EVENT_RISING_EDGE;
  const int64_t quiet_ns = static_cast<int64_t>(config_.debounce.count()) * 1000000;
  int presses = 0;
  // The event descriptor blocks on read: only read what poll says is there.
  for (int i = 0; i < kMaxEventsPerRead && readable_now(fd); ++i) {
    gpiod_line_event ev;
    if (gpiod_line_event_read(line_, &ev) < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      *error = "reading GPIO events of line " + std::to_string(config_.line) + " of '" +
               config_.chip + "': " + strerror(errno);
      return -1;
    }
    const int64_t t = static_cast<int64_t>(ev.ts.tv_sec) * 1000000000 + ev.ts.tv_nsec;
    const bool quiet_before = !have_edge_ || t - last_edge_ns_ >= quiet_ns;
    have_edge_ = true;
    last_edge_ns_ = t;
    if (ev.event_type == press_type && quiet_before) ++presses;
  }
  return presses;
}

// --- evdev -----------------------------------------------------------------

std::unique_ptr<EvdevButton> EvdevButton::open(const std::string &device, int key_code,
                                               std::string *error) {
  int fd = ::open(device.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot open input device '" + device + "': " + strerror(errno);
    return nullptr;
  }
  // A device that cannot send the key would leave the door deaf without a word.
  unsigned long keys[KEY_CNT / (8 * sizeof(unsigned long)) + 1] = {};
  if (ioctl(fd, EVIOCGBIT(EV_KEY, sizeof keys), keys) < 0) {
    *error = "'" + device + "' is not an input event device: " + strerror(errno);
    ::close(fd);
    return nullptr;
  }
  const size_t bits = 8 * sizeof(unsigned long);
  if (!(keys[key_code / bits] >> (key_code % bits) & 1UL)) {
    *error = "input device '" + device + "' has no key " + std::to_string(key_code);
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<EvdevButton>(new EvdevButton(fd, key_code));
}

std::unique_ptr<EvdevButton> EvdevButton::adopt(int fd, int key_code) {
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  return std::unique_ptr<EvdevButton>(new EvdevButton(fd, key_code));
}

EvdevButton::~EvdevButton() {
  if (fd_ >= 0) ::close(fd_);
}

int EvdevButton::read_presses(std::string *error) {
  static_assert(sizeof(input_event) <= sizeof(partial_), "room for one record");
  int presses = 0;
  for (int i = 0; i < kMaxEventsPerRead; ++i) {
    ssize_t n = ::read(fd_, partial_ + partial_size_, sizeof(input_event) - partial_size_);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      *error = std::string("reading the input device: ") + strerror(errno);
      return -1;
    }
    if (n == 0) {
      *error = "the input device was closed";
      return -1;
    }
    partial_size_ += static_cast<size_t>(n);
    if (partial_size_ < sizeof(input_event)) continue;
    partial_size_ = 0;
    input_event ev;
    memcpy(&ev, partial_, sizeof ev);
    if (ev.type == EV_KEY && ev.code == key_code_ && ev.value == 1) ++presses;
  }
  return presses;
}

// --- ring guard --------------------------------------------------------------

const char *RingGuard::state_name(State s) {
  switch (s) {
    case State::Idle:
      return "idle";
    case State::Ringing:
      return "ringing";
    case State::InCall:
      return "in-call";
  }
  return "?";
}

bool RingGuard::press() {
  if (state_ != State::Idle) return false;
  state_ = State::Ringing;
  return true;
}

void RingGuard::answered() {
  if (state_ == State::Ringing) state_ = State::InCall;
}

void RingGuard::ended() { state_ = State::Idle; }

}  // namespace portier::door
