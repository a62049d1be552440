// The early-media fork's logic, once, for the rtpfork element and the proxy's
// relay engine: one source stream to a branch per ringing device.
//
// Events go in (the source's packets, its RTCP, a branch added, selected or
// removed, a branch asking for a keyframe, a clock tick) and actions come out
// through a ForkEdge the owner implements (send these packets with these ids
// to that branch, ask upstream for a keyframe). The core never touches a
// socket, a pad or packet memory: packets and branches are the edge's handles
// (a GstBuffer and a pad, a pool buffer and a socket pair), and nothing is
// allocated per packet. It is not thread-safe: the edge calls it from one
// thread at a time (under the element's lock, on the engine's worker).
//
// What it does, as mediasoup's consumers and KeyFrameRequestManager do:
//  - a new source SSRC (an encoder restart) drops the cached GOP;
//  - a branch that joins, or is selected, wants a keyframe: requests are
//    de-duplicated per SSRC with one retry (KeyframeRequests); one wanted
//    before the source's first packet is asked for with that packet;
//  - the packets since the last keyframe are cached (GopCache) and replayed
//    to a joining branch before any live packet;
//  - every branch sees one SSRC and an unbroken sequence (BranchSequencer).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "branch_sequencer.h"
#include "gop_cache.h"
#include "keyframe_detect.h"
#include "keyframe_requests.h"

namespace portier::rtp {

// The edge's own handles; the core only keeps them and hands them back.
using PacketHandle = void *;
using BranchHandle = void *;

// A packet from the source: the edge's handle and its bytes, readable for the
// length of the call.
struct Incoming {
  PacketHandle packet;
  const uint8_t *data;
  size_t size;
};

// A packet for one branch, with the ids it must carry there; `rewritten`:
// they differ from the packet's own (the edge must write them).
struct Outgoing {
  PacketHandle packet;
  RtpIds ids;
  bool rewritten;
};

// What the core asks of its owner. Called from inside the core's events.
class ForkEdge {
 public:
  // The GOP cache keeps a packet (hold) and lets it go (release).
  virtual void hold(PacketHandle packet) = 0;
  virtual void release(PacketHandle packet) = 0;
  // Packets for a branch, in order, at most RtpForkCore::kMaxSend at a time;
  // `replay`: from the GOP cache, before the branch's first live packet.
  virtual void send(BranchHandle branch, const Outgoing *packets, size_t n, bool replay) = 0;
  // The source's RTCP (the packet the edge is handling) goes to this branch,
  // naming the SSRC `to` where it names `from` (equal: unchanged).
  virtual void forward_rtcp(BranchHandle branch, uint32_t from, uint32_t to) = 0;
  // Ask the source for a keyframe of `ssrc` (RTCP PLI, a GstForceKeyUnit event).
  virtual void request_keyframe(uint32_t ssrc) = 0;

 protected:
  ~ForkEdge() = default;
};

class RtpForkCore {
 public:
  struct Settings {
    VideoCodec codec = VideoCodec::None;  // None: audio, no keyframes, no GOP
    uint32_t clock_rate = 90000;
    bool replay_gop = true;
    bool request_keyframe = true;
    KeyframeRequests::Timing timing;
    size_t gop_max_packets = 3000;
    size_t gop_max_bytes = 4 * 1024 * 1024;
  };
  struct Counters {
    uint64_t packets_in = 0;
    uint64_t invalid_in = 0;
    uint64_t keyframes_in = 0;
    uint64_t source_changes = 0;  // a new SSRC after the first
  };
  struct Branch {
    uint32_t id;
    BranchHandle handle;
    BranchSequencer sequencer;
    bool receiving = true;
    bool replay_due = false;
  };

  // The largest packet run one ForkEdge::send carries (the engine's
  // sendmmsg batch).
  static constexpr size_t kMaxSend = 32;

  explicit RtpForkCore(ForkEdge &edge) : RtpForkCore(edge, Settings{}) {}
  RtpForkCore(ForkEdge &edge, const Settings &settings);
  RtpForkCore(const RtpForkCore &) = delete;
  RtpForkCore &operator=(const RtpForkCore &) = delete;

  // ---- events; `now_us` is any monotonic clock in microseconds
  // RTP from the source: cached, then sent to every receiving branch (a
  // branch whose replay is due gets the GOP first). Invalid packets are
  // counted and dropped.
  void on_rtp(const Incoming *packets, size_t n, int64_t now_us);
  // RTCP from the source: forwarded to every receiving branch.
  void on_rtcp();
  // A branch joins: it receives from now on (unless another was selected),
  // asks for a keyframe at once, and its GOP replay is due: sent by the next
  // tick() or before the next live packet, whichever comes first. False: the
  // id is taken.
  bool add_branch(uint32_t id, BranchHandle handle, int64_t now_us);
  // The branch that answered 200: only it receives from now on; it asks for
  // a keyframe. False: no such branch.
  bool select_branch(uint32_t id, int64_t now_us);
  bool remove_branch(uint32_t id);
  // A branch asks for a keyframe (its PLI or FIR, a force-key-unit event).
  void branch_wants_keyframe(int64_t now_us);
  // Work that does not wait for a packet: due GOP replays, and a keyframe
  // request retry or one that the minimum interval held back.
  void tick(int64_t now_us);

  // ---- settings; changing what the GOP holds drops it
  void set_codec(VideoCodec codec, uint32_t clock_rate);
  void set_replay_gop(bool on);
  void set_request_keyframe(bool on) { settings_.request_keyframe = on; }
  void set_timing(const KeyframeRequests::Timing &timing);
  void set_gop_limits(size_t max_packets, size_t max_bytes);
  // A new stream (flush, stream start): the cached GOP decodes nothing of it.
  void drop_gop() { gop_.clear(); }
  // The source is gone (stopped): forget its SSRC, its GOP and requests.
  void reset();

  // ---- reading
  const Settings &settings() const { return settings_; }
  const Counters &counters() const { return counters_; }
  const KeyframeRequests &keyframe_requests() const { return requests_; }
  size_t gop_packets() const { return gop_.packets().size(); }
  // The source's latest SSRC (0 before its first packet).
  uint32_t source_ssrc() const { return ssrc_; }
  const Branch *branch(uint32_t id) const;
  const std::vector<Branch> &branches() const { return branches_; }
  // The selected branch, or -1.
  int64_t selected() const { return selected_; }

 private:
  struct Cached {
    PacketHandle packet;
    RtpIds ids;
  };
  void want_keyframe(int64_t now_us);
  void ask(uint32_t ssrc, bool due);
  void replay(Branch &b, int64_t now_us);
  void send_live(const Cached *packets, size_t n, int64_t now_us);
  void release_retired();
  Branch *find(uint32_t id);

  ForkEdge &edge_;
  Settings settings_;
  Counters counters_;

  // the source
  bool have_ssrc_ = false;
  uint32_t ssrc_ = 0;
  bool keyframe_wanted_ = false;  // asked for before the source's first packet
  KeyframeRequests requests_;
  GopCache<Cached> gop_;

  std::vector<Branch> branches_;
  int64_t selected_ = -1;
  Outgoing out_[kMaxSend];  // one send's packets, rewritten per branch
};

}  // namespace portier::rtp
