#include "common/sip_address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>

#include "common/ascii.h"

namespace portier {

std::string normalize_aor(std::string_view user, std::string_view host) {
  // sofia-sip's url_host has no port or parameters; strip them anyway so a
  // caller that passes "Home.Example:5060" gets the same key.
  std::string_view h = host;
  h = h.substr(0, h.find_first_of(";?"));
  if (!h.empty() && h.front() == '[') {
    size_t close = h.find(']');
    if (close != std::string_view::npos) h = h.substr(0, close + 1);
  } else {
    h = h.substr(0, h.find(':'));
  }
  // Sized once and written in place: a key per REGISTER.
  std::string aor(4 + (user.empty() ? 0 : user.size() + 1) + h.size(), '\0');
  char *p = std::copy_n("sip:", 4, aor.data());
  if (!user.empty()) {
    p = std::copy(user.begin(), user.end(), p);
    *p++ = '@';
  }
  for (char c : h) *p++ = ascii::lower(c);
  return aor;
}

std::string parse_aor(const std::string &text) {
  std::string_view uri = text;
  if (uri.size() >= 2 && uri.front() == '<' && uri.back() == '>')
    uri = uri.substr(1, uri.size() - 2);
  const std::optional<SipUri> parsed = parse_sip_uri(uri);
  if (!parsed || parsed->secure || !parsed->user || parsed->user->empty()) return "";
  return normalize_aor(*parsed->user, parsed->host);
}

std::optional<SipUri> parse_sip_uri(std::string_view text) {
  SipUri uri;
  if (ascii::istarts_with(text, "sips:")) {
    uri.secure = true;
    text.remove_prefix(5);
  } else if (ascii::istarts_with(text, "sip:")) {
    text.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const size_t question = text.find('?');
  if (question != std::string_view::npos) {
    uri.headers = std::string(text.substr(question + 1));
    text = text.substr(0, question);
  }
  // The user part may hold ';' (user-unreserved), the host part never holds '@'.
  const size_t at = text.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = text.substr(0, at);
    const size_t colon = userinfo.find(':');
    uri.user = std::string(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) uri.password = std::string(userinfo.substr(colon + 1));
    text = text.substr(at + 1);
  }
  const size_t semi = text.find(';');
  if (semi != std::string_view::npos) {
    uri.params = std::string(text.substr(semi + 1));
    text = text.substr(0, semi);
  }
  size_t host_end = 0;
  if (!text.empty() && text.front() == '[') {
    host_end = text.find(']');
    if (host_end == std::string_view::npos) return std::nullopt;
    ++host_end;
  } else {
    host_end = std::min(text.find(':'), text.size());
  }
  uri.host = std::string(text.substr(0, host_end));
  text = text.substr(host_end);
  if (!text.empty()) {
    if (text.front() != ':') return std::nullopt;
    uri.port = std::string(text.substr(1));
    if (uri.port.empty() || uri.port.size() > 5 ||
        uri.port.find_first_not_of("0123456789") != std::string::npos)
      return std::nullopt;
  }
  if (uri.host.empty()) return std::nullopt;
  return uri;
}

bool parse_port_range(const std::string &text, uint16_t *min, uint16_t *max) {
  unsigned lo = 0, hi = 0;
  char extra = 0;
  if (sscanf(text.c_str(), "%u-%u%c", &lo, &hi, &extra) != 2) return false;
  if (lo < 1024 || hi > 65535 || lo >= hi || hi - lo < 2) return false;
  *min = static_cast<uint16_t>(lo);
  *max = static_cast<uint16_t>(hi);
  return true;
}

bool is_ip_literal(const std::string &text) {
  unsigned char buf[16];
  return inet_pton(AF_INET, text.c_str(), buf) == 1 || inet_pton(AF_INET6, text.c_str(), buf) == 1;
}

}  // namespace portier
