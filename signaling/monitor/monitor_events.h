// The monitor's milestones (registered, ringing, first RTP, first decoded frame,
// answered, action sent, ended with its reason), one JSON object per line with
// the wall clock and the monotonic time in ms, so latencies can be measured
// across processes (the door's lines carry the same two clocks):
//   {"event":"first_frame","wall":"2024-05-01T12:00:00.123Z","wall_ms":1714564800123,
//    "mono_ms":81234567,"since_invite_ms":142,"width":640,"height":480}
// Lines go to the log, to an optional file (appended, one write per line), and
// to a ring of recent lines for `portierctl events`. Plain C++ apart from the clocks.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

namespace portier::monitor {

struct EventTime {
  int64_t wall_ms = 0;  // since the Unix epoch, UTC
  int64_t mono_ms = 0;  // CLOCK_MONOTONIC
  static EventTime now();
};

// "2024-05-01T12:00:00.123Z"
std::string iso8601_utc(int64_t wall_ms);

// One field of an event line: its JSON value already written.
struct EventField {
  std::string key;
  std::string json;
};
EventField field(const std::string &key, const std::string &text);
EventField field(const std::string &key, const char *text);
EventField field(const std::string &key, int64_t number);
EventField field(const std::string &key, int number);
EventField field(const std::string &key, bool flag);

// The JSON line (no newline) of one event.
std::string format_event(const std::string &kind, const std::vector<EventField> &fields,
                         EventTime t);

class EventSink {
 public:
  // `path` empty: no file. False (and *error) when the file cannot be opened.
  bool open(const std::string &path, std::string *error);
  ~EventSink();
  // Writes one line now; returns it.
  std::string add(const std::string &kind, const std::vector<EventField> &fields = {});
  std::string add_at(const std::string &kind, const std::vector<EventField> &fields, EventTime t);
  // The recent lines as a JSON array.
  std::string json_array() const;
  size_t size() const { return recent_.size(); }

 private:
  static constexpr size_t kRecent = 200;
  int fd_ = -1;
  std::string path_;
  std::deque<std::string> recent_;
};

}  // namespace portier::monitor
