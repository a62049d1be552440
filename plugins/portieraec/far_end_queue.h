// What the speaker played, handed from the probe (playback thread) to the
// canceller (capture thread), frame by frame, each with the time it left the
// speaker.
//
// The queue is bounded: a canceller that stops reading (or never existed)
// costs the probe a fixed amount of memory, and the oldest frames, which no
// echo can still contain, are the ones dropped. The canceller reads through a
// FarEndCursor, which hands it exactly the far-end audio played during each
// near-end frame: late (stale) frames are dropped, and a gap in playback
// becomes silence, so the echo canceller's far-end and near-end streams stay
// in step as webrtc-audio-processing expects (one 10 ms frame each per turn).
//
// ProbeRegistry pairs the two elements by the probe's name, as a door
// pipeline holds both; it hands out shared ownership so a probe that goes
// away never leaves the canceller with a dangling queue, only a closed one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace portier::aec {

struct FarFrame {
  int64_t time = 0;  // when its first sample is played, ns (pipeline running time)
  int rate = 0, channels = 0;
  std::vector<int16_t> samples;  // 10 ms, interleaved
};

class FarEndQueue {
 public:
  // capacity in 10 ms frames; 200 keep two seconds of playback.
  explicit FarEndQueue(size_t capacity = 200);

  // Producer side (the probe).
  void push(int64_t time, const int16_t *samples, int rate, int channels);
  void close();  // the probe stopped: no more frames will come
  void reopen();

  bool closed() const;
  size_t size() const;
  size_t capacity() const { return ring_.size(); }
  uint64_t pushed() const;
  uint64_t overflowed() const;  // dropped because nobody read them in time

 private:
  friend class FarEndCursor;
  mutable std::mutex lock_;
  std::vector<FarFrame> ring_;  // preallocated: no allocation per frame
  size_t head_ = 0, count_ = 0;
  bool closed_ = false;
  uint64_t pushed_ = 0, overflowed_ = 0;
};

// The canceller's reading position in the far-end stream.
class FarEndCursor {
 public:
  static constexpr int64_t kFrameNs = 10000000;
  // Far-end frames within this of where they are expected are on time.
  static constexpr int64_t kToleranceNs = kFrameNs / 2;
  // Farther than this from where the cursor is, it starts over.
  static constexpr int64_t kResyncNs = 20 * kFrameNs;

  // Copies into `out` the far-end frames that cover the near-end frame
  // [near_start, near_start + 10 ms): usually one. Returns how many.
  // Frames from before the cursor are dropped; a hole in the far-end stream
  // is filled with a silent frame, so that while the speaker is silent the
  // canceller keeps a far-end frame per near-end frame.
  size_t take(FarEndQueue &queue, int64_t near_start, std::vector<FarFrame> &out);
  void reset() { valid_ = false; }

  uint64_t stale() const { return stale_; }    // arrived after their time had passed
  uint64_t silent() const { return silent_; }  // silence for a hole in the far end

 private:
  bool valid_ = false;
  int64_t next_ = 0;  // where the next far-end frame should start
  int rate_ = 0, channels_ = 0;
  uint64_t stale_ = 0, silent_ = 0;
};

class ProbeRegistry {
 public:
  static ProbeRegistry &instance();
  // False when another probe holds the name.
  bool add(const std::string &name, std::shared_ptr<FarEndQueue> queue);
  void remove(const std::string &name, const FarEndQueue *queue);
  std::shared_ptr<FarEndQueue> find(const std::string &name) const;

 private:
  mutable std::mutex lock_;
  std::map<std::string, std::shared_ptr<FarEndQueue>> probes_;
};

}  // namespace portier::aec
