#include "common/config.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/text_file.h"

namespace portier::config {
namespace {

std::string key_of(const std::string &section, const std::string &name) {
  return section + "\n" + name;
}

std::string_view trim(std::string_view s) {
  const char *ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// A '#' starts a comment at the beginning of a line or after whitespace; a '#'
// inside a value (a URI fragment, say) needs no escaping. ';' is not a comment
// character because SIP URIs carry ';transport=tcp'.
std::string_view strip_comment(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i) {
    if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t'))
      return line.substr(0, i);
  }
  return line;
}

const char *type_name(Type t) {
  switch (t) {
    case Type::String:
      return "string";
    case Type::Bool:
      return "boolean";
    case Type::Int:
      return "integer";
    case Type::List:
      return "list";
  }
  return "?";
}

bool parse_bool(std::string_view v, bool *out) {
  std::string s(v);
  std::transform(s.begin(), s.end(), s.begin(), ::tolower);
  if (s == "true" || s == "yes" || s == "on" || s == "1") return *out = true, true;
  if (s == "false" || s == "no" || s == "off" || s == "0") return *out = false, true;
  return false;
}

bool parse_int(std::string_view v, long *out) {
  std::string s(v);
  if (s.empty()) return false;
  errno = 0;
  char *end = nullptr;
  long n = std::strtol(s.c_str(), &end, 10);
  if (errno || *end) return false;
  *out = n;
  return true;
}

}  // namespace

std::vector<std::string> split_list(std::string_view value) {
  std::vector<std::string> out;
  std::istringstream in{std::string(value)};
  std::string item;
  while (in >> item) out.push_back(item);
  return out;
}

Schema &Schema::add(KeyDef def) {
  keys_.push_back(std::move(def));
  return *this;
}

Schema &Schema::str(const std::string &section, const std::string &name, const std::string &def,
                    const std::string &help, std::vector<std::string> choices) {
  return add({section, name, Type::String, def, help, LONG_MIN, LONG_MAX, std::move(choices)});
}

Schema &Schema::boolean(const std::string &section, const std::string &name, bool def,
                        const std::string &help) {
  return add({section, name, Type::Bool, def ? "true" : "false", help, LONG_MIN, LONG_MAX, {}});
}

Schema &Schema::integer(const std::string &section, const std::string &name, long def, long min,
                        long max, const std::string &help) {
  return add({section, name, Type::Int, std::to_string(def), help, min, max, {}});
}

Schema &Schema::list(const std::string &section, const std::string &name, const std::string &def,
                     const std::string &help, std::vector<std::string> choices) {
  return add({section, name, Type::List, def, help, LONG_MIN, LONG_MAX, std::move(choices)});
}

Schema &Schema::any_key(const std::string &section, Type type, const std::string &example,
                        const std::string &help) {
  return add({section, kAnyKey, type, example, help, LONG_MIN, LONG_MAX, {}});
}

// A user-chosen key name must look like the declared ones, so that a typo such as
// "door: 1234" or a stray word is still an error and not a new key.
static bool is_free_key_name(std::string_view name) {
  if (name.empty() || name == kAnyKey || !(name[0] >= 'a' && name[0] <= 'z')) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
  return true;
}

const KeyDef *Schema::find(std::string_view section, std::string_view name) const {
  const KeyDef *any = nullptr;
  for (const auto &k : keys_) {
    if (k.section != section) continue;
    if (k.name == name) return &k;
    if (k.name == kAnyKey) any = &k;
  }
  return any && is_free_key_name(name) ? any : nullptr;
}

bool Schema::has_section(std::string_view section) const {
  return std::any_of(keys_.begin(), keys_.end(),
                     [&](const KeyDef &k) { return k.section == section; });
}

Config::Config(const Schema &schema) : schema_(schema) {
  for (const auto &k : schema_.keys())
    if (k.name != kAnyKey) values_[key_of(k.section, k.name)] = {k.default_value, "default"};
}

bool Config::validate(const KeyDef &def, const std::string &value, std::string *why) const {
  switch (def.type) {
    case Type::Bool: {
      bool b;
      if (!parse_bool(value, &b)) {
        *why = "'" + value + "' is not a boolean (use true or false)";
        return false;
      }
      return true;
    }
    case Type::Int: {
      long n;
      if (!parse_int(value, &n)) {
        *why = "'" + value + "' is not an integer";
        return false;
      }
      if (n < def.min || n > def.max) {
        *why = std::to_string(n) + " is out of range [" + std::to_string(def.min) + ", " +
               std::to_string(def.max) + "]";
        return false;
      }
      return true;
    }
    case Type::String:
    case Type::List: {
      if (def.choices.empty()) return true;
      auto items = def.type == Type::List ? split_list(value) : std::vector<std::string>{value};
      for (const auto &item : items) {
        if (std::find(def.choices.begin(), def.choices.end(), item) == def.choices.end()) {
          std::string allowed;
          for (const auto &c : def.choices) allowed += (allowed.empty() ? "" : ", ") + c;
          *why = "'" + item + "' is not one of: " + allowed;
          return false;
        }
      }
      return true;
    }
  }
  return true;
}

bool Config::set(const std::string &section, const std::string &name, const std::string &value,
                 std::string *error) {
  return assign(section, name, value, "set", error);
}

// One place checks a key and its value, whether it comes from a file or from set().
bool Config::assign(const std::string &section, const std::string &name, const std::string &value,
                    const std::string &origin, std::string *error) {
  const KeyDef *def = schema_.find(section, name);
  if (!def) {
    *error = "[" + section + "] " + name + ": unknown key";
    return false;
  }
  std::string why;
  if (!validate(*def, value, &why)) {
    *error = "[" + section + "] " + name + ": " + why;
    return false;
  }
  values_[key_of(section, name)] = {value, origin};
  return true;
}

bool Config::load_file(const std::string &path, std::string *error) {
  std::string text;
  if (!read_text_file(path, "config file", &text, error)) return false;
  return load_string(text, path, error);
}

bool Config::load_string(std::string_view text, const std::string &name, std::string *error) {
  source_ = name;
  std::string section;
  size_t line_no = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view raw_line =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    std::string_view line = trim(strip_comment(raw_line));
    if (line.empty()) continue;
    const std::string where = name + ":" + std::to_string(line_no) + ": ";
    if (line.front() == '[') {
      if (line.back() != ']') {
        *error = where + "section header must end with ']'";
        return false;
      }
      section = std::string(trim(line.substr(1, line.size() - 2)));
      if (!schema_.has_section(section)) {
        *error = where + "[" + section + "]: unknown section";
        return false;
      }
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      *error = where + "expected 'key = value'";
      return false;
    }
    std::string key(trim(line.substr(0, eq)));
    std::string value(trim(line.substr(eq + 1)));
    if (section.empty()) {
      *error = where + key + ": key outside of any [section]";
      return false;
    }
    std::string why;
    if (!assign(section, key, value, name + ":" + std::to_string(line_no), &why)) {
      *error = where + why;
      return false;
    }
  }
  return true;
}

const std::string &Config::raw(const std::string &section, const std::string &name) const {
  auto it = values_.find(key_of(section, name));
  if (it == values_.end()) {
    // A program asking for a key it did not declare is a programming error.
    std::fprintf(stderr, "portier: config key [%s] %s is not declared\n", section.c_str(),
                 name.c_str());
    std::abort();
  }
  return it->second.text;
}

const std::string &Config::get_string(const std::string &section, const std::string &name) const {
  return raw(section, name);
}

bool Config::get_bool(const std::string &section, const std::string &name) const {
  bool b = false;
  parse_bool(raw(section, name), &b);
  return b;
}

long Config::get_int(const std::string &section, const std::string &name) const {
  long n = 0;
  parse_int(raw(section, name), &n);
  return n;
}

std::vector<std::string> Config::get_list(const std::string &section,
                                          const std::string &name) const {
  return split_list(raw(section, name));
}

std::string Config::origin(const std::string &section, const std::string &name) const {
  auto it = values_.find(key_of(section, name));
  return it == values_.end() ? "?" : it->second.origin;
}

std::string Config::where(const std::string &section, const std::string &name) const {
  return origin(section, name) + ": [" + section + "] " + name + ": ";
}

std::vector<std::string> Config::names_in(const std::string &section) const {
  std::vector<std::string> out;
  const std::string prefix = section + "\n";
  for (auto it = values_.lower_bound(prefix);
       it != values_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    std::string name = it->first.substr(prefix.size());
    const KeyDef *def = schema_.find(section, name);
    if (def && def->name == kAnyKey) out.push_back(std::move(name));
  }
  return out;
}

std::string dump_default(const Schema &schema) {
  std::ostringstream out;
  out << "# Default configuration of " << schema.program() << ".\n"
      << "# Every key is shown with its default value; '#' starts a comment.\n";
  std::string section;
  for (const auto &k : schema.keys()) {
    if (k.section != section) {
      section = k.section;
      out << "\n[" << section << "]\n";
    }
    if (k.name == kAnyKey) {
      out << "# " << k.help << "\n# " << k.default_value << "\n";
      continue;
    }
    out << "# " << k.help;
    if (k.type == Type::Int && (k.min != LONG_MIN || k.max != LONG_MAX))
      out << " (" << type_name(k.type) << ", " << k.min << ".." << k.max << ")";
    else if (!k.choices.empty()) {
      out << " (one of:";
      for (const auto &c : k.choices) out << " " << c;
      out << ")";
    } else
      out << " (" << type_name(k.type) << ")";
    out << "\n" << k.name << " = " << k.default_value << "\n";
  }
  return out.str();
}

}  // namespace portier::config
