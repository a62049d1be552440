#include "proxy/fork_aggregator.h"

#include <algorithm>
#include <tuple>

namespace portier::proxy {
namespace {

constexpr size_t kNoBranch = static_cast<size_t>(-1);

// RFC 3261 §16.7 step 6: a 6xx if there is one, else the lowest class.
int class_rank(int status) {
  switch (status / 100) {
    case 6:
      return 0;
    case 3:
      return 1;
    case 4:
      return 2;
    default:
      return 3;  // 5xx
  }
}

// The preference inside a class, lower first. For 4xx, §16.7 step 6 prefers
// answers that let the caller resubmit (401/407 credentials, 415/420/484); then
// "busy" is what a visitor at the door most needs to hear; then the other
// definite answers; and last the ones that only say nobody answered, 480 before
// 408 because a device that said so is more news than one that timed out, and
// 487 last unless the caller itself cancelled, when "terminated" is the truth.
int preference(int status, bool caller_cancelled) {
  if (status / 100 == 5) return status == 503 ? 1 : 0;  // 503 only says "go elsewhere"
  if (status / 100 != 4) return 0;
  switch (status) {
    case 487:
      return caller_cancelled ? 0 : 8;
    case 401:
    case 407:
      return 1;
    case 415:
    case 420:
    case 484:
      return 2;
    case 486:
      return 3;
    case 480:
      return 5;
    case 408:
      return 6;
    default:
      return 4;
  }
}

}  // namespace

ForkAggregator::ForkAggregator(size_t branches, bool invite)
    : branches_(branches), invite_(invite) {}

ForkAggregator::Decision ForkAggregator::on_response(size_t branch, int status) {
  Decision d;
  if (branch >= branches_.size() || status < 100 || status > 699) return d;
  Branch &b = branches_[branch];

  if (status < 200) {
    // §16.7 step 5: provisional responses other than 100 go up until a final one did.
    d.forward = status != 100 && !final_sent_ && b.status == 0;
    return d;
  }

  if (status < 300) {
    // §16.7 step 5: every 2xx goes up, even after another one, so the caller can
    // ACK and BYE each dialog; step 10: the first final response ends the others.
    d.forward = invite_ || !final_sent_;
    if (b.status == 0 || b.status >= 300) set_final(b, status, false);
    got_2xx_ = true;
    final_sent_ = true;
    cancel_pending(d, branch);
    return d;
  }

  if (b.status != 0) return d;  // one final response per client transaction
  set_final(b, status, false);
  // §16.7 step 5: a 6xx ends the fork: the other branches stop, and as no
  // response can beat it (step 6), it goes up now instead of after the CANCELs.
  if (status >= 600 && !final_sent_) {
    cancel_pending(d, branch);
    return send_best_now(d);
  }
  return finish(d);
}

ForkAggregator::Decision ForkAggregator::on_branch_failed(size_t branch) {
  if (branch >= branches_.size() || branches_[branch].status != 0) return {};
  set_final(branches_[branch], 408, true);  // §16.7 step 6: no response counts as 408
  return finish({});
}

ForkAggregator::Decision ForkAggregator::on_local_failure(size_t branch, int status) {
  if (branch >= branches_.size() || branches_[branch].status != 0 || status < 300 || status > 699)
    return {};
  set_final(branches_[branch], status, true);
  return finish({});
}

ForkAggregator::Decision ForkAggregator::on_timeout() {
  timed_out_ = true;
  Decision d;
  cancel_pending(d, kNoBranch);
  return send_best_now(d);
}

ForkAggregator::Decision ForkAggregator::on_cancel() {
  cancelled_ = true;
  Decision d;
  cancel_pending(d, kNoBranch);
  return finish(d);
}

std::optional<size_t> ForkAggregator::best_branch() const {
  std::optional<size_t> best;
  // Ties go to a real response over a made-up 408, then to the earliest answer.
  auto key = [this](const Branch &b) {
    int status = effective_status(b);
    return std::make_tuple(class_rank(status), preference(status, cancelled_), b.failed, b.order);
  };
  for (size_t i = 0; i < branches_.size(); ++i) {
    if (branches_[i].status < 300) continue;  // pending, or a 2xx that already went up
    if (!best || key(branches_[i]) < key(branches_[*best])) best = i;
  }
  return best;
}

int ForkAggregator::best_status() const {
  std::optional<size_t> best = best_branch();
  if (!best) {
    // Nobody to ask (no branch) or nobody answered: the fork's own outcome.
    if (cancelled_) return 487;
    return timed_out_ ? 408 : 480;
  }
  int status = effective_status(branches_[*best]);
  // §16.7 step 6: a 503 would tell the caller that this proxy is unavailable.
  return status == 503 ? 500 : status;
}

std::vector<size_t> ForkAggregator::challenge_branches() const {
  std::vector<size_t> out;
  std::optional<size_t> best = best_branch();
  auto is_challenge = [](int status) { return status == 401 || status == 407; };
  if (!best || !is_challenge(branches_[*best].status)) return out;
  for (size_t i = 0; i < branches_.size(); ++i)
    if (i != *best && is_challenge(branches_[i].status)) out.push_back(i);
  std::sort(out.begin(), out.end(),
            [this](size_t a, size_t b) { return branches_[a].order < branches_[b].order; });
  return out;
}

bool ForkAggregator::all_final() const {
  for (const Branch &b : branches_) {
    if (b.status == 0) return false;
  }
  return true;
}

void ForkAggregator::set_final(Branch &b, int status, bool failed) {
  b.status = status;
  b.failed = failed;
  b.order = finals_++;
}

bool ForkAggregator::pending_except(size_t branch) const {
  for (size_t i = 0; i < branches_.size(); ++i) {
    if (i != branch && branches_[i].status == 0) return true;
  }
  return false;
}

void ForkAggregator::cancel_pending(Decision &d, size_t except) {
  if (!invite_ || cancel_sent_ || !pending_except(except)) return;
  cancel_sent_ = true;
  d.cancel_others = true;
}

size_t ForkAggregator::add_branch() {
  branches_.emplace_back();
  return branches_.size() - 1;
}

ForkAggregator::Decision ForkAggregator::finish(Decision d) {
  if (!final_sent_ && all_final() && (!hold_open_ || cancelled_)) {
    final_sent_ = true;
    d.send_best = true;
  }
  return d;
}

ForkAggregator::Decision ForkAggregator::send_best_now(Decision d) {
  if (!final_sent_) {
    final_sent_ = true;
    d.send_best = true;
  }
  return d;
}

int ForkAggregator::effective_status(const Branch &b) const {
  // A held fork waits for pushed devices (RFC 8599): a branch that failed
  // here (the sleeping phone's socket is gone: nta's 503, RFC 3261 §16.9) is
  // expected, not news. Passed on, that 503 would become 500 (§16.7 step 6)
  // and the door would show a server fault when a phone simply did not wake.
  // 480 is what §21.4.18 gives a proxy that knows the user but "does not
  // currently have a valid forwarding location" for it, which is the case
  // here; RFC 8599 §5.6.2 names no status for a device that never registers.
  // (Flexisip, in fork-late mode, skips such branches and sends 408 at its
  // timeout; 480 says "not available" rather than a network fault.)
  if (hold_open_ && b.failed) return 480;
  // The fork timeout's own CANCELs must not read as "the caller cancelled".
  if (timed_out_ && !cancelled_ && b.status == 487) return 408;
  return b.status;
}

}  // namespace portier::proxy
