#include "frame_batcher.h"

#include <algorithm>
#include <cstdlib>

namespace portier::aec {

void FrameBatcher::configure(int rate, int channels) {
  rate_ = rate;
  channels_ = channels;
  frame_len_ = std::max<size_t>(1, static_cast<size_t>(rate) * kFrameMs / 1000);
  clear();
  buf_.reserve(frame_len_ * channels_ * 4);
}

void FrameBatcher::clear() {
  buf_.clear();
  held_ = 0;
  first_ = 0;
  anchors_.clear();
}

void FrameBatcher::push(const int16_t *data, size_t samples_per_channel, int64_t time) {
  if (samples_per_channel == 0 || channels_ == 0) return;
  const uint64_t index = first_ + held_;
  if (time != kNoTime) {
    // A buffer that lines up with the previous one (to within a sample) adds
    // no anchor: the frame times stay on one sample grid, free of the
    // rounding of every buffer's timestamp.
    if (anchors_.empty() || std::llabs(time_at(index) - time) > 1000000000LL / rate_)
      anchors_.emplace_back(index, time);
  } else if (anchors_.empty()) {
    anchors_.emplace_back(index, 0);
  }
  buf_.insert(buf_.end(), data, data + samples_per_channel * channels_);
  held_ += samples_per_channel;
}

int64_t FrameBatcher::time_at(uint64_t index) const {
  // the last anchor at or before index (the first one if none is)
  auto it = std::upper_bound(anchors_.begin(), anchors_.end(), index,
                             [](uint64_t i, const auto &a) { return i < a.first; });
  const auto &a = it == anchors_.begin() ? *it : *std::prev(it);
  const int64_t offset = static_cast<int64_t>(index) - static_cast<int64_t>(a.first);
  return a.second + offset * 1000000000LL / rate_;
}

int64_t FrameBatcher::frame_time(size_t i) const {
  if (anchors_.empty()) return kNoTime;
  return time_at(first_ + i * frame_len_);
}

void FrameBatcher::pop(size_t n) {
  n = std::min(n, ready());
  if (n == 0) return;
  const size_t samples = n * frame_len_;
  buf_.erase(buf_.begin(), buf_.begin() + samples * channels_);
  held_ -= samples;
  first_ += samples;
  // keep the anchor the new first sample counts from, drop the older ones
  while (anchors_.size() > 1 && anchors_[1].first <= first_) anchors_.pop_front();
}

size_t FrameBatcher::pad() {
  const size_t real = pending();
  if (real == 0) return 0;
  const size_t missing = frame_len_ - real;
  buf_.insert(buf_.end(), missing * channels_, 0);
  held_ += missing;
  return real;
}

}  // namespace portier::aec
