// The relay's data plane: a few I/O threads move every relayed packet, as in
// rtpengine, instead of a GStreamer pipeline and two threads per port pair.
//
// Each thread ("worker") has one epoll set; a call is pinned to the worker
// with the fewest calls, so its packet state (latching, the caller's SSRC, the
// GOP cache, every branch's sequencer) is touched by that thread only. A ready
// socket is read with one recvmmsg() of up to kBatch packets per wake-up (so a
// flooded socket cannot starve the others: epoll is level-triggered and gives
// the rest back next round); what the batch forwards goes out with one
// sendmmsg() per destination socket, the RTP header rewritten in a 12-byte
// copy beside the untouched payload. No lock is contended and nothing is
// allocated per packet: packet buffers come from the worker's pool.
//
// Control (add, select and remove branches, peer addresses from SDP, end of
// call) comes from the GLib main loop and takes the worker's mutex, which the
// worker holds while it handles one socket's batch; work that sends packets
// (the keyframe request and GOP replay of a new branch) is handed to the
// worker through its eventfd. A socket that is removed gets its epoll slot's
// generation bumped, so events epoll_wait already returned for it are ignored;
// when remove_branch() or close_call() returns, the worker has let go of the
// sockets and the caller may close them.
//
// What is forwarded:
//  - the caller's RTP and RTCP to every receiving branch, as the stream's
//    rtp::RtpForkCore decides (the same core the rtpfork element runs): every
//    connected early branch, only the winner after select_branch, each with
//    its own continuous SSRC/sequence/timestamp; a new branch gets the cached
//    GOP at once; keyframe requests of new or selected branches and early
//    branches' PLI/FIR are de-duplicated into one PLI from the caller-facing
//    RTCP socket naming the caller's latest SSRC (RFC 4585 §6.3.1);
//  - a branch's RTP and RTCP to the caller only from the winner;
//  - symmetric RTP: the first packet from a peer, per RTP and RTCP, fixes
//    where its packets go (update_peer() moves a peer not latched yet);
//  - ICE-lite (RFC 8445 §2.5) on a leg with credentials: STUN (first byte
//    0..3, RFC 7983) is never media; a Binding request is answered from the
//    socket it came to (ice_lite.h), and a valid one that nominates the pair
//    (USE-CANDIDATE), or any valid one of a peer that stays controlled and so
//    never nominates, moves the peer to its source. Such a leg is never
//    latched by media: before a check only the SDP's exact address is heard,
//    after it only the checked one, and new SDP does not move it (the
//    device's re-offer names its own side of the pair, RFC 8839 §4.4.1.2.2,
//    which behind a NAT is not where its packets come from);
//  - RTCP that arrives on an RTP port (rtcp-mux, RFC 5761 §4) is taken as RTCP;
//    RTCP goes to a peer's RTP port when it agreed to mux.
//
// SRTP (RFC 3711) is terminated per leg when the leg has contexts: a packet is
// checked and decrypted once on input (one that fails is dropped and counted,
// never forwarded), the fork core and the GOP cache see plaintext, and each
// output is a copy protected with its receiver's context (so one key never
// protects two streams, §9.1): a branch's in a per-worker buffer with room
// for the tag, the winner's to the caller in its own receive buffer.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/ice_lite.h"
#include "proxy/relay_srtp.h"
#include "rtpfork/keyframe_detect.h"
#include "rtpfork/keyframe_requests.h"

namespace portier::proxy {

// Where packets to a peer go; empty (len 0) when unknown: nothing is sent.
struct RelayAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;

  // An IP literal and a port; empty for port 0 or anything else (a name).
  static RelayAddress from(const std::string &host, uint16_t port);
  bool empty() const { return len == 0; }
  std::string text() const;  // "192.0.2.1:4000", "[::1]:4000"
};

class RelayEngine {
 public:
  // Whose packets a leg takes. Either way, once a peer's first packet has
  // fixed its address (latching), packets from any other address are dropped:
  // nobody else can put media into the call or take the peer's place.
  enum class Latch {
    SignalledHost,  // the first packet must come from the host the SDP names (any port:
                    // a NAT may move the port); others are dropped
    Anywhere,       // the first packet from anywhere (devices behind a NAT that
                    // write their private address into SDP)
  };

  // threads: I/O threads, 0 for one per online CPU the process may run on.
  // They start with the first call. keyframes: how the fork core paces the
  // keyframe requests it sends the caller.
  explicit RelayEngine(unsigned threads, Latch latch = Latch::SignalledHost,
                       const rtp::KeyframeRequests::Timing &keyframes = {});
  ~RelayEngine();
  RelayEngine(const RelayEngine &) = delete;
  RelayEngine &operator=(const RelayEngine &) = delete;

  // Packets per recvmmsg()/sendmmsg(); the largest datagram relayed.
  static constexpr int kBatch = 32;
  static constexpr size_t kMaxPacket = 2040;

  struct Call;  // a call's packet state, owned by the engine

  // One RTP/RTCP socket pair (non-blocking UDP, owned by the caller) and the
  // peer behind it, as signalling says.
  struct Leg {
    int rtp_fd = -1;
    int rtcp_fd = -1;
    RelayAddress rtp, rtcp;
    // RFC 5761: the peer agreed to RTCP on its RTP port; ours go there.
    bool rtcp_mux = false;
    // SRTP terminated on this leg: what the peer sends is checked and
    // decrypted with srtp_in (a packet that fails is dropped and counted),
    // what the relay sends it is protected with srtp_out. Both or neither.
    std::unique_ptr<SrtpContext> srtp_in = nullptr;
    std::unique_ptr<SrtpContext> srtp_out = nullptr;
    // SRTP passed through (SDES keys the relay never holds): the relay sends
    // this peer no RTCP of its own, which could only go unprotected, and an
    // SRTP receiver drops unauthenticated RTCP (RFC 3711 §3.4).
    bool keyless_srtp = false;
    // The device does ICE (its SDP had ice-ufrag/ice-pwd): the relay is an
    // ICE-lite agent on this leg with these credentials.
    std::optional<ice::Credentials> ice = std::nullopt;
  };

  // `id` names the call in logs; `pli_ssrc` is the sender SSRC of our PLIs.
  Call *open_call(const std::string &id, uint32_t pli_ssrc);
  // Stream `stream` (an m= line) relayed through the caller-facing `caller`.
  // codec: VideoCodec::None for audio (no keyframes, no GOP cache).
  void add_stream(Call *c, size_t stream, Leg caller, rtp::VideoCodec codec, uint32_t clock_rate);
  // Branch `branch` of stream `stream` starts receiving: it gets a keyframe
  // request toward the caller and the cached GOP at once.
  void add_branch(Call *c, size_t stream, size_t branch, Leg device);
  // The answered branch: only it receives from and talks to the caller now.
  void select_branch(Call *c, size_t branch);
  // The branch's sockets are no longer used when this returns.
  void remove_branch(Call *c, size_t branch);
  // New addresses from SDP for the caller (no branch) or a branch, where the
  // peer's own packets have not fixed them yet.
  void update_peer(Call *c, size_t stream, std::optional<size_t> branch, const RelayAddress &rtp,
                   const RelayAddress &rtcp);
  // Frees the call; none of its sockets is used when this returns.
  void close_call(Call *c);

  // Monotonic seconds of the call's last packet (0: none yet).
  int64_t last_packet_s(const Call *c) const;
  struct Counters {
    uint64_t packets = 0;  // sent to the branch's device, replayed ones included
    uint64_t bytes = 0;
    uint64_t srtp_rejected = 0;  // from the device: failed SRTP/SRTCP authentication or replayed
    uint64_t stun_answered = 0;  // the device's valid ICE checks (success responses)
    uint64_t stun_refused = 0;   // STUN on its ports that was not a valid check
  };
  Counters branch_counters(const Call *c, size_t branch) const;
  // The fork of stream `stream` (an m= line): what came from the caller and
  // the keyframe requests that went to it or were de-duplicated.
  struct ForkCounters {
    uint64_t packets_in = 0;
    uint64_t keyframe_requests_sent = 0;
    uint64_t keyframe_requests_suppressed = 0;
    uint64_t srtp_rejected = 0;  // from the caller: failed SRTP/SRTCP authentication or replayed
    uint64_t stun_answered = 0;  // the caller's valid ICE checks
    uint64_t stun_refused = 0;   // STUN on the caller-facing ports that was not a valid check
  };
  ForkCounters fork_counters(const Call *c, size_t stream) const;

  unsigned threads() const { return threads_; }
  // Since start, calls gone included: ICE checks answered with success, and
  // STUN on ICE legs' ports refused (400/401/420) or dropped.
  struct StunCounters {
    uint64_t answered = 0;
    uint64_t refused = 0;
  };
  StunCounters stun_counters() const;

  class Worker;  // public for relay_engine.cpp's helpers

 private:
  Worker *least_loaded();

  unsigned threads_;
  Latch latch_;
  rtp::KeyframeRequests::Timing keyframes_;
  std::vector<std::unique_ptr<Worker>> workers_;  // started with the first call
};

}  // namespace portier::proxy
