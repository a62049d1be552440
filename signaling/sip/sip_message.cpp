#include "sip/sip_message.h"

#include <arpa/inet.h>
#include <glib.h>
#include <netinet/in.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/sip_extra.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_tagarg.h>

#include <cctype>
#include <cstring>

#include "common/ascii.h"
#include "common/sip_address.h"
#include "common/sip_text.h"

namespace portier::sipmsg {
namespace {

// A token from the network, fit for a log line: token characters only, short.
std::string log_token(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (out.size() == 32) return out + "...";
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_') out += c;
  }
  return out;
}

}  // namespace

const char *address_text(const struct sockaddr *sa, char *buf) {
  if (sa && sa->sa_family == AF_INET) {
    const auto *a = reinterpret_cast<const unsigned char *>(
        &reinterpret_cast<const struct sockaddr_in *>(sa)->sin_addr);
    char *p = buf;
    for (int i = 0; i < 4; ++i) {
      const unsigned v = a[i];
      if (v >= 100) *p++ = static_cast<char>('0' + v / 100);
      if (v >= 10) *p++ = static_cast<char>('0' + v / 10 % 10);
      *p++ = static_cast<char>('0' + v % 10);
      *p++ = i < 3 ? '.' : '\0';
    }
    return buf;
  }
  if (sa && sa->sa_family == AF_INET6 &&
      inet_ntop(AF_INET6, &reinterpret_cast<const struct sockaddr_in6 *>(sa)->sin6_addr, buf,
                kAddressTextSize))
    return buf;
  return strcpy(buf, "?");
}

int reply_stateless(nta_agent_t *agent, msg_t *request, int status, char const *phrase,
                    char const *to_tag, tag_type_t tag, tag_value_t value, ...) {
  const sip_t *req = sip_object(request);
  msg_t *reply = req ? nta_msg_create(agent, 0) : nullptr;
  sip_t *rsip = sip_object(reply);
  if (!rsip) {
    msg_destroy(reply);
    return -1;
  }
  // The copies point into the request: the reply holds it until sent.
  msg_set_parent(reply, request);
  su_home_t *home = msg_home(reply);
  auto copy = [&](const void *from, msg_hclass_t *hc) {
    msg_header_t *h =
        from ? msg_header_copy_as(home, hc, static_cast<const msg_header_t *>(from)) : nullptr;
    if (h) msg_header_insert(reply, reinterpret_cast<msg_pub_t *>(rsip), h);
    return h;
  };
  // Values sharing one line ("Via: a, b") print together, from the first one's
  // text; once nta changed one (received=, rport=) each is printed afresh.
  if (msg_header_t *via = copy(req->sip_via, sip_via_class)) {
    bool reprint = false;
    for (msg_header_t *v = via; v; v = v->sh_next) reprint |= !v->sh_data || !v->sh_len;
    for (msg_header_t *v = via; reprint && v; v = v->sh_next) msg_fragment_clear(v->sh_common);
  }
  copy(req->sip_from, sip_from_class);
  copy(req->sip_call_id, sip_call_id_class);
  copy(req->sip_cseq, sip_cseq_class);
  copy(req->sip_to, sip_to_class);
  if (status > 100 && to_tag && rsip->sip_to && !rsip->sip_to->a_tag)
    sip_to_tag(home, rsip->sip_to, to_tag);
  ta_list ta;
  ta_start(ta, tag, value);
  // nta takes both messages, a reference of its own to the request.
  const int r =
      nta_msg_mreply(agent, reply, rsip, status, phrase, msg_ref_create(request), ta_tags(ta));
  ta_end(ta);
  return r;
}

std::string url_aor(const url_t *u) {
  if (!u || !u->url_user || !u->url_host) return "";
  return parse_aor(std::string("sip:") + u->url_user + "@" + u->url_host);
}

std::string asserted_identity(const sip_t *sip, bool response) {
  if (const sip_p_asserted_identity_t *paid = sip_p_asserted_identity(sip)) {
    for (; paid; paid = paid->paid_next) {
      std::string aor = url_aor(paid->paid_url);
      if (!aor.empty()) return aor;
    }
  }
  if (response) return "";
  return sip && sip->sip_from ? url_aor(sip->sip_from->a_url) : "";
}

std::string url_string(const url_t *u) {
  if (!u) return "";
  char buf[512];
  const isize_t n = url_e(buf, sizeof buf, u);
  return n > 0 && static_cast<size_t>(n) < sizeof buf ? std::string(buf, n) : std::string();
}

std::string bare_host(const url_t *u) {
  return u && u->url_host ? std::string(siptext::strip_brackets(u->url_host)) : std::string();
}

std::string contact_uri(const sip_t *sip) {
  if (!sip || !sip->sip_contact || !sip->sip_contact->m_url->url_host) return "";
  return url_string(sip->sip_contact->m_url);
}

bool body_is(const sip_t *sip, const char *type) {
  return sip && sip->sip_payload && sip->sip_content_type && sip->sip_content_type->c_type &&
         ascii::iequals(sip->sip_content_type->c_type, type);
}

std::string body(const sip_t *sip) {
  return sip && sip->sip_payload ? std::string(sip->sip_payload->pl_data, sip->sip_payload->pl_len)
                                 : std::string();
}

std::vector<auth::Challenge> challenges(const sip_t *sip, bool *proxy_auth, bool *stale,
                                        std::string *offered) {
  *proxy_auth = !sip->sip_www_authenticate;
  *stale = false;
  if (offered) offered->clear();
  const msg_auth_t *au = *proxy_auth ? sip->sip_proxy_authenticate : sip->sip_www_authenticate;
  std::vector<auth::Challenge> usable;
  for (; au; au = au->au_next) {
    std::vector<std::string_view> params;
    std::string algorithm;
    for (const char *const *p = au->au_params; p && *p; ++p) {
      params.emplace_back(*p);
      if (ascii::istarts_with(params.back(), "algorithm="))
        algorithm = std::string(params.back().substr(10));
    }
    if (offered) {
      if (!offered->empty()) *offered += ", ";
      *offered += log_token(au->au_scheme ? au->au_scheme : "?");
      if (!algorithm.empty()) *offered += " " + log_token(algorithm);
    }
    if (auto c = auth::parse_challenge(au->au_scheme ? au->au_scheme : "", params)) {
      *stale = *stale || c->stale;
      usable.push_back(*c);
    }
  }
  return usable;
}

void destroy_when_idle(nua_handle_t *nh) {
  g_idle_add(
      [](gpointer h) -> gboolean {
        nua_handle_destroy(static_cast<nua_handle_t *>(h));
        return G_SOURCE_REMOVE;
      },
      nh);
}

}  // namespace portier::sipmsg
