// REGISTER at the SIP edge (RFC 3261 §10.3): authenticate, turn the request into
// a RegisterRequest for the LocationStore, answer with every current binding.
#include <sofia-sip/msg_header.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>

#include <cmath>
#include <cstdlib>
#include <ctime>

#include "common/log.h"
#include "proxy/proxy.h"

namespace portier::proxy {
namespace {

std::string url_string(const url_t *url) {
  char buf[512];
  isize_t n = url_e(buf, sizeof buf, url);
  if (n <= 0 || n >= static_cast<isize_t>(sizeof buf)) return "";
  return std::string(buf, static_cast<size_t>(n));
}

}  // namespace

void Proxy::handle_register(Reply &reply, msg_t *msg, const sip_t *sip) {
  const url_t *to = sip->sip_to->a_url;
  if (!to->url_user || !to->url_host) {
    reply.send(400, "To must name a user", TAG_END());
    return;
  }
  if (!is_reg_domain(to->url_host)) {
    reply.send(403, "Domain not served here", TAG_END());
    return;
  }
  std::string user;
  if (!authenticate(reply, msg, sip, true, &user)) return;

  RegisterRequest req;
  req.aor = normalize_aor(to->url_user, to->url_host);
  req.call_id = sip->sip_call_id->i_id;
  req.cseq = sip->sip_cseq->cs_seq;
  req.now = now_rounded_up();
  req.received = source_of(msg);
  if (sip->sip_user_agent && sip->sip_user_agent->g_string)
    req.user_agent = sip->sip_user_agent->g_string;
  if (sip->sip_expires) req.expires_header = static_cast<int>(sip->sip_expires->ex_delta);
  for (const sip_contact_t *m = sip->sip_contact; m; m = m->m_next) {
    if (m->m_url->url_type == url_any) {
      req.wildcard = true;
      if (sip->sip_contact->m_next) req.contacts.push_back({});  // '*' plus others: invalid
      continue;
    }
    ContactSpec c;
    c.uri = url_string(m->m_url);
    if (c.uri.empty()) {
      reply.send(400, "Bad Contact", TAG_END());
      return;
    }
    if (const char *inst = msg_params_find(m->m_params, "+sip.instance=")) {
      // Kept without its quotes: "<urn:uuid:...>" is what lists and logs show.
      c.instance = inst;
      if (c.instance.size() >= 2 && c.instance.front() == '"' && c.instance.back() == '"')
        c.instance = c.instance.substr(1, c.instance.size() - 2);
    }
    if (m->m_expires) c.expires = std::atoi(m->m_expires);
    if (m->m_q) c.q_milli = static_cast<int>(std::lround(std::atof(m->m_q) * 1000));
    req.contacts.push_back(std::move(c));
  }

  RegisterOutcome out = locations_.apply(req);
  if (out.status == 423) {
    char min[16];
    snprintf(min, sizeof min, "%d", out.min_expires);
    reply.send(SIP_423_INTERVAL_TOO_BRIEF, SIPTAG_MIN_EXPIRES_STR(min), TAG_END());
    return;
  }
  if (out.status != 200) {
    reply.send(out.status, out.phrase.c_str(), TAG_END());
    return;
  }
  // §10.3 step 8: the 200 lists every current binding with its expiry.
  std::string contacts;
  for (const auto &b : out.bindings) {
    if (!contacts.empty()) contacts += ", ";
    contacts += "<" + b.contact + ">;expires=" + std::to_string(b.expires_at - req.now);
    if (b.q_milli != 1000) {
      char q[16];
      snprintf(q, sizeof q, ";q=%.3g", b.q_milli / 1000.0);
      contacts += q;
    }
    if (!b.instance.empty()) contacts += ";+sip.instance=\"" + b.instance + "\"";
  }
  su_home_t home[1] = {SU_HOME_INIT(home)};
  sip_contact_t *m = contacts.empty() ? nullptr : sip_contact_make(home, contacts.c_str());
  reply.send(SIP_200_OK, TAG_IF(m, SIPTAG_CONTACT(m)), SIPTAG_DATE(sip_date_create(home, 0)),
             TAG_END());
  su_home_deinit(home);
  PLOG_DEBUG("registrar: %s now has %zu binding(s) (from %s)", req.aor.c_str(), out.bindings.size(),
             req.received.c_str());
  return;
}

}  // namespace portier::proxy
