// Who may run the door's actions and with which code: identities, codes typed
// key by key or sent whole, lock-outs, and reasons that never leak a code.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "door/actions.h"

using namespace std::chrono_literals;
using portier::door::AccessPolicy;
using portier::door::ActionCode;
using portier::door::ActionGate;
using portier::door::Clock;
using portier::door::Decision;
using portier::door::normalize_identity;
using portier::door::Verdict;

namespace {

const char *kAlice = "sip:alice@home.example";
const char *kBob = "sip:bob@home.example";
const std::vector<ActionCode> kCodes = {
    {"door", "735190"}, {"light", "4826"}, {"gate", "90817263"}};

AccessPolicy policy() {
  AccessPolicy p;
  p.allow = {kAlice, "sip:Bob@Home.Example", "sip:carol@home.example", "sip:dave@home.example",
             "sip:erin@home.example"};
  return p;
}

// Every reason the gate gave in a test, to check that none holds a secret.
struct Gate {
  ActionGate gate;
  Clock::time_point now{};
  std::vector<std::string> reasons;
  explicit Gate(AccessPolicy p = policy()) : gate(kCodes, std::move(p)) {}
  ~Gate() {
    for (const auto &r : reasons)
      for (const char *secret : {"735190", "7351", "4826", "90817263", "9999", "1111", "1234"})
        EXPECT_EQ(r.find(secret), std::string::npos) << "reason leaks keys: " << r;
  }
  Decision keys(const char *who, const std::string &typed) {
    Decision d;
    for (char k : typed) {
      d = gate.key(who, k, now);
      reasons.push_back(d.reason);
    }
    return d;
  }
  Decision message(const char *who, const std::string &body) {
    Decision d = gate.code(who, body, now);
    reasons.push_back(d.reason);
    return d;
  }
};

}  // namespace

TEST(DoorIdentity, NormalizedForComparison) {
  struct Case {
    const char *in, *out;
  } cases[] = {
      {"sip:alice@home.example", "sip:alice@home.example"},
      {"SIP:Alice@Home.EXAMPLE", "sip:alice@home.example"},
      {"sip:alice@home.example:5061;transport=tls", "sip:alice@home.example"},
      {"<sip:alice@home.example>", "sip:alice@home.example"},
      {"\"Alice\" <sip:alice@home.example;transport=tcp>;tag=8d7f", "sip:alice@home.example"},
      {"sip:alice:secret@home.example", "sip:alice@home.example"},
      {"sip:%61lice@home.example", "sip:alice@home.example"},
      {"sips:alice@home.example", "sips:alice@home.example"},
      {"sip:alice@[2001:db8::1]:5060", "sip:alice@[2001:db8::1]"},
      {"sip:alice@home.example?subject=x", "sip:alice@home.example"},
      {"sip:home.example", ""},  // no user
      {"tel:+4930123", ""},
      {"alice@home.example", ""},
      {"sip:@home.example", ""},
      {"sip:al%4", ""},
      {"sip:al%40ce@home.example", ""},  // an escaped '@' would be ambiguous
      {"", ""},
  };
  for (const auto &c : cases) EXPECT_EQ(normalize_identity(c.in), c.out) << c.in;
}

TEST(DoorCodes, CheckedWithoutQuotingThem) {
  using portier::door::is_valid_code;
  EXPECT_TRUE(is_valid_code("0000"));
  EXPECT_TRUE(is_valid_code("123456789012"));
  EXPECT_FALSE(is_valid_code("123"));
  EXPECT_FALSE(is_valid_code("1234567890123"));
  EXPECT_FALSE(is_valid_code("12a4"));
  EXPECT_FALSE(is_valid_code("12#4"));

  EXPECT_EQ(ActionGate::check_codes(kCodes), "");
  EXPECT_EQ(ActionGate::check_codes({{"door", "12"}}),
            "action 'door': the code must be 4 to 12 digits 0-9");
  EXPECT_EQ(ActionGate::check_codes({{"door", "5555"}, {"light", "5555"}}),
            "actions 'door' and 'light' have the same code");
  EXPECT_EQ(ActionGate::check_codes({{"door", "55551"}, {"light", "5555"}}),
            "the code of 'door' starts with the code of 'light', so it could never be typed");
}

TEST(DoorGate, CodeTypedKeyByKeyIsAcceptedOnItsLastKey) {
  Gate g;
  EXPECT_EQ(g.keys(kAlice, "73519").verdict, Verdict::Pending);
  Decision d = g.keys(kAlice, "0");
  EXPECT_EQ(d.verdict, Verdict::Accepted);
  EXPECT_EQ(d.action, "door");
  EXPECT_EQ(d.reason, "code accepted");
  // Every action's code works, whichever its place in the list.
  d = g.keys(kAlice, "90817263");
  EXPECT_EQ(d.verdict, Verdict::Accepted);
  EXPECT_EQ(d.action, "gate");
  d = g.keys(kBob, "4826");  // allowed as "sip:Bob@Home.Example"
  EXPECT_EQ(d.verdict, Verdict::Accepted);
  EXPECT_EQ(d.action, "light");
  // A '#' after an accepted code is nothing.
  EXPECT_EQ(g.keys(kBob, "#").verdict, Verdict::Pending);
}

TEST(DoorGate, WrongCodesAreRefusedWhereverTheyDiffer) {
  Gate g;
  // First key wrong, last key wrong, too short, a known code's prefix, a code
  // plus more: all WrongCode, none accepted. (The comparison visits every code
  // and all 12 positions in each case: see ActionGate::match.)
  for (const char *typed : {"035190#", "735191#", "7351#", "73519#", "482#"}) {
    Gate fresh;
    Decision d = fresh.keys(kAlice, typed);
    EXPECT_EQ(d.verdict, Verdict::WrongCode) << typed;
    EXPECT_EQ(d.action, "");
  }
  Decision d = g.keys(kAlice, "999999999999");  // 12 keys, no '#': ends the attempt
  EXPECT_EQ(d.verdict, Verdict::WrongCode);
  EXPECT_EQ(d.reason, "wrong code (1 of 3 before lock-out)");
}

TEST(DoorGate, WholeCodeFromAMessage) {
  Gate g;
  Decision d = g.message(kAlice, " 735190\r\n");
  EXPECT_EQ(d.verdict, Verdict::Accepted);
  EXPECT_EQ(d.action, "door");
  EXPECT_EQ(g.message(kAlice, "4826#").action, "light");
  d = g.message(kAlice, "12a4");
  EXPECT_EQ(d.verdict, Verdict::WrongCode);
  EXPECT_EQ(d.reason, "message is not a code (1 of 3 before lock-out)");
  EXPECT_EQ(g.message(kAlice, "73519").verdict, Verdict::WrongCode);
  EXPECT_EQ(g.message(kAlice, "").reason, "message is not a code; identity locked out for 60 s");
}

TEST(DoorGate, StrangersAreRefusedAndCannotLockTheResidentsOut) {
  Gate g;
  for (const char *who : {"sip:mallory@evil.example", "sip:alice@evil.example", "tel:+1", "",
                          "sip:alice@home.example.evil"}) {
    for (int i = 0; i < 20; ++i) {
      Decision d = g.message(who, "1111");
      EXPECT_EQ(d.verdict, Verdict::NotAllowed) << who;
      EXPECT_EQ(d.reason, "identity not allowed");
      EXPECT_EQ(g.keys(who, "1").verdict, Verdict::NotAllowed);
    }
  }
  // The right code from a stranger is refused just the same.
  EXPECT_EQ(g.message("sip:mallory@evil.example", "735190").verdict, Verdict::NotAllowed);
  // Identities in other spellings are the same resident.
  EXPECT_EQ(
      g.message("\"Alice\" <sip:ALICE@home.example:5060;transport=tcp>;tag=1", "735190").verdict,
      Verdict::Accepted);
}

TEST(DoorGate, LockOutAfterRepeatedWrongCodesThenBack) {
  Gate g;
  EXPECT_EQ(g.message(kAlice, "1111").reason, "wrong code (1 of 3 before lock-out)");
  EXPECT_EQ(g.message(kAlice, "1112").reason, "wrong code (2 of 3 before lock-out)");
  Decision d = g.message(kAlice, "1113");
  EXPECT_EQ(d.verdict, Verdict::WrongCode);
  EXPECT_EQ(d.reason, "wrong code; identity locked out for 60 s");
  // Locked out: even the right code, by message or by keys, is refused.
  g.now += 59s;
  d = g.message(kAlice, "735190");
  EXPECT_EQ(d.verdict, Verdict::LockedOut);
  EXPECT_EQ(d.reason, "locked out after 3 wrong codes from this identity");
  EXPECT_EQ(g.keys(kAlice, "735190").verdict, Verdict::LockedOut);
  // Others are not affected.
  EXPECT_EQ(g.message(kBob, "735190").verdict, Verdict::Accepted);
  g.now += 1s;
  EXPECT_EQ(g.message(kAlice, "735190").verdict, Verdict::Accepted);
}

TEST(DoorGate, WrongCodesOutsideTheWindowDoNotAddUp) {
  Gate g;
  EXPECT_EQ(g.message(kAlice, "1111").verdict, Verdict::WrongCode);
  EXPECT_EQ(g.message(kAlice, "1111").verdict, Verdict::WrongCode);
  g.now += 300s;  // wrong-code-window
  EXPECT_EQ(g.message(kAlice, "1111").reason, "wrong code (1 of 3 before lock-out)");
  // A right code clears the count.
  EXPECT_EQ(g.message(kAlice, "1111").reason, "wrong code (2 of 3 before lock-out)");
  EXPECT_EQ(g.message(kAlice, "4826").verdict, Verdict::Accepted);
  EXPECT_EQ(g.message(kAlice, "1111").reason, "wrong code (1 of 3 before lock-out)");
}

// The global threshold raises the alarm and locks out the
// identities that typed wrong codes; a resident who typed nothing wrong is not
// locked out by a guesser.
TEST(DoorGate, RotatingIdentitiesRaiseTheAlarmAndHitTheGlobalLockOut) {
  AccessPolicy p = policy();
  p.global_max_wrong_codes = 4;
  Gate g(p);
  const char *ids[] = {"sip:alice@home.example", "sip:bob@home.example", "sip:carol@home.example",
                       "sip:dave@home.example"};
  for (int i = 0; i < 3; ++i) {
    Decision d = g.message(ids[i], "1111");
    EXPECT_EQ(d.verdict, Verdict::WrongCode);
    EXPECT_FALSE(d.alarm);
  }
  Decision d = g.message(ids[3], "1111");
  EXPECT_TRUE(d.alarm);
  EXPECT_EQ(d.reason,
            "wrong code (1 of 3 before lock-out); alarm: 4 wrong codes within 300 s, every "
            "identity with a wrong code locked out for 60 s");
  // Alice typed a wrong code: refused until the lock-out ends.
  d = g.message(kAlice, "735190");
  EXPECT_EQ(d.verdict, Verdict::LockedOut);
  EXPECT_EQ(d.reason, "every identity with a wrong code locked out after 4 wrong codes");
  // Erin typed nothing wrong: she still opens.
  EXPECT_EQ(g.message("sip:erin@home.example", "735190").verdict, Verdict::Accepted);
  g.now += 60s;
  EXPECT_EQ(g.message(kAlice, "735190").verdict, Verdict::Accepted);
}

// A fixed 60 s lock-out let one identity try ~10 codes a minute for
// ever. Each lock-out without a right code in between doubles, up to
// max-lockout; a right code starts over.
TEST(DoorGate, TheLockOutGrowsPerIdentity) {
  AccessPolicy p = policy();
  p.max_lockout = 300s;
  Gate g(p);
  const char *expected[] = {"60 s", "120 s", "240 s", "300 s", "300 s"};
  for (const char *len : expected) {
    g.message(kAlice, "1111");
    g.message(kAlice, "1111");
    Decision d = g.message(kAlice, "1111");
    EXPECT_EQ(d.reason, std::string("wrong code; identity locked out for ") + len);
    g.now += 1s;
    EXPECT_EQ(g.message(kAlice, "735190").verdict, Verdict::LockedOut);
    g.now += 3600s;
  }
  // Bob is not slowed down by Alice's guesses.
  g.message(kBob, "1111");
  g.message(kBob, "1111");
  EXPECT_EQ(g.message(kBob, "1111").reason, "wrong code; identity locked out for 60 s");
  // Alice's right code resets her back-off.
  EXPECT_EQ(g.message(kAlice, "735190").verdict, Verdict::Accepted);
  g.message(kAlice, "1111");
  g.message(kAlice, "1111");
  EXPECT_EQ(g.message(kAlice, "1111").reason, "wrong code; identity locked out for 60 s");
}

TEST(DoorGate, APauseBetweenKeysDropsWhatWasTyped) {
  Gate g;
  // "48", a pause longer than digit-timeout, then "26": not the light's code.
  EXPECT_EQ(g.keys(kAlice, "48").verdict, Verdict::Pending);
  g.now += 6s;
  Decision d = g.keys(kAlice, "26");
  EXPECT_EQ(d.verdict, Verdict::Pending);  // "48" was too short to count as an attempt
  EXPECT_EQ(d.reason, "waiting for more keys");
  // After another pause, a fresh "4826" is the light's code.
  g.now += 6s;
  EXPECT_EQ(g.keys(kAlice, "4826").action, "light");
}

TEST(DoorGate, DroppedKeysCountOnceTheyCouldHaveBeenACode) {
  Gate g;
  // Four keys then a pause: an attempt that did not match, counted when the next
  // key comes; that key starts a new code.
  EXPECT_EQ(g.keys(kAlice, "9999").verdict, Verdict::Pending);
  g.now += 6s;
  Decision d = g.keys(kAlice, "4");
  EXPECT_EQ(d.verdict, Verdict::WrongCode);
  EXPECT_EQ(d.reason, "unfinished code timed out (1 of 3 before lock-out)");
  EXPECT_EQ(g.keys(kAlice, "826").action, "light");
  // '*' starts over: free while short, counted once a code could have been tried.
  EXPECT_EQ(g.keys(kAlice, "48*").reason, "keys cleared");
  EXPECT_EQ(g.keys(kAlice, "4826").action, "light");
  d = g.keys(kAlice, "1111*");
  EXPECT_EQ(d.verdict, Verdict::WrongCode);
  EXPECT_EQ(d.reason, "code abandoned with '*' (1 of 3 before lock-out)");
}

TEST(DoorGate, TheThirdTimedOutAttemptLocksOutAtOnce) {
  Gate g;
  for (int i = 0; i < 2; ++i) {
    g.keys(kAlice, "1111#");
  }
  EXPECT_EQ(g.keys(kAlice, "9999").verdict, Verdict::Pending);
  g.now += 6s;
  Decision d = g.keys(kAlice, "7");
  EXPECT_EQ(d.verdict, Verdict::LockedOut);
  EXPECT_EQ(d.reason, "unfinished code timed out; identity locked out for 60 s");
}

TEST(DoorGate, LettersAndNonKeys) {
  Gate g;
  EXPECT_EQ(g.keys(kAlice, "x").reason, "not a DTMF key");
  // A-D are typed like digits and can never match.
  EXPECT_EQ(g.keys(kAlice, "AB12#").verdict, Verdict::WrongCode);
}

TEST(DoorGate, EndOfCallForgetsHalfACodeWithoutCountingIt) {
  Gate g;
  EXPECT_EQ(g.keys(kAlice, "73519").verdict, Verdict::Pending);
  g.gate.forget_keys(kAlice);
  EXPECT_EQ(g.keys(kAlice, "0").verdict, Verdict::Pending);
  EXPECT_EQ(g.keys(kAlice, "#").reason, "wrong code (1 of 3 before lock-out)");
}
