#include "common/sip_message.h"

#include <glib.h>
#include <sofia-sip/sip_extra.h>

#include "common/ascii.h"
#include "common/sip_address.h"

namespace portier::sipmsg {

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

bool body_is(const sip_t *sip, const char *type) {
  return sip && sip->sip_payload && sip->sip_content_type && sip->sip_content_type->c_type &&
         ascii::iequals(sip->sip_content_type->c_type, type);
}

std::string body(const sip_t *sip) {
  return sip && sip->sip_payload ? std::string(sip->sip_payload->pl_data, sip->sip_payload->pl_len)
                                 : std::string();
}

std::vector<auth::Challenge> challenges(const sip_t *sip, bool *proxy_auth, bool *stale) {
  *proxy_auth = !sip->sip_www_authenticate;
  *stale = false;
  const msg_auth_t *au = *proxy_auth ? sip->sip_proxy_authenticate : sip->sip_www_authenticate;
  std::vector<auth::Challenge> usable;
  for (; au; au = au->au_next) {
    std::vector<std::string_view> params;
    for (const char *const *p = au->au_params; p && *p; ++p) params.emplace_back(*p);
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
