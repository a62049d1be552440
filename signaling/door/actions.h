// Who may open the door, and with which code. The daemon hands every key press
// (RFC 4733 event, SIP INFO) and every SIP MESSAGE body to one ActionGate together
// with the caller's identity; the gate answers which action, if any, to run.
//
// Codes are secrets: nothing here logs or returns a code or the keys typed, and
// every Decision::reason may be logged as is. Checks run in this order: identity
// not allowed (refused without a trace of state, so strangers cannot lock the
// residents out), lock-out, then the code, compared against every action's code
// in a fixed number of steps (no early exit, whatever the length typed).
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace portier::door {

using Clock = std::chrono::steady_clock;

inline constexpr size_t kMinCodeLength = 4;
inline constexpr size_t kMaxCodeLength = 12;

// 4 to 12 characters '0'-'9'.
bool is_valid_code(std::string_view code);

// "sip:Alice@Home.Example:5060;transport=tcp", "\"Alice\" <sip:alice@home.example>;tag=1"
// -> "sip:alice@home.example": scheme, user and host in lower case, %XX escapes of
// the user decoded, password, port, parameters and headers dropped. "" when it is
// not a sip: or sips: URI with a user and a host. The user part is compared
// without case on purpose: an allow-list of residents should not depend on how a
// phone capitalises a name (every such name still needs an account on the proxy).
std::string normalize_identity(std::string_view uri);

struct AccessPolicy {
  std::vector<std::string> allow;  // SIP identities; normalized by ActionGate
  int max_wrong_codes = 3;         // from one identity within wrong_code_window
  std::chrono::seconds wrong_code_window{300};
  // An identity's first lock-out; each next one (without a right code in
  // between) doubles, up to max_lockout: a fixed lock-out still let a guesser
  // try ~10 codes a minute for ever.
  std::chrono::seconds lockout{60};
  std::chrono::seconds max_lockout{3600};
  // Wrong codes from all identities together within wrong_code_window before
  // the alarm (Decision::alarm), and a lock-out of every identity that typed
  // a wrong code lately: trying a code from many identities gains nothing,
  // and residents who typed nothing wrong are not locked out by a guesser.
  int global_max_wrong_codes = 10;
  // Keys more than this apart do not belong to one code.
  std::chrono::seconds digit_timeout{5};
};

struct ActionCode {
  std::string action;  // e.g. "door"
  std::string code;    // is_valid_code(); no code may start with another one
};

enum class Verdict {
  Accepted,    // run Decision::action
  Pending,     // a key was taken; the code is not complete yet
  WrongCode,   // counted towards the lock-out
  LockedOut,   // refused unheard: too many wrong codes
  NotAllowed,  // identity not in the allow-list
};
const char *verdict_name(Verdict v);

struct Decision {
  Verdict verdict = Verdict::NotAllowed;
  std::string action;  // set when Accepted
  std::string reason;  // for logs: never contains a code or typed keys
  // This wrong code made global_max_wrong_codes within the window: tell the
  // residents (an event line, a MESSAGE to the monitors).
  bool alarm = false;
};

class ActionGate {
 public:
  // `codes` must satisfy check_codes() (the config parse does that).
  ActionGate(const std::vector<ActionCode> &codes, AccessPolicy policy);
  ~ActionGate();
  ActionGate(const ActionGate &) = delete;
  ActionGate &operator=(const ActionGate &) = delete;

  // "" when every code is valid and typeable, else a log-safe message naming the
  // action (not the code): bad format, a duplicate, or a code that starts with
  // another (keys are matched as they come, so the longer one could never be typed).
  // *culprit, when given, gets the index of the action the message is about.
  static std::string check_codes(const std::vector<ActionCode> &codes, size_t *culprit = nullptr);

  // One key ('0'-'9', '*', '#', 'A'-'D') from a call. Keys of one identity build up
  // a code; it is accepted as soon as it matches, '#' ends it early (counted as a
  // wrong code if it does not match), '*' starts over, and a pause longer than
  // digit_timeout drops what was typed (reported as WrongCode on the next key, which
  // then starts a new code). Whatever is dropped counts as a wrong code
  // once it is at least kMinCodeLength long: otherwise a stream of keys, cut by
  // pauses or '*', would try codes for free.
  Decision key(std::string_view who, char key, Clock::time_point now);
  // A whole code at once (a SIP MESSAGE body): blanks around it and one trailing
  // '#' are ignored; anything but a valid code counts as a wrong code.
  Decision code(std::string_view who, std::string_view text, Clock::time_point now);
  // The caller's call ended: what it typed so far is dropped (not counted).
  void forget_keys(std::string_view who);

 private:
  struct Stored {
    char digits[kMaxCodeLength] = {};
    size_t length = 0;
  };
  struct Caller {
    Stored typed;
    Clock::time_point last_key{};
    std::deque<Clock::time_point> wrong;  // at most max_wrong_codes entries
    Clock::time_point locked_until{};
    int lockouts = 0;  // since the last right code: the next lock-out's doubling
  };

  Caller *find_allowed(std::string_view who, std::string *normalized);
  bool locked(const Caller &c, Clock::time_point now, std::string *reason) const;
  // Compares `typed` with every code; the index of the match or -1.
  int match(const Stored &typed) const;
  Decision take_key(Caller &c, char key, Clock::time_point now);
  Decision accept(Caller &c, int index);
  Decision wrong(Caller &c, Clock::time_point now, const char *what);
  void clear(Stored &s);

  std::vector<std::string> names_;
  std::vector<Stored> codes_;
  AccessPolicy policy_;
  std::map<std::string, Caller> callers_;  // one per allowed identity: bounded
  std::deque<Clock::time_point> global_wrong_;
  Clock::time_point global_locked_until_{};
};

}  // namespace portier::door
