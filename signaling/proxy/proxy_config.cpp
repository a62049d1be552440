#include "proxy/proxy_config.h"

#include <algorithm>

namespace portier::proxy {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), ::tolower);
  return s;
}

// 127.0.0.0/8, ::1, localhost: nobody else on the network reaches them. A
// wildcard (0.0.0.0, ::, *) or a name listens where others do.
bool loopback_host(const std::string &sofia_url) {
  std::string host = sofia_url.substr(sofia_url.find(':') + 1);
  if (!host.empty() && host[0] == '[')
    host = host.substr(1, host.find(']') - 1);
  else
    host = host.substr(0, host.find_first_of(":;"));
  return host.compare(0, 4, "127.") == 0 || host == "::1" || lower(host) == "localhost";
}

// The suites of srtp-crypto-suites, in the config's order; "" or why not.
// Linphone writes its srtp_crypto_suites with commas: those are accepted too.
std::string parse_suites(const std::vector<std::string> &words, std::vector<sdp::SrtpSuite> *out) {
  out->clear();
  for (std::string w : words) {
    while (!w.empty() && w.back() == ',') w.pop_back();
    if (w.empty()) continue;
    auto suite = sdp::suite_from_name(w);
    if (!suite) return "'" + w + "' is not an SRTP suite the relay knows";
    if (std::find(out->begin(), out->end(), *suite) != out->end())
      return "'" + w + "' is listed twice";
    out->push_back(*suite);
  }
  return out->empty() ? "at least one SRTP suite needed" : "";
}

config::Schema make_schema() {
  config::Schema s("portier-proxy");
  s.list("global", "transports", "sip:127.0.0.1:5060 sip:127.0.0.1:5060;transport=tcp",
         "SIP URIs to listen on, space-separated; IPv6 as sip:[::1]:5060. TLS: "
         "sips:HOST:PORT (or sip:HOST:PORT;transport=tls), with the tls-* keys below as URI "
         "parameters for that transport alone, plus tls-verify-incoming=1 (ask clients for a "
         "certificate from the CA file) and tls-verify-outgoing=1 (check the certificate and "
         "name of a TLS server we connect to); e.g. "
         "sips:0.0.0.0:5061;tls-certificates-file=/etc/portier/proxy.crt;"
         "tls-certificates-private-key=/etc/portier/proxy.key")
      .str("global", "tls-certificates-file", "",
           "PEM certificate chain of the TLS transports, leaf first (a fullchain.pem): the "
           "intermediates are sent too")
      .str("global", "tls-certificates-private-key", "",
           "its unencrypted PEM private key (readable by the proxy only)")
      .str("global", "tls-certificates-ca-file", "",
           "PEM CA certificates that TLS peers are verified against (empty: none)")
      .str("global", "tls-ciphers", kDefaultTlsCiphers,
           "OpenSSL cipher list for TLS 1.2 (TLS 1.0 and 1.1 are never accepted; TLS 1.3 "
           "takes tls-ciphersuites)")
      .str("global", "tls-ciphersuites", kDefaultTlsCiphersuites,
           "TLS 1.3 suites, colon-separated (OpenSSL's SSL_CTX_set_ciphersuites syntax), e.g. "
           "TLS_AES_128_GCM_SHA256; also a URI parameter of one transport");
  add_global_schema(s, "/run/portier/proxy.sock",
                    "registrations, calls, relay, stats, bans, unban, help");
  s.str("global", "state-directory", "/var/lib/portier",
        "directory for registrations and the nonce key (created if missing)")
      .list("global", "aliases", "",
            "other host names of this proxy, space-separated (as phones set their outbound "
            "proxy); the reg-domains and our transport addresses need no entry")
      .integer("global", "idle-timeout", 3600, 1, 86400 * 7,
               "seconds a TCP connection may go without a SIP request before it is closed; "
               "one that carries a live registration stays while the binding lives")
      .integer("global", "tcp-incomplete-message-timeout", 60, 1, 3600,
               "seconds a TCP connection may stall in the middle of a SIP message, or a new one "
               "(TLS: its handshake included) wait before its first request, before it is "
               "closed")
      .integer("global", "max-connections-per-source", 64, 1, 100000,
               "TCP connections one peer address may hold open; its newest beyond that are "
               "closed")
      // RFC 3261 §18.1.1 sends a request over 1300 bytes by TCP when the path
      // MTU is unknown. A device registered over UDP may not listen on TCP, and
      // behind a NAT the SYN is dropped silently: nta then waits 5 s (T4)
      // before UDP. The relay's audio+video SDES offer is about 1,360 bytes,
      // so every relayed call hit that. Home and cloud paths are Ethernet or
      // Wi-Fi (1500): 1460 fits with room for an IPv6 header, as Flexisip's
      // default of the same key.
      .integer("global", "udp-mtu", 1460, 576, 65535,
               "bytes: a request to a UDP destination larger than this is sent by TCP first "
               "(RFC 3261 section 18.1.1); the default fits a 1500-byte Ethernet or Wi-Fi "
               "frame");
  s.list("module::Registrar", "reg-domains", "home.example",
         "domains we are registrar for, space-separated; * stands for every domain the users "
         "file names (never for any domain a request names); a REGISTER for another domain "
         "gets 403. Reloaded by SIGHUP and portierctl reload")
      .list("module::Registrar", "group-addresses", "sip:home@home.example",
            "addresses that ring every device registered in their domain; sip:USER@* is USER "
            "in every served domain, each ringing its own domain's devices")
      .str("module::Registrar", "static-records-file", "",
           "Flexisip-format aliases: <sip:alias@dom> <sip:a@dom>,<sip:b@dom> (empty: none); "
           "<sip:alias@*> <sip:a@*>,<sip:b@*> is the alias in every served domain, ringing "
           "that domain's a and b. An alias rings the AORs of its own domain only, unless "
           "[module::Router] inter-domain-requests = allow. Reloaded by SIGHUP and "
           "portierctl reload")
      .integer("module::Registrar", "min-expires", 60, 1, 86400,
               "shortest registration accepted; shorter ones get 423")
      .integer("module::Registrar", "max-expires", 3600, 1, 86400 * 7,
               "longest registration granted; longer ones are cut")
      .integer("module::Registrar", "default-expires", 3600, 1, 86400 * 7,
               "registration time when the client names none")
      .integer("module::Registrar", "max-contacts-per-aor", 32, 1, 1000,
               "bindings kept per address of record");
  s.boolean("module::Authentication", "enabled", true, "require digest authentication")
      .list("module::Authentication", "auth-domains", "home.example",
            "domains whose users must authenticate (the realm is the domain); * stands for "
            "every domain the users file names")
      .str("module::Authentication", "file-path", "/etc/portier/users.conf",
           "users file, Flexisip format: version:1 then 'user@domain clrtxt:secret ;'. "
           "Reloaded by SIGHUP and portierctl reload (a bad file keeps the users in force); a "
           "user no longer in it cannot authenticate, and its registrations are removed")
      .list("module::Authentication", "available-algorithms", "MD5 SHA-256",
            "digest algorithms offered, one challenge each, in this order (MD5 alone for "
            "baresip 1.0, which fails on any other challenge)",
            {"MD5", "SHA-256"})
      .integer("module::Authentication", "nonce-expires", 3600, 10, 86400,
               "seconds a nonce is valid before clients get stale=true")
      .integer("module::Authentication", "max-failures-per-source", 10, 0, 100000,
               "failed digest responses from one address that ban it (0: never ban)")
      .integer("module::Authentication", "ban-time", 600, 1, 86400,
               "seconds a banned address is ignored; each further ban doubles it, up to a day")
      .integer("module::Authentication", "failure-backoff", 1, 0, 3600,
               "seconds an address waits after its 3rd failure in a row before its credentials "
               "are checked again; doubles with each further failure (0: none)")
      .integer("module::Authentication", "max-failures-per-user", 20, 0, 100000,
               "failures for one user from all addresses (within ban-time) that log an alarm; "
               "the user is never locked out (0: no alarm)")
      .integer("module::Authentication", "failure-log-lines", 5, 1, 10000,
               "'auth failure' lines logged per address per minute; the rest are summed up")
      .integer("module::Authentication", "failure-tracking-entries", 4096, 16, 1000000,
               "addresses (and users) whose failures are remembered: bounds the memory");
  s.integer("module::Router", "call-fork-timeout", 60, 1, 3600,
            "seconds before unanswered branches are cancelled; the caller gets the best "
            "answer so far at once (408 if none; 480 when only pushed phones that did not "
            "wake were rung)")
      // A resident has a phone or two; a pushed one that wakes normally needs
      // one late branch, a second when it comes back from yet another address.
      // 8 per AOR covers that with room to spare, and bounds what one
      // authenticated device re-registering in a loop can make a call send.
      .integer("module::Router", "fork-late-max-branches", 8, 1, 1000,
               "branches a ringing call adds for the devices of one address of record that "
               "register while it rings (pushed phones waking up, RFC 8599); beyond that, a "
               "REGISTER is stored but rings nothing (a device re-registering in a loop cannot "
               "make a call send an INVITE per REGISTER, nor keep another resident's phone out)")
      .str("module::Router", "inter-domain-requests", "deny",
           "deny: a user of one served domain sending a request to another served domain gets "
           "403, and group addresses and static records ring their own domain only (one house "
           "per domain never reaches another); allow: requests cross domains. Dialogs already "
           "set up carry on either way");
  // Flexisip's section and key names, so a Flexisip cloud config carries over.
  s.boolean("inter-domain-connections", "accept-domain-registrations", false,
            "accept REGISTERs of whole domains (To: <sips:HOUSE-DOMAIN>, no user part) from "
            "in-house proxies over TLS, and send every request for a registered domain down "
            "the connection it registered on (RFC 5626 flow), Request-URI unchanged. Who may: "
            "the users file entry HOUSE-DOMAIN@HOUSE-DOMAIN (digest username HOUSE-DOMAIN, "
            "realm HOUSE-DOMAIN), or a client certificate naming HOUSE-DOMAIN on a TLS "
            "transport with tls-verify-incoming=1. A reg-domain, auth-domain or alias of ours "
            "is never a house domain")
      .boolean("inter-domain-connections", "assume-unique-domains", false,
               "assume one server per registered domain: a domain registration from a new "
               "instance (+sip.instance) replaces the domain's older bindings at once instead "
               "of adding a flow beside them (a house that reconnected from a new address "
               "leaves no stale flow to try)");
  // The in-house side of issue 15 (docs/notes/housereg.md); names and
  // defaults are Flexisip's (its domain-registrations.cc).
  s.str("inter-domain-connections", "domain-registrations", "",
        "file of the domains this proxy registers to a cloud proxy, one per line: LOCAL-DOMAIN "
        "CLOUD-SIPS-URI [PASSWORD] (# starts a comment). Each gets a TLS connection to the "
        "cloud, verified against the CA file and by name, kept open (RFC 5626 outbound); the "
        "cloud sends the domain's calls down it. Empty: none. Read at start")
      .integer("inter-domain-connections", "keepalive-interval", 30, 0, 3600,
               "seconds between CRLFCRLF keep-alives on a domain registration's connection "
               "(RFC 5626 §4.4.1); 0: none")
      .integer("inter-domain-connections", "ping-pong-timeout-delay", 0, 0, 3600,
               "seconds to wait for the cloud's CRLF pong before the connection counts as "
               "broken and is made again; must be below keepalive-interval; 0: no pong "
               "expected (only when the cloud says Supported: outbound)")
      .integer("inter-domain-connections", "reconnection-delay", 5, 0, 3600,
               "seconds before a new connection after one broke; doubled on each failure in a "
               "row up to 5 minutes, back to this after a registration succeeds");
  push::add_push_schema(s);
  s.boolean("module::MediaRelay", "enabled", true,
            "put a media relay into every call: early media forked to every ringing device")
      .str("module::MediaRelay", "sdp-address", "127.0.0.1",
           "IP address written into rewritten SDP: where devices send their media")
      .str("module::MediaRelay", "listen-address", "",
           "IP address the relay ports are bound to (empty: sdp-address)")
      .str("module::MediaRelay", "port-range", "20000-29999",
           "UDP ports for the relay, MIN-MAX; each stream takes an even/odd pair")
      .integer("module::MediaRelay", "max-early-media-per-call", 10, 1, 100,
               "devices per call that get the early stream while ringing")
      .integer("module::MediaRelay", "inactivity-timeout", 60, 5, 86400,
               "seconds without RTP or RTCP before a call's relay is freed")
      .integer("module::MediaRelay", "threads", 0, 0, 256,
               "I/O threads that move the relayed packets, each with its own calls "
               "(0: one per online CPU the proxy may run on)")
      .str("module::MediaRelay", "latch", "signalled-host",
           "whose packets a call takes: signalled-host (the first packet must come from the "
           "host the SDP names, any port) or anywhere (devices behind a NAT that write a "
           "private address in SDP); once latched, only that address is heard")
      .boolean("module::MediaRelay", "ice-lite", true,
               "be an ICE-lite agent (RFC 8445 section 2.5) toward devices that do ICE: "
               "offer every device the relay's host candidates, answer a caller's ICE "
               "offer, answer the devices' STUN checks; a check signed with the relay's "
               "ice-pwd is what moves an ICE device's media (false: ICE is stripped)")
      .integer("module::MediaRelay", "max-calls-per-user", 5, 0, 100000,
               "relayed calls one caller may run at once; more get 503 with Retry-After "
               "(0: no limit)")
      .integer("module::MediaRelay", "max-calls-per-source", 10, 0, 100000,
               "relayed calls one IP address may run at once; more get 503 with "
               "Retry-After (0: no limit)")
      .str("module::MediaRelay", "encryption", "terminate",
           "SRTP (SDES, RFC 4568) through the relay: terminate (the relay decrypts what each "
           "side sends and encrypts for each branch with a key of its own, so no device "
           "learns the door's key or another device's: RFC 3711 section 9.1) or passthrough "
           "(the keys in SDP are copied to every branch and the packets pass unchanged, as "
           "Flexisip does: weaker, every ringing device holds the door's key and could read or "
           "forge what the door sends the others; kept for compatibility). One setting for every "
           "leg today; a per-side setting (house, "
           "WAN) comes with the WAN side")
      .list("module::MediaRelay", "srtp-crypto-suites",
            "AEAD_AES_128_GCM AES_CM_128_HMAC_SHA1_80 AES_CM_128_HMAC_SHA1_32",
            "with encryption = terminate: the SRTP suites (RFC 4568 section 6.2, RFC 7714 "
            "section 12) offered to each branch with a key of its own, in order of preference; "
            "the caller's suite is added last when it is not listed. AEAD_AES_128_GCM first: "
            "on a CPU with AES and carry-less multiply instructions (x86-64, ARMv8 with the crypto "
            "extension) it costs the relay about half of an AES_CM_128_HMAC_SHA1_80 packet, "
            "and it is authenticated encryption; devices "
            "without it (Linphone 5.1) take the next line. Also known: AES_256_CM_HMAC_SHA1_80, "
            "AEAD_AES_256_GCM. Each line adds about 70 bytes to every m= line of an INVITE "
            "(over 1300 bytes, RFC 3261 section 18.1.1 moves it from UDP to TCP)")
      .boolean("module::MediaRelay", "encryption-mandatory", false,
               "refuse plain RTP: an offer without SRTP gets 488 with a Warning, a device "
               "whose answer has none is a failed branch (one setting for every leg today, "
               "per side later)");
  return s;
}

}  // namespace

std::string parse_group_addresses(const std::vector<std::string> &values, GroupAddresses *out) {
  GroupAddresses g;
  for (const std::string &v : values) {
    std::string_view text = v;
    if (text.size() >= 2 && text.front() == '<' && text.back() == '>')
      text = text.substr(1, text.size() - 2);
    if (text.size() > 2 && text.compare(text.size() - 2, 2, "@*") == 0) {
      // The user part as parse_aor takes it, from the same address in a fixed domain.
      const std::string aor = parse_aor(std::string(text.substr(0, text.size() - 1)) + "x.invalid");
      if (aor.empty()) return "'" + v + "' is not a sip:user@* address";
      g.in_every_domain.insert(aor.substr(4, aor.rfind('@') - 4));
      continue;
    }
    const std::string aor = text.find('*') == std::string_view::npos ? parse_aor(v) : "";
    if (aor.empty()) return "'" + v + "' is not a sip:user@domain or sip:user@* address";
    g.aors.insert(aor);
  }
  *out = std::move(g);
  return "";
}

const config::Schema &proxy_schema() {
  static const config::Schema schema = make_schema();
  return schema;
}

std::string check_proxy_config(const config::Config &cfg) {
  auto transports = cfg.get_list("global", "transports");
  if (transports.empty())
    return cfg.where("global", "transports") + "at least one transport needed";
  const TlsSettings tls_defaults = tls_defaults_from_config(cfg);
  for (const auto &t : transports) {
    TransportUri u;
    std::string error;
    if (!parse_transport_uri(t, tls_defaults, &u, &error))
      return cfg.where("global", "transports") + error;
    if (!u.tls) continue;
    if (u.tls_settings.files.certificate_file.empty())
      return cfg.where("global", "transports") + "'" + t +
             "' needs a certificate: tls-certificates-file and tls-certificates-private-key";
    if (!check_tls_files(u.tls_settings.files, &error))
      return cfg.where("global", "transports") + error;
    if (!check_tls_ciphers(u.tls_settings, &error))
      return cfg.where("global", "transports") + "'" + t + "': " + error;
  }
  {
    GroupAddresses groups;
    const std::string bad =
        parse_group_addresses(cfg.get_list("module::Registrar", "group-addresses"), &groups);
    if (!bad.empty()) return cfg.where("module::Registrar", "group-addresses") + bad;
  }
  {
    const long ka = cfg.get_int("inter-domain-connections", "keepalive-interval");
    const long pp = cfg.get_int("inter-domain-connections", "ping-pong-timeout-delay");
    if (pp > 0 && (ka == 0 || pp >= ka))
      return cfg.where("inter-domain-connections", "ping-pong-timeout-delay") +
             "must be below keepalive-interval (a pong is awaited after each ping)";
    const std::string file = cfg.get_string("inter-domain-connections", "domain-registrations");
    std::vector<DomainRegistrationEntry> entries;
    if (!file.empty()) {
      const std::string bad = load_domain_registrations(file, &entries);
      if (!bad.empty()) return cfg.where("inter-domain-connections", "domain-registrations") + bad;
    }
    // The flow carries the house's calls and the cloud's requests come down it
    // unchallenged (domain_registrar.h): the cloud must be the one we meant.
    // sofia's client connections use the TLS transports' policy, so each of
    // them must check the server's certificate and name (RFC 5922 §7.3).
    if (!entries.empty()) {
      bool any_tls = false;
      for (const auto &t : transports) {
        TransportUri u;
        std::string error;
        if (!parse_transport_uri(t, tls_defaults, &u, &error) || !u.tls) continue;
        any_tls = true;
        if (!u.tls_settings.verify_outgoing || u.tls_settings.files.ca_file.empty())
          return cfg.where("inter-domain-connections", "domain-registrations") +
                 "the cloud's certificate must be verified: '" + t +
                 "' needs tls-verify-outgoing = true and tls-certificates-ca-file";
      }
      if (!any_tls)
        return cfg.where("inter-domain-connections", "domain-registrations") +
               "needs a sips: transport in [global] transports (the registration runs over TLS)";
    }
  }
  const std::string inter = cfg.get_string("module::Router", "inter-domain-requests");
  if (inter != "deny" && inter != "allow")
    return cfg.where("module::Router", "inter-domain-requests") + "'" + inter +
           "' is neither deny nor allow";
  // "*" is read from the users file, which only authentication loads.
  for (const char *key : {"reg-domains", "auth-domains"}) {
    const char *section =
        std::string(key) == "reg-domains" ? "module::Registrar" : "module::Authentication";
    for (const auto &d : cfg.get_list(section, key)) {
      if (d.find('*') == std::string::npos) continue;
      if (d != "*")
        return cfg.where(section, key) + "'" + d +
               "': * stands alone (every domain of the users file); no partial wildcards";
      if (!cfg.get_bool("module::Authentication", "enabled"))
        return cfg.where(section, key) +
               "* means every domain of the users file, which needs [module::Authentication] "
               "enabled";
    }
  }
  // The users file is what says which house may register which domain.
  if (cfg.get_bool("inter-domain-connections", "accept-domain-registrations") &&
      !cfg.get_bool("module::Authentication", "enabled"))
    return cfg.where("inter-domain-connections", "accept-domain-registrations") +
           "needs [module::Authentication] enabled (else anyone could take a house's calls)";
  if (cfg.get_int("module::Registrar", "min-expires") >
      cfg.get_int("module::Registrar", "max-expires"))
    return cfg.where("module::Registrar", "min-expires") + "larger than max-expires";
  if (cfg.get_bool("module::Authentication", "enabled")) {
    if (cfg.get_list("module::Authentication", "available-algorithms").empty())
      return cfg.where("module::Authentication", "available-algorithms") + "no algorithm";
    if (cfg.get_string("module::Authentication", "file-path").empty())
      return cfg.where("module::Authentication", "file-path") + "a users file is needed";
  }
  if (cfg.get_bool("module::MediaRelay", "enabled")) {
    uint16_t lo, hi;
    if (!parse_port_range(cfg.get_string("module::MediaRelay", "port-range"), &lo, &hi))
      return cfg.where("module::MediaRelay", "port-range") +
             "must be MIN-MAX with 1024 <= MIN < MAX <= 65535 and room for a port pair";
    for (const char *key : {"sdp-address", "listen-address"}) {
      const std::string a = cfg.get_string("module::MediaRelay", key);
      if ((!a.empty() || std::string(key) == "sdp-address") && !is_ip_literal(a))
        return cfg.where("module::MediaRelay", key) + "'" + a + "' is not an IPv4 or IPv6 address";
    }
    const std::string latch = cfg.get_string("module::MediaRelay", "latch");
    if (latch != "signalled-host" && latch != "anywhere")
      return cfg.where("module::MediaRelay", "latch") + "'" + latch +
             "' is neither signalled-host nor anywhere";
    const std::string encryption = cfg.get_string("module::MediaRelay", "encryption");
    if (encryption != "terminate" && encryption != "passthrough")
      return cfg.where("module::MediaRelay", "encryption") + "'" + encryption +
             "' is neither terminate nor passthrough";
    std::vector<sdp::SrtpSuite> suites;
    const std::string bad =
        parse_suites(cfg.get_list("module::MediaRelay", "srtp-crypto-suites"), &suites);
    if (!bad.empty()) return cfg.where("module::MediaRelay", "srtp-crypto-suites") + bad;
  }
  if (cfg.get_string("global", "state-directory").empty())
    return cfg.where("global", "state-directory") + "must not be empty";
  push::PushSettings push;
  return push::load_push_settings(cfg, &push);
}

std::string proxy_security_warning(const config::Config &cfg) {
  std::vector<std::string> off;
  // RFC 3261 §26.2: without TLS the digest exchange and the SDES keys in the
  // SDP (RFC 4568 §8.3) cross the network readable.
  for (const auto &t : cfg.get_list("global", "transports")) {
    TransportUri u;
    std::string error;
    if (parse_transport_uri(t, TlsSettings{}, &u, &error) && !u.tls && !loopback_host(u.sofia_url))
      off.push_back(cfg.where("global", "transports") + "'" + t + "' is SIP without TLS");
  }
  if (!cfg.get_bool("module::Authentication", "enabled"))
    off.push_back(cfg.where("module::Authentication", "enabled") +
                  "anyone may register and call without a password");
  if (cfg.get_bool("module::MediaRelay", "enabled")) {
    if (!cfg.get_bool("module::MediaRelay", "encryption-mandatory"))
      off.push_back(cfg.where("module::MediaRelay", "encryption-mandatory") +
                    "calls with plain RTP (no SRTP) are relayed");
    // RFC 3711 §9.1: one key shared by every branch.
    if (cfg.get_string("module::MediaRelay", "encryption") == "passthrough")
      off.push_back(cfg.where("module::MediaRelay", "encryption") +
                    "every ringing device gets the caller's SRTP key");
  }
  if (off.empty()) return "";
  std::string line = "less secure than the shipped config (config/proxy.conf): ";
  for (size_t i = 0; i < off.size(); ++i) line += (i ? "; " : "") + off[i];
  return line;
}

TlsSettings tls_defaults_from_config(const config::Config &cfg) {
  TlsSettings d;
  d.files = {cfg.get_string("global", "tls-certificates-file"),
             cfg.get_string("global", "tls-certificates-private-key"),
             cfg.get_string("global", "tls-certificates-ca-file")};
  d.ciphers = cfg.get_string("global", "tls-ciphers");
  d.ciphersuites = cfg.get_string("global", "tls-ciphersuites");
  return d;
}

ProxySettings settings_from_config(const config::Config &cfg) {
  ProxySettings s;
  // What sofia is given: sips: for TLS, our tls-* parameters taken out.
  const TlsSettings tls_defaults = tls_defaults_from_config(cfg);
  for (const auto &t : cfg.get_list("global", "transports")) {
    TransportUri u;
    std::string error;
    parse_transport_uri(t, tls_defaults, &u, &error);  // checked by check_proxy_config
    s.transports.push_back(u.sofia_url);
    s.transport_tls.push_back(u.tls ? std::optional<TlsSettings>(u.tls_settings) : std::nullopt);
  }
  // nta binds UDP and TCP for a URI without ;transport=. When the same host:port
  // is also listed with an explicit transport, the bare one means UDP, as users
  // of "sip:H:P sip:H:P;transport=tcp" expect.
  for (auto &t : s.transports) {
    if (t.compare(0, 5, "sips:") == 0) continue;
    if (t.find(";transport=") != std::string::npos) continue;
    for (const auto &other : s.transports)
      if (&other != &t && other.compare(0, t.size() + 11, t + ";transport=") == 0) {
        t += ";transport=udp";
        break;
      }
  }
  read_global_settings(cfg, &s);
  s.state_directory = cfg.get_string("global", "state-directory");
  for (auto a : cfg.get_list("global", "aliases")) s.aliases.push_back(lower(a));
  s.idle_timeout = static_cast<int>(cfg.get_int("global", "idle-timeout"));
  s.udp_mtu = static_cast<int>(cfg.get_int("global", "udp-mtu"));
  s.tcp_incomplete_message_timeout =
      static_cast<int>(cfg.get_int("global", "tcp-incomplete-message-timeout"));
  s.max_connections_per_source =
      static_cast<size_t>(cfg.get_int("global", "max-connections-per-source"));
  for (auto d : cfg.get_list("module::Registrar", "reg-domains")) s.reg_domains.push_back(lower(d));
  parse_group_addresses(cfg.get_list("module::Registrar", "group-addresses"), &s.group_addresses);
  s.static_records_file = cfg.get_string("module::Registrar", "static-records-file");
  s.limits.min_expires = static_cast<int>(cfg.get_int("module::Registrar", "min-expires"));
  s.limits.max_expires = static_cast<int>(cfg.get_int("module::Registrar", "max-expires"));
  s.limits.default_expires = static_cast<int>(cfg.get_int("module::Registrar", "default-expires"));
  s.limits.max_contacts_per_aor =
      static_cast<size_t>(cfg.get_int("module::Registrar", "max-contacts-per-aor"));
  s.auth_enabled = cfg.get_bool("module::Authentication", "enabled");
  for (auto d : cfg.get_list("module::Authentication", "auth-domains"))
    s.auth_domains.push_back(lower(d));
  s.users_file = cfg.get_string("module::Authentication", "file-path");
  for (const auto &a : cfg.get_list("module::Authentication", "available-algorithms"))
    if (auto alg = auth::parse_algorithm(a)) s.algorithms.push_back(*alg);
  s.nonce_expires = static_cast<int>(cfg.get_int("module::Authentication", "nonce-expires"));
  auto auth_uint = [&](const char *key) {
    return static_cast<unsigned>(cfg.get_int("module::Authentication", key));
  };
  s.failure_limits.max_failures = auth_uint("max-failures-per-source");
  s.failure_limits.ban_seconds = auth_uint("ban-time");
  s.failure_limits.backoff_seconds = auth_uint("failure-backoff");
  s.failure_limits.user_alarm = auth_uint("max-failures-per-user");
  s.failure_limits.log_lines = auth_uint("failure-log-lines");
  // All addresses together get a few times one address's lines: a flood from many
  // addresses still writes a bounded log.
  s.failure_limits.log_lines_total = 4 * s.failure_limits.log_lines;
  s.failure_limits.max_entries = auth_uint("failure-tracking-entries");
  s.call_fork_timeout = static_cast<int>(cfg.get_int("module::Router", "call-fork-timeout"));
  s.fork_late_max_branches =
      static_cast<int>(cfg.get_int("module::Router", "fork-late-max-branches"));
  s.inter_domain_allowed = cfg.get_string("module::Router", "inter-domain-requests") == "allow";
  s.house_domains.accept = cfg.get_bool("inter-domain-connections", "accept-domain-registrations");
  s.house_domains.assume_unique = cfg.get_bool("inter-domain-connections", "assume-unique-domains");
  s.domain_registrations.file = cfg.get_string("inter-domain-connections", "domain-registrations");
  if (!s.domain_registrations.file.empty())
    load_domain_registrations(s.domain_registrations.file, &s.domain_registrations.entries);
  s.domain_registrations.keepalive_interval =
      static_cast<int>(cfg.get_int("inter-domain-connections", "keepalive-interval"));
  s.domain_registrations.ping_pong_timeout_delay =
      static_cast<int>(cfg.get_int("inter-domain-connections", "ping-pong-timeout-delay"));
  s.domain_registrations.reconnection_delay =
      static_cast<int>(cfg.get_int("inter-domain-connections", "reconnection-delay"));
  s.relay.enabled = cfg.get_bool("module::MediaRelay", "enabled");
  s.relay.sdp_address = cfg.get_string("module::MediaRelay", "sdp-address");
  s.relay.listen_address = cfg.get_string("module::MediaRelay", "listen-address");
  parse_port_range(cfg.get_string("module::MediaRelay", "port-range"), &s.relay.port_min,
                   &s.relay.port_max);
  s.relay.max_early_media =
      static_cast<int>(cfg.get_int("module::MediaRelay", "max-early-media-per-call"));
  s.relay.inactivity_timeout =
      static_cast<int>(cfg.get_int("module::MediaRelay", "inactivity-timeout"));
  s.relay.threads = static_cast<int>(cfg.get_int("module::MediaRelay", "threads"));
  s.relay.latch_anywhere = cfg.get_string("module::MediaRelay", "latch") == "anywhere";
  s.relay.ice_lite = cfg.get_bool("module::MediaRelay", "ice-lite");
  s.relay.max_calls_per_user =
      static_cast<int>(cfg.get_int("module::MediaRelay", "max-calls-per-user"));
  s.relay.max_calls_per_source =
      static_cast<int>(cfg.get_int("module::MediaRelay", "max-calls-per-source"));
  s.relay.encryption = cfg.get_string("module::MediaRelay", "encryption") == "passthrough"
                           ? RelaySettings::Encryption::Passthrough
                           : RelaySettings::Encryption::Terminate;
  s.relay.encryption_mandatory = cfg.get_bool("module::MediaRelay", "encryption-mandatory");
  parse_suites(cfg.get_list("module::MediaRelay", "srtp-crypto-suites"), &s.relay.branch_suites);
  push::load_push_settings(cfg, &s.push);  // checked by check_proxy_config
  return s;
}

}  // namespace portier::proxy
