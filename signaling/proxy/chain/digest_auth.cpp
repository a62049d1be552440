#include "proxy/chain/digest_auth.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>

#include <cstring>

#include "common/ascii.h"
#include "common/auth/digest_uri.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/sip_text.h"
#include "proxy/location_store.h"
#include "sip/sip_message.h"

namespace portier::proxy::chain {
namespace {

// A user name from the network, made safe for a log line (no quotes, no
// control characters, bounded), so a fail2ban filter can't be fooled.
std::string log_safe(const std::string &s) {
  std::string out;
  for (unsigned char c : s.substr(0, 64)) out += (c < 0x21 || c == '"' || c > 0x7e) ? '?' : c;
  return out;
}

// What the admin can do about a failure that is not the client's fault.
const char *hint_for(const std::string &reason) {
  if (reason == "no-secret")
    return " (the users file has no secret for the algorithm the client chose: add a clrtxt:"
           " password, or the HA1 of that algorithm, or list only the algorithms stored in"
           " available-algorithms)";
  if (reason == "no-qop") return " (qop=auth is required: the client must support RFC 2617 qop)";
  // sipp, for one, puts the proxy's address there unless given -auth_uri.
  if (reason == "bad-uri")
    return " (the digest uri must be the Request-URI, RFC 2617 §3.2.2.5; sipp: -auth_uri)";
  return "";
}

// The summary lines of the log budget (FailureLimiter): what was left out, once.
void log_suppressed_failures(const std::string &address, uint64_t n) {
  PLOG_WARN("auth failures: %llu more failures from %s suppressed",
            static_cast<unsigned long long>(n), address.c_str());
}
void log_suppressed_unattributed(uint64_t n) {
  PLOG_INFO("auth: %llu more responses with a nonce not issued to their source suppressed",
            static_cast<unsigned long long>(n));
}

}  // namespace

void DigestAuth::log_auth_summaries() {
  // At most a few summary lines a second, however many addresses were busy.
  for (const auto &[address, n] : limiter_->take_suppressed(5)) log_suppressed_failures(address, n);
  if (const uint64_t n = limiter_->take_unattributed_suppressed()) log_suppressed_unattributed(n);
}

void DigestAuth::note_auth_failure(const std::string &address, const std::string &user,
                                   const std::string &realm, const char *method,
                                   const std::string &reason) {
  // A username with a domain (a user of another house) is that user, not one
  // of the realm's.
  const std::string user_key = user.empty() ? ""
                               : user.find('@') != std::string::npos
                                   ? log_safe(user)
                                   : log_safe(user) + "@" + log_safe(realm);
  const auth::FailureLimiter::Failure f = limiter_->failed(address, user_key, clock::wall_s());
  if (f.log) {
    if (f.suppressed) log_suppressed_failures(address, f.suppressed);
    // One line per failure, fixed format, for fail2ban (config/fail2ban/):
    //   auth failure: src=<HOST> user="..." realm="..." method=... reason=...
    PLOG_WARN("auth failure: src=%s user=\"%s\" realm=\"%s\" method=%s reason=%s%s",
              address.c_str(), log_safe(user).c_str(), log_safe(realm).c_str(), method,
              reason.c_str(), hint_for(reason));
  }
  if (f.banned)
    PLOG_WARN("auth: %s banned for %u s after %u failures (portierctl bans / unban %s)",
              address.c_str(), f.ban_seconds, settings_.failure_limits.max_failures,
              address.c_str());
  if (f.user_alarm)
    PLOG_WARN(
        "auth alarm: user=\"%s\" realm=\"%s\" failed %u times from %u address(es) within %u s:"
        " someone may be guessing its password (the user is not locked out)",
        log_safe(user).c_str(), log_safe(realm).c_str(), f.user_failures, f.user_sources,
        settings_.failure_limits.ban_seconds);
}

void DigestAuth::note_unbound_nonce(const std::string &address, const std::string &user,
                                    const char *method, const char *why) {
  const auth::FailureLimiter::LogLine l = limiter_->unattributed_log_line(clock::wall_s());
  if (!l.log) return;
  if (l.suppressed) log_suppressed_unattributed(l.suppressed);
  // Not an "auth failure:" line: fail2ban must not ban an address that anyone on
  // the LAN can forge.
  PLOG_INFO(
      "auth: src=%s user=\"%s\" method=%s: %s, challenged again; not counted against %s"
      " (the sender may have forged it)",
      address.c_str(), log_safe(user).c_str(), method, why, address.c_str());
}

Outcome DigestAuth::process(RequestContext &ctx) {
  // The cloud authenticated its user and we opened and verified the connection
  // (request_context.h: cloud_flow); a challenge would reach a phone that
  // holds no password of ours. Its From is the caller (asserted to our
  // devices as it is, RFC 3325 §4 within the trust domain we chose), except
  // a device of our users file: only our own digest proves those, so the
  // cloud cannot speak for the door or a monitor.
  if (!ctx.cloud_flow.empty()) {
    const url_t *from = ctx.sip->sip_from ? ctx.sip->sip_from->a_url : nullptr;
    const std::string aor = from ? sipmsg::url_aor(from) : std::string();
    if (aor.empty() || !from->url_user || !from->url_host) {
      ctx.reply.send(403, "No caller address", TAG_END());
      return Outcome::Respond;
    }
    if ((names_.is_auth_domain(from->url_host) || names_.is_reg_domain(from->url_host)) &&
        authenticator_->users().has_user(from->url_user, from->url_host)) {
      PLOG_WARN(
          "route: %s from %s down the cloud flow of %s refused: a device of this house "
          "authenticates here, not at the cloud",
          ctx.sip->sip_request->rq_method_name, log_safe(aor).c_str(), ctx.cloud_flow.c_str());
      ctx.reply.send(403, "A house device does not call from the cloud", TAG_END());
      return Outcome::Respond;
    }
    ctx.caller_aor = aor;
    return Outcome::Continue;
  }
  const url_t *from = ctx.sip->sip_from->a_url;
  if (house_ && !names_.is_auth_domain(from->url_host) &&
      house_->on_flow_of(ctx.reply.agent(), ctx.msg, from->url_host)) {
    ctx.caller_aor = normalize_aor(from->url_user ? from->url_user : "", from->url_host);
    ctx.house_flow = ascii::to_lower(from->url_host);
    return Outcome::Continue;
  }
  return authenticate(ctx.reply, ctx.msg, ctx.sip, false, &ctx.caller_aor) ? Outcome::Continue
                                                                           : Outcome::Respond;
}

bool DigestAuth::authenticate(Reply &reply, msg_t *msg, const sip_t *sip, bool registrar,
                              std::string *user_out, bool house_domain) {
  const url_t *identity = registrar ? sip->sip_to->a_url : sip->sip_from->a_url;
  const std::string realm = identity->url_host ? identity->url_host : "";
  // A house domain is no auth-domain of ours (the Registrar checked it is not
  // served here); its one user is the domain.
  const char *identity_user = house_domain ? identity->url_host : identity->url_user;
  if (!house_domain && !names_.is_auth_domain(realm.c_str())) {
    reply.send(403, "Domain not served here", TAG_END());
    return false;
  }

  // The credentials meant for our realm (a request may carry others too).
  const msg_auth_t *au = registrar ? sip->sip_authorization : sip->sip_proxy_authorization;
  const msg_auth_t *mine = nullptr;
  for (; au; au = au->au_next) {
    if (!au->au_scheme || strcasecmp(au->au_scheme, "Digest") != 0) continue;
    const char *r = msg_params_find(au->au_params, "realm=");
    if (ascii::iequals(siptext::strip_quotes(r ? r : ""), realm)) {
      mine = au;
      break;
    }
  }
  auth::Credentials creds;
  bool parsed = false;
  if (mine) {
    std::vector<std::string_view> params;
    params.reserve(16);
    for (const msg_param_t *p = mine->au_params; p && *p; ++p) params.emplace_back(*p);
    parsed = auth::credentials_from_params(params, creds);
  }
  const int64_t now = clock::wall_s();
  const char *method = sip->sip_request->rq_method_name;
  const std::string address = source_address(msg);

  // The nonce must have been issued to this source host (see nonce.h): only then
  // can a failure be held against the source. Anything else (a forged source
  // address with the attacker's own nonce, a nonce of another proxy or of an
  // earlier version, unreadable credentials) gets a fresh challenge, unchecked and
  // uncounted: not even the back-off of the address it claims applies. The
  // authenticator checks the nonce itself; here it is checked only where it decides
  // something first (back-off, digest uri), so the common path costs no extra MAC.
  bool unbound = mine && !parsed;
  if (unbound) note_unbound_nonce(address, "", method, "unreadable credentials");
  auto issued_elsewhere = [&] {
    if (!parsed || creds.realm != realm ||
        nonces_->check(creds.nonce, now, address) != auth::NonceManager::Check::Invalid)
      return false;
    note_unbound_nonce(address, creds.username, method,
                       "its nonce was not issued to this address (reason=bad-nonce)");
    return true;
  };
  if (mine && !unbound) {
    // An address that just failed waits (growing back-off) before its next
    // credentials are checked; attempts made meanwhile count as failures, so a
    // guesser reaches the ban fast. RFC 3261 §21.5.4: 503 with Retry-After tells a
    // real client when to come back.
    unsigned wait = 0;
    if (limiter_->admit(address, now, &wait) != auth::FailureLimiter::Verdict::Allow) {
      if (issued_elsewhere()) {
        unbound = true;
      } else {
        note_auth_failure(address, creds.username, realm, method, "backoff");
        const std::string retry = std::to_string(std::max(wait, 1u));
        reply.send(SIP_503_SERVICE_UNAVAILABLE, SIPTAG_RETRY_AFTER_STR(retry.c_str()), TAG_END());
        return false;
      }
    }
  }
  // RFC 2617 §3.2.2.5: the digest-uri must name the Request-URI, else a response
  // computed for another request would pass for this one; compared as URIs (RFC 3261
  // §19.1.4), since clients may spell the same URI differently.
  if (parsed && creds.realm == realm && !unbound) {
    // Printed on the stack; a longer one on the message's home.
    char buf[512];
    const isize_t n = url_e(buf, sizeof buf, sip->sip_request->rq_url);
    bool same = false;
    if (n >= 0 && static_cast<size_t>(n) < sizeof buf) {
      same = auth::same_sip_uri(creds.uri, std::string_view(buf, static_cast<size_t>(n)));
    } else if (char *ruri = url_as_string(msg_home(msg), sip->sip_request->rq_url)) {
      same = auth::same_sip_uri(creds.uri, ruri);
      su_free(msg_home(msg), ruri);
    }
    if (!same) {
      if (issued_elsewhere()) {
        unbound = true;
      } else {
        note_auth_failure(address, creds.username, realm, method, "bad-uri");
        reply.send(400, "Digest uri does not match the Request-URI", TAG_END());
        return false;
      }
    }
  }
  auth::Authenticator::Result r;
  if (!unbound) r = authenticator_->check(parsed ? &creds : nullptr, method, realm, now, address);

  if (r.outcome == auth::Authenticator::Outcome::Ok) {
    // The digest user must be the identity it acts for, domain included: bob may
    // not register alice's AOR nor call as alice, and alice of another domain is
    // not our alice.
    std::string user = r.user, domain = realm;
    const size_t at = user.find('@');
    if (at != std::string::npos) domain = user.substr(at + 1), user = user.substr(0, at);
    if (!identity_user || user != identity_user ||
        !ascii::iequals(domain, identity->url_host ? identity->url_host : "")) {
      note_auth_failure(address, r.user, realm, method, "identity-mismatch");
      reply.send(403, "Identity mismatch", TAG_END());
      return false;
    }
    limiter_->succeeded(address);
    if (user_out) *user_out = house_domain ? normalize_aor("", realm) : normalize_aor(user, realm);
    return true;
  }

  if (r.outcome == auth::Authenticator::Outcome::Failed) {
    // bad-nonce (forged, or issued to another host) is nobody's failure: the
    // source address is all that names the sender, and it may be forged.
    if (r.from_source)
      note_auth_failure(address, r.user, realm, method, r.reason);
    else
      note_unbound_nonce(address, r.user, method, r.reason.c_str());
  }
  if (r.outcome == auth::Authenticator::Outcome::Stale && r.reason == "replay") {
    // Retransmissions come in bursts, and replays as fast as an attacker sends them:
    // the same log budget as failure lines.
    const auth::FailureLimiter::LogLine l = limiter_->log_line(address, now);
    if (l.log) {
      if (l.suppressed) log_suppressed_failures(address, l.suppressed);
      PLOG_INFO(
          "auth: src=%s user=\"%s\" reused a nonce-count (a retransmission or a replay):"
          " challenged again",
          address.c_str(), log_safe(r.user).c_str());
    }
  }
  // Unknown users, wrong passwords and first attempts all get the same fresh
  // challenge, so the answer tells nothing about which users exist.
  const bool stale = r.outcome == auth::Authenticator::Outcome::Stale;
  // Bound to the address the challenge goes to: only that host can answer it.
  std::vector<std::string> ch = authenticator_->challenges(realm, stale, now, address);
  const char *c0 = ch.size() > 0 ? ch[0].c_str() : nullptr;
  const char *c1 = ch.size() > 1 ? ch[1].c_str() : nullptr;
  if (registrar) {
    reply.send(SIP_401_UNAUTHORIZED, TAG_IF(c0, SIPTAG_WWW_AUTHENTICATE_STR(c0)),
               TAG_IF(c1, SIPTAG_WWW_AUTHENTICATE_STR(c1)), TAG_END());
  } else {
    reply.send(SIP_407_PROXY_AUTH_REQUIRED, TAG_IF(c0, SIPTAG_PROXY_AUTHENTICATE_STR(c0)),
               TAG_IF(c1, SIPTAG_PROXY_AUTHENTICATE_STR(c1)), TAG_END());
  }
  return false;
}

}  // namespace portier::proxy::chain
