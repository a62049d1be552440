// The [account] section a SIP device (portier-door, portier-monitor) is
// configured with: its address, digest credentials, proxy, where it listens,
// whom else it trusts and how long it registers for. One schema section, one
// check and one parser, so both programs take the same keys the same way.
#pragma once

#include <string>
#include <vector>

#include "common/config.h"
#include "common/sip_transport.h"

namespace portier {

struct AccountSettings {
  std::string aor;       // sip:door@home.example
  std::string username;  // digest user name (default: the AOR's user)
  std::string password;
  std::string proxy;                       // outbound proxy / registrar URI
  std::string bind;                        // our SIP URI to listen on
  std::vector<std::string> trusted_hosts;  // besides the proxy (RFC 3325 trust domain)
  // P-Asserted-Identity only with the proxy's P-Portier-Proof
  // (common/auth/identity_proof.h); off for a proxy that does not add one.
  bool identity_proof = true;
  int register_expires = 600;
  // The proxy is reached over TLS (proxy = sips:... or sip:...;transport=tls):
  // its certificate checked against tls.files.ca_file, by name, unless
  // tls.verify_outgoing is off; our own certificate only if given.
  bool proxy_tls = false;
  TlsSettings tls;
  // Only in the REGISTER's Contact (nua's NUTAG_M_FEATURES / NUTAG_M_PARAMS
  // on the registration handle). Empty for the door; portier-monitor's
  // [account] instance-id and push-* keys fill them (monitor_config.h).
  std::string contact_features;  // header params: +sip.instance="<urn:uuid:...>"
  std::string contact_params;    // URI params: pn-provider=...;pn-prid=...;pn-param=...
};

// The proxy URI as sofia takes it (sips: for TLS, our parameters out).
std::string proxy_uri_for_sofia(const std::string &proxy);

// What --dump-default says about the keys that name the device.
struct AccountHelp {
  std::string default_aor;    // "sip:door@home.example"
  std::string aor;            // "the door's SIP address"
  std::string bind;           // "SIP URI the door listens on (* = any port)"
  std::string trusted_hosts;  // whose requests it takes besides the proxy's
};

void add_account_schema(config::Schema &s, const AccountHelp &help);

// "" or the first bad [account] value, naming file, line and key.
std::string check_account_config(const config::Config &cfg);

// From a config check_account_config accepted.
AccountSettings account_settings_from_config(const config::Config &cfg);

// "" when a device's config is as secure as the shipped one, else one line
// naming what is off: SIP to the proxy without TLS or without checking its
// certificate, [media] media-encryption = none (for --check-config).
std::string device_security_warning(const config::Config &cfg);

}  // namespace portier
