#include "branch_sequencer.h"

#include "rtp_header.h"

namespace portier::rtp {

RtpIds BranchSequencer::map(const RtpIds &in, int64_t now_us) {
  if (!started_) {
    started_ = true;
    in_ssrc_ = out_ssrc_ = in.ssrc;
    last_in_seq_ = in.seq;
    last_out_seq_ = in.seq;
    last_out_ts_ = in.timestamp;
    last_time_us_ = now_us;
    return in;
  }
  const int jump = seq_diff(in.seq, last_in_seq_);
  const bool discontinuity = in.ssrc != in_ssrc_ || jump > kMaxJump || jump < -kMaxJump;
  if (discontinuity) {
    // A new source or numbering: continue right after what the branch last got.
    ++discontinuities_;
    ssrc_changed_ = ssrc_changed_ || in.ssrc != out_ssrc_;
    in_ssrc_ = in.ssrc;
    seq_offset_ = static_cast<uint16_t>(last_out_seq_ + 1 - in.seq);
    int64_t elapsed = now_us - last_time_us_;
    if (elapsed < 0) elapsed = 0;
    uint32_t gap = static_cast<uint32_t>(elapsed * clock_rate_ / 1'000'000);
    if (gap == 0) gap = 1;
    ts_offset_ = last_out_ts_ + gap - in.timestamp;
  }
  RtpIds out{out_ssrc_, static_cast<uint16_t>(in.seq + seq_offset_), in.timestamp + ts_offset_};
  // Only forward progress moves the reference points (a reordered packet does not).
  if (discontinuity || jump > 0) {
    last_in_seq_ = in.seq;
    last_out_seq_ = out.seq;
    last_out_ts_ = out.timestamp;
    last_time_us_ = now_us;
  }
  return out;
}

}  // namespace portier::rtp
