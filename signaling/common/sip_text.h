// Header values that carry free text (a Warning's warn-text, a Reason's text)
// built in one place, so that text from the network or from an error message
// can never make the header invalid; and the two strippings every reader of
// header values needs. Plain C++.
#pragma once

#include <string>
#include <string_view>

namespace portier::siptext {

// `text` as an RFC 3261 §25.1 quoted-string: `"` and `\` become quoted-pairs;
// CR, LF and the other control characters (which a quoted-pair cannot carry
// across a line) and bytes outside ASCII become '?'; at most max_chars of the
// text are kept, "..." marks a cut.
std::string quoted(std::string_view text, size_t max_chars = 200);

// A Warning header value (RFC 3261 §20.43): warn-code SP warn-agent SP warn-text,
// e.g. `399 portier "SDP: c=IN IP6 ... cannot be relayed"`.
std::string warning(int code, std::string_view agent, std::string_view text);

// A Reason header value for the SIP protocol (RFC 3326 §2):
// `SIP;cause=603;text="Decline"`.
std::string reason(int cause, std::string_view text);

// A parameter value without the double quotes around it (`"home.example"` ->
// `home.example`, as a realm= or +sip.instance= comes); anything else as it is.
std::string_view strip_quotes(std::string_view value);

// A host without the brackets of an IPv6 reference (RFC 3261 §25.1:
// `[2001:db8::1]` -> `2001:db8::1`); anything else as it is.
std::string_view strip_brackets(std::string_view host);

// An IPv4 address (4 bytes, network order) in dotted-decimal, as inet_ntop
// writes it ("192.0.2.1"), NUL-terminated into out (kIpv4TextSize bytes); its
// length. By hand: glibc's inet_ntop runs one sprintf per byte.
constexpr size_t kIpv4TextSize = sizeof "255.255.255.255";
size_t ipv4_text(const unsigned char *addr, char *out);

}  // namespace portier::siptext
