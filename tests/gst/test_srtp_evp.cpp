// The relay's own SRTP (proxy/relay_srtp.cpp, on OpenSSL) against RFC 3711's
// test vectors and, for every suite, against Debian's libsrtp2 as the oracle:
// the same ciphertext for the same key, packet and index, and each side
// decrypting what the other protected, for SRTP and SRTCP, with CSRCs and a
// header extension, over a sequence wrap, reordered, with several SSRCs; and
// every forged, replayed, stale or truncated packet refused.
#include <gtest/gtest.h>
#include <srtp2/srtp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "libsrtp_peer.h"
#include "proxy/relay_srtp.h"
#include "sip/sdp/sdes.h"

namespace sdp = portier::sdp;
using portier::proxy::SrtpContext;
using Packet = std::vector<uint8_t>;

namespace {

Packet hex(const char *s) {
  Packet out;
  for (; *s; ++s) {
    if (*s == ' ') continue;
    out.push_back(uint8_t(std::stoi(std::string(s, 2), nullptr, 16)));
    ++s;
  }
  return out;
}

// libsrtp2 as the peer (tests/gst/libsrtp_peer.h).
using Oracle = portier::test::LibsrtpPeer;

std::unique_ptr<SrtpContext> ours(const sdp::CryptoKey &k, bool inbound) {
  std::string error;
  auto c = SrtpContext::create(
      k, inbound ? SrtpContext::Direction::Inbound : SrtpContext::Direction::Outbound, &error);
  EXPECT_TRUE(c) << error;
  return c;
}

std::optional<Packet> protect(SrtpContext &c, Packet p, bool rtcp) {
  size_t size = p.size();
  p.resize(size + SrtpContext::kTrailer);
  if (!(rtcp ? c.protect_rtcp(p.data(), &size) : c.protect_rtp(p.data(), &size)))
    return std::nullopt;
  p.resize(size);
  return p;
}

// Unprotects an exact-size heap copy, so that a read past the end shows
// under valgrind or ASan.
std::optional<Packet> unprotect(SrtpContext &c, const Packet &in, bool rtcp) {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[in.size() ? in.size() : 1]);
  if (!in.empty()) std::memcpy(buf.get(), in.data(), in.size());
  size_t size = in.size();
  if (!(rtcp ? c.unprotect_rtcp(buf.get(), &size) : c.unprotect_rtp(buf.get(), &size)))
    return std::nullopt;
  return Packet(buf.get(), buf.get() + size);
}

// An RTP packet (RFC 3550 §5.1) with `csrcs` CSRCs and, if `ext`, a
// one-byte-header extension (RFC 8285) of two words.
Packet rtp(uint32_t ssrc, uint16_t seq, size_t payload = 160, int csrcs = 0, bool ext = false) {
  Packet p = {uint8_t(0x80 | (ext ? 0x10 : 0) | csrcs),
              96,
              uint8_t(seq >> 8),
              uint8_t(seq),
              0,
              0,
              uint8_t(seq >> 4),
              uint8_t(seq),
              uint8_t(ssrc >> 24),
              uint8_t(ssrc >> 16),
              uint8_t(ssrc >> 8),
              uint8_t(ssrc)};
  for (int i = 0; i < csrcs; ++i)
    for (uint8_t b : {uint8_t(0xc0), uint8_t(0), uint8_t(0), uint8_t(i + 1)}) p.push_back(b);
  if (ext) {
    for (int b : {0xbe, 0xde, 0x00, 0x02, 0x10, 0xaa, 0x21, 0xbb, 0xcc, 0x00, 0x00, 0x00})
      p.push_back(uint8_t(b));
  }
  for (size_t i = 0; i < payload; ++i) p.push_back(uint8_t(i * 7 + seq));
  return p;
}

// An RTCP receiver report with one report block (RFC 3550 §6.4.2).
Packet rtcp(uint32_t ssrc, uint8_t fill) {
  Packet p = {0x81,         201, 0, 7, uint8_t(ssrc >> 24), uint8_t(ssrc >> 16), uint8_t(ssrc >> 8),
              uint8_t(ssrc)};
  for (int i = 0; i < 24; ++i) p.push_back(uint8_t(fill + i));
  return p;
}

sdp::CryptoKey fixed_key(sdp::SrtpSuite s) {
  sdp::CryptoKey k;
  k.suite = s;
  k.size = sdp::key_salt_length(s);
  for (size_t i = 0; i < k.size; ++i) k.bytes[i] = uint8_t(0x31 * i + 7);
  return k;
}

}  // namespace

// RFC 3711 Appendix B.2: the AES-CM keystream for session key
// 2B7E151628AED2A6ABF7158809CF4F3C and IV F0F1...FD0000 (label 0 and index 0
// leave the salt as it is, so the PRF produces exactly that keystream).
TEST(SrtpEvpRfc3711, AesCmKeystreamB2) {
  const Packet key = hex("2B7E151628AED2A6ABF7158809CF4F3C");
  const Packet salt = hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD");
  uint8_t out[48];
  ASSERT_TRUE(portier::proxy::srtp_prf(key.data(), 16, salt.data(), 14, 0, out, sizeof out));
  EXPECT_EQ(Packet(out, out + 48), hex("E03EAD0935C95E80E166B16DD92B4EB4"
                                       "D23513162B02D0F72A43A2FE4A5F97AB"
                                       "41E95B3BB0A2E8DD477901E4FCA894C0"));
}

// RFC 3711 Appendix B.3: session keys from a master key and salt (§4.3).
TEST(SrtpEvpRfc3711, KeyDerivationB3) {
  const Packet key = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
  const Packet salt = hex("0EC675AD498AFEEBB6960B3AABE6");
  uint8_t cipher_key[16], cipher_salt[14], auth_key[20];
  ASSERT_TRUE(portier::proxy::srtp_prf(key.data(), 16, salt.data(), 14, 0, cipher_key, 16));
  ASSERT_TRUE(portier::proxy::srtp_prf(key.data(), 16, salt.data(), 14, 2, cipher_salt, 14));
  ASSERT_TRUE(portier::proxy::srtp_prf(key.data(), 16, salt.data(), 14, 1, auth_key, 20));
  EXPECT_EQ(Packet(cipher_key, cipher_key + 16), hex("C61E7A93744F39EE10734AFE3FF7A087"));
  EXPECT_EQ(Packet(cipher_salt, cipher_salt + 14), hex("30CBBC08863D8C85D49DB34A9AE1"));
  EXPECT_EQ(Packet(auth_key, auth_key + 20), hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"));
}

// RFC 7714 §16.1.1: AEAD_AES_128_GCM on an RTP packet, session key and salt
// given (ROC 0, SEQ 0xf17b: a stream's first packet).
TEST(SrtpEvpRfc7714, AeadAes128GcmRtp16) {
  const Packet key = hex("000102030405060708090a0b0c0d0e0f");
  const Packet salt = hex("517569642070726f2071756f");  // "Quid pro quo"
  const Packet plain = hex(
      "8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976 69736120 696e2070 "
      "61727465 73207472 6573");
  const Packet wire = hex(
      "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5 0d294e6f 42a5f47a "
      "51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce");
  auto out = SrtpContext::create_gcm_from_session_key(sdp::SrtpSuite::AeadAes128Gcm, key.data(),
                                                      salt.data());
  auto in = SrtpContext::create_gcm_from_session_key(sdp::SrtpSuite::AeadAes128Gcm, key.data(),
                                                     salt.data());
  ASSERT_TRUE(out && in);
  EXPECT_EQ(protect(*out, plain, false), wire);
  EXPECT_EQ(unprotect(*in, wire, false), plain);
}

// RFC 7714 §17.1: AEAD_AES_128_GCM on an encrypted SRTCP sender report,
// index 0x5d4; the E+index word follows the tag (§9.2) and is in the AAD (§9.3).
TEST(SrtpEvpRfc7714, AeadAes128GcmRtcp17) {
  const Packet key = hex("000102030405060708090a0b0c0d0e0f");
  const Packet salt = hex("517569642070726f2071756f");
  const Packet plain = hex(
      "81c8000d 4d617273 4e545031 4e545032 52545020 0000042a 0000e930 4c756e61 deadbeef deadbeef "
      "deadbeef deadbeef deadbeef");
  const Packet wire = hex(
      "81c8000d 4d617273 63e94885 dcdab67c a727d766 2f6b7e99 7ff5c0f7 6c06f32d c676a5f1 730d6fda "
      "4ce09b46 86303ded 0bb9275b c84aa458 96cf4d2f c5abf872 45d9eade 800005d4");
  auto in = SrtpContext::create_gcm_from_session_key(sdp::SrtpSuite::AeadAes128Gcm, key.data(),
                                                     salt.data());
  ASSERT_TRUE(in);
  EXPECT_EQ(unprotect(*in, wire, true), plain);
  EXPECT_FALSE(unprotect(*in, wire, true));  // the same index again
}

class SrtpEvp : public ::testing::TestWithParam<sdp::SrtpSuite> {};

INSTANTIATE_TEST_SUITE_P(AllSuites, SrtpEvp, ::testing::ValuesIn(sdp::kAllSrtpSuites),
                         [](const auto &info) { return std::string(sdp::suite_name(info.param)); });

// The same bytes as libsrtp2 for the same key and packets, and each decrypts
// the other's: two SSRCs interleaved, CSRCs and a header extension (the
// encrypted part starts after them, RFC 3711 §3.1), across the sequence
// number wrap (ROC 0 -> 1, RFC 3711 §3.3.1).
TEST_P(SrtpEvp, RtpMatchesLibsrtpAcrossTheWrap) {
  const sdp::CryptoKey key = fixed_key(GetParam());
  auto our_out = ours(key, false), our_in = ours(key, true);
  Oracle lib_out(key, false), lib_in(key, true);
  for (uint32_t seq = 65530; seq <= 65540; ++seq) {
    for (uint32_t ssrc : {0x11223344u, 0xcafe0001u}) {
      const Packet plain =
          rtp(ssrc, uint16_t(seq), 1000, ssrc == 0x11223344u ? 2 : 0, ssrc == 0x11223344u);
      auto mine = protect(*our_out, plain, false);
      ASSERT_TRUE(mine);
      const Packet theirs = lib_out.protect(plain, false);
      EXPECT_EQ(*mine, theirs) << "seq " << seq;
      EXPECT_EQ(lib_in.unprotect(*mine, false), plain) << "seq " << seq;
      EXPECT_EQ(unprotect(*our_in, theirs, false), plain) << "seq " << seq;
    }
  }
}

// SRTCP (RFC 3711 §3.4, RFC 7714 §9): the same bytes as libsrtp2, both ways,
// two SSRCs.
TEST_P(SrtpEvp, RtcpMatchesLibsrtp) {
  const sdp::CryptoKey key = fixed_key(GetParam());
  auto our_out = ours(key, false), our_in = ours(key, true);
  Oracle lib_out(key, false), lib_in(key, true);
  for (int i = 0; i < 5; ++i) {
    for (uint32_t ssrc : {0x11223344u, 0xcafe0001u}) {
      const Packet plain = rtcp(ssrc, uint8_t(i));
      auto mine = protect(*our_out, plain, true);
      ASSERT_TRUE(mine);
      const Packet theirs = lib_out.protect(plain, true);
      EXPECT_EQ(*mine, theirs);
      EXPECT_EQ(lib_in.unprotect(*mine, true), plain);
      EXPECT_EQ(unprotect(*our_in, theirs, true), plain);
    }
  }
}

// SRTCP that a peer only authenticates (E = 0, RFC 3711 §3.4; RFC 7714 §9.4:
// the whole packet is AAD) is checked and passed on as it is; a flipped E
// flag fails.
TEST_P(SrtpEvp, UnencryptedSrtcpFromLibsrtp) {
  const sdp::CryptoKey key = fixed_key(GetParam());
  Oracle lib_out(key, false, false);
  auto in = ours(key, true);
  const Packet plain = rtcp(0x5eed, 4);
  const Packet wire = lib_out.protect(plain, true);
  ASSERT_EQ(Packet(wire.begin(), wire.begin() + plain.size()), plain);  // not encrypted
  const bool gcm =
      GetParam() == sdp::SrtpSuite::AeadAes128Gcm || GetParam() == sdp::SrtpSuite::AeadAes256Gcm;
  Packet flipped = wire;
  flipped[plain.size() + (gcm ? 16 : 0)] ^= 0x80;  // E: claims the packet is encrypted
  EXPECT_FALSE(unprotect(*in, flipped, true));
  EXPECT_EQ(unprotect(*in, wire, true), plain);
}

// Packets reordered within the replay window all pass once; each a second
// time is a replay (RFC 3711 §3.3.2); so is one older than the window.
TEST_P(SrtpEvp, ReorderedReplayedAndStale) {
  const sdp::CryptoKey key = fixed_key(GetParam());
  Oracle lib_out(key, false);
  auto in = ours(key, true);
  std::vector<Packet> sent;
  for (uint16_t seq = 100; seq < 140; ++seq) sent.push_back(lib_out.protect(rtp(7, seq), false));
  std::vector<size_t> order;
  for (size_t i = 0; i < sent.size(); ++i) order.push_back((i * 17) % sent.size());
  for (size_t i : order) EXPECT_TRUE(unprotect(*in, sent[i], false)) << i;
  for (size_t i : order) EXPECT_FALSE(unprotect(*in, sent[i], false)) << i;
  // 2000 packets on: seq 100..139 are now far older than the 1024-packet window.
  Packet late;
  for (uint16_t seq = 140; seq < 2200; ++seq) {
    Packet p = lib_out.protect(rtp(7, seq), false);
    if (seq == 150) {
      late = p;
      continue;
    }
    if (seq > 2100) {
      EXPECT_TRUE(unprotect(*in, p, false));
    }
  }
  EXPECT_FALSE(unprotect(*in, late, false));

  // SRTCP: replayed index refused.
  const Packet r = lib_out.protect(rtcp(7, 1), true);
  EXPECT_TRUE(unprotect(*in, r, true));
  EXPECT_FALSE(unprotect(*in, r, true));
}

// A flipped bit anywhere (header, payload, tag, SRTCP index) fails
// authentication, and nothing is learnt from it: the next true packet passes.
TEST_P(SrtpEvp, EveryFlippedBitIsRefused) {
  const sdp::CryptoKey key = fixed_key(GetParam());
  for (bool is_rtcp : {false, true}) {
    auto out = ours(key, false);
    auto in = ours(key, true);
    const Packet plain = is_rtcp ? rtcp(9, 3) : rtp(9, 500, 24, 1, true);
    auto p = protect(*out, plain, is_rtcp);
    ASSERT_TRUE(p);
    for (size_t byte = 0; byte < p->size(); ++byte) {
      for (int bit = 0; bit < 8; ++bit) {
        Packet forged = *p;
        forged[byte] ^= uint8_t(1 << bit);
        EXPECT_FALSE(unprotect(*in, forged, is_rtcp)) << "byte " << byte << " bit " << bit;
      }
    }
    EXPECT_EQ(unprotect(*in, *p, is_rtcp), plain);
  }
}

// Every truncation is refused without reading past the end (the copy has
// the exact size: run under valgrind or ASan to see a stray read).
TEST_P(SrtpEvp, TruncatedPacketsAreRefused) {
  const sdp::CryptoKey key = fixed_key(GetParam());
  auto out = ours(key, false);
  auto in = ours(key, true);
  for (bool is_rtcp : {false, true}) {
    const Packet plain = is_rtcp ? rtcp(9, 3) : rtp(9, 600, 20, 3, true);
    auto p = protect(*out, plain, is_rtcp);
    ASSERT_TRUE(p);
    for (size_t n = 0; n < p->size(); ++n)
      EXPECT_FALSE(unprotect(*in, Packet(p->begin(), p->begin() + n), is_rtcp)) << n;
    EXPECT_EQ(unprotect(*in, *p, is_rtcp), plain);
  }
  // A header whose CSRC count or extension length runs past the packet.
  Packet bad = rtp(9, 700, 4, 0, true);
  bad[15] = 0x40;  // extension length 64 words
  EXPECT_FALSE(protect(*out, bad, false));
  Packet csrcs = rtp(9, 701, 0);
  csrcs[0] |= 0x0f;
  EXPECT_FALSE(protect(*out, csrcs, false));
  Packet v1 = rtp(9, 702);
  v1[0] = 0x40;  // RTP version 1
  EXPECT_FALSE(protect(*out, v1, false));
}

// One context keeps state for 16 SSRCs; a 17th is refused on either side,
// and forged packets of new SSRCs do not use up the table.
TEST_P(SrtpEvp, SeventeenthSsrcIsRefused) {
  const sdp::CryptoKey key = fixed_key(GetParam());
  auto out = ours(key, false);
  auto in = ours(key, true);
  Oracle lib_out(key, false);
  for (uint32_t ssrc = 100; ssrc < 140; ++ssrc) {  // forgeries first
    Packet forged = rtp(ssrc, 1, 40);
    forged.resize(forged.size() + 16);
    EXPECT_FALSE(unprotect(*in, forged, false));
  }
  for (uint32_t ssrc = 1; ssrc <= 16; ++ssrc) {
    EXPECT_TRUE(protect(*out, rtp(ssrc, 1), false)) << ssrc;
    EXPECT_TRUE(unprotect(*in, lib_out.protect(rtp(ssrc, 1), false), false)) << ssrc;
  }
  EXPECT_FALSE(protect(*out, rtp(17, 1), false));
  EXPECT_FALSE(protect(*out, rtcp(17, 1), true));
  EXPECT_FALSE(unprotect(*in, lib_out.protect(rtp(17, 1), false), false));
  EXPECT_TRUE(protect(*out, rtp(16, 2), false));  // the known ones go on
}

// The sender never reuses an index (RFC 3711 §9.1: that would reuse keystream).
TEST_P(SrtpEvp, RepeatedIndexIsNotProtected) {
  auto out = ours(fixed_key(GetParam()), false);
  EXPECT_TRUE(protect(*out, rtp(5, 42), false));
  EXPECT_FALSE(protect(*out, rtp(5, 42), false));
  EXPECT_TRUE(protect(*out, rtp(5, 41), false));  // reordered, not repeated
}

// A sender's window is libsrtp's 128 (it only guards against a repeat, RFC
// 3711 §9.1), a receiver's the relay's 1024 (RFC 3711 §3.3.2: at least 64): a
// packet 100 behind the highest still goes out, one 200 behind is refused
// as possibly repeated; the receiver takes the same 200-behind packet.
TEST_P(SrtpEvp, SenderWindowIs128ReceiverWindow1024) {
  const sdp::CryptoKey key = fixed_key(GetParam());
  auto out = ours(key, false);
  auto in = ours(key, true);
  Oracle lib_out(key, false);
  ASSERT_TRUE(protect(*out, rtp(5, 1000), false));
  EXPECT_TRUE(protect(*out, rtp(5, 900), false));
  EXPECT_FALSE(protect(*out, rtp(5, 800), false));
  EXPECT_FALSE(protect(*out, rtp(5, 900), false));  // now a repeat
  EXPECT_TRUE(unprotect(*in, lib_out.protect(rtp(7, 1000), false), false));
  EXPECT_TRUE(unprotect(*in, lib_out.protect(rtp(7, 800), false), false));
}
