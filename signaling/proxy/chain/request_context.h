// What travels down portier-proxy's request chain: the parsed request, where it
// came from, where its answer goes, and what each processor learned for the
// ones after it.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "proxy/chain/reply.h"
#include "proxy/location_store.h"

namespace portier::proxy::chain {

// One place a request is forked to (RFC 3261 §16.5): a binding of an address
// of record.
struct Target {
  std::string uri;       // the Request-URI of the branch (the binding's contact)
  std::string next_hop;  // where the branch goes when not to uri (a NATed device); empty: uri
  std::string aor;       // the address of record whose binding this is
  PushTarget push;       // how to wake the device (RFC 8599); empty: no push
  std::string instance;  // the binding's +sip.instance; empty when none
  // The domain whose inter-domain flow reaches the target (issue 15): at the
  // cloud, a house's domain registration flow; at the house, the flow it
  // registered its own domain on, up to the cloud. The dialog remembers it, so
  // that in-dialog requests go down that flow as it is then (RFC 5626 §5.3),
  // never to the addresses behind the house's NAT. Empty: no such flow.
  std::string flow_domain;
};

struct RequestContext {
  RequestContext(msg_t *m, const sip_t *s, Reply &r) : msg(m), sip(s), reply(r) {}

  msg_t *msg;
  const sip_t *sip;
  Reply &reply;

  // The source's IP address ("127.0.0.1", "::1"), read once.
  const std::string &source_address();

  // §16.4: the top Route named us and is consumed; next_route is what is left
  // of the route set (where the request wants to go next).
  bool routed_to_us = false;
  const sip_route_t *next_route = nullptr;
  // Who the caller is: proved by digest authentication, or claimed in From when
  // authentication is off (empty: unknown).
  std::string caller_aor;
  // The local domain whose domain registration flow (domain_registrar.h: the
  // TLS connection we opened to the verified cloud proxy, RFC 5626) the request
  // came down; empty: any other source. Such a request is the cloud's: it
  // authenticated its caller, we do not challenge it, and its From is the
  // caller unless it names a device of our users file (refused: DigestAuth).
  // DomainFilter says what it may reach.
  std::string cloud_flow;
  // At the cloud: the house domain whose own flow the request came on
  // (HouseDomains::on_flow_of, set by DigestAuth); empty: any other source.
  std::string house_flow;
  // The address of record the Request-URI names, and the bindings it resolves to.
  std::string aor;
  std::vector<Target> targets;
  // The router keeps the server transaction reply.irq() (a transaction runs).
  bool kept = false;
  // The processor deciding now (Chain::run sets it; park() resumes after it).
  size_t position = 0;

 private:
  std::string source_address_;
  bool source_read_ = false;
};

// "udp:127.0.0.1:5070" / "udp:[::1]:5070" style source of a message, for logs and bindings.
std::string source_of(msg_t *msg);
// The source's IP address alone ("127.0.0.1", "::1"): what failures are counted by.
std::string source_address(msg_t *msg);

}  // namespace portier::proxy::chain
