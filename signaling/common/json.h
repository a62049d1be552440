// JSON writing for control-socket replies and event lines (no parsing needed
// there): quote() for one string, Writer for objects and arrays.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <type_traits>

namespace portier::json {

namespace detail {

// The length of the well-formed UTF-8 sequence at s[i] (RFC 3629 §4: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0 when the bytes
// there are not one.
inline size_t utf8_sequence(std::string_view s, size_t i) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = at(i);
  size_t n;
  unsigned char lo = 0x80, hi = 0xbf;  // the range of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k)
    if (at(i + k) < 0x80 || at(i + k) > 0xbf) return 0;
  return n;
}

}  // namespace detail

// A JSON string literal, quotes included. What we print comes from the
// network (a User-Agent, a Contact), so the output is always valid JSON and
// valid UTF-8 (RFC 8259 §7, §8.1): control characters are escaped, and a byte
// that does not start a well-formed UTF-8 sequence becomes U+FFFD.
inline std::string quote(std::string_view s) {
  std::string out = "\"";
  out.reserve(s.size() + 2);
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = detail::utf8_sequence(s, i);
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  return out + "\"";
}

// Builds one JSON text front to back; commas are placed by looking at what was
// written last, so callers only say what comes next:
//   Writer w;
//   w.begin_object().field("aor", aor).key("calls").begin_array();
//   for (...) w.begin_object().field("call_id", id).end_object();
//   w.end_array().end_object();
//   send(w.str());
// Keys and string values go through quote(), so whatever came from the
// network stays valid JSON.
class Writer {
 public:
  Writer &begin_object() { return open('{'); }
  Writer &end_object() { return close('}'); }
  Writer &begin_array() { return open('['); }
  Writer &end_array() { return close(']'); }

  Writer &key(std::string_view k) {
    separate();
    out_ += quote(k);
    out_ += ':';
    return *this;
  }
  Writer &value(std::string_view s) { return raw(quote(s)); }
  Writer &value(const std::string &s) { return value(std::string_view(s)); }
  Writer &value(const char *s) { return value(std::string_view(s ? s : "")); }
  Writer &value(bool b) { return raw(b ? "true" : "false"); }
  template <typename Int, typename = std::enable_if_t<std::is_integral_v<Int>>>
  Writer &value(Int n) {
    return raw(std::to_string(n));
  }
  Writer &null() { return raw("null"); }
  // A value that is JSON already (another Writer's text, a stored event line).
  Writer &raw(std::string_view json) {
    separate();
    out_.append(json);
    return *this;
  }

  template <typename T>
  Writer &field(std::string_view k, const T &v) {
    return key(k).value(v);
  }
  Writer &raw_field(std::string_view k, std::string_view json) { return key(k).raw(json); }

  const std::string &str() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  Writer &open(char c) {
    separate();
    out_ += c;
    return *this;
  }
  Writer &close(char c) {
    out_ += c;
    return *this;
  }
  // A comma goes between two items: not at the start, not after an opening
  // bracket, not between a key and its value.
  void separate() {
    if (out_.empty()) return;
    const char last = out_.back();
    if (last != '{' && last != '[' && last != ':') out_ += ',';
  }

  std::string out_;
};

// {"NAME":"TEXT"}: the control sockets' one-field replies ({"result":...},
// {"error":...}).
inline std::string object_of(std::string_view name, std::string_view text) {
  return Writer().begin_object().field(name, text).end_object().take();
}

}  // namespace portier::json
