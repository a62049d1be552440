#include "common/auth/users_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/ascii.h"
#include "common/text_file.h"

namespace portier::auth {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_fields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    const size_t start = i;
    while (i < s.size() && !is_space(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

bool is_hex(std::string_view s, size_t len) {
  if (s.size() != len) return false;
  for (char c : s) {
    const char l = ascii::lower(c);
    if (!((l >= '0' && l <= '9') || (l >= 'a' && l <= 'f'))) return false;
  }
  return true;
}

// The entry name: the digest username up to '@' (clients that send the full AOR as
// username still find their entry) and the domain, lower-cased like DNS names.
std::string entry_key(std::string_view user, std::string_view domain) {
  const std::string_view local = user.substr(0, user.find('@'));
  std::string key(local);
  key += '@';
  key += ascii::to_lower(domain);
  return key;
}

}  // namespace

bool UsersFile::load(const std::string &path, std::string *error) {
  std::string text;
  if (!read_text_file(path, "users file", &text, error)) return false;
  return load_from_string(text, path, error);
}

bool UsersFile::load_from_string(std::string_view text, const std::string &name,
                                 std::string *error) {
  // Parsed into a fresh table so that a failed reload keeps the users we had.
  std::unordered_map<std::string, Entry> users;
  std::unordered_map<std::string, size_t> first_line;
  bool have_version = false;
  size_t line_no = 0;

  // Messages never quote a secret field: a typo there would put the password in a log.
  auto fail = [&](size_t line, const std::string &message) {
    if (error) *error = name + ":" + std::to_string(line) + ": " + message;
    return false;
  };

  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = trim(text.substr(pos, end - pos));
    pos = end + 1;
    ++line_no;
    if (line.empty() || line.front() == '#') continue;

    if (!have_version) {
      constexpr std::string_view kVersion = "version:";
      if (line.substr(0, kVersion.size()) != kVersion) {
        return fail(line_no, "expected 'version:1' as the first line");
      }
      const std::string_view version = trim(line.substr(kVersion.size()));
      if (version != "1") {
        return fail(line_no, "unsupported users file version '" + std::string(version) +
                                 "' (only version:1 is known)");
      }
      have_version = true;
      continue;
    }

    // Flexisip puts a phone alias after the ';'; portier does not use it. Secrets
    // therefore cannot contain ';' or white space.
    const size_t semicolon = line.find(';');
    if (semicolon == std::string_view::npos) {
      return fail(line_no, "missing ';' at the end of the entry");
    }
    const std::vector<std::string_view> fields = split_fields(line.substr(0, semicolon));
    if (fields.empty()) return fail(line_no, "missing user@domain before ';'");

    const std::string_view identity = fields[0];
    const size_t at = identity.find('@');
    // A ':' means the identity was left out and this is a secret: do not echo it.
    if (at == 0 || at == std::string_view::npos || at + 1 == identity.size() ||
        identity.find('@', at + 1) != std::string_view::npos ||
        identity.find(':') != std::string_view::npos) {
      return fail(line_no, "the entry must start with user@domain");
    }
    const std::string key = entry_key(identity.substr(0, at), identity.substr(at + 1));

    Entry entry;
    entry.line = line_no;
    for (size_t i = 1; i < fields.size(); ++i) {
      const std::string_view field = fields[i];
      const size_t colon = field.find(':');
      if (colon == std::string_view::npos) {
        return fail(line_no, "each secret needs a type: clrtxt:, md5: or sha256:");
      }
      const std::string_view type = field.substr(0, colon);
      const std::string_view value = field.substr(colon + 1);
      std::string *slot = nullptr;
      size_t hex_len = 0;
      if (type == "clrtxt") {
        slot = &entry.clrtxt;
      } else if (type == "md5") {
        slot = &entry.md5_ha1;
        hex_len = 32;
      } else if (type == "sha256") {
        slot = &entry.sha256_ha1;
        hex_len = 64;
      } else {
        return fail(line_no, "unknown secret type (expected clrtxt:, md5: or sha256:)");
      }
      const std::string type_name(type);
      if (value.empty()) return fail(line_no, "empty " + type_name + ": secret");
      if (!slot->empty()) return fail(line_no, type_name + ": given twice");
      if (hex_len != 0) {
        if (!is_hex(value, hex_len)) {
          return fail(line_no,
                      type_name + ": expects " + std::to_string(hex_len) + " hex digits (HA1)");
        }
        *slot = ascii::to_lower(value);
      } else {
        *slot = std::string(value);
      }
    }
    if (entry.clrtxt.empty() && entry.md5_ha1.empty() && entry.sha256_ha1.empty()) {
      return fail(line_no, "no secret for " + key);
    }
    const auto [it, inserted] = first_line.emplace(key, line_no);
    if (!inserted) {
      return fail(line_no,
                  "duplicate user " + key + " (first at line " + std::to_string(it->second) + ")");
    }
    users.emplace(key, std::move(entry));
  }
  if (!have_version) return fail(line_no == 0 ? 1 : line_no, "missing 'version:1' line");
  users_.swap(users);
  return true;
}

std::optional<std::string> UsersFile::ha1(std::string_view user, std::string_view domain,
                                          std::string_view realm, Algorithm a) const {
  const auto it = users_.find(entry_key(user, domain));
  if (it == users_.end()) return std::nullopt;
  const Entry &entry = it->second;
  // The client hashed the username exactly as it sent it, full AOR included.
  if (!entry.clrtxt.empty()) {
    if (user.find('@') != std::string_view::npos) return compute_ha1(a, user, realm, entry.clrtxt);
    Entry::Derived &d = entry.derived[a == Algorithm::SHA256 ? 1 : 0];
    if (d.ha1.empty() || d.realm != realm) {
      d.realm.assign(realm);
      d.ha1 = compute_ha1(a, user, realm, entry.clrtxt);
    }
    return d.ha1;
  }
  const std::string &stored = a == Algorithm::SHA256 ? entry.sha256_ha1 : entry.md5_ha1;
  if (stored.empty()) return std::nullopt;
  // A stored HA1 was computed over the bare user name and the domain as realm
  // (Flexisip's convention); for any other username or realm it cannot match.
  if (user.find('@') != std::string_view::npos || !ascii::iequals(realm, domain))
    return std::nullopt;
  return stored;
}

std::unordered_set<std::string> UsersFile::domains() const {
  std::unordered_set<std::string> out;
  for (const auto &entry : users_) out.insert(entry.first.substr(entry.first.find('@') + 1));
  return out;
}

bool UsersFile::has_user(std::string_view user, std::string_view domain) const {
  return users_.count(entry_key(user, domain)) != 0;
}

}  // namespace portier::auth
