// proxy.h first: it sets sofia-sip's magic types.
#include "proxy/proxy.h"
// clang-format off
#include "proxy/domain_registrar.h"
// clang-format on

#include <openssl/rand.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_string.h>
#include <sofia-sip/tport_tag.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <memory>

#include "common/auth/digest_client.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "proxy/tls_flow_io.h"
#include "sip/sip_message.h"
#include "tls/tls_transport.h"

namespace portier::proxy {
namespace {

// What we ask for; the cloud may give less (RFC 3261 §10.2.1.1).
constexpr int kRequestedExpires = 600;
// The backoff's ceiling (RFC 5626 §4.5 suggests 30 min for many failures;
// a house's calls are more urgent than that).
constexpr int kMaxBackoffSeconds = 300;
// A cloud that keeps refusing our credentials is asked again this often, not
// in a loop (the password is wrong until the admin fixes the file).
constexpr int kAuthRetrySeconds = 60;

std::string new_uuid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) return "";
  b[6] = static_cast<unsigned char>((b[6] & 0x0f) | 0x40);  // RFC 4122 §4.4: version 4
  b[8] = static_cast<unsigned char>((b[8] & 0x3f) | 0x80);
  char s[37];
  snprintf(s, sizeof s, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
           b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
           b[14], b[15]);
  return s;
}

bool plausible_uuid(const std::string &u) {
  if (u.size() != 36) return false;
  for (size_t i = 0; i < u.size(); ++i)
    if (i == 8 || i == 13 || i == 18 || i == 23 ? u[i] != '-' : !isxdigit((unsigned char)u[i]))
      return false;
  return true;
}

}  // namespace

struct DomainRegistrar::Registration {
  enum class State { Connecting, Registered, Retrying, Failed };
  static const char *name(State s) {
    switch (s) {
      case State::Connecting:
        return "connecting";
      case State::Registered:
        return "registered";
      case State::Retrying:
        return "retrying";
      case State::Failed:
        return "failed";
    }
    return "?";
  }

  DomainRegistrar *owner = nullptr;
  DomainRegistrationEntry entry;
  std::string instance;  // the uuid, without urn:uuid:
  State state = State::Connecting;
  std::string last_error;
  int64_t since = 0;  // wall s of the last state change
  int64_t registered_until = 0;
  int backoff = 0;       // s of the next reconnection delay
  int auth_answers = 0;  // credentials sent since the last success
  bool pongs_expected = false;
  auth::DigestClient digest;
  std::string authorization;         // for the next REGISTER; empty: none
  bool proxy_authorization = false;  // it answers a 407 (Proxy-Authorization)
  nta_leg_t *leg = nullptr;
  nta_outgoing_t *orq = nullptr;
  tport_t *flow = nullptr;  // our reference on the registered connection
  int pend = 0;             // tport_pend's id on flow
  su_timer_t *timer = nullptr;
  su_timer_t *ka_timer = nullptr;  // the next ping, or the pong's deadline
  flow_io::Handle io;              // the flow's socket and SSL (tls_flow_io.h)
  uint64_t received_at_ping = 0;   // the socket's received bytes when we pinged
  bool awaiting_pong = false;

  Registration(DomainRegistrar *o, DomainRegistrationEntry e)
      : owner(o), entry(std::move(e)), digest(entry.local_domain, entry.password) {}

  ~Registration() {
    if (timer) su_timer_destroy(timer);
    if (ka_timer) su_timer_destroy(ka_timer);
    if (orq) nta_outgoing_destroy(orq);
    drop_flow(false);
    if (leg) nta_leg_destroy(leg);
  }

  void set_state(State s, const std::string &error) {
    if (s == state && error == last_error) return;
    state = s;
    last_error = error;
    since = clock::wall_s();
    // One line per change; never the password (it is only in `digest`).
    if (s == State::Registered)
      PLOG_INFO("domain registration %s at %s: registered (instance %s, pongs %s)",
                entry.local_domain.c_str(), entry.cloud_uri.c_str(), instance.c_str(),
                pongs_expected ? "expected" : "not expected");
    else
      PLOG_WARN("domain registration %s at %s: %s%s%s", entry.local_domain.c_str(),
                entry.cloud_uri.c_str(), name(s), error.empty() ? "" : ": ", error.c_str());
    owner->events_.add(
        "domain_registration",
        {events::field("domain", entry.local_domain), events::field("cloud", entry.cloud_uri),
         events::field("state", name(s)), events::field("error", error)});
  }

  // Lets go of the connection; `shutdown` closes it too (a flow we gave up on
  // must not carry the next REGISTER, nor the cloud's requests).
  void drop_flow(bool shutdown) {
    if (!flow) return;
    tport_t *tp = flow;
    flow = nullptr;
    io = flow_io::Handle();
    awaiting_pong = false;
    if (ka_timer) su_timer_reset(ka_timer);
    if (pend) tport_release(tp, pend, nullptr, nullptr, reinterpret_cast<tp_client_t *>(this), 0);
    pend = 0;
    if (shutdown) tport_shutdown(tp, 2);
    tport_unref(tp);
  }

  void arm(int seconds, void (*what)(su_root_magic_t *, su_timer_t *, void *)) {
    su_timer_reset(timer);
    su_timer_set_interval(timer, what, this, static_cast<su_duration_t>(seconds) * 1000);
  }

  static void on_timer(su_root_magic_t *, su_timer_t *, void *self) {
    static_cast<Registration *>(self)->send();
  }

  // A broken flow or a failed attempt: a new connection after the delay,
  // doubled each time in a row (RFC 5626 §4.5), up to kMaxBackoffSeconds.
  void retry_later(const std::string &error) {
    // A REGISTER still under way on the broken flow would fail too, and count
    // as a second failure: it is dropped with the flow.
    if (orq) nta_outgoing_destroy(orq), orq = nullptr;
    drop_flow(true);
    const int delay = backoff;
    backoff = std::min(kMaxBackoffSeconds, std::max(1, backoff * 2));
    set_state(State::Retrying, error + " (again in " + std::to_string(delay) + " s)");
    if (delay == 0) {
      send();
      return;
    }
    arm(delay, on_timer);
  }

  void send() {
    if (orq) nta_outgoing_destroy(orq), orq = nullptr;
    if (state != State::Registered && state != State::Retrying && state != State::Connecting)
      set_state(State::Connecting, "");
    const std::string request_uri = "sips:" + entry.cloud_host;
    const std::string contact = "<sips:" + entry.local_domain +
                                ";transport=tls>;+sip.instance=\"<urn:uuid:" + instance +
                                ">\";reg-id=1";
    const std::string expires = std::to_string(kRequestedExpires);
    // RFC 5626 §4.2.1: a REGISTER refresh or an answer to a challenge goes down
    // the same flow; a first one opens it (nta reuses an open connection to
    // the same place).
    orq = nta_outgoing_tcreate(
        leg, on_response, this, URL_STRING_MAKE(entry.cloud_uri.c_str()), SIP_METHOD_REGISTER,
        URL_STRING_MAKE(request_uri.c_str()), TAG_IF(flow, NTATAG_TPORT(flow)),
        SIPTAG_CONTACT_STR(contact.c_str()), SIPTAG_SUPPORTED_STR("outbound, path"),
        SIPTAG_EXPIRES_STR(expires.c_str()),
        TAG_IF(!authorization.empty() && !proxy_authorization,
               SIPTAG_AUTHORIZATION_STR(authorization.c_str())),
        TAG_IF(!authorization.empty() && proxy_authorization,
               SIPTAG_PROXY_AUTHORIZATION_STR(authorization.c_str())),
        TAG_END());
    authorization.clear();
    if (!orq) retry_later("cannot make the REGISTER");
  }

  static int on_response(void *self, nta_outgoing_t *orq, const sip_t *sip) {
    auto *r = static_cast<Registration *>(self);
    const int status = sip && sip->sip_status ? sip->sip_status->st_status : 408;
    if (status < 200) return 0;
    r->response(orq, sip, status);
    return 0;
  }

  void response(nta_outgoing_t *o, const sip_t *sip, int status) {
    const std::string phrase =
        sip && sip->sip_status && sip->sip_status->st_phrase ? sip->sip_status->st_phrase : "";
    tport_t *tp = nta_outgoing_transport(o);  // a reference, or null
    // `sip` lives in the transaction's response message: hold a reference to
    // it before the transaction goes, or every read below is of freed memory
    // (a 401 with two challenges from a real portier-proxy crashed here).
    std::unique_ptr<msg_t, void (*)(msg_t *)> held(nta_outgoing_getresponse(o), msg_destroy);
    orq = nullptr;
    nta_outgoing_destroy(o);
    if (status == 401 || status == 407) {
      bool proxy_auth = false, stale = false;
      const std::vector<auth::Challenge> usable = sipmsg::challenges(sip, &proxy_auth, &stale);
      if (entry.password.empty()) {
        if (tp) tport_unref(tp);
        fail_auth(status, "challenged, and the domain-registrations line has no password");
        return;
      }
      if (usable.empty() || !digest.challenged(usable)) {
        if (tp) tport_unref(tp);
        fail_auth(status, "no Digest challenge we can answer (MD5 or SHA-256, qop=auth)");
        return;
      }
      if (!stale && ++auth_answers > 1) {
        if (tp) tport_unref(tp);
        fail_auth(status, "credentials refused: wrong password in the domain-registrations line?");
        return;
      }
      // The answer goes down the connection that was challenged.
      keep_flow(tp, false);
      authorization = digest.authorization("REGISTER", "sips:" + entry.cloud_host);
      // A registrar challenges with 401 (RFC 3261 §22.2), a proxy before it
      // with 407 (§22.3): the answer goes in the header that matches.
      proxy_authorization = proxy_auth;
      send();
      return;
    }
    if (status >= 200 && status < 300) {
      auth_answers = 0;
      // RFC 5626 §4.2.1: the registrar supports outbound when it says so in
      // Require; then it answers pings with pongs (§4.4.1).
      pongs_expected = sip && (sip_has_feature(sip->sip_require, "outbound") ||
                               sip_has_feature(sip->sip_supported, "outbound"));
      int expires = granted_expires(sip);
      if (!tp) {
        retry_later("answered 200, but not over a connection we can keep");
        return;
      }
      keep_flow(tp, true);
      backoff = owner->settings_.reconnection_delay;
      registered_until = clock::wall_s() + expires;
      set_state(State::Registered, "");
      // Refresh well before expiry (RFC 3261 §10.2.4 leaves when to us).
      arm(std::max(1, expires - std::max(5, expires / 10)), on_timer);
      return;
    }
    if (tp) tport_unref(tp);
    // 408/503 made by nta itself: no connection (refused, TLS handshake or
    // certificate failure; sofia's log at debug tells which).
    std::string why = std::to_string(status) + " " + phrase;
    if (!sip || (status == 503 || status == 408)) {
      const std::string refused = tls::last_refusal();
      why += refused.empty() ? " (no answer over TLS: the cloud unreachable, or its certificate "
                               "not verified by the CA file or not for " +
                                   entry.cloud_host + ")"
                             : " (TLS: the cloud's certificate was refused: " + refused + ")";
    }
    retry_later(why);
  }

  void fail_auth(int status, const std::string &why) {
    drop_flow(true);
    auth_answers = 0;
    set_state(State::Failed, std::to_string(status) + ": " + why + " (again in " +
                                 std::to_string(kAuthRetrySeconds) + " s)");
    arm(kAuthRetrySeconds, on_timer);
  }

  int granted_expires(const sip_t *sip) const {
    const std::string mine = "<urn:uuid:" + instance + ">";
    for (const sip_contact_t *m = sip ? sip->sip_contact : nullptr; m; m = m->m_next) {
      const char *inst = msg_params_find(m->m_params, "+sip.instance=");
      if (!inst) continue;
      std::string v = inst;
      if (v.size() >= 2 && v.front() == '"') v = v.substr(1, v.size() - 2);
      if (strcasecmp(v.c_str(), mine.c_str()) == 0 && m->m_expires)
        return std::max(1, atoi(m->m_expires));
    }
    if (sip && sip->sip_expires) return std::max<int>(1, sip->sip_expires->ex_delta);
    return kRequestedExpires;
  }

  // Takes `tp` (a reference) as the flow; `registered`: keep-alives on, and
  // its closing reported to us.
  void keep_flow(tport_t *tp, bool registered) {
    if (!tp) return;
    if (tp != flow) {
      drop_flow(false);
      flow = tp;
    } else {
      tport_unref(tp);  // we hold one already
    }
    if (!registered || pend) return;
    // Closing and errors reach on_broken (TPTAG_SDWN_ERROR: a shutdown too).
    tport_set_params(flow, TPTAG_SDWN_ERROR(1), TAG_END());
    // Keep-alives are ours: tls_flow_io.h says why sofia's cannot run on TLS.
    if (const su_addrinfo_t *ai = tport_get_address(flow))
      io = flow_io::find(ai->ai_addr, static_cast<socklen_t>(ai->ai_addrlen));
    if (!io)
      PLOG_WARN(
          "domain registration %s: the connection's TLS session was not found: no "
          "keep-alives on it",
          entry.local_domain.c_str());
    arm_ping();
    pend = tport_pend(flow, nullptr, on_broken, reinterpret_cast<tp_client_t *>(this));
    if (pend < 0) pend = 0;
  }

  void arm_ping() {
    const int every = owner->settings_.keepalive_interval;
    if (!io || every <= 0) return;
    su_timer_reset(ka_timer);
    su_timer_set_interval(ka_timer, on_ka_timer, this, static_cast<su_duration_t>(every) * 1000);
  }

  static void on_ka_timer(su_root_magic_t *, su_timer_t *, void *self) {
    static_cast<Registration *>(self)->keepalive();
  }

  // RFC 5626 §4.4.1: CRLFCRLF every keepalive-interval; when the registrar
  // supports outbound, a CRLF must come back within ping-pong-timeout-delay,
  // else the flow is dead (§4.4.1 last paragraph) and is made again (§4.5).
  // Anything received after the ping counts as an answer: the kernel's byte
  // count cannot tell a pong from a request, and both prove the flow works.
  void keepalive() {
    if (!flow || !io) return;
    const int pong_wait = pongs_expected ? owner->settings_.ping_pong_timeout_delay : 0;
    if (awaiting_pong) {
      awaiting_pong = false;
      if (flow_io::bytes_received(io.fd) == received_at_ping) {
        retry_later("no pong within " + std::to_string(pong_wait) + " s: the flow is dead");
        return;
      }
      // The rest of the interval, then the next ping.
      su_timer_set_interval(
          ka_timer, on_ka_timer, this,
          static_cast<su_duration_t>(owner->settings_.keepalive_interval - pong_wait) * 1000);
      return;
    }
    // Between two messages only: a ping inside a half-written one would break
    // the stream. sofia keeps a message it could not finish in its queue
    // (tport_queue_rest), and its TLS layer holds the unfinished record's
    // buffer until then (tport_tls.c write_buffer), so an empty queue means
    // nothing of sofia's is under way; ping() checks OpenSSL's side. When we
    // skip, the message being written is traffic: the flow is not idle.
    if (tport_queuelen(flow) == 0) {
      received_at_ping = flow_io::bytes_received(io.fd);
      const flow_io::PingResult sent = flow_io::ping(io);
      if (sent == flow_io::PingResult::failed) {
        // Also when OpenSSL would have kept half of the ping: sofia's next
        // write would then break the stream, so the flow must go now.
        retry_later("the keep-alive could not be written: the connection is gone");
        return;
      }
      if (sent == flow_io::PingResult::sent && pong_wait > 0) {
        awaiting_pong = true;
        su_timer_set_interval(ka_timer, on_ka_timer, this,
                              static_cast<su_duration_t>(pong_wait) * 1000);
        return;
      }
    }
    arm_ping();
  }

  static void on_broken(tp_stack_t *, tp_client_t *client, tport_t *tp, msg_t *, int error) {
    auto *r = reinterpret_cast<Registration *>(client);
    if (tp != r->flow) return;
    // sofia forgets the pending entry once it reported it.
    r->pend = 0;
    const std::string why = error == 0 ? std::string("the connection closed")
                                       : std::string("the connection broke: ") + strerror(error);
    r->retry_later(why);
  }
};

DomainRegistrar::DomainRegistrar(nta_agent_t *agent, su_root_t *root,
                                 const ProxySettings::DomainRegistrations &settings,
                                 std::string state_directory, events::Writer &events)
    : agent_(agent),
      root_(root),
      settings_(settings),
      state_directory_(std::move(state_directory)),
      events_(events) {}

DomainRegistrar::~DomainRegistrar() = default;

bool DomainRegistrar::start(std::string *error) {
  // Our keep-alives need each flow's SSL (tls_flow_io.h); nobody else does.
  if (!settings_.entries.empty()) flow_io::enable();
  for (const DomainRegistrationEntry &e : settings_.entries) {
    auto r = std::make_unique<Registration>(this, e);
    // RFC 5626 §4.1: the instance id survives restarts, so the cloud sees the
    // same instance and replaces its binding instead of adding one.
    const std::string path = state_directory_ + "/domain-instance-" + e.local_domain;
    {
      std::ifstream in(path);
      std::string u;
      if (in && std::getline(in, u) && plausible_uuid(u)) r->instance = u;
    }
    if (r->instance.empty()) {
      r->instance = new_uuid();
      const std::string tmp = path + ".tmp";
      std::ofstream out(tmp, std::ios::trunc);
      out << r->instance << "\n";
      out.close();
      if (r->instance.empty() || !out || rename(tmp.c_str(), path.c_str()) != 0) {
        *error = path + ": cannot keep the domain registration's instance id";
        return false;
      }
    }
    const std::string from = "<sips:" + e.local_domain + ">";
    r->leg = nta_leg_tcreate(agent_, nullptr, nullptr, SIPTAG_FROM_STR(from.c_str()),
                             SIPTAG_TO_STR(from.c_str()), TAG_END());
    r->timer = su_timer_create(su_root_task(root_), 0);
    r->ka_timer = su_timer_create(su_root_task(root_), 0);
    if (!r->leg || !r->timer || !r->ka_timer) {
      *error = "cannot set up the domain registration of " + e.local_domain;
      return false;
    }
    r->backoff = settings_.reconnection_delay;
    r->since = clock::wall_s();
    PLOG_INFO("domain registration %s at %s: instance %s, %s", e.local_domain.c_str(),
              e.cloud_uri.c_str(), r->instance.c_str(),
              e.password.empty() ? "client certificate" : "digest");
    regs_.push_back(std::move(r));
  }
  for (auto &r : regs_) r->send();
  return true;
}

std::string DomainRegistrar::json() const {
  const int64_t now = clock::wall_s();
  json::Writer w;
  w.begin_object().key("domain_registrations").begin_array();
  for (const auto &r : regs_) {
    w.begin_object()
        .field("domain", r->entry.local_domain)
        .field("cloud", r->entry.cloud_uri)
        .field("state", std::string(Registration::name(r->state)))
        .field("instance", "urn:uuid:" + r->instance)
        .field("last_error", r->last_error)
        .field("since", events::iso8601_utc(r->since * 1000))
        .field("expires", r->state == Registration::State::Registered
                              ? std::max<int64_t>(0, r->registered_until - now)
                              : int64_t{0})
        .end_object();
  }
  return w.end_array().end_object().take();
}

std::string DomainRegistrar::flow_domain(const tport_t *tp) const {
  if (!tp) return "";
  for (const auto &r : regs_)
    if (r->flow == tp && r->state == Registration::State::Registered) return r->entry.local_domain;
  return "";
}

std::string DomainRegistrar::cloud_hop(const std::string &domain) const {
  for (const auto &r : regs_)
    if (r->state == Registration::State::Registered && r->entry.local_domain == domain)
      return r->entry.cloud_uri;
  return "";
}

size_t DomainRegistrar::registered() const {
  return std::count_if(regs_.begin(), regs_.end(),
                       [](const auto &r) { return r->state == Registration::State::Registered; });
}

}  // namespace portier::proxy
