#include <errno.h>
#include <gpiod.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <thread>

#include "door/actuator.h"
#include "door/gpio_open.h"

namespace portier::door {
namespace {

constexpr const char *kConsumer = "portier-door";
constexpr int kExitSetActiveFailed = 2;
constexpr int kExitSetInactiveFailed = 3;

}  // namespace

std::unique_ptr<GpioActuator> GpioActuator::open(const GpioLineConfig &config,
                                                 std::chrono::milliseconds pulse_length,
                                                 std::string *error) {
  std::unique_ptr<GpioActuator> a(new GpioActuator());
  a->config_ = config;
  a->pulse_length_ = pulse_length;
  const std::vector<int> before = open_fds();
  if (!gpio_open_line(config.chip, config.line, &a->chip_, &a->line_, error)) return nullptr;
  const int inactive = config.active_low ? 1 : 0;
  // A daemon killed mid-pulse and restarted at once finds the line still held by
  // its pulse child; that child lets go within one pulse length, so wait for it
  // instead of failing the start.
  const auto give_up = std::chrono::steady_clock::now() + pulse_length + std::chrono::seconds(1);
  while (gpiod_line_request_output(a->line_, kConsumer, inactive) < 0) {
    const int err = errno;
    if (err == EBUSY && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    *error = "line " + std::to_string(config.line) + " of GPIO chip '" + config.chip + "' " +
             (err == EBUSY ? std::string("is busy (used by another program)")
                           : "cannot be set as an output: " + std::string(strerror(err)));
    a->line_ = nullptr;  // not requested: nothing to set or release
    return nullptr;      // the destructor closes the chip
  }
  // What opening the chip and requesting the line added is what the pulse child
  // must keep; everything else it closes.
  const std::vector<int> after = open_fds();
  std::set_difference(after.begin(), after.end(), before.begin(), before.end(),
                      std::back_inserter(a->keep_fds_));
  return a;
}

GpioActuator::~GpioActuator() {
  if (line_) {
    // A running pulse child owns the end of its pulse; otherwise make sure the
    // line is left inactive (the kernel keeps the last value after release).
    if (!child_.running() || child_.reap()) gpiod_line_set_value(line_, config_.active_low ? 1 : 0);
    gpiod_line_release(line_);
  }
  if (chip_) gpiod_chip_close(chip_);
}

PulseResult GpioActuator::pulse(const std::string &action) {
  if (child_.running()) return {PulseStatus::Busy, "a pulse is still running"};
  std::string error;
  if (!child_.start(&GpioActuator::hold, this, keep_fds_, &error))
    return {PulseStatus::Failed, "cannot start the pulse: " + error};
  return {PulseStatus::Started, "pulse of " + std::to_string(pulse_length_.count()) +
                                    " ms on line " + std::to_string(config_.line) + " of " +
                                    config_.chip};
}

// The pulse, in a child that holds the line. Async-signal-safe calls only (the
// libgpiod v1 value setter is one ioctl on a buffer on the stack).
int GpioActuator::hold(void *arg) {
  auto *self = static_cast<GpioActuator *>(arg);
  struct sigaction ignore;
  memset(&ignore, 0, sizeof ignore);
  ignore.sa_handler = SIG_IGN;
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGPIPE}) sigaction(sig, &ignore, nullptr);

  const int active = self->config_.active_low ? 0 : 1;
  const int inactive = 1 - active;
  if (gpiod_line_set_value(self->line_, active) < 0) {
    gpiod_line_set_value(self->line_, inactive);
    return kExitSetActiveFailed;
  }
  // Timed from after the line went active, so the line is active for at least
  // the pulse length.
  timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  const long long ms = self->pulse_length_.count();
  deadline.tv_sec += static_cast<time_t>(ms / 1000);
  deadline.tv_nsec += static_cast<long>(ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec += 1;
    deadline.tv_nsec -= 1000000000L;
  }
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, nullptr) == EINTR) {
  }
  for (int attempt = 0; attempt < 3; ++attempt)
    if (gpiod_line_set_value(self->line_, inactive) == 0) return 0;
  return kExitSetInactiveFailed;
}

PulseResult GpioActuator::outcome(int wait_status) const {
  if (WIFEXITED(wait_status)) {
    switch (WEXITSTATUS(wait_status)) {
      case 0:
        return {PulseStatus::Done, "pulse done, line inactive"};
      case kExitSetActiveFailed:
        return {PulseStatus::Failed, "could not set the line active"};
      case kExitSetInactiveFailed:
        return {PulseStatus::Failed, "could not set the line back to inactive"};
    }
  }
  return {PulseStatus::Failed, "pulse child " + describe_wait_status(wait_status)};
}

}  // namespace portier::door
