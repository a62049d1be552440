// SRTP on OpenSSL rather than libsrtp2: Debian's libsrtp2 is built on NSS,
// which makes a crypto context and allocates on every packet (about 4.5 us
// per 1 KB AES-CM packet here); OpenSSL's AES-NI and SHA-NI code does the same
// work in about a microsecond. Nothing here allocates per packet: the cipher
// contexts are keyed once and only get a new IV, HMAC starts from the inner
// and outer SHA-1 states precomputed from the key, and the per-SSRC streams
// live in a table reserved when the context is made.
//
// libsrtp2 is the oracle: tests/gst/test_srtp_evp.cpp checks these
// transforms byte for byte against it and against the RFCs' vectors.

// SHA1_Init and friends are deprecated in OpenSSL 3, but are the only SHA-1
// whose state can be copied without an allocation (EVP_MD_CTX_copy_ex dups
// the provider context on 3.0); they run the same SHA-NI code as EVP.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "proxy/relay_srtp.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

namespace portier::proxy {

namespace {

// RFC 3711 §4.3.1 labels.
enum Label : uint8_t {
  kRtpEncryption = 0,
  kRtpAuth = 1,
  kRtpSalt = 2,
  kRtcpEncryption = 3,
  kRtcpAuth = 4,
  kRtcpSalt = 5,
};

constexpr size_t kAuthKeyLen = 20;   // RFC 3711 §4.2.1: n_a = 160
constexpr size_t kCmSaltLen = 14;    // RFC 3711 §4.3: n_s = 112
constexpr size_t kGcmSaltLen = 12;   // RFC 7714 §11: 96 bits
constexpr size_t kGcmTagLen = 16;    // RFC 7714 §14.2: AEAD_AES_*_GCM, 16 octets
constexpr size_t kSrtcpTagLen = 10;  // RFC 3711 §5.2, RFC 4568 §6.2.2: 80 bits for SRTCP
constexpr uint32_t kSrtcpEBit = 0x80000000u;
constexpr uint32_t kMaxSrtcpIndex = 0x7fffffffu;  // RFC 3711 §3.4: 31 bits
// The relay's earlier libsrtp2 contexts used 1024: a door's keyframe burst
// reordered on Wi-Fi stays inside (RFC 3711 §3.3.2 asks for at least 64).
constexpr size_t kRtpWindow = 1024;
// What the relay sends leaves in the order it was received or made, so a
// sender's window only refuses a repeated index (RFC 3711 §9.1); 128 is
// libsrtp's default for both directions.
constexpr uint32_t kRtpSendWindowWords = 128 / 64;
constexpr size_t kRtcpWindow = 128;  // libsrtp's SRTCP window

bool is_gcm(sdp::SrtpSuite s) { return sdp::suite_info(s).aead; }

size_t master_key_len(sdp::SrtpSuite s) { return sdp::suite_info(s).key_len; }

uint32_t load32(const uint8_t *p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3];
}
void store32(uint8_t *p, uint32_t v) {
  p[0] = uint8_t(v >> 24);
  p[1] = uint8_t(v >> 16);
  p[2] = uint8_t(v >> 8);
  p[3] = uint8_t(v);
}

// A sliding replay window (RFC 3711 §3.3.2): `top` is the highest index
// accepted; bit i of the map stands for index top - i. `words` of the map are
// in use (at most Bits / 64): a sender's window is kept small, as only the
// words in use are shifted and touched per packet.
template <size_t Bits>
struct ReplayWindow {
  static constexpr size_t kWords = Bits / 64;
  uint64_t top = 0;
  bool any = false;
  uint32_t words = kWords;
  std::array<uint64_t, kWords> map{};

  bool seen(uint64_t index) const {
    if (!any || index > top) return false;
    const uint64_t back = top - index;
    if (back >= 64 * uint64_t(words)) return true;  // older than the window: refused as if replayed
    return (map[back / 64] >> (back % 64)) & 1;
  }
  void add(uint64_t index) {
    if (!any) {
      any = true;
      top = index;
      std::fill_n(map.begin(), words, 0);
      map[0] = 1;
      return;
    }
    if (index > top) {
      const uint64_t shift = index - top;
      top = index;
      if (shift >= 64 * uint64_t(words)) {
        std::fill_n(map.begin(), words, 0);
      } else {
        const size_t whole = shift / 64, bits = shift % 64;
        for (size_t i = words; i-- > 0;) {
          uint64_t v = i >= whole ? map[i - whole] << bits : 0;
          if (bits && i >= whole + 1) v |= map[i - whole - 1] >> (64 - bits);
          map[i] = v;
        }
      }
      map[0] |= 1;
      return;
    }
    const uint64_t back = top - index;
    if (back < 64 * uint64_t(words)) map[back / 64] |= uint64_t(1) << (back % 64);
  }
};

// HMAC-SHA1 (RFC 2104) with the key's inner and outer states kept, so that a
// packet costs only its own bytes.
struct HmacSha1 {
  SHA_CTX inner{}, outer{};

  void set_key(const uint8_t *key, size_t len) {  // len <= 64
    uint8_t pad[64];
    std::memset(pad, 0x36, sizeof pad);
    for (size_t i = 0; i < len; ++i) pad[i] ^= key[i];
    SHA1_Init(&inner);
    SHA1_Update(&inner, pad, sizeof pad);
    std::memset(pad, 0x5c, sizeof pad);
    for (size_t i = 0; i < len; ++i) pad[i] ^= key[i];
    SHA1_Init(&outer);
    SHA1_Update(&outer, pad, sizeof pad);
    OPENSSL_cleanse(pad, sizeof pad);
  }
  // HMAC(data || tail) into out[20].
  void mac(const uint8_t *data, size_t len, const uint8_t *tail, size_t tail_len,
           uint8_t *out) const {
    SHA_CTX c = inner;
    SHA1_Update(&c, data, len);
    if (tail_len) SHA1_Update(&c, tail, tail_len);
    uint8_t h[SHA_DIGEST_LENGTH];
    SHA1_Final(h, &c);
    c = outer;
    SHA1_Update(&c, h, sizeof h);
    SHA1_Final(out, &c);
    OPENSSL_cleanse(&c, sizeof c);
  }
  void wipe() {
    OPENSSL_cleanse(&inner, sizeof inner);
    OPENSSL_cleanse(&outer, sizeof outer);
  }
};

const EVP_CIPHER *ctr_cipher(size_t key_len) {
  return key_len == 32 ? EVP_aes_256_ctr() : EVP_aes_128_ctr();
}
const EVP_CIPHER *gcm_cipher(size_t key_len) {
  return key_len == 32 ? EVP_aes_256_gcm() : EVP_aes_128_gcm();
}

}  // namespace

// RFC 7714 §11: a 96-bit salt is padded with zeros (as libsrtp does).
bool srtp_prf(const uint8_t *master_key, size_t key_len, const uint8_t *master_salt,
              size_t salt_len, uint8_t label, uint8_t *out, size_t out_len) {
  uint8_t iv[16] = {};
  std::memcpy(iv, master_salt, salt_len);
  iv[7] ^= label;
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  if (!c) return false;
  std::memset(out, 0, out_len);
  int n = 0;
  const bool ok = EVP_EncryptInit_ex(c, ctr_cipher(key_len), nullptr, master_key, iv) == 1 &&
                  EVP_EncryptUpdate(c, out, &n, out, static_cast<int>(out_len)) == 1;
  EVP_CIPHER_CTX_free(c);
  OPENSSL_cleanse(iv, sizeof iv);  // the master salt
  return ok;
}

struct SrtpContext::Impl {
  // One direction's keys for RTP or for RTCP.
  struct Keys {
    EVP_CIPHER_CTX *cipher = nullptr;
    HmacSha1 hmac;
    uint8_t salt[kCmSaltLen] = {};
  };
  struct Stream {
    uint32_t ssrc = 0;
    uint32_t roc = 0;  // the rollover counter of `rtp.top`
    ReplayWindow<kRtpWindow> rtp;
    ReplayWindow<kRtcpWindow> rtcp;
    uint32_t srtcp_index = 0;  // the last one sent
  };

  sdp::SrtpSuite suite{};
  bool gcm = false;
  bool outbound = false;
  size_t rtp_tag = 0;   // the tag after an SRTP packet
  size_t rtcp_tag = 0;  // after SRTCP's E+index word (AES-CM) or before it (GCM)
  Keys rtp, rtcp;
  std::vector<Stream> streams;  // reserved kMaxStreams: never reallocates
  size_t last = 0;              // the stream the previous packet used

  ~Impl() {
    for (Keys *k : {&rtp, &rtcp}) {
      EVP_CIPHER_CTX_free(k->cipher);  // clears its key schedule
      k->hmac.wipe();
      OPENSSL_cleanse(k->salt, sizeof k->salt);
    }
  }

  bool init_keys(const uint8_t *master, size_t key_len, size_t salt_len, Label enc, Label auth,
                 Label salt, Keys *k) {
    uint8_t session_key[32], auth_key[kAuthKeyLen];
    bool ok = srtp_prf(master, key_len, master + key_len, salt_len, enc, session_key, key_len) &&
              srtp_prf(master, key_len, master + key_len, salt_len, salt, k->salt,
                       gcm ? kGcmSaltLen : kCmSaltLen);
    if (ok && !gcm) {
      ok = srtp_prf(master, key_len, master + key_len, salt_len, auth, auth_key, kAuthKeyLen);
      if (ok) k->hmac.set_key(auth_key, kAuthKeyLen);
    }
    if (ok) {
      k->cipher = EVP_CIPHER_CTX_new();
      ok =
          k->cipher && EVP_CipherInit_ex(k->cipher, gcm ? gcm_cipher(key_len) : ctr_cipher(key_len),
                                         nullptr, session_key, nullptr, 1) == 1;
    }
    OPENSSL_cleanse(session_key, sizeof session_key);
    OPENSSL_cleanse(auth_key, sizeof auth_key);
    return ok;
  }

  Stream *find(uint32_t ssrc) {
    if (last < streams.size() && streams[last].ssrc == ssrc) return &streams[last];
    for (size_t i = 0; i < streams.size(); ++i)
      if (streams[i].ssrc == ssrc) {
        last = i;
        return &streams[i];
      }
    return nullptr;
  }
  // A stream for a new SSRC; nullptr when the table is full.
  Stream *add(uint32_t ssrc) {
    if (streams.size() >= kMaxStreams) return nullptr;
    streams.emplace_back();
    streams.back().ssrc = ssrc;
    if (outbound) streams.back().rtp.words = kRtpSendWindowWords;
    last = streams.size() - 1;
    return &streams.back();
  }

  // AES-CM (RFC 3711 §4.1.1) in place: IV = salt XOR SSRC << 64 XOR index << 16.
  bool ctr(const Keys &k, uint32_t ssrc, uint64_t index, uint8_t *data, size_t len) {
    uint8_t iv[16] = {};
    std::memcpy(iv, k.salt, kCmSaltLen);
    for (int i = 0; i < 4; ++i) iv[4 + i] ^= uint8_t(ssrc >> (24 - 8 * i));
    for (int i = 0; i < 6; ++i) iv[8 + i] ^= uint8_t(index >> (40 - 8 * i));
    int n = 0;
    if (EVP_EncryptInit_ex(k.cipher, nullptr, nullptr, nullptr, iv) != 1) return false;
    return len == 0 || EVP_EncryptUpdate(k.cipher, data, &n, data, static_cast<int>(len)) == 1;
  }

  // AES-GCM (RFC 7714 §7-9) in place; the tag is written to / checked against
  // `tag` (16 bytes).
  bool aead(const Keys &k, const uint8_t iv_in[12], const uint8_t *aad, size_t aad_len,
            const uint8_t *aad2, size_t aad2_len, uint8_t *data, size_t len, uint8_t *tag,
            bool encrypt) {
    uint8_t iv[12];
    for (int i = 0; i < 12; ++i) iv[i] = iv_in[i] ^ k.salt[i];
    EVP_CIPHER_CTX *c = k.cipher;
    int n = 0;
    if (EVP_CipherInit_ex(c, nullptr, nullptr, nullptr, iv, encrypt ? 1 : 0) != 1) return false;
    if (EVP_CipherUpdate(c, nullptr, &n, aad, static_cast<int>(aad_len)) != 1) return false;
    if (aad2_len && EVP_CipherUpdate(c, nullptr, &n, aad2, static_cast<int>(aad2_len)) != 1)
      return false;
    if (len && EVP_CipherUpdate(c, data, &n, data, static_cast<int>(len)) != 1) return false;
    if (encrypt) {
      return EVP_CipherFinal_ex(c, data + len, &n) == 1 &&
             EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, kGcmTagLen, tag) == 1;
    }
    return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, kGcmTagLen, tag) == 1 &&
           EVP_CipherFinal_ex(c, data + len, &n) == 1;  // 0: the tag does not match
  }
};

namespace {

// The length of an RTP header with its CSRCs and extension (RFC 3550 §5.1,
// §5.3.1), or 0 when it is not one or does not fit in `len`.
size_t rtp_header_len(const uint8_t *p, size_t len) {
  if (len < 12 || (p[0] >> 6) != 2) return 0;
  size_t h = 12 + 4 * size_t(p[0] & 0x0f);
  if (p[0] & 0x10) {
    if (len < h + 4) return 0;
    h += 4 + 4 * size_t(uint16_t(p[h + 2] << 8 | p[h + 3]));
  }
  return h <= len ? h : 0;
}

// RFC 7714 §8.1: an SRTP packet's IV before the salt is XORed in:
// 00 00 || SSRC || ROC || SEQ (`header` is the RTP header, SEQ its octets 2-3).
void gcm_rtp_iv(uint8_t iv[12], uint32_t ssrc, uint32_t roc, const uint8_t *header) {
  iv[0] = iv[1] = 0;
  store32(iv + 2, ssrc);
  store32(iv + 6, roc);
  iv[10] = header[2];
  iv[11] = header[3];
}

// RFC 7714 §9.1: an SRTCP packet's IV before the salt:
// 00 00 || SSRC || 00 00 || 0 || SRTCP index (31 bits).
void gcm_rtcp_iv(uint8_t iv[12], uint32_t ssrc, uint32_t index) {
  std::memset(iv, 0, 12);
  store32(iv + 2, ssrc);
  store32(iv + 8, index);
}

// RFC 3711 Appendix A: the index of `seq` guessed from the stream's highest
// one. libsrtp's rule for a young stream: while the highest index is at most
// 2^15 the rollover counter is taken to be 0, never -1.
uint64_t guess_index(const ReplayWindow<kRtpWindow> &w, uint32_t roc, uint16_t seq) {
  if (!w.any || w.top <= 32768) return seq;
  const uint32_t s_l = uint32_t(w.top & 0xffff);
  uint32_t v = roc;
  if (s_l < 32768) {
    if (seq > s_l + 32768) v = roc - 1;
  } else if (s_l - 32768 > seq) {
    v = roc + 1;
  }
  return uint64_t(v) << 16 | seq;
}

}  // namespace

std::unique_ptr<SrtpContext> SrtpContext::create(const sdp::CryptoKey &key, Direction d,
                                                 std::string *error) {
  if (key.size != sdp::key_salt_length(key.suite)) {
    *error = std::string("a ") + sdp::suite_name(key.suite) + " key of the wrong length";
    return nullptr;
  }
  std::unique_ptr<SrtpContext> c(new SrtpContext());
  c->suite_ = key.suite;
  c->impl_ = std::make_unique<Impl>();
  Impl &m = *c->impl_;
  m.suite = key.suite;
  m.gcm = is_gcm(key.suite);
  m.rtp_tag = sdp::suite_info(key.suite).rtp_tag_len;
  m.rtcp_tag = sdp::suite_info(key.suite).rtcp_tag_len;
  m.streams.reserve(kMaxStreams);
  const size_t key_len = master_key_len(key.suite);
  const size_t salt_len = key.size - key_len;
  if (!m.init_keys(key.bytes.data(), key_len, salt_len, kRtpEncryption, kRtpAuth, kRtpSalt,
                   &m.rtp) ||
      !m.init_keys(key.bytes.data(), key_len, salt_len, kRtcpEncryption, kRtcpAuth, kRtcpSalt,
                   &m.rtcp)) {
    *error = std::string("OpenSSL could not key a ") + sdp::suite_name(key.suite) + " context";
    return nullptr;
  }
  m.outbound = d == Direction::Outbound;
  return c;
}

std::unique_ptr<SrtpContext> SrtpContext::create_gcm_from_session_key(sdp::SrtpSuite suite,
                                                                      const uint8_t *key,
                                                                      const uint8_t salt[12]) {
  if (!is_gcm(suite)) return nullptr;
  std::unique_ptr<SrtpContext> c(new SrtpContext());
  c->suite_ = suite;
  c->impl_ = std::make_unique<Impl>();
  Impl &m = *c->impl_;
  m.suite = suite;
  m.gcm = true;
  m.rtp_tag = m.rtcp_tag = kGcmTagLen;
  m.streams.reserve(kMaxStreams);
  for (Impl::Keys *k : {&m.rtp, &m.rtcp}) {
    std::memcpy(k->salt, salt, kGcmSaltLen);
    k->cipher = EVP_CIPHER_CTX_new();
    if (!k->cipher || EVP_CipherInit_ex(k->cipher, gcm_cipher(master_key_len(suite)), nullptr, key,
                                        nullptr, 1) != 1)
      return nullptr;
  }
  return c;
}

SrtpContext::~SrtpContext() = default;

bool SrtpContext::protect_rtp(uint8_t *data, size_t *size) {
  Impl &m = *impl_;
  const size_t len = *size;
  const size_t h = rtp_header_len(data, len);
  if (!h) return false;
  const uint32_t ssrc = load32(data + 8);
  const uint16_t seq = uint16_t(data[2] << 8 | data[3]);
  Impl::Stream *s = m.find(ssrc);
  if (!s && !(s = m.add(ssrc))) return false;
  const uint64_t index = guess_index(s->rtp, s->roc, seq);
  // A repeated index would reuse keystream (RFC 3711 §9.1): refused, as libsrtp
  // does without allow_repeat_tx.
  if (s->rtp.seen(index)) return false;
  const uint32_t roc = uint32_t(index >> 16);
  if (m.gcm) {
    uint8_t iv[12];
    gcm_rtp_iv(iv, ssrc, roc, data);
    if (!m.aead(m.rtp, iv, data, h, nullptr, 0, data + h, len - h, data + len, true)) return false;
  } else {
    if (!m.ctr(m.rtp, ssrc, index, data + h, len - h)) return false;
    uint8_t roc_be[4], tag[SHA_DIGEST_LENGTH];
    store32(roc_be, roc);
    m.rtp.hmac.mac(data, len, roc_be, 4, tag);
    std::memcpy(data + len, tag, m.rtp_tag);
  }
  if (!s->rtp.any || index > s->rtp.top) s->roc = roc;
  s->rtp.add(index);
  *size = len + m.rtp_tag;
  return true;
}

bool SrtpContext::unprotect_rtp(uint8_t *data, size_t *size) {
  Impl &m = *impl_;
  if (*size < m.rtp_tag) return false;
  const size_t len = *size - m.rtp_tag;  // without the tag
  const size_t h = rtp_header_len(data, len);
  if (!h) return false;
  const uint32_t ssrc = load32(data + 8);
  const uint16_t seq = uint16_t(data[2] << 8 | data[3]);
  Impl::Stream *s = m.find(ssrc);
  // A new SSRC gets a stream only once its packet authenticates, so forged
  // packets cannot fill the table.
  static const Impl::Stream kFresh{};
  const Impl::Stream &st = s ? *s : kFresh;
  if (!s && m.streams.size() >= kMaxStreams) return false;
  const uint64_t index = guess_index(st.rtp, st.roc, seq);
  if (st.rtp.seen(index)) return false;  // RFC 3711 §3.3.2: before the costly check
  const uint32_t roc = uint32_t(index >> 16);
  if (m.gcm) {
    uint8_t iv[12];
    gcm_rtp_iv(iv, ssrc, roc, data);
    if (!m.aead(m.rtp, iv, data, h, nullptr, 0, data + h, len - h, data + len, false)) return false;
  } else {
    uint8_t roc_be[4], tag[SHA_DIGEST_LENGTH];
    store32(roc_be, roc);
    m.rtp.hmac.mac(data, len, roc_be, 4, tag);
    if (CRYPTO_memcmp(tag, data + len, m.rtp_tag) != 0) return false;
    if (!m.ctr(m.rtp, ssrc, index, data + h, len - h)) return false;
  }
  if (!s) s = m.add(ssrc);
  if (!s->rtp.any || index > s->rtp.top) s->roc = roc;
  s->rtp.add(index);
  *size = len;
  return true;
}

bool SrtpContext::protect_rtcp(uint8_t *data, size_t *size) {
  Impl &m = *impl_;
  const size_t len = *size;
  if (len < 8 || (data[0] >> 6) != 2) return false;
  const uint32_t ssrc = load32(data + 4);
  Impl::Stream *s = m.find(ssrc);
  if (!s && !(s = m.add(ssrc))) return false;
  // libsrtp's first SRTCP index is 1; RFC 3711 §3.4 only asks that it not repeat.
  if (s->srtcp_index >= kMaxSrtcpIndex) return false;  // the key is spent (§9.2)
  const uint32_t index = s->srtcp_index + 1;
  uint8_t word[4];
  store32(word, kSrtcpEBit | index);
  if (m.gcm) {
    // RFC 7714 §9.1: IV = 00 00 || SSRC || 00 00 || 0 || index; §9.3: the AAD
    // is the first 8 octets and the E+index word, which follows the tag.
    uint8_t iv[12];
    gcm_rtcp_iv(iv, ssrc, index);
    if (!m.aead(m.rtcp, iv, data, 8, word, 4, data + 8, len - 8, data + len, true)) return false;
    std::memcpy(data + len + kGcmTagLen, word, 4);
  } else {
    if (!m.ctr(m.rtcp, ssrc, index, data + 8, len - 8)) return false;
    std::memcpy(data + len, word, 4);
    uint8_t tag[SHA_DIGEST_LENGTH];
    m.rtcp.hmac.mac(data, len + 4, nullptr, 0, tag);  // RFC 3711 §3.4: over E+index too
    std::memcpy(data + len + 4, tag, kSrtcpTagLen);
  }
  s->srtcp_index = index;
  *size = len + 4 + m.rtcp_tag;
  return true;
}

bool SrtpContext::unprotect_rtcp(uint8_t *data, size_t *size) {
  Impl &m = *impl_;
  if (*size < 8 + 4 + m.rtcp_tag) return false;
  const size_t len = *size - 4 - m.rtcp_tag;  // the RTCP packet alone
  if ((data[0] >> 6) != 2) return false;
  const uint32_t ssrc = load32(data + 4);
  const uint8_t *word = m.gcm ? data + len + kGcmTagLen : data + len;
  const uint32_t w = load32(word);
  const bool encrypted = w & kSrtcpEBit;
  const uint32_t index = w & kMaxSrtcpIndex;
  Impl::Stream *s = m.find(ssrc);
  static const Impl::Stream kFresh{};
  const Impl::Stream &st = s ? *s : kFresh;
  if (!s && m.streams.size() >= kMaxStreams) return false;
  if (st.rtcp.seen(index)) return false;
  if (m.gcm) {
    uint8_t iv[12];
    gcm_rtcp_iv(iv, ssrc, index);
    uint8_t *tag = data + len;
    // RFC 7714 §9.3 / §9.4: unencrypted SRTCP authenticates the whole packet.
    const bool ok = encrypted ? m.aead(m.rtcp, iv, data, 8, word, 4, data + 8, len - 8, tag, false)
                              : m.aead(m.rtcp, iv, data, len, word, 4, nullptr, 0, tag, false);
    if (!ok) return false;
  } else {
    uint8_t tag[SHA_DIGEST_LENGTH];
    m.rtcp.hmac.mac(data, len + 4, nullptr, 0, tag);
    if (CRYPTO_memcmp(tag, data + len + 4, kSrtcpTagLen) != 0) return false;
    if (encrypted && !m.ctr(m.rtcp, ssrc, index, data + 8, len - 8)) return false;
  }
  if (!s) s = m.add(ssrc);
  s->rtcp.add(index);
  *size = len;
  return true;
}

}  // namespace portier::proxy
