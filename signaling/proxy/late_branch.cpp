#include "proxy/late_branch.h"

namespace portier::proxy {

LateDecision decide_late_branch(const std::vector<LateBranchView> &branches, size_t late_so_far,
                                size_t max_late) {
  using State = LateBranchView::State;
  LateDecision d;
  for (const LateBranchView &b : branches) {
    if (!b.same_device) continue;
    if (b.state == State::Answered) return d;
    if (b.same_route && b.state != State::LocalFailure) return d;
  }
  if (late_so_far >= max_late) {
    d.over_cap = true;
    return d;
  }
  for (size_t i = 0; i < branches.size(); ++i)
    if (branches[i].same_device && branches[i].state == State::Pending) d.cancel.push_back(i);
  d.add = true;
  return d;
}

}  // namespace portier::proxy
