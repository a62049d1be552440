// portier-proxy: the sofia-sip nta edge of the in-house proxy. One nta agent with
// a default leg receives every request; REGISTER goes to the registrar, everything
// else to the router, which forks statefully (one nta_outgoing_t per branch, one
// nta_incoming_t per server transaction, RFC 3261 §16). The decisions (bindings,
// digest, best response) are made by the plain C++ classes beside this file.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#define SU_ROOT_MAGIC_T struct portier_proxy_root
#define NTA_LEG_MAGIC_T void
#define NTA_AGENT_MAGIC_T void
#define NTA_INCOMING_MAGIC_T void
#define NTA_OUTGOING_MAGIC_T void
#define SU_TIMER_ARG_T void

#include <sofia-sip/nta.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/su_wait.h>

#include "common/auth/authenticator.h"
#include "common/auth/failure_limiter.h"
#include "proxy/dialog_table.h"
#include "proxy/fork_aggregator.h"
#include "proxy/location_persist.h"
#include "proxy/location_store.h"
#include "proxy/proxy_config.h"
#include "proxy/static_records.h"
#include "runtime/control_socket.h"

namespace portier::proxy {

class MediaRelay;

class Router;
class TcpConnections;

// Where the answer to a request goes: its server transaction when it has one,
// or straight back by its Via (RFC 3261 §18.2.2). Every request starts without
// one: a challenge, a refusal or an answer of the proxy's own goes out
// statelessly, so a flood of unauthenticated INVITEs keeps no state for 32 s
// (timer H) per request. Only forwarding needs a transaction: irq() creates it
// then, when the Reply was given the parsed request (`sip`); REGISTER, ACK and
// CANCEL never get one.
class Reply {
 public:
  Reply(nta_agent_t *agent, nta_incoming_t *irq, msg_t *request, sip_t *sip = nullptr)
      : agent_(agent), irq_(irq), request_(request), sip_(sip) {}
  void send(int status, char const *phrase, tag_type_t tag, tag_value_t value, ...);
  // The server transaction, created on first use (nullptr when none may be, or
  // when nta cannot create it).
  nta_incoming_t *irq();
  // The transaction irq() created, if any (the caller hands it back to nta when
  // the router did not keep it).
  nta_incoming_t *created() const { return created_ ? irq_ : nullptr; }
  // The To tag of the answers sent without a transaction (one per run: RFC 3261
  // §8.2.7 wants the same tag for a retransmitted request), so that the ACK of a
  // stateless 407 is known for ours and absorbed, not forwarded.
  void set_stateless_tag(const char *tag) { stateless_tag_ = tag; }

 private:
  nta_agent_t *agent_;
  nta_incoming_t *irq_;
  msg_t *request_;
  sip_t *sip_;
  bool created_ = false;
  const char *stateless_tag_ = nullptr;
};

class Proxy {
 public:
  explicit Proxy(ProxySettings settings);
  ~Proxy();
  Proxy(const Proxy &) = delete;
  Proxy &operator=(const Proxy &) = delete;

  // Loads users, static records and saved registrations, opens the transports
  // and the control socket. Errors name the file or transport.
  bool start(su_root_t *root, std::string *error);
  // Saves registrations and closes everything.
  void stop();

  // Control socket commands.
  std::string control(const std::string &command);

  // --- used by the registrar, authenticator glue and router ---
  nta_agent_t *agent() const { return agent_; }
  su_root_t *root() const { return root_; }
  const ProxySettings &settings() const { return settings_; }
  MediaRelay *relay() { return relay_.get(); }
  LocationStore &locations() { return locations_; }
  const StaticRecords &static_records() const { return static_records_; }
  const auth::UsersFile &users() const { return users_; }

  bool is_reg_domain(const char *host) const;
  bool is_auth_domain(const char *host) const;
  // True when url names this proxy: one of our transports' host:port, or a served
  // domain or an alias ([global] aliases) on no port or one of our ports. Phones
  // whose outbound proxy is the domain or a DNS name put that in their Route.
  bool is_us(const url_t *url) const;
  // Whether the top Route (ours) carries the signature record_route_for put there
  // for this dialog (Call-ID and the caller's tag, which is the From or the To tag
  // depending on who sends). False for a Route we never issued.
  bool route_signed(const sip_t *sip) const;
  // Record-Route value(s) for a request that came in on irq's transport and goes
  // out to `target` (a URI, possibly with ;transport=). When the two transports
  // differ, two entries (RFC 5658 double record-routing): the callee-facing one
  // on top, so each side's first hop is our address on its own transport. Each
  // entry carries a signature over the dialog (see route_signed).
  std::string record_route_for(nta_incoming_t *irq, msg_t *msg, const std::string &target);
  // The transport ("udp", "tcp", "tls") a URI asks for.
  static std::string transport_of(const url_t *url);

  // Digest check of a request; on anything but success it has already answered
  // (401/407/403) and returns false. `user_out` gets the authenticated user.
  bool authenticate(Reply &reply, msg_t *msg, const sip_t *sip, bool registrar,
                    std::string *user_out);
  // "udp:127.0.0.1:5070" / "udp:[::1]:5070" style source of a message, for logs and bindings.
  static std::string source_of(msg_t *msg);
  // The source's IP address alone ("127.0.0.1", "::1"): what failures are counted by.
  static std::string source_address(msg_t *msg);

  // Wall-clock seconds rounded up, for registrations and their listing: a
  // binding may outlive its interval by under a second but never expires before
  // it (RFC 3261 §10.2.1), and the listing never shows more than was granted.
  static int64_t now_rounded_up();

  void handle_register(Reply &reply, msg_t *msg, const sip_t *sip);
  // The 200 to a REGISTER (contacts: its Contact value, may be empty): sent at
  // once when nothing is waiting for the disk, else held until the journal
  // holds every change made so far, this request's included ("a 200 means the
  // binding survives a crash").
  void answer_register_ok(Reply &reply, msg_t *msg, std::string contacts);

 private:
  static int on_message(void *self, nta_agent_t *agent, msg_t *msg, sip_t *sip);
  static int on_stray_response(void *self, nta_outgoing_t *orq, const sip_t *sip);
  static void on_housekeeping(su_root_magic_t *, su_timer_t *, void *self);
  static int on_journal_written(su_root_magic_t *, su_wait_t *, void *self);
  // Sends the held 200s (or 500s, when the write failed) the journal now covers.
  void release_register_replies();
  // The journal is compacted into the snapshot once it holds this much.
  static constexpr uint64_t kCompactJournalAfterBytes = 1 << 20;
  void give_back_memory();
  static constexpr size_t kTrimAfterTransactions = 1000;
  // Returns true when the router keeps reply.irq() (a transaction runs).
  bool dispatch(Reply &reply, msg_t *msg, const sip_t *sip);
  bool has_our_via(const sip_t *sip) const;
  bool load_nonce_secret(std::string *secret, std::string *error);
  bool is_alias(const char *host) const;
  // One of our transports' host:port (what our Via and Record-Route name).
  bool is_our_address(const url_t *url) const;
  // A failed authentication: counts it, logs it within the log budget, bans.
  // The summary lines of what the auth log budget left out (housekeeping).
  void log_auth_summaries();
  void note_auth_failure(const std::string &address, const std::string &user,
                         const std::string &realm, const char *method, const std::string &reason);
  // Credentials whose nonce was not issued to their source address: refused, logged
  // within a budget of their own, counted against nobody (the sender is unknown).
  void note_unbound_nonce(const std::string &address, const std::string &user, const char *method,
                          const char *why);
  std::string bans_json(int64_t now) const;

  ProxySettings settings_;
  su_root_t *root_ = nullptr;
  nta_agent_t *agent_ = nullptr;
  nta_incoming_t *stateless_in_ = nullptr;
  nta_outgoing_t *stateless_out_ = nullptr;
  su_timer_t *housekeeping_ = nullptr;
  size_t transactions_peak_ = 0;  // since memory was last given back (housekeeping)

  struct HostPort {
    std::string proto, host, port;  // host without brackets
  };
  std::string uri_for(const HostPort &hp) const;
  std::vector<HostPort> us_;

  auth::UsersFile users_;
  std::unique_ptr<auth::NonceManager> nonces_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  std::unique_ptr<RouteSigner> route_signer_;
  std::unique_ptr<auth::FailureLimiter> limiter_;  // null when authentication is off
  std::string stateless_tag_;                      // see Reply::set_stateless_tag
  LocationStore locations_;
  std::unique_ptr<LocationPersister> persister_;
  struct HeldReply {
    msg_t *request;  // a reference of our own (msg_ref_create)
    uint64_t seq;    // the journal write that must finish first
    std::string contacts;
  };
  std::deque<HeldReply> held_replies_;  // in seq order
  uint64_t committed_seq_ = 0;          // the last journal write finished
  su_wait_t journal_wait_[1] = {};
  int journal_registration_ = -1;
  StaticRecords static_records_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<MediaRelay> relay_;    // null when [module::MediaRelay] enabled = false
  std::unique_ptr<TcpConnections> tcp_;  // per-source limit, idle rule, registered flows
  ControlSocket control_;
};

}  // namespace portier::proxy
