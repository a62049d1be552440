#include "monitor/monitor_events.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "common/json.h"
#include "common/log.h"

namespace portier::monitor {

EventTime EventTime::now() {
  timespec wall{}, mono{};
  clock_gettime(CLOCK_REALTIME, &wall);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  EventTime t;
  t.wall_ms = int64_t(wall.tv_sec) * 1000 + wall.tv_nsec / 1000000;
  t.mono_ms = int64_t(mono.tv_sec) * 1000 + mono.tv_nsec / 1000000;
  return t;
}

std::string iso8601_utc(int64_t wall_ms) {
  int64_t secs = wall_ms / 1000, ms = wall_ms % 1000;
  if (ms < 0) ms += 1000, secs -= 1;
  time_t tt = static_cast<time_t>(secs);
  tm t{};
  gmtime_r(&tt, &t);
  char buf[64];
  snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", t.tm_year + 1900, t.tm_mon + 1,
           t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, static_cast<int>(ms));
  return buf;
}

EventField field(const std::string &key, const std::string &text) {
  return {key, json::quote(text)};
}
EventField field(const std::string &key, const char *text) {
  return {key, json::quote(text ? text : "")};
}
EventField field(const std::string &key, int64_t number) { return {key, std::to_string(number)}; }
EventField field(const std::string &key, int number) { return {key, std::to_string(number)}; }
EventField field(const std::string &key, bool flag) { return {key, flag ? "true" : "false"}; }

std::string format_event(const std::string &kind, const std::vector<EventField> &fields,
                         EventTime t) {
  std::string out =
      "{\"event\":" + json::quote(kind) + ",\"wall\":" + json::quote(iso8601_utc(t.wall_ms)) +
      ",\"wall_ms\":" + std::to_string(t.wall_ms) + ",\"mono_ms\":" + std::to_string(t.mono_ms);
  for (const EventField &f : fields) {
    // The fixed keys come first and stay unique: a field may not replace them.
    if (f.key == "event" || f.key == "wall" || f.key == "wall_ms" || f.key == "mono_ms") continue;
    out += "," + json::quote(f.key) + ":" + f.json;
  }
  return out + "}";
}

bool EventSink::open(const std::string &path, std::string *error) {
  path_ = path;
  if (path.empty()) return true;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    *error = path + ": cannot open the events file: " + strerror(errno);
    return false;
  }
  return true;
}

EventSink::~EventSink() {
  if (fd_ >= 0) ::close(fd_);
}

std::string EventSink::add(const std::string &kind, const std::vector<EventField> &fields) {
  return add_at(kind, fields, EventTime::now());
}

std::string EventSink::add_at(const std::string &kind, const std::vector<EventField> &fields,
                              EventTime t) {
  std::string line = format_event(kind, fields, t);
  PLOG_INFO("event %s", line.c_str());
  if (fd_ >= 0) {
    // One write per line with O_APPEND: a reader never sees half a line.
    std::string with_nl = line + "\n";
    ssize_t n;
    do n = ::write(fd_, with_nl.data(), with_nl.size());
    while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(with_nl.size()))
      PLOG_WARN("events file %s: %s", path_.c_str(), n < 0 ? strerror(errno) : "short write");
  }
  recent_.push_back(line);
  while (recent_.size() > kRecent) recent_.pop_front();
  return line;
}

std::string EventSink::json_array() const {
  std::string out = "[";
  for (const auto &l : recent_) out += (out.size() > 1 ? "," : "") + l;
  return out + "]";
}

}  // namespace portier::monitor
