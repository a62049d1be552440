// HMAC-SHA256 (RFC 2104) with a key prepared once: the key's two padded blocks
// are hashed when the key is set, and each MAC then copies the two prepared
// SHA-256 states and hashes only the message and the inner digest. OpenSSL 3's
// one-shot HMAC() fetches the algorithm and re-keys on every call, which made
// it the largest single cost of a forwarded INVITE (signed Record-Route,
// identity proofs) and a quarter of a REGISTER's (nonces).
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>

namespace portier::auth {

class HmacSha256 {
 public:
  static constexpr size_t kSize = 32;

  // Throws std::runtime_error when OpenSSL cannot provide SHA-256.
  explicit HmacSha256(std::string_view key);
  HmacSha256(HmacSha256 &&) noexcept = default;
  HmacSha256 &operator=(HmacSha256 &&) noexcept = default;

  // The MAC of the concatenated parts, into out (kSize bytes).
  void mac(std::initializer_list<std::string_view> parts, unsigned char *out) const;
  // The same, as kSize raw bytes.
  std::string mac(std::initializer_list<std::string_view> parts) const;

 private:
  struct CtxFree {
    void operator()(EVP_MD_CTX *c) const { EVP_MD_CTX_free(c); }
  };
  // The key's padded blocks, hashed once; work_ is scratch space, so one key is
  // used by one thread at a time.
  std::unique_ptr<EVP_MD_CTX, CtxFree> inner_, outer_, work_;
};

// Lower-case hex of raw bytes.
std::string to_hex(std::string_view raw);

}  // namespace portier::auth
