// portier-proxy's configuration: the schema (every key, default and help line,
// printed by --dump-default) and the typed settings the proxy runs with. Key
// names follow Flexisip's where the concept is the same.
#pragma once

#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/auth/digest.h"
#include "common/auth/failure_limiter.h"
#include "common/config.h"
#include "common/global_config.h"
#include "common/log.h"
#include "common/sip_address.h"
#include "common/sip_transport.h"
#include "proxy/domain_registration_file.h"
#include "proxy/location_store.h"
#include "push/push_config.h"
#include "sip/sdp/sdes.h"

namespace portier::proxy {

// [module::MediaRelay]
struct RelaySettings {
  bool enabled = true;
  std::string sdp_address = "127.0.0.1";  // written into rewritten SDP
  std::string listen_address;             // bound; empty: sdp_address
  uint16_t port_min = 20000;
  uint16_t port_max = 29999;
  int max_early_media = 10;       // branches per call that get the early stream
  int inactivity_timeout = 60;    // seconds without a packet before a call is freed
  int threads = 0;                // I/O threads moving the packets; 0: one per usable CPU
  bool latch_anywhere = false;    // the first packet from anywhere latches (else: the SDP's host)
  // ICE-lite toward devices that do ICE (RFC 8445 §2.5): proxy/ice_lite.h.
  bool ice_lite = true;
  int max_calls_per_user = 5;     // concurrent relayed calls of one caller; 0: no limit
  int max_calls_per_source = 10;  // concurrent relayed calls from one IP address; 0: no limit
  // SRTP: terminated per leg, or keys and packets passed through (weaker).
  // One setting for every leg; issue 15 brings a house side and a WAN side.
  enum class Encryption { Passthrough, Terminate };
  Encryption encryption = Encryption::Terminate;
  bool encryption_mandatory = false;  // plain RTP refused (488)
  // What a branch is offered when the relay terminates SRTP, in order of
  // preference (RFC 4568 section 7.1.1); the caller's suite is added last
  // when it is not among them.
  std::vector<sdp::SrtpSuite> branch_suites{sdp::SrtpSuite::AeadAes128Gcm,
                                            sdp::SrtpSuite::AesCm128HmacSha1_80,
                                            sdp::SrtpSuite::AesCm128HmacSha1_32};
};

// [module::Registrar] group-addresses: the addresses that ring every device of
// their domain. "sip:home@*" is `home` in every served domain, each ringing
// that domain's devices only.
struct GroupAddresses {
  std::unordered_set<std::string> aors;             // normalized ("sip:home@home.example")
  std::unordered_set<std::string> in_every_domain;  // user parts of "sip:USER@*"

  // aor: normalized, `user` its user part; served: its domain is a reg-domain.
  bool contains(const std::string &aor, const char *user, bool served) const {
    return aors.count(aor) != 0 || (served && user && in_every_domain.count(user) != 0);
  }
};
// "" and *out filled, or what is wrong with one entry.
std::string parse_group_addresses(const std::vector<std::string> &values, GroupAddresses *out);

// [inter-domain-connections] (Flexisip's names): whole-domain registrations of
// in-house proxies, routed down their TLS flow (proxy/house_domains.h).
struct HouseDomainSettings {
  bool accept = false;         // accept-domain-registrations
  bool assume_unique = false;  // assume-unique-domains: one house per domain
};

struct ProxySettings : GlobalSettings {
  std::vector<std::string> transports;  // as sofia takes them (sips: for TLS)
  // Per entry of transports: its TLS settings, for a TLS transport.
  std::vector<std::optional<TlsSettings>> transport_tls;
  std::string state_directory;
  std::vector<std::string> aliases;         // lower-case host names that mean this proxy
  int idle_timeout = 3600;                  // s, TCP connection without a request
  int udp_mtu = 1460;                       // bytes: larger requests try TCP first
  int tcp_incomplete_message_timeout = 60;  // s, stalled in a message
  size_t max_connections_per_source = 64;

  // As listed, lower-case; "*" stands for every domain of the users file
  // (LocalNames::expand).
  std::vector<std::string> reg_domains;
  GroupAddresses group_addresses;
  std::string static_records_file;
  LocationStore::Limits limits;

  bool auth_enabled = true;
  std::vector<std::string> auth_domains;  // as reg_domains
  std::string users_file;
  std::vector<auth::Algorithm> algorithms;
  int nonce_expires = 3600;
  auth::FailureLimits failure_limits;

  int call_fork_timeout = 60;
  // [module::Router] fork-late-max-branches: late branches one call may add
  // for one AOR.
  int fork_late_max_branches = 8;
  // [module::Router] inter-domain-requests: a user of one served domain may
  // send requests to another (else 403: each house is its own world).
  bool inter_domain_allowed = false;
  // [inter-domain-connections]: whole-domain registrations (house_domains.h).
  HouseDomainSettings house_domains;

  // [inter-domain-connections] on the in-house side: the domains registered
  // to a cloud proxy (domain_registrar.h), and how their flows are kept.
  struct DomainRegistrations {
    std::string file;  // empty: none
    std::vector<DomainRegistrationEntry> entries;
    int keepalive_interval = 30;      // s between CRLFCRLF pings; 0: none
    int ping_pong_timeout_delay = 0;  // s to wait for the CRLF pong; 0: none expected
    int reconnection_delay = 5;       // s before the first new connection (then doubled)
  } domain_registrations;

  RelaySettings relay;
  push::PushSettings push;  // [module::PushNotification]: push/push_config.h
};

const config::Schema &proxy_schema();
// Cross-key checks and conversion; "" when valid, else a message naming the key.
std::string check_proxy_config(const config::Config &cfg);
// For --check-config: "" or one line naming each key that makes the proxy
// less secure than the shipped config/proxy.conf (a warning, not an error):
// SIP without TLS on an address other than loopback, the relay taking plain
// RTP or passing the door's SRTP key to every device, authentication off.
std::string proxy_security_warning(const config::Config &cfg);
ProxySettings settings_from_config(const config::Config &cfg);
// [global]'s tls-* keys: what each TLS transport takes unless its URI says.
TlsSettings tls_defaults_from_config(const config::Config &cfg);

// parse_aor, parse_port_range, is_ip_literal: common/sip_address.h (the door
// and the monitor read the same kinds of values).
using portier::is_ip_literal;
using portier::parse_aor;
using portier::parse_port_range;

}  // namespace portier::proxy
