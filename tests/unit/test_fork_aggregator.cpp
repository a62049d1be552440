// Response aggregation of a parallel fork, RFC 3261 §16.7, as event tables.
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/fork_aggregator.h"

namespace portier::proxy {
namespace {

enum class Kind { Response, Failed, Timeout, Cancel };

struct Step {
  Kind kind;
  size_t branch;
  int status;
  // The expected decision, as a string so a table row reads at a glance:
  // "F" forward, "C" cancel_others, "B" send_best, "" nothing.
  const char *decision;
};

Step resp(size_t branch, int status, const char *decision) {
  return {Kind::Response, branch, status, decision};
}
Step failed(size_t branch, const char *decision) { return {Kind::Failed, branch, 0, decision}; }
Step timeout(const char *decision) { return {Kind::Timeout, 0, 0, decision}; }
Step cancel(const char *decision) { return {Kind::Cancel, 0, 0, decision}; }

struct Scenario {
  const char *name;
  size_t branches;
  std::vector<Step> steps;
  int best_status;  // 0: not checked (a 2xx went up)
  std::optional<size_t> best_branch;
};

std::string decision_string(const ForkAggregator::Decision &d) {
  std::string s;
  if (d.forward) s += 'F';
  if (d.cancel_others) s += 'C';
  if (d.send_best) s += 'B';
  return s;
}

TEST(ForkAggregator, Rfc3261_16_7_Scenarios) {
  const Scenario scenarios[] = {
      {"§16.7 step 5: 183, 183, 200: the 200 goes up and ends the other branches",
       3,
       {resp(0, 183, "F"), resp(1, 183, "F"), resp(2, 200, "FC"), resp(0, 487, ""),
        resp(1, 487, "")},
       0,
       std::nullopt},
      {"§16.7 step 5: 100 Trying stays hop by hop",
       2,
       {resp(0, 100, ""), resp(1, 180, "F"), resp(0, 486, ""), resp(1, 486, "B")},
       486,
       0},
      {"§16.7 step 6: every branch busy gives 486",
       3,
       {resp(0, 486, ""), resp(1, 486, ""), resp(2, 486, "B")},
       486,
       0},
      {"§16.7 step 5: a 6xx ends the fork and goes up at once, before the 487s",
       3,
       {resp(0, 180, "F"), resp(1, 603, "CB"), resp(0, 487, ""), resp(2, 487, "")},
       603,
       1},
      {"§16.7 step 6: the first 6xx wins, one CANCEL round only",
       3,
       {resp(0, 600, "CB"), resp(1, 603, ""), resp(2, 487, "")},
       600,
       0},
      {"§16.7 steps 5-6: a 6xx after a 486 goes up at once and beats it",
       3,
       {resp(0, 486, ""), resp(1, 603, "CB"), resp(2, 487, "")},
       603,
       1},
      {"§16.7 step 5: a 6xx on the last pending branch: nothing to cancel",
       2,
       {resp(0, 486, ""), resp(1, 600, "B")},
       600,
       1},
      {"§16.7 step 5: a second 2xx is forwarded too",
       3,
       {resp(0, 200, "FC"), resp(1, 200, "F"), resp(2, 487, "")},
       0,
       std::nullopt},
      {"§16.7 step 5: 1xx after the final response is not forwarded",
       2,
       {resp(0, 200, "FC"), resp(1, 180, ""), resp(1, 487, "")},
       0,
       std::nullopt},
      {"§16.7 step 5: a 6xx after a 2xx changes nothing",
       2,
       {resp(0, 200, "FC"), resp(1, 603, "")},
       0,
       std::nullopt},
      {"§16.7 step 5: a 2xx after a 6xx still goes up",
       2,
       {resp(0, 603, "CB"), resp(1, 200, "F")},
       0,
       std::nullopt},
      {"§16.8 fork timeout: 408 goes up at once; the cancelled branches count as 408, not 487",
       3,
       {resp(0, 180, "F"), resp(1, 180, "F"), timeout("CB"), resp(0, 487, ""), resp(1, 487, ""),
        failed(2, "")},
       408,
       0},
      {"fork timeout: a device's own 480 beats the timeout",
       2,
       {resp(0, 480, ""), timeout("CB"), resp(1, 487, "")},
       480,
       0},
      {"§16.10: the caller cancels: 487 goes up, even over a busy branch",
       2,
       {resp(0, 180, "F"), resp(1, 486, ""), cancel("C"), resp(0, 487, "B")},
       487,
       0},
      {"caller cancel after the fork timeout: the 408 went up already, no second CANCEL",
       2,
       {timeout("CB"), cancel(""), resp(0, 487, ""), resp(1, 487, "")},
       0,
       std::nullopt},
      {"§16.7 step 6: 503 goes up as 500", 2, {resp(0, 503, ""), resp(1, 503, "B")}, 500, 0},
      {"§16.7 step 6: another 5xx beats 503", 2, {resp(0, 503, ""), resp(1, 502, "B")}, 502, 1},
      {"§16.7 step 6: 486 beats 404 beats 480",
       3,
       {resp(0, 480, ""), resp(1, 404, ""), resp(2, 486, "B")},
       486,
       2},
      {"§16.7 step 6: a specific 4xx beats 480, 408 and 487",
       4,
       {resp(0, 487, ""), resp(1, 408, ""), resp(2, 480, ""), resp(3, 404, "B")},
       404,
       3},
      {"§16.7 step 6: 480 beats 408 beats 487",
       3,
       {resp(0, 487, ""), resp(1, 408, ""), resp(2, 480, "B")},
       480,
       2},
      {"§16.7 step 6: 407 lets the caller resubmit, it beats 486",
       2,
       {resp(0, 486, ""), resp(1, 407, "B")},
       407,
       1},
      {"§16.7 step 6: the lowest class wins, 3xx over 4xx",
       2,
       {resp(0, 486, ""), resp(1, 302, "B")},
       302,
       1},
      {"§16.7 step 6: the lowest class wins, 4xx over 5xx",
       2,
       {resp(0, 500, ""), resp(1, 480, "B")},
       480,
       1},
      {"§16.7 step 6: branches that never answered count as 408",
       2,
       {failed(0, ""), failed(1, "B")},
       408,
       0},
      {"a received 408 beats a made-up one", 2, {failed(0, ""), resp(1, 408, "B")}, 408, 1},
      {"ties go to the first answer",
       3,
       {resp(2, 404, ""), resp(0, 404, ""), resp(1, 404, "B")},
       404,
       2},
  };

  for (const Scenario &s : scenarios) {
    SCOPED_TRACE(s.name);
    ForkAggregator fork(s.branches);
    for (size_t i = 0; i < s.steps.size(); ++i) {
      const Step &step = s.steps[i];
      SCOPED_TRACE("step " + std::to_string(i));
      ForkAggregator::Decision d;
      switch (step.kind) {
        case Kind::Response:
          d = fork.on_response(step.branch, step.status);
          break;
        case Kind::Failed:
          d = fork.on_branch_failed(step.branch);
          break;
        case Kind::Timeout:
          d = fork.on_timeout();
          break;
        case Kind::Cancel:
          d = fork.on_cancel();
          break;
      }
      EXPECT_EQ(decision_string(d), step.decision);
    }
    EXPECT_TRUE(fork.final_sent());
    if (s.best_status != 0) {
      EXPECT_TRUE(fork.all_final());
      EXPECT_EQ(fork.best_status(), s.best_status);
      EXPECT_EQ(fork.best_branch(), s.best_branch);
    }
  }
}

// A forked MESSAGE (the door's alarm to every monitor): §16.7 step 10 forwards
// later 2xx for INVITE only, and a completed non-INVITE server transaction
// discards further final responses (§17.2.2): the second 200 is absorbed. No
// CANCEL for a non-INVITE (§9.1): the other branches run to their end.
TEST(ForkAggregator, Rfc3261_16_7_NonInviteSendsOneFinalResponseAndCancelsNothing) {
  {
    ForkAggregator fork(2, false);
    EXPECT_EQ(decision_string(fork.on_response(0, 200)), "F");
    EXPECT_EQ(decision_string(fork.on_response(1, 200)), "");
    EXPECT_TRUE(fork.final_sent());
  }
  {
    ForkAggregator fork(3, false);
    EXPECT_EQ(decision_string(fork.on_response(0, 404)), "");
    EXPECT_EQ(decision_string(fork.on_response(1, 202)), "F");
    EXPECT_EQ(decision_string(fork.on_response(2, 486)), "");
  }
  {
    // A 6xx still ends the fork at once, without CANCEL; a later 2xx is absorbed.
    ForkAggregator fork(2, false);
    EXPECT_EQ(decision_string(fork.on_response(0, 603)), "B");
    EXPECT_EQ(decision_string(fork.on_response(1, 200)), "");
  }
  {
    ForkAggregator fork(2, false);
    EXPECT_EQ(decision_string(fork.on_timeout()), "B");
    EXPECT_EQ(fork.best_status(), 408);
    EXPECT_EQ(decision_string(fork.on_response(0, 200)), "");
  }
  // The same 200, 200 for an INVITE: both go up (§16.7 step 5), and the first
  // cancels the other branch.
  ForkAggregator invite(2);
  EXPECT_EQ(decision_string(invite.on_response(0, 200)), "FC");
  EXPECT_EQ(decision_string(invite.on_response(1, 200)), "F");
}

// §16.8 / §16.7 step 6: a branch that rang and then went silent (a monitor
// that lost power) never answers the CANCEL; the caller must not wait for it.
TEST(ForkAggregator, TimeoutAnswersWhileABranchIsSilent) {
  ForkAggregator fork(2);
  EXPECT_EQ(decision_string(fork.on_response(0, 180)), "F");
  EXPECT_EQ(decision_string(fork.on_response(1, 486)), "");
  EXPECT_EQ(decision_string(fork.on_timeout()), "CB");
  EXPECT_FALSE(fork.all_final());
  EXPECT_EQ(fork.best_status(), 486);
  // The silent branch's transaction ends much later: nothing more goes up.
  EXPECT_EQ(decision_string(fork.on_branch_failed(0)), "");
  EXPECT_TRUE(fork.all_final());

  ForkAggregator silent(1);
  EXPECT_EQ(decision_string(silent.on_response(0, 180)), "F");
  EXPECT_EQ(decision_string(silent.on_timeout()), "CB");
  EXPECT_EQ(silent.best_branch(), std::nullopt);
  EXPECT_EQ(silent.best_status(), 408);
}

struct ChallengeScenario {
  const char *name;
  std::vector<std::pair<size_t, int>> finals;  // (branch, status) in arrival order
  std::optional<size_t> best;
  std::vector<size_t> lenders;  // challenge_branches()
};

TEST(ForkAggregator, Rfc3261_16_7_Step7_Challenges) {
  const ChallengeScenario scenarios[] = {
      {"§16.7 step 7: a 401 and a 407: the first is sent with the other's challenges",
       {{0, 401}, {1, 407}},
       0,
       {1}},
      {"§16.7 step 7: three challenges, lent in arrival order",
       {{2, 407}, {0, 401}, {1, 407}},
       2,
       {0, 1}},
      {"§16.7 step 7: only 401/407 lend challenges", {{0, 486}, {1, 401}, {2, 404}}, 1, {}},
      {"§16.7 step 7: a 6xx is sent alone, whatever challenged", {{0, 401}, {1, 603}}, 1, {}},
      {"§16.7 step 7: no challenge at all", {{0, 486}, {1, 480}}, 0, {}},
  };
  for (const ChallengeScenario &s : scenarios) {
    SCOPED_TRACE(s.name);
    ForkAggregator fork(s.finals.size());
    for (const auto &[branch, status] : s.finals) fork.on_response(branch, status);
    EXPECT_EQ(fork.best_branch(), s.best);
    EXPECT_EQ(fork.challenge_branches(), s.lenders);
  }
}

TEST(ForkAggregator, FailedBranchHasNoStoredResponse) {
  ForkAggregator fork(2);
  fork.on_response(0, 404);
  fork.on_branch_failed(1);
  EXPECT_FALSE(fork.branch_failed(0));
  EXPECT_TRUE(fork.branch_failed(1));
  EXPECT_EQ(fork.branch_status(1), 408);
  EXPECT_EQ(fork.best_branch(), std::optional<size_t>(0));
}

TEST(ForkAggregator, OneFinalResponsePerBranch) {
  ForkAggregator fork(2);
  EXPECT_EQ(decision_string(fork.on_response(0, 486)), "");
  EXPECT_EQ(decision_string(fork.on_response(0, 404)), "");  // retransmission noise
  EXPECT_EQ(fork.branch_status(0), 486);
  EXPECT_EQ(decision_string(fork.on_branch_failed(0)), "");
  EXPECT_FALSE(fork.branch_failed(0));
  EXPECT_FALSE(fork.all_final());
  EXPECT_FALSE(fork.final_sent());
  EXPECT_EQ(decision_string(fork.on_response(1, 486)), "B");
  // send_best is given once.
  EXPECT_EQ(decision_string(fork.on_branch_failed(1)), "");
  EXPECT_EQ(decision_string(fork.on_timeout()), "");
}

TEST(ForkAggregator, PendingStateBeforeAnyFinal) {
  ForkAggregator fork(2);
  EXPECT_FALSE(fork.branch_final(0));
  EXPECT_EQ(fork.best_branch(), std::nullopt);
  EXPECT_EQ(fork.best_status(), 480);
  fork.on_response(0, 180);
  EXPECT_FALSE(fork.branch_final(0));
  fork.on_response(0, 486);
  EXPECT_TRUE(fork.branch_final(0));
  EXPECT_EQ(fork.best_branch(), std::optional<size_t>(0));
}

TEST(ForkAggregator, NoBranchAtAll) {
  ForkAggregator fork(0);
  EXPECT_EQ(fork.size(), 0u);
  EXPECT_EQ(fork.best_branch(), std::nullopt);
  EXPECT_EQ(fork.best_status(), 480);
  EXPECT_EQ(decision_string(fork.on_timeout()), "B");
  EXPECT_EQ(fork.best_status(), 408);

  ForkAggregator cancelled(0);
  EXPECT_EQ(decision_string(cancelled.on_cancel()), "B");
  EXPECT_EQ(cancelled.best_status(), 487);
}

TEST(ForkAggregator, OutOfRangeInputIsIgnored) {
  ForkAggregator fork(1);
  EXPECT_EQ(decision_string(fork.on_response(5, 200)), "");
  EXPECT_EQ(decision_string(fork.on_response(0, 99)), "");
  EXPECT_EQ(decision_string(fork.on_response(0, 700)), "");
  EXPECT_EQ(decision_string(fork.on_branch_failed(3)), "");
  EXPECT_FALSE(fork.final_sent());
  EXPECT_FALSE(fork.branch_final(0));
}

TEST(ForkAggregator, SingleBranch2xxHasNothingToCancel) {
  ForkAggregator fork(1);
  EXPECT_EQ(decision_string(fork.on_response(0, 183)), "F");
  EXPECT_EQ(decision_string(fork.on_response(0, 200)), "F");
  EXPECT_TRUE(fork.final_sent());
}

// RFC 8599: a pushed device's branch fails (its socket is gone) while the
// phone wakes up; the fork stays open for the device's late branch, which
// joins it and answers. Without hold_open the caller would hear 408 at once.
TEST(ForkAggregator, HeldOpenForAPushedDeviceALateBranchJoinsAndAnswers) {
  ForkAggregator fork(2);
  fork.hold_open();
  EXPECT_EQ(decision_string(fork.on_branch_failed(0)), "");
  EXPECT_EQ(decision_string(fork.on_response(1, 486)), "");
  EXPECT_TRUE(fork.all_final());
  EXPECT_FALSE(fork.final_sent());
  const size_t late = fork.add_branch();
  EXPECT_EQ(late, 2u);
  EXPECT_EQ(fork.size(), 3u);
  EXPECT_FALSE(fork.all_final());
  EXPECT_EQ(decision_string(fork.on_response(late, 180)), "F");
  EXPECT_EQ(decision_string(fork.on_response(late, 200)), "F");
  EXPECT_TRUE(fork.final_sent());
}

// Held open, the fork still ends at call-fork-timeout (the best answer so
// far), on a 6xx, and when the caller cancels.
TEST(ForkAggregator, HeldOpenStillEndsOnTimeoutSixHundredOrCancel) {
  ForkAggregator timeout(1);
  timeout.hold_open();
  EXPECT_EQ(decision_string(timeout.on_branch_failed(0)), "");
  EXPECT_EQ(decision_string(timeout.on_timeout()), "B");
  EXPECT_EQ(timeout.best_status(), 480);  // nobody woke (below)

  ForkAggregator decline(2);
  decline.hold_open();
  EXPECT_EQ(decision_string(decline.on_response(0, 603)), "CB");

  ForkAggregator cancel(1);
  cancel.hold_open();
  EXPECT_EQ(decision_string(cancel.on_response(0, 480)), "");
  EXPECT_EQ(decision_string(cancel.on_cancel()), "B");
  EXPECT_EQ(cancel.best_status(), 480);
}

// A pushed phone that never wakes: its branch failed here (nta's 503 for the
// gone socket, RFC 3261 §16.9). Held open, the caller hears 480 at the fork
// timeout, not the 500 that §16.7 step 6 makes of a 503 (RFC 3261 §21.4.18:
// the user is known, no valid forwarding location now).
TEST(ForkAggregator, HeldOpenLocalFailuresEndIn480) {
  ForkAggregator fork(2);
  fork.hold_open();
  EXPECT_EQ(decision_string(fork.on_local_failure(0, 503)), "");
  EXPECT_EQ(decision_string(fork.on_local_failure(1, 408)), "");  // timer B
  EXPECT_TRUE(fork.branch_failed(0));
  EXPECT_EQ(decision_string(fork.on_timeout()), "B");
  EXPECT_EQ(fork.best_status(), 480);
}

// A device's own answer still wins over the phones that did not wake
// (§16.7 step 6): busy is what the visitor needs to hear; a 6xx ends the fork
// at once.
TEST(ForkAggregator, HeldOpenADevicesAnswerBeatsLocalFailures) {
  ForkAggregator busy(2);
  busy.hold_open();
  EXPECT_EQ(decision_string(busy.on_local_failure(0, 503)), "");
  EXPECT_EQ(decision_string(busy.on_response(1, 486)), "");
  EXPECT_EQ(decision_string(busy.on_timeout()), "B");
  EXPECT_EQ(busy.best_status(), 486);
  EXPECT_EQ(busy.best_branch(), std::optional<size_t>(1));

  ForkAggregator decline(2);
  decline.hold_open();
  EXPECT_EQ(decision_string(decline.on_local_failure(0, 503)), "");
  EXPECT_EQ(decision_string(decline.on_response(1, 603)), "B");
  EXPECT_EQ(decline.best_status(), 603);

  // A device that rang and was cancelled by the timeout said no more than
  // the sleeping one: 480 (tried before 408, preference()).
  ForkAggregator rang(2);
  rang.hold_open();
  EXPECT_EQ(decision_string(rang.on_local_failure(0, 503)), "");
  EXPECT_EQ(decision_string(rang.on_response(1, 180)), "F");
  EXPECT_EQ(decision_string(rang.on_timeout()), "CB");
  EXPECT_EQ(rang.best_status(), 480);
}

// Without pushes nothing changes: a transport error's 503 is the caller's 500
// (§16.7 step 6), as soon as every branch is final.
TEST(ForkAggregator, NotHeldALocalFailureIs500) {
  ForkAggregator fork(1);
  EXPECT_EQ(decision_string(fork.on_local_failure(0, 503)), "B");
  EXPECT_EQ(fork.best_status(), 500);
  // Its invalid uses change nothing.
  ForkAggregator other(1);
  EXPECT_EQ(decision_string(other.on_local_failure(0, 180)), "");
  EXPECT_EQ(decision_string(other.on_local_failure(3, 503)), "");
  EXPECT_FALSE(other.branch_final(0));
}

}  // namespace
}  // namespace portier::proxy
