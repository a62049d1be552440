// Cuts an audio stream that arrives in buffers of any size into the 10 ms
// frames webrtc-audio-processing works on, and tells each frame's time.
//
// Buffers rarely hold a whole number of 10 ms frames (an alsasrc period, a
// decoder's output, a file's chunks), so the samples of an incomplete frame
// wait for the next buffer. A frame's time is the time of its first sample,
// counted from the last buffer time that precedes it: a frame that starts
// after a jump in the stream's timestamps gets the new time, so the far-end
// and near-end frames are matched by when they were really played and heard.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <utility>
#include <vector>

namespace portier::aec {

class FrameBatcher {
 public:
  static constexpr int64_t kNoTime = std::numeric_limits<int64_t>::min();
  static constexpr int kFrameMs = 10;  // webrtc-audio-processing's unit

  FrameBatcher() = default;
  FrameBatcher(int rate, int channels) { configure(rate, channels); }

  // A new format: what was held is dropped.
  void configure(int rate, int channels);
  int rate() const { return rate_; }
  int channels() const { return channels_; }
  size_t frame_samples() const { return frame_len_; }              // per channel
  int64_t frame_duration() const { return 1000000LL * kFrameMs; }  // ns

  // Appends interleaved samples. `time` (ns, any time base) belongs to the
  // first of them; kNoTime continues the time of what came before, or starts
  // at 0 for a stream without timestamps.
  void push(const int16_t *data, size_t samples_per_channel, int64_t time);

  size_t ready() const { return (held_ / frame_len_); }  // complete frames
  int16_t *frame(size_t i) { return buf_.data() + i * frame_len_ * channels_; }
  const int16_t *frame(size_t i) const { return buf_.data() + i * frame_len_ * channels_; }
  int64_t frame_time(size_t i) const;
  // Forgets the first n complete frames.
  void pop(size_t n);

  // Samples per channel waiting for the rest of their frame.
  size_t pending() const { return held_ % frame_len_; }
  // Completes the waiting samples with silence, so the stream's end can be
  // processed too; returns how many of that frame's samples are real.
  size_t pad();
  void clear();

 private:
  int64_t time_at(uint64_t index) const;

  int rate_ = 0, channels_ = 0;
  size_t frame_len_ = 1;
  std::vector<int16_t> buf_;  // held samples, interleaved; buf_[0] has index first_
  size_t held_ = 0;           // per channel
  uint64_t first_ = 0;        // stream index of the first held sample
  // (stream index, time) of the buffers that still matter: the last one at or
  // before first_, and the later ones.
  std::deque<std::pair<uint64_t, int64_t>> anchors_;
};

}  // namespace portier::aec
