// chain::Chain: processors run in order until one decides; a parked request
// (Wait) resumes after the processor that parked it, with what the processors
// before it learned.
#include <gtest/gtest.h>

#include <optional>

#include "chain_test_util.h"

namespace portier::proxy::chain {
namespace {

using testing::Request;
using testing::request_text;

// Learns the caller, as an authenticator would.
struct LearnsCaller : Processor {
  Outcome process(RequestContext &ctx) override {
    ctx.caller_aor = "sip:door@home.example";
    return Outcome::Continue;
  }
  const char *name() const override { return "learns-caller"; }
};

// Parks every request once, as a push processor would until the device's
// REGISTER comes in.
struct ParksOnce : Processor {
  Outcome process(RequestContext &ctx) override {
    parked = park(ctx);
    return Outcome::Wait;
  }
  const char *name() const override { return "parks-once"; }
  ParkedRequest parked;
};

// Answers with the caller it was told.
struct Answers : Processor {
  Outcome process(RequestContext &ctx) override {
    seen_caller = ctx.caller_aor;
    ctx.reply.send(200, "OK", TAG_END());
    ++calls;
    return Outcome::Respond;
  }
  const char *name() const override { return "answers"; }
  std::string seen_caller;
  int calls = 0;
};

TEST(ChainProcessor, AParkedRequestResumesAfterItsProcessorWithWhatWasLearned) {
  Chain c;
  c.add(std::make_unique<LearnsCaller>());
  auto parks = std::make_unique<ParksOnce>();
  ParksOnce *parker = parks.get();
  c.add(std::move(parks));
  Answers answers;
  c.add(answers);

  std::optional<Request> r(std::in_place, request_text("INVITE", "sip:bob@home.example"));
  EXPECT_EQ(c.run(r->ctx), Outcome::Wait);
  EXPECT_EQ(r->ctx.position, 1u);
  EXPECT_EQ(answers.calls, 0);
  // The request outlives its first run (the parked one holds its own reference).
  r.reset();
  ASSERT_NE(parker->parked.msg(), nullptr);

  EXPECT_EQ(c.resume(parker->parked), Outcome::Respond);
  EXPECT_EQ(answers.calls, 1);
  EXPECT_EQ(answers.seen_caller, "sip:door@home.example");
  EXPECT_EQ(parker->parked.msg(), nullptr);  // resumed: nothing left parked
}

TEST(ChainProcessor, ARequestNoProcessorDecidesOnIsA500) {
  Chain c;
  c.add(std::make_unique<LearnsCaller>());
  Request r(request_text("INVITE", "sip:bob@home.example"));
  EXPECT_EQ(c.run(r.ctx), Outcome::Respond);
  EXPECT_EQ(r.reply.status(), 500);
}

}  // namespace
}  // namespace portier::proxy::chain
