#include "runtime/daemon.h"

#include <fcntl.h>
#include <sofia-sip/su_glib.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "common/log.h"
#include "runtime/mainloop.h"
#include "tls/tls_transport.h"

namespace portier {
namespace {

// The write end of the running Daemon's signal pipe, for the handler.
int signal_write_fd = -1;

void on_signal_number(int signo) {
  const int saved = errno;
  const unsigned char byte = static_cast<unsigned char>(signo);
  if (signal_write_fd >= 0) (void)!write(signal_write_fd, &byte, 1);
  errno = saved;
}

}  // namespace

Daemon::~Daemon() {
  if (stop_timer_) su_timer_destroy(stop_timer_);
  if (loop_) g_main_loop_unref(loop_);
  if (signal_pipe_[0] >= 0) {
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGHUP, SIG_DFL);
    signal_write_fd = -1;
  }
  if (root_) {
    su_root_destroy(root_);
    su_deinit();
  }
  // Only now: destroying the root takes the pipe out of its epoll set, which
  // fails (EBADF, logged by sofia) once the descriptor is closed.
  if (signal_pipe_[0] >= 0) {
    close(signal_pipe_[0]);
    close(signal_pipe_[1]);
  }
}

bool Daemon::init() {
  PLOG_INFO("open files allowed: %lu", mainloop::raise_fd_limit());
  // Before sofia-sip makes any TLS context.
  tls::set_process_floor();
  // SIP, timers, the control socket (and in the door and the monitor the
  // media bus messages) share one thread and need no locks.
  root_ = loop_kind_ == Loop::GLib ? mainloop::sofia_root() : mainloop::native_sofia_root();
  if (!root_) {
    PLOG_ERROR("cannot create the sofia-sip root");
    return false;
  }
  if (loop_kind_ == Loop::GLib) loop_ = g_main_loop_new(nullptr, FALSE);
  return catch_signals_on_root();
}

// The classic self-pipe, on either loop (a GLib-driven root watches it too):
// the handler only writes a byte, the loop reads it and stops (or reloads,
// for SIGHUP) on its own thread. (A signalfd would need the signals blocked in every
// thread, and the mask would pass on to the programs a daemon runs.)
bool Daemon::catch_signals_on_root() {
  if (pipe2(signal_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    PLOG_ERROR("signal pipe: %s", strerror(errno));
    return false;
  }
  if (su_wait_create(signal_wait_, signal_pipe_[0], SU_WAIT_IN) != 0 ||
      su_root_register(root_, signal_wait_, on_signal_pipe, this, 0) < 0) {
    PLOG_ERROR("cannot watch the signal pipe");
    return false;
  }
  signal_write_fd = signal_pipe_[1];
  struct sigaction sa {};
  sa.sa_handler = on_signal_number;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  return true;
}

int Daemon::on_signal_pipe(su_root_magic_t *, su_wait_t *, su_wakeup_arg_t *data) {
  auto *self = static_cast<Daemon *>(data);
  unsigned char bytes[16];
  bool stop = false, reload = false;
  ssize_t n;
  while ((n = read(self->signal_pipe_[0], bytes, sizeof bytes)) > 0)
    for (ssize_t i = 0; i < n; ++i) (bytes[i] == SIGHUP ? reload : stop) = true;
  if (reload) {
    PLOG_INFO("SIGHUP: reloading");
    const std::string failed = self->reload();
    if (!failed.empty()) PLOG_ERROR("reload failed, the old state is kept: %s", failed.c_str());
  }
  if (stop) self->stop();
  return 0;
}

std::string Daemon::reload() {
  std::string failed;
  for (const auto &handler : reloads_) {
    const std::string e = handler();
    if (!e.empty()) failed += (failed.empty() ? "" : "; ") + e;
  }
  if (failed.empty()) PLOG_INFO("reloaded");
  return failed;
}

void Daemon::quit() {
  if (loop_)
    g_main_loop_quit(loop_);
  else
    su_root_break(root_);
}

void Daemon::stop() {
  if (stopping_) return;
  stopping_ = true;
  PLOG_INFO("stopping");
  if (!stop_) {
    quit();
    return;
  }
  stop_([this] { quit(); });
  // If the proxy is gone, nua's unregistration may take its full timeout.
  stop_timer_ = su_timer_create(su_root_task(root_), 5000);
  su_timer_set(
      stop_timer_,
      [](su_root_magic_t *, su_timer_t *, su_timer_arg_t *self) {
        static_cast<Daemon *>(self)->quit();
      },
      this);
}

void Daemon::run() {
  mainloop::notify_ready(root_);
  if (loop_)
    g_main_loop_run(loop_);
  else
    su_root_run(root_);
  sd_notify(0, "STOPPING=1");
}

}  // namespace portier
