// ACKs that go no further (RFC 3261 §17): the ACK of an answer we sent without
// a transaction, and an ACK outside any dialog.
#pragma once

#include <string>

#include "proxy/chain/processor.h"

namespace portier::proxy::chain {

// The ACK of a 4xx we sent without a transaction (a challenge, a refusal): it
// carries our stateless To tag (Reply::set_stateless_tag), it is ours to absorb
// (§17.2.1), and there is nothing to forward it to.
class AckOfOurAnswer : public Processor {
 public:
  explicit AckOfOurAnswer(std::string stateless_tag) : tag_(std::move(stateless_tag)) {}
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "ack-of-our-answer"; }

 private:
  std::string tag_;
};

// An ACK without a To tag matched no transaction (nta absorbs those that do):
// it gets no response (§17.2.3).
class StrayAck : public Processor {
 public:
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "stray-ack"; }
};

}  // namespace portier::proxy::chain
