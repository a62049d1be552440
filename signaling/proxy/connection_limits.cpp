#include "proxy/connection_limits.h"

#include <algorithm>
#include <cstdint>
#include <set>

namespace portier::proxy {

ConnectionLimits::Entry &ConnectionLimits::sight(const std::string &key, int64_t now_ms,
                                                 bool *is_new) {
  auto it = entries_.find(key);
  *is_new = it == entries_.end();
  if (*is_new) {
    Entry e;
    e.seq = next_seq_++;
    e.last_request = now_ms;
    it = entries_.emplace(key, e).first;
  }
  return it->second;
}

bool ConnectionLimits::note_request(const std::string &key, int64_t now_ms) {
  bool is_new = false;
  Entry &e = sight(key, now_ms, &is_new);
  e.last_request = now_ms;
  e.requested = true;
  return !is_new;
}

std::vector<Closing> ConnectionLimits::review(const std::vector<OpenConnection> &open,
                                              int64_t now_ms, size_t max_accepted) {
  std::vector<Closing> close;
  std::set<std::string> seen;
  std::map<std::string, std::vector<std::pair<uint64_t, const OpenConnection *>>> others_by_host;
  std::map<std::string, size_t> count_by_host;
  for (const auto &c : open) {
    bool is_new = false;
    Entry &e = sight(c.key, now_ms, &is_new);
    seen.insert(c.key);
    if (c.registered) {
      // A device's flow (RFC 5626 §4.4.1) may carry nothing but keep-alives
      // until the device registers again: while its binding lives it stays,
      // and it counts against its source.
      e.last_request = now_ms;
      e.requested = true;
      ++count_by_host[c.host];
      continue;
    }
    const int64_t allowed =
        e.requested ? settings_.idle_ms : std::min(settings_.idle_ms, settings_.first_request_ms);
    if (now_ms - e.last_request >= allowed) {
      close.push_back({c.key, c.host, Closing::Why::Idle});
      continue;
    }
    ++count_by_host[c.host];
    others_by_host[c.host].push_back({e.seq, &c});
  }
  size_t total = 0;
  std::vector<std::pair<uint64_t, const OpenConnection *>> others;
  for (auto &[host, conns] : others_by_host) {
    size_t &count = count_by_host[host];
    std::sort(conns.begin(), conns.end());  // oldest first
    while (count > settings_.max_per_source && !conns.empty()) {
      const OpenConnection &newest = *conns.back().second;
      close.push_back({newest.key, newest.host, Closing::Why::OverLimit});
      conns.pop_back();
      --count;
    }
    others.insert(others.end(), conns.begin(), conns.end());
  }
  for (const auto &[host, count] : count_by_host) total += count;
  if (total > max_accepted) {
    std::sort(others.begin(), others.end());
    while (total > max_accepted && !others.empty()) {
      const OpenConnection &newest = *others.back().second;
      close.push_back({newest.key, newest.host, Closing::Why::NoDescriptors});
      --count_by_host[newest.host];
      others.pop_back();
      --total;
    }
  }
  open_by_host_.clear();
  for (const auto &[host, count] : count_by_host)
    if (count) open_by_host_[host] = count;
  for (const auto &c : close) seen.erase(c.key);
  for (auto it = entries_.begin(); it != entries_.end();)
    it = seen.count(it->first) ? std::next(it) : entries_.erase(it);
  return close;
}

bool ConnectionLimits::accept_from(const std::string &host) {
  size_t &n = open_by_host_[host];
  if (n >= settings_.max_per_source) return false;
  ++n;
  return true;
}

}  // namespace portier::proxy
