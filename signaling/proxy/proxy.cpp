#include "proxy/proxy.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/nta_tport.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/su_tagarg.h>
#include <sofia-sip/tport.h>
#include <sofia-sip/tport_tag.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/ascii.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/sip_text.h"
#include "proxy/allocator.h"
#include "proxy/chain/build_chain.h"
#include "proxy/chain/target_resolver.h"
#include "proxy/domain_registrar.h"
#include "proxy/media_relay.h"
#include "proxy/relay_observer.h"
#include "proxy/router.h"
#include "proxy/tcp_connections.h"
#include "proxy/tls_flow_io.h"
#include "proxy/udp_fastpath.h"
#include "push/push_messages.h"
#include "sip/sip_message.h"
#include "tls/one_record.h"

namespace portier::proxy {
namespace {

// Bytes preloaded into the home of every message nta makes (past a received
// one's own text): a parsed request's headers, or a stateless answer's copies
// and text, come from that one block instead of a malloc and a free each.
// 1 KiB saved a third of what 2 KiB does; 4 KiB no more than 2.
constexpr unsigned kMessagePreload = 2048;
// Leaf, up to three intermediates (a cross-signed public chain), root; sofia's
// default of 2 fails the longer public chains (docs/TLS.md §3).
constexpr unsigned kTlsVerifyDepth = 4;

// mkdir -p for the state directory.
bool make_dirs(const std::string &path, std::string *error) {
  std::string cur;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || (path[i] == '/' && i > 0)) {
      cur = path.substr(0, i);
      if (mkdir(cur.c_str(), 0750) < 0 && errno != EEXIST) {
        *error = cur + ": " + strerror(errno);
        return false;
      }
    }
  }
  return true;
}

}  // namespace

Proxy::Proxy(ProxySettings settings)
    : settings_(std::move(settings)),
      names_({}, {}, settings_.aliases),
      locations_(settings_.limits) {}

Proxy::~Proxy() { stop(); }

bool Proxy::load_nonce_secret(std::string *secret, std::string *error) {
  // The nonce key lives in the state directory, so nonces stay valid across a
  // restart; it is created once with mode 0600 and never logged.
  const std::string path = settings_.state_directory + "/nonce.key";
  std::ifstream in(path, std::ios::binary);
  if (in) {
    std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (key.size() >= 32) {
      *secret = key;
      return true;
    }
  }
  unsigned char buf[32];
  if (RAND_bytes(buf, sizeof buf) != 1) {
    *error = "cannot get random bytes for the nonce key";
    return false;
  }
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, buf, sizeof buf) != sizeof buf || fsync(fd) < 0 ||
      rename(tmp.c_str(), path.c_str()) < 0) {
    *error = path + ": " + strerror(errno);
    if (fd >= 0) close(fd);
    return false;
  }
  close(fd);
  secret->assign(reinterpret_cast<char *>(buf), sizeof buf);
  return true;
}

bool Proxy::start(su_root_t *root, std::string *error) {
  root_ = root;
  if (!make_dirs(settings_.state_directory, error)) return false;

  // The key also signs our Record-Route entries, with or without authentication.
  std::string secret;
  if (!load_nonce_secret(&secret, error)) return false;
  route_signer_ = std::make_unique<RouteSigner>(secret);
  if (settings_.auth_enabled) {
    if (!users_.load(settings_.users_file, error)) return false;
    nonces_ = std::make_unique<auth::NonceManager>(secret, settings_.nonce_expires);
    authenticator_ = std::make_unique<auth::Authenticator>(users_, settings_.algorithms, *nonces_);
    limiter_ = std::make_unique<auth::FailureLimiter>(settings_.failure_limits);
    PLOG_INFO("authentication: %zu users from %s", users_.size(), settings_.users_file.c_str());
  } else {
    PLOG_WARN("authentication is disabled: anyone can register and call");
  }
  if (!settings_.static_records_file.empty() &&
      !static_records_.load(settings_.static_records_file, error))
    return false;
  // "*" stands for the users file's domains, known only now.
  {
    const LocalNames::Domains user_domains = users_.domains();
    names_.set_domains(LocalNames::expand(settings_.reg_domains, user_domains),
                       LocalNames::expand(settings_.auth_domains, user_domains));
    PLOG_INFO("registrar: %zu domain(s) served", names_.reg_domains().size());
  }

  persister_ = std::make_unique<LocationPersister>(settings_.state_directory + "/registrations");
  LocationPersister::LoadReport loaded;
  if (!persister_->load(locations_, clock::wall_s(), error, &loaded)) {
    // Unreadable (not bad records): keep it as it is for the admin to look at.
    persister_.reset();
    return false;
  }
  // A bad record costs that record, never the start: one device's REGISTER
  // must not keep the intercom down after a reboot.
  for (const std::string &p : loaded.problems) PLOG_ERROR("registrar: %s", p.c_str());
  for (const std::string &k : loaded.kept)
    PLOG_ERROR("registrar: skipped record(s) in the state files; the file as it was is kept in %s",
               k.c_str());
  if (loaded.torn_bytes)
    PLOG_WARN(
        "registrar: dropped the last %zu byte(s) of %s: a record cut by a crash (never "
        "answered)",
        loaded.torn_bytes, persister_->journal_path().c_str());
  PLOG_INFO("registrar: %zu bindings restored from %s (%zu journal record(s) replayed)",
            locations_.binding_count(), persister_->path().c_str(), loaded.journal_records);
  // Start from a fresh snapshot and an empty journal: nothing appended later
  // follows a torn record or a skipped one.
  if (!persister_->compact_now(locations_, error)) {
    PLOG_ERROR("registrar: %s: registrations will not survive a restart", error->c_str());
    error->clear();
  }
  su_wait_create(journal_wait_, persister_->notify_fd(), SU_WAIT_IN);
  journal_registration_ = su_root_register(root_, journal_wait_, on_journal_written, this, 0);
  if (journal_registration_ < 0) {
    *error = "cannot watch the registrations journal";
    return false;
  }

  // sofia closes a connection with no byte either way for idle_ms (unless
  // TcpConnections holds it for a registration), and one stalled in the middle
  // of a message for stalled_ms; connection_limits.h says what else is ours.
  const unsigned idle_ms = static_cast<unsigned>(settings_.idle_timeout) * 1000u;
  const unsigned stalled_ms =
      static_cast<unsigned>(settings_.tcp_incomplete_message_timeout) * 1000u;
  // Each TLS transport's files are checked and sofia's directory for it
  // written before any sofia call (docs/TLS.md §2).
  tls_.resize(settings_.transports.size());
  for (size_t i = 0; i < settings_.transports.size(); ++i) {
    if (!settings_.transport_tls[i]) continue;
    tls_[i] = std::make_unique<tls::Transport>();
    tls_[i]->name = settings_.transports[i];
    tls_[i]->settings = *settings_.transport_tls[i];
    tls_[i]->directory = settings_.state_directory + "/tls-" + std::to_string(i);
    if (!tls::prepare(tls_[i].get(), error)) return false;
  }
  // The TLS tags go on every call that makes a TLS transport: a transport
  // added later does not inherit the first call's (docs/TLS.md §2).
  for (size_t i = 0; i < settings_.transports.size(); ++i) {
    tls::Transport *t = tls_[i].get();
    const char *dir = t ? t->directory.c_str() : nullptr;
    // RFC 5922 §7.3 (a client checks the server's name), §7.4 (a server may
    // ask the client for a certificate).
    const int policy = !t ? TPTLS_VERIFY_NONE
                          : (t->settings.verify_incoming ? TPTLS_VERIFY_IN : 0) |
                                (t->settings.verify_outgoing ? TPTLS_VERIFY_SUBJECTS_OUT : 0);
    tls::Capture capture;
    if (i == 0) {
      // No default leg: every request not matching a transaction comes to
      // on_message, which answers REGISTER statelessly and creates a server
      // transaction for the rest.
      agent_ = nta_agent_create(root, URL_STRING_MAKE(settings_.transports[0].c_str()), on_message,
                                this, NTATAG_UA(0), NTATAG_SERVER_RPORT(1), NTATAG_CANCEL_487(1),
                                // The parser keeps each header's text: a header forwarded or
                                // answered unchanged goes out as it came instead of being
                                // printed again (sipmsg::reply_stateless, forwarded requests).
                                NTATAG_SIPFLAGS(MSG_DO_CANONIC | MSG_DO_EXTRACT_COPY),
                                // One block per message for its headers: see kMessagePreload.
                                NTATAG_PRELOAD(kMessagePreload),
                                // [global] udp-mtu (its help says why not 1300).
                                NTATAG_UDP_MTU(static_cast<unsigned>(settings_.udp_mtu)),
                                // No STUN server on the SIP port: not our job, and its
                                // replies and logs bypass ours.
                                TPTAG_STUN_SERVER(0),
                                // RFC 5626 §4.4.1: answer a CRLFCRLF keep-alive ping on
                                // TCP with a CRLF pong, so devices behind NAT keep their flow.
                                TPTAG_PONG2PING(1),
                                // Closed by sofia itself: see idle_ms and stalled_ms above.
                                TPTAG_IDLE(idle_ms), TPTAG_TIMEOUT(stalled_ms),
                                // Room for bursts (a house-wide ring, a registration storm
                                // after a power cut) while the loop is busy.
                                TPTAG_UDP_RMEM(2 * 1024 * 1024), TPTAG_UDP_WMEM(1024 * 1024),
                                TAG_IF(t, TPTAG_CERTIFICATE(dir)),
                                TAG_IF(t, TPTAG_TLS_VERIFY_POLICY(policy)),
                                TAG_IF(t, TPTAG_TLS_VERIFY_DEPTH(kTlsVerifyDepth)), TAG_END());
      if (!agent_) {
        *error = "cannot listen on " + settings_.transports[0] +
                 ": is the address local and the port free? (log-level = debug tells more)";
        return false;
      }
    } else if (nta_agent_add_tport(
                   agent_, URL_STRING_MAKE(settings_.transports[i].c_str()),
                   TAG_IF(t, TPTAG_CERTIFICATE(dir)), TAG_IF(t, TPTAG_TLS_VERIFY_POLICY(policy)),
                   TAG_IF(t, TPTAG_TLS_VERIFY_DEPTH(kTlsVerifyDepth)), TAG_END()) < 0) {
      *error = "cannot listen on " + settings_.transports[i] +
               ": is the address local and the port free? (log-level = debug tells more)";
      return false;
    }
    if (!t) continue;
    if (!tls::adopt(t, capture.contexts(), t->settings.ciphers_changed(), error)) return false;
    PLOG_INFO(
        "tls: %s serves %s, serial %s, until %s, %zu intermediate(s); clients %s, servers %s%s",
        t->name.c_str(), t->certificate.subject.c_str(), t->certificate.serial.c_str(),
        t->certificate.not_after.c_str(), t->certificate.intermediates,
        t->settings.verify_incoming ? "must show a certificate from the CA file"
                                    : "are not asked for a certificate",
        t->settings.verify_outgoing ? "verified with their name" : "not verified",
        !t->contexts.empty() ? (", TLS 1.2+, ciphers " + t->settings.ciphers + ", TLS 1.3 suites " +
                                t->settings.ciphersuites)
                                   .c_str()
                             : "");
  }
  for (tport_t *tp = nta_agent_tports(agent_); tp; tp = tport_next(tp)) {
    const tp_name_t *n = tport_name(tp);
    if (n && n->tpn_host && n->tpn_port && strcmp(n->tpn_host, "*") != 0) {
      std::string host = n->tpn_host;
      if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
      names_.add_address({n->tpn_proto ? n->tpn_proto : "udp", host, n->tpn_port});
      PLOG_INFO("listening on %s %s:%s", n->tpn_proto, n->tpn_host, n->tpn_port);
    }
  }
  if (!udp_fastpath::attach(nta_agent_tports(agent_)))
    PLOG_INFO("udp fast path %s", udp_fastpath::status().why.c_str());

  {
    unsigned char r[8];
    if (RAND_bytes(r, sizeof r) != 1) std::fill(r, r + sizeof r, 0);
    char hex[17];
    for (size_t i = 0; i < sizeof r; ++i) snprintf(hex + 2 * i, 3, "%02x", r[i]);
    stateless_tag_ = std::string("pz") + hex;
  }
  stateless_in_ = nta_incoming_default(agent_);
  stateless_out_ = nta_outgoing_default(agent_, on_stray_response, this);
  if (!stateless_in_ || !stateless_out_) {
    *error = "cannot set up the SIP agent";
    return false;
  }
  if (settings_.relay.enabled) {
    relay_ = std::make_unique<MediaRelay>(settings_.relay);
    PLOG_INFO("relay: media through %s, ports %u-%u", settings_.relay.sdp_address.c_str(),
              settings_.relay.port_min, settings_.relay.port_max);
  }
  if (relay_) relay_observer_ = std::make_unique<RelayObserver>(*relay_);
  // Devices and houses keep their TLS flows alive with CRLFCRLF and want a
  // pong (RFC 5626 §4.4.1), which sofia-sip answers on TCP only.
  flow_io::enable_pongs();
  router_ = std::make_unique<Router>(
      RouterEnv{agent_, root_, settings_, users_, names_, events_,
                [this](nta_incoming_t *irq, msg_t *msg, const std::vector<std::string> &targets) {
                  return record_route_for(irq, msg, targets);
                },
                [this](const url_t *target) { return flow_for(target); },
                settings_.push.enabled
                    ? std::function<bool(const chain::Target &, const sip_t *, push::PushKind)>(
                          [this](const chain::Target &target, const sip_t *sip,
                                 push::PushKind kind) { return push_for(target, sip, kind); })
                    : nullptr,
                [this](const std::string &domain) { return domain_flow(domain); }},
      relay_observer_.get());
  if (settings_.push.enabled) {
    push_ = std::make_unique<push::PushClient>(root_, settings_.push);
    PLOG_INFO("push: enabled (%zu FCM project(s), APNs %s, webhook %s)",
              settings_.push.service_accounts.size(),
              settings_.push.apns_key                         ? "token"
              : !settings_.push.apns_certificate_file.empty() ? "certificate"
                                                              : "off",
              settings_.push.webhook_url.empty() ? "off" : "on");
  }
  tcp_ = std::make_unique<TcpConnections>(
      agent_, ConnectionLimits::Settings{settings_.max_connections_per_source,
                                         int64_t{settings_.idle_timeout} * 1000,
                                         int64_t{settings_.tcp_incomplete_message_timeout} * 1000});
  if (settings_.auth_enabled)
    digest_auth_ = std::make_unique<chain::DigestAuth>(settings_, names_, *nonces_, *authenticator_,
                                                       *limiter_);
  registrar_ =
      std::make_unique<chain::Registrar>(names_, locations_, *persister_, digest_auth_.get());
  if (settings_.house_domains.accept) {
    house_domains_ = std::make_unique<HouseDomains>(settings_.house_domains, names_, locations_);
    registrar_->set_house_domains(house_domains_.get());
    if (digest_auth_) digest_auth_->set_house_domains(house_domains_.get());
    PLOG_INFO("registrar: accepting domain registrations over TLS%s",
              settings_.house_domains.assume_unique ? " (one server per domain)" : "");
  }
  if (settings_.push.enabled) {
    registrar_->set_push(&settings_.push);
    registrar_->set_on_registered([this](const std::string &aor, const Binding &b) {
      if (!router_) return;
      su_home_t home[1] = {SU_HOME_INIT(home)};
      const url_t *u = url_make(home, b.contact.c_str());
      router_->on_registered(aor, chain::Target{b.contact, chain::next_hop_for(u, b.received), aor,
                                                b.push, b.instance});
      su_home_deinit(home);
    });
  }
  chain_ = chain::build_chain(
      {settings_, names_, stateless_tag_, limiter_.get(), tcp_.get(), *route_signer_, *router_,
       *registrar_, digest_auth_.get(), locations_, static_records_, users_, *router_,
       house_domains_.get(),
       settings_.domain_registrations.entries.empty()
           ? nullptr
           : std::function<std::string(const std::string &)>([this](const std::string &domain) {
               return domain_registrar_ ? domain_registrar_->cloud_hop(domain) : std::string();
             })});

  if (!settings_.domain_registrations.entries.empty()) {
    domain_registrar_ = std::make_unique<DomainRegistrar>(
        agent_, root_, settings_.domain_registrations, settings_.state_directory, events_);
    if (!domain_registrar_->start(error)) return false;
    // sofia refuses a cloud whose certificate fails without a word, and the
    // REGISTER times out after 32 s (docs/TLS.md §3): name the reason in one
    // line at the handshake instead. tls/ checks one name per context, so
    // only when every line names the same cloud host.
    std::set<std::string> hosts;
    for (const auto &e : settings_.domain_registrations.entries) hosts.insert(e.cloud_host);
    if (hosts.size() == 1)
      for (const auto &t : tls_)
        if (t) tls::expect_server_name(*t, *hosts.begin());
  }

  housekeeping_ = su_timer_create(su_root_task(root), 1000);
  // Runs every second for as long as the proxy does (su_timer_set_interval
  // would fire only once).
  su_timer_set_for_ever(housekeeping_, on_housekeeping, this);

  if (!settings_.control_socket.empty()) {
    std::string dir = settings_.control_socket.substr(0, settings_.control_socket.rfind('/'));
    if (!dir.empty() && !make_dirs(dir, error)) return false;
    if (!control_.open(
            root_, settings_.control_socket,
            [this](const std::string &line) { return commands_.dispatch(line); }, error))
      return false;
  }
  PLOG_INFO("portier-proxy ready");
  return true;
}

void Proxy::stop() {
  control_.close();
  push_.reset();
  if (persister_) {
    // What is queued reaches the disk and its 200s go out before the agent goes.
    persister_->drain();
    if (registrar_) {
      if (agent_) registrar_->release_register_replies();
      registrar_->drop_held_replies();
    }
    if (journal_registration_ >= 0) su_root_deregister(root_, journal_registration_);
    journal_registration_ = -1;
    std::string error;
    if (!persister_->compact_now(locations_, &error)) PLOG_ERROR("registrar: %s", error.c_str());
    persister_.reset();
  }
  if (housekeeping_) su_timer_destroy(housekeeping_), housekeeping_ = nullptr;
  chain_ = chain::Chain();
  domain_registrar_.reset();  // its transactions and connections go before the agent
  registrar_.reset();
  digest_auth_.reset();
  house_domains_.reset();  // its tport references too
  tcp_.reset();  // its tport references go before the agent
  router_.reset();
  relay_observer_.reset();
  relay_.reset();
  if (stateless_in_) nta_incoming_destroy(stateless_in_), stateless_in_ = nullptr;
  if (stateless_out_) nta_outgoing_destroy(stateless_out_), stateless_out_ = nullptr;
  udp_fastpath::detach();
  if (agent_) nta_agent_destroy(agent_), agent_ = nullptr;
}

void Proxy::on_housekeeping(su_root_magic_t *, su_timer_t *, void *self_) {
  auto *self = static_cast<Proxy *>(self_);
  const int64_t now = clock::wall_s();
  // Small registrars are swept whole every tick, as an expiry is then logged at
  // once; a large one a sixteenth per tick, so the walk stays a few ms at a
  // million AORs and every AOR is still visited every 16 s.
  constexpr size_t kPurgeWholeUpTo = 4096;
  const size_t aors = self->locations_.aor_count();
  size_t gone = self->locations_.purge_expired(now, std::max(kPurgeWholeUpTo, aors / 16));
  if (gone) self->events_.add("expired", {events::field("bindings", static_cast<int64_t>(gone))});
  // Every change is in the journal already; this only keeps it short, so a
  // restart replays little. The snapshot is written on the worker thread.
  if (self->persister_->journal_bytes() > kCompactJournalAfterBytes)
    self->persister_->compact_in_background(self->locations_);
  self->router_->expire_dialogs(now);
  self->tcp_->review(self->locations_, now);
  if (self->relay_) self->relay_->expire_idle();
  if (self->digest_auth_) self->digest_auth_->log_auth_summaries();
  self->give_back_memory();
}

void Proxy::give_back_memory() {
  // After a burst of calls their transactions all leave nta within a few
  // seconds, 32 s after the calls ended. When the count has fallen to a quarter
  // of its peak, give the free pages back now rather than bit by bit.
  usize_t irqs = 0, orqs = 0;
  nta_agent_get_stats(agent_, NTATAG_S_IRQ_HASH_USED_REF(irqs), NTATAG_S_ORQ_HASH_USED_REF(orqs),
                      TAG_END());
  const size_t now_used = irqs + orqs;
  transactions_peak_ = std::max(transactions_peak_, now_used);
  if (transactions_peak_ >= kTrimAfterTransactions && now_used * 4 <= transactions_peak_) {
    allocator::give_back_free_pages();
    PLOG_DEBUG("memory: %zu transactions left of a peak of %zu, free pages returned", now_used,
               transactions_peak_);
    transactions_peak_ = now_used;
  }
}

std::string Proxy::transport_of(const url_t *url) {
  if (!url) return "udp";
  char proto[16];
  if (url_param(url->url_params, "transport", proto, sizeof proto) > 0) {
    for (char *c = proto; *c; ++c) *c = static_cast<char>(tolower(*c));
    return proto;
  }
  return url->url_type == url_sips ? "tls" : "udp";
}

std::string Proxy::uri_for(const HostPort &hp) const {
  std::string host = hp.host.find(':') != std::string::npos ? "[" + hp.host + "]" : hp.host;
  std::string uri = "sip:" + host + ":" + hp.port;
  if (strcasecmp(hp.proto.c_str(), "udp") != 0) uri += ";transport=" + hp.proto;
  return uri;
}

std::string Proxy::reload_policy(const ProxySettings &fresh) {
  if (fresh.auth_enabled != settings_.auth_enabled)
    return "[module::Authentication] enabled changed: that takes a restart";
  // Everything is read and checked before anything changes: a bad file keeps
  // the whole set in force.
  auth::UsersFile users;
  std::string error;
  if (fresh.auth_enabled && !users.load(fresh.users_file, &error)) return error;
  StaticRecords statics;
  if (!fresh.static_records_file.empty() && !statics.load(fresh.static_records_file, &error))
    return error;
  const LocalNames::Domains user_domains = users.domains();
  LocalNames::Domains reg = LocalNames::expand(fresh.reg_domains, user_domains);
  LocalNames::Domains auth = LocalNames::expand(fresh.auth_domains, user_domains);

  // The Authenticator, the router and the chain keep references to these
  // objects: their contents change, not their addresses.
  users_ = std::move(users);
  static_records_ = std::move(statics);
  names_.set_domains(std::move(reg), std::move(auth));
  settings_.reg_domains = fresh.reg_domains;
  settings_.auth_domains = fresh.auth_domains;
  settings_.users_file = fresh.users_file;
  settings_.static_records_file = fresh.static_records_file;
  settings_.group_addresses = fresh.group_addresses;
  settings_.inter_domain_allowed = fresh.inter_domain_allowed;
  if (router_) router_->forget_proof_keys();

  // A binding whose domain is no longer served, or whose user is gone, is
  // removed at once rather than left to expire: a resident taken out of the
  // file (moved out, lost phone) must stop receiving the door's calls now, not
  // up to max-expires later. Its device gets 403 at its next refresh.
  std::vector<std::string> gone;
  for (const auto &[aor, bindings] : locations_.records()) {
    const std::string domain = aor_domain(aor);
    const size_t at = aor.rfind('@');
    // A house's domain binding (sip:HOUSE, no user part) is none of our
    // domains by design: it stays while such registrations are still
    // accepted for that domain (its flow is the house's only route back; the
    // house proves itself again at its next refresh).
    if (at == std::string::npos && house_domains_ && house_domains_->may_register(domain.c_str()))
      continue;
    const bool served = names_.is_reg_domain(domain.c_str());
    const bool known = !settings_.auth_enabled ||
                       (at != std::string::npos && at > 4 &&
                        users_.has_user(std::string_view(aor).substr(4, at - 4), domain));
    if (!served || !known) gone.push_back(aor);
  }
  static const std::vector<Binding> kNone;
  for (const std::string &aor : gone) {
    locations_.remove_aor(aor);
    if (persister_) persister_->append(LocationPersister::journal_record(aor, kNone));
    events_.add("unregistered", {events::field("aor", aor), events::field("from", "reload"),
                                 events::field("bindings", int64_t{0})});
  }
  PLOG_INFO(
      "reload: %zu user(s), %zu domain(s) served, %zu static record(s), inter-domain requests "
      "%s; %zu address(es) of record removed (user or domain no longer served)",
      users_.size(), names_.reg_domains().size(), static_records_.size(),
      settings_.inter_domain_allowed ? "allowed" : "denied", gone.size());
  return "";
}

std::string Proxy::reload_tls() {
  std::string failed;
  for (const auto &t : tls_) {
    if (!t) continue;
    std::string report, error;
    if (tls::reload(t.get(), t->settings.files, &report, &error)) {
      PLOG_INFO("tls: reloaded %s", report.c_str());
    } else {
      PLOG_ERROR("tls: reload refused, the old certificate is still served: %s", error.c_str());
      failed += (failed.empty() ? "" : "; ") + error;
    }
  }
  return failed;
}

std::string Proxy::domain_flow(const std::string &domain) const {
  if (domain_registrar_) {
    std::string hop = domain_registrar_->cloud_hop(domain);
    if (!hop.empty()) return hop;
  }
  return house_domains_ ? house_domains_->hop(domain, clock::wall_s()) : std::string();
}

std::string Proxy::flow_for(const url_t *target) const {
  if (!target || !target->url_host || tcp_->flows() == 0) return "";
  // Only a target on a stream transport can be a flow's: a UDP device's
  // in-dialog requests cost no look-up.
  const std::string proto = transport_of(target);
  if (strcasecmp(proto.c_str(), "tcp") != 0 && strcasecmp(proto.c_str(), "tls") != 0) return "";
  su_home_t home[1] = {SU_HOME_INIT(home)};
  std::string hop;
  for (const auto &[aor, bindings] : locations_.records()) {
    for (const Binding &b : bindings) {
      if (b.received.compare(0, 4, "tls:") != 0 && b.received.compare(0, 4, "tcp:") != 0) continue;
      const url_t *c = url_make(home, b.contact.c_str());
      if (c && url_cmp(c, target) == 0) {
        hop = chain::next_hop_for(c, b.received);
        break;
      }
    }
    if (!hop.empty()) break;
  }
  su_home_deinit(home);
  return hop;
}

std::vector<std::string> Proxy::record_route_for(nta_incoming_t *irq, msg_t *msg,
                                                 const std::vector<std::string> &targets) {
  tport_t *tp = nta_incoming_transport(agent_, irq, msg);
  // A connection's name is its peer's; the entry names our listening point.
  tport_t *primary = tp && tport_is_secondary(tp) ? tport_parent(tp) : tp;
  const tp_name_t *n = primary ? tport_name(primary) : nullptr;
  HostPort in;
  if (n && n->tpn_host && n->tpn_port) {
    in.proto = n->tpn_proto ? n->tpn_proto : "udp";
    in.host = n->tpn_host;
    if (in.host.size() > 2 && in.host.front() == '[')
      in.host = in.host.substr(1, in.host.size() - 2);
    in.port = n->tpn_port;
  }
  if (tp) tport_unref(tp);
  std::vector<std::string> out(targets.size());
  if (in.host.empty()) return out;
  const sip_t *sip = sip_object(msg);
  const std::string sig =
      sip && sip->sip_call_id && sip->sip_from && sip->sip_from->a_tag
          ? ";sig=" + route_signer_->sign(sip->sip_call_id->i_id, sip->sip_from->a_tag)
          : std::string();
  // Every branch that leaves on the transport the request came in on (all of
  // them, mostly) gets the same entry: written once.
  const std::string in_uri = uri_for(in);
  const std::string same = "<" + in_uri + ";lr" + sig + ">";

  su_home_t home[1] = {SU_HOME_INIT(home)};
  for (size_t i = 0; i < targets.size(); ++i) {
    const std::string &target = targets[i];
    std::string out_proto = in.proto;
    if (!target.empty() && strcasestr(target.c_str(), "transport") == nullptr) {
      // No transport parameter (a device's contact, mostly): the scheme decides,
      // as transport_of would after parsing the URI.
      out_proto = ascii::istarts_with(target, "sips:") ? "tls" : "udp";
    } else if (url_t *t = target.empty() ? nullptr : url_make(home, target.c_str())) {
      out_proto = transport_of(t);
    }
    if (strcasecmp(out_proto.c_str(), in.proto.c_str()) == 0) {
      out[i] = same;
      continue;
    }
    // Our listening point on the outgoing transport, same address family preferred.
    const HostPort *via = nullptr;
    for (const auto &u : names_.addresses()) {
      if (strcasecmp(u.proto.c_str(), out_proto.c_str()) != 0) continue;
      bool same_family =
          (u.host.find(':') != std::string::npos) == (in.host.find(':') != std::string::npos);
      if (!via || same_family) via = &u;
      if (same_family) break;
    }
    out[i] =
        via ? "<" + uri_for(*via) + ";lr;r2=on" + sig + ">, <" + in_uri + ";lr;r2=on" + sig + ">"
            : same;
  }
  su_home_deinit(home);
  return out;
}

int Proxy::on_message(void *self_, nta_agent_t *agent, msg_t *msg, sip_t *sip) {
  auto *self = static_cast<Proxy *>(self_);
  if (!sip || !sip->sip_request || !sip->sip_cseq) {
    msg_destroy(msg);  // responses come to on_stray_response; this is neither
    return 0;
  }
  const sip_method_t method = sip->sip_request->rq_method;
  // REGISTER is answered statelessly, as Kamailio's registrar does: a UDP
  // retransmission is simply processed again (the location store treats the
  // same Call-ID and CSeq as a retransmission), and no transaction is kept
  // for 32 s per REGISTER. ACK and CANCEL that matched no transaction get no
  // state either. Other requests get a transaction only when the router
  // forwards them (see Reply): challenges and refusals stay stateless.
  const bool may_keep =
      method != sip_method_register && method != sip_method_ack && method != sip_method_cancel;
  Reply reply(agent, nullptr, msg, may_keep ? sip : nullptr);
  reply.set_stateless_tag(self->stateless_tag_.c_str());
  chain::RequestContext ctx(msg, sip, reply);
  if (self->domain_registrar_) {
    tport_t *tp = nta_incoming_transport(agent, nullptr, msg);
    ctx.cloud_flow = self->domain_registrar_->flow_domain(tp);
    if (tp) tport_unref(tp);
  }
  self->chain_.run(ctx);
  msg_destroy(msg);
  return 0;
}

int Proxy::on_stray_response(void *self_, nta_outgoing_t *orq, const sip_t *sip) {
  // A response that matches no client transaction of ours. The only one worth
  // passing on is a 2xx to an INVITE retransmitted after its branch ended
  // (§16.7 step 5, §13.3.1.4): it must belong to a dialog we recorded and come
  // from its callee. Anything else is dropped: forwarding whatever the next Via
  // names made us a reflector to any host.
  auto *self = static_cast<Proxy *>(self_);
  msg_t *msg = nta_outgoing_getresponse(orq);
  if (!msg) return 0;
  sip_t *rsip = sip_object(msg);
  if (rsip && rsip->sip_via && rsip->sip_via->v_next && rsip->sip_status &&
      rsip->sip_status->st_status >= 200 && rsip->sip_status->st_status < 300 && rsip->sip_cseq &&
      rsip->sip_cseq->cs_method == sip_method_invite &&
      self->router_->is_dialog_response(rsip, chain::source_address(msg))) {
    url_t via_url[1];
    url_init(via_url, url_sip);
    via_url->url_host = rsip->sip_via->v_host;
    via_url->url_port = rsip->sip_via->v_port;
    if (self->names_.is_our_address(via_url)) {
      sip_via_remove(msg, rsip);
      nta_incoming_mreply(self->stateless_in_, msg);
      return 0;
    }
  }
  PLOG_DEBUG("stray response %d from %s matches no transaction or dialog: dropped",
             rsip && rsip->sip_status ? rsip->sip_status->st_status : 0,
             chain::source_of(msg).c_str());
  msg_destroy(msg);
  return 0;
}

std::string Proxy::bans_json(int64_t now) const {
  json::Writer w;
  w.begin_object().key("bans").begin_array();
  if (limiter_)
    for (const auto &b : limiter_->bans(now))
      w.begin_object()
          .field("address", b.source)
          .field("seconds_left", b.until - now)
          .field("times_banned", b.bans)
          .end_object();
  return w.end_array().end_object().take();
}

int Proxy::on_journal_written(su_root_magic_t *, su_wait_t *, void *self) {
  auto *proxy = static_cast<Proxy *>(self);
  if (proxy->registrar_) proxy->registrar_->release_register_replies();
  return 0;
}

std::string Proxy::registrations_json() const {
  const int64_t now = clock::wall_s();
  const int64_t now_up = clock::wall_s_rounded_up();
  json::Writer w;
  w.begin_object().key("registrations").begin_array();
  for (const auto &[aor, bindings] : locations_.records()) {
    for (const auto &b : bindings) {
      if (b.expires_at <= now) continue;
      char q[16];
      snprintf(q, sizeof q, "%.3g", b.q_milli / 1000.0);
      w.begin_object()
          .field("aor", aor)
          .field("contact", b.contact)
          .field("expires", std::max<int64_t>(0, b.expires_at - now_up))
          .raw_field("q", q)
          .field("instance", b.instance)
          .field("user_agent", b.user_agent)
          .field("received", b.received)
          // The provider only: the device token wakes the phone, and a
          // listing is copied into tickets and chats.
          .field("push", b.push.provider)
          .end_object();
    }
  }
  return w.end_array().end_object().take();
}

bool Proxy::push_for(const chain::Target &target, const sip_t *sip, push::PushKind kind) {
  if (!push_) return false;
  if (kind != push::PushKind::Call &&
      !push::follow_up_possible(target.push.provider, target.push.param, target.push.prid))
    return false;
  push::PushRequest req;
  req.provider = target.push.provider;
  req.prid = target.push.prid;
  req.param = target.push.param;
  req.call_id = sip->sip_call_id ? sip->sip_call_id->i_id : "";
  if (sip->sip_from) {
    req.caller_uri = sipmsg::url_string(sip->sip_from->a_url);
    if (sip->sip_from->a_display)
      req.caller_display = std::string(siptext::strip_quotes(sip->sip_from->a_display));
  }
  req.kind = kind;
  // The app has until the fork gives up to register and ring (a follow-up:
  // as long again to be delivered).
  req.deadline =
      std::chrono::steady_clock::now() + std::chrono::seconds(settings_.call_fork_timeout);
  const std::string aor = target.aor, contact = target.uri, call_id = req.call_id;
  const PushTarget pushed = target.push;
  push_->send(req, [this, aor, contact, call_id, pushed](const push::PushResult &r) {
    if (r.outcome == push::PushOutcome::Delivered) {
      PLOG_DEBUG("push: %s via %s delivered (call-id=%s, %d attempt(s))", aor.c_str(),
                 pushed.provider.c_str(), call_id.c_str(), r.attempts);
      return;
    }
    PLOG_INFO("push: %s via %s: %s, HTTP %d %s (call-id=%s)", aor.c_str(), pushed.provider.c_str(),
              push::outcome_name(r.outcome), r.status, r.reason.c_str(), call_id.c_str());
    if (r.outcome != push::PushOutcome::InvalidToken) return;
    // The provider says the token will never reach the device again: the
    // binding stays (the app may still be running) but is pushed no more.
    if (const std::vector<Binding> *record = locations_.drop_push(aor, contact, pushed)) {
      if (persister_) persister_->append(LocationPersister::journal_record(aor, *record));
      events_.add("push_dropped",
                  {events::field("aor", aor), events::field("provider", pushed.provider)});
      PLOG_INFO("push: %s: the device token was refused: its push parameters are dropped",
                aor.c_str());
    }
  });
  return true;
}

std::string Proxy::stats_json() const {
  // nta's own counts too: a request answered by nta's transaction (a 407, a 404)
  // lives on there for 32 s, and the router never sees it.
  usize_t irqs = 0, orqs = 0;
  nta_agent_get_stats(agent_, NTATAG_S_IRQ_HASH_USED_REF(irqs), NTATAG_S_ORQ_HASH_USED_REF(orqs),
                      TAG_END());
  const allocator::Usage memory = allocator::usage();
  const udp_fastpath::Status fast = udp_fastpath::status();
  const tls::OneRecordStats joined = tls::one_record_stats();
  json::Writer w;
  w.begin_object()
      .field("bindings", locations_.binding_count())
      .field("transactions", router_->transactions())
      .field("server_transactions", irqs)
      .field("client_transactions", orqs)
      .field("banned", limiter_ ? limiter_->bans(clock::wall_s()).size() : 0)
      .field("memory_allocated_kb", memory.allocated / 1024)
      .field("memory_resident_kb", memory.resident / 1024)
      .field("udp_fastpath", fast.active ? std::string("on") : fast.why)
      .field("udp_fastpath_datagrams", fast.datagrams)
      .field("udp_fastpath_resends", fast.resends)
      // Stream (TCP, TLS) messages sent as one piece, and the pieces they were
      // in: one TLS record each instead of one per piece (tls/one_record.h).
      .field("stream_messages_joined", joined.joined)
      .field("stream_message_pieces", joined.pieces)
      .field("domain_registrations", domain_registrar_ ? domain_registrar_->size() : size_t{0})
      .field("domain_registrations_registered",
             domain_registrar_ ? domain_registrar_->registered() : size_t{0})
      // The relay's ICE-lite: checks answered, STUN refused (proxy/ice_lite.h).
      .field("relay_stun_answered", relay_ ? relay_->stun_counters().answered : uint64_t{0})
      .field("relay_stun_refused", relay_ ? relay_->stun_counters().refused : uint64_t{0});
  // What each TLS transport serves now (reload changes it): for renewal checks.
  w.key("tls").begin_array();
  for (const auto &t : tls_)
    if (t)
      w.begin_object()
          .field("transport", t->name)
          .field("subject", t->certificate.subject)
          .field("serial", t->certificate.serial)
          .field("not_after", t->certificate.not_after)
          .field("hardened", !t->contexts.empty())
          .end_object();
  w.end_array();
  return w.end_object().take();
}

std::string Proxy::unban(const std::string &address) {
  if (!limiter_) return control::error("authentication is disabled: nothing is banned");
  json::Writer w;
  w.begin_object().field("ok", true);
  if (address == "all") {
    const size_t n = limiter_->unban_all();
    PLOG_WARN("auth: every ban lifted by portierctl (%zu address(es))", n);
    w.field("unbanned", n);
  } else {
    if (!limiter_->unban(address)) return control::error("'" + address + "' is not banned");
    PLOG_WARN("auth: ban of %s lifted by portierctl", address.c_str());
    w.field("unbanned", address);
  }
  return w.end_object().take();
}

std::vector<control::Command> Proxy::control_commands() {
  using Args = const std::string &;
  return {
      {"registrations", "", "every registered contact (AOR, contact, expires, user agent)",
       [this](Args) { return registrations_json(); }},
      {"calls", "", "calls in progress",
       [this](Args) { return router_->calls_json(clock::wall_s()); }},
      {"relay", "", "media relay: calls, branches, ports in use",
       [this](Args) {
         return relay_ ? relay_->json()
                       : json::Writer()
                             .begin_object()
                             .field("ports_in_use", 0)
                             .key("calls")
                             .begin_array()
                             .end_array()
                             .field("enabled", false)
                             .end_object()
                             .take();
       }},
      {"stats", "", "bindings, transactions and banned addresses",
       [this](Args) { return stats_json(); }},
      {"domain-registrations", "",
       "our domains' registrations to the cloud: state, cloud, last error, since",
       [this](Args) {
         return domain_registrar_ ? domain_registrar_->json()
                                  : json::Writer()
                                        .begin_object()
                                        .key("domain_registrations")
                                        .begin_array()
                                        .end_array()
                                        .end_object()
                                        .take();
       }},
      {"events", "", "the last registrations, removals and call outcomes",
       [this](Args) { return events_.json_array(); }},
      {"bans", "", "addresses banned for failing authentication",
       [this](Args) { return bans_json(clock::wall_s()); }},
      {"unban", "ADDRESS|all", "lift one ban, or every ban",
       [this](Args address) {
         return address.empty() ? control::error("unban ADDRESS|all") : unban(address);
       }},
      control::reload_command([this] { return reload_ ? reload_() : reload_tls(); }),
  };
}

}  // namespace portier::proxy
