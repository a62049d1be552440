// The door's actuators. GPIO runs against the stand-in libgpiod, which records
// every value change of a line with its CLOCK_MONOTONIC time and the writing
// process; commands are real programs (/bin/sh) run through the real
// fork/exec path. Timings are only ever checked as lower bounds.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "door/actuator.h"
#include "door_test_util.h"
#include "fake_gpiod/fake_gpiod.h"

using namespace std::chrono_literals;
using door_test::TempDir;
using portier::door::Actuator;
using portier::door::CommandActuator;
using portier::door::GpioActuator;
using portier::door::GpioLineConfig;
using portier::door::LogActuator;
using portier::door::PulseResult;
using portier::door::PulseStatus;

namespace {

std::optional<PulseResult> wait_finish(Actuator &a) {
  if (!door_test::wait_readable(a.fd())) return std::nullopt;
  return a.finish();
}

int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Waits (bounded) until the record file holds a record with `value`; its index.
int wait_record(const std::string &path, int value, size_t from = 0) {
  for (int i = 0; i < 30000; ++i) {
    auto records = fake_gpiod::read_records(path);
    for (size_t k = from; k < records.size(); ++k)
      if (records[k].value == value) return static_cast<int>(k);
    usleep(2000);
  }
  return -1;
}

class GpioActuatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    record_ = dir_ / "gpio-record";
    fake_gpiod::set_record_file(record_);
  }
  void TearDown() override { fake_gpiod::set_record_file(""); }
  std::vector<fake_gpiod::Record> records() { return fake_gpiod::read_records(record_); }

  TempDir dir_;
  std::string record_;
};

}  // namespace

TEST_F(GpioActuatorTest, LineInactiveFromTheStartActiveForThePulseThenInactive) {
  std::string error;
  auto a = GpioActuator::open({"gpiochip0", 17, false}, 150ms, &error);
  ASSERT_TRUE(a) << error;
  // Requested as an output at the inactive level: a restart leaves the lock shut.
  auto r = records();
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].chip, "gpiochip0");
  EXPECT_EQ(r[0].offset, 17u);
  EXPECT_EQ(r[0].value, 0);

  PulseResult p = a->pulse("door");
  ASSERT_EQ(p.status, PulseStatus::Started) << p.reason;
  EXPECT_GE(a->fd(), 0);
  auto end = wait_finish(*a);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->status, PulseStatus::Done) << end->reason;
  EXPECT_EQ(a->fd(), -1);

  r = records();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[1].value, 1);
  EXPECT_EQ(r[2].value, 0);
  // The pulse child, not the daemon, holds the line through the pulse.
  EXPECT_NE(r[1].pid, getpid());
  EXPECT_EQ(r[2].pid, r[1].pid);
  EXPECT_GE(r[2].mono_ns - r[1].mono_ns, 150 * 1000000LL);
}

TEST_F(GpioActuatorTest, ActiveLowInvertsTheLevels) {
  std::string error;
  auto a = GpioActuator::open({"gpiochip1", 3, true}, 60ms, &error);
  ASSERT_TRUE(a) << error;
  ASSERT_EQ(a->pulse("gate").status, PulseStatus::Started);
  ASSERT_TRUE(wait_finish(*a));
  auto r = records();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].value, 1);  // inactive is high
  EXPECT_EQ(r[1].value, 0);
  EXPECT_EQ(r[2].value, 1);
  EXPECT_GE(r[2].mono_ns - r[1].mono_ns, 60 * 1000000LL);
}

TEST_F(GpioActuatorTest, ASecondPulseWhileOneRunsIsIgnored) {
  std::string error;
  auto a = GpioActuator::open({"gpiochip0", 5, false}, 300ms, &error);
  ASSERT_TRUE(a) << error;
  ASSERT_EQ(a->pulse("door").status, PulseStatus::Started);
  // Busy until finish() has collected the running pulse, however far it is.
  PulseResult again = a->pulse("door");
  EXPECT_EQ(again.status, PulseStatus::Busy);
  EXPECT_EQ(again.reason, "a pulse is still running");
  ASSERT_TRUE(wait_finish(*a));
  EXPECT_EQ(a->pulse("door").status, PulseStatus::Started);
  ASSERT_TRUE(wait_finish(*a));
  // Two pulses, one after the other, never overlapping.
  auto r = records();
  ASSERT_EQ(r.size(), 5u);
  for (size_t i = 1; i < r.size(); ++i) EXPECT_NE(r[i].value, r[i - 1].value) << i;
  EXPECT_EQ(r.back().value, 0);
}

TEST_F(GpioActuatorTest, KillingTheDaemonMidPulseStillEndsWithTheLineInactive) {
  // The "daemon" is a child that opens the actuator, pulses and waits; it is
  // SIGKILLed as soon as the line is active. A harness process between it and
  // the test is the subreaper, so the orphaned pulse child can be waited for.
  // Longer pulses are tried when the kill came too late to be mid-pulse (a very
  // slow machine): the check itself never depends on speed.
  bool killed_mid_pulse = false;
  for (int pulse_ms : {400, 1600, 6400}) {
    std::filesystem::remove(record_);
    int report[2];
    ASSERT_EQ(pipe(report), 0);
    pid_t harness = fork();
    ASSERT_GE(harness, 0);
    if (harness == 0) {
      close(report[0]);
      prctl(PR_SET_CHILD_SUBREAPER, 1);
      pid_t daemon = fork();
      if (daemon == 0) {
        std::string error;
        auto a = GpioActuator::open({"gpiochip0", 17, false}, std::chrono::milliseconds(pulse_ms),
                                    &error);
        if (!a || a->pulse("door").status != PulseStatus::Started) _exit(1);
        for (;;) pause();
      }
      if (wait_record(record_, 1) < 0) _exit(2);
      kill(daemon, SIGKILL);
      const int64_t killed_at = monotonic_ns();
      int status = 0;
      waitpid(daemon, &status, 0);
      const int64_t msg[2] = {killed_at, daemon};
      if (write(report[1], msg, sizeof msg) != sizeof msg) _exit(3);
      // The pulse child is ours now: wait for it to end on its own.
      while (waitpid(-1, &status, 0) > 0 || errno == EINTR) {
      }
      _exit(0);
    }
    close(report[1]);
    int64_t msg[2] = {0, 0};
    ASSERT_EQ(read(report[0], msg, sizeof msg), static_cast<ssize_t>(sizeof msg));
    close(report[0]);
    int status = 0;
    ASSERT_EQ(waitpid(harness, &status, 0), harness);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;

    auto r = records();
    ASSERT_EQ(r.size(), 3u);
    EXPECT_EQ(r[0].pid, msg[1]);  // requested inactive by the daemon
    EXPECT_EQ(r[1].value, 1);
    EXPECT_EQ(r[2].value, 0);  // and back to inactive after all
    EXPECT_NE(r[2].pid, msg[1]);
    EXPECT_EQ(r[2].pid, r[1].pid);
    EXPECT_GE(r[2].mono_ns - r[1].mono_ns, pulse_ms * 1000000LL);
    if (msg[0] < r[2].mono_ns) {
      killed_mid_pulse = true;
      break;
    }
  }
  EXPECT_TRUE(killed_mid_pulse);
}

TEST_F(GpioActuatorTest, ThePulseChildHoldsNoneOfTheDaemonsDescriptors) {
  int marker[2];
  ASSERT_EQ(pipe(marker), 0);  // stands for the daemon's SIP socket
  std::string error;
  bool checked = false;
  for (auto pulse : {1000ms, 4000ms, 16000ms}) {
    auto a = GpioActuator::open({"gpiochip0", 9, false}, pulse, &error);
    ASSERT_TRUE(a) << error;
    const size_t before = records().size();
    ASSERT_EQ(a->pulse("door").status, PulseStatus::Started);
    int active = wait_record(record_, 1, before);
    ASSERT_GE(active, 0);
    const pid_t child = records()[static_cast<size_t>(active)].pid;
    std::vector<int> fds;
    std::error_code ec;
    for (const auto &e :
         std::filesystem::directory_iterator("/proc/" + std::to_string(child) + "/fd", ec))
      fds.push_back(std::stoi(e.path().filename().string()));
    const bool still_running = !a->finish();
    if (still_running) {
      // The daemon's descriptors are gone in the child (the stand-in library has
      // none to keep); what is left is stdin/out/err and the pipe that tells the
      // daemon the pulse has ended.
      EXPECT_EQ(std::count(fds.begin(), fds.end(), marker[0]), 0);
      EXPECT_EQ(std::count(fds.begin(), fds.end(), marker[1]), 0);
      EXPECT_FALSE(fds.empty());
      checked = true;
    }
    ASSERT_TRUE(a->fd() < 0 || wait_finish(*a));
    if (checked) break;
  }
  EXPECT_TRUE(checked);
  close(marker[0]);
  close(marker[1]);
}

TEST_F(GpioActuatorTest, DestroyingTheActuatorLeavesTheLineInactive) {
  std::string error;
  {
    auto a = GpioActuator::open({"gpiochip0", 4, true}, 100ms, &error);
    ASSERT_TRUE(a) << error;
  }
  auto r = records();
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(r.back().value, 1);  // active-low: inactive is high
  // Released: the line can be requested again.
  EXPECT_TRUE(GpioActuator::open({"gpiochip0", 4, true}, 100ms, &error)) << error;
}

TEST_F(GpioActuatorTest, MissingChipWrongLineAndBusyLineAreClearErrors) {
  std::string error;
  EXPECT_FALSE(GpioActuator::open({"gpiochip9", 17, false}, 100ms, &error));
  EXPECT_EQ(error, "GPIO chip 'gpiochip9' not found (try gpiodetect)");
  EXPECT_FALSE(GpioActuator::open({"gpiochip0", 54, false}, 100ms, &error));
  EXPECT_EQ(error, "line 54 does not exist on GPIO chip 'gpiochip0' (54 lines, 0-53)");
  fake_gpiod::set_busy("gpiochip1", 2, true);
  EXPECT_FALSE(GpioActuator::open({"gpiochip1", 2, false}, 50ms, &error));
  EXPECT_EQ(error, "line 2 of GPIO chip 'gpiochip1' is busy (used by another program)");
  fake_gpiod::set_busy("gpiochip1", 2, false);
  // The chip by path, number and label.
  for (const char *chip : {"/dev/gpiochip1", "1", "fake-expander"})
    EXPECT_TRUE(GpioActuator::open({chip, 2, false}, 50ms, &error)) << chip << ": " << error;
  EXPECT_TRUE(records().size() >= 3u);
}

TEST(DoorLogActuator, LogsAndIsDone) {
  LogActuator a;
  PulseResult r = a.pulse("light");
  EXPECT_EQ(r.status, PulseStatus::Done);
  EXPECT_EQ(a.fd(), -1);
  EXPECT_FALSE(a.finish());
}

TEST(DoorCommandActuator, RunsWithACleanEnvironmentAndNoInheritedDescriptors) {
  TempDir dir;
  setenv("PORTIER_TEST_SECRET", "hunter2", 1);
  int marker[2];
  ASSERT_EQ(pipe(marker), 0);  // not close-on-exec: only the actuator keeps it out
  const std::string script =
      "env > \"$1/env\"; readlink /proc/$$/fd/0 > \"$1/stdin\"; "
      "if [ -e /proc/$$/fd/" +
      std::to_string(marker[1]) +
      " ]; then echo leaked; "
      "else echo closed; fi > \"$1/marker\"";
  CommandActuator a({"/bin/sh", "-c", script, "sh", dir.path()}, 10s);
  PulseResult r = a.pulse("door");
  ASSERT_EQ(r.status, PulseStatus::Started) << r.reason;
  auto end = wait_finish(a);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->status, PulseStatus::Done) << end->reason;
  unsetenv("PORTIER_TEST_SECRET");
  close(marker[0]);
  close(marker[1]);

  const std::string env = door_test::read_file(dir / "env");
  EXPECT_NE(env.find("ACTION=door\n"), std::string::npos) << env;
  EXPECT_NE(env.find("PATH=/usr/local/sbin:"), std::string::npos) << env;
  EXPECT_EQ(env.find("hunter2"), std::string::npos) << env;
  EXPECT_EQ(env.find("HOME="), std::string::npos) << env;
  EXPECT_EQ(door_test::read_file(dir / "stdin"), "/dev/null\n");
  EXPECT_EQ(door_test::read_file(dir / "marker"), "closed\n");
}

TEST(DoorCommandActuator, DoesNotBlockTheCallerAndRunsOneAtATime) {
  TempDir dir;
  const std::string fifo = dir / "go";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // The command waits for the test: it cannot have ended before the test says so.
  CommandActuator a({"/bin/sh", "-c", "read line < \"$1\"", "sh", fifo}, 60s);
  ASSERT_EQ(a.pulse("door").status, PulseStatus::Started);
  EXPECT_FALSE(a.finish());
  PulseResult again = a.pulse("door");
  EXPECT_EQ(again.status, PulseStatus::Busy);
  EXPECT_EQ(again.reason, "the command of a previous pulse still runs");
  int fd = open(fifo.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "x\n", 2), 2);
  close(fd);
  auto end = wait_finish(a);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->status, PulseStatus::Done);
}

TEST(DoorCommandActuator, ExitStatusAndTimeoutAreReported) {
  CommandActuator fails({"/bin/sh", "-c", "exit 3"}, 10s);
  ASSERT_EQ(fails.pulse("light").status, PulseStatus::Started);
  auto end = wait_finish(fails);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->status, PulseStatus::Failed);
  EXPECT_EQ(end->reason, "command exited with status 3");

  // The command and what it started in the background are killed at the timeout.
  // A machine too slow to start the background job before the timeout gets a
  // longer one: the check never depends on speed.
  bool checked = false;
  for (auto timeout : {500ms, 4000ms, 16000ms}) {
    TempDir dir;
    CommandActuator slow(
        {"/bin/sh", "-c", "sleep 60 & echo $! > \"$1/bg\"; wait", "sh", dir.path()}, timeout);
    ASSERT_EQ(slow.pulse("light").status, PulseStatus::Started);
    end = wait_finish(slow);
    ASSERT_TRUE(end);
    EXPECT_EQ(end->status, PulseStatus::Failed);
    EXPECT_EQ(end->reason, "command killed after " + std::to_string(timeout.count()) +
                               " ms (timeout) or exited with status 124");
    const std::string bg = door_test::read_file(dir / "bg");
    if (bg.empty()) continue;
    const pid_t sleeper = std::atoi(bg.c_str());
    // SIGKILL is delivered when the target next runs, so right after the kill the
    // sleeper may still show as runnable. It must be gone (or a zombie waiting for
    // init) well before its own 60 s are up; 30 s of polling tells the two apart on
    // any machine without depending on how fast this one is.
    const std::string stat_path = "/proc/" + std::to_string(sleeper) + "/stat";
    std::string state;
    for (int i = 0; i < 300; ++i) {
      state = door_test::read_file(stat_path);
      if (state.empty() || state.find("(sleep)") == std::string::npos) break;  // reaped
      const size_t paren = state.rfind(')');
      ASSERT_NE(paren, std::string::npos);
      if (state.compare(paren + 2, 1, "Z") == 0) break;
      std::this_thread::sleep_for(100ms);
    }
    EXPECT_TRUE(state.empty() || state.find("(sleep)") == std::string::npos ||
                state.compare(state.rfind(')') + 2, 1, "Z") == 0)
        << "the background sleep outlived the timeout: " << state;
    checked = true;
    break;
  }
  EXPECT_TRUE(checked);

  CommandActuator missing({"/nonexistent/open-door"}, 10s);
  ASSERT_EQ(missing.pulse("door").status, PulseStatus::Started);
  end = wait_finish(missing);
  ASSERT_TRUE(end);
  EXPECT_EQ(end->reason, "command could not be run (status 127)");
}

TEST(DoorCommandActuator, CheckNamesWhatIsWrong) {
  EXPECT_EQ(CommandActuator::check({}), "no command given");
  EXPECT_EQ(CommandActuator::check({"open-door"}), "'open-door' is not an absolute path");
  EXPECT_EQ(CommandActuator::check({"/nonexistent/open-door"}),
            "'/nonexistent/open-door': No such file or directory");
  TempDir dir;
  door_test::write_file(dir / "data", "not a program");
  chmod((dir / "data").c_str(), 0644);
  EXPECT_EQ(CommandActuator::check({dir / "data"}),
            "'" + (dir / "data") + "' is not an executable file");
  EXPECT_EQ(CommandActuator::check({dir.path()}), "'" + dir.path() + "' is not an executable file");
  EXPECT_EQ(CommandActuator::check({"/bin/true", "--x"}), "");
}
