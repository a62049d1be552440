#include "door/actions.h"

#include <string.h>

#include <algorithm>
#include <cstdint>

#include "common/ascii.h"

namespace portier::door {
namespace {

// Keeps the compiler from turning the arithmetic below back into branches.
inline uint32_t opaque(uint32_t v) {
  __asm__("" : "+r"(v));
  return v;
}

// 1 when v == 0, else 0, without a branch.
inline uint32_t is_zero(uint32_t v) { return 1u ^ (opaque(v | (0u - v)) >> 31); }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = ascii::lower(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string_view trim(std::string_view s) {
  const char *ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

std::string seconds_text(std::chrono::seconds s) { return std::to_string(s.count()) + " s"; }

}  // namespace

bool is_valid_code(std::string_view code) {
  if (code.size() < kMinCodeLength || code.size() > kMaxCodeLength) return false;
  return std::all_of(code.begin(), code.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::string normalize_identity(std::string_view uri) {
  uri = trim(uri);
  // A name-addr ("Alice" <sip:...>;tag=x) carries the URI between angle brackets.
  size_t open = uri.find('<');
  if (open != std::string_view::npos) {
    size_t close = uri.find('>', open);
    if (close == std::string_view::npos) return "";
    uri = uri.substr(open + 1, close - open - 1);
  }
  size_t colon = uri.find(':');
  if (colon == std::string_view::npos) return "";
  std::string scheme = ascii::to_lower(uri.substr(0, colon));
  if (scheme != "sip" && scheme != "sips") return "";
  std::string_view rest = uri.substr(colon + 1);
  // The user part may hold ';' and '?' (RFC 3261 §25.1 user-unreserved) but never a
  // raw '@', so the first '@' ends it.
  size_t at = rest.find('@');
  if (at == std::string_view::npos) return "";
  std::string_view userinfo = rest.substr(0, at);
  std::string_view user = userinfo.substr(0, userinfo.find(':'));  // drop a password
  std::string_view hostport = rest.substr(at + 1);
  hostport = hostport.substr(0, hostport.find_first_of(";?>"));
  std::string_view host;
  if (!hostport.empty() && hostport.front() == '[') {
    size_t close = hostport.find(']');
    if (close == std::string_view::npos) return "";
    host = hostport.substr(0, close + 1);
  } else {
    host = hostport.substr(0, hostport.find(':'));
  }
  if (user.empty() || host.empty()) return "";
  // RFC 3261 §19.1.4 compares escaped and unescaped user characters as equal.
  std::string decoded;
  for (size_t i = 0; i < user.size(); ++i) {
    char c = user[i];
    if (c == '%') {
      if (i + 2 >= user.size()) return "";
      int hi = hex_value(user[i + 1]), lo = hex_value(user[i + 2]);
      if (hi < 0 || lo < 0) return "";
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    // What could not be written back unambiguously is not an identity.
    if (static_cast<unsigned char>(c) <= ' ' || c == '@' || c == '<' || c == '>' || c == '"')
      return "";
    decoded += ascii::lower(c);
  }
  return scheme + ":" + decoded + "@" + ascii::to_lower(host);
}

const char *verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Accepted:
      return "accepted";
    case Verdict::Pending:
      return "pending";
    case Verdict::WrongCode:
      return "wrong_code";
    case Verdict::LockedOut:
      return "locked_out";
    case Verdict::NotAllowed:
      return "not_allowed";
  }
  return "?";
}

std::string ActionGate::check_codes(const std::vector<ActionCode> &codes, size_t *culprit) {
  for (size_t i = 0; i < codes.size(); ++i) {
    if (culprit) *culprit = i;
    const ActionCode &a = codes[i];
    if (!is_valid_code(a.code))
      return "action '" + a.action + "': the code must be " + std::to_string(kMinCodeLength) +
             " to " + std::to_string(kMaxCodeLength) + " digits 0-9";
    for (size_t j = 0; j < i; ++j) {
      const ActionCode &b = codes[j];
      if (a.action == b.action) return "action '" + a.action + "' is defined twice";
      if (a.code == b.code)
        return "actions '" + b.action + "' and '" + a.action + "' have the same code";
      const ActionCode &shorter = a.code.size() < b.code.size() ? a : b;
      const ActionCode &longer = &shorter == &a ? b : a;
      if (longer.code.compare(0, shorter.code.size(), shorter.code) == 0)
        return "the code of '" + longer.action + "' starts with the code of '" + shorter.action +
               "', so it could never be typed";
    }
  }
  return "";
}

ActionGate::ActionGate(const std::vector<ActionCode> &codes, AccessPolicy policy)
    : policy_(std::move(policy)) {
  for (const auto &c : codes) {
    Stored s;
    s.length = std::min(c.code.size(), kMaxCodeLength);
    memcpy(s.digits, c.code.data(), s.length);
    names_.push_back(c.action);
    codes_.push_back(s);
  }
  for (auto &id : policy_.allow) id = normalize_identity(id);
  policy_.allow.erase(std::remove(policy_.allow.begin(), policy_.allow.end(), ""),
                      policy_.allow.end());
  policy_.max_wrong_codes = std::max(1, policy_.max_wrong_codes);
  policy_.global_max_wrong_codes = std::max(1, policy_.global_max_wrong_codes);
}

ActionGate::~ActionGate() {
  // Codes and half-typed codes should not outlive the gate in freed memory.
  for (auto &s : codes_) clear(s);
  for (auto &[id, c] : callers_) clear(c.typed);
}

void ActionGate::clear(Stored &s) {
  explicit_bzero(s.digits, sizeof s.digits);
  s.length = 0;
}

ActionGate::Caller *ActionGate::find_allowed(std::string_view who, std::string *normalized) {
  *normalized = normalize_identity(who);
  if (normalized->empty() ||
      std::find(policy_.allow.begin(), policy_.allow.end(), *normalized) == policy_.allow.end())
    return nullptr;
  return &callers_[*normalized];
}

bool ActionGate::locked(const Caller &c, Clock::time_point now, std::string *reason) const {
  if (now < c.locked_until) {
    *reason = "locked out after " + std::to_string(policy_.max_wrong_codes) +
              " wrong codes from this identity";
    return true;
  }
  if (now < global_locked_until_ && (c.lockouts > 0 || !c.wrong.empty())) {
    *reason = "every identity with a wrong code locked out after " +
              std::to_string(policy_.global_max_wrong_codes) + " wrong codes";
    return true;
  }
  return false;
}

int ActionGate::match(const Stored &typed) const {
  // Every code and every one of the kMaxCodeLength positions is visited whatever
  // was typed: the work does not depend on where a code differs, on its length or
  // on whether it matches. Unused positions are zero in both, and the lengths are
  // compared as one more byte.
  uint32_t found = 0;
  uint32_t index = 0;
  for (size_t i = 0; i < codes_.size(); ++i) {
    const Stored &code = codes_[i];
    uint32_t diff = static_cast<uint32_t>(code.length ^ typed.length);
    for (size_t j = 0; j < kMaxCodeLength; ++j)
      diff |= static_cast<uint8_t>(code.digits[j] ^ typed.digits[j]);
    const uint32_t hit = is_zero(diff);
    const uint32_t mask = 0u - hit;
    index = (index & ~mask) | (static_cast<uint32_t>(i) & mask);
    found |= hit;
  }
  return found ? static_cast<int>(index) : -1;
}

Decision ActionGate::accept(Caller &c, int index) {
  clear(c.typed);
  c.wrong.clear();
  c.lockouts = 0;
  return {Verdict::Accepted, names_[static_cast<size_t>(index)], "code accepted"};
}

Decision ActionGate::wrong(Caller &c, Clock::time_point now, const char *what) {
  clear(c.typed);
  auto expire = [&](std::deque<Clock::time_point> &q) {
    while (!q.empty() && now - q.front() >= policy_.wrong_code_window) q.pop_front();
  };
  expire(c.wrong);
  expire(global_wrong_);
  c.wrong.push_back(now);
  global_wrong_.push_back(now);
  std::string reason = what;
  if (c.wrong.size() >= static_cast<size_t>(policy_.max_wrong_codes)) {
    c.wrong.clear();
    std::chrono::seconds for_how_long = policy_.lockout;
    for (int i = 0; i < c.lockouts && for_how_long < policy_.max_lockout; ++i) for_how_long *= 2;
    for_how_long = std::min(for_how_long, std::max(policy_.lockout, policy_.max_lockout));
    ++c.lockouts;
    c.locked_until = now + for_how_long;
    reason += "; identity locked out for " + seconds_text(for_how_long);
  } else {
    reason += " (" + std::to_string(c.wrong.size()) + " of " +
              std::to_string(policy_.max_wrong_codes) + " before lock-out)";
  }
  bool alarm = false;
  if (global_wrong_.size() >= static_cast<size_t>(policy_.global_max_wrong_codes)) {
    global_wrong_.clear();
    global_locked_until_ = now + policy_.lockout;
    alarm = true;
    reason += "; alarm: " + std::to_string(policy_.global_max_wrong_codes) +
              " wrong codes within " + seconds_text(policy_.wrong_code_window) +
              ", every identity with a wrong code locked out for " + seconds_text(policy_.lockout);
  }
  Decision d{Verdict::WrongCode, "", reason};
  d.alarm = alarm;
  return d;
}

Decision ActionGate::key(std::string_view who, char key, Clock::time_point now) {
  std::string id;
  Caller *c = find_allowed(who, &id);
  if (!c) return {Verdict::NotAllowed, "", "identity not allowed"};
  std::string reason;
  if (locked(*c, now, &reason)) {
    clear(c->typed);
    return {Verdict::LockedOut, "", reason};
  }
  const bool stale = c->typed.length > 0 && now - c->last_key > policy_.digit_timeout;
  c->last_key = now;
  Decision dropped;
  if (stale) {
    if (c->typed.length >= kMinCodeLength) {
      dropped = wrong(*c, now, "unfinished code timed out");
      // The lock-out it may have started refuses this key too.
      if (locked(*c, now, &reason)) return {Verdict::LockedOut, "", dropped.reason};
    }
    clear(c->typed);
  }
  Decision d = take_key(*c, key, now);
  // This key starts a new code (it cannot complete one alone); the report that
  // matters is the code the pause dropped.
  if (dropped.verdict == Verdict::WrongCode && d.verdict == Verdict::Pending) return dropped;
  return d;
}

Decision ActionGate::take_key(Caller &c, char key, Clock::time_point now) {
  if (key == '*') {
    if (c.typed.length >= kMinCodeLength) return wrong(c, now, "code abandoned with '*'");
    clear(c.typed);
    return {Verdict::Pending, "", "keys cleared"};
  }
  if (key == '#') {
    if (c.typed.length == 0) return {Verdict::Pending, "", "nothing typed before '#'"};
    int index = match(c.typed);
    if (index >= 0) return accept(c, index);
    return wrong(c, now, "wrong code");
  }
  const bool digit = key >= '0' && key <= '9';
  const bool letter = key >= 'A' && key <= 'D';
  if (!digit && !letter) return {Verdict::Pending, "", "not a DTMF key"};
  // Letters never match a code but are typed like digits, so they count alike.
  c.typed.digits[c.typed.length++] = key;
  int index = match(c.typed);
  if (index >= 0) return accept(c, index);
  if (c.typed.length == kMaxCodeLength) return wrong(c, now, "wrong code");
  return {Verdict::Pending, "", "waiting for more keys"};
}

Decision ActionGate::code(std::string_view who, std::string_view text, Clock::time_point now) {
  std::string id;
  Caller *c = find_allowed(who, &id);
  if (!c) return {Verdict::NotAllowed, "", "identity not allowed"};
  std::string reason;
  if (locked(*c, now, &reason)) return {Verdict::LockedOut, "", reason};
  text = trim(text);
  if (!text.empty() && text.back() == '#') text = trim(text.substr(0, text.size() - 1));
  if (!is_valid_code(text)) return wrong(*c, now, "message is not a code");
  Stored typed;
  typed.length = text.size();
  memcpy(typed.digits, text.data(), text.size());
  int index = match(typed);
  clear(typed);
  if (index >= 0) return accept(*c, index);
  return wrong(*c, now, "wrong code");
}

void ActionGate::forget_keys(std::string_view who) {
  std::string id = normalize_identity(who);
  auto it = callers_.find(id);
  if (it != callers_.end()) clear(it->second.typed);
}

}  // namespace portier::door
