// SIP addresses and the address-like config values every program reads: the
// proxy (registrar keys, group addresses), the door and the monitor (their own
// AOR, call targets, doors). Plain C++, no sofia-sip.
#pragma once

#include <cstdint>
#include <string>

namespace portier {

// The key form of an AOR: scheme "sip:", user part as given, host lower-case,
// no port or parameters ("Alice", "Home.Example:5060" -> "sip:Alice@home.example").
std::string normalize_aor(const std::string &user, const std::string &host);

// Parses "sip:alice@Home.Example" (or "<sip:...>") into a normalized AOR; "" when
// it is not a sip: URI with a user and a host.
std::string parse_aor(const std::string &uri);

// "20000-29999" into its bounds; false when malformed or out of range.
bool parse_port_range(const std::string &text, uint16_t *min, uint16_t *max);

// An IPv4 or IPv6 address literal (no brackets, no port).
bool is_ip_literal(const std::string &text);

}  // namespace portier
