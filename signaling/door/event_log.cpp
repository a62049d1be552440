#include "door/event_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "common/event_writer.h"

namespace portier::door {
namespace {

constexpr int64_t kDayMs = 86400LL * 1000;
constexpr const char *kLogPrefix = "events-";
constexpr const char *kLogSuffix = ".jsonl";
constexpr const char *kSnapPrefix = "ring-";
constexpr const char *kSnapSuffix = ".jpg";

int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

bool has_affixes(const std::string &name, const char *prefix, const char *suffix) {
  const size_t p = strlen(prefix), s = strlen(suffix);
  return name.size() > p + s && name.compare(0, p, prefix) == 0 &&
         name.compare(name.size() - s, s, suffix) == 0;
}

// The files of one kind, oldest first: the stamp in the name sorts by time.
std::vector<std::string> list(const std::string &dir, const char *prefix, const char *suffix) {
  std::vector<std::string> out;
  if (DIR *d = opendir(dir.c_str())) {
    while (dirent *e = readdir(d))
      if (has_affixes(e->d_name, prefix, suffix)) out.emplace_back(e->d_name);
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// The wall time in a stamp ("20240501T120000.123Z", optionally followed by a
// "-N" that keeps names apart); -1 when it is not one.
int64_t parse_stamp(const std::string &stamp) {
  tm t{};
  int ms = 0, n = 0;
  if (sscanf(stamp.c_str(), "%4d%2d%2dT%2d%2d%2d.%3dZ%n", &t.tm_year, &t.tm_mon, &t.tm_mday,
             &t.tm_hour, &t.tm_min, &t.tm_sec, &ms, &n) != 7 ||
      n != 20)
    return -1;
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&t)) * 1000 + ms;
}

int64_t stamp_of(const std::string &name, const char *prefix) {
  return parse_stamp(name.substr(strlen(prefix)));
}

int64_t file_size(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<int64_t>(st.st_size) : 0;
}

bool write_all(int fd, const char *data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool exists(const std::string &path) { return access(path.c_str(), F_OK) == 0; }

}  // namespace

const char *event_kind_name(EventKind k) {
  switch (k) {
    case EventKind::Ring:
      return "ring";
    case EventKind::Answered:
      return "answered";
    case EventKind::Action:
      return "action";
    case EventKind::ActionRefused:
      return "action_refused";
    case EventKind::Ended:
      return "ended";
    case EventKind::Error:
      return "error";
  }
  return "?";
}

bool EventLog::open(const EventLogOptions &options, std::string *error) {
  options_ = options;
  if (options_.dir.empty()) {
    *error = "no event directory";
    return false;
  }
  if (mkdir(options_.dir.c_str(), 0750) != 0 && errno != EEXIST) {
    *error = "cannot create the event directory '" + options_.dir + "': " + strerror(errno);
    return false;
  }
  struct stat st;
  if (stat(options_.dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
      access(options_.dir.c_str(), W_OK | X_OK) != 0) {
    *error = "the event directory '" + options_.dir + "' is not a writable directory";
    return false;
  }
  // Snapshots a crash left half-written.
  for (const auto &tmp : list(options_.dir, kSnapPrefix, ".tmp"))
    unlink((options_.dir + "/" + tmp).c_str());
  current_.clear();
  current_day_ = -1;
  apply_retention(clock::Stamp::now());
  return true;
}

int64_t EventLog::chunk_bytes() const { return std::max<int64_t>(options_.keep_bytes / 4, 4096); }

bool EventLog::write(const DoorEvent &event, clock::Stamp t, std::string *error) {
  // The line of every portier event writer: the kind is the "event", with
  // both clocks, so a visit lines up with the proxy's and monitors' lines.
  std::vector<events::Field> fields;
  auto field = [&](const char *name, const std::string &value) {
    if (!value.empty()) fields.push_back(events::field(name, value));
  };
  field("ring", event.ring);
  field("who", event.who);
  field("action", event.action);
  field("result", event.result);
  field("detail", event.detail);
  field("snapshot", event.snapshot);
  const std::string line = events::format_line(event_kind_name(event.kind), fields, t) + "\n";

  const int64_t day = floor_div(t.wall_ms, kDayMs);
  bool rotated = false;
  if (current_.empty() || day != current_day_ || current_size_ >= chunk_bytes()) {
    // Continue today's newest file after a restart rather than start a new one.
    std::string name;
    auto files = list(options_.dir, kLogPrefix, kLogSuffix);
    if (current_.empty() && !files.empty()) {
      const int64_t start = stamp_of(files.back(), kLogPrefix);
      if (start >= 0 && floor_div(start, kDayMs) == day &&
          file_size(options_.dir + "/" + files.back()) < chunk_bytes())
        name = files.back();
    }
    if (name.empty()) name = kLogPrefix + events::file_stamp(t.wall_ms) + kLogSuffix;
    rotated = name != current_;
    current_ = name;
    current_day_ = day;
    current_size_ = file_size(options_.dir + "/" + current_);
  }
  const std::string path = options_.dir + "/" + current_;
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) {
    *error = "cannot open the event log '" + path + "': " + strerror(errno);
    return false;
  }
  // One write per line with O_APPEND: a line is never interleaved or cut by
  // another writer.
  const bool ok = write_all(fd, line.data(), line.size());
  const int err = errno;
  ::close(fd);
  if (!ok) {
    *error = "cannot write the event log '" + path + "': " + strerror(err);
    return false;
  }
  current_size_ += static_cast<int64_t>(line.size());
  if (rotated) apply_retention(t);
  return true;
}

bool EventLog::save_snapshot(clock::Stamp ring_time, const void *jpeg, size_t size,
                             std::string *file, std::string *error) {
  file->clear();
  if (options_.keep_rings <= 0) return true;
  std::string stamp = events::file_stamp(ring_time.wall_ms);
  std::string name = kSnapPrefix + stamp + kSnapSuffix;
  for (int n = 2; exists(options_.dir + "/" + name); ++n)
    name = kSnapPrefix + stamp + "-" + std::to_string(n) + kSnapSuffix;
  const std::string path = options_.dir + "/" + name;
  const std::string tmp = options_.dir + "/" + kSnapPrefix + stamp + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) {
    *error = "cannot create the snapshot '" + tmp + "': " + strerror(errno);
    return false;
  }
  bool ok = write_all(fd, static_cast<const char *>(jpeg), size);
  int err = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    if (ok) err = errno;
    unlink(tmp.c_str());
    *error = "cannot write the snapshot '" + path + "': " + strerror(err);
    return false;
  }
  *file = name;
  // Oldest snapshots beyond the limit go now; the log's limits are checked when
  // a file is started.
  auto snaps = list(options_.dir, kSnapPrefix, kSnapSuffix);
  for (size_t i = 0; i + static_cast<size_t>(options_.keep_rings) < snaps.size(); ++i)
    unlink((options_.dir + "/" + snaps[i]).c_str());
  return true;
}

void EventLog::apply_retention(clock::Stamp now) {
  auto snaps = list(options_.dir, kSnapPrefix, kSnapSuffix);
  const size_t keep_rings = static_cast<size_t>(std::max(0, options_.keep_rings));
  for (size_t i = 0; i + keep_rings < snaps.size(); ++i)
    unlink((options_.dir + "/" + snaps[i]).c_str());

  auto files = list(options_.dir, kLogPrefix, kLogSuffix);
  const int64_t oldest_kept = now.wall_ms - static_cast<int64_t>(options_.keep_days) * kDayMs;
  std::vector<std::string> kept;
  for (const auto &f : files) {
    // A file holds lines of its start's UTC day only (write() starts a new file on
    // a new day), so it goes once the end of that day is older than keep_days.
    const int64_t start = stamp_of(f, kLogPrefix);
    const int64_t day_end = (floor_div(start, kDayMs) + 1) * kDayMs;
    if (f != current_ && start >= 0 && day_end <= oldest_kept)
      unlink((options_.dir + "/" + f).c_str());
    else
      kept.push_back(f);
  }
  int64_t total = 0;
  for (const auto &f : kept) total += file_size(options_.dir + "/" + f);
  for (const auto &f : kept) {
    if (total <= options_.keep_bytes || f == current_) break;
    total -= file_size(options_.dir + "/" + f);
    unlink((options_.dir + "/" + f).c_str());
  }
}

}  // namespace portier::door
