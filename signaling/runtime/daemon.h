// The life every portier daemon shares around its main loop: sofia-sip on
// GLib's default context, SIGTERM and SIGINT, systemd's READY and STOPPING,
// and the teardown in the right order. The program makes its own objects
// between init() and run(), in a scope that ends before the Daemon does.
#pragma once

#include <glib.h>
#include <sofia-sip/su_wait.h>

#include <functional>

namespace portier {

class Daemon {
 public:
  Daemon() = default;
  ~Daemon();
  Daemon(const Daemon &) = delete;
  Daemon &operator=(const Daemon &) = delete;

  // Logs the open-file limit, makes the sofia-sip root (mainloop::sofia_root)
  // and the main loop, and catches SIGTERM and SIGINT. False, logged, when
  // the root cannot be made.
  bool init();
  su_root_t *root() const { return root_; }

  // What stopping does before the loop ends: `stop` lets go of SIP (ends
  // calls, unregisters) and calls its argument when done. The loop ends then,
  // or 5 s later at most. Without it, stopping ends the loop at once.
  void on_stop(std::function<void(std::function<void()> done)> stop) { stop_ = std::move(stop); }
  // Stops once: a signal and, say, a window's close may both ask.
  void stop();

  // READY=1 (and the watchdog), the loop until stopped, STOPPING=1.
  void run();

 private:
  static gboolean on_signal(gpointer self);

  su_root_t *root_ = nullptr;
  GMainLoop *loop_ = nullptr;
  std::function<void(std::function<void()>)> stop_;
  bool stopping_ = false;
};

}  // namespace portier
