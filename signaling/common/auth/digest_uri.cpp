#include "common/auth/digest_uri.h"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "common/ascii.h"
#include "common/sip_address.h"

namespace portier::auth {

namespace {

// %XX escapes decoded: "%61lice" and "alice" are the same user (§19.1.4).
std::string unescaped(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto hex = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

struct Param {
  std::string name, value;  // name lower-case, value unescaped
  bool has_value = false;
};

std::vector<Param> params_of(std::string_view params) {
  std::vector<Param> out;
  std::string_view rest = params;
  while (!rest.empty()) {
    const size_t semi = rest.find(';');
    const std::string_view p = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    if (p.empty()) continue;
    const size_t eq = p.find('=');
    Param param;
    param.name = ascii::to_lower(p.substr(0, eq));
    if (eq != std::string_view::npos) {
      param.value = unescaped(p.substr(eq + 1));
      param.has_value = true;
    }
    out.push_back(std::move(param));
  }
  return out;
}

const Param *find(const std::vector<Param> &ps, const std::string &name) {
  for (const Param &p : ps)
    if (p.name == name) return &p;
  return nullptr;
}

// §19.1.4: a parameter in both URIs must match (case-insensitively); user, ttl,
// method and maddr in only one never match; the RFC's examples count transport
// among them (sip:bob@biloxi.com and ...;transport=udp differ); any other
// parameter in only one URI is ignored.
bool params_match(const std::string &a, const std::string &b) {
  const std::vector<Param> pa = params_of(a), pb = params_of(b);
  auto must_be_in_both = [](const std::string &n) {
    return n == "user" || n == "ttl" || n == "method" || n == "maddr" || n == "transport";
  };
  for (const Param &p : pa) {
    const Param *q = find(pb, p.name);
    if (!q) {
      if (must_be_in_both(p.name)) return false;
      continue;
    }
    if (p.has_value != q->has_value || !ascii::iequals(p.value, q->value)) return false;
  }
  for (const Param &q : pb)
    if (must_be_in_both(q.name) && !find(pa, q.name)) return false;
  return true;
}

// §19.1.4: header components must all be present in both and match; the order of
// headers is free, but clients put the same headers in the same order, so equal
// sets of "name=value" strings are enough.
bool headers_match(const std::string &a, const std::string &b) {
  auto split = [](const std::string &s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size() && !s.empty()) {
      const size_t amp = s.find('&', start);
      const std::string h =
          s.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
      const size_t eq = h.find('=');
      out.push_back(ascii::to_lower(h.substr(0, eq)) + "=" +
                    (eq == std::string::npos ? "" : unescaped(std::string_view(h).substr(eq + 1))));
      if (amp == std::string::npos) break;
      start = amp + 1;
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  return split(a) == split(b);
}

}  // namespace

bool same_sip_uri(std::string_view a, std::string_view b) {
  // Clients copy the Request-URI as they wrote it: no parsing needed then.
  if (a == b) return true;
  const std::optional<SipUri> ua = parse_sip_uri(a), ub = parse_sip_uri(b);
  if (!ua || !ub) return a == b;
  // A component left out never equals one given with its default value: port
  // 5060 and no port may resolve differently (§19.1.4).
  auto unescaped_or_none = [](const std::optional<std::string> &s) {
    return s ? std::optional<std::string>(unescaped(*s)) : std::nullopt;
  };
  return ua->secure == ub->secure && unescaped_or_none(ua->user) == unescaped_or_none(ub->user) &&
         unescaped_or_none(ua->password) == unescaped_or_none(ub->password) &&
         ascii::iequals(ua->host, ub->host) && ua->port == ub->port &&
         params_match(ua->params, ub->params) && headers_match(ua->headers, ub->headers);
}

}  // namespace portier::auth
