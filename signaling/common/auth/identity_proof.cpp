#include "common/auth/identity_proof.h"

#include <openssl/crypto.h>

#include <cstdlib>
#include <cstring>
#include <unordered_map>

namespace portier::auth {
namespace {

constexpr char kKeyLabel[] = "portier identity proof v1";
// A home's proxy forwards a few requests a second at most; more proofs than
// this within the window are forgotten oldest first.
constexpr size_t kMaxRemembered = 4096;

// A proxy signs for the same devices over and over: each receiver's key is
// derived once (two MACs saved per proof). Bounded, in case HA1s keep changing.
constexpr size_t kMaxCachedKeys = 4096;

HmacSha256 proof_key(std::string_view ha1) {
  unsigned char key[HmacSha256::kSize];
  HmacSha256(ha1).mac({kKeyLabel}, key);
  HmacSha256 prepared(std::string_view(reinterpret_cast<const char *>(key), sizeof key));
  OPENSSL_cleanse(key, sizeof key);
  return prepared;
}

const HmacSha256 &cached_proof_key(std::string_view ha1) {
  thread_local std::unordered_map<std::string, HmacSha256> keys;
  if (auto it = keys.find(std::string(ha1)); it != keys.end()) return it->second;
  if (keys.size() >= kMaxCachedKeys) keys.clear();
  return keys.emplace(std::string(ha1), proof_key(ha1)).first->second;
}

std::string mac_hex(const HmacSha256 &key, const ProofFields &f, int64_t ts) {
  // LF cannot occur in any of the fields (header values are one line), so
  // the concatenation is unambiguous.
  const std::string cseq = std::to_string(f.cseq), when = std::to_string(ts);
  return to_hex(key.mac(
      {f.identity, "\n", f.call_id, "\n", f.from_tag, "\n", cseq, "\n", f.what, "\n", when}));
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
  return identity_proof(a, cached_proof_key(ha1), f, ts);
}

HmacSha256 identity_proof_key(std::string_view ha1) { return proof_key(ha1); }

std::string identity_proof(Algorithm a, const HmacSha256 &key, const ProofFields &f, int64_t ts) {
  return std::string("v=1;alg=") + (a == Algorithm::SHA256 ? "sha256" : "md5") +
         ";ts=" + std::to_string(ts) + ";mac=" + mac_hex(key, f, ts);
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

namespace {

// The realm is the domain, as the users file assumes (Flexisip's rule).
HmacSha256 device_key(Algorithm a, std::string_view user, std::string_view domain,
                      std::string_view password) {
  std::string ha1 = compute_ha1(a, user, domain, password);
  HmacSha256 key = proof_key(ha1);
  OPENSSL_cleanse(ha1.data(), ha1.size());
  return key;
}

}  // namespace

IdentityProofVerifier::IdentityProofVerifier(std::string_view user, std::string_view domain,
                                             std::string_view password, int64_t window_s)
    : md5_key_(device_key(Algorithm::MD5, user, domain, password)),
      sha256_key_(device_key(Algorithm::SHA256, user, domain, password)),
      window_s_(window_s) {}

IdentityProofVerifier::~IdentityProofVerifier() = default;

IdentityProofVerifier::Result IdentityProofVerifier::verify(std::optional<std::string_view> header,
                                                            const ProofFields &f, int64_t now) {
  if (!header) return Result::Missing;
  const auto v = param(*header, "v"), alg = param(*header, "alg"), ts_text = param(*header, "ts"),
             mac = param(*header, "mac");
  if (!v || *v != "1" || !alg || !ts_text || !mac || mac->size() != 64 || ts_text->empty() ||
      ts_text->size() > 18 || f.identity.empty())
    return Result::Malformed;
  const HmacSha256 *key = *alg == "sha256" ? &sha256_key_ : *alg == "md5" ? &md5_key_ : nullptr;
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
