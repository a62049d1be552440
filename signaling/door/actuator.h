// What an accepted action does: pulse a GPIO line (the lock relay), run a
// command, or only log. The daemon owns one Actuator per configured target and
// calls pulse() from its SIP callbacks; pulse() never blocks longer than a fork.
//
// A pulse that outlives the call (GPIO hold, command) runs in a child process the
// daemon watches through fd():
//
//   auto r = actuator->pulse("door");
//   if (r.status == PulseStatus::Started)
//     g_unix_fd_add(actuator->fd(), G_IO_IN, on_done, actuator);  // on_done:
//       // if (auto end = actuator->finish()) log *end; return G_SOURCE_REMOVE;
//
// finish() closes that fd, so the GLib source must go in the same callback.
// An actuator runs one pulse at a time: until finish() has collected a pulse,
// pulse() returns Busy and does nothing (the door is open already; a command
// should not pile up).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "door/child_process.h"

struct gpiod_chip;
struct gpiod_line;

namespace portier::door {

enum class PulseStatus {
  Done,     // finished already (log-only)
  Started,  // runs in a child; watch fd(), then finish()
  Busy,     // a pulse still runs: this one is ignored
  Failed,   // see reason
};
const char *pulse_status_name(PulseStatus s);

struct PulseResult {
  PulseStatus status = PulseStatus::Failed;
  std::string reason;  // for logs
};

class Actuator {
 public:
  virtual ~Actuator() = default;
  virtual const char *type() const = 0;  // "log", "command", "gpio"
  virtual PulseResult pulse(const std::string &action) = 0;
  // Readable (G_IO_IN) once the running pulse has ended; -1 when none runs.
  virtual int fd() const { return child_.fd(); }
  // The outcome of a pulse that has ended (Done or Failed), once; nullopt while
  // it runs or when none was started. Reaps the child and closes fd(). Once fd()
  // is readable this always returns the outcome.
  virtual std::optional<PulseResult> finish();

 protected:
  // How a child's wait status reads in PulseResult; the default treats exit 0 as
  // success.
  virtual PulseResult outcome(int wait_status) const;
  ChildProcess child_;
};

// Only writes a log line: for trying a config, or for an action with no hardware.
class LogActuator : public Actuator {
 public:
  const char *type() const override { return "log"; }
  PulseResult pulse(const std::string &action) override;
};

// Runs a program for each pulse: argv[0] must be an absolute path; no shell, so
// nothing in the config is interpreted. The program gets stdin from /dev/null,
// keeps stdout/stderr (the journal), inherits no other descriptor and an
// environment of its own: PATH, and ACTION=<action name>; never the daemon's
// environment, which may hold credentials. It runs under a small supervisor
// child that kills its whole process group after `timeout`, so the runtime is
// bounded even if the daemon is gone. Exit status 124 means it was killed for
// taking too long (as with timeout(1)).
class CommandActuator : public Actuator {
 public:
  CommandActuator(std::vector<std::string> argv, std::chrono::milliseconds timeout);
  // "" when argv can be run (absolute, executable), else why not.
  static std::string check(const std::vector<std::string> &argv);
  const char *type() const override { return "command"; }
  PulseResult pulse(const std::string &action) override;

 protected:
  PulseResult outcome(int wait_status) const override;

 private:
  std::vector<std::string> argv_;
  std::chrono::milliseconds timeout_;
  // Built before fork: the child may not allocate.
  std::vector<std::string> env_strings_;
  std::vector<char *> argv_ptrs_, env_ptrs_;
  int timeout_ms_ = 0;
  static int supervise(void *self);
};

// A GPIO output line driving the lock relay, through libgpiod (v1 API).
struct GpioLineConfig {
  std::string chip;  // "gpiochip0", "/dev/gpiochip0", "0" or the chip's label
  unsigned line = 0;
  bool active_low = false;  // the relay closes when the line is low
};

// The line is requested as an output at its inactive level as soon as the
// actuator opens, so a (re)start always leaves the lock shut. A pulse is a child
// process that holds the line: active, pulse-length, inactive, exit. The child
// does not die with the daemon (no PR_SET_PDEATHSIG on purpose): if the daemon is
// killed mid-pulse, the pulse still ends on time and the line goes back to
// inactive. It ignores SIGTERM/SIGINT/SIGHUP for the same reason, so systemd's
// default KillMode=control-group lets it finish (KillMode=mixed would SIGKILL it
// mid-pulse: do not use it for portier-door). A second pulse while one runs is
// ignored (Busy): the door is open, and extending it would need a message to the
// child that could be lost if the daemon dies.
class GpioActuator : public Actuator {
 public:
  // nullptr with *error ("GPIO chip 'x' not found", "line 40 does not exist on
  // gpiochip0 (32 lines)", "line 17 of gpiochip0 is busy") when the line cannot
  // be had.
  static std::unique_ptr<GpioActuator> open(const GpioLineConfig &config,
                                            std::chrono::milliseconds pulse_length,
                                            std::string *error);
  ~GpioActuator() override;
  const char *type() const override { return "gpio"; }
  PulseResult pulse(const std::string &action) override;

 protected:
  PulseResult outcome(int wait_status) const override;

 private:
  GpioActuator() = default;
  static int hold(void *self);

  GpioLineConfig config_;
  std::chrono::milliseconds pulse_length_{0};
  gpiod_chip *chip_ = nullptr;
  gpiod_line *line_ = nullptr;
  std::vector<int> keep_fds_;  // the chip's and the line's, kept open in the child
};

}  // namespace portier::door
