// Signed JWTs (RFC 7519) in JWS compact form (RFC 7515 §7.1) for the two
// providers: RS256 (RSASSA-PKCS1-v1_5 with SHA-256, RFC 7518 §3.3) for Google's
// service-account assertion, ES256 (ECDSA P-256 with SHA-256, RFC 7518 §3.4)
// for APNs' provider token. The keys are secrets: nothing here logs, and the
// error texts name files, never key material.
#pragma once

#include <memory>
#include <string>
#include <string_view>

typedef struct evp_pkey_st EVP_PKEY;

namespace portier::push {

// base64url without padding (RFC 7515 §2, RFC 4648 §5).
std::string base64url(std::string_view bytes);

class SigningKey {
 public:
  enum class Kind { Rsa, EcP256 };
  // From PEM text (PKCS#8 "PRIVATE KEY", or the traditional RSA/EC forms).
  // `name` (a file name) goes into the error message.
  static std::shared_ptr<SigningKey> from_pem(std::string_view pem, const std::string &name,
                                              std::string *error);
  static std::shared_ptr<SigningKey> from_file(const std::string &path, std::string *error);
  ~SigningKey();
  SigningKey(const SigningKey &) = delete;
  SigningKey &operator=(const SigningKey &) = delete;

  Kind kind() const { return kind_; }
  // "HEADER.CLAIMS.SIGNATURE" for the two JSON texts: RS256 with an RSA key,
  // ES256 with a P-256 one. "" when signing fails.
  std::string sign_jwt(std::string_view header_json, std::string_view claims_json) const;

 private:
  SigningKey(EVP_PKEY *key, Kind kind) : key_(key), kind_(kind) {}
  EVP_PKEY *key_;
  Kind kind_;
};

}  // namespace portier::push
