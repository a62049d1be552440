// What one branch's receiver sees: one SSRC and an unbroken sequence, whatever
// happens upstream. The first packet fixes the branch's SSRC and sequence
// numbering; when the source changes SSRC (an encoder restart) or its sequence
// jumps, the offsets are moved so the branch's stream simply goes on, and the
// timestamps go on with the time that really passed. Packets otherwise keep
// their own sequence numbers (plus the offset), so losses and reordering stay
// visible to the receiver's jitter buffer.
#pragma once

#include <cstdint>

namespace portier::rtp {

struct RtpIds {
  uint32_t ssrc;
  uint16_t seq;
  uint32_t timestamp;
};

class BranchSequencer {
 public:
  // clock_rate: the RTP clock of the stream (90000 for video), for the
  // timestamp gap across a source change.
  explicit BranchSequencer(uint32_t clock_rate = 90000) : clock_rate_(clock_rate) {}

  // The ids this packet must carry on this branch.
  RtpIds map(const RtpIds &in, int64_t now_us);

  // Whether the output differs from the input (the packet must be copied).
  bool rewriting() const { return seq_offset_ != 0 || ts_offset_ != 0 || ssrc_changed_; }
  bool started() const { return started_; }
  uint32_t ssrc() const { return out_ssrc_; }
  uint32_t source_ssrc() const { return in_ssrc_; }
  uint32_t discontinuities() const { return discontinuities_; }

  // A jump larger than this (either way) is a new numbering, not loss or reordering.
  static constexpr int kMaxJump = 3000;

 private:
  uint32_t clock_rate_;
  bool started_ = false;
  bool ssrc_changed_ = false;
  uint32_t in_ssrc_ = 0;
  uint32_t out_ssrc_ = 0;
  uint16_t seq_offset_ = 0;
  uint32_t ts_offset_ = 0;
  uint16_t last_in_seq_ = 0;
  uint16_t last_out_seq_ = 0;
  uint32_t last_out_ts_ = 0;
  int64_t last_time_us_ = 0;
  uint32_t discontinuities_ = 0;
};

}  // namespace portier::rtp
