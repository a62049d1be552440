// Per-source policy, before any other work on a request: an address banned for
// failing authentication is dropped (answering would cost as much as the
// request, and answers to a spoofed source go to someone else), and a request
// that is let in keeps its TCP connection from the idle rule.
#pragma once

#include "common/auth/failure_limiter.h"
#include "proxy/chain/processor.h"

namespace portier::proxy::chain {

// The connection rules' side of a request (TcpConnections): its connection is
// in use, and a REGISTER marks the flow it came on.
class ConnectionActivity {
 public:
  virtual ~ConnectionActivity() = default;
  virtual void note_request(msg_t *msg, bool is_register) = 0;
};

class SourceLimiter : public Processor {
 public:
  // bans: null when authentication is off (nobody is banned); connections: may be null.
  SourceLimiter(auth::FailureLimiter *bans, ConnectionActivity *connections)
      : bans_(bans), connections_(connections) {}
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "source-limiter"; }

 private:
  auth::FailureLimiter *bans_;
  ConnectionActivity *connections_;
};

}  // namespace portier::proxy::chain
