// The stateful forking part of the proxy (RFC 3261 §16): one Txn per server
// transaction, one Branch per target, a ForkAggregator deciding what goes
// upstream. In-dialog requests routed through our Record-Route are forwarded as
// one-branch transactions; ACK for a 2xx is forwarded statelessly.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

// clang-format off
#include "proxy/sofia.h"  // first: it sets sofia-sip's magic types
// clang-format on

#include "common/auth/hmac.h"
#include "common/auth/users_file.h"
#include "common/event_writer.h"
#include "proxy/call_observer.h"
#include "proxy/chain/dialog_validator.h"
#include "proxy/chain/fork.h"
#include "proxy/dialog_table.h"
#include "proxy/fork_aggregator.h"
#include "proxy/local_names.h"
#include "proxy/proxy_config.h"
#include "proxy/router_state.h"
#include "push/push_request.h"

namespace portier::proxy {

// What the router needs from the proxy around it, and nothing more.
struct RouterEnv {
  nta_agent_t *agent;
  su_root_t *root;
  const ProxySettings &settings;
  const auth::UsersFile &users;  // the identity proofs' keys
  const LocalNames &names;       // our addresses and domains
  events::Writer &events;        // answered / failed / cancelled / fork_timeout
  // Record-Route value(s) for a request that came in on irq, one per target it
  // goes out to (Proxy::record_route_for: our address per transport, signed).
  std::function<std::vector<std::string>(nta_incoming_t *irq, msg_t *msg,
                                         const std::vector<std::string> &targets)>
      record_route;
  // Where a request to `target` (an in-dialog request's Request-URI) goes when
  // it is the Contact of a device registered over TCP or TLS: that device's
  // connection ("sip:HOST:PORT;transport=tls"); "" when not.
  std::function<std::string(const url_t *target)> flow_for;
  // Pushes the device of `target` (RFC 8599) about the forked request `sip`:
  // wake up for it (Call), or stop ringing for it (AnsweredElsewhere,
  // Missed). False when none left. Empty: push is off.
  std::function<bool(const chain::Target &target, const sip_t *sip, push::PushKind kind)> push;
  // Where requests go to a party reached through the inter-domain flow of
  // `domain` (chain::Target::flow_domain): that flow's next hop as it is now;
  // "" when it is gone or there is none. Empty function: no such flows.
  std::function<std::string(const std::string &domain)> domain_flow;
};

class Router : public chain::Forker, public chain::DialogRouter {
 public:
  // `observer`: follows every forked call (the media relay); null: none.
  Router(RouterEnv env, CallObserver *observer);
  ~Router() override;

  // An out-of-dialog request for one of our domains, its targets resolved
  // (chain::TargetResolver), from an authenticated caller (request.caller_aor,
  // empty when no authentication applies). request.pop_route: the request
  // carried a Route naming us (an outbound proxy setting).
  // Both return true when they keep irq (a transaction is running), false when
  // they answered it already and the caller may hand it back to nta.
  bool fork(nta_incoming_t *irq, msg_t *msg, const sip_t *sip,
            const chain::ForkRequest &request) override;
  // See chain::DialogRouter: the dialog a to-tagged request belongs to (a
  // NOTIFY ahead of its SUBSCRIBE's 2xx forms it), and the forwarding of one
  // chain::DialogValidator admitted.
  DialogTable::Match match_dialog(msg_t *msg, const sip_t *sip,
                                  const std::string &source_host) override;
  bool route_onward(Reply &reply, msg_t *msg, const sip_t *sip,
                    const DialogTable::Match &m) override;
  // A response outside any transaction that a recorded dialog's callee may send:
  // a retransmitted 2xx (§13.3.1.4).
  bool is_dialog_response(const sip_t *response, const std::string &source_host) const;

  // Whether a refused in-dialog request may be logged: a few lines a second, so
  // a flood of forged requests cannot flood the log; the rest are counted and
  // the count logged with the next refusal in a later second.
  bool refusal_loggable() override;

  std::string calls_json(int64_t now) const;
  // The users file was reloaded: every identity proof key is derived again.
  void forget_proof_keys() { proof_keys_.clear(); }
  size_t transactions() const { return txns_.size(); }
  // Forgets answered calls that never saw a BYE (a phone that lost power).
  void expire_dialogs(int64_t now);
  // A REGISTER wrote `target`'s binding of `aor` (fork-late): every call
  // ringing that AOR while its pushes are outstanding gets a branch to it at
  // once, as decide_late_branch() rules (proxy/late_branch.h): a refresh
  // keeps the device's branch; a new address replaces it (the stale one is
  // CANCELled); at most fork-late-max-branches per AOR and call. One hash lookup
  // when nothing rings: REGISTERs cost the same with any number of calls.
  void on_registered(const std::string &aor, const chain::Target &target);
  size_t ringing_aors() const { return ringing_by_aor_.size(); }

 private:
  struct Txn;
  struct Branch {
    Txn *txn = nullptr;
    size_t index = 0;
    std::string target;
    std::string target_host;  // the target's host, read when its request line was made
    std::string next_hop;  // where requests to this device go (NAT), empty: target
    std::string aor;       // the address of record whose binding this branch calls
    std::string instance;  // its device's +sip.instance; empty: unknown
    std::string flow_domain;  // chain::Target::flow_domain
    // A device that registered after the call ended (its push still showing a
    // call): it gets the INVITE and a CANCEL on its first provisional, so the
    // app can end the call it shows; a 2xx is hung up.
    bool ghost = false;
    nta_outgoing_t *orq = nullptr;
    msg_t *final_response = nullptr;  // our reference, with our Via removed
    bool cancelled = false;
    // Its 2xx stayed here and the proxy ended the device's dialog (answered
    // too late, or refused by the observer): retransmissions stay here too.
    bool hung_up = false;
    // The observer refused its 2xx: the branch counts as a 488 with this
    // Warning text.
    std::string refusal;
  };
  struct Txn {
    Router *router = nullptr;
    nta_incoming_t *irq = nullptr;
    bool irq_alive = true;  // nta has not yet let go of the server transaction
    TxnState state = TxnState::Trying;
    bool invite = false;
    bool dialog_forming = false;  // INVITE outside a dialog: goes into the calls list
    bool records_dialog = false;  // record-routed: its 18x/2xx with a To tag form a dialog
    // Follows this call's offers and answers (null: nobody does). Let go of
    // when the caller gets a failure: the caller may already be trying again
    // with the same Call-ID (a retry with credentials, RFC 3261 §22.2), and
    // that call is not this transaction's to change.
    CallObserver *observer = nullptr;
    // Call-ID, who the caller proved to be (empty: unknown; the dialog's caller
    // identity, and the key of the identity proof on the 2xx that goes back to
    // it), the winning branch.
    CallObserver::Call call;
    std::string caller_host;    // where the dialog-forming request came from
    std::string caller_target;  // the host of its Contact
    std::string caller_flow;    // chain::ForkRequest::caller_flow
    std::vector<std::unique_ptr<Branch>> branches;
    std::unique_ptr<ForkAggregator> fork;
    su_timer_t *timer = nullptr;
    std::string from, to;
    int64_t started = 0;
    std::string from_tag;
    // An in-dialog INVITE or UPDATE of an observed call: whether the caller
    // sent it (its offer, or the 2xx's, goes through the observer).
    bool offer_from_caller = false;
    // The identity the forked request asserts, as its receivers read it (the
    // identity proofs cover it).
    std::string asserted;
    // The last identity proof made for its branches: for which AOR, in which
    // second (the proof's timestamp).
    std::string proof_aor, proof;
    int64_t proof_at = 0;
    // Pushes went out (RFC 8599): the forked INVITE (our reference) and how it
    // was routed, for the branches of devices that register while it rings,
    // and the AORs under which ringing_by_aor_ lists it.
    msg_t *request = nullptr;
    bool pop_route = false;
    std::vector<std::string> late_aors;
    // The devices pushed for the call: when it is answered or ends, each
    // other one is pushed again so it stops ringing (iOS shows every VoIP
    // push as a call, and only the app can end it).
    std::vector<chain::Target> pushed;
    // call-fork-timeout passed: a pushed device registering now gets nothing.
    // Until then an ended call's Txn stays, for the ghost branches.
    bool push_window_over = false;
    // Branches added for devices that registered while it rang, per AOR,
    // against [module::Router] fork-late-max-branches. Per AOR, not per call: a
    // user can only register its own AOR (digest auth), so one account
    // re-registering in a loop spends its own budget and never keeps another
    // resident's woken phone out of the call. The cap is logged once per AOR.
    std::unordered_map<std::string, size_t> late_branches;
    std::unordered_set<std::string> late_cap_logged;
  };
  // What proves our P-Asserted-Identity to one receiver (identity_proof.h).
  struct ProofKey {
    auth::Algorithm alg;
    auth::HmacSha256 key;
  };
  // The receiver's key, derived once (null: we hold no secret for it).
  const ProofKey *proof_key(const std::string &receiver_aor);

  Txn *create_txn(nta_incoming_t *irq, const sip_t *sip);
  // Sends one copy of msg to target (a request URI; empty: keep the message's own).
  // next_hop: where to send it when that is not the target (a NATed device).
  // aor: the address of record whose binding the branch calls (gets an
  // identity proof for it).
  bool add_branch(Txn *t, msg_t *msg, const std::string &target, const std::string &record_route,
                  bool pop_route, const std::string &next_hop = "", const std::string &aor = "");
  // RouterEnv::flow_for of the request's Request-URI.
  std::string flow_hop(const sip_t *sip) const;
  // Where an in-dialog request from one party of `d` goes next: the receiving
  // party's inter-domain flow when it has one, else flow_hop.
  std::string onward_hop(const sip_t *sip, const DialogTable::Dialog &d, bool from_caller) const;
  void start_fork(Txn *t, size_t branches);
  // Reports branches that could not be sent; false when none was (t is gone).
  bool settle_unsent(Txn *t);
  void forward_response(Txn *t, msg_t *response);
  void cancel_pending(Txn *t, const char *reason);
  void apply(Txn *t, Branch *b, const ForkAggregator::Decision &d, msg_t *response);
  void maybe_finish(Txn *t);
  // Copies the other branches' challenges into the best response (§16.7 step 7).
  void add_challenges(Txn *t, msg_t *response);
  // Moves t to the state after `e`, and logs the change.
  void enter(Txn *t, TxnEvent e);
  // A failed or cancelled call: its observer lets go at once, not when its
  // last branch ends.
  void release_observer(Txn *t, const char *why);
  // Ends the dialog of a 2xx that stays here: ACK and BYE from the proxy.
  // `reason`: the BYE's Reason header (default: answered elsewhere, if it was).
  void hang_up_late_answer(Txn *t, Branch *b, const sip_t *response, const char *reason = nullptr);
  // The observer's say on a branch's 18x/2xx. False when the response is
  // handled here (dropped or refused); *absorb: the caller does not see it.
  bool observe_response(Txn *t, Branch *b, msg_t *response, int status, bool *absorb);
  // Ends the dialog of a 2xx the observer refused, and fails the branch with
  // 488 (the Warning reaches the caller if nobody else answers).
  void refuse_answer(Txn *t, Branch *b, const sip_t *response, const std::string &detail);
  void destroy(Txn *t);
  // The dialog branch b of t forms with the callee's tag and Contact (not yet
  // confirmed; the callee's hosts are those the branch went to).
  DialogTable::Dialog dialog_of(const Txn *t, const Branch *b, msg_t *msg, const char *callee_tag,
                                const url_t *callee_contact);
  // A NOTIFY ahead of its SUBSCRIBE's 2xx: records the dialog it forms, if any.
  bool notify_forms_dialog(msg_t *msg, const sip_t *sip, const std::string &source_host);
  // A forwarded 18x with a To tag or 2xx of a record-routed request: a dialog.
  void record_dialog(Txn *t, Branch *b, msg_t *response);

  static int on_branch_response(void *magic, nta_outgoing_t *orq, const sip_t *sip);
  static int on_server_event(void *magic, nta_incoming_t *irq, const sip_t *sip);
  static int on_late_bye_response(void *magic, nta_outgoing_t *orq, const sip_t *sip);
  static void on_fork_timeout(su_root_magic_t *, su_timer_t *, void *magic);

  RouterEnv env_;
  CallObserver *observer_;
  std::map<Txn *, std::unique_ptr<Txn>> txns_;
  // AOR -> the calls ringing it that wait for pushed devices (fork-late).
  std::unordered_map<std::string, std::vector<Txn *>> ringing_by_aor_;
  void unindex_ringing(Txn *t);
  // The call t is over for the caller (`outcome`): the follow-up pushes.
  void follow_up_pushes(Txn *t, TxnState outcome);
  DialogTable dialogs_;  // early and confirmed dialogs we record-routed
  // By receiver AOR; forgotten when the users file is reloaded (a new password
  // is a new key, a removed user has none).
  std::unordered_map<std::string, std::optional<ProofKey>> proof_keys_;
  static constexpr size_t kMaxProofKeys = 4096;
  static constexpr size_t kRefusalLinesPerSecond = 5;
  int64_t refusal_second_ = 0;
  size_t refusals_logged_ = 0, refusals_unlogged_ = 0;
};

}  // namespace portier::proxy
