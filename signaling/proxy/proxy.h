// portier-proxy: the sofia-sip nta edge of the in-house proxy. One nta agent with
// a default leg receives every request and runs it through the request chain
// (chain/build_chain.cpp: sanity, dialogs, domains, registrar, digest auth,
// targets), whose last step hands it to the router, which forks statefully (one
// nta_outgoing_t per branch, one nta_incoming_t per server transaction, RFC 3261
// §16). The decisions (bindings, digest, best response) are made by the plain
// C++ classes beside this file.
#pragma once

// clang-format off
#include "proxy/sofia.h"  // first: it sets sofia-sip's magic types
// clang-format on

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/auth/authenticator.h"
#include "common/auth/failure_limiter.h"
#include "common/control_table.h"
#include "common/event_writer.h"
#include "proxy/chain/digest_auth.h"
#include "proxy/chain/processor.h"
#include "proxy/chain/registrar.h"
#include "proxy/chain/reply.h"
#include "proxy/dialog_table.h"
#include "proxy/fork_aggregator.h"
#include "proxy/house_domains.h"
#include "proxy/local_names.h"
#include "proxy/location_persist.h"
#include "proxy/location_store.h"
#include "proxy/proxy_config.h"
#include "proxy/sofia.h"
#include "proxy/static_records.h"
#include "push/push_client.h"
#include "runtime/control_socket.h"
#include "tls/tls_transport.h"

namespace portier::proxy {

class CallObserver;
class DomainRegistrar;
class MediaRelay;
class Router;
class TcpConnections;

class Proxy {
 public:
  explicit Proxy(ProxySettings settings);
  ~Proxy();
  Proxy(const Proxy &) = delete;
  Proxy &operator=(const Proxy &) = delete;

  // Loads users, static records and saved registrations, opens the transports
  // and the control socket. Errors name the file or transport.
  bool start(su_root_t *root, std::string *error);
  // Loads every TLS transport's certificate, key and CA file again into its
  // live context (docs/TLS.md §6); "" or what failed (that transport keeps
  // what it had). A Daemon reload handler.
  std::string reload_tls();
  // Takes the users file, the static records, reg-domains, auth-domains,
  // group-addresses and inter-domain-requests of `fresh` (the config read
  // again), all or nothing: "" or what is wrong (FILE:LINE), the old set kept.
  // Registrations of users or domains no longer served are removed. A Daemon
  // reload handler; the other keys take a restart.
  std::string reload_policy(const ProxySettings &fresh);
  // What the control socket's "reload" runs (Daemon::reload).
  void set_reload(std::function<std::string()> reload) { reload_ = std::move(reload); }
  // Saves registrations and closes everything.
  void stop();

 private:
  // Record-Route value(s) for a request that came in on irq's transport, one per
  // target it goes out to (a URI, possibly with ;transport=). When the two transports
  // differ, two entries (RFC 5658 double record-routing): the callee-facing one
  // on top, so each side's first hop is our address on its own transport. Each
  // entry carries a signature over the dialog (see DialogValidator::route_signed).
  // RouterEnv::flow_for: the connection a device registered on.
  std::string flow_for(const url_t *target) const;
  // RouterEnv::domain_flow: the cloud's flow of a local domain we register,
  // else a registered house domain's open flow; "" when none.
  std::string domain_flow(const std::string &domain) const;
  std::vector<std::string> record_route_for(nta_incoming_t *irq, msg_t *msg,
                                            const std::vector<std::string> &targets);
  // The transport ("udp", "tcp", "tls") a URI asks for.
  static std::string transport_of(const url_t *url);

  static int on_message(void *self, nta_agent_t *agent, msg_t *msg, sip_t *sip);
  static int on_stray_response(void *self, nta_outgoing_t *orq, const sip_t *sip);
  static void on_housekeeping(su_root_magic_t *, su_timer_t *, void *self);
  static int on_journal_written(su_root_magic_t *, su_wait_t *, void *self);
  // The journal is compacted into the snapshot once it holds this much.
  static constexpr uint64_t kCompactJournalAfterBytes = 1 << 20;
  void give_back_memory();
  static constexpr size_t kTrimAfterTransactions = 1000;
  bool load_nonce_secret(std::string *secret, std::string *error);
  // The control socket's commands (portierctl help lists them).
  std::vector<control::Command> control_commands();
  std::string registrations_json() const;
  // RouterEnv::push: wakes target's device for the forked request sip.
  bool push_for(const chain::Target &target, const sip_t *sip, push::PushKind kind);
  std::string stats_json() const;
  std::string bans_json(int64_t now) const;
  std::string unban(const std::string &address);

  ProxySettings settings_;
  su_root_t *root_ = nullptr;
  nta_agent_t *agent_ = nullptr;
  nta_incoming_t *stateless_in_ = nullptr;
  nta_outgoing_t *stateless_out_ = nullptr;
  su_timer_t *housekeeping_ = nullptr;
  size_t transactions_peak_ = 0;  // since memory was last given back (housekeeping)

  using HostPort = LocalNames::HostPort;
  std::string uri_for(const HostPort &hp) const;
  LocalNames names_;

  auth::UsersFile users_;
  std::unique_ptr<auth::NonceManager> nonces_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  std::unique_ptr<RouteSigner> route_signer_;
  std::unique_ptr<auth::FailureLimiter> limiter_;  // null when authentication is off
  std::string stateless_tag_;                      // see Reply::set_stateless_tag
  LocationStore locations_;
  std::unique_ptr<LocationPersister> persister_;
  su_wait_t journal_wait_[1] = {};
  int journal_registration_ = -1;
  StaticRecords static_records_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<MediaRelay> relay_;    // null when [module::MediaRelay] enabled = false
  std::unique_ptr<CallObserver> relay_observer_;  // the relay as the router sees it
  // Per entry of settings_.transports: the TLS transport's live context, or null.
  std::vector<std::unique_ptr<tls::Transport>> tls_;
  std::function<std::string()> reload_;
  std::unique_ptr<TcpConnections> tcp_;  // per-source limit, idle rule, registered flows
  std::unique_ptr<chain::DigestAuth> digest_auth_;  // null when authentication is off
  // [inter-domain-connections] accept-domain-registrations: the houses' flows.
  std::unique_ptr<HouseDomains> house_domains_;
  std::unique_ptr<chain::Registrar> registrar_;
  // [module::PushNotification] enabled: the providers' clients, on root_.
  // Destroyed first at stop: its callbacks touch the store and the journal.
  std::unique_ptr<push::PushClient> push_;
  // [inter-domain-connections] domain-registrations: our domains' flows to the
  // cloud; null when the file names none.
  std::unique_ptr<DomainRegistrar> domain_registrar_;
  chain::Chain chain_;  // the request policy (chain/build_chain.cpp)
  events::Writer events_;
  const control::Table commands_{control_commands()};
  ControlSocket control_;
};

}  // namespace portier::proxy
