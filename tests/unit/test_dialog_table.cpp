// The in-dialog check of the proxy: which to-tagged requests a recorded dialog
// lets through (RFC 3261 §12.2.2), and the signature on our Record-Route.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "proxy/dialog_table.h"

namespace portier::proxy {
namespace {

using Verdict = DialogTable::Match::Verdict;

DialogTable::Dialog call(bool confirmed, const std::string &callee_tag = "ee1") {
  DialogTable::Dialog d;
  d.call_id = "c1@door";
  d.caller_tag = "er1";
  d.callee_tag = callee_tag;
  d.caller_hosts = {"10.0.0.5"};
  d.callee_hosts = {"10.0.0.7"};
  d.caller_aor = "sip:door@home.example";
  d.callee_aor = "sip:mon1@home.example";
  d.confirmed = confirmed;
  d.since = 1000;
  return d;
}

struct Row {
  const char *what;
  const char *call_id, *from_tag, *to_tag, *source;
  Verdict verdict;
  DialogTable::Side side;
};

TEST(DialogTable, OnlyTheDialogsPartiesGetThrough) {
  DialogTable t;
  t.record(call(true));
  const Row rows[] = {
      {"caller -> callee", "c1@door", "er1", "ee1", "10.0.0.5", Verdict::Ok,
       DialogTable::Side::Caller},
      {"callee -> caller", "c1@door", "ee1", "er1", "10.0.0.7", Verdict::Ok,
       DialogTable::Side::Callee},
      {"the tags right, another host", "c1@door", "er1", "ee1", "10.0.0.66", Verdict::NotAParty,
       DialogTable::Side::Caller},
      {"the callee's tags from the caller's host", "c1@door", "ee1", "er1", "10.0.0.5",
       Verdict::NotAParty, DialogTable::Side::Caller},
      {"the Call-ID only", "c1@door", "x", "y", "10.0.0.5", Verdict::NoDialog,
       DialogTable::Side::Caller},
      {"a wrong To tag", "c1@door", "er1", "ee2", "10.0.0.5", Verdict::NoDialog,
       DialogTable::Side::Caller},
      {"another Call-ID", "c2@door", "er1", "ee1", "10.0.0.5", Verdict::NoDialog,
       DialogTable::Side::Caller},
      {"an unknown source", "c1@door", "er1", "ee1", "", Verdict::NotAParty,
       DialogTable::Side::Caller},
  };
  for (const auto &r : rows) {
    SCOPED_TRACE(r.what);
    auto m = t.match(r.call_id, r.from_tag, r.to_tag, r.source);
    EXPECT_EQ(m.verdict, r.verdict);
    if (r.verdict == Verdict::Ok) {
      EXPECT_EQ(m.side, r.side);
      EXPECT_EQ(m.dialog->callee_aor, "sip:mon1@home.example");
    }
  }
}

TEST(DialogTable, APartyReachesOnlyTheOtherParty) {
  // Neither party may use the dialog to make the proxy relay elsewhere.
  DialogTable t;
  auto d = call(true);
  d.caller_targets = {"door.lan"};     // the caller's Contact host
  d.callee_targets = {"192.168.1.7"};  // the callee's Contact (behind a NAT)
  const auto &rec = t.record(d);
  using S = DialogTable::Side;
  EXPECT_TRUE(DialogTable::may_target(rec, S::Caller, "10.0.0.7"));
  EXPECT_TRUE(DialogTable::may_target(rec, S::Caller, "192.168.1.7"));
  EXPECT_FALSE(DialogTable::may_target(rec, S::Caller, "10.0.0.5"));  // itself
  EXPECT_FALSE(DialogTable::may_target(rec, S::Caller, "203.0.113.9"));
  EXPECT_TRUE(DialogTable::may_target(rec, S::Callee, "DOOR.lan"));
  EXPECT_TRUE(DialogTable::may_target(rec, S::Callee, "10.0.0.5"));
  EXPECT_FALSE(DialogTable::may_target(rec, S::Callee, "203.0.113.9"));
  // A target refresh from the caller (§12.2.2) lets the callee reach it there.
  t.add_target(rec, S::Caller, "10.0.0.50");
  auto m = t.match("c1@door", "ee1", "er1", "10.0.0.7");
  EXPECT_TRUE(DialogTable::may_target(*m.dialog, S::Callee, "10.0.0.50"));
  EXPECT_FALSE(DialogTable::may_target(*m.dialog, S::Caller, "10.0.0.50"));
}

TEST(DialogTable, EarlyDialogsEndWithTheirTransactionUnlessConfirmed) {
  // §12.1: each 18x with its own To tag is an early dialog (a fork, two devices).
  DialogTable t;
  t.record(call(false, "ee1"));
  t.record(call(false, "ee2"));
  EXPECT_EQ(t.match("c1@door", "er1", "ee2", "10.0.0.5").verdict, Verdict::Ok);
  EXPECT_FALSE(t.has_confirmed_call("c1@door"));
  t.record(call(true, "ee1"));  // the 200 confirms one of them
  EXPECT_TRUE(t.has_confirmed_call("c1@door"));
  t.drop_early("c1@door", "er1");
  EXPECT_EQ(t.match("c1@door", "er1", "ee1", "10.0.0.5").verdict, Verdict::Ok);
  EXPECT_EQ(t.match("c1@door", "er1", "ee2", "10.0.0.5").verdict, Verdict::NoDialog);
}

TEST(DialogTable, RecordingAgainAddsHostsAndKeepsOneDialog) {
  DialogTable t;
  t.record(call(false));
  auto d = call(true);
  d.callee_hosts = {"10.0.0.8"};  // the 200 came from the device's other address
  t.record(d);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.match("c1@door", "ee1", "er1", "10.0.0.7").verdict, Verdict::Ok);
  EXPECT_EQ(t.match("c1@door", "ee1", "er1", "10.0.0.8").verdict, Verdict::Ok);
}

TEST(DialogTable, ByeRemovesOnlyItsDialog) {
  DialogTable t;
  t.record(call(true));
  EXPECT_FALSE(t.remove("c1@door", "er1", "wrong"));
  EXPECT_TRUE(t.has_confirmed_call("c1@door"));
  EXPECT_TRUE(t.remove("c1@door", "er1", "ee1"));
  EXPECT_FALSE(t.has_confirmed_call("c1@door"));
}

TEST(DialogTable, RetransmittedTwoHundredOnlyFromTheCallee) {
  // §13.3.1.4: the callee retransmits its 2xx; nobody else's response goes on.
  DialogTable t;
  t.record(call(false));
  EXPECT_FALSE(t.matches_response("c1@door", "er1", "ee1", "10.0.0.7"));  // early only
  t.record(call(true));
  EXPECT_TRUE(t.matches_response("c1@door", "er1", "ee1", "10.0.0.7"));
  EXPECT_FALSE(t.matches_response("c1@door", "er1", "ee1", "10.0.0.66"));
  EXPECT_FALSE(t.matches_response("c1@door", "er1", "other", "10.0.0.7"));
}

TEST(DialogTable, ExpiresOldDialogs) {
  DialogTable t;
  t.record(call(true, "ee1"));
  t.record(call(false, "ee2"));
  EXPECT_EQ(t.expire(1000 + 100, 12 * 3600, 50), 1u);  // the early one
  EXPECT_EQ(t.expire(1000 + 12 * 3600 + 1, 12 * 3600, 50), 1u);
  EXPECT_EQ(t.size(), 0u);
}

TEST(RouteSigner, SignsTheDialogWithTheKey) {
  RouteSigner a("key one of thirty-two bytes.....");
  RouteSigner b("key two of thirty-two bytes.....");
  const std::string sig = a.sign("c1@door", "er1");
  EXPECT_EQ(sig.size(), 32u);
  EXPECT_TRUE(a.verify(sig, "c1@door", "er1"));
  EXPECT_FALSE(a.verify(sig, "c1@door", "er2"));
  EXPECT_FALSE(a.verify(sig, "c2@door", "er1"));
  EXPECT_FALSE(b.verify(sig, "c1@door", "er1"));
  EXPECT_FALSE(a.verify("", "c1@door", "er1"));
  std::string changed = sig;  // one digit changed
  changed.back() = changed.back() == '0' ? '1' : '0';
  EXPECT_FALSE(a.verify(changed, "c1@door", "er1"));
  // The length prefix keeps (Call-ID, tag) pairs apart that concatenate alike.
  EXPECT_NE(a.sign("c1@doo", "rer1"), a.sign("c1@door", "er1"));
}

// Signatures are remembered per dialog: whatever was signed before, in any
// order and however many dialogs pushed each other out, each pair gets the
// signature a fresh signer gives it.
TEST(RouteSigner, RemembersWithoutMixingDialogs) {
  const std::string key = "key one of thirty-two bytes.....";
  RouteSigner warm(key);
  std::vector<std::pair<std::string, std::string>> pairs;
  for (int i = 0; i < 300; ++i)
    pairs.emplace_back("call" + std::to_string(i % 150) + "@door", "tag" + std::to_string(i % 7));
  for (const auto &[call_id, tag] : pairs) warm.sign(call_id, tag);
  for (auto it = pairs.rbegin(); it != pairs.rend(); ++it) {
    const std::string fresh = RouteSigner(key).sign(it->first, it->second);
    EXPECT_EQ(warm.sign(it->first, it->second), fresh) << it->first << " " << it->second;
    EXPECT_TRUE(warm.verify(fresh, it->first, it->second));
    EXPECT_FALSE(warm.verify(fresh, it->first, it->second + "x"));
  }
}

}  // namespace
}  // namespace portier::proxy
