#include "common/auth/digest_uri.h"

#include <sofia-sip/su_alloc.h>
#include <sofia-sip/url.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/ascii.h"

namespace portier::auth {

namespace {

// %XX escapes decoded: "%61lice" and "alice" are the same user (§19.1.4).
std::string unescaped(const char *s) {
  std::string out;
  if (!s) return out;
  for (size_t i = 0; s[i]; ++i) {
    auto hex = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (s[i] == '%' && s[i + 1] && s[i + 2] && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
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

std::vector<Param> params_of(const char *params) {
  std::vector<Param> out;
  if (!params) return out;
  std::string_view rest(params);
  while (!rest.empty()) {
    const size_t semi = rest.find(';');
    const std::string_view p = rest.substr(0, semi);
    rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
    if (p.empty()) continue;
    const size_t eq = p.find('=');
    Param param;
    param.name = ascii::to_lower(p.substr(0, eq));
    if (eq != std::string_view::npos) {
      param.value = unescaped(std::string(p.substr(eq + 1)).c_str());
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
bool params_match(const char *a, const char *b) {
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
bool headers_match(const char *a, const char *b) {
  const std::string sa = a ? a : "", sb = b ? b : "";
  auto split = [](const std::string &s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size() && !s.empty()) {
      const size_t amp = s.find('&', start);
      const std::string h =
          s.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
      const size_t eq = h.find('=');
      out.push_back(ascii::to_lower(h.substr(0, eq)) + "=" +
                    (eq == std::string::npos ? "" : unescaped(h.substr(eq + 1).c_str())));
      if (amp == std::string::npos) break;
      start = amp + 1;
    }
    std::sort(out.begin(), out.end());
    return out;
  };
  return split(sa) == split(sb);
}

bool nullable_iequal(const char *a, const char *b) {
  if (!a || !b) return !a && !b;
  return ascii::iequals(a, b);
}

}  // namespace

bool same_sip_uri(std::string_view a, std::string_view b) {
  // Clients copy the Request-URI as they wrote it: no parsing needed then.
  if (a == b) return true;
  su_home_t home[1] = {SU_HOME_INIT(home)};
  const std::string sa(a), sb(b);
  const url_t *ua = url_make(home, sa.c_str());
  const url_t *ub = url_make(home, sb.c_str());
  bool same;
  auto is_sip = [](const url_t *u) {
    return u && (u->url_type == url_sip || u->url_type == url_sips) && u->url_host;
  };
  if (!is_sip(ua) || !is_sip(ub)) {
    same = a == b;
  } else {
    // A component left out never equals one given with its default value: port
    // 5060 and no port may resolve differently (§19.1.4).
    same = ua->url_type == ub->url_type && unescaped(ua->url_user) == unescaped(ub->url_user) &&
           unescaped(ua->url_password) == unescaped(ub->url_password) &&
           (ua->url_user == nullptr) == (ub->url_user == nullptr) &&
           nullable_iequal(ua->url_host, ub->url_host) &&
           std::string(ua->url_port ? ua->url_port : "") ==
               std::string(ub->url_port ? ub->url_port : "") &&
           params_match(ua->url_params, ub->url_params) &&
           headers_match(ua->url_headers, ub->url_headers);
  }
  su_home_deinit(home);
  return same;
}

}  // namespace portier::auth
