#include "sip/sip_account.h"

#include <sofia-sip/auth_client.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_tag_io.h>
#include <sofia-sip/tport_tag.h>
#include <sofia-sip/url.h>
#include <strings.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <optional>

#include "common/clock.h"
#include "common/log.h"
#include "common/sip_address.h"
#include "common/sip_text.h"
#include "sip/sip_message.h"

namespace portier::sip {

namespace {

// Where the proxy's requests come from: URI's host, or its maddr
// (sips:NAME:PORT;maddr=ADDRESS: the certificate names NAME, which need not be
// in DNS; the proxy is at ADDRESS).
std::string proxy_hop(const std::string &proxy) {
  su_home_t home[1] = {SU_HOME_INIT(home)};
  const url_t *u = url_make(home, proxy_uri_for_sofia(proxy).c_str());
  char maddr[64];
  std::string hop = proxy;
  if (u && u->url_params && url_param(u->url_params, "maddr", maddr, sizeof maddr) > 0)
    hop = std::string(u->url_scheme ? u->url_scheme : "sip") + ":" + maddr +
          (u->url_port ? std::string(":") + u->url_port : "");
  su_home_deinit(home);
  return hop;
}

}  // namespace

Account::Account(AccountSettings settings, Options options, Hooks hooks)
    : settings_(std::move(settings)),
      options_(options),
      hooks_(std::move(hooks)),
      digest_(settings_.username, settings_.password) {}

Account::~Account() {
  for (auto &[nh, m] : messages_) std::fill(m.body.begin(), m.body.end(), '\0');
  for (auto &[nh, held] : held_byes_)
    for (msg_t *msg : held) msg_destroy(msg);
  if (reg_timer_) g_source_remove(reg_timer_);
  if (stop_timer_) g_source_remove(stop_timer_);
  // Our reference to nua's task goes first: the clone's end drops the
  // port's last one and asserts that it is the last (su_port_zapref).
  if (tls_) tls_->stack.reset();
  if (nua_) nua_destroy(nua_);
  std::error_code ignored;
  if (tls_) std::filesystem::remove_all(tls_->directory, ignored);
}

bool Account::start(su_root_t *root, std::string *error) {
  for (const std::string &hop : settings_.trusted_hosts)
    if (!trusted_.add(hop, error)) return false;
  if (!trusted_.add(proxy_hop(settings_.proxy), error)) return false;
  PLOG_INFO("%s: %s are taken from %s only%s", options_.agent, options_.taken,
            trusted_.describe().c_str(),
            settings_.identity_proof ? ", with the proxy's proof of identity" : "");
  if (settings_.identity_proof) {
    // The key is derived from the HA1 the proxy holds for our AOR (user and
    // realm = domain), whatever digest user name we log in with.
    const size_t at = settings_.aor.find('@');
    proofs_ = std::make_unique<auth::IdentityProofVerifier>(
        settings_.aor.substr(4, at - 4), settings_.aor.substr(at + 1), settings_.password);
  }
  if (settings_.proxy_tls && !start_tls(error)) return false;
  registrar_ = "sip:" + settings_.aor.substr(settings_.aor.find('@') + 1);
  // Over TLS the proxy sends its requests back on the connection we
  // registered on (it routes by the flow, RFC 5626 §5.3). We still listen on
  // the bind address: nua's client-only transport (sips:*:*, docs/TLS.md §7)
  // writes a Contact of "addr.is.invalid" that two devices of one AOR would
  // share, and a listening one gives each its own. Without a certificate of
  // ours nobody completes a handshake with it.
  std::string bind = settings_.bind;
  if (tls_) {
    bind = "sips:" + bind.substr(bind.find(':') + 1);
    bind = bind.substr(0, bind.find(';'));
  }
  const std::string proxy = proxy_uri_for_sofia(settings_.proxy);
  const char *tls_dir = tls_ ? tls_->directory.c_str() : nullptr;
  const int policy = tls_ && settings_.tls.verify_outgoing ? TPTLS_VERIFY_SUBJECTS_OUT : 0;
  std::optional<tls::Capture> capture;
  if (tls_) capture.emplace();
  nua_ = nua_create(
      root, on_nua, reinterpret_cast<nua_magic_t *>(this), NUTAG_URL(bind.c_str()),
      NUTAG_PROXY(proxy.c_str()), NUTAG_REGISTRAR(registrar_.c_str()),
      SIPTAG_FROM_STR(settings_.aor.c_str()), NUTAG_MEDIA_ENABLE(0), NUTAG_AUTOALERT(0),
      NUTAG_AUTOANSWER(0), NUTAG_ALLOW("INFO, MESSAGE"), NUTAG_APPL_METHOD(options_.appl_method),
      // nua would answer a BYE 200 and end the call before we
      // see it; we answer it ourselves (vet_bye).
      NUTAG_APPL_METHOD("BYE"), NUTAG_M_USERNAME(settings_.username.c_str()),
      // nua's auth client adds its credentials only to a request
      // it sends again after a challenge, never to ours: with
      // the default (every request of a dialog) it replaced the
      // Authorization we wrote with its own, MD5, after it had
      // answered one MD5 challenge on the handle.
      NUTAG_AUTH_CACHE(nua_auth_cache_challenged),
      TAG_IF(options_.supported, SIPTAG_SUPPORTED_STR(options_.supported)),
      SIPTAG_USER_AGENT_STR(options_.user_agent),
      // The proxy reaches us on our connection whatever the
      // Contact says: nua must not rewrite it from Via's
      // received/rport (a new REGISTER each time it changes).
      TAG_IF(tls_, NUTAG_OUTBOUND("no-natify no-validate no-options-keepalive")),
      TAG_IF(tls_, TPTAG_CERTIFICATE(tls_dir)), TAG_IF(tls_, TPTAG_TLS_VERIFY_POLICY(policy)),
      TAG_IF(tls_, TPTAG_TLS_VERIFY_DEPTH(4)), TAG_END());
  if (!nua_) {
    *error = "cannot start SIP on " + bind + " (address in use or not ours?)";
    return false;
  }
  if (tls_) {
    const std::vector<SSL_CTX *> made = capture->contexts();
    tls_->stack = capture->stack();
    capture.reset();
    // Hardened on nua's thread, where the transport may already be taking a
    // connection on its listening port.
    bool adopted = false;
    if (!tls::in_stack_thread(*tls_, [&] {
          adopted = tls::adopt(tls_.get(), made, settings_.tls.ciphers_changed(), error);
        })) {
      *error = tls_->name + ": nua's thread cannot be reached";
      return false;
    }
    if (!adopted) return false;
    tls::expect_server_name(*tls_, proxy_host_);
  }
  // On the registration's handle only: a push token (RFC 8599 §4.1.1) and the
  // instance id (RFC 5626 §4.1) belong in the REGISTER's Contact, not in the
  // Contact of every dialog, which the door and every proxy log would see.
  const std::string &features = settings_.contact_features;
  const std::string &params = settings_.contact_params;
  reg_ = nua_handle(nua_, nullptr, SIPTAG_TO_STR(settings_.aor.c_str()),
                    TAG_IF(!features.empty(), NUTAG_M_FEATURES(features.c_str())),
                    TAG_IF(!params.empty(), NUTAG_M_PARAMS(params.c_str())), TAG_END());
  do_register();
  PLOG_INFO("%s %s: registering through %s", options_.agent, settings_.aor.c_str(),
            settings_.proxy.c_str());
  return true;
}

std::string Account::reload_tls() {
  if (!tls_) return "";
  std::string report, failed;
  if (!tls::reload(tls_.get(), tls_->settings.files, &report, &failed)) {
    PLOG_ERROR("tls: reload refused, the old files are still used: %s", failed.c_str());
    return failed;
  }
  PLOG_INFO("tls: reloaded %s", report.c_str());
  return "";
}

std::string Account::registration() const {
  const std::string refusal = tls_ && !registered_ ? tls::last_refusal() : "";
  if (refusal.empty()) return reg_status_;
  return reg_status_ + " (TLS: the proxy's certificate was refused: " + refusal + ")";
}

bool Account::start_tls(std::string *error) {
  tls_ = std::make_unique<tls::Transport>();
  tls_->name = options_.agent + std::string(": TLS to ") + settings_.proxy;
  tls_->settings = settings_.tls;
  // A private directory for sofia's files (mode 0700): under systemd's
  // RuntimeDirectory= when there is one.
  const char *run = std::getenv("RUNTIME_DIRECTORY");
  std::string tmpl = std::string(run && *run ? run : "/tmp") + "/portier-tls-XXXXXX";
  if (!mkdtemp(tmpl.data())) {
    *error = tmpl + ": cannot make a directory for the TLS files: " + std::strerror(errno);
    return false;
  }
  tls_->directory = tmpl;
  if (!tls::prepare(tls_.get(), error)) return false;
  su_home_t home[1] = {SU_HOME_INIT(home)};
  const url_t *u = url_make(home, proxy_uri_for_sofia(settings_.proxy).c_str());
  proxy_host_ = u && u->url_host ? u->url_host : "";
  su_home_deinit(home);
  if (settings_.tls.verify_outgoing && is_ip_literal(proxy_host_))
    PLOG_WARN(
        "%s: the TLS proxy is named by its address %s: its certificate must carry it as a DNS "
        "subjectAltName or its CN (an IP subjectAltName never matches in sofia-sip); better "
        "sips:NAME:PORT;maddr=%s",
        options_.agent, proxy_host_.c_str(), proxy_host_.c_str());
  PLOG_INFO("%s: TLS to the proxy, its certificate %s", options_.agent,
            settings_.tls.verify_outgoing
                ? ("checked against " + settings_.tls.files.ca_file + " for " + proxy_host_).c_str()
                : "NOT checked (tls-verify-outgoing = false)");
  return true;
}

void Account::do_register(tag_type_t auth_tag, const std::string &auth) {
  const std::string expires = std::to_string(settings_.register_expires);
  if (auth_tag)
    nua_register(reg_, SIPTAG_EXPIRES_STR(expires.c_str()), auth_tag, tag_str_v(auth.c_str()),
                 TAG_END());
  else
    nua_register(reg_, SIPTAG_EXPIRES_STR(expires.c_str()), TAG_END());
}

void Account::stop(std::function<void()> done) {
  on_shutdown_ = std::move(done);
  if (reg_timer_) g_source_remove(reg_timer_), reg_timer_ = 0;
  reg_auth_tries_ = 0;
  if (!nua_) {
    if (on_shutdown_) on_shutdown_();
    return;
  }
  if (!registered_ || !reg_) {
    nua_shutdown(nua_);  // ends dialogs; nua_r_shutdown follows
    return;
  }
  // Unregister first, answering the proxy's challenge (nua's own shutdown
  // gives up on it and the binding would stay until it expires), then shut
  // down; at most 3 s.
  stopping_ = true;
  nua_unregister(reg_, TAG_END());
  stop_timer_ = g_timeout_add_seconds(
      3,
      [](gpointer self) -> gboolean {
        auto *a = static_cast<Account *>(self);
        a->stop_timer_ = 0;
        a->shutdown_sip();
        return G_SOURCE_REMOVE;
      },
      this);
}

void Account::shutdown_sip() {
  if (!stopping_) return;
  stopping_ = false;
  if (stop_timer_) g_source_remove(stop_timer_), stop_timer_ = 0;
  nua_shutdown(nua_);  // ends dialogs; nua_r_shutdown follows
}

bool Account::admit(nua_handle_t *nh, const char *method, std::string *source, std::string *why,
                    std::string *identity) {
  bool ok = trusted_.admit(nua_, nh, options_.agent, method, source);
  if (!ok && why) *why = "not through the proxy";
  if (ok) {
    // A proof verifies once (a second look would call it a replay).
    msg_t *msg = nua_current_request(nua_);
    std::string reason;
    const std::string who = proven_identity(msg ? sip_object(msg) : nullptr, &reason);
    if (identity) *identity = who;
    if (proofs_ && who.empty()) {
      ok = false;
      PLOG_WARN("%s: %s from %s refused: %s", options_.agent, method, source->c_str(),
                reason.c_str());
      const std::string warning = siptext::warning(399, options_.agent, reason);
      nua_respond(nh, SIP_403_FORBIDDEN, NUTAG_WITH_THIS(nua_), SIPTAG_WARNING_STR(warning.c_str()),
                  TAG_END());
      if (why) *why = reason;
    }
  }
  if (ok) return true;
  if (std::strcmp(method, "INVITE") == 0)
    destroy_when_terminated(nh);
  else
    sipmsg::destroy_when_idle(nh);
  return false;
}

bool Account::admit_in_dialog(nua_handle_t *nh, const char *method, std::string *source) const {
  if (trusted_.admit(nua_, nh, options_.agent, method, source)) return true;
  if (hooks_.refused) hooks_.refused(method, *source, "not through the proxy");
  return false;
}

std::string Account::proven_identity(const sip_t *sip, std::string *why) {
  if (!sip) {
    *why = "no message";
    return "";
  }
  const bool response = sip->sip_status != nullptr;
  if (!proofs_) return sipmsg::asserted_identity(sip, response);
  // The proof is over the asserted identity alone: a request's From proves nothing.
  auth::ProofFields f;
  f.identity = sipmsg::asserted_identity(sip, true);
  if (f.identity.empty()) {
    *why = "no P-Asserted-Identity";
    return "";
  }
  f.call_id = sip->sip_call_id && sip->sip_call_id->i_id ? sip->sip_call_id->i_id : "";
  f.from_tag = sip->sip_from && sip->sip_from->a_tag ? sip->sip_from->a_tag : "";
  f.cseq = sip->sip_cseq ? sip->sip_cseq->cs_seq : 0;
  f.what = response ? std::to_string(sip->sip_status->st_status)
                    : std::string(sip->sip_request && sip->sip_request->rq_method_name
                                      ? sip->sip_request->rq_method_name
                                      : "");
  std::optional<std::string_view> header;
  for (const sip_unknown_t *u = sip->sip_unknown; u && !header; u = u->un_next)
    if (u->un_name && strcasecmp(u->un_name, auth::kIdentityProofHeader) == 0 && u->un_value)
      header = u->un_value;
  const auto result = proofs_->verify(header, f, clock::wall_s());
  if (result == auth::IdentityProofVerifier::Result::Valid) return f.identity;
  *why = auth::IdentityProofVerifier::result_name(result);
  return "";
}

namespace {

// True when nua holds this 401/407's request back: sofia-sip's own auth
// client (auc) took every challenge in it, which it does when it can answer
// them all (MD5), and nua then waits for nua_authenticate() to give it a
// password. With a challenge it cannot answer (SHA-256, in the Debian build)
// it refuses the lot, the request fails and we answer with a new one. The
// same library function decides here as in nua (nua_client.c), on a list of
// our own.
bool nua_holds(const sip_t *sip) {
  auto *home = static_cast<su_home_t *>(su_home_new(sizeof(su_home_t)));
  if (!home) return false;
  auth_client_t *auc = nullptr;
  int server = 0, proxy = 0;
  if (sip->sip_www_authenticate)
    server = auc_challenge(&auc, home, sip->sip_www_authenticate, sip_authorization_class);
  if (sip->sip_proxy_authenticate)
    proxy = auc_challenge(&auc, home, sip->sip_proxy_authenticate, sip_proxy_authorization_class);
  su_home_unref(home);
  return server >= 0 && proxy >= 0;
}

}  // namespace

Account::Auth Account::credentials(nua_handle_t *nh, const sip_t *sip, int *tries,
                                   const char *method, const std::string &uri, tag_type_t *tag,
                                   std::string *header) {
  bool proxy_auth = false, stale = false;
  std::string offered;
  const std::vector<auth::Challenge> usable =
      sip ? sipmsg::challenges(sip, &proxy_auth, &stale, &offered) : std::vector<auth::Challenge>();
  const bool held = sip && nua_holds(sip);
  if (!stale) ++*tries;
  const int status = sip && sip->sip_status ? sip->sip_status->st_status : 0;
  std::string why;
  if (usable.empty())
    why = "no Digest challenge with MD5 or SHA-256 and qop=auth (offered: " +
          (offered.empty() ? std::string("none") : offered) + ")";
  else if (*tries > 1)
    why = "wrong user name or password? (challenged again right after our credentials)";
  if (!why.empty()) {
    if (held) release_held_request(nh);  // else our next request would queue behind it
    // A REGISTER's failure is logged once by the device, with when it tries
    // again (Hooks::registration_failed); the reason goes with it.
    if (std::strcmp(method, "REGISTER") == 0)
      reg_status_ = "refused: " + why;
    else
      PLOG_ERROR("%s %s: cannot answer the %d to our %s to %s: %s", options_.agent,
                 settings_.aor.c_str(), status, method, uri.c_str(), why.c_str());
    return Auth::refused;
  }
  // nua holds the request: give it the password and it sends the request
  // again itself, on the same dialog usage, and answers the next challenges
  // on this handle from its cache (a registration's refreshes). Its
  // credentials string cannot carry a ':' in the password.
  if (held && settings_.password.find(':') == std::string::npos) {
    std::string creds = "Digest:" + auth::quoted_string(usable.front().realm) + ":" +
                        settings_.username + ":" + settings_.password;
    nua_authenticate(nh, NUTAG_AUTH(creds.c_str()), TAG_END());
    std::fill(creds.begin(), creds.end(), '\0');
    return Auth::restarted;
  }
  if (held) release_held_request(nh);
  digest_.challenged(usable);
  *tag = proxy_auth ? siptag_proxy_authorization_str : siptag_authorization_str;
  *header = digest_.authorization(method, uri);
  return Auth::resend;
}

// Ends a request nua holds for credentials (nua_holds) that we answer with a
// new request of our own, or not at all: nua_authenticate() without
// credentials ends it with 904, and that 904 is ours (on_nua drops it). Not
// for a registration's refresh: nua takes a 9xx for the end of the
// registration and unregisters.
void Account::release_held_request(nua_handle_t *nh) {
  releasing_.insert(nh);
  nua_authenticate(nh, TAG_END());
}

void Account::on_nua(nua_event_t event, int status, char const *phrase, nua_t *, nua_magic_t *magic,
                     nua_handle_t *nh, nua_hmagic_t *, sip_t const *sip, tagi_t *tags) {
  auto *self = reinterpret_cast<Account *>(magic);
  if (status == 904 && event != nua_i_state && self->releasing_.erase(nh)) {
    // The held request we ended (release_held_request): its call state
    // change still goes to the device, this response does not.
    if (self->hooks_.changed) self->hooks_.changed();
    return;
  }
  if (!self->handle(event, status, phrase, nh, sip) && self->hooks_.event)
    self->hooks_.event(event, status, phrase, nh, sip, tags);
  if (event == nua_i_state) {
    int state = nua_callstate_init;
    tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
    if (state == nua_callstate_terminated) self->answer_held_byes(nh);
    if (state == nua_callstate_terminated && self->dying_.erase(nh)) {
      self->releasing_.erase(nh);
      nua_handle_destroy(nh);
    }
  }
  if (self->hooks_.changed) self->hooks_.changed();
}

bool Account::handle(nua_event_t event, int status, const char *phrase, nua_handle_t *nh,
                     const sip_t *sip) {
  switch (event) {
    case nua_r_register:
      if (nh == reg_) on_register(status, phrase, sip);
      return true;
    case nua_r_unregister:
      if (nh == reg_) on_unregister(status, sip);
      return true;
    case nua_r_message:
      if (!messages_.count(nh)) return false;
      on_message_response(status, phrase, nh, sip);
      return true;
    case nua_i_bye:
      return !vet_bye(nh, status);
    case nua_i_cancel: {
      // Too late to refuse: nta answered the CANCEL 200 and nua the INVITE
      // 487 before this event (nta matches a CANCEL by the INVITE's Via
      // branch, RFC 3261 §9.2, which the LAN shows, not by its source), so
      // a CANCEL straight from another host stops our ringing. Say so.
      std::string source;
      if (!trusted_.trusts_current_request(nua_, &source))
        PLOG_WARN("%s: a CANCEL from %s, not through the proxy (%s), ended the ringing",
                  options_.agent, source.c_str(), trusted_.describe().c_str());
      return false;
    }
    case nua_r_shutdown:
      if (status >= 200) {
        PLOG_INFO("%s: SIP stopped", options_.agent);
        if (reg_) nua_handle_destroy(reg_), reg_ = nullptr;
        auto done = std::move(on_shutdown_);
        on_shutdown_ = nullptr;
        if (done) done();
      }
      return true;
    default:
      return false;
  }
}

void Account::send_message(const std::string &target, std::string body) {
  if (!nua_) return;
  nua_handle_t *nh = nua_handle(nua_, nullptr, SIPTAG_TO_STR(target.c_str()), TAG_END());
  Message &m = messages_[nh];
  m.target = target;
  m.body = std::move(body);
  nua_message(nh, SIPTAG_CONTENT_TYPE_STR("text/plain"), SIPTAG_PAYLOAD_STR(m.body.c_str()),
              TAG_END());
}

// The proxy challenges a MESSAGE like any request (RFC 3261 §22.3): answered
// once per new challenge, as an INVITE's is.
void Account::on_message_response(int status, const char *phrase, nua_handle_t *nh,
                                  const sip_t *sip) {
  auto it = messages_.find(nh);
  if (it == messages_.end() || status < 200) return;
  Message &m = it->second;
  if (status == 401 || status == 407) {
    tag_type_t tag;
    std::string header;
    const Auth a = credentials(nh, sip, &m.auth_tries, "MESSAGE", m.target, &tag, &header);
    if (a == Auth::restarted) return;  // nua sends it again itself
    if (a == Auth::resend) {
      nua_message(nh, SIPTAG_CONTENT_TYPE_STR("text/plain"), SIPTAG_PAYLOAD_STR(m.body.c_str()),
                  tag, tag_str_v(header.c_str()), TAG_END());
      return;
    }
  } else if (status >= 300) {
    PLOG_WARN("%s: MESSAGE to %s: %d %s", options_.agent, m.target.c_str(), status,
              phrase ? phrase : "");
  }
  std::fill(m.body.begin(), m.body.end(), '\0');
  messages_.erase(it);
  nua_handle_destroy(nh);
}

// A BYE ends the call only when it came through the proxy: the dialog is
// record-routed (RFC 3261 §16.6 step 4, §12.2), so the peer's BYE always
// does, and one straight to our contact is anyone on the LAN who saw the
// dialog's Call-ID and tags (the LAN is not encrypted). nua leaves the BYE to
// us (NUTAG_APPL_METHOD), but whatever final response we give it, nua then
// ends the session (nua_bye_server_init marks the request terminating, and
// sofia-sip 1.12.11's nua_base_server_report removes the usage of a
// terminating request for any status). So the real BYE gets 200 and ends
// the call; a forged one is left unanswered while the call lasts, which ends
// nothing, and gets its 403 once the call is over (answer_held_byes), or 487
// from nua when the real BYE comes (RFC 3261 §15.1.2). At most kMaxHeldByes
// per call: past that a flood would only grow nua's memory, and we hang up.
// True when the device should see the BYE.
bool Account::vet_bye(nua_handle_t *nh, int status) {
  if (status >= 200) return true;  // nua answered it itself
  std::string source;
  if (trusted_.trusts_current_request(nua_, &source)) {
    forget_held_byes(nh);  // nua answers them 487 as it takes this one
    nua_respond(nh, SIP_200_OK, NUTAG_WITH_THIS(nua_), TAG_END());
    return true;
  }
  constexpr size_t kMaxHeldByes = 32;
  std::vector<msg_t *> &held = held_byes_[nh];
  if (msg_t *msg = nua_current_request(nua_)) held.push_back(msg_ref_create(msg));
  PLOG_WARN("%s: BYE from %s refused: not through the proxy (%s); the call goes on", options_.agent,
            source.c_str(), trusted_.describe().c_str());
  if (hooks_.refused) hooks_.refused("BYE", source, "not through the proxy");
  if (held.size() == kMaxHeldByes + 1) {
    PLOG_ERROR("%s: %zu forged BYEs in one call: hanging up", options_.agent, kMaxHeldByes + 1);
    nua_bye(nh, TAG_END());
  }
  return false;
}

// The call of `nh` is over: its forged BYEs get their 403. nua no longer ties
// them to the session (nua_session_usage_remove), so the answer ends nothing.
void Account::answer_held_byes(nua_handle_t *nh) {
  auto it = held_byes_.find(nh);
  if (it == held_byes_.end()) return;
  const std::string warning = siptext::warning(399, options_.agent, kNotThroughProxy);
  for (msg_t *msg : it->second) {
    nua_respond(nh, SIP_403_FORBIDDEN, NUTAG_WITH(msg), SIPTAG_WARNING_STR(warning.c_str()),
                TAG_END());
    msg_destroy(msg);
  }
  held_byes_.erase(it);
}

void Account::forget_held_byes(nua_handle_t *nh) {
  auto it = held_byes_.find(nh);
  if (it == held_byes_.end()) return;
  for (msg_t *msg : it->second) msg_destroy(msg);
  held_byes_.erase(it);
}

void Account::on_register(int status, const char *phrase, const sip_t *sip) {
  if (status < 200) return;
  // From the challenge already: the proxy may send a late branch's INVITE
  // before the 200 of the REGISTER that woke us (fork-late).
  set_dialog_contact(sip);
  const bool refused = status == 401 || status == 407;
  if (refused) {
    tag_type_t tag;
    std::string header;
    const Auth a = credentials(reg_, sip, &reg_auth_tries_, "REGISTER", registrar_, &tag, &header);
    if (a == Auth::resend) do_register(tag, header);
    if (a != Auth::refused) return;
  } else if (status < 300) {
    reg_auth_tries_ = 0;
    reg_status_ = "registered";
    const bool first = !registered_;
    if (first) PLOG_INFO("%s %s: registered", options_.agent, settings_.aor.c_str());
    registered_ = true;
    if (hooks_.registered) hooks_.registered(first);
    return;
  } else {
    reg_status_ = std::to_string(status) + " " + (phrase ? phrase : "");
    const std::string refusal = tls_ ? tls::last_refusal() : "";
    if (!refusal.empty()) {
      PLOG_ERROR("%s %s: not registered: the proxy's TLS certificate was refused (%s)",
                 options_.agent, settings_.aor.c_str(), refusal.c_str());
    }
  }
  const int seconds =
      hooks_.registration_failed ? hooks_.registration_failed(status, phrase, refused) : 60;
  registered_ = false;
  retry_register(seconds);
}

// nua writes the registration's Contact, URI parameters and all, into every
// dialog it finds the registration for: a push token (RFC 8599 pn-prid) would
// reach the door as our target and every proxy's log in each Request-URI.
// Our dialogs get the address nua would write (our Via's sent-by and
// transport, as nua_handle_contact_by_via makes it) without them.
void Account::set_dialog_contact(const sip_t *sip) {
  if (settings_.contact_params.empty() || !sip || !sip->sip_via || !sip->sip_via->v_host) return;
  const sip_via_t *v = sip->sip_via;
  const char *proto = v->v_protocol ? v->v_protocol : "";
  const bool tls = strcasecmp(proto, "SIP/2.0/TLS") == 0;
  const bool tcp = strcasecmp(proto, "SIP/2.0/TCP") == 0;
  dialog_contact_ = std::string("<") + (tls ? "sips:" : "sip:") + settings_.username + "@" +
                    v->v_host + (v->v_port ? std::string(":") + v->v_port : "") +
                    (tcp ? ";transport=tcp" : "") + ">";
}

// Shutting down: nua repeats the last request's credentials, which the proxy
// takes for a replay; answer its challenge once more, and never register
// again (on_register would).
void Account::on_unregister(int status, const sip_t *sip) {
  if (status == 401 || status == 407) {
    tag_type_t tag;
    std::string header;
    const Auth a = credentials(reg_, sip, &reg_auth_tries_, "REGISTER", registrar_, &tag, &header);
    if (a == Auth::resend) nua_unregister(reg_, tag, tag_str_v(header.c_str()), TAG_END());
    if (a != Auth::refused) return;
  }
  if (status >= 200) {
    registered_ = false;
    reg_status_ = status < 300 ? "unregistered" : "unregister failed";
    shutdown_sip();
  }
}

// nua gives up on a failed registration; we keep trying (the proxy may be
// restarting, or the password was fixed).
void Account::retry_register(int seconds) {
  if (reg_timer_) g_source_remove(reg_timer_);
  reg_timer_ = g_timeout_add_seconds(
      static_cast<guint>(seconds),
      [](gpointer self) -> gboolean {
        auto *a = static_cast<Account *>(self);
        a->reg_timer_ = 0;
        a->reg_auth_tries_ = 0;
        if (a->reg_) a->do_register();
        return G_SOURCE_REMOVE;
      },
      this);
}

}  // namespace portier::sip
