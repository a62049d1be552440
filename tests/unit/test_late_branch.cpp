// Fork-late: what a REGISTER of a device does to a call ringing its address of
// record (proxy/late_branch.h).
#include <gtest/gtest.h>

#include <vector>

#include "proxy/late_branch.h"

namespace portier::proxy {
namespace {

using State = LateBranchView::State;

LateBranchView branch(bool same_device, bool same_route, State state) {
  LateBranchView b;
  b.same_device = same_device;
  b.same_route = same_route;
  b.state = state;
  return b;
}

constexpr size_t kCap = 8;

TEST(LateBranch, ARefreshKeepsThePendingBranch) {
  const LateDecision d = decide_late_branch({branch(true, true, State::Pending)}, 1, kCap);
  EXPECT_FALSE(d.add);
  EXPECT_TRUE(d.cancel.empty());
  EXPECT_FALSE(d.over_cap);
}

TEST(LateBranch, ANewAddressReplacesThePendingBranch) {
  // Branch 0: another phone of the AOR, ringing; branch 1: this device's old
  // socket.
  const LateDecision d = decide_late_branch(
      {branch(false, false, State::Pending), branch(true, false, State::Pending)}, 1, kCap);
  EXPECT_TRUE(d.add);
  EXPECT_EQ(d.cancel, std::vector<size_t>{1});
}

TEST(LateBranch, ADeviceWithoutABranchGetsOne) {
  LateDecision d = decide_late_branch({branch(false, false, State::Pending)}, 0, kCap);
  EXPECT_TRUE(d.add);
  EXPECT_TRUE(d.cancel.empty());
  d = decide_late_branch({}, 0, kCap);
  EXPECT_TRUE(d.add);
}

// The sleeping phone's branch failed here (socket gone): woken, it comes back
// on the same address (a fixed port) and needs a branch that reaches it.
TEST(LateBranch, ALocallyFailedBranchIsReplacedEvenOnTheSameRoute) {
  const LateDecision d = decide_late_branch({branch(true, true, State::LocalFailure)}, 0, kCap);
  EXPECT_TRUE(d.add);
  EXPECT_TRUE(d.cancel.empty());  // nothing pending to cancel
}

TEST(LateBranch, ADeviceThatAnsweredGetsNothingMore) {
  // 486 from its old socket, then a REGISTER from a new one: its answer stands.
  LateDecision d = decide_late_branch({branch(true, false, State::Answered)}, 1, kCap);
  EXPECT_FALSE(d.add);
  EXPECT_TRUE(d.cancel.empty());
  // Answered on this very route (a 2xx, then a refresh mid-call).
  d = decide_late_branch({branch(true, true, State::Answered)}, 1, kCap);
  EXPECT_FALSE(d.add);
}

TEST(LateBranch, ACancelledBranchOnTheSameRouteWasTold) {
  // Its CANCEL (answered elsewhere, or the ghost's) reached this address.
  LateDecision d = decide_late_branch({branch(true, true, State::Cancelled)}, 1, kCap);
  EXPECT_FALSE(d.add);
  // A branch cancelled as stale does not stop the device's next address.
  d = decide_late_branch(
      {branch(true, false, State::Cancelled), branch(true, false, State::Pending)}, 2, kCap);
  EXPECT_TRUE(d.add);
  EXPECT_EQ(d.cancel, std::vector<size_t>{1});
}

TEST(LateBranch, OverTheCapNothingChanges) {
  const LateDecision d = decide_late_branch({branch(true, false, State::Pending)}, kCap, kCap);
  EXPECT_FALSE(d.add);
  EXPECT_TRUE(d.cancel.empty());  // its one live branch stays
  EXPECT_TRUE(d.over_cap);
  // A refresh is no late branch: never "over the cap".
  EXPECT_FALSE(decide_late_branch({branch(true, true, State::Pending)}, kCap, kCap).over_cap);
}

// A device looping through new ports: one branch per REGISTER up to the cap,
// then none, however many more come.
TEST(LateBranch, ALoopOfNewAddressesIsBounded) {
  std::vector<LateBranchView> branches = {branch(false, false, State::Pending)};  // another phone
  size_t late = 0;
  for (int i = 0; i < 30; ++i) {
    for (size_t j = 1; j < branches.size(); ++j) branches[j].same_route = false;
    const LateDecision d = decide_late_branch(branches, late, kCap);
    for (size_t c : d.cancel) branches[c].state = State::Cancelled;
    if (d.add) {
      branches.push_back(branch(true, true, State::Pending));
      ++late;
    }
    EXPECT_EQ(d.over_cap, i >= static_cast<int>(kCap)) << i;
  }
  EXPECT_EQ(late, kCap);
  EXPECT_EQ(branches[0].state, State::Pending);  // the other phone still rings
}

}  // namespace
}  // namespace portier::proxy
