// Proof that the proxy, not someone else on the LAN, put a P-Asserted-Identity
// into a message a device receives.
//
// A door opens for the identity in P-Asserted-Identity (RFC 3325), which is
// only worth something if the proxy wrote it; a source address proves
// nothing (UDP can be spoofed, and any local process can connect over TCP).
// Until TLS with a pinned certificate, the proxy and each device share one
// secret already: the device's digest HA1 (users file clrtxt, md5: or sha256:,
// realm = the device's domain). The proxy adds to every request it forwards to
// a device, and to the 2xx it returns to an authenticated caller,
//
//   P-Portier-Proof: v=1;alg=sha256;ts=<unix seconds>;mac=<64 hex>
//
// with key = HMAC-SHA256(HA1 of the RECEIVING device, "portier identity proof v1")
// and  mac = HMAC-SHA256(key, identity LF Call-ID LF From-tag LF CSeq number LF
//                             method or status LF ts).
// alg names the HA1 used (sha256 when the proxy has one, else md5), so every
// way of storing a user works, whatever `available-algorithms` says. The
// receiver recomputes it from its own password, accepts a small clock window,
// and refuses a mac it has already seen (the LAN is not encrypted: a captured
// proof must not open the door a second time).
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "common/auth/digest.h"
#include "common/auth/hmac.h"

namespace portier::auth {

inline constexpr char kIdentityProofHeader[] = "P-Portier-Proof";

// What the mac covers, from the message as the receiver sees it.
struct ProofFields {
  std::string identity;  // the asserted AOR, "sip:mon1@home.example"
  std::string call_id;
  std::string from_tag;
  uint32_t cseq = 0;
  std::string what;  // the request's method ("MESSAGE") or the response's status ("200")
};

// The header value for a device whose HA1 (hex, algorithm `a`) is `ha1`.
std::string identity_proof(Algorithm a, std::string_view ha1, const ProofFields &f, int64_t ts);
// The same with the device's key derived once (identity_proof_key) and kept
// by the caller, which signs for the same few devices over and over.
HmacSha256 identity_proof_key(std::string_view ha1);
std::string identity_proof(Algorithm a, const HmacSha256 &key, const ProofFields &f, int64_t ts);

class IdentityProofVerifier {
 public:
  enum class Result { Valid, Missing, Malformed, Expired, BadMac, Replayed };
  static const char *result_name(Result r);  // for logs and events

  // `user` and `domain` of the device's AOR, its digest password; `window_s`:
  // how far the proxy's clock may be from ours.
  IdentityProofVerifier(std::string_view user, std::string_view domain, std::string_view password,
                        int64_t window_s = 30);
  ~IdentityProofVerifier();
  IdentityProofVerifier(const IdentityProofVerifier &) = delete;
  IdentityProofVerifier &operator=(const IdentityProofVerifier &) = delete;

  // `header`: the P-Portier-Proof value (nullopt: none). A Valid proof is
  // remembered, and the same one is Replayed from then on.
  Result verify(std::optional<std::string_view> header, const ProofFields &f, int64_t now);

 private:
  HmacSha256 md5_key_, sha256_key_;  // derived once; the password is not kept
  int64_t window_s_;
  // Macs accepted within the window, oldest first; bounded.
  std::deque<std::pair<int64_t, std::string>> seen_order_;
  std::unordered_set<std::string> seen_;
};

}  // namespace portier::auth
