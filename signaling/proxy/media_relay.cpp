#include "proxy/media_relay.h"

#include <arpa/inet.h>
#include <gio/gio.h>
#include <sys/socket.h>

#include <algorithm>

#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "rtpfork/keyframe_detect.h"
#include "sip/sdp/sdes.h"

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

// SDES-keyed SRTP (RFC 4568): RTP/SAVP, RTP/SAVPF. DTLS-SRTP (UDP/TLS/...) is not.
bool is_sdes_profile(const std::string &protocol) {
  return protocol == "RTP/SAVP" || protocol == "RTP/SAVPF";
}
bool is_dtls_profile(const std::string &protocol) { return protocol.rfind("UDP/TLS/", 0) == 0; }

std::string suite_list() {
  std::string out;
  for (sdp::SrtpSuite s : sdp::kAllSrtpSuites)
    out += (out.empty() ? "" : ", ") + std::string(sdp::suite_name(s));
  return out;
}

// The first a=crypto line of `m` the relay can use, in the sender's order of
// preference (RFC 4568 §7.1.1); lines it cannot use are skipped (§6.1), a
// malformed one is an error.
std::optional<sdp::CryptoAttr> choose_crypto(const sdp::Media &m, size_t index,
                                             std::string *error) {
  std::optional<sdp::CryptoAttr> chosen;
  for (const std::string &line : m.crypto) {
    bool unsupported = false;
    std::string why;
    auto a = sdp::parse_crypto(line, &why, &unsupported);
    if (!a && !unsupported) {
      *error = "SDP m=" + m.type + " (line " + std::to_string(index + 1) + "): " + why;
      return std::nullopt;
    }
    if (a && !chosen) chosen = std::move(a);
  }
  if (!chosen)
    *error = "SDP m=" + m.type + ": no a=crypto line with a suite the relay supports (" +
             suite_list() + ")";
  return chosen;
}

}  // namespace

struct MediaRelay::BranchMedia {
  PortPool::Pair ports;
  bool connected = false;
  std::vector<sdp::CryptoAttr> offered;  // the relay's keys in this branch's offer, by tag
  sdp::CryptoAttr to_device;             // the offered line its answer chose
  sdp::CryptoKey from_device;            // its answer's key
  // ICE-lite: the relay's credentials in this branch's offer; ice_used once
  // the device's answer did ICE too (its ufrag is in `ice` then).
  std::optional<ice::Credentials> ice;
  bool ice_used = false;
};

struct MediaRelay::Branch {
  size_t index = 0;
  std::vector<BranchMedia> media;  // one per stream (no ports: not relayed)
  bool connected = false;
};

struct MediaRelay::Stream {
  sdp::Media offer;
  PortPool::Pair ports;  // caller-facing
  // SRTP terminated on this stream (the caller offered SDES and the relay terminates).
  bool srtp = false;
  sdp::CryptoAttr from_caller;  // the caller's chosen line: its tag, suite and sending key
  sdp::CryptoKey to_caller;     // the relay's key toward the caller (that tag and suite)
  // ICE-lite toward the caller (its offer did ICE): ours and its ufrag.
  std::optional<ice::Credentials> ice;
};

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
    if (std::string e = policy_error(m); !e.empty()) {
      *error = e;
      return false;
    }
    any = true;
  }
  if (!any) {
    *error = "no audio or video to relay";
    for (const sdp::Media &m : session.media)
      if (m.port && is_dtls_profile(m.protocol))
        *error = "SDP m=" + m.type + ": " + m.protocol +
                 " (DTLS-SRTP) is not supported: offer SDES (RTP/SAVP or RTP/SAVPF with "
                 "a=crypto, RFC 4568)";
    return false;
  }
  auto c = std::make_unique<Call>();
  c->id = call_id;
  c->owner = owner;
  c->offer = std::string(offer);
  c->offer_sdp = std::move(offer_sdp);
  c->started = c->last_signalled = clock::mono_s();
  const bool terminate = settings_.encryption == RelaySettings::Encryption::Terminate;
  for (size_t i = 0; i < c->offer_sdp->summary().media.size(); ++i) {
    const sdp::Media &m = c->offer_sdp->summary().media[i];
    c->streams.emplace_back();
    c->streams.back().offer = m;
    if (relayable(m) && terminate && is_sdes_profile(m.protocol)) {
      Stream &st = c->streams.back();
      auto chosen = choose_crypto(m, i, error);
      auto ours = chosen ? sdp::CryptoKey::generate(chosen->key.suite) : std::nullopt;
      if (!ours) {
        if (chosen) *error = "no random bytes for an SRTP key";
        destroy(c.release());
        return false;
      }
      st.srtp = true;
      st.from_caller = std::move(*chosen);
      st.to_caller = std::move(*ours);
    }
    if (relayable(m) && settings_.ice_lite && m.ice) {
      auto creds = ice::Credentials::generate();
      if (!creds) {
        *error = "no random bytes for ICE credentials";
        destroy(c.release());
        return false;
      }
      creds->remote_ufrag = m.ice_ufrag;
      c->streams.back().ice = std::move(creds);
    }
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
    RelayEngine::Leg caller = leg(st.ports, st.offer);
    // The relay accepts mux whenever it is offered (RFC 5761 §5.1.1).
    caller.rtcp_mux = st.offer.rtcp_mux;
    // An offer with a=crypto (RTP/AVP too: optional SRTP) may well be
    // answered with SRTP.
    caller.keyless_srtp =
        !terminate && (is_sdes_profile(st.offer.protocol) || !st.offer.crypto.empty());
    caller.ice = st.ice;
    if (st.srtp) {
      caller.srtp_in =
          SrtpContext::create(st.from_caller.key, SrtpContext::Direction::Inbound, error);
      if (caller.srtp_in)
        caller.srtp_out =
            SrtpContext::create(st.to_caller, SrtpContext::Direction::Outbound, error);
      if (!caller.srtp_out) {
        *why = Refusal::BadSdp;
        destroy(c.release());
        return false;
      }
    }
    engine_.add_stream(c->media, i, std::move(caller), codec_of(st.offer),
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
    sdp::RelayEndpoint e = endpoint(bm.ports.port);
    e.rtcp_mux = bm.ports.port && s.offer.rtcp_mux;
    // Every device is offered ICE-lite (a device without ICE ignores the
    // lines, RFC 8839 §3.1): one that does ICE answers with its own, and its
    // checks are what latches it. Both candidates: it may refuse rtcp-mux.
    if (bm.ports.port && settings_.ice_lite) {
      bm.ice = ice::Credentials::generate();
      if (!bm.ice) {
        *error = "no random bytes for ICE credentials";
        for (auto &m : b.media) ports_.give_back(m.ports);
        ports_.give_back(bm.ports);
        return std::nullopt;
      }
      e.ice = sdp::RelayEndpoint::Ice{bm.ice->local_ufrag, bm.ice->local_pwd, true};
    }
    if (!crypto_for_branch(s, &bm, &e, error)) {
      for (auto &m : b.media) ports_.give_back(m.ports);
      ports_.give_back(bm.ports);
      return std::nullopt;
    }
    endpoints.push_back(std::move(e));
    b.media.push_back(std::move(bm));
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
  // The answer must meet the policy (SRTP where the caller offered it) before
  // anything of it is used: a branch that does not is a failed branch.
  std::vector<RelayEngine::Leg> legs(c->streams.size());
  for (size_t i = 0; i < c->streams.size(); ++i) {
    if (!usable[i]) continue;
    const sdp::Media &m = answer->media[i];
    legs[i] = leg(b.media[i].ports, m);
    legs[i].rtcp_mux = c->streams[i].offer.rtcp_mux && m.rtcp_mux;
    // The device did ICE in its answer: its checks, signed with the pwd of our
    // offer, latch it (RFC 8445 §7.3.1.5); without, it is latched as before.
    BranchMedia &bm = b.media[i];
    if (bm.ice && m.ice && !bm.connected) {
      bm.ice->remote_ufrag = m.ice_ufrag;
      bm.ice_used = true;
      legs[i].ice = bm.ice;
    }
    if (!answer_keys(c->streams[i], i, m, &b.media[i], &legs[i], &a.error)) return a;
  }
  // Connect the branch on its first answer with SDP, while the call has room
  // for one more early stream (a 200 always gets one).
  if (!b.connected && (final || c->connected < settings_.max_early_media)) {
    for (size_t i = 0; i < c->streams.size(); ++i) {
      BranchMedia &bm = b.media[i];
      if (!usable[i]) continue;  // not relayed, or rejected
      engine_.add_branch(c->media, i, branch, std::move(legs[i]));
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
    endpoints.push_back(caller_endpoint(c->streams[i], usable[i]));
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
    sdp::RelayEndpoint e = endpoint(from_caller ? w.media[i].ports.port : s.ports.port);
    // The same ICE credentials as before: new ones would be an ICE restart
    // (RFC 8445 §9), which the relay does not do.
    const std::optional<ice::Credentials> &ice =
        from_caller ? (w.media[i].ice_used ? w.media[i].ice : std::nullopt) : s.ice;
    if (ice && e.rtp_port) e.ice = sdp::RelayEndpoint::Ice{ice->local_ufrag, ice->local_pwd, true};
    if (!crypto_in_dialog(s, w.media[i], i, from_caller, m, &e, error)) return std::nullopt;
    endpoints.push_back(std::move(e));
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

// ------------------------------------------------------------------ SRTP policy

std::string MediaRelay::policy_error(const sdp::Media &m) const {
  if (settings_.encryption_mandatory && !is_sdes_profile(m.protocol) &&
      !is_dtls_profile(m.protocol))
    return "SDP m=" + m.type + ": plain RTP (" + m.protocol +
           ") offered; this relay requires SRTP (RTP/SAVP with a=crypto, RFC 4568)";
  return "";
}

bool MediaRelay::crypto_for_branch(const Stream &s, BranchMedia *bm, sdp::RelayEndpoint *e,
                                   std::string *error) const {
  if (settings_.encryption == RelaySettings::Encryption::Passthrough) return true;
  e->crypto.emplace();  // no key of the caller ever reaches a device
  if (!s.srtp || !bm->ports.port) return true;
  // A fresh key per suite and branch, srtp-crypto-suites in order (RFC 4568
  // §7.1.1: in order of preference). The branch's suite is independent of the
  // caller's, as each leg is keyed apart; the caller's is still offered last,
  // for a device that knows no other.
  std::vector<sdp::SrtpSuite> suites = settings_.branch_suites;
  if (std::find(suites.begin(), suites.end(), s.from_caller.key.suite) == suites.end())
    suites.push_back(s.from_caller.key.suite);
  for (size_t i = 0; i < suites.size(); ++i) {
    auto key = sdp::CryptoKey::generate(suites[i]);
    if (!key) {
      *error = "no random bytes for an SRTP key";
      return false;
    }
    bm->offered.push_back({static_cast<unsigned>(i + 1), std::move(*key)});
    e->crypto->push_back(sdp::print_crypto(bm->offered.back()));
  }
  return true;
}

bool MediaRelay::answer_keys(const Stream &s, size_t index, const sdp::Media &m, BranchMedia *bm,
                             RelayEngine::Leg *leg, std::string *error) const {
  if (!s.srtp) {
    if (settings_.encryption_mandatory && !is_sdes_profile(m.protocol)) {
      *error = "the answer's m=" + m.type + " is plain RTP (" + m.protocol +
               "); this relay requires SRTP";
      return false;
    }
    return true;
  }
  // RFC 4568 §7.1.2: the answer has one a=crypto line, with the tag and suite
  // of an offered one, and the answerer's own key.
  const std::string where =
      "the answer's m=" + m.type + " (line " + std::to_string(index + 1) + ")";
  if (!is_sdes_profile(m.protocol)) {
    *error = where + " is " + m.protocol + ", the offer was SRTP (RFC 4568 section 7.1.2)";
    return false;
  }
  if (m.crypto.size() != 1) {
    *error = where + " has " + std::to_string(m.crypto.size()) +
             " a=crypto lines, not one (RFC 4568 section 7.1.2)";
    return false;
  }
  std::string why;
  auto a = sdp::parse_crypto(m.crypto.front(), &why);
  if (!a) {
    *error = where + ": " + why;
    return false;
  }
  const sdp::CryptoAttr *offered = nullptr;
  for (const sdp::CryptoAttr &o : bm->offered)
    if (o.tag == a->tag && o.key.suite == a->key.suite) offered = &o;
  if (!offered) {
    *error = where + ": a=crypto tag " + std::to_string(a->tag) + " with " +
             sdp::suite_name(a->key.suite) + " answers no offered line (RFC 4568 section 7.1.2)";
    return false;
  }
  for (const sdp::CryptoAttr &o : bm->offered)
    if (o.key == a->key) {  // our own key sent back: it would protect two streams
      *error = where + ": the answer's key is the relay's own (RFC 3711 section 9.1)";
      return false;
    }
  leg->srtp_in = SrtpContext::create(a->key, SrtpContext::Direction::Inbound, error);
  if (leg->srtp_in)
    leg->srtp_out = SrtpContext::create(offered->key, SrtpContext::Direction::Outbound, error);
  if (!leg->srtp_out) return false;
  bm->to_device = *offered;
  bm->from_device = a->key;
  return true;
}

sdp::RelayEndpoint MediaRelay::caller_endpoint(const Stream &s, bool usable) const {
  sdp::RelayEndpoint e = endpoint(usable ? s.ports.port : 0);
  e.rtcp_mux = usable && s.offer.rtcp_mux;
  // RFC 8839 §4.2.1: an answer to an ICE offer; no RTCP candidate with mux.
  if (usable && s.ice)
    e.ice = sdp::RelayEndpoint::Ice{s.ice->local_ufrag, s.ice->local_pwd, !e.rtcp_mux};
  if (settings_.encryption == RelaySettings::Encryption::Passthrough) return e;
  e.crypto.emplace();  // a device's key never reaches the caller
  // RFC 4568 §7.1.2: the caller's chosen tag and suite, with the relay's key.
  if (s.srtp && usable) e.crypto->push_back(sdp::print_crypto({s.from_caller.tag, s.to_caller}));
  return e;
}

bool MediaRelay::crypto_in_dialog(const Stream &s, const BranchMedia &w, size_t index,
                                  bool from_caller, const sdp::Media &m, sdp::RelayEndpoint *e,
                                  std::string *error) const {
  if (settings_.encryption == RelaySettings::Encryption::Passthrough) return true;
  e->crypto.emplace();
  if (!s.srtp || !s.ports.port || !m.port) return true;
  // The sender keeps its key (RFC 4568 §7.1.4 lets it change; the relay does
  // not re-key yet, and says so rather than drop its packets): one of its
  // lines must carry the key in use.
  const sdp::CryptoKey &in_use = from_caller ? s.from_caller.key : w.from_device;
  bool kept = false;
  for (const std::string &line : m.crypto)
    if (auto a = sdp::parse_crypto(line, nullptr); a && a->key == in_use) kept = true;
  if (!kept) {
    *error = "SDP m=" + m.type + " (line " + std::to_string(index + 1) +
             "): a new SRTP key inside the call (RFC 4568 section 7.1.4) is not supported";
    return false;
  }
  e->crypto->push_back(from_caller ? sdp::print_crypto(w.to_device)
                                   : sdp::print_crypto({s.from_caller.tag, s.to_caller}));
  return true;
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
  const RelayEngine::StunCounters stun = engine_.stun_counters();
  w.begin_object()
      .field("ports_in_use", ports_in_use())
      .field("io_threads", engine_.threads())
      .field("ice_lite", settings_.ice_lite)
      .field("stun_answered", stun.answered)
      .field("stun_refused", stun.refused)
      .key("calls")
      .begin_array();
  for (const auto &[id, c] : calls_) {
    size_t ports = 0;
    for (const auto &s : c->streams) ports += s.ports.port ? 2 : 0;
    for (const auto &[idx, b] : c->branches)
      for (const auto &bm : b.media) ports += bm.ports.port ? 2 : 0;
    uint64_t caller_rejected = 0, caller_stun_answered = 0, caller_stun_refused = 0;
    bool srtp = false, caller_ice = false;
    for (size_t i = 0; i < c->streams.size(); ++i) {
      srtp |= c->streams[i].srtp;
      caller_ice |= c->streams[i].ice.has_value();
      if (c->streams[i].ports.port) {
        const RelayEngine::ForkCounters f = engine_.fork_counters(c->media, i);
        caller_rejected += f.srtp_rejected;
        caller_stun_answered += f.stun_answered;
        caller_stun_refused += f.stun_refused;
      }
    }
    w.begin_object()
        .field("call_id", id)
        .field("age", now - c->started)
        .field("idle", now - last_activity(c.get()))
        .field("ports", ports)
        .field("srtp", srtp ? "terminated"
                       : settings_.encryption == RelaySettings::Encryption::Passthrough
                           ? "passthrough"
                           : "none")
        .field("caller_srtp_rejected", caller_rejected)
        .field("caller_ice", caller_ice)
        .field("caller_stun_answered", caller_stun_answered)
        .field("caller_stun_refused", caller_stun_refused)
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
          .field("srtp_rejected", n.srtp_rejected)
          .field("ice", std::any_of(b.media.begin(), b.media.end(),
                                    [](const BranchMedia &m) { return m.ice_used; }))
          .field("stun_answered", n.stun_answered)
          .field("stun_refused", n.stun_refused)
          .end_object();
    }
    w.end_array().end_object();
  }
  return w.end_array().end_object().take();
}

}  // namespace portier::proxy
