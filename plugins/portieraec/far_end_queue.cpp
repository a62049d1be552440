#include "far_end_queue.h"

#include <algorithm>

namespace portier::aec {

using Lock = std::lock_guard<std::mutex>;

FarEndQueue::FarEndQueue(size_t capacity) : ring_(std::max<size_t>(capacity, 1)) {}

void FarEndQueue::push(int64_t time, const int16_t *samples, int rate, int channels) {
  Lock l(lock_);
  if (count_ == ring_.size()) {  // full: the oldest frame goes
    head_ = (head_ + 1) % ring_.size();
    --count_;
    ++overflowed_;
  }
  FarFrame &f = ring_[(head_ + count_) % ring_.size()];
  f.time = time;
  f.rate = rate;
  f.channels = channels;
  // assign() reuses the slot's storage once it has held a frame of this size
  f.samples.assign(samples, samples + static_cast<size_t>(rate / 100) * channels);
  ++count_;
  ++pushed_;
}

void FarEndQueue::close() {
  Lock l(lock_);
  closed_ = true;
  count_ = 0;
}

void FarEndQueue::reopen() {
  Lock l(lock_);
  closed_ = false;
}

bool FarEndQueue::closed() const {
  Lock l(lock_);
  return closed_;
}

size_t FarEndQueue::size() const {
  Lock l(lock_);
  return count_;
}

uint64_t FarEndQueue::pushed() const {
  Lock l(lock_);
  return pushed_;
}

uint64_t FarEndQueue::overflowed() const {
  Lock l(lock_);
  return overflowed_;
}

// ------------------------------------------------------------------ cursor

size_t FarEndCursor::take(FarEndQueue &q, int64_t near_start, std::vector<FarFrame> &out) {
  const int64_t near_end = near_start + kFrameNs;
  size_t n = 0;
  auto emit = [&]() -> FarFrame & {
    if (out.size() < n + 1) out.resize(n + 1);
    return out[n++];
  };
  auto silence = [&] {
    FarFrame &f = emit();
    f.time = next_;
    f.rate = rate_;
    f.channels = channels_;
    f.samples.assign(static_cast<size_t>(rate_ / 100) * channels_, 0);
    next_ += kFrameNs;
    ++silent_;
  };
  Lock l(q.lock_);
  // A jump in the near-end stream (a seek, a source restart) or a long stall
  // of the far end: start over from this frame rather than fill the distance
  // with silence or race through stale frames one by one.
  if (valid_ && (next_ > near_end + kResyncNs || next_ < near_start - kResyncNs)) valid_ = false;
  if (!valid_) next_ = near_start;
  // far-end audio up to the end of this near-end frame (give or take the
  // tolerance: the two streams' frames need not start at the same instants)
  while (next_ + kToleranceNs < near_end) {
    if (q.count_ == 0) {
      // Nothing played (yet). Before the first frame there is no format to
      // make silence in, and nothing to cancel either.
      if (!valid_) break;
      silence();
      continue;
    }
    FarFrame &head = q.ring_[q.head_];
    if (head.time + kFrameNs <= next_ + kToleranceNs) {  // its time has passed
      q.head_ = (q.head_ + 1) % q.ring_.size();
      --q.count_;
      ++stale_;
      continue;
    }
    if (head.time > next_ + kToleranceNs) {
      if (!valid_) break;  // the far end starts later than this frame
      // the speaker paused: silence until its next frame is due
      silence();
      continue;
    }
    FarFrame &f = emit();
    std::swap(f, head);  // the slot's old storage goes back to the ring for reuse
    q.head_ = (q.head_ + 1) % q.ring_.size();
    --q.count_;
    valid_ = true;
    rate_ = f.rate;
    channels_ = f.channels;
    // follow the far end's own clock: small jitter does not add up
    next_ = f.time + kFrameNs;
  }
  return n;
}

// ------------------------------------------------------------------ registry

ProbeRegistry &ProbeRegistry::instance() {
  static ProbeRegistry registry;
  return registry;
}

bool ProbeRegistry::add(const std::string &name, std::shared_ptr<FarEndQueue> queue) {
  Lock l(lock_);
  auto [it, inserted] = probes_.emplace(name, queue);
  return inserted || it->second == queue;
}

void ProbeRegistry::remove(const std::string &name, const FarEndQueue *queue) {
  Lock l(lock_);
  auto it = probes_.find(name);
  if (it != probes_.end() && it->second.get() == queue) probes_.erase(it);
}

std::shared_ptr<FarEndQueue> ProbeRegistry::find(const std::string &name) const {
  Lock l(lock_);
  auto it = probes_.find(name);
  return it == probes_.end() ? nullptr : it->second;
}

}  // namespace portier::aec
