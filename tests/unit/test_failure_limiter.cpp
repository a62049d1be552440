// FailureLimiter: the per-source back-off and ban, the per-user alarm that never
// locks a user out, the log budget, and bounded memory (brute force).
#include <gtest/gtest.h>

#include <string>

#include "common/auth/failure_limiter.h"

namespace portier::auth {
namespace {

using V = FailureLimiter::Verdict;
constexpr int64_t kT0 = 1700000000;

FailureLimits limits() {
  FailureLimits l;
  l.max_failures = 5;
  l.ban_seconds = 60;
  l.backoff_seconds = 1;
  l.user_alarm = 8;
  l.max_entries = 100;
  l.log_lines = 3;
  l.log_lines_total = 6;
  return l;
}

TEST(FailureLimiter, UnknownSourcesAreAllowedAndNotStored) {
  FailureLimiter f(limits());
  for (int i = 0; i < 1000; ++i)
    EXPECT_EQ(f.admit("10.0.0." + std::to_string(i % 250), kT0), V::Allow);
  EXPECT_EQ(f.sources(), 0u);
}

TEST(FailureLimiter, BackOffGrowsWithEachFailure) {
  FailureLimiter f(limits());
  const struct {
    unsigned failures;
    unsigned wait;  // seconds before credentials are checked again
  } table[] = {{1, 0}, {2, 0}, {3, 1}, {4, 2}};
  int64_t now = kT0;
  for (const auto &row : table) {
    f.failed("10.0.0.1", "alice@home.example", now);
    unsigned wait = 0;
    if (row.wait == 0) {  // the first two failures cost nothing
      EXPECT_EQ(f.admit("10.0.0.1", now), V::Allow) << row.failures;
      continue;
    }
    EXPECT_EQ(f.admit("10.0.0.1", now, &wait), V::Backoff) << row.failures;
    EXPECT_EQ(wait, row.wait) << row.failures;
    now += row.wait;
    EXPECT_EQ(f.admit("10.0.0.1", now), V::Allow) << row.failures;
  }
}

TEST(FailureLimiter, BanAfterMaxFailuresThenItEndsAndDoubles) {
  FailureLimiter f(limits());
  FailureLimiter::Failure last;
  for (int i = 0; i < 5; ++i) last = f.failed("10.0.0.1", "", kT0);
  EXPECT_TRUE(last.banned);
  EXPECT_EQ(last.ban_seconds, 60u);
  EXPECT_EQ(f.admit("10.0.0.1", kT0 + 59), V::Banned);
  ASSERT_EQ(f.bans(kT0).size(), 1u);
  EXPECT_EQ(f.bans(kT0)[0].source, "10.0.0.1");
  EXPECT_EQ(f.bans(kT0)[0].until, kT0 + 60);
  EXPECT_NE(f.admit("10.0.0.1", kT0 + 60), V::Banned);
  EXPECT_TRUE(f.bans(kT0 + 60).empty());
  // Back again at once: the second ban is twice as long.
  for (int i = 0; i < 5; ++i) last = f.failed("10.0.0.1", "", kT0 + 61);
  EXPECT_TRUE(last.banned);
  EXPECT_EQ(last.ban_seconds, 120u);
}

TEST(FailureLimiter, ResidentOnAnotherAddressIsNeverRefused) {
  // Limit the source, never lock the user out.
  FailureLimiter f(limits());
  FailureLimiter::Failure last;
  for (int i = 0; i < 50; ++i) last = f.failed("10.0.0.66", "alice@home.example", kT0);
  EXPECT_EQ(f.admit("10.0.0.66", kT0), V::Banned);
  EXPECT_EQ(f.admit("10.0.0.5", kT0), V::Allow);
  // The user's failures only raise an alarm, once per window.
  FailureLimiter g(limits());
  int alarms = 0;
  for (int i = 0; i < 20; ++i) {
    const FailureLimiter::Failure r =
        g.failed("10.0.1." + std::to_string(i), "alice@home.example", kT0);
    alarms += r.user_alarm;
    if (r.user_alarm) {
      EXPECT_EQ(r.user_failures, 8u);
      EXPECT_EQ(r.user_sources, 8u);
    }
  }
  EXPECT_EQ(alarms, 1);
  EXPECT_EQ(g.admit("10.0.0.5", kT0), V::Allow);
}

TEST(FailureLimiter, SuccessForgetsTheFailures) {
  FailureLimiter f(limits());
  for (int i = 0; i < 4; ++i) f.failed("10.0.0.1", "", kT0);
  f.succeeded("10.0.0.1");
  EXPECT_EQ(f.admit("10.0.0.1", kT0), V::Allow);
  // Four more are needed again before a ban.
  FailureLimiter::Failure last;
  for (int i = 0; i < 4; ++i) last = f.failed("10.0.0.1", "", kT0);
  EXPECT_FALSE(last.banned);
}

TEST(FailureLimiter, QuietSourceStartsAgain) {
  FailureLimiter f(limits());
  for (int i = 0; i < 4; ++i) f.failed("10.0.0.1", "", kT0);
  // A ban's length without failures: the count starts from zero.
  EXPECT_FALSE(f.failed("10.0.0.1", "", kT0 + 61).banned);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(f.failed("10.0.0.1", "", kT0 + 61).banned);
  EXPECT_TRUE(f.failed("10.0.0.1", "", kT0 + 61).banned);
}

TEST(FailureLimiter, UnbanOneAndAll) {
  FailureLimiter f(limits());
  for (const char *a : {"10.0.0.1", "10.0.0.2", "10.0.0.3"})
    for (int i = 0; i < 5; ++i) f.failed(a, "", kT0);
  EXPECT_EQ(f.bans(kT0).size(), 3u);
  EXPECT_TRUE(f.unban("10.0.0.2"));
  EXPECT_FALSE(f.unban("10.0.0.2"));
  EXPECT_FALSE(f.unban("10.9.9.9"));
  EXPECT_EQ(f.admit("10.0.0.2", kT0), V::Allow);
  EXPECT_EQ(f.bans(kT0).size(), 2u);
  EXPECT_EQ(f.unban_all(), 2u);
  EXPECT_TRUE(f.bans(kT0).empty());
  EXPECT_EQ(f.admit("10.0.0.1", kT0), V::Allow);
}

TEST(FailureLimiter, LogBudgetPerSourceAndInTotal) {
  FailureLimiter f(limits());
  int logged = 0;
  for (int i = 0; i < 100; ++i) logged += f.failed("10.0.0.1", "", kT0).log;
  EXPECT_EQ(logged, 3);
  // The next minute: the first line says how many were left out.
  const FailureLimiter::Failure next = f.failed("10.0.0.1", "", kT0 + 60);
  EXPECT_TRUE(next.log);
  EXPECT_EQ(next.suppressed, 97u);
  // Many addresses: the total budget holds.
  FailureLimits many = limits();
  many.max_entries = 1000;
  FailureLimiter g(many);
  logged = 0;
  for (int i = 0; i < 200; ++i) logged += g.failed("10.1.0." + std::to_string(i), "", kT0).log;
  EXPECT_EQ(logged, 6);
  // The summaries come out a few at a time.
  EXPECT_EQ(g.take_suppressed(5).size(), 5u);
  size_t rest = 0;
  for (int i = 0; i < 100; ++i) rest += g.take_suppressed(5).size();
  EXPECT_EQ(rest, 194u - 5u);
}

// Lines that are not failures (a nonce issued to another host, whose sender may
// have forged the source; a reused nonce-count) share the log budget but never
// move the source towards a back-off or a ban (spoofed bans).
TEST(FailureLimiter, LogLinesSpendTheBudgetButCountNoFailure) {
  FailureLimiter f(limits());
  int logged = 0;
  for (int i = 0; i < 100; ++i) logged += f.log_line("10.0.0.1", kT0 + i % 2).log;
  EXPECT_EQ(logged, 3);
  EXPECT_EQ(f.admit("10.0.0.1", kT0 + 1), V::Allow);
  EXPECT_TRUE(f.bans(kT0 + 1).empty());
  // Its first real failure is the first: free, not banned, and says what the log
  // left out.
  const FailureLimiter::Failure first = f.failed("10.0.0.1", "alice@home.example", kT0 + 60);
  EXPECT_TRUE(first.log);
  EXPECT_EQ(first.suppressed, 97u);
  EXPECT_FALSE(first.banned);
  EXPECT_EQ(f.admit("10.0.0.1", kT0 + 60), V::Allow);
}

// Lines about responses whose nonce was issued to another host (the source may be
// forged) have a budget of their own: a forged flood leaves the claimed address's
// failure lines, and every counter, alone.
TEST(FailureLimiter, UnattributedLinesHaveTheirOwnBudget) {
  FailureLimiter f(limits());
  int logged = 0;
  for (int i = 0; i < 100; ++i) logged += f.unattributed_log_line(kT0).log;
  EXPECT_EQ(logged, 3);
  EXPECT_EQ(f.sources(), 0u);
  EXPECT_TRUE(f.failed("10.0.0.1", "", kT0).log);
  EXPECT_EQ(f.take_unattributed_suppressed(), 97u);
  EXPECT_EQ(f.take_unattributed_suppressed(), 0u);
  for (int i = 0; i < 5; ++i) f.unattributed_log_line(kT0);
  const FailureLimiter::LogLine next = f.unattributed_log_line(kT0 + 60);
  EXPECT_TRUE(next.log);
  EXPECT_EQ(next.suppressed, 5u);
}

TEST(FailureLimiter, MemoryIsBoundedUnderAFloodOfSourcesAndUsers) {
  FailureLimiter f(limits());
  for (int i = 0; i < 5; ++i) f.failed("10.0.0.1", "", kT0);  // the attacker, banned
  for (int i = 0; i < 10000; ++i) {
    f.failed("10.2." + std::to_string(i / 250) + "." + std::to_string(i % 250),
             "user" + std::to_string(i) + "@home.example", kT0);
    // The attacker keeps sending: it stays remembered (most recently seen).
    if (i % 50 == 0) {
      EXPECT_EQ(f.admit("10.0.0.1", kT0), V::Banned) << i;
    }
  }
  EXPECT_LE(f.sources(), 100u);
  EXPECT_LE(f.users(), 100u);
  EXPECT_EQ(f.admit("10.0.0.1", kT0), V::Banned);
}

TEST(FailureLimiter, ZeroDisablesBansAndBackOff) {
  FailureLimits l = limits();
  l.max_failures = 0;
  l.backoff_seconds = 0;
  FailureLimiter f(l);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(f.failed("10.0.0.1", "", kT0).banned);
  EXPECT_EQ(f.admit("10.0.0.1", kT0), V::Allow);
}

}  // namespace
}  // namespace portier::auth
