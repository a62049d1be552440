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

}  // namespace portier::siptext
