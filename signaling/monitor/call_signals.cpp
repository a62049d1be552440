#include "monitor/call_signals.h"

#include "common/ascii.h"

namespace portier::monitor {

bool reason_is_answered_elsewhere(std::string_view protocol,
                                  const std::vector<std::string_view> &params) {
  if (!ascii::iequals(protocol, "SIP")) return false;
  for (std::string_view p : params) {
    const size_t eq = p.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view name = p.substr(0, eq), value = p.substr(eq + 1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (ascii::iequals(name, "cause")) return value == "200";
  }
  return false;
}

std::string dtmf_relay_body(char key, int duration_ms) {
  return std::string("Signal=") + key + "\r\nDuration=" + std::to_string(duration_ms) + "\r\n";
}

std::string picture_fast_update_body() {
  return "<?xml version=\"1.0\" encoding=\"utf-8\" ?>\r\n"
         "<media_control>\r\n"
         "  <vc_primitive>\r\n"
         "    <to_encoder>\r\n"
         "      <picture_fast_update/>\r\n"
         "    </to_encoder>\r\n"
         "  </vc_primitive>\r\n"
         "</media_control>\r\n";
}

InfoVerdict info_verdict(std::string_view content_type, bool has_body) {
  if (!has_body) return {};
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  if (ascii::iequals(type, "application/dtmf-relay") ||
      ascii::iequals(type, "application/media_control+xml"))
    return {};
  return {415, "Unsupported Media Type"};
}

}  // namespace portier::monitor
