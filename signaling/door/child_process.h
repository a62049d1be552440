// Child processes of the door (a lock pulse, an action command) that the daemon
// watches from its GLib main loop, with no SIGCHLD handler and no blocking wait.
// Each child holds the write end of a pipe and nothing else of the daemon's; the
// daemon polls the read end, which reports end-of-file once the child has exited.
// (A pidfd would do the same on Linux >= 5.3, but not under valgrind, which the
// unit tests run under.) What runs between fork() and exit is limited to
// async-signal-safe calls, since the daemon has other threads (GStreamer's).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace portier::door {

class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();  // closes fd(); neither kills nor waits for the child
  ChildProcess(const ChildProcess &) = delete;
  ChildProcess &operator=(const ChildProcess &) = delete;

  // Forks; the child closes every descriptor but 0-2 and `keep` (so it does not
  // hold the daemon's sockets: a restarted daemon could not bind its SIP port
  // while a pulse runs), runs `body(arg)` and _exit()s with its return value.
  // `body` must only make async-signal-safe calls. False with *error when the
  // fork fails.
  bool start(int (*body)(void *), void *arg, const std::vector<int> &keep, std::string *error);
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // Readable (POLLIN/POLLHUP, which GLib reports for G_IO_IN) once the child has
  // exited; -1 when no child runs.
  int fd() const { return fd_; }
  // The child's wait status (see waitpid(2)) once it has exited, then fd() is
  // closed and -1; nullopt while it still runs. Never blocks longer than the
  // child's last instant: once fd() is readable this returns the status. A child
  // reaped by someone else (SIGCHLD ignored) reads as a normal exit 0.
  std::optional<int> reap();

 private:
  static void child_main(ChildProcess *self, int (*body)(void *), void *arg);
  pid_t pid_ = -1;
  int fd_ = -1;
  std::vector<int> keep_;  // sorted, with the pipe's write end; built before fork
};

// "exited with status 3", "killed by signal 9": for logs.
std::string describe_wait_status(int status);

// The descriptors open in this process (from /proc/self/fd), sorted.
std::vector<int> open_fds();

// Closes every descriptor >= 3 except those in `keep` (sorted). Async-signal-safe.
void close_fds_except(const int *keep, size_t count);

}  // namespace portier::door
