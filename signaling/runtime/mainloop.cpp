#include "runtime/mainloop.h"

#include <glib.h>
#include <malloc.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_glib.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>

namespace portier::mainloop {
namespace {

// Zero-timeout polls in a row that found no fd ready.
int empty_zero_polls = 0;
unsigned long long avoided = 0;

// Why this exists: sofia-sip's GSource computes the time to its next timer with
// su_duration(), which truncates to whole milliseconds. A timer due in 0.4 ms
// makes prepare() ask GLib for a 0 ms poll, dispatch() then finds nothing due
// yet, and the loop goes round again - for up to a millisecond per timer. Each
// round also costs GLib's eventfd wakeup. After a burst of calls, nta's
// transaction timers expire back to back for half a minute (timers J/K, 32 s),
// and the proxy burnt 40-70% of a core doing nothing.
//
// The fix: when GLib asks for a zero timeout twice in a row and the first time
// no fd was ready, nothing real is pending: wait (at most 1 ms) for an fd
// instead. A timer then fires up to 1 ms late, which no SIP timer notices, and
// incoming packets still wake the poll at once.
gint poll_without_spinning(GPollFD *fds, guint nfds, gint timeout) {
  if (timeout != 0) {
    empty_zero_polls = 0;
    return g_poll(fds, nfds, timeout);
  }
  const bool wait = empty_zero_polls > 0;
  const gint n = g_poll(fds, nfds, wait ? 1 : 0);
  if (n != 0) {
    empty_zero_polls = 0;
  } else {
    if (wait) ++avoided;
    ++empty_zero_polls;
  }
  return n;
}

// The same spin on sofia-sip's own loop (su_root_run): su_timer_expire()
// truncates the wait to the next timer to whole milliseconds, so the last
// millisecond before every timer is a run of epoll_wait(0) calls. The loop
// exposes no hook between the timers and the wait, only a "prepoll" hook at
// the start of each turn, so the guard goes by time: a turn that handled a
// packet or a timer takes several microseconds (a datagram alone is an
// ioctl, a recvmsg and a parse), an empty turn about one. After a run of
// empty-looking turns the loop sleeps a fifth of a millisecond: a timer then
// fires up to 0.2 ms late, and a packet arriving in that tail waits as long.
constexpr double kTightTurn = 3e-6;  // seconds
constexpr int kTightTurnsBeforeSleep = 8;
constexpr long kSpinSleepNs = 200 * 1000;

void guard_against_spinning(su_prepoll_magic_t *, su_root_t *) {
  static su_time_t last{};
  static int tight = 0;
  const su_time_t now = su_now();
  if (su_time_diff(now, last) < kTightTurn) {
    if (++tight >= kTightTurnsBeforeSleep) {
      const timespec pause{0, kSpinSleepNs};
      nanosleep(&pause, nullptr);
      ++avoided;
      tight = 0;
    }
  } else {
    tight = 0;
  }
  last = su_now();
}

}  // namespace

void attach(su_root_t *root) {
  GSource *source = su_glib_root_gsource(root);
  // GLib blocks a non-recursive source around each dispatch by removing and
  // re-adding its fds, and each change writes the context's wakeup eventfd:
  // two writes and a read per packet. Nothing here iterates the loop from a
  // callback, so the blocking buys nothing.
  g_source_set_can_recurse(source, TRUE);
  g_source_attach(source, nullptr);
  g_main_context_set_poll_func(nullptr, poll_without_spinning);
}

unsigned long long spins_avoided() { return avoided; }

}  // namespace portier::mainloop

namespace portier::mainloop {

su_root_t *sofia_root() {
  su_init();
  sip_update_default_mclass(sip_extend_mclass(nullptr));
  su_root_t *root = su_glib_root_create(nullptr);
  if (root) attach(root);
  return root;
}

su_root_t *native_sofia_root() {
  su_init();
  sip_update_default_mclass(sip_extend_mclass(nullptr));
  su_root_t *root = su_root_create(nullptr);
  if (root) su_root_add_prepoll(root, guard_against_spinning, nullptr);
  return root;
}

void notify_ready(su_root_t *root) {
  sd_notify(0, "READY=1");
  uint64_t watchdog_usec = 0;
  if (sd_watchdog_enabled(0, &watchdog_usec) <= 0) return;
  // Lives as long as the root (su_root_destroy frees its timers).
  su_timer_t *ping =
      su_timer_create(su_root_task(root), static_cast<su_duration_t>(watchdog_usec / 2000));
  su_timer_set_for_ever(
      ping, [](su_root_magic_t *, su_timer_t *, su_timer_arg_t *) { sd_notify(0, "WATCHDOG=1"); },
      nullptr);
}

void limit_malloc_arenas() { mallopt(M_ARENA_MAX, 2); }

unsigned long raise_fd_limit() {
  struct rlimit rl {};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    struct rlimit up = rl;
    up.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &up) == 0) rl = up;
  }
  return rl.rlim_cur == RLIM_INFINITY ? ~0UL : static_cast<unsigned long>(rl.rlim_cur);
}

}  // namespace portier::mainloop
