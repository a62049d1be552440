#include "proxy/ice_lite.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>
#include <cstring>
#include <string_view>

namespace portier::proxy::ice {
namespace {

constexpr uint32_t kMagicCookie = 0x2112A442;  // RFC 5389 §6
constexpr uint32_t kFingerprintXor = 0x5354554e;  // RFC 5389 §15.5
constexpr size_t kHeader = 20;

// Message types (RFC 5389 §6, §18.1): the Binding method in each class.
constexpr uint16_t kBindingRequest = 0x0001;
constexpr uint16_t kBindingSuccess = 0x0101;
constexpr uint16_t kBindingError = 0x0111;

// Attributes (RFC 5389 §18.2, RFC 8445 §16.1).
constexpr uint16_t kUsername = 0x0006;
constexpr uint16_t kMessageIntegrity = 0x0008;
constexpr uint16_t kErrorCode = 0x0009;
constexpr uint16_t kUnknownAttributes = 0x000A;
constexpr uint16_t kXorMappedAddress = 0x0020;
constexpr uint16_t kPriority = 0x0024;
constexpr uint16_t kUseCandidate = 0x0025;
constexpr uint16_t kFingerprint = 0x8028;
constexpr uint16_t kIceControlled = 0x8029;
constexpr uint16_t kIceControlling = 0x802A;

constexpr size_t kSha1 = 20;
constexpr size_t kMaxUnknown = 8;  // listed in a 420; more are not worth the bytes

// CRC-32 of ISO 3309 / ITU-T V.42 (what FINGERPRINT uses, RFC 5389 §15.5),
// reflected polynomial, one table built at compile time.
constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = make_crc_table();

uint32_t crc32(const uint8_t *data, size_t size) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) c = kCrcTable[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

uint16_t get16(const uint8_t *p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t *p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}
void put16(uint8_t *p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t *p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

// HMAC-SHA1 keyed with the ice-pwd (short-term credentials, RFC 5389 §15.4:
// the key is the password itself).
bool hmac_sha1(const std::string &key, const uint8_t *data, size_t size, uint8_t out[kSha1]) {
  unsigned len = 0;
  return HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()), data, size, out, &len) &&
         len == kSha1;
}

// Is the STUN message `msg` of `size` bytes (header length already checked)
// integrity-protected with `key`? The MAC covers the message up to the
// MESSAGE-INTEGRITY attribute at `at`, with the header's length as if that
// attribute ended the message (RFC 5389 §15.4). A copy of the header only.
bool integrity_ok(const uint8_t *msg, size_t at, const std::string &key) {
  // A copy with that length in its header: no request the relay reads is longer.
  uint8_t copy[2048];
  if (at > sizeof copy) return false;
  memcpy(copy, msg, at);
  put16(copy + 2, static_cast<uint16_t>(at + 4 + kSha1 - kHeader));
  uint8_t mac[kSha1];
  // Constant time: a forger learns nothing from how fast it was refused.
  return hmac_sha1(key, copy, at, mac) && CRYPTO_memcmp(mac, msg + at + 4, kSha1) == 0;
}

// A response being written: header, then attributes one after another.
class Writer {
 public:
  Writer(uint8_t *out, uint16_t type, const uint8_t *transaction) : out_(out) {
    put16(out_, type);
    put16(out_ + 2, 0);
    put32(out_ + 4, kMagicCookie);
    memcpy(out_ + 8, transaction, 12);
    pos_ = kHeader;
  }
  uint8_t *attribute(uint16_t type, size_t len) {
    put16(out_ + pos_, type);
    put16(out_ + pos_ + 2, static_cast<uint16_t>(len));
    uint8_t *value = out_ + pos_ + 4;
    const size_t padded = (len + 3) & ~size_t{3};
    memset(value, 0, padded);
    pos_ += 4 + padded;
    length();
    return value;
  }
  // MESSAGE-INTEGRITY over everything so far (RFC 5389 §15.4).
  bool integrity(const std::string &key) {
    put16(out_ + 2, static_cast<uint16_t>(pos_ + 4 + kSha1 - kHeader));
    uint8_t mac[kSha1];
    if (!hmac_sha1(key, out_, pos_, mac)) return false;
    memcpy(attribute(kMessageIntegrity, kSha1), mac, kSha1);
    return true;
  }
  // FINGERPRINT, always last (RFC 5389 §15.5; RFC 8445 §7.3 puts it on every response).
  void fingerprint() {
    put16(out_ + 2, static_cast<uint16_t>(pos_ + 8 - kHeader));
    const uint32_t crc = crc32(out_, pos_) ^ kFingerprintXor;
    put32(attribute(kFingerprint, 4), crc);
  }
  size_t size() const { return pos_; }

 private:
  void length() { put16(out_ + 2, static_cast<uint16_t>(pos_ - kHeader)); }
  uint8_t *out_;
  size_t pos_;
};

size_t error_response(const uint8_t *req, int code, const char *reason, const uint16_t *unknown,
                      size_t n_unknown, uint8_t *out) {
  Writer w(out, kBindingError, req + 8);
  const size_t reason_len = strlen(reason);
  uint8_t *v = w.attribute(kErrorCode, 4 + reason_len);
  v[2] = static_cast<uint8_t>(code / 100);
  v[3] = static_cast<uint8_t>(code % 100);
  memcpy(v + 4, reason, reason_len);
  if (n_unknown) {
    uint8_t *u = w.attribute(kUnknownAttributes, 2 * n_unknown);
    for (size_t i = 0; i < n_unknown; ++i) put16(u + 2 * i, unknown[i]);
  }
  w.fingerprint();
  return w.size();
}

}  // namespace

std::optional<Credentials> Credentials::generate() {
  // ice-char (RFC 8839 §5.4): ALPHA / DIGIT / "+" / "/": 64 of them, 6 bits a byte.
  static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint8_t random[8 + 24];
  if (RAND_bytes(random, sizeof random) != 1) return std::nullopt;
  Credentials c;
  for (size_t i = 0; i < sizeof random; ++i)
    (i < 8 ? c.local_ufrag : c.local_pwd) += kChars[random[i] & 63];
  OPENSSL_cleanse(random, sizeof random);
  return c;
}

Answer answer(const uint8_t *req, size_t size, const Credentials &creds,
              const sockaddr_storage &from, socklen_t from_len, uint8_t *out) {
  Answer a;
  // The framing (RFC 5389 §6, §7.3): two zero bits, the magic cookie, a
  // length that is a multiple of 4 and covers the datagram exactly.
  if (size < kHeader || (req[0] & 0xC0) || get32(req + 4) != kMagicCookie) return a;
  const size_t length = get16(req + 2);
  if (length % 4 || kHeader + length != size) return a;

  std::string_view username;
  bool has_username = false, has_priority = false, use_candidate = false, controlled = false;
  size_t integrity_at = 0, fingerprint_at = 0;
  uint16_t unknown[kMaxUnknown];
  size_t n_unknown = 0;
  for (size_t pos = kHeader; pos < size;) {
    if (pos + 4 > size || fingerprint_at) return a;  // nothing may follow FINGERPRINT
    const uint16_t type = get16(req + pos);
    const size_t len = get16(req + pos + 2);
    const size_t padded = (len + 3) & ~size_t{3};
    if (pos + 4 + padded > size) return a;
    const uint8_t *value = req + pos + 4;
    if (type == kFingerprint) {
      if (len != 4) return a;
      fingerprint_at = pos;
    } else if (integrity_at) {
      // After MESSAGE-INTEGRITY only FINGERPRINT counts (RFC 5389 §15.4).
    } else if (type == kMessageIntegrity) {
      if (len != kSha1) return a;
      integrity_at = pos;
    } else if (type == kUsername) {
      if (len > 513) return a;  // RFC 5389 §15.3
      username = {reinterpret_cast<const char *>(value), len};
      has_username = true;
    } else if (type == kPriority) {
      if (len != 4) return a;
      has_priority = true;
    } else if (type == kUseCandidate) {
      use_candidate = true;
    } else if (type == kIceControlled) {
      controlled = true;
    } else if (type < 0x8000) {
      // Comprehension-required and unknown to us (RFC 5389 §7.3.1: 420).
      if (n_unknown < kMaxUnknown) unknown[n_unknown++] = type;
    }
    // ICE-CONTROLLING and the rest of 0x8000-0xFFFF: optional. A lite agent
    // is always the controlled one (RFC 8445 §6.1.1) and answers no 487
    // role conflict: it has no role to give up.
    pos += 4 + padded;
  }
  // Every ICE check carries FINGERPRINT (RFC 8445 §7.2.2); without it, or with a
  // wrong one, the datagram is not a check at all and gets no answer (RFC 5389 §7.3).
  if (!fingerprint_at ||
      (crc32(req, fingerprint_at) ^ kFingerprintXor) != get32(req + fingerprint_at + 4))
    return a;
  // Indications (keep-alives, RFC 8445 §11) and responses get no answer; other
  // methods neither (a lite agent serves Binding only).
  if (get16(req) != kBindingRequest) return a;

  // RFC 5389 §10.1.2, short-term credentials.
  if (!has_username || !integrity_at) {
    a.verdict = Verdict::BadRequest;
    a.size = error_response(req, 400, "Bad Request", nullptr, 0, out);
    return a;
  }
  // RFC 8445 §7.2.2: USERNAME is "<receiver's ufrag>:<sender's ufrag>".
  const std::string_view ours = creds.local_ufrag;
  const bool name_ok =
      username.size() > ours.size() && username.substr(0, ours.size()) == ours &&
      username[ours.size()] == ':' &&
      (creds.remote_ufrag.empty() || username.substr(ours.size() + 1) == creds.remote_ufrag);
  if (!name_ok || !integrity_ok(req, integrity_at, creds.local_pwd)) {
    a.verdict = Verdict::Unauthorized;
    a.size = error_response(req, 401, "Unauthorized", nullptr, 0, out);
    return a;
  }
  if (n_unknown) {
    a.verdict = Verdict::UnknownAttribute;
    a.size = error_response(req, 420, "Unknown Attribute", unknown, n_unknown, out);
    return a;
  }
  if (!has_priority) {  // RFC 8445 §7.2.2: every check carries PRIORITY
    a.verdict = Verdict::BadRequest;
    a.size = error_response(req, 400, "Bad Request", nullptr, 0, out);
    return a;
  }

  // Success (RFC 8445 §7.3.1.4): the source transport address as we saw it.
  Writer w(out, kBindingSuccess, req + 8);
  if (from.ss_family == AF_INET && from_len >= sizeof(sockaddr_in)) {
    const auto *sin = reinterpret_cast<const sockaddr_in *>(&from);
    uint8_t *v = w.attribute(kXorMappedAddress, 8);
    v[1] = 0x01;
    put16(v + 2, ntohs(sin->sin_port) ^ static_cast<uint16_t>(kMagicCookie >> 16));
    put32(v + 4, ntohl(sin->sin_addr.s_addr) ^ kMagicCookie);
  } else if (from.ss_family == AF_INET6 && from_len >= sizeof(sockaddr_in6)) {
    const auto *sin6 = reinterpret_cast<const sockaddr_in6 *>(&from);
    uint8_t *v = w.attribute(kXorMappedAddress, 20);
    v[1] = 0x02;
    put16(v + 2, ntohs(sin6->sin6_port) ^ static_cast<uint16_t>(kMagicCookie >> 16));
    uint8_t mask[16];
    put32(mask, kMagicCookie);
    memcpy(mask + 4, req + 8, 12);  // the cookie and the transaction ID (RFC 5389 §15.2)
    for (int i = 0; i < 16; ++i) v[4 + i] = sin6->sin6_addr.s6_addr[i] ^ mask[i];
  } else {
    return a;
  }
  if (!w.integrity(creds.local_pwd)) return a;
  w.fingerprint();
  a.verdict = Verdict::Success;
  a.use_candidate = use_candidate;
  a.peer_controlled = controlled;
  a.size = w.size();
  return a;
}

// ------------------------------------------------------------------ test helpers

std::string build_request(const Request &r) {
  uint8_t buf[1024];
  Writer w(buf, kBindingRequest, r.transaction);
  memcpy(w.attribute(kUsername, r.username.size()), r.username.data(), r.username.size());
  if (r.priority) put32(w.attribute(kPriority, 4), 0x6e0001ff);
  if (r.use_candidate) w.attribute(kUseCandidate, 0);
  uint8_t *tie = w.attribute(r.controlled ? kIceControlled : kIceControlling, 8);
  memset(tie, 0x5a, 8);
  if (r.extra_attribute) w.attribute(r.extra_attribute, 0);
  if (r.integrity) w.integrity(r.pwd);
  if (r.fingerprint) w.fingerprint();
  return std::string(reinterpret_cast<const char *>(buf), w.size());
}

std::string add_fingerprint(const std::string &msg) {
  uint8_t buf[1024];
  if (msg.size() < kHeader || msg.size() + 8 > sizeof buf) return msg;
  memcpy(buf, msg.data(), msg.size());
  put16(buf + 2, static_cast<uint16_t>(msg.size() + 8 - kHeader));
  put16(buf + msg.size(), kFingerprint);
  put16(buf + msg.size() + 2, 4);
  put32(buf + msg.size() + 4, crc32(buf, msg.size()) ^ kFingerprintXor);
  return std::string(reinterpret_cast<const char *>(buf), msg.size() + 8);
}

std::optional<Parsed> parse_response(const uint8_t *data, size_t size, const std::string &pwd) {
  if (size < kHeader || get32(data + 4) != kMagicCookie || kHeader + get16(data + 2) != size)
    return std::nullopt;
  Parsed p;
  p.type = get16(data);
  memcpy(p.transaction, data + 8, 12);
  for (size_t pos = kHeader; pos + 4 <= size;) {
    const uint16_t type = get16(data + pos);
    const size_t len = get16(data + pos + 2);
    const size_t padded = (len + 3) & ~size_t{3};
    if (pos + 4 + padded > size) return std::nullopt;
    const uint8_t *v = data + pos + 4;
    if (type == kErrorCode && len >= 4) {
      p.error_code = v[2] * 100 + v[3];
    } else if (type == kXorMappedAddress && len == 8 && v[1] == 0x01) {
      in_addr addr;
      addr.s_addr = htonl(get32(v + 4) ^ kMagicCookie);
      char text[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, &addr, text, sizeof text);
      p.mapped = std::string(text) + ":" +
                 std::to_string(get16(v + 2) ^ static_cast<uint16_t>(kMagicCookie >> 16));
    } else if (type == kMessageIntegrity && len == kSha1) {
      p.has_integrity = true;
      p.integrity_ok = !pwd.empty() && integrity_ok(data, pos, pwd);
    } else if (type == kFingerprint && len == 4) {
      p.fingerprint_ok = (crc32(data, pos) ^ kFingerprintXor) == get32(v);
    }
    pos += 4 + padded;
  }
  return p;
}

}  // namespace portier::proxy::ice
