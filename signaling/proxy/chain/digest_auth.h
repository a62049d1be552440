// RFC 3261 §16.3 step 6 and §22: digest authentication at the SIP edge. Finds
// the credentials for our realm in Authorization / Proxy-Authorization, lets
// auth::Authenticator decide, counts failures (auth::FailureLimiter) and writes
// the 401/407 challenges (one per algorithm, RFC 8760 §2.4). In the chain only
// when authentication is on (ClaimedCaller takes its place otherwise).
#pragma once

#include <string>

#include "common/auth/authenticator.h"
#include "common/auth/failure_limiter.h"
#include "proxy/chain/processor.h"
#include "proxy/house_domains.h"
#include "proxy/local_names.h"
#include "proxy/proxy_config.h"

namespace portier::proxy::chain {

class DigestAuth : public Processor {
 public:
  DigestAuth(const ProxySettings &settings, const LocalNames &names, auth::NonceManager &nonces,
             auth::Authenticator &authenticator, auth::FailureLimiter &limiter)
      : settings_(settings),
        names_(names),
        nonces_(&nonces),
        authenticator_(&authenticator),
        limiter_(&limiter) {}
  // Any request but REGISTER (the registrar authenticates its own, by To):
  // the caller's identity, by From, goes into ctx.caller_aor.
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "digest-auth"; }
  // Whole-domain registrations (null: off): a request from a house domain's
  // user on that house's own flow is the house's; it proved the domain when
  // it registered, and its users have no passwords here.
  void set_house_domains(const HouseDomains *house) { house_ = house; }

  // Digest check of a request; on anything but success it has already answered
  // (401/407/403/503) and returns false. `user_out` (may be null) gets the
  // authenticated user's AOR.
  // house_domain: a domain registration (To without a user part, a domain
  // we do not serve): the digest user must be the domain itself, in its realm.
  bool authenticate(Reply &reply, msg_t *msg, const sip_t *sip, bool registrar,
                    std::string *user_out, bool house_domain = false);
  // The summary lines of what the auth log budget left out (housekeeping).
  void log_auth_summaries();

 private:
  // A failed authentication: counts it, logs it within the log budget, bans.
  void note_auth_failure(const std::string &address, const std::string &user,
                         const std::string &realm, const char *method, const std::string &reason);
  // Credentials whose nonce was not issued to their source address: refused, logged
  // within a budget of their own, counted against nobody (the sender is unknown).
  void note_unbound_nonce(const std::string &address, const std::string &user, const char *method,
                          const char *why);

  const ProxySettings &settings_;
  const LocalNames &names_;
  auth::NonceManager *nonces_;
  auth::Authenticator *authenticator_;
  auth::FailureLimiter *limiter_;
  const HouseDomains *house_ = nullptr;
};

}  // namespace portier::proxy::chain
