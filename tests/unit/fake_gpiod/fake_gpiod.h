// A stand-in for libgpiod v1, for tests on machines without a GPIO chip: it
// implements the gpiod_* functions the door uses, with the signatures of the real
// <gpiod.h>, and is linked into the unit tests instead of -lgpiod. This header is
// its test-side control.
//
// Two chips exist:  gpiochip0 (/dev/gpiochip0, label "fake-soc", 54 lines) and
//                   gpiochip1 (/dev/gpiochip1, label "fake-expander", 8 lines).
// Every value written to an output line (at request and by set_value) is appended
// to a record file as "CHIP OFFSET VALUE MONOTONIC_NS PID", one line per change,
// with O_APPEND from whichever process writes it: a pulse child's writes land in
// the same file as the daemon's, and survive both.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fake_gpiod {

// Where value changes are recorded ("" stops recording). Forked children inherit it.
void set_record_file(const std::string &path);

// Marks a line as held by another program: requests fail with EBUSY.
void set_busy(const std::string &chip, unsigned offset, bool busy);

// Queues an edge on a line requested for events (only the edges it asked for, as
// the kernel does); false when the line is not requested for that edge.
bool inject_edge(const std::string &chip, unsigned offset, bool rising, timespec when);

struct Record {
  std::string chip;
  unsigned offset = 0;
  int value = 0;
  int64_t mono_ns = 0;
  pid_t pid = 0;
};
std::vector<Record> read_records(const std::string &path);

}  // namespace fake_gpiod
