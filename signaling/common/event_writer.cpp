#include "common/event_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>

#include "common/json.h"
#include "common/log.h"

namespace portier::events {
namespace {

// The UTC fields of a wall time and its milliseconds; floors, so times before
// 1970 keep a millisecond part from 0 to 999.
tm utc_fields(int64_t wall_ms, int *ms) {
  int64_t secs = wall_ms / 1000, rest = wall_ms % 1000;
  if (rest < 0) rest += 1000, secs -= 1;
  *ms = static_cast<int>(rest);
  const time_t tt = static_cast<time_t>(secs);
  tm t{};
  gmtime_r(&tt, &t);
  return t;
}

std::string format_utc(const char *format, int64_t wall_ms) {
  int ms;
  const tm t = utc_fields(wall_ms, &ms);
  char buf[64];
  snprintf(buf, sizeof buf, format, t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min,
           t.tm_sec, ms);
  return buf;
}

}  // namespace

std::string iso8601_utc(int64_t wall_ms) {
  return format_utc("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", wall_ms);
}

std::string file_stamp(int64_t wall_ms) {
  return format_utc("%04d%02d%02dT%02d%02d%02d.%03dZ", wall_ms);
}

Field field(const std::string &key, const std::string &text) { return {key, json::quote(text)}; }
Field field(const std::string &key, const char *text) {
  return {key, json::quote(text ? text : "")};
}
Field field(const std::string &key, int64_t number) { return {key, std::to_string(number)}; }
Field field(const std::string &key, int number) { return {key, std::to_string(number)}; }
Field field(const std::string &key, bool flag) { return {key, flag ? "true" : "false"}; }

std::string format_line(const std::string &event, const std::vector<Field> &fields,
                        clock::Stamp t) {
  json::Writer w;
  w.begin_object()
      .field("event", event)
      .field("wall", iso8601_utc(t.wall_ms))
      .field("wall_ms", t.wall_ms)
      .field("mono_ms", t.mono_ms);
  for (const Field &f : fields) {
    if (f.key == "event" || f.key == "wall" || f.key == "wall_ms" || f.key == "mono_ms") continue;
    w.raw_field(f.key, f.json);
  }
  return w.end_object().take();
}

bool Writer::open(const std::string &path, std::string *error) {
  path_ = path;
  if (path.empty()) return true;
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd_ < 0) {
    *error = path + ": cannot open the events file: " + strerror(errno);
    return false;
  }
  return true;
}

Writer::~Writer() {
  if (fd_ >= 0) ::close(fd_);
}

void Writer::add(const std::string &event, const std::vector<Field> &fields) {
  add_at(event, fields, clock::Stamp::now());
}

void Writer::add_at(const std::string &event, const std::vector<Field> &fields, clock::Stamp t) {
  Recent r{event, fields, t, {}};
  if (fd_ >= 0 || log::enabled(log::Level::Message)) {
    r.line = format_line(event, fields, t);
    PLOG_INFO("event %s", r.line.c_str());
  }
  if (fd_ >= 0) {
    // One write per line with O_APPEND: a reader never sees half a line.
    const std::string with_nl = r.line + "\n";
    ssize_t n;
    do n = ::write(fd_, with_nl.data(), with_nl.size());
    while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(with_nl.size()))
      PLOG_WARN("events file %s: %s", path_.c_str(), n < 0 ? strerror(errno) : "short write");
  }
  recent_.push_back(std::move(r));
  while (recent_.size() > kRecent) recent_.pop_front();
}

std::string Writer::json_array() const {
  json::Writer w;
  w.begin_array();
  for (const Recent &r : recent_) {
    if (r.line.empty()) r.line = format_line(r.event, r.fields, r.t);
    w.raw(r.line);
  }
  return w.end_array().take();
}

}  // namespace portier::events
