// portier-proxy: the sofia-sip nta edge of the in-house proxy. One nta agent with
// a default leg receives every request; REGISTER goes to the registrar, everything
// else to the router, which forks statefully (one nta_outgoing_t per branch, one
// nta_incoming_t per server transaction, RFC 3261 §16). The decisions (bindings,
// digest, best response) are made by the plain C++ classes beside this file.
#pragma once

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
#include "common/control_socket.h"
#include "proxy/fork_aggregator.h"
#include "proxy/location_persist.h"
#include "proxy/location_store.h"
#include "proxy/proxy_config.h"
#include "proxy/static_records.h"

namespace portier::proxy {

class MediaRelay;

class Router;
class TcpConnections;

// Where the answer to a request goes: its server transaction when it has one,
// or straight back by its Via (RFC 3261 §18.2.2) for the requests portier
// answers statelessly: REGISTER (so a registration flood keeps no transaction
// state for 32 s), and stray ACK and CANCEL.
class Reply {
 public:
  Reply(nta_agent_t *agent, nta_incoming_t *irq, msg_t *request)
      : agent_(agent), irq_(irq), request_(request) {}
  void send(int status, char const *phrase, tag_type_t tag, tag_value_t value, ...);
  nta_incoming_t *irq() const { return irq_; }

 private:
  nta_agent_t *agent_;
  nta_incoming_t *irq_;
  msg_t *request_;
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
  // True when url names this proxy (one of our transports' host:port).
  bool is_us(const url_t *url) const;
  // Record-Route value(s) for a request that came in on irq's transport and goes
  // out to `target` (a URI, possibly with ;transport=). When the two transports
  // differ, two entries (RFC 5658 double record-routing): the callee-facing one
  // on top, so each side's first hop is our address on its own transport.
  std::string record_route_for(nta_incoming_t *irq, msg_t *msg, const std::string &target);
  // The transport ("udp", "tcp", "tls") a URI asks for.
  static std::string transport_of(const url_t *url);

  // Digest check of a request; on anything but success it has already answered
  // (401/407/403) and returns false. `user_out` gets the authenticated user.
  bool authenticate(Reply &reply, msg_t *msg, const sip_t *sip, bool registrar,
                    std::string *user_out);
  // "udp:127.0.0.1:5070" / "udp:[::1]:5070" style source of a message, for logs and bindings.
  static std::string source_of(msg_t *msg);

  // Wall-clock seconds rounded up, for registrations and their listing: a
  // binding may outlive its interval by under a second but never expires before
  // it (RFC 3261 §10.2.1), and the listing never shows more than was granted.
  static int64_t now_rounded_up();

  void handle_register(Reply &reply, msg_t *msg, const sip_t *sip);

 private:
  static int on_message(void *self, nta_agent_t *agent, msg_t *msg, sip_t *sip);
  static int on_stray_response(void *self, nta_outgoing_t *orq, const sip_t *sip);
  static void on_housekeeping(su_root_magic_t *, su_timer_t *, void *self);
  void give_back_memory();
  static constexpr size_t kTrimAfterTransactions = 1000;
  // Returns true when the router keeps reply.irq() (a transaction runs).
  bool dispatch(Reply &reply, msg_t *msg, const sip_t *sip);
  bool has_our_via(const sip_t *sip) const;
  bool load_nonce_secret(std::string *secret, std::string *error);

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
  LocationStore locations_;
  std::unique_ptr<LocationPersister> persister_;
  StaticRecords static_records_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<MediaRelay> relay_;  // null when [module::MediaRelay] enabled = false
  std::unique_ptr<TcpConnections> tcp_;  // per-source limit, idle rule, registered flows
  ControlSocket control_;
};

}  // namespace portier::proxy
