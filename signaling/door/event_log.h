// The door's own record of its visitors, in one directory:
//   events-20240501T120000.123Z.jsonl  one JSON object per line, one file per UTC
//                                      day (or smaller chunks when a day is busy)
//   ring-20240501T120000.123Z.jpg      the visitor's snapshot at each ring
// Every line is an event line as every portier program writes it
// (common/event_writer.h): the kind as "event", the wall-clock time (ISO 8601,
// UTC, and in ms) and the monotonic time in ms, so latencies can be compared
// with the other programs' event lines. A ring
// id (the ring's time, as in the snapshot's name) ties a visit's lines together:
// ring, answered (who), action / action_refused (door opened or not), ended.
//
// Retention: at most keep_rings snapshots, log files no older than keep_days and
// no more than keep_bytes in all; the oldest go first, the file being written
// never. There is no field for a code: a DoorEvent cannot carry one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/clock.h"

namespace portier::door {

enum class EventKind {
  Ring,           // a visitor pressed the button: a call starts
  Answered,       // who answered
  Action,         // an action ran (action, result: started/done/failed/busy)
  ActionRefused,  // an action was asked for and refused (result: wrong_code, ...)
  Ended,          // the call ended (detail: why)
  Error,          // something the door could not do (snapshot, actuator)
};
const char *event_kind_name(EventKind k);

struct DoorEvent {
  EventKind kind = EventKind::Ring;
  std::string ring;      // ring id of the visit, when there is one
  std::string who;       // SIP identity (normalized)
  std::string action;    // action name
  std::string result;    // short machine-readable outcome
  std::string detail;    // log-safe reason, never a code
  std::string snapshot;  // snapshot file name, for Ring
};

struct EventLogOptions {
  std::string dir;
  int keep_rings = 100;                   // snapshots kept; 0: none saved
  int keep_days = 30;                     // age of the log files kept
  int64_t keep_bytes = 10 * 1024 * 1024;  // size of all log files together
};

class EventLog {
 public:
  // Creates the directory (mode 0750) when missing and applies retention once.
  bool open(const EventLogOptions &options, std::string *error);

  // Appends one line at time `t`; starts a new file on a new UTC day or when the
  // current one holds a quarter of keep_bytes, then applies retention.
  bool write(const DoorEvent &event, clock::Stamp t, std::string *error);

  // Stores a JPEG as the snapshot of the ring at `ring_time` (written to a
  // temporary name, then renamed, so no half file is ever seen) and drops the
  // oldest snapshots beyond keep_rings. *file gets the file name ("" when
  // keep_rings is 0).
  bool save_snapshot(clock::Stamp ring_time, const void *jpeg, size_t size, std::string *file,
                     std::string *error);

  // Deletes what the limits no longer allow, as of `now`.
  void apply_retention(clock::Stamp now);

  const std::string &current_file() const { return current_; }  // "" before the first write

 private:
  int64_t chunk_bytes() const;
  EventLogOptions options_;
  std::string current_;  // file name in dir
  int64_t current_day_ = -1;
  int64_t current_size_ = 0;
};

}  // namespace portier::door
