// The nua side of being a SIP account, for portier-door and portier-monitor:
// nua itself, the REGISTER and its refreshes, answering digest challenges
// (sofia-sip's own auth client answers those it holds the request for, MD5
// alone; our client the 401s it gives up on, any with SHA-256:
// common/auth/digest_client.h; credentials()), trying again after a failed
// registration, unregistering before nua_shutdown, destroying handles once
// nua is done with them, and the trusted-hops check for requests that do not
// come through the proxy, with the proxy's proof of the asserted identity
// (common/auth/identity_proof.h), and a BYE, which ends a call only when it
// came through the proxy, and the MESSAGEs the device sends out of any call.
// Calls, INFO and the MESSAGEs it takes stay with the device: every other nua
// event goes to Hooks::event.
#pragma once

#include <glib.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/su_wait.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/account_config.h"
#include "common/auth/digest_client.h"
#include "common/auth/identity_proof.h"
#include "sip/sip_trusted_hops.h"
#include "tls/tls_transport.h"

namespace portier::sip {

class Account {
 public:
  struct Options {
    const char *agent;                // "door": log prefix and the 403's Warning agent
    const char *taken;                // "calls and messages": what only trusted hops may send
    const char *user_agent;           // "portier-door/0.1"
    const char *appl_method;          // the request nua leaves to the device to answer
    const char *supported = nullptr;  // the Supported header (null: nua's own)
  };

  struct Hooks {
    // Every nua event that is not the registration's or the shutdown's.
    std::function<void(nua_event_t event, int status, const char *phrase, nua_handle_t *nh,
                       const sip_t *sip, tagi_t *tags)>
        event;
    // A 2xx to REGISTER, refreshes too; `first` when we were not registered.
    std::function<void(bool first)> registered;
    // A REGISTER failed for good (`refused`: our credentials were not taken);
    // registered() is still what it was. Returns the seconds until we try again.
    std::function<int(int status, const char *phrase, bool refused)> registration_failed;
    // After each nua event, once the account and `event` have handled it.
    std::function<void()> changed;
    // A request inside a call was refused (403) and never reached `event`:
    // a BYE (vet_bye) or a re-INVITE (admit_in_dialog) that did not come
    // through the proxy. For the device's event line.
    std::function<void(const char *method, const std::string &source, const std::string &why)>
        refused;
  };

  Account(AccountSettings settings, Options options, Hooks hooks);
  ~Account();
  Account(const Account &) = delete;
  Account &operator=(const Account &) = delete;

  // Sets up the trusted hops, starts nua and registers.
  bool start(su_root_t *root, std::string *error);
  // Unregisters (answering the proxy's challenge), then shuts nua down, at
  // most 3 s later; `done` runs once nua has. End the calls first.
  void stop(std::function<void()> done);

  // Loads the TLS files of [account] again into nua's context, on nua's
  // thread (tls::reload): the next connection to the proxy uses them, the
  // current one and its calls stay. "" or what failed (the file named), the
  // old files still in use; both logged. A Daemon reload handler.
  std::string reload_tls();

  nua_t *nua() const { return nua_; }
  const AccountSettings &settings() const { return settings_; }
  bool registered() const { return registered_; }
  // The Contact our calls must carry instead of nua's own ("": nua's), set
  // when the REGISTER's carries URI parameters of its own
  // (AccountSettings::contact_params) once it is registered.
  const std::string &dialog_contact() const { return dialog_contact_; }
  // "not registered", "registered", "refused: ...", "503 Service Unavailable", ...
  // Over TLS, a refused proxy certificate is named at once (the REGISTER
  // itself only times out).
  std::string registration() const;

  // An out-of-dialog request nua reports now: true when it came through a
  // trusted hop; else it has been answered 403 (TrustedHops::admit) and its
  // handle is disposed of (an INVITE's when its call state ends, any other
  // once the event is over): the device only reports the refusal.
  // With [account] identity-proof (the default), it must also carry the
  // proxy's valid proof of its P-Asserted-Identity (proven_identity); *why,
  // when given, says why a request was refused; *identity, when given, gets
  // the sender's proven identity (proven_identity) when it is admitted.
  bool admit(nua_handle_t *nh, const char *method, std::string *source, std::string *why = nullptr,
             std::string *identity = nullptr);

  // Did the request nua reports now come from a trusted hop? For requests
  // inside a dialog, which come through the proxy's Record-Route (RFC 3261
  // §16.6 step 4) and carry no proof: the dialog's ids alone can be sniffed.
  bool from_trusted_hop(std::string *source) const {
    return trusted_.trusts_current_request(nua_, source);
  }
  // The same, for a request we answer ourselves: one that did not come
  // through the proxy gets 403 with a Warning (and a log line) here, and
  // goes to Hooks::refused.
  bool admit_in_dialog(nua_handle_t *nh, const char *method, std::string *source) const;

  // Who sent `sip` (a request) or answered (a response), as the proxy
  // asserted it (RFC 3325) and proved it to us with P-Portier-Proof: "" and
  // *why when there is no asserted identity or no valid proof (a spoofed
  // source, another local process, a replay). Without identity-proof: the
  // asserted identity, or a request's From (sipmsg::asserted_identity).
  std::string proven_identity(const sip_t *sip, std::string *why);

  // Sends a MESSAGE (RFC 3428) to `target` outside any call, answering its
  // challenge like any request's (credentials()); a failure is logged. Its
  // body (a door's code, an alarm) is wiped once it is answered.
  void send_message(const std::string &target, std::string body);

  // `nh` is ended: destroyed once nua reports its call state terminated (the
  // final response sent, the BYE or CANCEL done), never while nua needs it.
  void destroy_when_terminated(nua_handle_t *nh) { dying_.insert(nh); }

  // What to do about a 401/407 (credentials()).
  enum class Auth {
    resend,     // send the request again on the handle, with *tag = *header
    restarted,  // nua sends it again itself, with credentials: wait for its response
    refused,    // not answered (and logged): the request has failed
  };
  // Answers a 401/407 that `nh`'s `method` to `uri` got (`*tries` counts per
  // request). Refused, with one log line saying why, when we cannot or
  // should not answer it: no challenge we can answer, or a second one right
  // after ours (not stale), which means the password is wrong and retrying
  // would only lock us out.
  Auth credentials(nua_handle_t *nh, const sip_t *sip, int *tries, const char *method,
                   const std::string &uri, tag_type_t *tag, std::string *header);

 private:
  static void on_nua(nua_event_t event, int status, char const *phrase, nua_t *nua,
                     nua_magic_t *magic, nua_handle_t *nh, nua_hmagic_t *hmagic, sip_t const *sip,
                     tagi_t tags[]);
  // True when the event was the account's own.
  bool handle(nua_event_t event, int status, const char *phrase, nua_handle_t *nh,
              const sip_t *sip);
  void on_register(int status, const char *phrase, const sip_t *sip);
  void on_unregister(int status, const sip_t *sip);
  void do_register(tag_type_t auth_tag = nullptr, const std::string &auth = "");
  void set_dialog_contact(const sip_t *response);
  // The proxy over TLS: checks the files, writes sofia's directory.
  bool start_tls(std::string *error);
  void retry_register(int seconds);
  void shutdown_sip();
  void release_held_request(nua_handle_t *nh);
  void on_message_response(int status, const char *phrase, nua_handle_t *nh, const sip_t *sip);
  bool vet_bye(nua_handle_t *nh, int status);
  void answer_held_byes(nua_handle_t *nh);
  void forget_held_byes(nua_handle_t *nh);

  AccountSettings settings_;
  Options options_;
  Hooks hooks_;
  nua_t *nua_ = nullptr;
  std::unique_ptr<tls::Transport> tls_;  // the proxy over TLS, else null
  std::string proxy_host_;               // the name the proxy's certificate must carry
  TrustedHops trusted_;                                  // the proxy (and [account] trusted-hosts)
  std::unique_ptr<auth::IdentityProofVerifier> proofs_;  // null: identity-proof off
  auth::DigestClient digest_;
  std::set<nua_handle_t *> dying_;
  std::set<nua_handle_t *> releasing_;  // nua_authenticate() sent: its 904 is ours
  // Forged BYEs nua holds unanswered while their call lasts (vet_bye): a
  // reference to each request, per call handle.
  std::map<nua_handle_t *, std::vector<msg_t *>> held_byes_;

  // Registration.
  nua_handle_t *reg_ = nullptr;
  std::string registrar_;  // sip:DOMAIN, the REGISTER's Request-URI
  int reg_auth_tries_ = 0;
  guint reg_timer_ = 0;
  bool registered_ = false;
  std::string reg_status_ = "not registered";
  std::string dialog_contact_;

  // MESSAGEs on their way: to whom, the body (sent again when challenged)
  // and the challenges answered, per handle.
  struct Message {
    std::string target, body;
    int auth_tries = 0;
  };
  std::map<nua_handle_t *, Message> messages_;

  // Stopping.
  std::function<void()> on_shutdown_;
  bool stopping_ = false;  // unregistering before nua_shutdown
  guint stop_timer_ = 0;
};

}  // namespace portier::sip
