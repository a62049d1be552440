#include "proxy/chain/registrar.h"

#include <sofia-sip/msg_header.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/tport.h>
#include <strings.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <string_view>

#include "common/ascii.h"
#include "common/clock.h"
#include "common/event_writer.h"
#include "common/log.h"
#include "common/sip_text.h"
#include "push/push_messages.h"
#include "sip/sip_message.h"

namespace portier::proxy::chain {
namespace {

// Device tokens are 64 hex digits (APNs; two of them with "voip&remote"),
// about 160 characters (FCM) or a URL (webpush): room for all, not for a flood.
constexpr size_t kMaxPrid = 1024;
constexpr size_t kMaxPnParam = 256;
constexpr size_t kMaxProvider = 32;

// A URI parameter value after %HH decoding (RFC 3261 §19.1.2): printable
// ASCII without space, so it goes into JSON, HTTP paths and the state file as
// it is; false when it is not.
bool decode_param(std::string_view raw, size_t max, std::string *out) {
  out->clear();
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (i + 2 >= raw.size()) return false;
      auto hex = [](char h) {
        return h >= '0' && h <= '9'   ? h - '0'
               : h >= 'a' && h <= 'f' ? h - 'a' + 10
               : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                      : -1;
      };
      const int hi = hex(raw[i + 1]), lo = hex(raw[i + 2]);
      if (hi < 0 || lo < 0) return false;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c <= 0x20 || c >= 0x7f || c == '"') return false;
    *out += c;
    if (out->size() > max) return false;
  }
  return true;
}

}  // namespace

ContactPushParams split_push_params(const char *url_params) {
  ContactPushParams out;
  if (!url_params) return out;
  std::string pn_type, app_id, pn_tok;
  std::string_view rest = url_params;
  while (!rest.empty()) {
    const size_t semi = rest.find(';');
    const std::string_view param = rest.substr(0, semi);
    rest.remove_prefix(semi == std::string_view::npos ? rest.size() : semi + 1);
    const size_t eq = param.find('=');
    const std::string_view name = param.substr(0, eq);
    const std::string_view value =
        eq == std::string_view::npos ? std::string_view() : param.substr(eq + 1);
    // Every pn-* (Linphone adds pn-msg-str, pn-call-str, pn-silent, ...) and
    // app-id belong to the push service, not to the address of the device.
    if (!ascii::istarts_with(name, "pn-") && !ascii::iequals(name, "app-id")) {
      if (!param.empty()) {
        if (!out.other_params.empty()) out.other_params += ';';
        out.other_params.append(param);
      }
      continue;
    }
    // RFC 3261 §19.1.4: parameter names are case-insensitive.
    std::string *into = nullptr;
    size_t max = kMaxPrid;
    if (ascii::iequals(name, "pn-provider")) {
      into = &out.push.provider, max = kMaxProvider;
    } else if (ascii::iequals(name, "pn-prid")) {
      into = &out.push.prid;
    } else if (ascii::iequals(name, "pn-param")) {
      into = &out.push.param, max = kMaxPnParam;
    } else if (ascii::iequals(name, "pn-type")) {
      into = &pn_type, max = kMaxProvider;
    } else if (ascii::iequals(name, "app-id")) {
      into = &app_id, max = kMaxPnParam;
    } else if (ascii::iequals(name, "pn-tok")) {
      into = &pn_tok;
    }
    if (into && !decode_param(value, max, into)) {
      out.error = "Bad " + std::string(name) + " parameter";
      return out;
    }
  }
  if (!out.push.provider.empty()) {
    out.rfc8599 = true;
    out.push.provider = ascii::to_lower(out.push.provider);
  } else if (!pn_type.empty() && !pn_tok.empty()) {
    const push::PushParams legacy =
        push::from_legacy_params(ascii::to_lower(pn_type), app_id, pn_tok);
    out.push = {legacy.provider, legacy.prid, legacy.param};
  } else {
    out.push = {};
  }
  return out;
}

std::string push_feature_caps(const std::vector<std::string> &providers) {
  // RFC 8599 §5.4: one Feature-Caps header field per type of PNS; §8.2: the
  // sip.pns value is one pn-provider value, not a list.
  std::string lines;
  for (const std::string &p : providers) {
    if (!lines.empty()) lines += "\r\n";
    lines += "Feature-Caps: *;+sip.pns=\"" + p + "\"";
  }
  return lines;
}

namespace {

// The Require options of a REGISTER, comma-separated; empty when none. The
// registrar implements no extension (RFC 3261 §10.3 step 2, §8.2.2.3) but
// outbound (RFC 5626) for domain registrations: Path (RFC 3327), and outbound
// for single users, are not supported yet, so every option is
// unsupported, and storing the binding as if it were plain would break the
// device's assumptions (a Path it believes is used).
std::string required_options(const sip_t *sip, bool house) {
  std::string out;
  for (const sip_require_t *r = sip->sip_require; r; r = r->k_next) {
    for (msg_param_t const *item = r->k_items; item && *item; ++item) {
      // A domain registration is an RFC 5626 flow: outbound is what it gets.
      if (house && strcasecmp(*item, "outbound") == 0) continue;
      if (!out.empty()) out += ", ";
      out += *item;
    }
  }
  return out;
}

// sofia-sip keeps a header it cannot parse ("Expires: abc") out of its slot
// and in the error list, which would make it look absent (the default
// expiry) instead of bad.
bool has_unparsable(const sip_t *sip, const char *name) {
  for (const sip_error_t *e = sip->sip_error; e; e = e->er_next) {
    if (e->er_name && strcasecmp(e->er_name, name) == 0) return true;
  }
  return false;
}

// +sip.instance is a quoted string holding a URN (RFC 5626 §4.1): printable
// ASCII only, as it is stored, listed and compared.
bool is_printable_ascii(std::string_view s) {
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

// The 200 to a REGISTER (§10.3 step 8): its bindings and the registrar's
// time. The Contact value is our own printing of parsed URIs, and goes out as
// it is (sipmsg::reply_stateless) rather than parsed back into headers.
void send_ok(Reply &reply, const std::string &contacts, const std::string &feature_caps) {
  sip_date_t date[1];
  sip_date_init(date);
  date->d_time = sip_now();
  reply.send(SIP_200_OK, TAG_IF(!contacts.empty(), SIPTAG_CONTACT_STR(contacts.c_str())),
             SIPTAG_DATE(date),
             TAG_IF(!feature_caps.empty(), SIPTAG_HEADER_STR(feature_caps.c_str())), TAG_END());
}

}  // namespace

Outcome Registrar::process(RequestContext &ctx) {
  if (ctx.sip->sip_request->rq_method != sip_method_register) return Outcome::Continue;
  return handle_register(ctx);
}

Outcome Registrar::handle_register(RequestContext &ctx) {
  Reply &reply = ctx.reply;
  msg_t *msg = ctx.msg;
  const sip_t *sip = ctx.sip;
  const url_t *to = sip->sip_to->a_url;
  // A To without a user part is a whole domain (issue 15: an in-house proxy
  // registering its domain), when domain registrations are on.
  const bool house = !to->url_user && house_domains_ && house_domains_->settings().accept;
  if ((!to->url_user && !house) || !to->url_host) {
    reply.send(400, "To must name a user", TAG_END());
    return Outcome::Respond;
  }
  if (house && !house_domains_->may_register(to->url_host)) {
    // A domain we serve (or an alias of ours) is ours: a house claiming it
    // would take our own users' calls.
    reply.send(403, "Domain served here, not a house domain", TAG_END());
    return Outcome::Respond;
  }
  if (!house && !names_.is_reg_domain(to->url_host)) {
    reply.send(403, "Domain not served here", TAG_END());
    return Outcome::Respond;
  }
  const std::string required = required_options(sip, house);
  if (!required.empty()) {
    reply.send(SIP_420_BAD_EXTENSION, SIPTAG_UNSUPPORTED_STR(required.c_str()), TAG_END());
    return Outcome::Respond;
  }
  if (house) {
    if (!authorize_house(ctx)) return Outcome::Respond;
  } else if (auth_ && !auth_->authenticate(reply, msg, sip, true, nullptr)) {
    // The digest user is the To's (authenticate checks it), whose AOR is req.aor.
    return Outcome::Respond;
  }

  RegisterRequest req;
  req.aor = house ? domain_aor(to->url_host) : normalize_aor(to->url_user, to->url_host);
  req.call_id = sip->sip_call_id->i_id;
  req.cseq = sip->sip_cseq->cs_seq;
  req.now = clock::wall_s_rounded_up();
  req.received = source_of(msg);
  // A device registered over TLS is reached over TLS, on its connection
  // (RFC 5626 §5.2 flow, RFC 3261 §26.2.2): source_of cannot tell TLS from TCP.
  if (req.received.compare(0, 4, "tcp:") == 0 && reply.agent()) {
    if (tport_t *tp = nta_incoming_transport(reply.agent(), nullptr, msg)) {
      if (tport_has_tls(tp)) req.received.replace(0, 3, "tls");
      tport_unref(tp);
    }
  }
  if (sip->sip_user_agent && sip->sip_user_agent->g_string)
    req.user_agent = sip->sip_user_agent->g_string;
  // RFC 3261 §20.19: SIP 2.0 takes only delta-seconds; the date form is
  // obsolete, and sofia-sip parses it into ex_date with ex_delta 0, a removal.
  // A malformed value must not remove or re-time a binding either: 400 (the
  // §20.19 "treat as 3600" is for UAs; a registrar tells the device instead).
  if (has_unparsable(sip, "Expires") || (sip->sip_expires && sip->sip_expires->ex_date != 0)) {
    reply.send(400, "Bad Expires (delta-seconds only)", TAG_END());
    return Outcome::Respond;
  }
  // A huge value (2^32) must not wrap to 0; the store cuts it to max-expires
  // (§10.3 step 6).
  if (sip->sip_expires)
    req.expires_header =
        static_cast<int>(std::min<unsigned long>(sip->sip_expires->ex_delta, INT_MAX));
  std::vector<std::string> push_providers;  // for the 200's Feature-Caps
  for (const sip_contact_t *m = sip->sip_contact; m; m = m->m_next) {
    if (m->m_url->url_type == url_any) {
      req.wildcard = true;
      if (sip->sip_contact->m_next) req.contacts.push_back({});  // '*' plus others: invalid
      continue;
    }
    ContactSpec c;
    c.by_instance_only = house;
    ContactPushParams pn = split_push_params(m->m_url->url_params);
    if (!pn.error.empty()) {
      reply.send(400, pn.error.c_str(), TAG_END());
      return Outcome::Respond;
    }
    url_t stored = *m->m_url;
    stored.url_params = pn.other_params.empty() ? nullptr : pn.other_params.c_str();
    c.uri = sipmsg::url_string(&stored);
    if (c.uri.empty() || !m->m_url->url_host || !is_valid_contact_uri(c.uri)) {
      reply.send(400, "Bad Contact (not a SIP URI)", TAG_END());
      return Outcome::Respond;
    }
    if (const char *inst = msg_params_find(m->m_params, "+sip.instance=")) {
      // Kept without its quotes: "<urn:uuid:...>" is what lists and logs show.
      c.instance = siptext::strip_quotes(inst);
      if (!is_printable_ascii(c.instance)) {
        reply.send(400, "Bad +sip.instance", TAG_END());
        return Outcome::Respond;
      }
    }
    if (m->m_expires) {
      c.expires = parse_delta_seconds(m->m_expires);
      if (!c.expires) {
        reply.send(400, "Bad Contact expires (delta-seconds only)", TAG_END());
        return Outcome::Respond;
      }
    }
    if (m->m_q) {
      // RFC 3261 §20.10: q is a qvalue from 0 to 1.
      c.q_milli = parse_qvalue(m->m_q);
      if (!c.q_milli) {
        reply.send(400, "Bad Contact q (0 to 1)", TAG_END());
        return Outcome::Respond;
      }
    }
    if (push_ && !pn.push.empty()) {
      const bool removal = c.expires ? *c.expires == 0 : req.expires_header == 0;
      // RFC 8599 §5.6.1.1: a provider the proxy does not serve, or a contact
      // without what that provider needs (a device token), gets 555, so the
      // device learns that no push will wake it here instead of sleeping
      // through every call.
      if (push::serves_provider(*push_, pn.push.provider, pn.push.param) && !pn.push.prid.empty()) {
        c.push = pn.push;
        if (pn.rfc8599 && std::find(push_providers.begin(), push_providers.end(),
                                    pn.push.provider) == push_providers.end())
          push_providers.push_back(pn.push.provider);
      } else if (pn.rfc8599 && !removal) {
        PLOG_INFO("registrar: %s: pn-provider %s not served: 555", req.aor.c_str(),
                  pn.push.provider.c_str());
        reply.send(555, "Push Notification Service Not Supported", TAG_END());
        return Outcome::Respond;
      } else if (!removal) {
        // An older app (pn-type) knows no 555: it registers, without push.
        PLOG_INFO("registrar: %s: legacy push type %s not served: registered without push",
                  req.aor.c_str(), pn.push.provider.c_str());
      }
    }
    req.contacts.push_back(std::move(c));
  }

  const uint64_t generation = locations_.generation();
  if (house && house_domains_->settings().assume_unique) {
    // assume-unique-domains: one server per domain, so a registration from
    // another instance is that server come back (new address, new
    // connection): its older bindings are stale flows, dropped now rather
    // than tried on every call until they expire.
    bool adds = false, other = false;
    for (const ContactSpec &c : req.contacts)
      adds |= !(c.expires ? *c.expires == 0 : req.expires_header == 0);
    for (const Binding &b : locations_.lookup(req.aor, req.now))
      for (const ContactSpec &c : req.contacts) other |= b.instance != c.instance;
    if (adds && !req.wildcard && other) locations_.remove_aor(req.aor);
  }
  RegisterOutcome out = locations_.apply(req);
  const size_t before = out.bindings_before;
  if (locations_.generation() != generation) {
    // One journal record per changed AOR: its whole binding set now.
    static const std::vector<Binding> kNone;
    persister_->append(
        LocationPersister::journal_record(req.aor, out.record ? *out.record : kNone));
  }
  if (out.status == 423) {
    char min[16];
    snprintf(min, sizeof min, "%d", out.min_expires);
    reply.send(SIP_423_INTERVAL_TOO_BRIEF, SIPTAG_MIN_EXPIRES_STR(min), TAG_END());
    return Outcome::Respond;
  }
  if (out.status != 200) {
    reply.send(out.status, out.phrase.c_str(), TAG_END());
    return Outcome::Respond;
  }
  // §10.3 step 8: the 200 lists every current binding with its expiry.
  std::string contacts;
  for (const auto &b : out.bindings) {
    if (!contacts.empty()) contacts += ", ";
    contacts += '<';
    contacts += b.contact;
    contacts += ">;expires=";
    char expires[24];
    contacts.append(expires,
                    std::to_chars(expires, expires + sizeof expires, b.expires_at - req.now).ptr);
    if (b.q_milli != 1000) {
      char q[16];
      snprintf(q, sizeof q, ";q=%.3g", b.q_milli / 1000.0);
      contacts += q;
    }
    if (!b.instance.empty()) contacts += ";+sip.instance=\"" + b.instance + "\"";
  }
  // Not for a domain binding: a late branch goes to the binding's contact, and
  // a house must get the Request-URI as the caller wrote it.
  if (on_registered_ && !house) {
    for (const ContactSpec &c : req.contacts) {
      const bool removal = c.expires ? *c.expires == 0 : req.expires_header == 0;
      if (removal) continue;
      for (const Binding &b : out.bindings)
        if (b.contact == c.uri) on_registered_(req.aor, b);
    }
  }
  // A refresh is no event: only a device that arrives or leaves.
  if (events_ && out.bindings.size() != before)
    events_->add(out.bindings.size() > before ? "registered" : "unregistered",
                 {events::field("aor", req.aor), events::field("from", req.received),
                  events::field("bindings", static_cast<int64_t>(out.bindings.size()))});
  else
    PLOG_DEBUG("registrar: %s now has %zu binding(s) (from %s)", req.aor.c_str(),
               out.bindings.size(), req.received.c_str());
  std::string extra = push_feature_caps(push_providers);
  if (house) {
    // RFC 5626 §6: the registrar that keeps the flow says so, and the house
    // then keeps it alive (§4.4) and re-registers when it fails.
    if (!extra.empty()) extra += "\r\n";
    extra += "Require: outbound";
    if (reply.agent())
      if (tport_t *tp = nta_incoming_transport(reply.agent(), nullptr, msg)) {
        house_domains_->note_flow(req.received, tp, to->url_host);
        tport_unref(tp);
      }
    PLOG_INFO("registrar: domain %s: %zu flow(s), this one from %s", to->url_host,
              out.bindings.size(), req.received.c_str());
  }
  return answer_register_ok(ctx, std::move(contacts), std::move(extra));
}

bool Registrar::authorize_house(RequestContext &ctx) {
  Reply &reply = ctx.reply;
  const char *domain = ctx.sip->sip_to->a_url->url_host;
  tport_t *tp = reply.agent() ? nta_incoming_transport(reply.agent(), nullptr, ctx.msg) : nullptr;
  // The flow must be one a request can be sent down later: the house's own
  // TLS connection (its NAT lets nothing else in), authenticated end to end.
  const bool tls = tp && tport_has_tls(tp);
  // A client certificate naming the domain, checked against our CA by the
  // handshake (tls-verify-incoming=1), is the house's proof on its own.
  bool by_certificate = false;
  if (tls && tport_is_verified(tp)) {
    const su_strlst_t *subjects = tport_delivered_from_subjects(tp, ctx.msg);
    by_certificate = subjects && tport_subject_search(domain, subjects);
  }
  if (tp) tport_unref(tp);
  if (!tls) {
    reply.send(403, "Domain registration needs TLS", TAG_END());
    return false;
  }
  if (by_certificate) return true;
  if (!auth_) {
    reply.send(403, "Domain registration not authorized", TAG_END());
    return false;
  }
  // Digest: the users file entry DOMAIN@DOMAIN (username DOMAIN, realm DOMAIN).
  return auth_->authenticate(reply, ctx.msg, ctx.sip, true, nullptr, true);
}

Outcome Registrar::answer_register_ok(RequestContext &ctx, std::string contacts,
                                      std::string feature_caps) {
  Reply &reply = ctx.reply;
  if (reply.irq() || persister_->last_seq() == committed_seq_) {
    // Nothing waits for the disk (a stateful REGISTER is not held: no
    // caller makes one today; REGISTER is answered statelessly).
    send_ok(reply, contacts, feature_caps);
    return Outcome::Respond;
  }
  // Even a fetch or a retransmission waits: the state it reports may be a
  // change not yet on disk.
  held_replies_.push_back(
      {park(ctx), persister_->last_seq(), std::move(contacts), std::move(feature_caps)});
  return Outcome::Wait;
}

void Registrar::release_register_replies() {
  for (const LocationPersister::Finished &f : persister_->take_finished()) {
    committed_seq_ = std::max(committed_seq_, f.seq);
    if (!f.ok) PLOG_ERROR("registrar: cannot store registrations: %s", f.error.c_str());
    while (!held_replies_.empty() && held_replies_.front().seq <= f.seq) {
      HeldReply held = std::move(held_replies_.front());
      held_replies_.pop_front();
      Reply reply = held.request.reply();
      if (!f.ok) {
        // The binding is in memory and works until a restart; the device is
        // told, and registers again.
        reply.send(500, "Registration not stored", TAG_END());
        continue;
      }
      send_ok(reply, held.contacts, held.feature_caps);
    }
  }
}

}  // namespace portier::proxy::chain
