// The router's server transaction states (RFC 3261 §16.7, §16.10, §9.2) and
// the responses to the observer's typed refusals (§21.4.26, §21.5.4), as tables.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proxy/call_observer.h"
#include "proxy/router_state.h"

namespace portier::proxy {
namespace {

using S = TxnState;
using E = TxnEvent;

struct Transition {
  const char *rule;
  S from;
  E event;
  S to;
};

TEST(RouterState, Transitions) {
  const std::vector<Transition> table = {
      // §16.7 step 5: provisional responses go up while no final one has.
      {"16.7 step 5: first 18x", S::Trying, E::ProvisionalSent, S::Proceeding},
      {"16.7 step 5: later 18x", S::Proceeding, E::ProvisionalSent, S::Proceeding},
      {"16.7 step 5: 18x after the 2xx changes nothing", S::Answered, E::ProvisionalSent,
       S::Answered},
      // §16.7 step 5: every 2xx goes up, also after another 2xx.
      {"16.7 step 5: 2xx from Trying", S::Trying, E::SuccessSent, S::Answered},
      {"16.7 step 5: 2xx from Proceeding", S::Proceeding, E::SuccessSent, S::Answered},
      {"16.7 step 5: second 2xx", S::Answered, E::SuccessSent, S::Answered},
      // §16.7 step 6: the best response once every branch is final (or §16.8 timeout).
      {"16.7 step 6: best response", S::Proceeding, E::FailureSent, S::Failed},
      {"16.7 step 6: best response without 18x", S::Trying, E::FailureSent, S::Failed},
      {"16.7 step 6: no best response after a 2xx", S::Answered, E::FailureSent, S::Answered},
      // §17.2.1: after a final failure a 2xx cannot reach the caller.
      {"17.2.1: 2xx after the failure", S::Failed, E::SuccessSent, S::Failed},
      {"17.2.1: 2xx after the caller's CANCEL", S::Cancelled, E::SuccessSent, S::Cancelled},
      // §16.10: CANCEL of a pending request; nta answers it 487.
      {"16.10: CANCEL while trying", S::Trying, E::CallerCancel, S::Cancelled},
      {"16.10: CANCEL while ringing", S::Proceeding, E::CallerCancel, S::Cancelled},
      {"16.10: no best response after the 487", S::Cancelled, E::FailureSent, S::Cancelled},
      // §9.2: a CANCEL has no effect on a request with a final response.
      {"9.2: CANCEL after the 2xx", S::Answered, E::CallerCancel, S::Answered},
      {"9.2: CANCEL after the failure", S::Failed, E::CallerCancel, S::Failed},
  };
  for (const Transition &t : table)
    EXPECT_STREQ(state_name(next_state(t.from, t.event)), state_name(t.to)) << t.rule;
}

TEST(RouterState, WhatAFinalResponseMeans) {
  struct Row {
    S state;
    bool final_sent, failed_upstream;
    const char *name;
  };
  const std::vector<Row> table = {
      {S::Trying, false, false, "trying"},     {S::Proceeding, false, false, "proceeding"},
      {S::Answered, true, false, "answered"},  {S::Failed, true, true, "failed"},
      {S::Cancelled, true, true, "cancelled"},
  };
  for (const Row &r : table) {
    EXPECT_EQ(final_sent(r.state), r.final_sent) << r.name;
    EXPECT_EQ(failed_upstream(r.state), r.failed_upstream) << r.name;
    EXPECT_STREQ(state_name(r.state), r.name);
  }
}

TEST(RouterState, RefusalResponses) {
  using R = CallObserver::Refusal;
  struct Row {
    R refusal;
    int status;
    int retry_after;
    const char *rule;
  };
  const std::vector<Row> table = {
      {R::BadSdp, 488, 0, "21.4.26: Not Acceptable Here, the Warning says why"},
      {R::NoPorts, 503, 30, "21.5.4: the relay is full for now"},
      {R::UserLimit, 503, 30, "21.5.4: until one of the caller's calls ends"},
      {R::SourceLimit, 503, 30, "21.5.4: until one of the address's calls ends"},
  };
  for (const Row &r : table) {
    const RefusalResponse out = refusal_response(r.refusal);
    EXPECT_EQ(out.status, r.status) << r.rule;
    EXPECT_EQ(out.retry_after, r.retry_after) << r.rule;
    EXPECT_NE(std::string(out.phrase), "") << r.rule;
  }
  EXPECT_EQ(refusal_response(R::None).status, 0);
}

}  // namespace
}  // namespace portier::proxy
