#include "common/sip_text.h"

#include <array>

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
  // Each byte's digits, then their count: sofia-sip has two printed per
  // datagram, and the proxy some more.
  struct Digits {
    char text[3];
    unsigned char size;
  };
  static constexpr auto kDigits = [] {
    std::array<Digits, 256> t{};
    for (unsigned v = 0; v < 256; ++v) {
      Digits &d = t[v];
      if (v >= 100) d.text[d.size++] = static_cast<char>('0' + v / 100);
      if (v >= 10) d.text[d.size++] = static_cast<char>('0' + v / 10 % 10);
      d.text[d.size++] = static_cast<char>('0' + v % 10);
    }
    return t;
  }();
  char *p = out;
  for (int i = 0; i < 4; ++i) {
    const Digits &d = kDigits[addr[i]];
    p[0] = d.text[0];
    p[1] = d.text[1];
    p[2] = d.text[2];
    p += d.size;
    *p++ = '.';
  }
  *--p = '\0';
  return static_cast<size_t>(p - out);
}

}  // namespace portier::siptext
