// SIP addresses and the address-like config values every program reads: the
// proxy (registrar keys, group addresses), the door and the monitor (their own
// AOR, call targets, doors). Plain C++, no sofia-sip.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portier {

// A sip: or sips: URI (RFC 3261 §19.1.1) cut into its parts as written: no
// escape is decoded and no case folded, so comparing (§19.1.4) is the
// caller's choice of rules.
struct SipUri {
  bool secure = false;                  // sips:
  std::optional<std::string> user;      // nullopt: no userinfo at all
  std::optional<std::string> password;  // after the first ':' of the userinfo
  std::string host;                     // never empty; an IPv6 reference keeps its brackets
  std::string port;                     // "" when none was written
  std::string params;                   // after the first ';' past the host, without it
  std::string headers;                  // after the '?', without it
};

// The scheme is matched case-insensitively. nullopt for any other scheme, an
// empty host, a bad port or an unclosed IPv6 bracket.
std::optional<SipUri> parse_sip_uri(std::string_view text);

// The key form of an AOR: scheme "sip:", user part as given, host lower-case,
// no port or parameters ("Alice", "Home.Example:5060" -> "sip:Alice@home.example").
std::string normalize_aor(std::string_view user, std::string_view host);

// Parses "sip:alice@Home.Example" (or "<sip:...>") into a normalized AOR; "" when
// it is not a sip: URI with a user and a host.
std::string parse_aor(const std::string &uri);

// "20000-29999" into its bounds; false when malformed or out of range.
bool parse_port_range(const std::string &text, uint16_t *min, uint16_t *max);

// An IPv4 or IPv6 address literal (no brackets, no port).
bool is_ip_literal(const std::string &text);

}  // namespace portier
