// Nonces for digest challenges: self-validating (timestamp + HMAC), so a proxy
// restart or many proxies sharing one secret still recognise each other's nonces,
// plus a fixed-size ring of nonce-count slots to reject replays (RFC 7616 §3.3, §5.5).
//
// Replay tracking (the scheme Kamailio's auth module uses for nc checking): every
// nonce carries a 64-bit counter, and the nonce with counter c owns slot c % N of a
// ring of N slots, holding {c, the last nc accepted for it}. Issuing a nonce takes
// over its slot; a nonce whose slot has since been taken over by a newer one is
// "forgotten": its password may be right, but it can no longer be used, and the
// client is challenged again with stale=true (one extra round trip, no failure).
//
// Why a ring rather than a table of every live nonce: memory is fixed (16 bytes a
// slot, 2 MB by default, allocated once), nothing is allocated or scanned per
// request, and a flood of challenges (an attacker's, or just many valid clients)
// cannot lock anyone out: it only shortens how long a nonce stays usable, to about
// N / (challenges per second) seconds. A bounded table instead has to refuse new
// nonces when full, which under load fails every legitimate client for up to a
// nonce lifetime. Replays stay impossible: a slot is only ever given to a counter
// never issued before, and a forgotten nonce never gets its history back.
//
// Counters grow across restarts: the first one is (start time << 20) + 1, so nonces
// issued before a restart have smaller counters than any new one (as long as the
// clock does not go back and fewer than 2^20 nonces a second were issued on
// average). They, and nonces from a peer proxy sharing the secret, find their slot
// owned by another counter and are forgotten rather than sharing its history. A slot
// also keeps 32 bits of its nonce's MAC, so a nonce that happens to carry the same
// counter (a peer started in the same second, a clock set back) is still told apart.
//
// A failed response spends its nonce (spend()): the slot is marked and the nonce is
// never accepted again, so each guess at a password costs an attacker a fresh
// challenge, one round trip that the proxy's per-source failure limits see.
//
// Every nonce is bound to the host it was sent to (the source IP of the request the
// challenge answered; not the port, which NATs change): the host is part of the MAC's
// input, not of the nonce. A nonce presented from another host fails the MAC, exactly
// like a forged one. Over UDP anyone can forge a source address, but only the real
// host (or a hop on its path) receives the challenges sent there; so a failure with a
// nonce bound to the source really comes from that source, and only such failures
// may count against it. Without the binding, a laptop on the Wi-Fi could send wrong
// answers, with a nonce it got under its own address, from a resident's forged
// address and get the resident banned (the weakness of fail2ban-style limits).
//
// Not thread-safe: one NonceManager per thread (the proxy has one event loop).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/auth/hmac.h"

namespace portier::auth {

class NonceManager {
 public:
  // Spent: authentic, but a failed response spent it (see spend()); whatever its age.
  enum class Check { Valid, Stale, Invalid, Spent };
  // Result of accept_nc():
  enum class Nc {
    Accepted,   // nc greater than any accepted before for this nonce; now recorded
    Replay,     // nc not greater than the last one accepted for this nonce
    Forgotten,  // authentic nonce, but no longer tracked (slot reused, issued before a
                // restart or by a peer, or expired): challenge again with stale=true
    Malformed,  // nc not 8 hex digits or 0, or the nonce is forged / not ours
  };

  static constexpr size_t kDefaultSlots = size_t(1) << 17;

  // secret: key for the HMAC (empty: a random one); lifetime_s: how long a nonce is
  // accepted before the client gets stale=true; slots: size N of the nonce-count ring
  // (16 bytes each, at least 1); start_s: the time counters start from (default:
  // the current time), which must grow across restarts, see above.
  NonceManager(std::string secret, unsigned lifetime_s, size_t slots = kDefaultSlots,
               std::optional<int64_t> start_s = std::nullopt);

  // host, everywhere below: the address the request came from (an IP literal as
  // inet_ntop writes it, brackets allowed; IPv4-mapped IPv6 is the same host as its
  // IPv4 address; anything else is taken as an opaque name). See "bound" above.

  // A fresh nonce (opaque printable token, no secret inside) for a challenge sent to
  // host. Takes over the ring slot of its counter, forgetting the nonce issued N
  // nonces earlier.
  std::string issue(int64_t now_s, std::string_view host);
  // Authenticity and age of a nonce this manager (or one with the same secret) issued
  // to host; Invalid when it was issued to another host.
  Check check(std::string_view nonce, int64_t now_s, std::string_view host) const;
  // Records nonce-count nc (8 hex digits) for nonce, see Nc. Checks the nonce itself
  // (check() must say Valid for Accepted), so that forged nonces and nonces of
  // another host cannot touch the ring. Allocates nothing.
  Nc accept_nc(std::string_view nonce, std::string_view nc, int64_t now_s, std::string_view host);
  // Marks the nonce spent after a failed response: check() says Spent and
  // accept_nc() never accepts it again. No effect on a forged or forgotten nonce
  // (a forgotten one is never accepted anyway), nor on one issued to another host:
  // a forged source must not burn the real host's challenge.
  void spend(std::string_view nonce, int64_t now_s, std::string_view host);

  unsigned lifetime() const { return lifetime_s_; }
  size_t slots() const { return slots_; }

 private:
  struct Slot {
    uint64_t counter = 0;  // counter of the nonce owning the slot (0: none, never issued)
    uint32_t tag = 0;      // first 32 bits of that nonce's MAC
    uint32_t nc = 0;       // last nonce-count accepted for it (0: none yet; kSpent: spent)
  };
  // No client sends nc ffffffff (4 billion requests on one nonce), so parse_nc
  // refuses it and the value can mark a spent slot.
  static constexpr uint32_t kSpent = 0xffffffffu;
  static_assert(sizeof(Slot) == 16, "the ring's memory budget assumes 16-byte slots");

  // check(), also giving the counter and tag of a nonce that is not Invalid.
  Check verify(std::string_view nonce, int64_t now_s, std::string_view host, uint64_t *counter,
               uint32_t *tag) const;

  unsigned char instance_[8] = {};  // random, once per run: see issue()
  std::string secret_;
  std::unique_ptr<HmacSha256> key_;  // keyed with secret_
  // The last verify(): a request's nonce is checked, then its nonce-count
  // recorded (or the nonce spent), each verifying it; the second one costs no MAC.
  struct Verified {
    std::string nonce, host;
    int64_t now_s = 0;
    Check check = Check::Invalid;
    uint64_t counter = 0;
    uint32_t tag = 0;
  };
  mutable Verified last_;
  // The nonces issued last, each with the address it went to (see HostKey in
  // nonce.cpp): the answer to a challenge comes back a round trip later, and a
  // nonce found here, byte for byte, from that address is one whose MAC issue()
  // computed, so checking it costs no second HMAC. Anything else (a nonce pushed
  // out, one from a peer or an earlier run, a forgery, a host that is not an IP
  // address) has its MAC computed.
  struct Issued {
    uint64_t counter = 0;  // 0: empty (counters start at 1)
    unsigned char nonce[40];
    unsigned char host[17];
  };
  static constexpr size_t kIssuedSlots = 1024;
  std::unique_ptr<Issued[]> issued_;
  unsigned lifetime_s_;
  size_t slots_;
  uint64_t counter_;  // counter of the last nonce issued
  std::unique_ptr<Slot[]> ring_;
};

}  // namespace portier::auth
