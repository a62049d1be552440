// portier-proxy's request policy as a chain of small processors, in RFC 3261
// §16.3 order and then local policy (build_chain.cpp lists them). Each looks at
// a request once and says what happens next.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "proxy/chain/request_context.h"

namespace portier::proxy::chain {

enum class Outcome {
  Continue,  // not mine to decide: the next processor's turn
  Respond,   // dealt with: answered (ctx.reply), or forwarded (ctx.kept); stop here
  Wait,      // parked (RequestContext::park): the processor resumes it later
  Stop,      // dropped without an answer (an ACK, a banned source)
};
const char *outcome_name(Outcome o);

class Processor {
 public:
  virtual ~Processor() = default;
  virtual Outcome process(RequestContext &ctx) = 0;
  // For logs and tests ("sanity", "registrar").
  virtual const char *name() const = 0;
};

// A request set aside by a processor that returned Wait: a push sent and the
// device's REGISTER awaited, a lookup in flight, a 200 waiting for the disk.
// It holds a reference on the message and what the processors before learned;
// Chain::resume runs it on from the processor after the one that parked it,
// and a processor that only has to answer it uses reply().
class ParkedRequest {
 public:
  ParkedRequest() = default;
  ~ParkedRequest();
  ParkedRequest(ParkedRequest &&other) noexcept;
  ParkedRequest &operator=(ParkedRequest &&other) noexcept;
  ParkedRequest(const ParkedRequest &) = delete;
  ParkedRequest &operator=(const ParkedRequest &) = delete;

  msg_t *msg() const { return msg_; }
  // Where the parked request's answer goes (its transaction, if it had one).
  Reply reply() const;

 private:
  friend class Chain;
  friend ParkedRequest park(RequestContext &ctx);
  void release();

  nta_agent_t *agent_ = nullptr;
  nta_incoming_t *irq_ = nullptr;  // created for this request, not yet kept
  msg_t *msg_ = nullptr;           // our reference
  bool may_keep_ = false;
  const char *stateless_tag_ = nullptr;
  // The UDP transport the request came in by (our reference), for its stateless
  // answer: nta knows it only while the request is being delivered, and later
  // looks it up by the Via's transport and address for each answer.
  tport_t *transport_ = nullptr;
  size_t resume_at_ = 0;
  bool routed_to_us_ = false;
  std::string caller_aor_, aor_;
  std::vector<Target> targets_;
};

// Sets ctx aside (its processor then returns Wait); the server transaction
// created for it, if any, goes with it.
ParkedRequest park(RequestContext &ctx);

class Chain {
 public:
  void add(std::unique_ptr<Processor> p) {
    processors_.push_back(p.get());
    owned_.push_back(std::move(p));
  }
  // A processor someone else owns and outlives the chain (the registrar, whose
  // held replies the proxy releases).
  void add(Processor &p) { processors_.push_back(&p); }
  size_t size() const { return processors_.size(); }
  const Processor &at(size_t i) const { return *processors_[i]; }

  // Runs ctx through the processors from `first` until one decides. A server
  // transaction created on the way and not kept by the router goes back to nta
  // (nta then absorbs the ACK of our answer and retransmits it). A request that
  // no processor decided on is a 500: the last processor always decides.
  Outcome run(RequestContext &ctx, size_t first = 0) const;
  // Runs a parked request on from where it was parked; the parked request is
  // empty afterwards (or parked anew by a later processor).
  Outcome resume(ParkedRequest &parked) const;

 private:
  std::vector<Processor *> processors_;
  std::vector<std::unique_ptr<Processor>> owned_;
};

}  // namespace portier::proxy::chain
