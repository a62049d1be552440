// Nonces for digest challenges: self-validating (timestamp + HMAC), so a proxy
// restart or many proxies sharing one secret still accept each other's nonces,
// plus a bounded table of the last nonce-count seen, to reject replays
// (RFC 7616 §3.3, §5.5).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

namespace portier::auth {

class NonceManager {
 public:
  enum class Check { Valid, Stale, Invalid };

  // secret: key for the HMAC; lifetime_s: how long a nonce is accepted before
  // the client gets stale=true; max_tracked: bound of the nonce-count table.
  NonceManager(std::string secret, unsigned lifetime_s, size_t max_tracked = 100000);

  // A fresh nonce (opaque printable token, no secret inside).
  std::string issue(int64_t now_s);
  // Authenticity and age of a nonce this manager (or one with the same secret) issued.
  Check check(std::string_view nonce, int64_t now_s) const;
  // Records nonce-count nc (8 hex digits) for nonce; false when nc is not greater
  // than the last one accepted for this nonce (a replay) or is malformed.
  bool accept_nc(std::string_view nonce, std::string_view nc, int64_t now_s);

  unsigned lifetime() const { return lifetime_s_; }

 private:
  std::string mac(std::string_view payload) const;
  void purge(int64_t now_s);

  std::string secret_;
  unsigned lifetime_s_;
  size_t max_tracked_;
  uint64_t counter_ = 0;
  struct Seen {
    uint32_t nc;
    int64_t issued;
  };
  std::unordered_map<std::string, Seen> seen_;
  // A full table is scanned at most once per second, so a flood of new nonces
  // does not turn every request into a walk over max_tracked entries.
  int64_t last_purge_s_ = INT64_MIN;
};

}  // namespace portier::auth
