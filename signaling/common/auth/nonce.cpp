#include "common/auth/nonce.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <ctime>
#include <optional>
#include <stdexcept>

#include "common/clock.h"
#include "common/sip_text.h"

namespace portier::auth {

namespace {

// Layout of a nonce before encoding:
//   issue time (8 bytes, big-endian) | counter (8) | random (8) | HMAC-SHA256 (first 16)
// The MAC covers the first 24 bytes and then the host the nonce was issued to (see
// HostKey), which is not in the nonce: the receiver supplies it from the packet.
// The counter keeps nonces unique even if two are issued in the same second with a
// failing RNG, and names the nonce's slot in the nonce-count ring (see nonce.h); the
// random part keeps proxies that share a secret from issuing the same nonce. 128 bits of MAC are
// far beyond what an online forger can guess.
constexpr size_t kPayloadSize = 24;
constexpr size_t kMacSize = 16;
constexpr size_t kNonceBytes = kPayloadSize + kMacSize;
// Clocks of proxies sharing a secret may differ a little; beyond that a nonce from
// the future is not trusted.
constexpr int64_t kMaxClockSkewS = 60;

constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// base64url without padding (RFC 4648 §5): fits a quoted-string and a token alike.
std::string b64url_encode(std::string_view in) {
  // Sized once and written in place: a nonce per challenge.
  std::string out((in.size() * 4 + 2) / 3, '\0');
  char *p = out.data();
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    *p++ = kB64Url[(v >> 18) & 63];
    *p++ = kB64Url[(v >> 12) & 63];
    *p++ = kB64Url[(v >> 6) & 63];
    *p++ = kB64Url[v & 63];
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    *p++ = kB64Url[(v >> 18) & 63];
    *p++ = kB64Url[(v >> 12) & 63];
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    *p++ = kB64Url[(v >> 18) & 63];
    *p++ = kB64Url[(v >> 12) & 63];
    *p++ = kB64Url[(v >> 6) & 63];
  }
  return out;
}

// A character's value in base64url, -1 for any other: one load per character
// of every nonce checked.
int b64url_value(char c) {
  static constexpr auto kValues = [] {
    std::array<signed char, 256> t{};
    for (auto &v : t) v = -1;
    for (int i = 0; i < 64; ++i)
      t[static_cast<unsigned char>(kB64Url[i])] = static_cast<signed char>(i);
    return t;
  }();
  return kValues[static_cast<unsigned char>(c)];
}

using RawNonce = unsigned char[kNonceBytes];

// The host as the MAC sees it: one spelling per address, so that "::1" and
// "0:0:0:0:0:0:0:1", or "10.0.0.1" and the "::ffff:10.0.0.1" of a dual-stack
// socket, bind a nonce to the same host. An IP address is 'I' and its 16 bytes
// (IPv4 mapped into IPv6, RFC 4291 §2.5.5.2); anything else (no address known) is
// 'N' and the text as given. The kind byte keeps the two apart. No allocation: the
// check runs for every request with credentials.
struct HostKey {
  unsigned char ip[17];
  std::string_view name;
  bool is_ip = false;

  explicit HostKey(std::string_view host) {
    const std::string_view h = siptext::strip_brackets(host);
    ip[0] = 'I';
    unsigned char *a = ip + 1;
    if (parse_ipv4(h, a + 12)) {
      std::memset(a, 0, 10);
      a[10] = a[11] = 0xff;
      is_ip = true;
    } else {
      char text[INET6_ADDRSTRLEN + 1];
      if (h.size() < sizeof text) {
        std::memcpy(text, h.data(), h.size());
        text[h.size()] = '\0';
        is_ip = inet_pton(AF_INET6, text, a) == 1;
      }
    }
    if (!is_ip) name = host;
  }

  // A dotted quad as inet_pton(AF_INET) takes it (four decimal parts of 0 to
  // 255, no leading zeros), read here: the check runs for every request with
  // credentials, and inet_pton wants a NUL-terminated copy first.
  static bool parse_ipv4(std::string_view s, unsigned char *out) {
    size_t part = 0;
    unsigned value = 0, digits = 0;
    for (char c : s) {
      if (c >= '0' && c <= '9') {
        if (digits == 1 && value == 0) return false;
        value = value * 10 + unsigned(c - '0');
        if (++digits > 3 || value > 255) return false;
      } else if (c == '.' && digits > 0 && part < 3) {
        out[part++] = static_cast<unsigned char>(value);
        value = digits = 0;
      } else {
        return false;
      }
    }
    if (part != 3 || digits == 0) return false;
    out[3] = static_cast<unsigned char>(value);
    return true;
  }
};

// Decodes a nonce into its raw bytes, without allocating (accept_nc() is on the hot
// path). Only the canonical spelling is accepted: base64 leaves the low bits of the
// last character unused, and were they allowed to vary, one nonce would have several
// spellings, each with its own HMAC-valid text.
bool decode_nonce(std::string_view nonce, RawNonce &out) {
  if (nonce.size() != (kNonceBytes * 4 + 2) / 3) return false;
  size_t n = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : nonce) {
    const int v = b64url_value(c);
    if (v < 0) return false;
    acc = (acc << 6) | uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = static_cast<unsigned char>((acc >> bits) & 0xff);
    }
  }
  // The size check above makes n == kNonceBytes; the leftover bits must be zero.
  return n == kNonceBytes && (acc & ((1u << bits) - 1)) == 0;
}

uint64_t get_u64(const unsigned char *in) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | in[i];
  return v;
}

uint32_t get_u32(const unsigned char *in) {
  return (uint32_t(in[0]) << 24) | (uint32_t(in[1]) << 16) | (uint32_t(in[2]) << 8) | in[3];
}

// nc is exactly 8 hex digits (RFC 7616 §3.4); 0 is never sent by a client, and
// ffffffff marks a spent slot (NonceManager::kSpent).
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
  if (v == 0 || v == 0xffffffffu) return std::nullopt;
  return v;
}

// HMAC-SHA256 of the payload, then the host, into out (HmacSha256::kSize bytes).
void mac(const HmacSha256 &key, const unsigned char *payload, const HostKey &host,
         unsigned char *out) {
  const std::string_view p(reinterpret_cast<const char *>(payload), kPayloadSize);
  if (host.is_ip)
    key.mac({p, std::string_view(reinterpret_cast<const char *>(host.ip), sizeof host.ip)}, out);
  else
    key.mac({p, "N", host.name}, out);
}

}  // namespace

NonceManager::NonceManager(std::string secret, unsigned lifetime_s, size_t slots,
                           std::optional<int64_t> start_s)
    : secret_(std::move(secret)), lifetime_s_(lifetime_s), slots_(slots) {
  if (slots_ == 0) throw std::invalid_argument("the nonce-count ring needs at least one slot");
  // An empty key would let anyone mint nonces; a random one is safe for a single
  // proxy (nonces then die with the process, and clients just get a new challenge).
  if (secret_.empty()) {
    secret_.resize(32);
    if (RAND_bytes(reinterpret_cast<unsigned char *>(secret_.data()), int(secret_.size())) != 1) {
      throw std::runtime_error("cannot draw a random nonce secret");
    }
  }
  // Counters of this run start above those of any earlier run (see nonce.h): 2^20
  // counters a second of uptime is far more than a proxy can issue.
  const int64_t start = start_s ? *start_s : clock::wall_s();
  counter_ = static_cast<uint64_t>(std::max<int64_t>(start, 0)) << 20;
  // Value-initialised: counter 0 marks a slot no nonce owns (counters start at 1).
  ring_ = std::make_unique<Slot[]>(slots_);
  key_ = std::make_unique<HmacSha256>(secret_);
  issued_ = std::make_unique<Issued[]>(kIssuedSlots);
  // Drawn once per run, not per nonce (the RNG was 6% of a REGISTER): with the
  // counter it keeps two proxies sharing a secret from issuing the same nonce;
  // a failing RNG still leaves the counter to keep this run's nonces distinct.
  if (RAND_bytes(instance_, sizeof instance_) != 1) std::fill(instance_, instance_ + 8, 0);
}

std::string NonceManager::issue(int64_t now_s, std::string_view host) {
  unsigned char raw[kPayloadSize];
  const uint64_t counter = ++counter_;
  for (int i = 0; i < 8; ++i) raw[i] = static_cast<unsigned char>(uint64_t(now_s) >> (56 - 8 * i));
  for (int i = 0; i < 8; ++i) raw[8 + i] = static_cast<unsigned char>(counter >> (56 - 8 * i));
  std::memcpy(raw + 16, instance_, sizeof instance_);
  const HostKey key(host);
  unsigned char md[HmacSha256::kSize];
  mac(*key_, raw, key, md);
  // This nonce now owns its slot: whichever nonce had it is forgotten.
  ring_[counter % slots_] = Slot{counter, get_u32(md), 0};

  char bytes[kNonceBytes];
  std::memcpy(bytes, raw, kPayloadSize);
  std::memcpy(bytes + kPayloadSize, md, kMacSize);
  Issued &recent = issued_[counter % kIssuedSlots];
  recent.counter = key.is_ip ? counter : 0;
  std::memcpy(recent.nonce, bytes, kNonceBytes);
  std::memcpy(recent.host, key.ip, sizeof recent.host);
  return b64url_encode(std::string_view(bytes, sizeof bytes));
}

NonceManager::Check NonceManager::verify(std::string_view nonce, int64_t now_s,
                                         std::string_view host, uint64_t *counter,
                                         uint32_t *tag) const {
  // The result depends on these three and the secret only, not on the ring.
  if (last_.now_s == now_s && last_.nonce == nonce && last_.host == host) {
    *counter = last_.counter;
    *tag = last_.tag;
    return last_.check;
  }
  RawNonce raw;
  if (!decode_nonce(nonce, raw)) return Check::Invalid;
  const HostKey key(host);
  const uint64_t raw_counter = get_u64(raw + 8);
  const Issued &recent = issued_[raw_counter % kIssuedSlots];
  static_assert(sizeof recent.nonce == kNonceBytes && sizeof recent.host == sizeof key.ip);
  if (key.is_ip && recent.counter != 0 && recent.counter == raw_counter &&
      CRYPTO_memcmp(recent.nonce, raw, kNonceBytes) == 0 &&
      CRYPTO_memcmp(recent.host, key.ip, sizeof key.ip) == 0) {
    // The MAC issue() computed for this payload and host: the tag is its start.
    *tag = get_u32(raw + kPayloadSize);
  } else {
    unsigned char md[HmacSha256::kSize];
    // Issued to another host, or forged: the same mismatch, told apart by nobody.
    mac(*key_, raw, key, md);
    if (CRYPTO_memcmp(md, raw + kPayloadSize, kMacSize) != 0) return Check::Invalid;
    *tag = get_u32(md);
  }
  *counter = raw_counter;
  const int64_t issued = static_cast<int64_t>(get_u64(raw));
  // The time is authenticated, so only our own clock can make these overflow; the
  // comparisons are written to stay in range for any int64 anyway.
  Check c = Check::Valid;
  if ((issued > now_s && issued - now_s > kMaxClockSkewS) ||
      (now_s > issued && now_s - issued > int64_t(lifetime_s_)))
    c = Check::Stale;
  last_.nonce.assign(nonce);
  last_.host.assign(host);
  last_.now_s = now_s;
  last_.check = c;
  last_.counter = *counter;
  last_.tag = *tag;
  return c;
}

NonceManager::Check NonceManager::check(std::string_view nonce, int64_t now_s,
                                        std::string_view host) const {
  uint64_t counter = 0;
  uint32_t tag = 0;
  const Check c = verify(nonce, now_s, host, &counter, &tag);
  if (c == Check::Invalid || counter > counter_) return c;
  // Spent outranks Stale: a spent nonce must not earn stale=true, which would tell
  // a guesser that the password was right.
  const Slot &slot = ring_[counter % slots_];
  if (slot.counter == counter && slot.tag == tag && slot.nc == kSpent) return Check::Spent;
  return c;
}

void NonceManager::spend(std::string_view nonce, int64_t now_s, std::string_view host) {
  uint64_t counter = 0;
  uint32_t tag = 0;
  if (verify(nonce, now_s, host, &counter, &tag) == Check::Invalid || counter > counter_) return;
  Slot &slot = ring_[counter % slots_];
  if (slot.counter == counter && slot.tag == tag) slot.nc = kSpent;
}

NonceManager::Nc NonceManager::accept_nc(std::string_view nonce, std::string_view nc, int64_t now_s,
                                         std::string_view host) {
  const std::optional<uint32_t> count = parse_nc(nc);
  if (!count) return Nc::Malformed;
  // Verified here too, so that a forged nonce, or one presented by another host, can
  // never raise the nc of a slot and lock the real owner out.
  uint64_t counter = 0;
  uint32_t tag = 0;
  switch (verify(nonce, now_s, host, &counter, &tag)) {
    case Check::Invalid:
      return Nc::Malformed;
    case Check::Stale:
      return Nc::Forgotten;
    case Check::Valid:
    case Check::Spent:  // verify() never says Spent; the slot below does
      break;
  }
  // Not issued by this run (a peer's, or one from before a restart with the clock
  // ahead): no slot has ever held it.
  if (counter > counter_) return Nc::Forgotten;
  Slot &slot = ring_[counter % slots_];
  // Reused by a newer nonce (more than N issued since), or owned by another nonce
  // with the same counter (an earlier run, a peer): the history is gone.
  if (slot.counter != counter || slot.tag != tag) return Nc::Forgotten;
  // A spent slot has nc kSpent, above any count parse_nc lets through.
  if (*count <= slot.nc) return Nc::Replay;
  slot.nc = *count;
  return Nc::Accepted;
}

}  // namespace portier::auth
