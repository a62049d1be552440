#include "common/sip_text.h"

namespace portier::siptext {

std::string quoted(std::string_view text, size_t max_chars) {
  std::string out = "\"";
  for (char c : text.substr(0, max_chars)) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      // UTF-8 is allowed in qdtext, but only when valid; replacing every byte
      // outside ASCII keeps the check out of this function.
      out += u == '\t' ? ' ' : '?';
    } else {
      out += c;
    }
  }
  if (text.size() > max_chars) out += "...";
  return out + "\"";
}

std::string warning(int code, std::string_view agent, std::string_view text) {
  return std::to_string(code) + " " + std::string(agent) + " " + quoted(text);
}

std::string reason(int cause, std::string_view text) {
  return "SIP;cause=" + std::to_string(cause) + ";text=" + quoted(text, 80);
}

std::string_view strip_quotes(std::string_view value) {
  if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
    return value.substr(1, value.size() - 2);
  return value;
}

std::string_view strip_brackets(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    return host.substr(1, host.size() - 2);
  return host;
}

size_t ipv4_text(const unsigned char *addr, char *out) {
  char *p = out;
  for (int i = 0; i < 4; ++i) {
    const unsigned v = addr[i];
    if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
    if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
    *p++ = static_cast<char>('0' + v % 10);
    if (i < 3) *p++ = '.';
  }
  *p = '\0';
  return static_cast<size_t>(p - out);
}

}  // namespace portier::siptext
