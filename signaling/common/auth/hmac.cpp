#include "common/auth/hmac.h"

#include <openssl/crypto.h>

#include <cstring>
#include <stdexcept>

namespace portier::auth {
namespace {

const EVP_MD *sha256() {
  // Fetched once: EVP_sha256() is looked up again by every EVP_DigestInit_ex.
  static EVP_MD *md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

}  // namespace

HmacSha256::HmacSha256(std::string_view key) {
  constexpr size_t kBlock = 64;  // SHA-256 block size
  unsigned char k[kBlock] = {};
  const EVP_MD *md = sha256();
  if (key.size() > kBlock) {
    unsigned int len = 0;
    if (!md || EVP_Digest(key.data(), key.size(), k, &len, md, nullptr) != 1)
      throw std::runtime_error("OpenSSL cannot compute SHA-256");
  } else {
    std::memcpy(k, key.data(), key.size());
  }
  unsigned char ipad[kBlock], opad[kBlock];
  for (size_t i = 0; i < kBlock; ++i) {
    ipad[i] = k[i] ^ 0x36;
    opad[i] = k[i] ^ 0x5c;
  }
  inner_.reset(EVP_MD_CTX_new());
  outer_.reset(EVP_MD_CTX_new());
  work_.reset(EVP_MD_CTX_new());
  const bool ok = md && inner_ && outer_ && work_ &&
                  EVP_DigestInit_ex(inner_.get(), md, nullptr) == 1 &&
                  EVP_DigestUpdate(inner_.get(), ipad, kBlock) == 1 &&
                  EVP_DigestInit_ex(outer_.get(), md, nullptr) == 1 &&
                  EVP_DigestUpdate(outer_.get(), opad, kBlock) == 1;
  OPENSSL_cleanse(k, sizeof k);
  OPENSSL_cleanse(ipad, sizeof ipad);
  OPENSSL_cleanse(opad, sizeof opad);
  if (!ok) throw std::runtime_error("OpenSSL cannot compute HMAC-SHA256");
}

void HmacSha256::mac(std::initializer_list<std::string_view> parts, unsigned char *out) const {
  unsigned char inner[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX *w = work_.get();
  bool ok = EVP_MD_CTX_copy_ex(w, inner_.get()) == 1;
  for (std::string_view p : parts) ok = ok && EVP_DigestUpdate(w, p.data(), p.size()) == 1;
  ok = ok && EVP_DigestFinal_ex(w, inner, &len) == 1 && EVP_MD_CTX_copy_ex(w, outer_.get()) == 1 &&
       EVP_DigestUpdate(w, inner, len) == 1 && EVP_DigestFinal_ex(w, out, &len) == 1 &&
       len == kSize;
  if (!ok) throw std::runtime_error("OpenSSL cannot compute HMAC-SHA256");
}

std::string HmacSha256::mac(std::initializer_list<std::string_view> parts) const {
  unsigned char out[kSize];
  mac(parts, out);
  return std::string(reinterpret_cast<const char *>(out), kSize);
}

std::string to_hex(std::string_view raw) {
  static const char digits[] = "0123456789abcdef";
  std::string out(raw.size() * 2, '\0');
  for (size_t i = 0; i < raw.size(); ++i) {
    out[2 * i] = digits[static_cast<unsigned char>(raw[i]) >> 4];
    out[2 * i + 1] = digits[static_cast<unsigned char>(raw[i]) & 15];
  }
  return out;
}

}  // namespace portier::auth
