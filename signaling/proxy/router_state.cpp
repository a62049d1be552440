#include "proxy/router_state.h"

namespace portier::proxy {

TxnState next_state(TxnState s, TxnEvent e) {
  switch (e) {
    case TxnEvent::ProvisionalSent:
      return s == TxnState::Trying ? TxnState::Proceeding : s;
    case TxnEvent::SuccessSent:
      // A 2xx after the caller's CANCEL or a failure never reaches it (the
      // router ends that dialog instead): the state stays.
      return final_sent(s) && s != TxnState::Answered ? s : TxnState::Answered;
    case TxnEvent::FailureSent:
      return final_sent(s) ? s : TxnState::Failed;
    case TxnEvent::CallerCancel:
      // §9.2: a CANCEL has no effect on a request that got its final response.
      return final_sent(s) ? s : TxnState::Cancelled;
  }
  return s;
}

const char *state_name(TxnState s) {
  switch (s) {
    case TxnState::Trying:
      return "trying";
    case TxnState::Proceeding:
      return "proceeding";
    case TxnState::Answered:
      return "answered";
    case TxnState::Failed:
      return "failed";
    case TxnState::Cancelled:
      return "cancelled";
  }
  return "?";
}

}  // namespace portier::proxy
