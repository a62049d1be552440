#include "sip/sip_message.h"

#include <arpa/inet.h>
#include <glib.h>
#include <netinet/in.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/sip_extra.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_tagarg.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string_view>

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

// A header sofia sends as the line given: msg_headers_prepare() skips a header
// whose text (sh_data) is set. The struct's fields stay empty, so only headers
// nothing reads before the send take this way (see kTextHeaders): they cost no
// parse of a value we just printed, and no snprintf to print it again.
msg_header_t *text_header(su_home_t *home, msg_hclass_t *hc, std::string_view value) {
  const std::string_view name = hc->hc_name ? hc->hc_name : "";
  const size_t size = name.size() + (name.empty() ? 0 : 2) + value.size() + 2;
  msg_header_t *h = msg_header_alloc(home, hc, static_cast<isize_t>(size + 1));
  if (!h) return nullptr;
  char *text = reinterpret_cast<char *>(h) + hc->hc_size;
  char *p = text;
  if (!name.empty()) {
    p = std::copy(name.begin(), name.end(), p);
    *p++ = ':';
    *p++ = ' ';
  }
  p = std::copy(value.begin(), value.end(), p);
  *p++ = '\r';
  *p++ = '\n';
  *p = '\0';
  h->sh_data = text;
  h->sh_len = size;
  return h;
}

// The string headers our answers carry that neither nta nor tport reads on the
// way out: sent as given (text_header) instead of parsed and printed again.
bool is_text_header(const msg_hclass_t *hc) {
  return hc == sip_www_authenticate_class || hc == sip_proxy_authenticate_class ||
         hc == sip_contact_class || hc == sip_unsupported_class || hc == sip_retry_after_class ||
         hc == sip_min_expires_class || hc == sip_allow_class || hc == sip_accept_class;
}

// "Date: Sun, 06 Dec 2026 17:03:28 GMT": printed once a second, as sofia
// prints it, instead of once per answer (snprintf, an eighth of a 200's cost).
msg_header_t *date_header(su_home_t *home, sip_time_t t) {
  thread_local sip_time_t cached_time = 0;
  thread_local char cached[64];
  thread_local size_t cached_len = 0;
  if (cached_time != t || cached_len == 0) {
    sip_date_t d[1];
    sip_date_init(d);
    d->d_time = t;
    const issize_t n = sip_date_e(cached, sizeof cached, reinterpret_cast<msg_header_t *>(d), 0);
    if (n <= 0 || static_cast<size_t>(n) >= sizeof cached) return nullptr;
    cached_len = static_cast<size_t>(n);
    cached_time = t;
  }
  msg_header_t *h = text_header(home, sip_date_class, std::string_view(cached, cached_len));
  if (h) reinterpret_cast<sip_date_t *>(h)->d_time = t;
  return h;
}

// The status line as sip_status_e() prints it ("SIP/2.0 401 Unauthorized").
sip_status_t *status_line(su_home_t *home, int status, const char *phrase) {
  if (!phrase) phrase = sip_status_phrase(status);
  if (!phrase) phrase = "";
  const size_t plen = strlen(phrase);
  constexpr size_t kHead = sizeof "SIP/2.0 200 " - 1;
  // The line, then the phrase alone (st_phrase).
  msg_header_t *h =
      msg_header_alloc(home, sip_status_class, static_cast<isize_t>(kHead + 2 * plen + 3));
  if (!h) return nullptr;
  char *text = reinterpret_cast<char *>(h) + sip_status_class->hc_size;
  memcpy(text, "SIP/2.0 ", 8);
  text[8] = static_cast<char>('0' + status / 100);
  text[9] = static_cast<char>('0' + status / 10 % 10);
  text[10] = static_cast<char>('0' + status % 10);
  text[11] = ' ';
  memcpy(text + kHead, phrase, plen);
  memcpy(text + kHead + plen, "\r\n", 2);
  char *copy = text + kHead + plen + 2;
  memcpy(copy, phrase, plen + 1);
  auto *st = reinterpret_cast<sip_status_t *>(h);
  st->st_version = sip_version_2_0;
  st->st_status = status;
  st->st_phrase = copy;
  h->sh_data = text;
  h->sh_len = kHead + plen + 2;
  return st;
}

// Gives a copied To the tag `tag` (which outlives the answer). The To goes out
// as it came with ";tag=..." added before its CRLF, which RFC 3261 §20.39 takes
// for the same header as sofia's reprint of it; a To without its text gets the
// parameter, and is printed again.
void add_to_tag(su_home_t *home, sip_to_t *to, const char *tag) {
  const size_t n = strlen(tag);
  const char *line = static_cast<const char *>(to->a_common->h_data);
  const size_t len = to->a_common->h_len;
  if (line && len > 2 && line[len - 2] == '\r' && line[len - 1] == '\n') {
    const size_t size = len - 2 + 5 + n + 2;
    if (char *text = static_cast<char *>(su_alloc(home, size + 1))) {
      char *p = std::copy(line, line + len - 2, text);
      p = std::copy_n(";tag=", 5, p);
      p = std::copy(tag, tag + n, p);
      memcpy(p, "\r\n", 3);
      to->a_common->h_data = text;
      to->a_common->h_len = size;
      // What nta reads (a tagged To gets no tag of its own); a_params stays
      // as received, as nothing prints this To again.
      to->a_tag = tag;
      return;
    }
  }
  // The parameter as sip_to_tag() would make it, without its su_sprintf.
  if (char *param = static_cast<char *>(su_alloc(home, n + 5))) {
    memcpy(param, "tag=", 4);
    memcpy(param + 4, tag, n + 1);
    msg_header_replace_param(home, to->a_common, param);
  }
}

}  // namespace

const char *address_text(const struct sockaddr *sa, char *buf) {
  if (sa && sa->sa_family == AF_INET) {
    siptext::ipv4_text(reinterpret_cast<const unsigned char *>(
                           &reinterpret_cast<const struct sockaddr_in *>(sa)->sin_addr),
                       buf);
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
    add_to_tag(home, rsip->sip_to, to_tag);
  // The status line, "Content-Length: 0" and the empty line as text: nta
  // completes the response only with what is missing, and sofia keeps a
  // Content-Length whose value is right as it is (a body makes it print anew).
  if (status >= 100 && status <= 699) rsip->sip_status = status_line(home, status, phrase);
  if (msg_header_t *h = text_header(home, sip_content_length_class, "0"))
    rsip->sip_content_length = reinterpret_cast<sip_content_length_t *>(h);
  if (msg_header_t *h = text_header(home, sip_separator_class, "")) {
    auto *sep = reinterpret_cast<sip_separator_t *>(h);
    memcpy(sep->sep_data, "\r\n", 3);
    rsip->sip_separator = sep;
  }

  ta_list ta;
  ta_start(ta, tag, value);
  // What can go as text is added here; nta adds the rest as usual (past
  // kMaxTags of it, everything that follows).
  constexpr size_t kMaxTags = 16;
  tagi_t rest[kMaxTags + 1];
  size_t n = 0;
  const tagi_t *t = ta_args(ta);
  for (; t && n < kMaxTags; t = tl_next(t)) {
    if (!t->t_tag) continue;
    msg_header_t *h = nullptr;
    if (t->t_tag->tt_class == sipstrtag_class && t->t_value &&
        is_text_header(reinterpret_cast<msg_hclass_t *>(t->t_tag->tt_magic))) {
      const char *v = reinterpret_cast<const char *>(t->t_value);
      if (*v && !strpbrk(v, "\r\n"))
        h = text_header(home, reinterpret_cast<msg_hclass_t *>(t->t_tag->tt_magic), v);
    } else if (t->t_tag == siptag_date && t->t_value) {
      h = date_header(home, reinterpret_cast<const sip_date_t *>(t->t_value)->d_time);
    }
    if (h)
      msg_header_insert(reply, reinterpret_cast<msg_pub_t *>(rsip), h);
    else
      rest[n++] = *t;
  }
  rest[n] = t ? tagi_t{TAG_NEXT(t)} : tagi_t{TAG_END()};
  // nta takes both messages, a reference of its own to the request.
  const int r =
      nta_msg_mreply(agent, reply, rsip, status, phrase, msg_ref_create(request), TAG_NEXT(rest));
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
