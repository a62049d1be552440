#include "common/sip_address.h"

#include <arpa/inet.h>

#include <cstdio>
#include <string_view>

#include "common/ascii.h"

namespace portier {

std::string normalize_aor(const std::string &user, const std::string &host) {
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
  std::string aor;
  aor.reserve(4 + user.size() + 1 + h.size());
  aor += "sip:";
  if (!user.empty()) {
    aor += user;
    aor += '@';
  }
  for (char c : h) aor += ascii::lower(c);
  return aor;
}

std::string parse_aor(const std::string &uri_in) {
  std::string uri = uri_in;
  if (!uri.empty() && uri.front() == '<' && uri.back() == '>') uri = uri.substr(1, uri.size() - 2);
  if (uri.compare(0, 4, "sip:") != 0) return "";
  std::string rest = uri.substr(4);
  size_t at = rest.find('@');
  if (at == std::string::npos || at == 0) return "";
  std::string user = rest.substr(0, at);
  std::string host = rest.substr(at + 1);
  size_t end = host.find_first_of(":;?>");
  if (end != std::string::npos) host = host.substr(0, end);
  if (host.empty()) return "";
  return normalize_aor(user, host);
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
