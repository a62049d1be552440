#include "common/account_config.h"

#include "common/sip_address.h"

namespace portier {

void add_account_schema(config::Schema &s, const AccountHelp &help) {
  s.str("account", "aor", help.default_aor, help.aor)
      .str("account", "username", "", "digest user name (empty: the address's user part)")
      .str("account", "password", "", "digest password (never logged)")
      .str("account", "proxy", "sip:127.0.0.1:5060",
           "the in-house proxy: registrar and outbound proxy for every request. Over TLS: "
           "sips:HOST:PORT (or sip:HOST:PORT;transport=tls); its certificate must name HOST "
           "in a DNS subjectAltName or its CN (an IP subjectAltName never matches here), so "
           "reach it by name, with sips:NAME:PORT;maddr=ADDRESS where NAME is not in DNS")
      .str("account", "bind", "sip:127.0.0.1:*", help.bind)
      .list("account", "trusted-hosts", "", help.trusted_hosts)
      .boolean("account", "identity-proof", true,
               "take an asserted identity only with portier-proxy's proof (off: any other proxy)")
      .integer("account", "register-expires", 600, 30, 86400,
               "registration lifetime asked for; refreshed before it runs out")
      .str("account", "tls-certificates-ca-file", "",
           "PEM CA certificates the TLS proxy's certificate is checked against (the system's "
           "store is not used)")
      .boolean("account", "tls-verify-outgoing", true,
               "check the TLS proxy's certificate against the CA file and its name against the "
               "proxy URI's host; off: any certificate is taken (anyone on the path can listen)")
      .str("account", "tls-certificates-file", "",
           "our own PEM certificate (chain) for a proxy that asks for one (empty: none)")
      .str("account", "tls-certificates-private-key", "", "its unencrypted PEM private key")
      .str("account", "tls-ciphers", kDefaultTlsCiphers, "OpenSSL cipher list for TLS 1.2")
      .str("account", "tls-ciphersuites", kDefaultTlsCiphersuites,
           "TLS 1.3 suites, colon-separated (OpenSSL's SSL_CTX_set_ciphersuites syntax; "
           "tls-ciphers does not touch TLS 1.3)");
}

std::string check_account_config(const config::Config &cfg) {
  if (parse_aor(cfg.get_string("account", "aor")).empty())
    return cfg.where("account", "aor") + "'" + cfg.get_string("account", "aor") +
           "' is not a sip:user@domain address";
  const std::string &bind = cfg.get_string("account", "bind");
  if (bind.compare(0, 4, "sip:") != 0)
    return cfg.where("account", "bind") + "'" + bind + "' is not a sip: URI";
  const AccountSettings a = account_settings_from_config(cfg);
  TransportUri u;
  std::string error;
  if (!parse_transport_uri(a.proxy, a.tls, &u, &error))
    return cfg.where("account", "proxy") + error;
  if (!u.tls) return "";
  if (!check_tls_ciphers(u.tls_settings, &error))
    return cfg.where("account", error.substr(0, error.find(' '))) + error;
  if (a.tls.verify_outgoing && a.tls.files.ca_file.empty())
    return cfg.where("account", "proxy") +
           "over TLS needs tls-certificates-ca-file to check the proxy's certificate (sofia-sip "
           "does not read the system's store); or tls-verify-outgoing = false, which lets "
           "anyone on the path listen";
  if (!check_tls_files(a.tls.files, &error))
    return cfg.where("account", "tls-certificates-ca-file") + error;
  return "";
}

std::string device_security_warning(const config::Config &cfg) {
  const AccountSettings a = account_settings_from_config(cfg);
  std::vector<std::string> off;
  // RFC 3261 §26.2: without TLS the digest exchange, the SDES keys in the SDP
  // (RFC 4568 §8.3) and a code sent as MESSAGE or INFO cross the network
  // readable; without the certificate check anyone on the path can read them.
  if (!a.proxy_tls)
    off.push_back(cfg.where("account", "proxy") + "SIP without TLS");
  else if (!a.tls.verify_outgoing)
    off.push_back(cfg.where("account", "tls-verify-outgoing") +
                  "the proxy's certificate is not checked");
  for (const auto &k : cfg.schema()->keys())
    if (k.section == "media" && k.name == "media-encryption" &&
        cfg.get_string("media", "media-encryption") == "none")
      off.push_back(cfg.where("media", "media-encryption") + "audio and video without SRTP");
  if (off.empty()) return "";
  std::string line = "less secure than the shipped config (config/), readable on the network: ";
  for (size_t i = 0; i < off.size(); ++i) line += (i ? "; " : "") + off[i];
  return line;
}

AccountSettings account_settings_from_config(const config::Config &cfg) {
  AccountSettings a;
  a.aor = parse_aor(cfg.get_string("account", "aor"));
  a.username = cfg.get_string("account", "username");
  if (a.username.empty() && a.aor.size() > 4) a.username = a.aor.substr(4, a.aor.find('@') - 4);
  a.password = cfg.get_string("account", "password");
  a.proxy = cfg.get_string("account", "proxy");
  a.bind = cfg.get_string("account", "bind");
  a.trusted_hosts = cfg.get_list("account", "trusted-hosts");
  a.identity_proof = cfg.get_bool("account", "identity-proof");
  a.register_expires = static_cast<int>(cfg.get_int("account", "register-expires"));
  a.tls.files = {cfg.get_string("account", "tls-certificates-file"),
                 cfg.get_string("account", "tls-certificates-private-key"),
                 cfg.get_string("account", "tls-certificates-ca-file")};
  a.tls.verify_outgoing = cfg.get_bool("account", "tls-verify-outgoing");
  a.tls.ciphers = cfg.get_string("account", "tls-ciphers");
  a.tls.ciphersuites = cfg.get_string("account", "tls-ciphersuites");
  TransportUri u;
  std::string error;
  if (parse_transport_uri(a.proxy, a.tls, &u, &error)) {
    a.proxy_tls = u.tls;
    if (u.tls) a.tls = u.tls_settings;
  }
  return a;
}

std::string proxy_uri_for_sofia(const std::string &proxy) {
  TransportUri u;
  std::string error;
  return parse_transport_uri(proxy, TlsSettings{}, &u, &error) ? u.sofia_url : proxy;
}

}  // namespace portier
