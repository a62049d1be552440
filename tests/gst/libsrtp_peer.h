// A peer's side of SRTP on Debian's libsrtp2 directly: the relay's SRTP
// (signaling/proxy/relay_srtp.cpp, our own code on OpenSSL) is checked against
// it. Policies as RFC 4568 / 6188 / 7714 give each suite (SRTCP with an 80-bit
// tag under AES_CM_128_HMAC_SHA1_32: RFC 4568 §6.2.2). Tests only.
#pragma once

#include <gtest/gtest.h>
#include <srtp2/srtp.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proxy/relay_srtp.h"
#include "sip/sdp/sdes.h"

namespace portier::test {

class LibsrtpPeer {
 public:
  using Packet = std::vector<uint8_t>;

  // inbound: checks and decrypts; else protects. rtcp_encrypted false: SRTCP
  // authenticated only (E = 0, RFC 3711 §3.4).
  LibsrtpPeer(const sdp::CryptoKey &key, bool inbound, bool rtcp_encrypted = true) {
    std::string error;
    EXPECT_TRUE(proxy::SrtpContext::init_library(&error)) << error;
    srtp_policy_t p{};
    switch (key.suite) {
      case sdp::SrtpSuite::AesCm128HmacSha1_80:
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);
        break;
      case sdp::SrtpSuite::AesCm128HmacSha1_32:
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p.rtp);
        srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);
        break;
      case sdp::SrtpSuite::Aes256CmHmacSha1_80:
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p.rtp);
        srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p.rtcp);
        break;
      case sdp::SrtpSuite::AeadAes128Gcm:
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtp);
        srtp_crypto_policy_set_aes_gcm_128_16_auth(&p.rtcp);
        break;
      case sdp::SrtpSuite::AeadAes256Gcm:
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&p.rtp);
        srtp_crypto_policy_set_aes_gcm_256_16_auth(&p.rtcp);
        break;
    }
    if (!rtcp_encrypted) p.rtcp.sec_serv = sec_serv_auth;
    p.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
    sdp::CryptoKey copy = key;
    p.key = copy.bytes.data();
    p.window_size = 1024;
    EXPECT_EQ(srtp_create(&ctx_, &p), srtp_err_status_ok);
  }
  ~LibsrtpPeer() {
    if (ctx_) srtp_dealloc(ctx_);
  }
  LibsrtpPeer(const LibsrtpPeer &) = delete;
  LibsrtpPeer &operator=(const LibsrtpPeer &) = delete;

  Packet protect(Packet p, bool rtcp = false) {
    int len = static_cast<int>(p.size());
    p.resize(p.size() + SRTP_MAX_TRAILER_LEN + 4);
    const auto st =
        rtcp ? srtp_protect_rtcp(ctx_, p.data(), &len) : srtp_protect(ctx_, p.data(), &len);
    EXPECT_EQ(st, srtp_err_status_ok);
    p.resize(static_cast<size_t>(len));
    return p;
  }
  // The plaintext, or nothing when the packet fails authentication.
  std::optional<Packet> unprotect(Packet p, bool rtcp = false) {
    int len = static_cast<int>(p.size());
    const auto st =
        rtcp ? srtp_unprotect_rtcp(ctx_, p.data(), &len) : srtp_unprotect(ctx_, p.data(), &len);
    if (st != srtp_err_status_ok) return std::nullopt;
    p.resize(static_cast<size_t>(len));
    return p;
  }

 private:
  srtp_t ctx_ = nullptr;
};

}  // namespace portier::test
