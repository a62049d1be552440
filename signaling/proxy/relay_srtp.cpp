#include "proxy/relay_srtp.h"

#include <openssl/crypto.h>
#include <srtp2/srtp.h>

#include <algorithm>
#include <mutex>

namespace portier::proxy {
namespace {}  // namespace

bool SrtpContext::init_library(std::string *error) {
  static std::once_flag once;
  static srtp_err_status_t status = srtp_err_status_ok;
  std::call_once(once, [] { status = srtp_init(); });
  if (status == srtp_err_status_ok) return true;
  *error = "libsrtp2 did not start (error " + std::to_string(status) + ")";
  return false;
}

namespace {

// RFC 4568 §6.2 / RFC 6188 §7.1 / RFC 7714 §14.2: the same policy for RTP and
// RTCP, except that AES_CM_128_HMAC_SHA1_32 keeps an 80-bit tag on SRTCP
// (RFC 4568 §6.2.2 refers to RFC 3711, which authenticates SRTCP always with 80).
void set_policy(sdp::SrtpSuite s, srtp_policy_t *p) {
  switch (s) {
    case sdp::SrtpSuite::AesCm128HmacSha1_80:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtcp);
      break;
    case sdp::SrtpSuite::AesCm128HmacSha1_32:
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&p->rtp);
      srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p->rtcp);
      break;
    case sdp::SrtpSuite::Aes256CmHmacSha1_80:
      srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p->rtp);
      srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(&p->rtcp);
      break;
    case sdp::SrtpSuite::AeadAes128Gcm:
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtp);
      srtp_crypto_policy_set_aes_gcm_128_16_auth(&p->rtcp);
      break;
    case sdp::SrtpSuite::AeadAes256Gcm:
      srtp_crypto_policy_set_aes_gcm_256_16_auth(&p->rtp);
      srtp_crypto_policy_set_aes_gcm_256_16_auth(&p->rtcp);
      break;
  }
}

}  // namespace

std::unique_ptr<SrtpContext> SrtpContext::create(const sdp::CryptoKey &key, Direction d,
                                                 std::string *error) {
  if (!init_library(error)) return nullptr;
  if (key.size != sdp::key_salt_length(key.suite)) {
    *error = std::string("a ") + sdp::suite_name(key.suite) + " key of the wrong length";
    return nullptr;
  }
  srtp_policy_t policy{};
  set_policy(key.suite, &policy);
  policy.ssrc.type = d == Direction::Inbound ? ssrc_any_inbound : ssrc_any_outbound;
  // libsrtp reads the key while srtp_create() runs and keeps its own copy.
  uint8_t bytes[sdp::kMaxKeySalt];
  std::copy(key.bytes.begin(), key.bytes.begin() + key.size, bytes);
  policy.key = bytes;
  policy.window_size = 1024;  // a door's keyframe burst reordered on Wi-Fi stays inside
  policy.allow_repeat_tx = 0;
  std::unique_ptr<SrtpContext> c(new SrtpContext());
  c->suite_ = key.suite;
  srtp_t ctx = nullptr;
  const srtp_err_status_t st = srtp_create(&ctx, &policy);
  OPENSSL_cleanse(bytes, sizeof bytes);
  if (st != srtp_err_status_ok) {
    *error = std::string("libsrtp2 refused a ") + sdp::suite_name(key.suite) + " context (error " +
             std::to_string(st) + ")";
    return nullptr;
  }
  c->ctx_ = ctx;
  return c;
}

SrtpContext::~SrtpContext() {
  if (ctx_) srtp_dealloc(ctx_);
}

bool SrtpContext::protect_rtp(uint8_t *data, size_t *size) {
  int len = static_cast<int>(*size);
  if (len < 12 || srtp_protect(ctx_, data, &len) != srtp_err_status_ok) return false;
  *size = static_cast<size_t>(len);
  return true;
}

bool SrtpContext::unprotect_rtp(uint8_t *data, size_t *size) {
  int len = static_cast<int>(*size);
  if (len < 12 || srtp_unprotect(ctx_, data, &len) != srtp_err_status_ok) return false;
  *size = static_cast<size_t>(len);
  return true;
}

bool SrtpContext::protect_rtcp(uint8_t *data, size_t *size) {
  int len = static_cast<int>(*size);
  if (len < 8 || srtp_protect_rtcp(ctx_, data, &len) != srtp_err_status_ok) return false;
  *size = static_cast<size_t>(len);
  return true;
}

bool SrtpContext::unprotect_rtcp(uint8_t *data, size_t *size) {
  int len = static_cast<int>(*size);
  if (len < 8 || srtp_unprotect_rtcp(ctx_, data, &len) != srtp_err_status_ok) return false;
  *size = static_cast<size_t>(len);
  return true;
}

}  // namespace portier::proxy
