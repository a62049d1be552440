#include "proxy/chain/request_context.h"

#include <netinet/in.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/su.h>

#include "sip/sip_message.h"

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
  char host[sipmsg::kAddressTextSize];
  sipmsg::address_text(ai->ai_addr, host);
  const su_sockaddr_t *su = reinterpret_cast<su_sockaddr_t *>(ai->ai_addr);
  const bool v6 = su->su_family == AF_INET6;
  std::string out;
  out.reserve(sizeof host + 16);
  out += ai->ai_protocol == IPPROTO_TCP ? "tcp:" : "udp:";
  if (v6) out += '[';
  out += host;
  out += v6 ? "]:" : ":";
  out += std::to_string(ntohs(su->su_port));
  return out;
}

std::string source_address(msg_t *msg) {
  su_addrinfo_t *ai = msg_addrinfo(msg);
  if (!ai || !ai->ai_addr) return "?";
  char host[sipmsg::kAddressTextSize];
  return sipmsg::address_text(ai->ai_addr, host);
}

}  // namespace portier::proxy::chain
