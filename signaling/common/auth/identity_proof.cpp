#include "common/auth/identity_proof.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>
#include <cstring>
#include <vector>

namespace portier::auth {
namespace {

constexpr char kKeyLabel[] = "portier identity proof v1";
// A home's proxy forwards a few requests a second at most; more proofs than
// this within the window are forgotten oldest first.
constexpr size_t kMaxRemembered = 4096;

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char *>(data.data()), data.size(), out, &len))
    return "";
  std::string mac(reinterpret_cast<const char *>(out), len);
  OPENSSL_cleanse(out, sizeof out);
  return mac;
}

std::string to_hex(std::string_view raw) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string proof_key(std::string_view ha1) { return hmac_sha256(ha1, kKeyLabel); }

std::string mac_hex(std::string_view key, const ProofFields &f, int64_t ts) {
  // LF cannot occur in any of the fields (header values are one line), so
  // the concatenation is unambiguous.
  const std::string data = f.identity + "\n" + f.call_id + "\n" + f.from_tag + "\n" +
                           std::to_string(f.cseq) + "\n" + f.what + "\n" + std::to_string(ts);
  return to_hex(hmac_sha256(key, data));
}

// "v=1;alg=sha256;ts=1;mac=ab" -> the value of `name`, or nullopt.
std::optional<std::string_view> param(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const size_t semi = header.find(';');
    std::string_view item = header.substr(0, semi);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    const size_t eq = item.find('=');
    if (eq != std::string_view::npos && item.substr(0, eq) == name) return item.substr(eq + 1);
    if (semi == std::string_view::npos) break;
    header.remove_prefix(semi + 1);
  }
  return std::nullopt;
}

}  // namespace

std::string identity_proof(Algorithm a, std::string_view ha1, const ProofFields &f, int64_t ts) {
  std::string key = proof_key(ha1);
  std::string value = std::string("v=1;alg=") + (a == Algorithm::SHA256 ? "sha256" : "md5") +
                      ";ts=" + std::to_string(ts) + ";mac=" + mac_hex(key, f, ts);
  OPENSSL_cleanse(key.data(), key.size());
  return value;
}

const char *IdentityProofVerifier::result_name(Result r) {
  switch (r) {
    case Result::Valid:
      return "valid";
    case Result::Missing:
      return "no proof of identity from the proxy";
    case Result::Malformed:
      return "malformed proof of identity";
    case Result::Expired:
      return "proof of identity outside the clock window";
    case Result::BadMac:
      return "proof of identity does not verify";
    case Result::Replayed:
      return "proof of identity already used";
  }
  return "?";
}

IdentityProofVerifier::IdentityProofVerifier(std::string_view user, std::string_view domain,
                                             std::string_view password, int64_t window_s)
    : window_s_(window_s) {
  // The realm is the domain, as the users file assumes (Flexisip's rule).
  std::string md5 = compute_ha1(Algorithm::MD5, user, domain, password);
  std::string sha = compute_ha1(Algorithm::SHA256, user, domain, password);
  md5_key_ = proof_key(md5);
  sha256_key_ = proof_key(sha);
  OPENSSL_cleanse(md5.data(), md5.size());
  OPENSSL_cleanse(sha.data(), sha.size());
}

IdentityProofVerifier::~IdentityProofVerifier() {
  OPENSSL_cleanse(md5_key_.data(), md5_key_.size());
  OPENSSL_cleanse(sha256_key_.data(), sha256_key_.size());
}

IdentityProofVerifier::Result IdentityProofVerifier::verify(std::optional<std::string_view> header,
                                                            const ProofFields &f, int64_t now) {
  if (!header) return Result::Missing;
  const auto v = param(*header, "v"), alg = param(*header, "alg"), ts_text = param(*header, "ts"),
             mac = param(*header, "mac");
  if (!v || *v != "1" || !alg || !ts_text || !mac || mac->size() != 64 || ts_text->empty() ||
      ts_text->size() > 18 || f.identity.empty())
    return Result::Malformed;
  const std::string *key = *alg == "sha256" ? &sha256_key_ : *alg == "md5" ? &md5_key_ : nullptr;
  if (!key) return Result::Malformed;
  int64_t ts = 0;
  for (char c : *ts_text) {
    if (c < '0' || c > '9') return Result::Malformed;
    ts = ts * 10 + (c - '0');
  }
  if (ts > now + window_s_ || ts < now - window_s_) return Result::Expired;
  const std::string expected = mac_hex(*key, f, ts);
  std::string given(*mac);
  for (char &c : given)
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
  if (CRYPTO_memcmp(expected.data(), given.data(), expected.size()) != 0) return Result::BadMac;
  while (!seen_order_.empty() && (seen_order_.front().first < now - 2 * window_s_ ||
                                  seen_order_.size() >= kMaxRemembered)) {
    seen_.erase(seen_order_.front().second);
    seen_order_.pop_front();
  }
  if (!seen_.insert(given).second) return Result::Replayed;
  seen_order_.emplace_back(ts, given);
  return Result::Valid;
}

}  // namespace portier::auth
