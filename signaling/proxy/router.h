// The stateful forking part of the proxy (RFC 3261 §16): one Txn per server
// transaction, one Branch per target, a ForkAggregator deciding what goes
// upstream. In-dialog requests routed through our Record-Route are forwarded as
// one-branch transactions; ACK for a 2xx is forwarded statelessly.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proxy/proxy.h"  // first: it sets sofia-sip's magic types

namespace portier::proxy {

class Router {
 public:
  explicit Router(Proxy &proxy);
  ~Router();

  // An out-of-dialog request for one of our domains, from an authenticated
  // caller (`caller_aor`, empty when no authentication applies).
  // `pop_route`: the request carried a Route naming us (an outbound proxy setting).
  // Both return true when they keep irq (a transaction is running), false when
  // they answered it already and the caller may hand it back to nta.
  bool route_to_domain(nta_incoming_t *irq, msg_t *msg, const sip_t *sip,
                       const std::string &caller_aor, bool pop_route);
  // A request whose top Route is us: pop it and forward to the next hop.
  bool route_onward(nta_incoming_t *irq, msg_t *msg, const sip_t *sip);

  std::string calls_json(int64_t now) const;
  size_t transactions() const { return txns_.size(); }
  // Forgets answered calls that never saw a BYE (a phone that lost power).
  void expire_dialogs(int64_t now);

 private:
  struct Txn;
  struct Branch {
    Txn *txn = nullptr;
    size_t index = 0;
    std::string target;
    std::string next_hop;  // where requests to this device go (NAT), empty: target
    std::string aor;       // the address of record whose binding this branch calls
    nta_outgoing_t *orq = nullptr;
    msg_t *final_response = nullptr;  // our reference, with our Via removed
    bool cancelled = false;
  };
  struct Txn {
    Router *router = nullptr;
    nta_incoming_t *irq = nullptr;
    bool irq_alive = true;
    bool invite = false;
    bool dialog_forming = false;  // INVITE outside a dialog: goes into the calls list
    std::vector<std::unique_ptr<Branch>> branches;
    std::unique_ptr<ForkAggregator> fork;
    su_timer_t *timer = nullptr;
    bool final_sent = false;  // something (2xx, best response, nta's 487) went up
    std::string call_id, from, to;
    int64_t started = 0;
    bool relayed = false;   // the media relay is in this call
    bool answered = false;  // a 2xx went up
    size_t winner = 0;      // the branch whose 2xx went up
    std::string from_tag;
    std::string caller_aor;  // who authenticated (empty: nobody); gets the 2xx's identity proof
    // An in-dialog INVITE of a relayed call: which side sent the offer
    // (-1: not relayed). Its SDP, and the answer's, are pointed at the relay.
    int reinvite_from_caller = -1;
  };
  struct Dialog {
    std::string from, to;
    std::string caller_tag;  // the From tag of the dialog-forming INVITE
    int64_t answered = 0;
  };

  Txn *create_txn(nta_incoming_t *irq, const sip_t *sip);
  // Sends one copy of msg to target (a request URI; empty: keep the message's own).
  // next_hop: where to send it when that is not the target (a NATed device).
  // aor: the address of record whose binding the branch calls (gets an
  // identity proof for it).
  bool add_branch(Txn *t, msg_t *msg, const std::string &target, const std::string &record_route,
                  bool pop_route, const std::string &next_hop = "", const std::string &aor = "");
  void start_fork(Txn *t, size_t branches);
  // Reports branches that could not be sent; false when none was (t is gone).
  bool settle_unsent(Txn *t);
  void forward_response(Txn *t, msg_t *response);
  void cancel_pending(Txn *t, const char *reason);
  void apply(Txn *t, Branch *b, const ForkAggregator::Decision &d, msg_t *response);
  void maybe_finish(Txn *t);
  // A relayed call already answered elsewhere: ACK and BYE a late 2xx.
  void hang_up_late_answer(Txn *t, Branch *b, const sip_t *response);
  // Rewrites a branch's 18x/2xx SDP to the relay; may turn off forwarding.
  void relay_response(Txn *t, Branch *b, msg_t *response, int status, ForkAggregator::Decision *d);
  void destroy(Txn *t);

  static int on_branch_response(void *magic, nta_outgoing_t *orq, const sip_t *sip);
  static int on_server_event(void *magic, nta_incoming_t *irq, const sip_t *sip);
  static int on_late_bye_response(void *magic, nta_outgoing_t *orq, const sip_t *sip);
  static void on_fork_timeout(su_root_magic_t *, su_timer_t *, void *magic);

  Proxy &proxy_;
  std::map<Txn *, std::unique_ptr<Txn>> txns_;
  std::map<std::string, Dialog> dialogs_;  // answered calls by Call-ID
};

}  // namespace portier::proxy
