// The life every portier daemon shares around its main loop: a sofia-sip root,
// SIGTERM and SIGINT, systemd's READY and STOPPING, and the teardown in the
// right order. The program makes its own objects between init() and run(), in
// a scope that ends before the Daemon does.
#pragma once

#include <glib.h>
#include <sofia-sip/su_wait.h>

#include <functional>
#include <string>
#include <vector>

namespace portier {

class Daemon {
 public:
  // Which loop drives the root. The door and the monitor run GStreamer, whose
  // bus, clocks and windows live on GLib's default context: sofia-sip runs
  // there as one more GSource. The proxy runs no GStreamer and takes
  // sofia-sip's own epoll loop, which is cheaper per packet.
  enum class Loop { GLib, Sofia };

  explicit Daemon(Loop loop = Loop::GLib) : loop_kind_(loop) {}
  ~Daemon();
  Daemon(const Daemon &) = delete;
  Daemon &operator=(const Daemon &) = delete;

  // Logs the open-file limit, makes the sofia-sip root and the main loop, and
  // catches SIGTERM and SIGINT. False, logged, when the root cannot be made.
  bool init();
  su_root_t *root() const { return root_; }

  // What stopping does before the loop ends: `stop` lets go of SIP (ends
  // calls, unregisters) and calls its argument when done. The loop ends then,
  // or 5 s later at most. Without it, stopping ends the loop at once.
  void on_stop(std::function<void(std::function<void()> done)> stop) { stop_ = std::move(stop); }
  // Stops once: a signal and, say, a window's close may both ask.
  void stop();

  // What a reload does (SIGHUP, and the control socket's "reload" through
  // reload()): each handler reloads one thing (TLS certificates, a users
  // file) and returns "" or what failed, keeping what it had.
  void on_reload(std::function<std::string()> handler) { reloads_.push_back(std::move(handler)); }
  // Runs every reload handler, each once, on the loop's thread: "" when all
  // succeeded, else their errors joined by "; ".
  std::string reload();

  // READY=1 (and the watchdog), the loop until stopped, STOPPING=1.
  void run();

 private:
  static int on_signal_pipe(su_root_magic_t *, su_wait_t *, su_wakeup_arg_t *self);
  bool catch_signals_on_root();
  void quit();

  const Loop loop_kind_;
  su_root_t *root_ = nullptr;
  GMainLoop *loop_ = nullptr;      // Loop::GLib only
  int signal_pipe_[2] = {-1, -1};  // the signal handler's byte, read on the loop
  su_wait_t signal_wait_[1] = {};
  su_timer_t *stop_timer_ = nullptr;
  std::function<void(std::function<void()>)> stop_;
  bool stopping_ = false;
  std::vector<std::function<std::string()>> reloads_;
};

}  // namespace portier
