// What the router tells a party that follows its calls (the media relay): the
// router does RFC 3261 §16 forking and nothing else; an observer may rewrite
// a call's offer per branch and its answers, absorb an early answer, refuse a
// call or an answer, and learns when a branch or the call ends. Its refusals
// are typed, so the response the caller gets follows from the type alone.
//
// Runs on the proxy's main loop: the hooks are called from the router's
// transaction callbacks, with the message about to be forwarded.
#pragma once

#include <sofia-sip/msg.h>

#include <cstddef>
#include <optional>
#include <string>

namespace portier::proxy {

class CallObserver {
 public:
  // Why an observer cannot take a call, an offer or an answer.
  enum class Refusal {
    None,
    BadSdp,       // an offer or answer it cannot use: 488 with a Warning
    NoPorts,      // a resource is exhausted for now: 503 with Retry-After
    UserLimit,    // the caller has too many calls: 503 with Retry-After
    SourceLimit,  // its address has too many calls: 503 with Retry-After
  };
  struct Verdict {
    Refusal refusal = Refusal::None;
    std::string detail;  // the Warning text of a refusal (no secrets: it reaches the caller)
    bool ok() const { return refusal == Refusal::None; }
  };

  // The call as the router knows it.
  struct Call {
    std::string call_id;
    std::string caller_aor;     // proved by digest authentication; empty: unknown
    std::string caller_source;  // IP address the INVITE came from
    // The branch whose 2xx went up to the caller.
    std::optional<size_t> answered_by;
  };

  // What becomes of a branch's response.
  enum class Action {
    Forward,  // up to the caller, as the observer left it
    Absorb,   // an 18x the caller does not see (the fork still counts it)
    Refuse,   // a 2xx that must not go up: the proxy ends the device's dialog,
              // the branch counts as 488 with the verdict's detail
    Drop,     // a 2xx of a call answered elsewhere: the proxy ends its dialog
  };
  struct ResponseVerdict {
    Action action = Action::Forward;
    Verdict verdict;  // why, for Refuse
  };

  virtual ~CallObserver() = default;

  // A dialog-forming INVITE about to fork. *watching: whether the observer
  // follows this call (false: no other hook is called for it, and ok()).
  virtual Verdict on_fork(const Call &call, msg_t *invite, bool *watching) = 0;
  // The copy of the request for branch `branch`, before it is sent. A refusal
  // fails that branch alone.
  virtual Verdict on_branch_request(const Call &call, size_t branch, msg_t *request) = 0;
  // A response of a branch (provisional or final), before the fork decides.
  virtual ResponseVerdict on_branch_response(const Call &call, size_t branch, int status,
                                             msg_t *response) = 0;
  // The branch failed, was cancelled or timed out, or its answer was dropped.
  virtual void on_branch_end(const Call &call, size_t branch) = 0;

  // Inside a dialog of a followed call. An offer in a re-INVITE or UPDATE
  // (*watching false: not a followed call); a refusal gets 488 and changes
  // nothing (§14.1).
  virtual Verdict on_dialog_offer(const Call &call, bool from_caller, msg_t *request,
                                  bool *watching) = 0;
  // The 2xx answering such an offer (sent by the other side than the offer's).
  // Refuse: the proxy ends the answerer's dialog.
  virtual Verdict on_dialog_answer(const Call &call, bool offer_from_caller, msg_t *response) = 0;
  // An ACK inside a dialog, which may carry the answer to a 2xx's offer. An
  // ACK cannot be refused: one the observer cannot use goes on without its body.
  virtual void on_dialog_ack(const Call &call, bool from_caller, msg_t *ack) = 0;

  // The call is over (BYE, failed, cancelled, an answer refused): nothing of it
  // is kept.
  virtual void on_end(const Call &call, const char *why) = 0;
};

// The response to a request an observer refused: RFC 3261 §21.5.4 (503 with
// Retry-After: the refusal lasts only until a call ends; 486 would blame the
// callee, 403 would tell the caller never to try again) and §21.4.26 (488).
struct RefusalResponse {
  int status = 0;
  const char *phrase = "";
  int retry_after = 0;  // seconds; 0: no Retry-After
};
RefusalResponse refusal_response(CallObserver::Refusal why);
const char *refusal_name(CallObserver::Refusal why);

}  // namespace portier::proxy
