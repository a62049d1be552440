#include "proxy/chain/request_context.h"

#include <netinet/in.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/su.h>

namespace portier::proxy::chain {

const std::string &RequestContext::source_address() {
  if (!source_read_) {
    source_address_ = chain::source_address(msg);
    source_read_ = true;
  }
  return source_address_;
}

std::string source_of(msg_t *msg) {
  su_addrinfo_t *ai = msg_addrinfo(msg);
  if (!ai || !ai->ai_addr) return "?";
  char host[64] = "?";
  su_sockaddr_t *su = reinterpret_cast<su_sockaddr_t *>(ai->ai_addr);
  su_inet_ntop(su->su_family, SU_ADDR(su), host, sizeof host);
  const char *proto = ai->ai_protocol == IPPROTO_TCP ? "tcp" : "udp";
  std::string h = su->su_family == AF_INET6 ? std::string("[") + host + "]" : host;
  return std::string(proto) + ":" + h + ":" + std::to_string(ntohs(su->su_port));
}

std::string source_address(msg_t *msg) {
  su_addrinfo_t *ai = msg_addrinfo(msg);
  if (!ai || !ai->ai_addr) return "?";
  char host[64] = "?";
  su_sockaddr_t *su = reinterpret_cast<su_sockaddr_t *>(ai->ai_addr);
  su_inet_ntop(su->su_family, SU_ADDR(su), host, sizeof host);
  return host;
}

}  // namespace portier::proxy::chain
