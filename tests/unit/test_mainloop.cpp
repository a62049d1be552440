// The main loop must sleep until a sofia-sip timer is due, not spin.
//
// sofia-sip's GSource rounds the time to its next timer down to whole
// milliseconds, so in the last millisecond before a timer GLib is told to poll
// with a zero timeout and finds nothing to do, over and over. mainloop::attach()
// installs a poll function that waits out that millisecond. The test counts
// loop iterations (wakeups), not time: each iteration is one poll() the
// process makes, which is what costs CPU on a small ARM board.
#include <glib.h>
#include <gtest/gtest.h>
#include <sofia-sip/su_glib.h>
#include <sofia-sip/su_wait.h>

#include "runtime/mainloop.h"

namespace {

struct Fired {
  int count = 0;
};

void on_timer(su_root_magic_t *, su_timer_t *, su_timer_arg_t *arg) {
  ++static_cast<Fired *>(static_cast<void *>(arg))->count;
}

TEST(MainLoop, WaitsForSubMillisecondTimersWithoutSpinning) {
  su_init();
  su_root_t *root = su_glib_root_create(nullptr);
  ASSERT_NE(root, nullptr);
  portier::mainloop::attach(root);

  // Ten timers, one after another, each armed 3.5 ms ahead: every one of them
  // has a sub-millisecond tail that the old loop spun through.
  Fired fired;
  su_timer_t *timer = su_timer_create(su_root_task(root), 0);
  int iterations = 0;
  for (int i = 0; i < 10; ++i) {
    const int before = fired.count;
    su_timer_set_at(timer, on_timer, reinterpret_cast<su_timer_arg_t *>(&fired),
                    su_time_dadd(su_now(), 0.0035));
    // bounded: a spinning loop makes thousands of iterations per timer
    for (int guard = 0; fired.count == before && guard < 100000; ++guard) {
      g_main_context_iteration(nullptr, TRUE);
      ++iterations;
    }
    ASSERT_EQ(fired.count, before + 1) << "timer " << i << " never fired";
  }
  // Without the poll function this took several hundred iterations (every
  // timer's last millisecond is a busy loop); with it, a handful per timer.
  EXPECT_LE(iterations, 10 * 5) << "the main loop spun while waiting for timers";

  su_timer_destroy(timer);
  su_root_destroy(root);
  su_deinit();
}

// The proxy's root runs on sofia-sip's own epoll loop, whose wait to the next
// timer is truncated to whole milliseconds in the same way: the guard that
// native_sofia_root() installs must keep the loop from spinning there too.
// The root is driven with su_root_step(), one turn each, as su_root_run() does.
TEST(MainLoop, NativeRootWaitsForSubMillisecondTimersWithoutSpinning) {
  su_root_t *root = portier::mainloop::native_sofia_root();
  ASSERT_NE(root, nullptr);
  int steps = 0;
  Fired fired;
  su_timer_t *timer = su_timer_create(su_root_task(root), 0);
  const unsigned long long avoided_before = portier::mainloop::spins_avoided();
  for (int i = 0; i < 10; ++i) {
    const int before = fired.count;
    su_timer_set_at(timer, on_timer, reinterpret_cast<su_timer_arg_t *>(&fired),
                    su_time_dadd(su_now(), 0.0035));
    // bounded: a spinning loop makes hundreds of turns per timer
    for (int guard = 0; fired.count == before && guard < 100000; ++guard) {
      su_root_step(root, 1000);
      ++steps;
    }
    ASSERT_EQ(fired.count, before + 1) << "timer " << i << " never fired";
  }
  // Without the guard every timer's last millisecond is several hundred
  // epoll_wait(0) turns; with it, a few dozen at most.
  EXPECT_LE(steps, 10 * 60) << "the native loop spun while waiting for timers";
  EXPECT_GT(portier::mainloop::spins_avoided(), avoided_before);

  su_timer_destroy(timer);
  su_root_destroy(root);
  su_deinit();
}

}  // namespace
