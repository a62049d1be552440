// Digest failures counted per source address and per user: a growing back-off
// and then a temporary ban for a source that keeps failing, an alarm for a user
// that many failures aim at, and a bound on how many failure lines reach the log.
// Plain C++, no SIP types; the proxy asks it before checking credentials and tells
// it each outcome.
//
// Why the source is limited and the user is not: a guesser on the LAN comes from
// one address (or a few), and banning it stops it; locking the user out would let
// that same guesser keep a resident from registering. So a user's failures only
// raise an alarm line, and the right password from another address always works.
//
// Memory is bounded: at most `max_entries` sources and as many users are
// remembered; under a flood of distinct ones the least recently seen is forgotten
// first (an attacker that keeps sending stays at the front, so its ban holds).
//
// Not thread-safe: the proxy has one event loop.
#pragma once

#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace portier::auth {

struct FailureLimits {
  unsigned max_failures = 10;     // failures from one source that ban it (0: never ban)
  unsigned ban_seconds = 600;     // the first ban; each further one doubles, up to a day
  unsigned backoff_seconds = 1;   // wait after a source's 3rd failure in a row; doubles
                                  // with each further one, up to ban_seconds (0: none)
  unsigned user_alarm = 20;       // failures for one user within ban_seconds that log an
                                  // alarm (0: never)
  size_t max_entries = 4096;      // sources remembered, and as many users
  unsigned log_lines = 5;         // failure lines logged per source per minute
  unsigned log_lines_total = 20;  // ... and for all sources together per minute
};

class FailureLimiter {
 public:
  explicit FailureLimiter(FailureLimits limits);

  enum class Verdict { Allow, Backoff, Banned };
  // May credentials from source be checked now? Banned: drop the request; Backoff:
  // refuse it unchecked (*retry_after: seconds left). Counts as seeing the source.
  Verdict admit(const std::string &source, int64_t now_s, unsigned *retry_after = nullptr);

  struct Failure {
    bool log = true;             // write the failure line (else it is counted, see below)
    uint64_t suppressed = 0;     // lines suppressed for this source since its last line:
                                 // say so before this one (only when log is true)
    bool banned = false;         // this failure banned the source
    unsigned ban_seconds = 0;    // for how long
    bool user_alarm = false;     // log the alarm line for the user (once per window)
    unsigned user_failures = 0;  // failures for the user within the window
    unsigned user_sources = 0;   // distinct sources among them (up to 8 remembered)
  };
  // A failed response (or a refused attempt) from source for user ("user@realm";
  // empty when unknown).
  Failure failed(const std::string &source, const std::string &user, int64_t now_s);
  // Credentials from source checked out: its failures are forgotten (not its bans).
  void succeeded(const std::string &source);

  struct LogLine {
    bool log = true;          // write the line (else it is counted as suppressed)
    uint64_t suppressed = 0;  // as Failure::suppressed
  };
  // A line about source that must not count as its failure (a reused nonce-count):
  // it spends the same log budget as failure lines, so a flood of them writes a
  // bounded log.
  LogLine log_line(const std::string &source, int64_t now_s);
  // A line about a request whose source cannot be trusted (its nonce was issued to
  // another host: the address may be forged). A budget of its own, `log_lines` a
  // minute for all such lines together: charged to the address it claims, a forged
  // flood would crowd out that address's real failure lines.
  LogLine unattributed_log_line(int64_t now_s);
  // Such lines suppressed since the last line or call (then reset): for a summary.
  uint64_t take_unattributed_suppressed();

  struct Ban {
    std::string source;
    int64_t until = 0;
    unsigned failures = 0;
    unsigned bans = 0;  // how many times it was banned (the ban length doubles)
  };
  std::vector<Ban> bans(int64_t now_s) const;
  bool unban(const std::string &source);  // false when it was not banned
  size_t unban_all();

  // Sources with suppressed failure lines not yet reported (at most `max`); their
  // counts are reset. For a periodic summary line each.
  std::vector<std::pair<std::string, uint64_t>> take_suppressed(size_t max);

  size_t sources() const { return sources_.size(); }
  size_t users() const { return users_.size(); }

 private:
  struct Source {
    unsigned failures = 0;
    int64_t last_failure = 0;
    int64_t next_allowed = 0;  // back-off: credentials not checked before this
    int64_t banned_until = 0;
    unsigned bans = 0;
    int64_t log_window = 0;  // start of the current minute of log lines
    unsigned logged = 0;     // lines logged in it
    uint64_t suppressed = 0;
    std::list<std::string>::iterator lru;
  };
  struct User {
    unsigned failures = 0;
    int64_t window_start = 0;
    bool alarmed = false;
    std::vector<std::string> sources;  // distinct, up to 8
    std::list<std::string>::iterator lru;
  };

  Source &source(const std::string &key, int64_t now_s);
  // Takes one line from s's and the total log budget: true if there was room, and
  // then *suppressed is what s had suppressed since its last line.
  bool take_log_line(Source &s, int64_t now_s, uint64_t *suppressed);
  User &user(const std::string &key);
  template <class Map>
  static void touch(Map &map, std::list<std::string> &order, typename Map::iterator it);

  FailureLimits limits_;
  std::unordered_map<std::string, Source> sources_;
  std::list<std::string> source_order_;  // most recently seen first
  std::unordered_map<std::string, User> users_;
  std::list<std::string> user_order_;
  int64_t total_window_ = 0;
  unsigned total_logged_ = 0;
  int64_t unattributed_window_ = 0;
  unsigned unattributed_logged_ = 0;
  uint64_t unattributed_suppressed_ = 0;
};

}  // namespace portier::auth
