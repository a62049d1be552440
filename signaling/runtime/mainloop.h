// sofia-sip on GLib's default main context, without busy waiting.
#pragma once

#include <sofia-sip/su_wait.h>

namespace portier::mainloop {

// Attaches the root (made by su_glib_root_create) to GLib's default main context
// and installs a poll function that does not spin. Call once, before
// g_main_loop_run, from the thread that runs the loop.
void attach(su_root_t *root);

// How many times the loop waited out a sub-millisecond timer instead of
// spinning (for portierctl stats and the tests).
unsigned long long spins_avoided();

// Raises the soft limit on open files to the hard one (a relay port pair
// costs about ten descriptors; the usual 1024 would allow a few calls).
// Returns the limit now in force.
unsigned long raise_fd_limit();

// For programs that start GStreamer pipelines per call (door, monitor):
// glibc gives each new thread that allocates its own malloc arena, up to 8 per
// core, and every call's streaming threads are new threads. The door's RSS
// went from 33 to 153 MB over 27 rings and stayed there (no leak: with two
// arenas it stays at 62 MB). Two arenas; call before the first thread.
void limit_malloc_arenas();

// The start every sofia-sip daemon shares: su_init, sofia's parser extended
// so P-Asserted-Identity (RFC 3325) and the other extension headers are
// known (before any message is parsed), a GLib-backed root attached with
// attach(). nullptr when the root cannot be made.
su_root_t *sofia_root();
// The same start for a daemon without GLib (the proxy): the root runs on
// sofia-sip's own epoll loop (su_root_run), which does per packet what GLib's
// loop does with a poll() over every source, a mutex and four callbacks.
// The root carries the same guard against sub-millisecond spinning.
su_root_t *native_sofia_root();
// systemd: READY=1, and the watchdog pinged from the root's loop at half its
// interval (Type=notify, WatchdogSec=), so a wedged loop gets restarted.
void notify_ready(su_root_t *root);

}  // namespace portier::mainloop
