// The packets of the current group of pictures: from the last keyframe start
// to now. A branch that joins mid-GOP gets them first, so its decoder has a
// keyframe at once instead of waiting up to a whole keyframe interval.
//
// Packet is whatever the owner stores (a GstBuffer reference in the element);
// the cache only keeps them in order and drops them when a new GOP starts or
// the GOP outgrows its bounds (then there is nothing worth replaying until the
// next keyframe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <utility>

namespace portier::rtp {

template <typename Packet>
class GopCache {
 public:
  using Release = std::function<void(Packet &)>;

  GopCache(size_t max_packets, size_t max_bytes, Release release = {})
      : max_packets_(max_packets), max_bytes_(max_bytes), release_(std::move(release)) {}
  GopCache(const GopCache &) = delete;
  GopCache &operator=(const GopCache &) = delete;
  ~GopCache() { clear(); }

  // Adds a packet. A keyframe start begins a new GOP, unless it belongs to the
  // frame the current GOP starts with (H.264 sends SPS, PPS and the IDR slices
  // as several packets with one timestamp). Packets before the first keyframe
  // are not kept: they cannot be decoded on their own.
  //
  // The GOP a keyframe ends is retired, not released: releasing thousands of
  // buffers sits between the keyframe's arrival and its sending (it delayed
  // the keyframe of every call whose GOP turned over at once). The caller
  // takes them with take_retired() and releases them after sending.
  void push(Packet p, size_t bytes, bool keyframe_start, uint32_t rtp_timestamp) {
    if (keyframe_start && !(valid_ && rtp_timestamp == gop_timestamp_)) {
      for (auto &old : packets_) retired_.push_back(std::move(old));
      packets_.clear();
      bytes_ = 0;
      valid_ = true;
      gop_timestamp_ = rtp_timestamp;
    }
    if (!valid_ || packets_.size() + 1 > max_packets_ || bytes_ + bytes > max_bytes_) {
      if (valid_) clear();  // too long a GOP: replaying a part of it is useless
      if (release_) release_(p);
      return;
    }
    packets_.push_back(std::move(p));
    bytes_ += bytes;
  }

  // The packets of the GOPs ended since the last call, now the caller's.
  std::deque<Packet> take_retired() { return std::exchange(retired_, {}); }

  void clear() {
    if (release_) {
      for (auto &p : packets_) release_(p);
      for (auto &p : retired_) release_(p);
    }
    packets_.clear();
    retired_.clear();
    bytes_ = 0;
    valid_ = false;
  }

  void set_limits(size_t max_packets, size_t max_bytes) {
    clear();
    max_packets_ = max_packets;
    max_bytes_ = max_bytes;
  }

  bool has_keyframe() const { return valid_ && !packets_.empty(); }
  const std::deque<Packet> &packets() const { return packets_; }
  size_t bytes() const { return bytes_; }

 private:
  size_t max_packets_;
  size_t max_bytes_;
  Release release_;
  std::deque<Packet> packets_;
  std::deque<Packet> retired_;
  size_t bytes_ = 0;
  bool valid_ = false;
  uint32_t gop_timestamp_ = 0;
};

}  // namespace portier::rtp
