#include "push/jwt.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstring>

#include "common/text_file.h"

namespace portier::push {

std::string base64url(std::string_view bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  auto at = [&](size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const unsigned n = at(i) << 16 | at(i + 1) << 8 | at(i + 2);
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const unsigned n = at(i) << 16;
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
  } else if (rest == 2) {
    const unsigned n = at(i) << 16 | at(i + 1) << 8;
    out += kAlphabet[n >> 18];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
  }
  return out;
}

std::shared_ptr<SigningKey> SigningKey::from_pem(std::string_view pem, const std::string &name,
                                                 std::string *error) {
  BIO *bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  if (!bio) {
    *error = name + ": out of memory";
    return nullptr;
  }
  // No passphrase callback: an encrypted key is refused, not prompted for.
  EVP_PKEY *key = PEM_read_bio_PrivateKey(
      bio, nullptr, [](char *, int, int, void *) { return 0; }, nullptr);
  BIO_free(bio);
  if (!key) {
    *error = name + ": no unencrypted PEM private key";
    return nullptr;
  }
  if (EVP_PKEY_is_a(key, "RSA")) {
    if (EVP_PKEY_get_bits(key) < 2048) {
      EVP_PKEY_free(key);
      *error = name + ": RSA key shorter than 2048 bits";
      return nullptr;
    }
    return std::shared_ptr<SigningKey>(new SigningKey(key, Kind::Rsa));
  }
  if (EVP_PKEY_is_a(key, "EC")) {
    char group[64] = "";
    size_t len = 0;
    EVP_PKEY_get_group_name(key, group, sizeof group, &len);
    if (std::strcmp(group, "prime256v1") == 0 || std::strcmp(group, "P-256") == 0)
      return std::shared_ptr<SigningKey>(new SigningKey(key, Kind::EcP256));
  }
  EVP_PKEY_free(key);
  *error = name + ": neither an RSA nor a P-256 key";
  return nullptr;
}

std::shared_ptr<SigningKey> SigningKey::from_file(const std::string &path, std::string *error) {
  std::string text;
  if (!read_text_file(path, "key file", &text, error)) return nullptr;
  auto key = from_pem(text, path, error);
  // The PEM text held the key: wipe our copy before the memory is reused.
  OPENSSL_cleanse(text.data(), text.size());
  return key;
}

SigningKey::~SigningKey() { EVP_PKEY_free(key_); }

std::string SigningKey::sign_jwt(std::string_view header_json, std::string_view claims_json) const {
  const std::string input = base64url(header_json) + "." + base64url(claims_json);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if (!md) return "";
  std::string sig;
  size_t len = 0;
  bool ok = EVP_DigestSignInit(md, nullptr, EVP_sha256(), nullptr, key_) == 1 &&
            EVP_DigestSign(md, nullptr, &len, reinterpret_cast<const unsigned char *>(input.data()),
                           input.size()) == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_DigestSign(md, reinterpret_cast<unsigned char *>(sig.data()), &len,
                        reinterpret_cast<const unsigned char *>(input.data()), input.size()) == 1;
    sig.resize(len);
  }
  EVP_MD_CTX_free(md);
  if (!ok) return "";
  if (kind_ == Kind::EcP256) {
    // OpenSSL gives a DER ECDSA-Sig-Value; JWS wants R and S as two 32-byte
    // big-endian integers, concatenated (RFC 7518 §3.4).
    const unsigned char *p = reinterpret_cast<const unsigned char *>(sig.data());
    ECDSA_SIG *ecdsa = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
    if (!ecdsa) return "";
    unsigned char raw[64];
    const bool fits = BN_bn2binpad(ECDSA_SIG_get0_r(ecdsa), raw, 32) == 32 &&
                      BN_bn2binpad(ECDSA_SIG_get0_s(ecdsa), raw + 32, 32) == 32;
    ECDSA_SIG_free(ecdsa);
    if (!fits) return "";
    sig.assign(reinterpret_cast<const char *>(raw), sizeof raw);
  }
  return input + "." + base64url(sig);
}

}  // namespace portier::push
