// The media relay inside portier-proxy: every call's media goes through our own
// UDP ports, so the door's video can be forked to every device that answered
// 183 (early media), and only the winner's media reaches the door after 200.
//
// Per call and m= line: one caller-facing RTP/RTCP port pair (the same for every
// branch, so the caller's media never has to move) and one pair per branch.
// This class is the signalling side (SDP, ports, which branch gets what); the
// packets are moved by a RelayEngine (relay_engine.h): a few I/O threads, not a
// thread per socket. The caller's RTP and RTCP go to each connected branch;
// the branches' RTP and RTCP reach the caller only from the winner (after 200).
// A branch's keyframe requests (RTCP PLI/FIR) reach the caller de-duplicated,
// whatever the branch. Symmetric RTP: after the first packet from a peer, we
// send to where its packets really come from.
//
// SRTP (SDES, RFC 4568) is terminated per leg unless `encryption = passthrough`:
// each branch's offer carries fresh keys of the relay's, its answer's key is
// used for that branch only, and the caller's answer carries a relay key under
// the caller's tag, so no key protects two streams (RFC 3711 §9.1). a=rtcp-mux
// (RFC 5761) is offered to the devices and answered when the caller offered it.
//
// Runs on the proxy's GLib main loop.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "media/port_pool.h"
#include "sip/sdp/sdp_rewrite.h"
#include "proxy/call_observer.h"
#include "media/port_pool.h"
#include "proxy/proxy_config.h"
#include "proxy/relay_engine.h"
#include "sip/sdp/sdp_rewrite.h"

namespace portier::proxy {

using portier::PortPool;

class MediaRelay {
 public:
  explicit MediaRelay(RelaySettings s);
  ~MediaRelay();
  MediaRelay(const MediaRelay &) = delete;
  MediaRelay &operator=(const MediaRelay &) = delete;

  bool enabled() const { return settings_.enabled; }
  const RelaySettings &settings() const { return settings_; }

  // Why the relay refused a call or a branch: the router's observer types.
  using Refusal = CallObserver::Refusal;
  // Whose call it is, for the per-user and per-source limits (empty: not counted).
  struct Owner {
    std::string user;    // the authenticated AOR
    std::string source;  // the IP address the INVITE came from
  };

  // A dialog-forming INVITE with an SDP offer: takes the call's caller-facing
  // ports. A stream the relay cannot carry (not RTP audio/video: BFCP, m=text)
  // is rejected with port 0 towards the devices and the caller, the rest is
  // relayed. False, with *error and *why, when the SDP is unusable (no stream
  // to relay, a c= that is no IP literal or of the other address family), no
  // port is left or the owner has too many calls.
  bool start_call(const std::string &call_id, std::string_view offer, std::string *error,
                  const Owner &owner = {}, Refusal *why = nullptr);
  bool has_call(const std::string &call_id) const { return calls_.count(call_id) > 0; }

  // The offer for fork branch `branch`, pointed at that branch's relay ports.
  // nullopt, with *error and *why, when no port is left or the offer cannot be
  // rewritten.
  std::optional<std::string> offer_for_branch(const std::string &call_id, size_t branch,
                                              std::string *error, Refusal *why = nullptr);

  // An 18x or 2xx with SDP from `branch`. `forward` false: absorb the response
  // (a later early answer: the caller sees one early dialog). `sdp` is what the
  // caller gets, pointed at the caller-facing ports.
  struct Answer {
    bool forward = true;
    std::string sdp;
    std::string error;  // set when the answer could not be used (never forward it then)
  };
  Answer answer_from_branch(const std::string &call_id, size_t branch, std::string_view sdp,
                            bool final);

  // SDP inside an answered call (a re-INVITE's offer or its answer) from the
  // caller (from_caller) or from the answering device: the sender's media
  // addresses are updated (unless latched) and the SDP comes back pointed at
  // the relay ports that face the other side. When it fails (*error says
  // why) nothing of the call has changed.
  std::optional<std::string> pass_sdp(const std::string &call_id, bool from_caller,
                                      std::string_view sdp, std::string *error);

  // The branch failed, was cancelled or timed out: its ports are freed.
  void branch_gone(const std::string &call_id, size_t branch);
  // BYE, a failed call, a timeout: every port of the call is freed.
  void end_call(const std::string &call_id, const char *why);
  // Frees calls without a packet for inactivity-timeout seconds.
  void expire_idle();

  size_t ports_in_use() const { return ports_.pairs_in_use() * 2; }
  size_t calls() const { return calls_.size(); }
  std::string json() const;
  // ICE checks answered and STUN refused on ICE legs, since start (portierctl stats).
  RelayEngine::StunCounters stun_counters() const { return engine_.stun_counters(); }
  // I/O threads that move the packets (started with the first call).
  unsigned io_threads() const { return engine_.threads(); }

  struct Call;

 private:
  struct Stream;       // one m= line: the caller-facing ports and keys
  struct BranchMedia;  // one m= line of one branch
  struct Branch;
  void destroy(Call *c);
  // Monotonic seconds of the call's last packet or signalling.
  int64_t last_activity(const Call *c) const;
  // Why the relay cannot send to this peer of a stream, "" when it can: a host
  // name (resolving it would block the SIP thread) or an address of the other
  // family than the relay's sockets.
  std::string peer_error(const sdp::Media &m) const;
  Refusal over_limit(const Owner &owner, std::string *error) const;
  // Where rewritten SDP points for a relay port pair starting at rtp_port.
  sdp::RelayEndpoint endpoint(uint16_t rtp_port) const;

  // SRTP and the encryption policy (media_relay.cpp's Stream and BranchMedia).
  // Why an offered stream breaks the policy, "" when it does not.
  std::string policy_error(const sdp::Media &m) const;
  // A branch offer's a=crypto lines: fresh keys of the relay's, kept in *bm.
  bool crypto_for_branch(const Stream &s, BranchMedia *bm, sdp::RelayEndpoint *e,
                         std::string *error) const;
  // A branch answer's key checked against the offer, and the leg's contexts.
  bool answer_keys(const Stream &s, size_t index, const sdp::Media &m, BranchMedia *bm,
                   RelayEngine::Leg *leg, std::string *error) const;
  // The caller's answer for stream `s`: the relay's ports, mux, its key.
  sdp::RelayEndpoint caller_endpoint(const Stream &s, bool usable) const;
  // SDP inside the answered call: the sender keeps its key; the receiver gets the relay's.
  bool crypto_in_dialog(const Stream &s, const BranchMedia &w, size_t index, bool from_caller,
                        const sdp::Media &m, sdp::RelayEndpoint *e, std::string *error) const;

  RelaySettings settings_;
  PortPool ports_;
  RelayEngine engine_;
  int family_ = 0;  // AF_INET or AF_INET6: the relay sockets' address family
  std::map<std::string, std::unique_ptr<Call>> calls_;
};

}  // namespace portier::proxy
