// Reading JSON (RFC 8259): a service-account file, a token endpoint's answer,
// a provider's error body. Writing is common/json.h's Writer. What a provider
// sends is untrusted: depth and size are bounded, and a bad text is an error,
// never a crash.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portier::push::json {

struct Value {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<Value> array;
  std::vector<std::pair<std::string, Value>> object;

  // The member named `key` of an object; nullptr when absent or not an object.
  const Value *get(std::string_view key) const;
  // A string member's text, or `fallback` when absent or of another type.
  std::string string_or(std::string_view key, const std::string &fallback = "") const;
  bool is_string() const { return type == Type::String; }
  bool is_object() const { return type == Type::Object; }
};

// Parses one JSON text (whitespace around it allowed). On error returns false
// and says where in *error.
bool parse(std::string_view text, Value *out, std::string *error);

}  // namespace portier::push::json
