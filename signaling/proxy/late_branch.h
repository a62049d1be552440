// What a REGISTER does to a call that rings its address of record while the
// pushed devices wake (fork-late, RFC 8599 §5.6.2): a pure decision over the
// call's branches, so each rule is checked without a socket
// (tests/unit/test_late_branch.cpp).
#pragma once

#include <cstddef>
#include <vector>

namespace portier::proxy {

// One branch of the ringing call, as seen from the binding the REGISTER wrote.
struct LateBranchView {
  // The same device: the same +sip.instance, or the same contact when the
  // binding has no instance.
  bool same_device = false;
  // The same contact URI and next hop (received address, port, transport):
  // requests to the binding would take this branch's path.
  bool same_route = false;
  enum class State {
    Pending,       // no final response yet, not cancelled by us
    Cancelled,     // we CANCELled it (stale, answered elsewhere, timeout), whatever
                   // it answered since
    LocalFailure,  // no device answered: nta's 503/408, or never sent
    Answered,      // the device itself sent a final response, uncancelled
  };
  State state = State::Pending;
};

struct LateDecision {
  bool add = false;            // a new branch to the binding
  std::vector<size_t> cancel;  // the device's stale branches (indexes) to CANCEL
  bool over_cap = false;       // a branch was due, but the call had its cap of late branches
};

// `late_so_far`: late branches the call has had; `max_late`: its cap
// ([module::Router] fork-late-max-branches).
// - A refresh is not a new device: a branch of the device on the same route
//   that is pending, cancelled or answered stays as it is, and nothing is
//   added (an INVITE per refresh would ring the phone again and again).
// - A device that answered the call itself (any final response: 486, 603, a
//   2xx) gets nothing more from it, from whatever address.
// - Otherwise the device came back elsewhere (a new socket), or had no branch,
//   or its branch failed here (its socket was gone): its pending branches on
//   other routes are CANCELled and a branch is added, while under the cap.
//   Over the cap nothing changes: the binding is stored, the call goes on
//   with the branches it has.
LateDecision decide_late_branch(const std::vector<LateBranchView> &branches, size_t late_so_far,
                                size_t max_late);

}  // namespace portier::proxy
