#include "common/sip_transport.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <memory>
#include <vector>

namespace portier {
namespace {

std::string lower(std::string s) {
  for (char &c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

bool parse_bool(const std::string &name, const std::string &value, bool *out, std::string *error) {
  const std::string v = lower(value);
  if (v == "1" || v == "true" || v == "yes") return *out = true, true;
  if (v == "0" || v == "false" || v == "no") return *out = false, true;
  *error = name + "=" + value + ": not 0, 1, true or false";
  return false;
}

}  // namespace

bool parse_transport_uri(const std::string &text, const TlsSettings &defaults, TransportUri *out,
                         std::string *error) {
  *out = TransportUri{};
  const std::string scheme = lower(text.substr(0, text.find(':') + 1));
  if (scheme != "sip:" && scheme != "sips:") {
    *error = "'" + text + "' is neither a sip: nor a sips: URI";
    return false;
  }
  bool tls = scheme == "sips:";
  const size_t semi = text.find(';');
  const std::string hostport = text.substr(scheme.size(), semi - scheme.size());
  if (hostport.empty()) {
    *error = "'" + text + "' has no host";
    return false;
  }
  std::vector<std::pair<std::string, std::string>> params;
  for (size_t at = semi; at != std::string::npos && at < text.size();) {
    const size_t next = text.find(';', at + 1);
    const std::string p = text.substr(at + 1, next == std::string::npos ? next : next - at - 1);
    const size_t eq = p.find('=');
    if (!p.empty())
      params.emplace_back(lower(p.substr(0, eq)), eq == std::string::npos ? "" : p.substr(eq + 1));
    at = next;
  }
  std::string transport;
  for (const auto &[name, value] : params)
    if (name == "transport") transport = lower(value);
  if (transport == "tls") {
    if (tls) {
      *error = "'" + text + "': sips: is TLS already; drop ;transport=tls";
      return false;
    }
    tls = true;
  } else if (tls && !transport.empty()) {
    // RFC 3261 §26.2.2: a sips: URI is TLS on every hop; sofia fails to bind it.
    *error = "'" + text + "': sips: cannot be transport=" + transport +
             " (sips: means TLS; for TCP write sip:...;transport=tcp)";
    return false;
  }
  out->tls = tls;
  out->tls_settings = defaults;
  out->sofia_url = (tls ? "sips:" : "sip:") + hostport;
  for (const auto &[name, value] : params) {
    if (name.compare(0, 4, "tls-") != 0) {
      if (name == "transport" && tls) continue;
      out->sofia_url += ";" + name + (value.empty() ? "" : "=" + value);
      continue;
    }
    if (!tls) {
      *error = "'" + text + "': " + name + " is for TLS transports (sips:) only";
      return false;
    }
    TlsSettings &s = out->tls_settings;
    std::string e;
    if (name == "tls-certificates-file")
      s.files.certificate_file = value;
    else if (name == "tls-certificates-private-key")
      s.files.private_key_file = value;
    else if (name == "tls-certificates-ca-file")
      s.files.ca_file = value;
    else if (name == "tls-ciphers")
      s.ciphers = value;
    else if (name == "tls-ciphersuites")
      s.ciphersuites = value;
    else if (name == "tls-verify-incoming" || name == "tls-verify-outgoing") {
      if (!parse_bool(name, value,
                      name == "tls-verify-incoming" ? &s.verify_incoming : &s.verify_outgoing,
                      &e)) {
        *error = "'" + text + "': " + e;
        return false;
      }
    } else {
      *error = "'" + text + "': unknown parameter " + name +
               " (tls-certificates-file, tls-certificates-private-key, tls-certificates-ca-file, "
               "tls-verify-incoming, tls-verify-outgoing, tls-ciphers, tls-ciphersuites)";
      return false;
    }
  }
  if (tls && out->tls_settings.ciphers.empty()) {
    *error = "'" + text + "': tls-ciphers is empty";
    return false;
  }
  return true;
}

bool check_tls_ciphers(const TlsSettings &s, std::string *error) {
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_method()), SSL_CTX_free);
  const auto refuse = [&](const char *key, const std::string &list, const std::string &why) {
    ERR_clear_error();
    *error = std::string(key) + " '" + list + "': " + why;
    return false;
  };
  if (!ctx) return refuse("tls-ciphers", s.ciphers, "OpenSSL cannot make a context");
  if (SSL_CTX_set_cipher_list(ctx.get(), s.ciphers.c_str()) != 1)
    return refuse("tls-ciphers", s.ciphers, "no cipher OpenSSL knows");
  // Empty would turn TLS 1.3 off (RFC 8996 and 8446 would rather it on).
  if (s.ciphersuites.empty()) return refuse("tls-ciphersuites", "", "empty: no TLS 1.3 suite");
  size_t from = 0;
  while (from <= s.ciphersuites.size()) {
    const size_t to = std::min(s.ciphersuites.find(':', from), s.ciphersuites.size());
    const std::string one = s.ciphersuites.substr(from, to - from);
    if (one.empty() || SSL_CTX_set_ciphersuites(ctx.get(), one.c_str()) != 1)
      return refuse("tls-ciphersuites", s.ciphersuites,
                    "'" + one + "' is not a TLS 1.3 suite OpenSSL knows (e.g. " +
                        kDefaultTlsCiphersuites + ")");
    from = to + 1;
  }
  ERR_clear_error();
  return true;
}

}  // namespace portier
