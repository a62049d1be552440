#include "sip/sip_trusted_hops.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>

#include <cstdlib>

#include "common/ascii.h"
#include "common/log.h"
#include "common/sip_text.h"

namespace portier::sip {
namespace {

// The numeric address and port of a socket address; false for other families.
bool numeric(const struct sockaddr *sa, socklen_t len, std::string *address, uint16_t *port) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    auto *in = reinterpret_cast<const sockaddr_in *>(sa);
    inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
    *port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    auto *in6 = reinterpret_cast<const sockaddr_in6 *>(sa);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
      // A dual-stack socket sees IPv4 peers as ::ffff:a.b.c.d.
      inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, sizeof buf);
    } else {
      inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
    }
    *port = ntohs(in6->sin6_port);
  } else {
    return false;
  }
  *address = buf;
  return true;
}

}  // namespace

bool TrustedHops::add(const std::string &text, std::string *error) {
  std::string s = text;
  while (!s.empty() && (s.front() == '<' || s.front() == ' ')) s.erase(0, 1);
  uint16_t default_port = 0;  // a bare host: any port
  if (ascii::istarts_with(s, "sips:")) {
    s.erase(0, 5);
    default_port = 5061;
  } else if (ascii::istarts_with(s, "sip:")) {
    s.erase(0, 4);
    default_port = 5060;
  }
  s = s.substr(0, s.find_first_of(";?>"));
  if (auto at = s.rfind('@'); at != std::string::npos) s.erase(0, at + 1);
  std::string host = s, port_text;
  if (!s.empty() && s.front() == '[') {  // [v6]:port
    const auto close = s.find(']');
    if (close == std::string::npos) {
      *error = "malformed address " + text;
      return false;
    }
    host = s.substr(1, close - 1);
    if (close + 1 < s.size() && s[close + 1] == ':') port_text = s.substr(close + 2);
  } else if (auto colon = s.find(':');
             colon != std::string::npos && s.find(':', colon + 1) == std::string::npos) {
    host = s.substr(0, colon);
    port_text = s.substr(colon + 1);
  }
  uint16_t port = default_port;
  if (!port_text.empty()) {
    char *end = nullptr;
    const long p = std::strtol(port_text.c_str(), &end, 10);
    if (*end || p < 1 || p > 65535) {
      *error = "bad port in " + text;
      return false;
    }
    port = static_cast<uint16_t>(p);
  }
  if (host.empty()) {
    *error = "no host in " + text;
    return false;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo *res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0) {
    *error = "cannot resolve " + host + ": " + gai_strerror(rc);
    return false;
  }
  for (addrinfo *ai = res; ai; ai = ai->ai_next) {
    Hop hop;
    uint16_t ignored;
    if (!numeric(ai->ai_addr, ai->ai_addrlen, &hop.address, &ignored)) continue;
    hop.port = port;
    hops_.push_back(hop);
  }
  freeaddrinfo(res);
  return true;
}

bool TrustedHops::trusts(const struct sockaddr *from, socklen_t len, int protocol) const {
  std::string address;
  uint16_t port = 0;
  if (!from || !numeric(from, len, &address, &port)) return false;
  for (const Hop &h : hops_) {
    if (h.address != address) continue;
    // Over TCP too: a device reaches its proxy over the connection it opened
    // to the proxy's listening port, which the proxy reuses for requests;
    // a connection from another port of the proxy's host is any local
    // process.
    (void)protocol;
    if (h.port && h.port != port) continue;
    return true;
  }
  return false;
}

bool TrustedHops::trusts_current_request(nua_t *nua, std::string *source) const {
  msg_t *msg = nua ? nua_current_request(nua) : nullptr;
  su_addrinfo_t *ai = msg ? msg_addrinfo(msg) : nullptr;
  if (!ai || !ai->ai_addr) {
    *source = "?";
    return false;
  }
  const auto *sa = reinterpret_cast<const struct sockaddr *>(ai->ai_addr);
  *source = address_text(sa, static_cast<socklen_t>(ai->ai_addrlen));
  return trusts(sa, static_cast<socklen_t>(ai->ai_addrlen), ai->ai_protocol);
}

bool TrustedHops::admit(nua_t *nua, nua_handle_t *nh, const char *agent, const char *method,
                        std::string *source) const {
  if (trusts_current_request(nua, source)) return true;
  PLOG_WARN("%s: %s from %s refused: not through the proxy (%s)", agent, method, source->c_str(),
            describe().c_str());
  const std::string warning = siptext::warning(399, agent, kNotThroughProxy);
  nua_respond(nh, SIP_403_FORBIDDEN, NUTAG_WITH_THIS(nua), SIPTAG_WARNING_STR(warning.c_str()),
              TAG_END());
  return false;
}

std::string TrustedHops::address_text(const struct sockaddr *sa, socklen_t len) {
  std::string address;
  uint16_t port = 0;
  if (!sa || !numeric(sa, len, &address, &port)) return "?";
  if (address.find(':') != std::string::npos) return "[" + address + "]:" + std::to_string(port);
  return address + ":" + std::to_string(port);
}

std::string TrustedHops::describe() const {
  std::string out;
  for (const Hop &h : hops_) {
    if (!out.empty()) out += ", ";
    const bool v6 = h.address.find(':') != std::string::npos;
    out += v6 ? "[" + h.address + "]" : h.address;
    out += h.port ? ":" + std::to_string(h.port) : ":*";
  }
  return out.empty() ? "nobody" : out;
}

}  // namespace portier::sip
