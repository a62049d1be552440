// Response handling of a parallel fork (RFC 3261 §16.7), without SIP stack types.
// The router feeds every branch's responses in and keeps each branch's last final
// response message; the aggregator says what to do with them.
#pragma once

#include <cstddef>
#include <optional>
#include <vector>

namespace portier::proxy {

class ForkAggregator {
 public:
  // `invite`: the forked request is an INVITE. A non-INVITE fork sends one
  // final response upstream and never CANCELs (below).
  explicit ForkAggregator(size_t branches, bool invite = true);

  struct Decision {
    bool forward = false;        // send the response just received upstream now
    bool cancel_others = false;  // CANCEL every branch still pending
    bool send_best = false;      // every branch is final and no final answer went up yet:
                                 // send best_branch()'s stored response with best_status()
  };

  // A response `status` arrived on `branch`.
  // - 100: nothing. 101-199: forwarded while no final response went upstream.
  // - 2xx to an INVITE: always forwarded, even after another 2xx (§16.7 step 5,
  //   the caller must see every 2xx to ACK and BYE it); the first one cancels the
  //   other branches. 2xx to anything else: forwarded only while no final
  //   response went up (§16.7 step 10 forwards later 2xx for INVITE only, and a
  //   completed non-INVITE server transaction discards further finals,
  //   §17.2.2); nothing is cancelled (§9.1: CANCEL is for INVITE), the other
  //   branches run to their end and their answers are absorbed.
  // - 6xx: cancels the other branches (§16.7 step 5) and goes up at once as the
  //   best response (send_best): a branch that never answers the CANCEL (a device
  //   that lost power) must not keep the caller waiting; the CANCELs finish in
  //   the background.
  // - 3xx-5xx: stored; when every branch is final, send_best.
  Decision on_response(size_t branch, int status);
  // A branch ended without a final response (transport error, no answer): a 408.
  Decision on_branch_failed(size_t branch);
  // A final response the SIP stack made up itself, not the device (nta's 503
  // for a transport error, RFC 3261 §16.9; its 408 when timer B fires): stored
  // as `status`, but counted as a failed branch (below).
  Decision on_local_failure(size_t branch, int status);
  // call-fork-timeout: cancel_others, and send_best at once (§16.8: a branch
  // without a final response counts as 408): the caller is not kept waiting for
  // the CANCELs, which a silent device may never answer. The 487s that come
  // back then count as 408, so the caller learns that nobody answered rather
  // than that it cancelled.
  Decision on_timeout();
  // The caller CANCELled: cancel_others; the 487s then go up as they are.
  Decision on_cancel();

  // Pushed devices may still register and join (RFC 8599: the proxy pushes,
  // then waits for the woken device's REGISTER): while held open, every
  // branch being final sends nothing upstream; a 2xx, a 6xx, the caller's
  // CANCEL and on_timeout() (call-fork-timeout) still end the fork.
  // A failed branch (local failure, no response) of a held fork counts as
  // 480 Temporarily Unavailable: see effective_status().
  void hold_open() { hold_open_ = true; }
  bool held_open() const { return hold_open_; }
  // A branch joins the running fork (a late registration); its index. The
  // caller checks final_sent() first: a fork that answered takes no branch.
  size_t add_branch();

  // The best stored final response (§16.7 step 6): any 6xx; otherwise the lowest
  // class. Among 4xx: 401/407, then 415/420/484 (the caller can resubmit), then
  // 486 Busy Here, then other specific answers (403, 404, 488 ...), then 480, 408,
  // 487 (first after on_cancel()). Among 5xx, 503 last. Ties: a received response
  // over a failed branch, then the earliest. nullopt while no branch has a 3xx-6xx.
  // A held fork's failed branches count as 480: a device's own answer (486,
  // 603 ...) beats them.
  std::optional<size_t> best_branch() const;
  // The status to send for best_branch(): 503 becomes 500 (§16.7 step 6), a
  // 487 of a branch cancelled by the fork timeout becomes 408, and a held
  // fork's failed branch 480. Without a best
  // branch: 487 after on_cancel(), else 408 after on_timeout(), else 480.
  int best_status() const;

  // §16.7 step 7: when best_branch() is a 401/407, every other branch's 401 and
  // 407 lends its challenges (WWW-Authenticate, Proxy-Authenticate) to the
  // response sent upstream. The other 401/407 branches in arrival order; empty
  // when the best response is no challenge.
  std::vector<size_t> challenge_branches() const;

  bool all_final() const;
  bool final_sent() const { return final_sent_; }
  bool branch_final(size_t branch) const { return branches_.at(branch).status != 0; }
  int branch_status(size_t branch) const { return branches_.at(branch).status; }
  // The branch ended through on_branch_failed() or on_local_failure(): no
  // device answered it. When it is best_branch() the router generates
  // best_status() itself unless its stored response has that status.
  bool branch_failed(size_t branch) const { return branches_.at(branch).failed; }
  size_t size() const { return branches_.size(); }

 private:
  struct Branch {
    int status = 0;       // 0: no final response yet
    bool failed = false;  // no device answered: on_branch_failed(), on_local_failure()
    unsigned order = 0;   // arrival order of the final response, for ties
  };

  void set_final(Branch &b, int status, bool failed);
  bool pending_except(size_t branch) const;
  // Sets cancel_others once per fork: a second CANCEL for a branch is noise.
  void cancel_pending(Decision &d, size_t except);
  Decision finish(Decision d);
  // The best response goes up now, whatever is still pending.
  Decision send_best_now(Decision d);
  int effective_status(const Branch &b) const;

  std::vector<Branch> branches_;
  unsigned finals_ = 0;
  bool invite_ = true;
  bool final_sent_ = false;
  bool got_2xx_ = false;
  bool timed_out_ = false;
  bool cancelled_ = false;
  bool cancel_sent_ = false;
  bool hold_open_ = false;
};

}  // namespace portier::proxy
