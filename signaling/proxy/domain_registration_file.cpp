#include "proxy/domain_registration_file.h"

#include <fstream>
#include <set>
#include <sstream>

namespace portier::proxy {
namespace {

std::string lower(std::string s) {
  for (char &c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return s;
}

// A host name or an IP literal: letters, digits, '-', '.', and ':' inside [].
bool plausible_host(const std::string &h) {
  if (h.empty() || h.size() > 253) return false;
  if (h.front() == '[') return h.size() > 2 && h.back() == ']';
  for (char c : h)
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.')) return false;
  return true;
}

}  // namespace

std::string parse_domain_registration_line(const std::string &line, DomainRegistrationEntry *out) {
  std::istringstream in(line);
  std::string domain, uri, password, extra;
  in >> domain >> uri >> password >> extra;
  if (uri.empty()) return "expected LOCAL-DOMAIN CLOUD-SIPS-URI [PASSWORD]";
  if (!extra.empty()) return "more than three fields (a password cannot contain blanks)";
  domain = lower(domain);
  if (!plausible_host(domain) || domain.front() == '[')
    return "'" + domain + "' is not a domain name";
  if (lower(uri.substr(0, 5)) != "sips:")
    return "'" + uri + "' is not a sips: URI (the domain registration runs over TLS only)";
  std::string rest = uri.substr(5);
  if (rest.find('@') != std::string::npos || rest.find('?') != std::string::npos)
    return "'" + uri + "' must name the cloud proxy alone (sips:HOST[:PORT])";
  const size_t semi = rest.find(';');
  if (semi != std::string::npos) rest = rest.substr(0, semi);
  std::string host = rest, port;
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos) return "'" + uri + "': unterminated IPv6 literal";
    host = rest.substr(0, close + 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return "'" + uri + "': bad port";
      port = rest.substr(close + 2);
    }
  } else if (const size_t colon = rest.find(':'); colon != std::string::npos) {
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (!plausible_host(host)) return "'" + uri + "': bad host";
  if (!port.empty()) {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        std::stoi(port) < 1 || std::stoi(port) > 65535)
      return "'" + uri + "': bad port";
  }
  out->local_domain = domain;
  out->cloud_uri = uri;
  out->cloud_host = lower(host);
  out->password = password;
  return "";
}

std::string load_domain_registrations(const std::string &path,
                                      std::vector<DomainRegistrationEntry> *out) {
  std::ifstream in(path);
  if (!in) return path + ": cannot be read";
  std::vector<DomainRegistrationEntry> entries;
  std::set<std::string> seen;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    // A comment starts with '#' at the start of a line or after a blank, so
    // a password may hold a '#'.
    for (size_t i = 0; i < line.size(); ++i)
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line.resize(i);
        break;
      }
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    DomainRegistrationEntry e;
    const std::string bad = parse_domain_registration_line(line, &e);
    if (!bad.empty()) return path + ":" + std::to_string(n) + ": " + bad;
    if (!seen.insert(e.local_domain).second)
      return path + ":" + std::to_string(n) + ": " + e.local_domain +
             " is registered on an earlier line already (one flow per domain)";
    e.line = n;
    entries.push_back(std::move(e));
  }
  *out = std::move(entries);
  return "";
}

}  // namespace portier::proxy
