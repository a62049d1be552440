// Digest authentication at the SIP edge: finds the credentials for our realm in
// Authorization / Proxy-Authorization, lets auth::Authenticator decide, and writes
// the 401/407 challenges (one per algorithm, RFC 8760 §2.4).
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>

#include <cstring>

#include "common/log.h"
#include "proxy/proxy.h"

namespace portier::proxy {
namespace {

// A user name from the network, made safe for a log line (no quotes, no
// control characters, bounded), so a fail2ban filter can't be fooled.
std::string log_safe(const std::string &s) {
  std::string out;
  for (unsigned char c : s.substr(0, 64)) out += (c < 0x21 || c == '"' || c > 0x7e) ? '?' : c;
  return out;
}

std::string unquote(const char *v) {
  std::string s = v ? v : "";
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

// The host part of "udp:1.2.3.4:5060" / "udp:[::1]:5060", without brackets.
std::string source_host(const std::string &src) {
  size_t a = src.find(':'), b = src.rfind(':');
  std::string host = a == std::string::npos || b <= a ? src : src.substr(a + 1, b - a - 1);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  return host;
}

}  // namespace

bool Proxy::authenticate(Reply &reply, msg_t *msg, const sip_t *sip, bool registrar,
                         std::string *user_out) {
  const url_t *identity = registrar ? sip->sip_to->a_url : sip->sip_from->a_url;
  const std::string realm = identity->url_host ? identity->url_host : "";
  if (!settings_.auth_enabled) {
    *user_out = identity->url_user ? normalize_aor(identity->url_user, realm) : "";
    return true;
  }
  if (!is_auth_domain(realm.c_str())) {
    reply.send(403, "Domain not served here", TAG_END());
    return false;
  }

  // The credentials meant for our realm (a request may carry others too).
  const msg_auth_t *au = registrar ? sip->sip_authorization : sip->sip_proxy_authorization;
  const msg_auth_t *mine = nullptr;
  for (; au; au = au->au_next) {
    if (!au->au_scheme || strcasecmp(au->au_scheme, "Digest") != 0) continue;
    if (strcasecmp(unquote(msg_params_find(au->au_params, "realm=")).c_str(), realm.c_str()) == 0) {
      mine = au;
      break;
    }
  }
  auth::Credentials creds;
  bool parsed = false;
  if (mine) {
    std::vector<std::string_view> params;
    for (const msg_param_t *p = mine->au_params; p && *p; ++p) params.emplace_back(*p);
    parsed = auth::credentials_from_params(params, creds);
  }
  const int64_t now = static_cast<int64_t>(time(nullptr));
  auth::Authenticator::Result r;
  if (mine && !parsed) {
    r.outcome = auth::Authenticator::Outcome::Failed;
    r.reason = "malformed";
  } else {
    r = authenticator_->check(parsed ? &creds : nullptr, sip->sip_request->rq_method_name, realm,
                              now);
  }

  if (r.outcome == auth::Authenticator::Outcome::Ok) {
    // The digest user must be the identity it acts for: bob may not register
    // alice's AOR nor call as alice.
    std::string user = r.user;
    size_t at = user.find('@');
    if (at != std::string::npos) user = user.substr(0, at);
    if (!identity->url_user || user != identity->url_user) {
      const std::string src = source_of(msg);
      PLOG_WARN("auth failure: src=%s user=\"%s\" realm=\"%s\" method=%s reason=identity-mismatch",
                source_host(src).c_str(), log_safe(r.user).c_str(), log_safe(realm).c_str(),
                sip->sip_request->rq_method_name);
      reply.send(403, "Identity mismatch", TAG_END());
      return false;
    }
    *user_out = normalize_aor(user, realm);
    return true;
  }

  if (r.outcome == auth::Authenticator::Outcome::Failed) {
    // One line per failure, fixed format, for fail2ban:
    //   auth failure: src=<HOST> user="..." realm="..." method=... reason=...
    const std::string src = source_of(msg);
    PLOG_WARN("auth failure: src=%s user=\"%s\" realm=\"%s\" method=%s reason=%s",
              source_host(src).c_str(), log_safe(r.user).c_str(), log_safe(realm).c_str(),
              sip->sip_request->rq_method_name, r.reason.c_str());
  }
  if (r.outcome == auth::Authenticator::Outcome::Stale && r.reason == "replay")
    PLOG_INFO(
        "auth: src=%s user=\"%s\" reused a nonce-count (a retransmission or a replay):"
        " challenged again",
        source_host(source_of(msg)).c_str(), log_safe(r.user).c_str());
  // Unknown users, wrong passwords and first attempts all get the same fresh
  // challenge, so the answer tells nothing about which users exist.
  const bool stale = r.outcome == auth::Authenticator::Outcome::Stale;
  std::vector<std::string> ch = authenticator_->challenges(realm, stale, now);
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

}  // namespace portier::proxy
