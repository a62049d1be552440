// chain::Sanity: RFC 3261 §16.3 steps 1-5 on parsed requests.
#include <gtest/gtest.h>

#include "chain_test_util.h"
#include "proxy/chain/sanity.h"

namespace portier::proxy::chain {
namespace {

using testing::Request;
using testing::request_text;

struct Row {
  const char *rfc;
  std::string text;
  Outcome outcome;
  int status;  // 0: nothing sent
  const char *unsupported = "";
};

TEST(ChainSanity, Table) {
  const LocalNames names = testing::test_names();
  const std::string bob = "sip:bob@home.example";
  const std::string our_via = "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ours\r\n";
  const Row rows[] = {
      {"§16.3: a well-formed INVITE goes on", request_text("INVITE", bob), Outcome::Continue, 0},
      {"§16.3 step 1: no From is a 400",
       "INVITE sip:bob@home.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.10:5062;branch=z9hG4bK-1"
       "\r\nTo: <sip:bob@home.example>\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\nContent-Length: "
       "0\r\n\r\n",
       Outcome::Respond, 400},
      {"§16.3 step 3: Max-Forwards 0 is a 483", request_text("INVITE", bob, "Max-Forwards: 0\r\n"),
       Outcome::Respond, 483},
      {"§16.3 step 3: Max-Forwards 1 goes on", request_text("INVITE", bob, "Max-Forwards: 1\r\n"),
       Outcome::Continue, 0},
      {"§16.3 step 3, §11: OPTIONS to us with Max-Forwards 0 is still ours to answer",
       request_text("OPTIONS", "sip:127.0.0.1:5060", "Max-Forwards: 0\r\n"), Outcome::Continue, 0},
      {"§16.3 step 3, §17: an ACK with Max-Forwards 0 goes no further, unanswered",
       request_text("ACK", bob, "Max-Forwards: 0\r\n", "callee1"), Outcome::Stop, 0},
      {"§16.3 step 4: our own Via in a new request is a loop (482)",
       request_text("INVITE", bob, our_via), Outcome::Respond, 482},
      {"§16.3 step 4: an in-dialog request through us again is no loop",
       request_text("BYE", bob, our_via, "callee1"), Outcome::Continue, 0},
      {"§16.3 step 4, §9.1: a CANCEL is no loop", request_text("CANCEL", bob, our_via),
       Outcome::Continue, 0},
      {"§16.3 step 5: Proxy-Require lists what we lack in Unsupported (420)",
       request_text("INVITE", bob, "Proxy-Require: foo, bar\r\n"), Outcome::Respond, 420,
       "foo, bar"},
      {"§16.3 step 5: an ACK is never refused for Proxy-Require",
       request_text("ACK", bob, "Proxy-Require: foo\r\n", "callee1"), Outcome::Continue, 0},
  };
  for (const Row &row : rows) {
    SCOPED_TRACE(row.rfc);
    Request r(row.text);
    ASSERT_NE(r.sip, nullptr);
    Sanity sanity(names);
    EXPECT_EQ(outcome_name(sanity.process(r.ctx)), std::string(outcome_name(row.outcome)));
    EXPECT_EQ(r.reply.status(), row.status);
    EXPECT_EQ(r.reply.header("unsupported_str"), row.unsupported);
  }
}

}  // namespace
}  // namespace portier::proxy::chain
