#include "push/json_value.h"

#include <cstdlib>

namespace portier::push::json {
namespace {

// Deep enough for any provider's answer; shallow enough that a hostile text
// cannot exhaust the stack.
constexpr int kMaxDepth = 32;

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  bool document(Value *out, std::string *error) {
    skip_space();
    if (!value(out, 0)) return fail(error);
    skip_space();
    if (i_ != s_.size()) {
      why_ = "text after the value";
      return fail(error);
    }
    return true;
  }

 private:
  bool fail(std::string *error) {
    if (error) *error = "JSON: " + why_ + " at byte " + std::to_string(i_);
    return false;
  }
  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) {
      why_ = "unexpected character";
      return false;
    }
    i_ += word.size();
    return true;
  }

  bool value(Value *v, int depth) {
    if (depth > kMaxDepth) {
      why_ = "nested too deep";
      return false;
    }
    if (i_ >= s_.size()) {
      why_ = "unexpected end";
      return false;
    }
    switch (s_[i_]) {
      case '{':
        return object(v, depth);
      case '[':
        return array(v, depth);
      case '"':
        v->type = Value::Type::String;
        return string(&v->string);
      case 't':
        v->type = Value::Type::Bool;
        v->boolean = true;
        return literal("true");
      case 'f':
        v->type = Value::Type::Bool;
        return literal("false");
      case 'n':
        v->type = Value::Type::Null;
        return literal("null");
      default:
        return number(v);
    }
  }

  bool object(Value *v, int depth) {
    v->type = Value::Type::Object;
    ++i_;
    skip_space();
    if (i_ < s_.size() && s_[i_] == '}') {
      ++i_;
      return true;
    }
    for (;;) {
      skip_space();
      std::string key;
      if (i_ >= s_.size() || s_[i_] != '"') {
        why_ = "expected a member name";
        return false;
      }
      if (!string(&key)) return false;
      skip_space();
      if (i_ >= s_.size() || s_[i_] != ':') {
        why_ = "expected ':'";
        return false;
      }
      ++i_;
      skip_space();
      Value member;
      if (!value(&member, depth + 1)) return false;
      v->object.emplace_back(std::move(key), std::move(member));
      skip_space();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == '}') {
        ++i_;
        return true;
      }
      why_ = "expected ',' or '}'";
      return false;
    }
  }

  bool array(Value *v, int depth) {
    v->type = Value::Type::Array;
    ++i_;
    skip_space();
    if (i_ < s_.size() && s_[i_] == ']') {
      ++i_;
      return true;
    }
    for (;;) {
      skip_space();
      Value item;
      if (!value(&item, depth + 1)) return false;
      v->array.push_back(std::move(item));
      skip_space();
      if (i_ < s_.size() && s_[i_] == ',') {
        ++i_;
        continue;
      }
      if (i_ < s_.size() && s_[i_] == ']') {
        ++i_;
        return true;
      }
      why_ = "expected ',' or ']'";
      return false;
    }
  }

  bool number(Value *v) {
    // RFC 8259 §6: -? int frac? exp?
    const size_t start = i_;
    if (i_ < s_.size() && s_[i_] == '-') ++i_;
    auto digits = [&] {
      const size_t from = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ > from;
    };
    if (!digits()) {
      why_ = "unexpected character";
      return false;
    }
    if (i_ < s_.size() && s_[i_] == '.') {
      ++i_;
      if (!digits()) {
        why_ = "bad number";
        return false;
      }
    }
    if (i_ < s_.size() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (i_ < s_.size() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (!digits()) {
        why_ = "bad number";
        return false;
      }
    }
    v->type = Value::Type::Number;
    v->number = std::strtod(std::string(s_.substr(start, i_ - start)).c_str(), nullptr);
    return true;
  }

  bool hex4(unsigned *out) {
    if (i_ + 4 > s_.size()) {
      why_ = "bad \\u escape";
      return false;
    }
    unsigned n = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      n <<= 4;
      if (c >= '0' && c <= '9')
        n |= c - '0';
      else if (c >= 'a' && c <= 'f')
        n |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        n |= c - 'A' + 10;
      else {
        why_ = "bad \\u escape";
        return false;
      }
    }
    *out = n;
    return true;
  }

  static void append_utf8(std::string *out, unsigned cp) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xc0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xe0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      *out += static_cast<char>(0xf0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  bool string(std::string *out) {
    ++i_;  // the opening quote
    for (;;) {
      if (i_ >= s_.size()) {
        why_ = "unterminated string";
        return false;
      }
      const char c = s_[i_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) {
        why_ = "control character in a string";
        return false;
      }
      if (c != '\\') {
        *out += c;
        continue;
      }
      if (i_ >= s_.size()) {
        why_ = "unterminated string";
        return false;
      }
      const char e = s_[i_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          *out += e;
          break;
        case 'b':
          *out += '\b';
          break;
        case 'f':
          *out += '\f';
          break;
        case 'n':
          *out += '\n';
          break;
        case 'r':
          *out += '\r';
          break;
        case 't':
          *out += '\t';
          break;
        case 'u': {
          unsigned cp;
          if (!hex4(&cp)) return false;
          // RFC 8259 §7: a character outside the BMP is a surrogate pair.
          if (cp >= 0xd800 && cp <= 0xdbff && s_.substr(i_, 2) == "\\u") {
            i_ += 2;
            unsigned low;
            if (!hex4(&low)) return false;
            if (low >= 0xdc00 && low <= 0xdfff)
              cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            else
              cp = 0xfffd;
          } else if (cp >= 0xd800 && cp <= 0xdfff) {
            cp = 0xfffd;
          }
          append_utf8(out, cp);
          break;
        }
        default:
          why_ = "bad escape";
          return false;
      }
    }
  }

  std::string_view s_;
  size_t i_ = 0;
  std::string why_;
};

}  // namespace

const Value *Value::get(std::string_view key) const {
  if (type != Type::Object) return nullptr;
  for (const auto &[k, v] : object)
    if (k == key) return &v;
  return nullptr;
}

std::string Value::string_or(std::string_view key, const std::string &fallback) const {
  const Value *v = get(key);
  return v && v->type == Type::String ? v->string : fallback;
}

bool parse(std::string_view text, Value *out, std::string *error) {
  *out = Value{};
  return Parser(text).document(out, error);
}

}  // namespace portier::push::json
