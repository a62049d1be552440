#include "rtp_fork_core.h"

#include "rtp_header.h"

namespace portier::rtp {

RtpForkCore::RtpForkCore(ForkEdge &edge, const Settings &settings)
    : edge_(edge),
      settings_(settings),
      requests_(settings.timing),
      gop_(settings.gop_max_packets, settings.gop_max_bytes,
           [this](Cached &c) { edge_.release(c.packet); }) {}

RtpForkCore::Branch *RtpForkCore::find(uint32_t id) {
  for (Branch &b : branches_)
    if (b.id == id) return &b;
  return nullptr;
}

const RtpForkCore::Branch *RtpForkCore::branch(uint32_t id) const {
  for (const Branch &b : branches_)
    if (b.id == id) return &b;
  return nullptr;
}

// ------------------------------------------------------------------ the source

void RtpForkCore::on_rtp(const Incoming *packets, size_t n, int64_t now_us) {
  for (Branch &b : branches_)
    if (b.receiving && b.replay_due) replay(b, now_us);
  const bool video = settings_.codec != VideoCodec::None;
  Cached run[kMaxSend];
  size_t k = 0;
  bool ask_now = false, gop_turned = false;
  auto finish_run = [&] {
    // A retry or a held-back request is due by the clock, and a run has one
    // "now": asking once per run is asking once per packet.
    if (video && k) ask_now |= requests_.poll(ssrc_, now_us);
    if (ask_now) edge_.request_keyframe(ssrc_);
    if (k) send_live(run, k, now_us);
    // A GOP the keyframe ended goes after the keyframe went out.
    if (gop_turned) release_retired();
    k = 0;
    ask_now = gop_turned = false;
  };
  for (size_t i = 0; i < n; ++i) {
    const Incoming &in = packets[i];
    Header h;
    if (!parse(in.data, in.size, &h)) {
      ++counters_.invalid_in;
      continue;
    }
    ++counters_.packets_in;
    const RtpIds ids{h.ssrc, h.seq, h.timestamp};
    if (!have_ssrc_ || h.ssrc != ssrc_) {
      if (have_ssrc_) ++counters_.source_changes;
      gop_.clear();  // the old stream's GOP decodes nothing of the new one
      have_ssrc_ = true;
      ssrc_ = h.ssrc;
      if (keyframe_wanted_ && video) {
        keyframe_wanted_ = false;
        ask_now |= requests_.request(ssrc_, now_us);
      }
    }
    if (video) {
      const bool key = starts_keyframe(settings_.codec, in.data + h.payload_offset, h.payload_size);
      if (key) {
        ++counters_.keyframes_in;
        requests_.keyframe_seen(ssrc_);
        gop_turned = true;
      }
      if (settings_.replay_gop) {
        edge_.hold(in.packet);
        gop_.push(Cached{in.packet, ids}, in.size, key, h.timestamp);
      }
    }
    run[k++] = Cached{in.packet, ids};
    if (k == kMaxSend) finish_run();
  }
  finish_run();
}

void RtpForkCore::send_live(const Cached *packets, size_t n, int64_t now_us) {
  for (Branch &b : branches_) {
    if (!b.receiving) continue;
    for (size_t i = 0; i < n; ++i) {
      const RtpIds &in = packets[i].ids;
      const RtpIds out = b.sequencer.map(in, now_us);
      out_[i] = Outgoing{packets[i].packet, out,
                         out.ssrc != in.ssrc || out.seq != in.seq || out.timestamp != in.timestamp};
    }
    edge_.send(b.handle, out_, n, false);
  }
}

void RtpForkCore::release_retired() {
  for (Cached &c : gop_.take_retired()) edge_.release(c.packet);
}

void RtpForkCore::on_rtcp() {
  for (const Branch &b : branches_) {
    if (!b.receiving) continue;
    // The branch's receivers know the SSRC its sequencer gave the stream.
    const BranchSequencer &seq = b.sequencer;
    if (seq.started() && seq.ssrc() != seq.source_ssrc())
      edge_.forward_rtcp(b.handle, seq.source_ssrc(), seq.ssrc());
    else
      edge_.forward_rtcp(b.handle, 0, 0);
  }
}

// ------------------------------------------------------------------ branches

bool RtpForkCore::add_branch(uint32_t id, BranchHandle handle, int64_t now_us) {
  if (find(id)) return false;
  Branch b{id, handle, BranchSequencer(settings_.clock_rate)};
  // After the 200 only the winner receives, whoever joins late.
  b.receiving = selected_ < 0 || selected_ == id;
  b.replay_due = true;
  branches_.push_back(b);
  want_keyframe(now_us);
  return true;
}

bool RtpForkCore::select_branch(uint32_t id, int64_t now_us) {
  if (!find(id)) return false;
  selected_ = id;
  for (Branch &b : branches_) b.receiving = b.id == id;
  want_keyframe(now_us);
  return true;
}

bool RtpForkCore::remove_branch(uint32_t id) {
  for (auto it = branches_.begin(); it != branches_.end(); ++it)
    if (it->id == id) {
      if (selected_ == id) selected_ = -1;
      branches_.erase(it);
      return true;
    }
  return false;
}

void RtpForkCore::branch_wants_keyframe(int64_t now_us) { want_keyframe(now_us); }

void RtpForkCore::tick(int64_t now_us) {
  for (Branch &b : branches_)
    if (b.receiving && b.replay_due) replay(b, now_us);
  if (have_ssrc_ && settings_.codec != VideoCodec::None && requests_.poll(ssrc_, now_us))
    edge_.request_keyframe(ssrc_);
}

void RtpForkCore::want_keyframe(int64_t now_us) {
  if (!settings_.request_keyframe) return;
  if (!have_ssrc_) {  // asked for with the source's first packet
    keyframe_wanted_ = true;
    return;
  }
  if (settings_.codec == VideoCodec::None) return;
  if (requests_.request(ssrc_, now_us)) edge_.request_keyframe(ssrc_);
}

void RtpForkCore::replay(Branch &b, int64_t now_us) {
  b.replay_due = false;
  size_t k = 0;
  for (const Cached &c : gop_.packets()) {
    const RtpIds out = b.sequencer.map(c.ids, now_us);
    out_[k++] = Outgoing{
        c.packet, out,
        out.ssrc != c.ids.ssrc || out.seq != c.ids.seq || out.timestamp != c.ids.timestamp};
    if (k == kMaxSend) edge_.send(b.handle, out_, k, true), k = 0;
  }
  if (k) edge_.send(b.handle, out_, k, true);
}

// ------------------------------------------------------------------ settings

void RtpForkCore::set_codec(VideoCodec codec, uint32_t clock_rate) {
  if (codec != settings_.codec) gop_.clear();
  settings_.codec = codec;
  if (clock_rate > 0) settings_.clock_rate = clock_rate;
}

void RtpForkCore::set_replay_gop(bool on) {
  settings_.replay_gop = on;
  if (!on) gop_.clear();
}

void RtpForkCore::set_timing(const KeyframeRequests::Timing &timing) {
  settings_.timing = timing;
  requests_ = KeyframeRequests(timing);
}

void RtpForkCore::set_gop_limits(size_t max_packets, size_t max_bytes) {
  settings_.gop_max_packets = max_packets;
  settings_.gop_max_bytes = max_bytes;
  gop_.set_limits(max_packets, max_bytes);
}

void RtpForkCore::reset() {
  gop_.clear();
  have_ssrc_ = false;
  requests_ = KeyframeRequests(settings_.timing);
}

}  // namespace portier::rtp
