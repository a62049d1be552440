// The two clocks every portier program reads: the wall clock (what a person or
// another host compares: registrations' expiry, nonces, event lines) and the
// monotonic clock (durations and timeouts, immune to clock steps; comparable
// between the programs of one host, so latencies can be measured across them).
#pragma once

#include <time.h>

#include <cstdint>

namespace portier::clock {

inline timespec read(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return ts;
}

inline int64_t wall_s() { return static_cast<int64_t>(read(CLOCK_REALTIME).tv_sec); }
// The wall clock's second rounded up: an expiry shown as seconds left never
// reads 0 while the binding still lives.
inline int64_t wall_s_rounded_up() {
  const timespec ts = read(CLOCK_REALTIME);
  return static_cast<int64_t>(ts.tv_sec) + (ts.tv_nsec > 0 ? 1 : 0);
}
inline int64_t wall_ms() {
  const timespec ts = read(CLOCK_REALTIME);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}
inline int64_t mono_s() { return static_cast<int64_t>(read(CLOCK_MONOTONIC).tv_sec); }
inline int64_t mono_ms() {
  const timespec ts = read(CLOCK_MONOTONIC);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Both clocks at one moment: the time of an event line.
struct Stamp {
  int64_t wall_ms = 0;  // since the Unix epoch, UTC
  int64_t mono_ms = 0;  // CLOCK_MONOTONIC
  static Stamp now() { return {clock::wall_ms(), clock::mono_ms()}; }
};

}  // namespace portier::clock
