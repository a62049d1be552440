#include "common/auth/nonce.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <optional>
#include <stdexcept>

#include "common/auth/digest.h"

namespace portier::auth {

namespace {

// Layout of a nonce before encoding:
//   issue time (8 bytes, big-endian) | counter (8) | random (8) | HMAC-SHA256 (first 16)
// The counter keeps nonces unique even if two are issued in the same second with a
// failing RNG; the random part keeps proxies that share a secret from issuing the
// same nonce. 128 bits of MAC are far beyond what an online forger can guess.
constexpr size_t kPayloadSize = 24;
constexpr size_t kMacSize = 16;
constexpr size_t kNonceBytes = kPayloadSize + kMacSize;
// Clocks of proxies sharing a secret may differ a little; beyond that a nonce from
// the future is not trusted.
constexpr int64_t kMaxClockSkewS = 60;

constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// base64url without padding (RFC 4648 §5): fits a quoted-string and a token alike.
std::string b64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out.push_back(kB64Url[(v >> 18) & 63]);
    out.push_back(kB64Url[(v >> 12) & 63]);
    out.push_back(kB64Url[(v >> 6) & 63]);
    out.push_back(kB64Url[v & 63]);
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out.push_back(kB64Url[(v >> 18) & 63]);
    out.push_back(kB64Url[(v >> 12) & 63]);
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out.push_back(kB64Url[(v >> 18) & 63]);
    out.push_back(kB64Url[(v >> 12) & 63]);
    out.push_back(kB64Url[(v >> 6) & 63]);
  }
  return out;
}

int b64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Decodes a nonce into its raw bytes. Only the canonical spelling is accepted: the
// replay table is keyed by the nonce text, so two spellings of one nonce (differing
// in the unused low bits of the last character) would each get their own nc history.
std::optional<std::string> decode_nonce(std::string_view nonce) {
  if (nonce.size() != (kNonceBytes * 4 + 2) / 3) return std::nullopt;
  std::string out;
  out.reserve(kNonceBytes);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : nonce) {
    const int v = b64url_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xff));
    }
  }
  if (out.size() != kNonceBytes || b64url_encode(out) != nonce) return std::nullopt;
  return out;
}

void put_u64(std::string &out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(char((v >> shift) & 0xff));
}

uint64_t get_u64(std::string_view in) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | uint8_t(in[i]);
  return v;
}

int64_t issue_time(std::string_view raw) { return static_cast<int64_t>(get_u64(raw)); }

// nc is exactly 8 hex digits (RFC 7616 §3.4); 0 is never sent by a client.
std::optional<uint32_t> parse_nc(std::string_view nc) {
  if (nc.size() != 8) return std::nullopt;
  uint32_t v = 0;
  for (char c : nc) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else {
      return std::nullopt;
    }
    v = (v << 4) | uint32_t(d);
  }
  if (v == 0) return std::nullopt;
  return v;
}

}  // namespace

NonceManager::NonceManager(std::string secret, unsigned lifetime_s, size_t max_tracked)
    : secret_(std::move(secret)), lifetime_s_(lifetime_s), max_tracked_(max_tracked) {
  // An empty key would let anyone mint nonces; a random one is safe for a single
  // proxy (nonces then die with the process, and clients just get a new challenge).
  if (secret_.empty()) {
    secret_.resize(32);
    if (RAND_bytes(reinterpret_cast<unsigned char *>(secret_.data()), int(secret_.size())) != 1) {
      throw std::runtime_error("cannot draw a random nonce secret");
    }
  }
}

std::string NonceManager::mac(std::string_view payload) const {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), secret_.data(), int(secret_.size()),
            reinterpret_cast<const unsigned char *>(payload.data()), payload.size(), md, &len) ||
      len < kMacSize) {
    throw std::runtime_error("OpenSSL cannot compute HMAC-SHA256");
  }
  return std::string(reinterpret_cast<const char *>(md), kMacSize);
}

std::string NonceManager::issue(int64_t now_s) {
  std::string raw;
  raw.reserve(kNonceBytes);
  put_u64(raw, static_cast<uint64_t>(now_s));
  put_u64(raw, ++counter_);
  unsigned char rnd[8] = {};
  // A failing RNG still leaves the counter to keep nonces distinct.
  (void)RAND_bytes(rnd, sizeof rnd);
  raw.append(reinterpret_cast<const char *>(rnd), sizeof rnd);
  raw += mac(raw);
  return b64url_encode(raw);
}

NonceManager::Check NonceManager::check(std::string_view nonce, int64_t now_s) const {
  const std::optional<std::string> raw = decode_nonce(nonce);
  if (!raw) return Check::Invalid;
  const std::string_view payload = std::string_view(*raw).substr(0, kPayloadSize);
  const std::string_view tag = std::string_view(*raw).substr(kPayloadSize);
  if (!constant_time_equal(mac(payload), tag)) return Check::Invalid;
  const int64_t issued = issue_time(*raw);
  // The time is authenticated, so only our own clock can make these overflow; the
  // comparisons are written to stay in range for any int64 anyway.
  if (issued > now_s && issued - now_s > kMaxClockSkewS) return Check::Stale;
  if (now_s > issued && now_s - issued > int64_t(lifetime_s_)) return Check::Stale;
  return Check::Valid;
}

bool NonceManager::accept_nc(std::string_view nonce, std::string_view nc, int64_t now_s) {
  const std::optional<uint32_t> count = parse_nc(nc);
  if (!count) return false;
  // Checked here too, so that only nonces we issued and that are still alive can ever
  // occupy the table.
  if (check(nonce, now_s) != Check::Valid) return false;

  auto it = seen_.find(std::string(nonce));
  if (it != seen_.end()) {
    if (*count <= it->second.nc) return false;
    it->second.nc = *count;
    return true;
  }
  if (seen_.size() >= max_tracked_ && now_s != last_purge_s_) {
    last_purge_s_ = now_s;
    purge(now_s);
  }
  // A full table of live nonces only happens under a flood. Evicting a live entry
  // would let its nonce be replayed with an old nc, so refuse the new nonce instead:
  // the client fails this once and gets a fresh challenge; old entries expire within
  // one lifetime and make room again.
  if (seen_.size() >= max_tracked_) return false;
  seen_.emplace(std::string(nonce), Seen{*count, issue_time(*decode_nonce(nonce))});
  return true;
}

void NonceManager::purge(int64_t now_s) {
  for (auto it = seen_.begin(); it != seen_.end();) {
    // Once stale, check() refuses the nonce, so its nc history is no longer needed.
    if (now_s > it->second.issued && now_s - it->second.issued > int64_t(lifetime_s_)) {
      it = seen_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace portier::auth
