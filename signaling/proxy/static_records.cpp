#include "proxy/static_records.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

#include "common/ascii.h"
#include "common/text_file.h"
#include "proxy/location_store.h"

namespace portier::proxy {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// "sip:door-group@*": the alias (or target) in every served domain.
bool is_every_domain(const std::string &aor) {
  return aor.size() > 2 && aor.compare(aor.size() - 2, 2, "@*") == 0;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// The next URI of a line: "<uri>" or a bare uri, separated by blanks and/or
// commas. Returns false with *message set on a syntax error; an empty `uri`
// with true means the line is done.
bool next_uri(std::string_view &rest, std::string_view &uri, std::string *message) {
  while (!rest.empty() && (is_space(rest.front()) || rest.front() == ',')) rest.remove_prefix(1);
  uri = {};
  if (rest.empty()) return true;
  if (rest.front() == '<') {
    // A URI holds no blank or '<': meeting one first means the '>' is missing.
    size_t close = rest.find_first_of("<> \t", 1);
    if (close == std::string_view::npos || rest[close] != '>') {
      *message = "missing '>'";
      return false;
    }
    uri = rest.substr(1, close - 1);
    rest.remove_prefix(close + 1);
    if (!rest.empty() && !is_space(rest.front()) && rest.front() != ',') {
      *message = "unexpected text after '>'";
      return false;
    }
  } else {
    size_t end = 0;
    while (end < rest.size() && !is_space(rest[end]) && rest[end] != ',') ++end;
    uri = rest.substr(0, end);
    rest.remove_prefix(end);
    if (uri.find_first_of("<>") != std::string_view::npos) {
      *message = "unbalanced '<' or '>' in '" + std::string(uri) + "'";
      return false;
    }
  }
  if (uri.empty()) {
    *message = "empty '<>'";
    return false;
  }
  return true;
}

// "sip:Door@Home.Example:5060;transport=tcp" -> "sip:Door@home.example", the key
// form of the location store, so an alias resolves to what devices register as.
// sips: maps to sip: for the same reason: the store keys every AOR by sip:.
bool to_aor(std::string_view uri, std::string *aor, std::string *message) {
  size_t colon = uri.find(':');
  std::string_view scheme =
      colon == std::string_view::npos ? std::string_view() : uri.substr(0, colon);
  if (!ascii::iequals(scheme, "sip") && !ascii::iequals(scheme, "sips")) {
    *message = "expected a sip: URI, got '" + std::string(uri) + "'";
    return false;
  }
  std::string_view rest = uri.substr(colon + 1);
  size_t at = rest.find('@');
  if (at == std::string_view::npos || at == 0) {
    *message = "missing user part in '" + std::string(uri) + "'";
    return false;
  }
  // normalize_aor drops the port and parameters, IPv6 literals included.
  std::string_view host = rest.substr(at + 1);
  if (host.empty() || host.front() == ':' || host.front() == ';' || host.front() == '?') {
    *message = "missing host in '" + std::string(uri) + "'";
    return false;
  }
  *aor = normalize_aor(std::string(rest.substr(0, at)), std::string(host));
  return true;
}

}  // namespace

bool StaticRecords::load(const std::string &path, std::string *error) {
  std::string text;
  if (!read_text_file(path, "static records file", &text, error)) return false;
  return load_from_string(text, path, error);
}

bool StaticRecords::load_from_string(std::string_view text, const std::string &name,
                                     std::string *error) {
  // Parse into a new map and swap at the end, so a reload with a typo keeps the
  // records that were working.
  std::map<std::string, std::vector<std::string>> map;
  std::map<std::string, size_t> first_line;
  size_t line_no = 0;
  std::string message;
  auto fail = [&]() {
    if (error) *error = name + ":" + std::to_string(line_no) + ": " + message;
    return false;
  };

  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    ++line_no;
    if (line.empty() || line.front() == '#') continue;

    std::string_view uri;
    std::string alias;
    if (!next_uri(line, uri, &message) || !to_aor(uri, &alias, &message)) return fail();
    auto [seen, inserted] = first_line.emplace(alias, line_no);
    if (!inserted) {
      message =
          "duplicate alias " + alias + " (first on line " + std::to_string(seen->second) + ")";
      return fail();
    }

    std::vector<std::string> targets;
    const bool every_domain = is_every_domain(alias);
    while (true) {
      if (!next_uri(line, uri, &message)) return fail();
      if (uri.empty()) break;
      std::string target;
      if (!to_aor(uri, &target, &message)) return fail();
      if (is_every_domain(target) != every_domain) {
        // One house per domain: sip:USER@* rings that user in the request's
        // own domain, never a fixed one, and a fixed alias names real AORs.
        message = every_domain ? "alias " + alias + " (every domain) lists " + target +
                                     ": its targets are sip:USER@* too"
                               : "alias " + alias + " lists " + target +
                                     ": sip:USER@* targets need a sip:ALIAS@* alias";
        return fail();
      }
      if (target == alias) {
        // The router would fork the call to itself again and again.
        message = "alias " + alias + " lists itself";
        return fail();
      }
      // Listing a device twice would ring it twice.
      if (std::find(targets.begin(), targets.end(), target) == targets.end()) {
        targets.push_back(std::move(target));
      }
    }
    if (targets.empty()) {
      message = "alias " + alias + " has no targets";
      return fail();
    }
    map.emplace(std::move(alias), std::move(targets));
  }
  map_ = std::move(map);
  return true;
}

const std::vector<std::string> *StaticRecords::find(const std::string &aor) const {
  auto it = map_.find(aor);
  return it == map_.end() ? nullptr : &it->second;
}

bool StaticRecords::find_in_domain(std::string_view user, std::string_view domain,
                                   std::vector<std::string> *out) const {
  std::string key = "sip:";
  key.append(user).append("@*");
  auto it = map_.find(key);
  if (it == map_.end()) return false;
  out->clear();
  for (const std::string &t : it->second) {
    out->push_back(t.substr(0, t.size() - 1));  // "sip:mon1@" ...
    out->back().append(domain);
  }
  return true;
}

}  // namespace portier::proxy
