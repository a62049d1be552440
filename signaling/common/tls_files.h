// A TLS endpoint's certificate, private key and CA file, checked before
// anything is built on them: TLS libraries (GLib's, and sofia-sip's tport, whose
// findings are in docs/TLS.md §2) load a key that does not belong to the
// certificate, or no certificate at all, without a word, and every handshake
// then fails far from the cause.
#pragma once

#include <string>
#include <vector>

namespace portier {

// True when certificate_file holds a PEM certificate (a chain: the first is the
// server's) and private_key_file an unencrypted PEM private key that belongs to it.
// Otherwise false and *error names the file at fault ("PATH: ...").
bool check_tls_key_pair(const std::string &certificate_file, const std::string &private_key_file,
                        std::string *error);

// One TLS transport's files. The certificate file is a chain, leaf first (an
// ACME fullchain.pem); any of the three may be empty (a client without a
// certificate, a server that trusts no one).
struct TlsFiles {
  std::string certificate_file;
  std::string private_key_file;
  std::string ca_file;
  bool operator==(const TlsFiles &o) const {
    return certificate_file == o.certificate_file && private_key_file == o.private_key_file &&
           ca_file == o.ca_file;
  }
};

// What the checked files hold, for the start-up and reload log lines.
struct TlsCertificateInfo {
  std::string subject;    // the leaf's, one line
  std::string serial;     // hex
  std::string not_after;  // "2027-01-01 12:00:00 UTC"
  size_t intermediates = 0;
  size_t ca_certificates = 0;
};

// Everything check_tls_key_pair checks, and: the leaf is within its validity
// dates, an encrypted key is named as such (a daemon has no one to ask for the
// passphrase), the CA file loads as a certificate store with at least one
// certificate. False with *error = "PATH: reason" (OpenSSL's reason where it
// gives one) for the first fault.
bool check_tls_files(const TlsFiles &files, std::string *error, TlsCertificateInfo *info = nullptr);

// sofia-sip's tport takes one directory (TPTAG_CERTIFICATE): agent.pem with the
// certificate and its key, cafile.pem with the trust anchors, and the directory
// itself as a CApath. It serves only the first certificate of agent.pem, so the
// intermediates go into cafile.pem, from which OpenSSL builds the chain it
// sends. Makes `dir` (mode 0700, emptied of anything else it held, since every
// hashed file in it would be trusted) with agent.pem = leaf + key (0600) and
// cafile.pem = CA file + intermediates. The files must have passed
// check_tls_files.
bool write_sofia_tls_directory(const TlsFiles &files, const std::string &dir, std::string *error);

}  // namespace portier
