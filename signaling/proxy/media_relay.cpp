#include "proxy/media_relay.h"

#include <arpa/inet.h>
#include <gio/gio.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "rtpfork/keyframe_detect.h"

namespace portier::proxy {
namespace {

bool relayable(const sdp::Media &m) {
  return m.port != 0 && (m.type == "audio" || m.type == "video") &&
         m.protocol.rfind("RTP/", 0) == 0;
}

// The codec whose keyframes the engine looks for (the first payload type's,
// as every branch gets the same stream), none for audio.
int family_of(const std::string &address) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, address.c_str(), buf) == 1) return AF_INET;
  if (inet_pton(AF_INET6, address.c_str(), buf) == 1) return AF_INET6;
  return 0;
}

const char *family_name(int family) { return family == AF_INET6 ? "IPv6" : "IPv4"; }

// An address from the network, fit for a log line and a Warning.
std::string shown(const std::string &address) {
  std::string out = address.substr(0, 64);
  for (char &ch : out)
    if (static_cast<unsigned char>(ch) < 0x20 || static_cast<unsigned char>(ch) >= 0x7f) ch = '?';
  return address.size() > 64 ? out + "..." : out;
}

rtp::VideoCodec codec_of(const sdp::Media &m) {
  if (m.type != "video" || m.payloads.empty()) return rtp::VideoCodec::None;
  return rtp::codec_from_encoding_name(m.payloads.front().encoding);
}

RelayEngine::Leg leg(const PortPool::Pair &ports, const sdp::Media &peer) {
  return {ports.rtp_fd, ports.rtcp_fd, RelayAddress::from(peer.address, peer.port),
          RelayAddress::from(peer.rtcp_address, peer.rtcp_port)};
}

struct BranchMedia {
  PortPool::Pair ports;
  bool connected = false;
};

struct Branch {
  size_t index = 0;
  std::vector<BranchMedia> media;  // one per stream (no ports: not relayed)
  bool connected = false;
};

struct Stream {
  sdp::Media offer;
  PortPool::Pair ports;  // caller-facing
};

}  // namespace

struct MediaRelay::Call {
  std::string id;
  Owner owner;
  std::string offer;
  std::unique_ptr<sdp::Rewriter> offer_sdp;  // parsed once, printed for every branch
  RelayEngine::Call *media = nullptr;  // the engine's side
  std::vector<Stream> streams;
  std::map<size_t, Branch> branches;
  bool early_forwarded = false;
  int connected = 0;
  long winner = -1;
  int64_t last_signalled = 0;  // signalling counts as activity too
  int64_t started = 0;
};

// ------------------------------------------------------------------ relay

MediaRelay::MediaRelay(RelaySettings s)
    : settings_(std::move(s)),
      ports_(settings_.listen_address.empty() ? settings_.sdp_address : settings_.listen_address,
             settings_.port_min, settings_.port_max, "relay", PortPool::Sockets::Plain),
      engine_(static_cast<unsigned>(settings_.threads), settings_.latch_anywhere
                                                            ? RelayEngine::Latch::Anywhere
                                                            : RelayEngine::Latch::SignalledHost),
      family_(family_of(settings_.listen_address.empty() ? settings_.sdp_address
                                                         : settings_.listen_address)) {}

MediaRelay::~MediaRelay() {
  while (!calls_.empty()) destroy(calls_.begin()->second.get());
}

std::string MediaRelay::peer_error(const sdp::Media &m) const {
  for (const std::string *a : {&m.address, &m.rtcp_address}) {
    const int family = family_of(*a);
    if (family == 0)
      return "SDP m=" + shown(m.type) + ": c= \"" + shown(*a) +
             "\" is not an IP address (the relay resolves no names)";
    if (family != family_)
      return "SDP m=" + m.type + ": " + family_name(family) + " address " + *a +
             ", the relay has only an " + family_name(family_) + " address";
  }
  return "";
}

MediaRelay::Refusal MediaRelay::over_limit(const Owner &owner, std::string *error) const {
  int by_user = 0, by_source = 0;
  for (const auto &[id, c] : calls_) {
    by_user += !owner.user.empty() && c->owner.user == owner.user;
    by_source += !owner.source.empty() && c->owner.source == owner.source;
  }
  if (settings_.max_calls_per_user > 0 && by_user >= settings_.max_calls_per_user) {
    *error = owner.user + " has " + std::to_string(by_user) + " relayed calls (max-calls-per-user)";
    return Refusal::UserLimit;
  }
  if (settings_.max_calls_per_source > 0 && by_source >= settings_.max_calls_per_source) {
    *error = owner.source + " has " + std::to_string(by_source) +
             " relayed calls (max-calls-per-source)";
    return Refusal::SourceLimit;
  }
  return Refusal::None;
}

bool MediaRelay::start_call(const std::string &call_id, std::string_view offer, std::string *error,
                            const Owner &owner, Refusal *why) {
  Refusal ignored;
  if (!why) why = &ignored;
  *why = Refusal::BadSdp;
  if (calls_.count(call_id)) {
    *error = "call already relayed";
    return false;
  }
  // Before any port is taken: one resident's calls must not use up the range
  // for everybody.
  if ((*why = over_limit(owner, error)) != Refusal::None) return false;
  *why = Refusal::BadSdp;
  auto offer_sdp = std::make_unique<sdp::Rewriter>();
  if (!offer_sdp->load(offer, error)) return false;
  const sdp::Session &session = offer_sdp->summary();
  bool any = false;
  for (const sdp::Media &m : session.media) {
    if (!relayable(m)) continue;
    // The whole call is refused rather than relayed to nowhere.
    if (std::string e = peer_error(m); !e.empty()) {
      *error = e;
      return false;
    }
    any = true;
  }
  if (!any) {
    *error = "no audio or video to relay";
    return false;
  }
  auto c = std::make_unique<Call>();
  c->id = call_id;
  c->owner = owner;
  c->offer = std::string(offer);
  c->offer_sdp = std::move(offer_sdp);
  c->started = c->last_signalled = clock::mono_s();
  for (const sdp::Media &m : c->offer_sdp->summary().media) {
    c->streams.push_back(Stream{m, {}});
    if (relayable(m)) {
      auto pair = ports_.take(error);
      if (!pair) {
        *why = Refusal::NoPorts;
        destroy(c.release());
        return false;
      }
      c->streams.back().ports = *pair;
    } else if (m.port != 0) {
      // Without ports the stream is offered to the devices with port 0 and so
      // rejected in the caller's answer too (RFC 3264 §6, §8.2): the call
      // goes on with the streams the relay carries.
      PLOG_INFO("relay: call-id=%s m=%s %s is not relayed: rejected with port 0", call_id.c_str(),
                m.type.c_str(), m.protocol.c_str());
    }
  }
  *why = Refusal::None;
  c->media = engine_.open_call(call_id, g_random_int());
  for (size_t i = 0; i < c->streams.size(); ++i) {
    const Stream &st = c->streams[i];
    if (!st.ports.port) continue;
    const sdp::Payload *p = st.offer.payloads.empty() ? nullptr : &st.offer.payloads.front();
    engine_.add_stream(c->media, i, leg(st.ports, st.offer), codec_of(st.offer),
                       p && p->clock_rate ? p->clock_rate : 90000);
  }
  PLOG_INFO("relay: call-id=%s relayed, %zu stream(s)", call_id.c_str(), c->streams.size());
  calls_[call_id] = std::move(c);
  return true;
}

std::optional<std::string> MediaRelay::offer_for_branch(const std::string &call_id, size_t branch,
                                                        std::string *error, Refusal *why) {
  Refusal ignored;
  if (!why) why = &ignored;
  *why = Refusal::BadSdp;
  auto it = calls_.find(call_id);
  if (it == calls_.end()) {
    *error = "no such call";
    return std::nullopt;
  }
  Call *c = it->second.get();
  c->last_signalled = clock::mono_s();
  if (c->branches.count(branch)) {
    *error = "branch exists";
    return std::nullopt;
  }
  Branch b;
  b.index = branch;
  std::vector<sdp::RelayEndpoint> endpoints;
  for (auto &s : c->streams) {
    BranchMedia bm;
    if (s.ports.port) {
      auto pair = ports_.take(error);
      if (!pair) {
        for (auto &m : b.media) ports_.give_back(m.ports);
        *why = Refusal::NoPorts;
        return std::nullopt;
      }
      bm.ports = *pair;
    }
    endpoints.push_back(endpoint(bm.ports.port));
    b.media.push_back(bm);
  }
  auto sdp_out = c->offer_sdp->print(endpoints, error);
  if (!sdp_out) {
    for (auto &m : b.media) ports_.give_back(m.ports);
    return std::nullopt;
  }
  c->branches[branch] = std::move(b);
  *why = Refusal::None;
  return sdp_out;
}

MediaRelay::Answer MediaRelay::answer_from_branch(const std::string &call_id, size_t branch,
                                                  std::string_view sdp_text, bool final) {
  Answer a;
  auto it = calls_.find(call_id);
  if (it == calls_.end()) {
    a.error = "no such call";
    return a;
  }
  Call *c = it->second.get();
  auto bit = c->branches.find(branch);
  if (bit == c->branches.end()) {
    a.error = "no such branch";
    return a;
  }
  Branch &b = bit->second;
  c->last_signalled = clock::mono_s();  // a door may send nothing while ringing
  // An answer that leaves out a line would reach the caller with fewer
  // streams than it offered and unrelayed; the left-out line is a refusal.
  // The answer is parsed once (again only when lines had to be restored).
  sdp::Rewriter answer_sdp;
  if (!answer_sdp.load(sdp_text, &a.error)) return a;
  auto restored = sdp::restore_rejected_lines(c->offer, c->offer_sdp->summary(), sdp_text,
                                              answer_sdp.summary(), &a.error);
  if (!restored) return a;
  if (*restored != sdp_text) {
    PLOG_INFO("relay: call-id=%s branch %zu: the answer left out m= lines: rejected (port 0)",
              call_id.c_str(), branch);
    if (!answer_sdp.load(*restored, &a.error)) return a;
  }
  const sdp::Session *answer = &answer_sdp.summary();
  if (answer->media.size() != c->streams.size()) {
    a.error = "the answer has " + std::to_string(answer->media.size()) + " m= lines, the offer " +
              std::to_string(c->streams.size()) + " (RFC 3264 §6)";
    return a;
  }
  // A stream whose answer the relay cannot send to is rejected towards the
  // caller instead of being relayed to nowhere.
  std::vector<bool> usable(c->streams.size());
  for (size_t i = 0; i < c->streams.size(); ++i) {
    const sdp::Media &m = answer->media[i];
    usable[i] = c->streams[i].ports.port && m.port != 0;
    if (!usable[i]) continue;
    if (std::string e = peer_error(m); !e.empty()) {
      PLOG_WARN("relay: call-id=%s branch %zu: %s: stream rejected", call_id.c_str(), branch,
                e.c_str());
      usable[i] = false;
    }
  }
  // Connect the branch on its first answer with SDP, while the call has room
  // for one more early stream (a 200 always gets one).
  if (!b.connected && (final || c->connected < settings_.max_early_media)) {
    for (size_t i = 0; i < c->streams.size(); ++i) {
      BranchMedia &bm = b.media[i];
      const sdp::Media &m = answer->media[i];
      if (!usable[i]) continue;  // not relayed, or rejected
      engine_.add_branch(c->media, i, branch, leg(bm.ports, m));
      bm.connected = true;
    }
    b.connected = true;
    ++c->connected;
    PLOG_INFO("relay: call-id=%s branch %zu gets the %s stream", call_id.c_str(), branch,
              final ? "answered" : "early");
  } else if (!b.connected) {
    PLOG_INFO(
        "relay: call-id=%s branch %zu: max-early-media-per-call (%d) reached, no early "
        "media for it",
        call_id.c_str(), branch, settings_.max_early_media);
  }
  if (final) {
    c->winner = static_cast<long>(branch);
    engine_.select_branch(c->media, branch);
  }
  std::vector<sdp::RelayEndpoint> endpoints;
  for (size_t i = 0; i < c->streams.size(); ++i)
    endpoints.push_back(endpoint(usable[i] ? c->streams[i].ports.port : 0));
  auto out = answer_sdp.print(endpoints, &a.error);
  if (!out) return a;
  a.sdp = *out;
  // The caller sees one early dialog: the first early answer; then the 200.
  a.forward = final || !c->early_forwarded;
  if (!final) c->early_forwarded = true;
  return a;
}

std::optional<std::string> MediaRelay::pass_sdp(const std::string &call_id, bool from_caller,
                                                std::string_view sdp_text, std::string *error) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) {
    *error = "no such call";
    return std::nullopt;
  }
  Call *c = it->second.get();
  auto bit = c->winner >= 0 ? c->branches.find(static_cast<size_t>(c->winner)) : c->branches.end();
  if (bit == c->branches.end()) {
    *error = "the call has no answered branch";
    return std::nullopt;
  }
  Branch &w = bit->second;
  c->last_signalled = clock::mono_s();
  sdp::Rewriter parsed;
  if (!parsed.load(sdp_text, error)) return std::nullopt;
  const sdp::Session *session = &parsed.summary();
  if (session->media.size() != c->streams.size()) {
    // New m= lines would need new relay ports: not supported yet.
    *error = "the number of m= lines changed (" + std::to_string(c->streams.size()) + " -> " +
             std::to_string(session->media.size()) + ")";
    return std::nullopt;
  }
  // Everything is checked, and the SDP rewritten, before any peer moves: a
  // refused SDP (the router answers 488) leaves the call's media as it was.
  std::vector<sdp::RelayEndpoint> endpoints;
  for (size_t i = 0; i < c->streams.size(); ++i) {
    const Stream &s = c->streams[i];
    const sdp::Media &m = session->media[i];
    if (s.ports.port && m.port) {
      if (std::string e = peer_error(m); !e.empty()) {
        *error = e;
        return std::nullopt;
      }
    }
    endpoints.push_back(endpoint(from_caller ? w.media[i].ports.port : s.ports.port));
  }
  auto out = parsed.print(endpoints, error);
  if (!out) return std::nullopt;
  for (size_t i = 0; i < c->streams.size(); ++i) {
    const sdp::Media &m = session->media[i];
    // The sender may have moved (hold, a new network): follow it unless its
    // packets told us where it really is.
    if (!c->streams[i].ports.port || !m.port) continue;
    std::optional<size_t> branch;
    if (!from_caller) branch = w.index;
    engine_.update_peer(c->media, i, branch, RelayAddress::from(m.address, m.port),
                        RelayAddress::from(m.rtcp_address, m.rtcp_port));
  }
  return out;
}

void MediaRelay::branch_gone(const std::string &call_id, size_t branch) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  Call *c = it->second.get();
  auto bit = c->branches.find(branch);
  if (bit == c->branches.end()) return;
  // The engine lets go of the sockets before they are closed.
  engine_.remove_branch(c->media, branch);
  for (auto &bm : bit->second.media) ports_.give_back(bm.ports);
  if (bit->second.connected) --c->connected;
  if (c->winner == static_cast<long>(branch)) c->winner = -1;
  c->branches.erase(bit);
}

void MediaRelay::end_call(const std::string &call_id, const char *why) {
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  PLOG_INFO("relay: call-id=%s freed (%s)", call_id.c_str(), why);
  destroy(it->second.get());
}

sdp::RelayEndpoint MediaRelay::endpoint(uint16_t rtp_port) const {
  // RTCP on the odd port above; 0 keeps a stream rejected (RFC 3264 §6).
  return {settings_.sdp_address, rtp_port, static_cast<uint16_t>(rtp_port ? rtp_port + 1 : 0)};
}

void MediaRelay::destroy(Call *c) {
  // The engine lets go of the sockets before they are closed.
  if (c->media) engine_.close_call(c->media), c->media = nullptr;
  for (auto &[idx, b] : c->branches)
    for (auto &bm : b.media) ports_.give_back(bm.ports);
  for (auto &s : c->streams) ports_.give_back(s.ports);
  auto it = calls_.find(c->id);
  if (it != calls_.end() && it->second.get() == c)
    calls_.erase(it);
  else
    delete c;  // never registered (failed start)
}

int64_t MediaRelay::last_activity(const Call *c) const {
  return std::max(c->last_signalled, c->media ? engine_.last_packet_s(c->media) : 0);
}

void MediaRelay::expire_idle() {
  const int64_t now = clock::mono_s();
  std::vector<std::string> idle;
  for (auto &[id, c] : calls_)
    if (now - last_activity(c.get()) > settings_.inactivity_timeout) idle.push_back(id);
  for (auto &id : idle) end_call(id, "no media for inactivity-timeout seconds");
}

std::string MediaRelay::json() const {
  const int64_t now = clock::mono_s();
  json::Writer w;
  w.begin_object()
      .field("ports_in_use", ports_in_use())
      .field("io_threads", engine_.threads())
      .key("calls")
      .begin_array();
  for (const auto &[id, c] : calls_) {
    size_t ports = 0;
    for (const auto &s : c->streams) ports += s.ports.port ? 2 : 0;
    for (const auto &[idx, b] : c->branches)
      for (const auto &bm : b.media) ports += bm.ports.port ? 2 : 0;
    w.begin_object()
        .field("call_id", id)
        .field("age", now - c->started)
        .field("idle", now - last_activity(c.get()))
        .field("ports", ports)
        .key("branches")
        .begin_array();
    for (const auto &[idx, b] : c->branches) {
      const RelayEngine::Counters n = engine_.branch_counters(c->media, idx);
      w.begin_object()
          .field("branch", idx)
          .field("connected", b.connected)
          .field("winner", c->winner == static_cast<long>(idx))
          .field("packets", n.packets)
          .field("bytes", n.bytes)
          .end_object();
    }
    w.end_array().end_object();
  }
  return w.end_array().end_object().take();
}

}  // namespace portier::proxy
