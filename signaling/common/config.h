// One INI loader for every portier program. A program declares its keys in a
// Schema (section, name, type, default, one-line help); the loader rejects unknown
// sections and keys and bad values, naming file, line and key, and --dump-default
// prints the schema as a documented config file.
#pragma once

#include <climits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace portier::config {

enum class Type { String, Bool, Int, List };

struct KeyDef {
  std::string section;
  std::string name;
  Type type = Type::String;
  std::string default_value;
  std::string help;
  long min = LONG_MIN, max = LONG_MAX;  // for Int
  std::vector<std::string> choices;     // for String/List items: allowed values (any when empty)
};

// The name of a KeyDef that stands for any key of its section (Schema::any_key).
inline constexpr const char *kAnyKey = "*";

class Schema {
 public:
  explicit Schema(std::string program) : program_(std::move(program)) {}
  Schema &add(KeyDef def);
  // Shorthands.
  Schema &str(const std::string &section, const std::string &name, const std::string &def,
              const std::string &help, std::vector<std::string> choices = {});
  Schema &boolean(const std::string &section, const std::string &name, bool def,
                  const std::string &help);
  Schema &integer(const std::string &section, const std::string &name, long def, long min, long max,
                  const std::string &help);
  Schema &list(const std::string &section, const std::string &name, const std::string &def,
               const std::string &help, std::vector<std::string> choices = {});
  // A section whose key names the user chooses (portier-door's "[actions] door = ..."):
  // any name of lower-case letters, digits, '-' and '_' is accepted with values of
  // `type`; Config::names_in() lists them. `example` is a "name = value" line that
  // --dump-default prints commented out, since such a section has no default keys.
  Schema &any_key(const std::string &section, Type type, const std::string &example,
                  const std::string &help);

  const KeyDef *find(std::string_view section, std::string_view name) const;
  bool has_section(std::string_view section) const;
  const std::vector<KeyDef> &keys() const { return keys_; }
  const std::string &program() const { return program_; }

 private:
  std::string program_;
  std::vector<KeyDef> keys_;
};

class Config {
 public:
  explicit Config(const Schema &schema);

  // Reads a file. On error returns false and sets *error to
  // "FILE:LINE: [section] key: message" (or "FILE: message" when unreadable).
  bool load_file(const std::string &path, std::string *error);
  bool load_string(std::string_view text, const std::string &name, std::string *error);
  // Sets one value as if read from a file (for tests and command-line overrides).
  bool set(const std::string &section, const std::string &name, const std::string &value,
           std::string *error);

  const std::string &get_string(const std::string &section, const std::string &name) const;
  bool get_bool(const std::string &section, const std::string &name) const;
  long get_int(const std::string &section, const std::string &name) const;
  std::vector<std::string> get_list(const std::string &section, const std::string &name) const;
  // Where the value came from ("FILE:LINE" or "default"), for error messages.
  std::string origin(const std::string &section, const std::string &name) const;
  // "FILE:LINE: [section] name: ", the start of an error message about a value.
  std::string where(const std::string &section, const std::string &name) const;
  // The keys set in a section declared with Schema::any_key, in name order.
  std::vector<std::string> names_in(const std::string &section) const;
  const std::string &source_name() const { return source_; }
  const Schema *schema() const { return &schema_; }

 private:
  bool assign(const std::string &section, const std::string &name, const std::string &value,
              const std::string &origin, std::string *error);
  bool validate(const KeyDef &def, const std::string &value, std::string *why) const;
  const std::string &raw(const std::string &section, const std::string &name) const;

  const Schema &schema_;
  std::string source_ = "default";
  struct Value {
    std::string text;
    std::string origin;
  };
  std::map<std::string, Value> values_;  // key: "section\nname"
};

// The documented default config: every key with its default and help line.
std::string dump_default(const Schema &schema);

// Whitespace-separated items of a list value.
std::vector<std::string> split_list(std::string_view value);

}  // namespace portier::config
