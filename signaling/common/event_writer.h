// One event writer for every portier program: a line per milestone (a ring,
// an answer, a first decoded frame, a call's end), one JSON object with the
// event's name, both clocks and its typed fields:
//   {"event":"first_frame","wall":"2024-05-01T12:00:00.123Z","wall_ms":1714564800123,
//    "mono_ms":81234567,"since_invite_ms":142,"width":640,"height":480}
// The wall clock lets a person line the programs' lines up; the monotonic one
// (the same clock in every program of a host) measures latencies across them.
// A line goes to the log, to an optional file (appended, one write per line)
// and to a ring of recent lines that the control socket's `events` returns.
// Plain C++.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "common/clock.h"

namespace portier::events {

// "2024-05-01T12:00:00.123Z"
std::string iso8601_utc(int64_t wall_ms);
// "20240501T120000.123Z": the same instant for file names.
std::string file_stamp(int64_t wall_ms);

// One field of an event line: its JSON value already written.
struct Field {
  std::string key;
  std::string json;
};
Field field(const std::string &key, const std::string &text);
Field field(const std::string &key, const char *text);
Field field(const std::string &key, int64_t number);
Field field(const std::string &key, int number);
Field field(const std::string &key, bool flag);

// The JSON line (no newline) of one event. A field named like one of the fixed
// keys (event, wall, wall_ms, mono_ms) is left out: those stay unique.
std::string format_line(const std::string &event, const std::vector<Field> &fields, clock::Stamp t);

class Writer {
 public:
  Writer() = default;
  ~Writer();
  Writer(const Writer &) = delete;
  Writer &operator=(const Writer &) = delete;

  // `path` empty: no file. False (and *error) when the file cannot be opened.
  bool open(const std::string &path, std::string *error);
  // Writes one line now (to the log and the file; the ring keeps the event and
  // writes its line when `events` asks, so a proxy logging warnings only and
  // keeping no file formats nothing per call).
  void add(const std::string &event, const std::vector<Field> &fields = {});
  void add_at(const std::string &event, const std::vector<Field> &fields, clock::Stamp t);
  // The recent lines as a JSON array, oldest first.
  std::string json_array() const;
  size_t size() const { return recent_.size(); }

 private:
  static constexpr size_t kRecent = 200;
  int fd_ = -1;
  std::string path_;
  struct Recent {
    std::string event;
    std::vector<Field> fields;
    clock::Stamp t;
    mutable std::string line;  // format_line, once it was wanted
  };
  std::deque<Recent> recent_;
};

}  // namespace portier::events
