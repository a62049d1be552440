#include "proxy/local_names.h"

#include <strings.h>

#include <algorithm>
#include <string_view>

#include "common/ascii.h"

namespace portier::proxy {
namespace {

bool host_eq(const char *a, const std::string &b) { return a && strcasecmp(a, b.c_str()) == 0; }

bool any_host(const std::vector<std::string> &names, const char *host) {
  if (!host) return false;
  return std::any_of(names.begin(), names.end(),
                     [&](const std::string &d) { return host_eq(host, d); });
}

bool in_domains(const LocalNames::Domains &domains, const char *host) {
  if (!host || domains.empty()) return false;
  // Host names are short: the lower-case copy stays in the string's own buffer
  // for most of them.
  std::string key(host);
  for (char &c : key) c = ascii::lower(c);
  return domains.count(key) != 0;
}

}  // namespace

LocalNames::Domains LocalNames::expand(const std::vector<std::string> &listed,
                                       const Domains &user_domains) {
  Domains out;
  for (const std::string &d : listed) {
    if (d == "*")
      out.insert(user_domains.begin(), user_domains.end());
    else
      out.insert(ascii::to_lower(d));
  }
  return out;
}

bool LocalNames::is_reg_domain(const char *host) const { return in_domains(reg_domains_, host); }

bool LocalNames::is_auth_domain(const char *host) const { return in_domains(auth_domains_, host); }

bool LocalNames::is_alias(const char *host) const { return any_host(aliases_, host); }

bool LocalNames::is_our_address(const url_t *url) const {
  if (!url || !url->url_host) return false;
  // Asked for every request: views, no copies.
  std::string_view host = url->url_host;
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const char *port = url->url_port;
  const bool tls = url->url_type == url_sips;
  const std::string_view want_port = port && *port ? port : (tls ? "5061" : "5060");
  // The port first: a client on our own host (the Via of every request from
  // it) differs from us only there, and it is the cheaper test.
  for (const auto &u : us_)
    if (u.port == want_port && ascii::iequals(u.host, host)) return true;
  return false;
}

bool LocalNames::is_us(const url_t *url) const {
  if (is_our_address(url)) return true;
  if (!url || !url->url_host || (!is_reg_domain(url->url_host) && !is_alias(url->url_host)))
    return false;
  // A name without a port is resolved to us (RFC 3263); with one, it must be ours.
  const char *port = url->url_port;
  if (!port || !*port) return true;
  return std::any_of(us_.begin(), us_.end(), [&](const HostPort &u) { return u.port == port; });
}

bool LocalNames::has_our_via(const sip_t *sip) const {
  for (const sip_via_t *v = sip->sip_via; v; v = v->v_next) {
    url_t u[1];
    url_init(u, url_sip);
    u->url_host = v->v_host;
    u->url_port = v->v_port;
    if (is_our_address(u)) return true;
  }
  return false;
}

}  // namespace portier::proxy
