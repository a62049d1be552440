// Requests for the request chain's tests: SIP text parsed by sofia-sip without
// a socket (msg_make), answered through a Reply without an agent, which keeps
// what it would have sent.
#pragma once

#include <arpa/inet.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su.h>

#include <cstring>
#include <string>
#include <vector>

#include "proxy/chain/processor.h"
#include "proxy/local_names.h"
#include "proxy/location_store.h"

namespace portier::proxy::chain::testing {

// A request as a device would send it; `headers` replaces or adds header lines
// ("Max-Forwards: 0\r\n"), `to_tag` makes it in-dialog.
inline std::string request_text(const std::string &method, const std::string &ruri,
                                const std::string &headers = "", const std::string &to_tag = "",
                                const std::string &from = "<sip:door@home.example>") {
  std::string t = method + " " + ruri + " SIP/2.0\r\n";
  t += "Via: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-1\r\n";
  if (headers.find("Max-Forwards:") == std::string::npos) t += "Max-Forwards: 70\r\n";
  if (headers.find("From:") == std::string::npos) t += "From: " + from + ";tag=caller1\r\n";
  if (headers.find("To:") == std::string::npos)
    t += "To: <" + ruri + ">" + (to_tag.empty() ? "" : ";tag=" + to_tag) + "\r\n";
  if (headers.find("Call-ID:") == std::string::npos) t += "Call-ID: call-1@192.0.2.10\r\n";
  t += "CSeq: 1 " + method + "\r\n";
  t += headers;
  t += "Content-Length: 0\r\n\r\n";
  return t;
}

// One parsed request with its context, from 192.0.2.10:5062 over UDP.
struct Request {
  explicit Request(const std::string &text)
      : msg(msg_make(sip_default_mclass(), 0, text.data(), text.size())),
        sip(msg ? sip_object(msg) : nullptr),
        reply(nullptr, nullptr, msg, sip),
        ctx(msg, sip, reply) {
    if (!msg) return;
    su_sockaddr_t su;
    memset(&su, 0, sizeof su);
    su.su_sin.sin_family = AF_INET;
    su.su_sin.sin_port = htons(5062);
    inet_pton(AF_INET, "192.0.2.10", &su.su_sin.sin_addr);
    msg_set_address(msg, &su, sizeof su.su_sin);
    msg_addrinfo(msg)->ai_protocol = IPPROTO_UDP;
  }
  ~Request() {
    if (msg) msg_destroy(msg);
  }
  Request(const Request &) = delete;
  Request &operator=(const Request &) = delete;

  msg_t *msg;
  sip_t *sip;
  Reply reply;
  RequestContext ctx;
};

// The proxy of the tests: 127.0.0.1:5060 (UDP), serving home.example
// (also known as intercom.local).
// `domains`: the reg-domains and auth-domains (a cloud proxy serves several).
inline LocalNames test_names(const std::vector<std::string> &domains = {"home.example"}) {
  LocalNames names(domains, domains, {"intercom.local"});
  names.add_address({"udp", "127.0.0.1", "5060"});
  return names;
}

// A binding of aor at contact, registered from `received`; false when refused.
inline bool bind(LocationStore &locations, const std::string &aor, const std::string &contact,
                 const std::string &received, int64_t now) {
  RegisterRequest req;
  req.aor = aor;
  req.contacts.push_back({contact, "", {}, {}, {}});
  req.call_id = "reg-" + aor;
  req.cseq = 1;
  req.received = received;
  req.now = now;
  return locations.apply(req).status == 200;
}

}  // namespace portier::proxy::chain::testing
