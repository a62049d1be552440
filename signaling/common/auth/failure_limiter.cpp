#include "common/auth/failure_limiter.h"

#include <algorithm>
#include <utility>

namespace portier::auth {

namespace {

constexpr int64_t kLogWindowS = 60;
constexpr int64_t kMaxBanS = 86400;
constexpr size_t kUserSources = 8;
constexpr unsigned kFreeFailures = 2;

// base * 2^(n-1), capped, without overflowing for large n.
int64_t doubled(int64_t base, unsigned n, int64_t cap) {
  int64_t v = base;
  for (unsigned i = 1; i < n && v < cap; ++i) v *= 2;
  return std::min(v, cap);
}

}  // namespace

FailureLimiter::FailureLimiter(FailureLimits limits) : limits_(limits) {
  if (limits_.max_entries == 0) limits_.max_entries = 1;
}

template <class Map>
void FailureLimiter::touch(Map &, std::list<std::string> &order, typename Map::iterator it) {
  order.splice(order.begin(), order, it->second.lru);
}

FailureLimiter::Source &FailureLimiter::source(const std::string &key, int64_t now_s) {
  auto it = sources_.find(key);
  if (it != sources_.end()) {
    touch(sources_, source_order_, it);
    return it->second;
  }
  if (sources_.size() >= limits_.max_entries) {
    sources_.erase(source_order_.back());
    source_order_.pop_back();
  }
  source_order_.push_front(key);
  Source &s = sources_[key];
  s.lru = source_order_.begin();
  s.log_window = now_s;
  return s;
}

FailureLimiter::User &FailureLimiter::user(const std::string &key) {
  auto it = users_.find(key);
  if (it != users_.end()) {
    touch(users_, user_order_, it);
    return it->second;
  }
  if (users_.size() >= limits_.max_entries) {
    users_.erase(user_order_.back());
    user_order_.pop_back();
  }
  user_order_.push_front(key);
  User &u = users_[key];
  u.lru = user_order_.begin();
  return u;
}

FailureLimiter::Verdict FailureLimiter::admit(const std::string &src, int64_t now_s,
                                              unsigned *retry_after) {
  // Sources that never failed are not stored: a flood of good requests costs nothing.
  auto it = sources_.find(src);
  if (it == sources_.end()) return Verdict::Allow;
  touch(sources_, source_order_, it);
  const Source &s = it->second;
  if (s.banned_until > now_s) return Verdict::Banned;
  if (s.next_allowed > now_s) {
    if (retry_after) *retry_after = static_cast<unsigned>(s.next_allowed - now_s);
    return Verdict::Backoff;
  }
  return Verdict::Allow;
}

FailureLimiter::Failure FailureLimiter::failed(const std::string &src, const std::string &user_key,
                                               int64_t now_s) {
  Failure f;
  Source &s = source(src, now_s);
  // A source quiet for a ban's length starts again; its ban count (which makes the
  // next ban longer) is kept for a day.
  if (now_s - s.last_failure > int64_t(limits_.ban_seconds)) s.failures = 0;
  if (now_s - s.last_failure > kMaxBanS) s.bans = 0;
  s.last_failure = now_s;
  ++s.failures;
  // The first failures cost nothing: a typo, or two devices of one NATed home
  // failing one after the other, must not make the next attempt wait.
  if (limits_.backoff_seconds > 0 && s.failures > kFreeFailures) {
    s.next_allowed = now_s + doubled(limits_.backoff_seconds, s.failures - kFreeFailures,
                                     std::max<int64_t>(limits_.ban_seconds, 1));
  }
  if (limits_.max_failures > 0 && s.failures >= limits_.max_failures) {
    ++s.bans;
    const int64_t length = doubled(std::max<int64_t>(limits_.ban_seconds, 1), s.bans, kMaxBanS);
    s.banned_until = now_s + length;
    s.failures = 0;
    f.banned = true;
    f.ban_seconds = static_cast<unsigned>(length);
  }

  f.log = take_log_line(s, now_s, &f.suppressed);

  if (!user_key.empty()) {
    User &u = user(user_key);
    if (now_s - u.window_start > int64_t(limits_.ban_seconds)) {
      u.window_start = now_s;
      u.failures = 0;
      u.alarmed = false;
      u.sources.clear();
    }
    ++u.failures;
    if (u.sources.size() < kUserSources &&
        std::find(u.sources.begin(), u.sources.end(), src) == u.sources.end())
      u.sources.push_back(src);
    f.user_failures = u.failures;
    f.user_sources = static_cast<unsigned>(u.sources.size());
    if (limits_.user_alarm > 0 && u.failures >= limits_.user_alarm && !u.alarmed) {
      u.alarmed = true;
      f.user_alarm = true;
    }
  }
  return f;
}

bool FailureLimiter::take_log_line(Source &s, int64_t now_s, uint64_t *suppressed) {
  // The log budget: a few lines per source and per minute, fewer in total, so a
  // flood writes a bounded log; the rest is counted for a summary line.
  if (now_s - s.log_window >= kLogWindowS) s.log_window = now_s, s.logged = 0;
  if (now_s - total_window_ >= kLogWindowS) total_window_ = now_s, total_logged_ = 0;
  if (s.logged < limits_.log_lines && total_logged_ < limits_.log_lines_total) {
    ++s.logged;
    ++total_logged_;
    *suppressed = s.suppressed;
    s.suppressed = 0;
    return true;
  }
  ++s.suppressed;
  return false;
}

FailureLimiter::LogLine FailureLimiter::log_line(const std::string &src, int64_t now_s) {
  LogLine l;
  // Only the budget is touched: no failure, no back-off, no ban for src.
  l.log = take_log_line(source(src, now_s), now_s, &l.suppressed);
  return l;
}

FailureLimiter::LogLine FailureLimiter::unattributed_log_line(int64_t now_s) {
  LogLine l;
  if (now_s - unattributed_window_ >= kLogWindowS)
    unattributed_window_ = now_s, unattributed_logged_ = 0;
  if (unattributed_logged_ < limits_.log_lines) {
    ++unattributed_logged_;
    l.suppressed = unattributed_suppressed_;
    unattributed_suppressed_ = 0;
  } else {
    l.log = false;
    ++unattributed_suppressed_;
  }
  return l;
}

uint64_t FailureLimiter::take_unattributed_suppressed() {
  return std::exchange(unattributed_suppressed_, 0);
}

void FailureLimiter::succeeded(const std::string &src) {
  auto it = sources_.find(src);
  if (it == sources_.end()) return;
  it->second.failures = 0;
  it->second.next_allowed = 0;
}

std::vector<FailureLimiter::Ban> FailureLimiter::bans(int64_t now_s) const {
  std::vector<Ban> out;
  for (const auto &[key, s] : sources_)
    if (s.banned_until > now_s) out.push_back({key, s.banned_until, s.failures, s.bans});
  std::sort(out.begin(), out.end(), [](const Ban &a, const Ban &b) { return a.source < b.source; });
  return out;
}

bool FailureLimiter::unban(const std::string &src) {
  auto it = sources_.find(src);
  if (it == sources_.end()) return false;
  const bool was = it->second.banned_until != 0 || it->second.next_allowed != 0;
  // Unbanned by hand: a clean slate, as if it had never failed.
  source_order_.erase(it->second.lru);
  sources_.erase(it);
  return was;
}

size_t FailureLimiter::unban_all() {
  size_t n = 0;
  for (const auto &[key, s] : sources_)
    if (s.banned_until != 0) ++n;
  sources_.clear();
  source_order_.clear();
  return n;
}

std::vector<std::pair<std::string, uint64_t>> FailureLimiter::take_suppressed(size_t max) {
  std::vector<std::pair<std::string, uint64_t>> out;
  for (auto &[key, s] : sources_) {
    if (out.size() >= max) break;
    if (s.suppressed == 0) continue;
    out.emplace_back(key, s.suppressed);
    s.suppressed = 0;
  }
  return out;
}

}  // namespace portier::auth
