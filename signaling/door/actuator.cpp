#include "door/actuator.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

namespace portier::door {
namespace {

// The command's whole environment besides ACTION: nothing of the daemon's.
constexpr const char *kCommandPath =
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr int kExitTimedOut = 124;  // as timeout(1)
constexpr int kExitNoFork = 125;
constexpr int kExitNoExec = 127;  // as a shell's "command not found"

int64_t monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Signal dispositions survive fork, and SIG_IGN survives exec: the program gets
// the defaults it expects (a daemon often ignores SIGPIPE).
void default_signals() {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) sigaction(sig, &sa, nullptr);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace

const char *pulse_status_name(PulseStatus s) {
  switch (s) {
    case PulseStatus::Done:
      return "done";
    case PulseStatus::Started:
      return "started";
    case PulseStatus::Busy:
      return "busy";
    case PulseStatus::Failed:
      return "failed";
  }
  return "?";
}

std::optional<PulseResult> Actuator::finish() {
  std::optional<int> status = child_.reap();
  if (!status) return std::nullopt;
  return outcome(*status);
}

PulseResult Actuator::outcome(int wait_status) const {
  if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 0)
    return {PulseStatus::Done, std::string(type()) + " pulse done"};
  return {PulseStatus::Failed, std::string(type()) + " pulse " + describe_wait_status(wait_status)};
}

PulseResult LogActuator::pulse(const std::string &action) {
  PLOG_INFO("action %s: log-only actuator, nothing switched", action.c_str());
  return {PulseStatus::Done, "logged only"};
}

CommandActuator::CommandActuator(std::vector<std::string> argv, std::chrono::milliseconds timeout)
    : argv_(std::move(argv)), timeout_(timeout) {
  for (auto &a : argv_) argv_ptrs_.push_back(a.data());
  argv_ptrs_.push_back(nullptr);
  timeout_ms_ = static_cast<int>(timeout_.count());
}

std::string CommandActuator::check(const std::vector<std::string> &argv) {
  if (argv.empty()) return "no command given";
  const std::string &path = argv[0];
  if (path.empty() || path[0] != '/') return "'" + path + "' is not an absolute path";
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return "'" + path + "': " + strerror(errno);
  if (!S_ISREG(st.st_mode) || access(path.c_str(), X_OK) != 0)
    return "'" + path + "' is not an executable file";
  return "";
}

PulseResult CommandActuator::pulse(const std::string &action) {
  if (child_.running()) return {PulseStatus::Busy, "the command of a previous pulse still runs"};
  if (argv_.empty()) return {PulseStatus::Failed, "no command configured"};
  env_strings_ = {kCommandPath, "ACTION=" + action};
  env_ptrs_.clear();
  for (auto &e : env_strings_) env_ptrs_.push_back(e.data());
  env_ptrs_.push_back(nullptr);
  std::string error;
  // The supervisor keeps no descriptor of the daemon's; the program gets 0-2.
  if (!child_.start(&CommandActuator::supervise, this, {}, &error))
    return {PulseStatus::Failed, "cannot start the command: " + error};
  return {PulseStatus::Started, "command started"};
}

// The supervisor, in a child of the daemon: runs the command in a process group
// of its own and kills that group when it overruns. Async-signal-safe only.
int CommandActuator::supervise(void *arg) {
  auto *self = static_cast<CommandActuator *>(arg);
  default_signals();
  pid_t pid = fork();
  if (pid < 0) return kExitNoFork;
  if (pid == 0) {
    setpgid(0, 0);
    int null_fd = open("/dev/null", O_RDONLY);
    if (null_fd > 0) {
      dup2(null_fd, 0);
      close(null_fd);
    }
    execve(self->argv_ptrs_[0], self->argv_ptrs_.data(), self->env_ptrs_.data());
    _exit(kExitNoExec);
  }
  setpgid(pid, pid);  // both sides set it, so it holds whichever runs first

  const int64_t deadline = monotonic_ms() + self->timeout_ms_;
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  int status = 0;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) return kExitNoFork;
    const int64_t left = deadline - monotonic_ms();
    if (left <= 0) {
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return kExitTimedOut;
    }
    if (pidfd >= 0) {
      pollfd p{pidfd, POLLIN, 0};
      poll(&p, 1, static_cast<int>(left));
    } else {
      // No pidfd (kernel < 5.3, valgrind): look again every 20 ms.
      timespec ts{0, 20 * 1000 * 1000};
      nanosleep(&ts, nullptr);
    }
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

PulseResult CommandActuator::outcome(int wait_status) const {
  if (!WIFEXITED(wait_status))
    return {PulseStatus::Failed, "command supervisor " + describe_wait_status(wait_status)};
  const int code = WEXITSTATUS(wait_status);
  if (code == 0) return {PulseStatus::Done, "command exited with status 0"};
  if (code == kExitTimedOut)
    return {PulseStatus::Failed, "command killed after " + std::to_string(timeout_ms_) +
                                     " ms (timeout) or exited with status 124"};
  if (code == kExitNoExec) return {PulseStatus::Failed, "command could not be run (status 127)"};
  if (code == kExitNoFork) return {PulseStatus::Failed, "command could not be started"};
  if (code > 128)
    return {PulseStatus::Failed, "command killed by signal " + std::to_string(code - 128)};
  return {PulseStatus::Failed, "command exited with status " + std::to_string(code)};
}

}  // namespace portier::door
