#include "keyframe_requests.h"

#include <cstddef>

namespace portier::rtp {
namespace {
// A relay sees one or two SSRCs per stream in its life (an encoder restart
// makes a new one); the table must not grow without bound on a hostile source.
constexpr size_t kMaxStreams = 16;
}  // namespace

bool KeyframeRequests::send(State &s, int64_t now_us) {
  s.last_sent_us = now_us;
  s.ever_sent = true;
  s.pending = true;
  s.held = false;
  ++sent_;
  return true;
}

bool KeyframeRequests::request(uint32_t ssrc, int64_t now_us) {
  if (streams_.size() >= kMaxStreams && !streams_.count(ssrc)) streams_.clear();
  State &s = streams_[ssrc];
  if (s.pending) {  // the outstanding request serves this branch too
    ++suppressed_;
    return false;
  }
  if (s.ever_sent && now_us - s.last_sent_us < timing_.min_interval_us) {
    ++suppressed_;
    s.held = true;
    return false;
  }
  s.retried = false;
  return send(s, now_us);
}

bool KeyframeRequests::poll(uint32_t ssrc, int64_t now_us) {
  auto it = streams_.find(ssrc);
  if (it == streams_.end()) return false;
  State &s = it->second;
  const int64_t since = now_us - s.last_sent_us;
  if (s.pending) {
    if (since < timing_.retry_after_us) return false;
    if (!s.retried) {  // no keyframe came: ask once more
      s.retried = true;
      return send(s, now_us);
    }
    s.pending = false;  // give up; a later join asks again
    return false;
  }
  if (s.held && since >= timing_.min_interval_us) {
    s.retried = false;
    return send(s, now_us);
  }
  return false;
}

void KeyframeRequests::keyframe_seen(uint32_t ssrc) {
  auto it = streams_.find(ssrc);
  if (it != streams_.end()) it->second.pending = false;
}

}  // namespace portier::rtp
