#include "door/child_process.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

namespace portier::door {
namespace {

void close_range_compat(unsigned first, unsigned last) {
  if (first > last) return;
  // close_range(2) is Linux 5.9; older kernels get the loop.
  if (syscall(SYS_close_range, first, last, 0) == 0) return;
  long max = sysconf(_SC_OPEN_MAX);
  if (max < 0 || max > 65536) max = 65536;
  for (unsigned fd = first; fd <= last && fd < static_cast<unsigned>(max); ++fd) close(fd);
}

}  // namespace

ChildProcess::~ChildProcess() {
  if (fd_ >= 0) close(fd_);
}

bool ChildProcess::start(int (*body)(void *), void *arg, const std::vector<int> &keep,
                         std::string *error) {
  if (running()) {
    *error = "a child is already running";
    return false;
  }
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    *error = std::string("pipe: ") + strerror(errno);
    return false;
  }
  // Close-on-exec on the write end too: a program the child execs (or anything
  // another thread execs meanwhile) must not keep it open after the child ends.
  keep_ = keep;
  keep_.push_back(pipe_fds[1]);
  std::sort(keep_.begin(), keep_.end());
  pid_t pid = fork();
  if (pid < 0) {
    *error = std::string("fork: ") + strerror(errno);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return false;
  }
  if (pid == 0) {
    close(pipe_fds[0]);
    child_main(this, body, arg);
  }
  close(pipe_fds[1]);
  pid_ = pid;
  fd_ = pipe_fds[0];
  return true;
}

void ChildProcess::child_main(ChildProcess *self, int (*body)(void *), void *arg) {
  close_fds_except(self->keep_.data(), self->keep_.size());
  _exit(body(arg));
}

std::optional<int> ChildProcess::reap() {
  if (!running()) return std::nullopt;
  // The pipe ends when the child's descriptors are released, an instant before
  // it can be waited for: after end-of-file a blocking wait is that instant.
  pollfd p{fd_, POLLIN, 0};
  const bool ended = poll(&p, 1, 0) == 1;
  int status = 0;
  pid_t r;
  do {
    r = waitpid(pid_, &status, ended ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return std::nullopt;
  if (r < 0) status = 0;  // ECHILD: SIGCHLD is ignored and the kernel reaped it
  close(fd_);
  fd_ = -1;
  pid_ = -1;
  return status;
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "ended with wait status " + std::to_string(status);
}

std::vector<int> open_fds() {
  std::vector<int> fds;
  DIR *dir = opendir("/proc/self/fd");
  if (!dir) return fds;
  const int own = dirfd(dir);
  while (dirent *e = readdir(dir)) {
    char *end = nullptr;
    long n = strtol(e->d_name, &end, 10);
    if (end != e->d_name && *end == 0 && n != own) fds.push_back(static_cast<int>(n));
  }
  closedir(dir);
  std::sort(fds.begin(), fds.end());
  return fds;
}

void close_fds_except(const int *keep, size_t count) {
  unsigned next = 3;
  for (size_t i = 0; i < count; ++i) {
    if (keep[i] < static_cast<int>(next)) continue;
    close_range_compat(next, static_cast<unsigned>(keep[i]) - 1);
    next = static_cast<unsigned>(keep[i]) + 1;
  }
  close_range_compat(next, UINT_MAX);
}

}  // namespace portier::door
