// [inter-domain-connections] domain-registrations: the file naming the
// domains this (in-house) proxy registers to a cloud proxy, one per line:
//   LOCAL-DOMAIN CLOUD-SIPS-URI [PASSWORD]
// '#' starts a comment; blank lines are skipped. Plain C++ (the proxy's
// DomainRegistrar runs the registrations: domain_registrar.h).
#pragma once

#include <string>
#include <vector>

namespace portier::proxy {

struct DomainRegistrationEntry {
  std::string local_domain;  // lower-case: the AOR registered (sips:LOCAL-DOMAIN)
  std::string cloud_uri;     // "sips:cloud.example:5061": where the REGISTER goes
  std::string cloud_host;    // its host (the REGISTER's Request-URI, the name checked)
  std::string password;      // digest password; empty: a client certificate alone
  int line = 0;              // where it was read, for messages
};

// "" and *out filled, or "FILE:LINE: what is wrong" for the first bad line.
// The message never quotes a password. Only sips: URIs: the registration and
// the requests that come back down it carry the house's calls (RFC 5626 §3
// flows are TLS here).
std::string load_domain_registrations(const std::string &path,
                                      std::vector<DomainRegistrationEntry> *out);
// One line's fields (already split from comments); "" or what is wrong.
std::string parse_domain_registration_line(const std::string &line, DomainRegistrationEntry *out);

}  // namespace portier::proxy
