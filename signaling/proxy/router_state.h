// The state of one forwarded request's server transaction, as the router sees
// it (RFC 3261 §16.7, §16.10): what has gone up to the caller decides what a
// later response or a CANCEL may still do. A pure table, so each step can be
// checked without a socket (tests/unit/test_router_state.cpp).
#pragma once

namespace portier::proxy {

enum class TxnState {
  Trying,      // forwarded; nothing but our 100 went up
  Proceeding,  // a provisional response went up (§16.7 step 5)
  Answered,    // a 2xx went up; later 2xx still go up (§16.7 step 5)
  Failed,      // the best final non-2xx went up (§16.7 step 6), or the fork timed out
  Cancelled,   // the caller's CANCEL: nta answered the request 487 (§16.10)
};

enum class TxnEvent {
  ProvisionalSent,  // a 101-199 went up
  SuccessSent,      // a 2xx went up
  FailureSent,      // the best final non-2xx went up
  CallerCancel,     // the caller's CANCEL arrived
};

TxnState next_state(TxnState s, TxnEvent e);
const char *state_name(TxnState s);

// A final response went up: no best response follows any more.
inline bool final_sent(TxnState s) { return s != TxnState::Trying && s != TxnState::Proceeding; }
// The caller holds a final failure: a 2xx can no longer reach it (§17.2.1).
inline bool failed_upstream(TxnState s) {
  return s == TxnState::Failed || s == TxnState::Cancelled;
}

}  // namespace portier::proxy
