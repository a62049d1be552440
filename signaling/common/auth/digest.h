// Digest access authentication arithmetic (RFC 7616, RFC 8760 for SIP).
// Plain C++ with OpenSSL EVP: Debian's sofia-sip digest module knows only MD5,
// so portier hashes HA1 and the response itself for both MD5 and SHA-256.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portier::auth {

enum class Algorithm { MD5, SHA256 };

// "MD5", "SHA-256" (case-insensitive); nullopt for anything else, including the
// -sess variants, which SIP does not use (RFC 8760 §2.4).
std::optional<Algorithm> parse_algorithm(std::string_view name);
// The token as written in a challenge: "MD5" or "SHA-256".
const char *algorithm_name(Algorithm a);

// Lower-case hex digest of data.
std::string hex_hash(Algorithm a, std::string_view data);
// HA1 = H(username ":" realm ":" password)   (RFC 7616 §3.4.2)
std::string compute_ha1(Algorithm a, std::string_view user, std::string_view realm,
                        std::string_view password);
// response = H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" H(method ":" uri)) with
// qop=auth, or H(HA1 ":" nonce ":" H(A2)) when qop is empty (RFC 2069 style clients).
std::string compute_response(Algorithm a, std::string_view ha1, std::string_view nonce,
                             std::string_view nc, std::string_view cnonce, std::string_view qop,
                             std::string_view method, std::string_view uri);

// The parameters of one Authorization / Proxy-Authorization header, unquoted.
struct Credentials {
  std::string username, realm, nonce, uri, response, algorithm, qop, nc, cnonce, opaque;
};
// Builds Credentials from "name=value" strings as sofia-sip keeps them in
// msg_auth_t::au_params (values may be quoted; quotes and escapes are removed).
// Unknown names are ignored. Returns false when a required field is missing.
bool credentials_from_params(const std::vector<std::string_view> &params, Credentials &out);

// `v` as a quoted-string (RFC 3261 §25.1), exactly: `"` and `\` become
// quoted-pairs, nothing else changes (digest parameters must hash as they are).
std::string quoted_string(std::string_view v);

// Constant-time comparison of two strings (for digests and codes).
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace portier::auth
