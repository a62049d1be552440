// ASCII case rules for protocol tokens (SIP methods and schemes, digest
// parameters, SDP attribute names, domains): locale-free on purpose, since
// tolower() would follow the process locale.
#pragma once

#include <string>
#include <string_view>

namespace portier::ascii {

inline char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

inline bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

inline std::string to_lower(std::string_view s) {
  std::string out(s);
  for (char &c : out) c = lower(c);
  return out;
}

}  // namespace portier::ascii
