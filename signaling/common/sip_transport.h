// The URIs a daemon listens on or reaches its proxy by, as the config writes
// them (Flexisip's spelling) and as sofia-sip's nta takes them. sofia binds TLS
// only for a sips: URI and fails on sip:...;transport=tls (docs/TLS.md §7), and
// it knows none of the tls-* parameters, which carry each TLS transport's
// files and policy here.
#pragma once

#include <string>

#include "common/tls_files.h"

namespace portier {

// ECDHE only (forward secrecy), AEAD only. sofia's own list also lets in
// static RSA, CBC-SHA1 and Camellia (docs/TLS.md §5).
inline constexpr const char kDefaultTlsCiphers[] = "ECDHE+AESGCM:ECDHE+CHACHA20";
// TLS 1.3's suites (RFC 8446 §B.4), OpenSSL's SSL_CTX_set_ciphersuites
// syntax: OpenSSL's own default, every one AEAD.
inline constexpr const char kDefaultTlsCiphersuites[] =
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256";

// One TLS transport's files and policy.
struct TlsSettings {
  TlsFiles files;
  // Ask every client for a certificate signed by the CA file (TPTLS_VERIFY_IN).
  bool verify_incoming = false;
  // Check the server's certificate and that it names the host we asked for
  // (TPTLS_VERIFY_SUBJECTS_OUT).
  bool verify_outgoing = false;
  std::string ciphers = kDefaultTlsCiphers;            // OpenSSL cipher list, TLS 1.2
  std::string ciphersuites = kDefaultTlsCiphersuites;  // TLS 1.3
  // Asks for what only sofia's context can give (tls::adopt's need_context).
  bool ciphers_changed() const {
    return ciphers != kDefaultTlsCiphers || ciphersuites != kDefaultTlsCiphersuites;
  }
};

struct TransportUri {
  // For sofia: sips:HOST:PORT for TLS, sip:HOST:PORT[;transport=udp|tcp]
  // otherwise, other parameters (maddr) kept, ours removed.
  std::string sofia_url;
  bool tls = false;
  TlsSettings tls_settings;  // tls only: the defaults with the URI's tls-* applied
};

// Reads one URI: sips:HOST:PORT or sip:HOST:PORT;transport=tls (the same
// transport), sip:HOST:PORT[;transport=udp|tcp]. tls-certificates-file,
// tls-certificates-private-key, tls-certificates-ca-file, tls-verify-incoming,
// tls-verify-outgoing (0|1|true|false), tls-ciphers and tls-ciphersuites override `defaults` for
// this transport. Refused, with *error saying why: sips: with transport=udp or
// tcp (RFC 3261 §26.2: sips means TLS on every hop), a tls-* parameter on a
// transport that is not TLS, an unknown tls-* parameter, a bad boolean.
bool parse_transport_uri(const std::string &text, const TlsSettings &defaults, TransportUri *out,
                         std::string *error);

// Are s.ciphers (TLS 1.2) and s.ciphersuites (1.3) lists OpenSSL takes, each
// with something in it? A 1.3 suite OpenSSL does not know is refused by name
// (OpenSSL itself would skip it). *error: "tls-ciphersuites 'LIST': why".
bool check_tls_ciphers(const TlsSettings &s, std::string *error);

}  // namespace portier
