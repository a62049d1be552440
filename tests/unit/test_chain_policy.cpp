// The whole request chain as build_chain assembles it (real registrar, digest
// authentication, target resolver; a stand-in only for the router, which needs
// a live nta agent): a parsed request in, the processor that decided, its
// outcome and the status out.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "chain_test_util.h"
#include "common/clock.h"
#include "common/auth/digest_client.h"
#include "proxy/chain/build_chain.h"

namespace portier::proxy::chain {
namespace {

using testing::Request;
using testing::request_text;

// Records what reaches the router; its dialogs are a real DialogTable.
struct RouterStandIn : Forker, DialogRouter {
  bool fork(nta_incoming_t *, msg_t *, const sip_t *, const ForkRequest &r) override {
    ++forks;
    targets = r.targets;
    caller_aor = r.caller_aor;
    aor = r.aor;
    pop_route = r.pop_route;
    return false;
  }
  DialogTable::Match match_dialog(msg_t *, const sip_t *sip, const std::string &source) override {
    return dialogs.match(sip->sip_call_id->i_id, sip->sip_from->a_tag ? sip->sip_from->a_tag : "",
                         sip->sip_to->a_tag ? sip->sip_to->a_tag : "", source);
  }
  bool route_onward(Reply &, msg_t *, const sip_t *, const DialogTable::Match &m) override {
    ++onward;
    onward_side = m.side;
    return false;
  }
  bool refusal_loggable() override { return false; }

  DialogTable dialogs;
  int forks = 0, onward = 0;
  DialogTable::Side onward_side = DialogTable::Side::Callee;
  std::vector<Target> targets;
  std::string caller_aor, aor;
  bool pop_route = false;
};

const char kSecret[] = "0123456789abcdef0123456789abcdef";
const char kStatelessTag[] = "pz0123";
const std::string kRegisterAlice =
    request_text("REGISTER", "sip:home.example",
                 "To: <sip:alice@home.example>\r\nContact: <sip:alice@192.0.2.10:5062>\r\n", "",
                 "<sip:alice@home.example>");

class ChainPolicy : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/portier-chain-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    persister_ = std::make_unique<LocationPersister>(dir_ + "/registrations");
    std::string error;
    ASSERT_TRUE(
        users_.load_from_string("version:1\nalice@home.example clrtxt:secret ;\n"
                                "door@home.example clrtxt:door ;\n",
                                "users", &error))
        << error;
    ASSERT_TRUE(statics_.load_from_string("sip:flat@home.example sip:alice@home.example\n",
                                          "static", &error))
        << error;
    settings_.group_addresses.aors = {"sip:home@home.example"};
  }
  void TearDown() override {
    persister_->drain();
    std::filesystem::remove_all(dir_);
  }

  // The chain with authentication on or off.
  Chain chain(bool auth) {
    if (auth) {
      digest_ = std::make_unique<DigestAuth>(settings_, names_, nonces_, authenticator_, bans_);
    }
    registrar_ = std::make_unique<Registrar>(names_, locations_, *persister_,
                                             auth ? digest_.get() : nullptr);
    return build_chain({settings_, names_, stateless_tag_, auth ? &bans_ : nullptr, nullptr,
                        signer_, router_, *registrar_, auth ? digest_.get() : nullptr, locations_,
                        statics_, users_, router_});
  }

  void bind(const std::string &aor, const std::string &contact) {
    ASSERT_TRUE(testing::bind(locations_, aor, contact, "udp:192.0.2.20:5060", portier::clock::wall_s_rounded_up()));
  }

  std::string dir_;
  ProxySettings settings_;
  LocalNames names_ = testing::test_names();
  std::string stateless_tag_ = kStatelessTag;
  auth::UsersFile users_;
  auth::NonceManager nonces_{kSecret, 3600};
  auth::Authenticator authenticator_{users_, {auth::Algorithm::MD5}, nonces_};
  auth::FailureLimiter bans_{auth::FailureLimits{}};
  RouteSigner signer_{kSecret};
  LocationStore locations_{LocationStore::Limits{}};
  StaticRecords statics_;
  std::unique_ptr<LocationPersister> persister_;
  std::unique_ptr<DigestAuth> digest_;
  std::unique_ptr<Registrar> registrar_;
  RouterStandIn router_;
};

struct Row {
  const char *rfc;
  std::string text;
  const char *decided_by;
  Outcome outcome;
  int status;  // 0: nothing sent
  const char *phrase = nullptr;
};

void check(const Chain &c, const Row &row) {
  SCOPED_TRACE(row.rfc);
  Request r(row.text);
  ASSERT_NE(r.sip, nullptr);
  const Outcome out = c.run(r.ctx);
  EXPECT_STREQ(c.at(r.ctx.position).name(), row.decided_by);
  EXPECT_STREQ(outcome_name(out), outcome_name(row.outcome));
  EXPECT_EQ(r.reply.status(), row.status);
  if (row.phrase) {
    EXPECT_EQ(r.reply.phrase(), row.phrase);
  }
}

TEST_F(ChainPolicy, WithAuthenticationEachRequestStopsWhereTheRfcSays) {
  const Chain c = chain(true);
  const std::string bob = "sip:bob@home.example";
  // call-1: the door (192.0.2.10, tag caller1) called bob (192.0.2.20, tag callee1);
  // call-2: between two other hosts.
  DialogTable::Dialog d;
  d.call_id = "call-1@192.0.2.10";
  d.caller_tag = "caller1";
  d.callee_tag = "callee1";
  d.caller_hosts = {"192.0.2.10"};
  d.callee_hosts = {"192.0.2.20"};
  router_.dialogs.record(d);
  d.call_id = "call-2";
  d.caller_hosts = {"198.51.100.1"};
  d.callee_hosts = {"198.51.100.2"};
  router_.dialogs.record(d);
  const std::string bob_device = "sip:bob@192.0.2.20:5060";
  auto signed_route = [&](const std::string &call_id) {
    return "Route: <sip:127.0.0.1:5060;lr;sig=" + signer_.sign(call_id, "caller1") + ">\r\n";
  };
  const Row rows[] = {
      {"§16.3 step 3", request_text("INVITE", bob, "Max-Forwards: 0\r\n"), "sanity",
       Outcome::Respond, 483},
      {"§16.10: a CANCEL that reaches the chain matched no transaction",
       request_text("CANCEL", bob), "cancel-unmatched", Outcome::Respond, 481},
      {"§17.2.3: an ACK outside any dialog goes nowhere", request_text("ACK", bob), "stray-ack",
       Outcome::Stop, 0},
      {"§17.2.1: the ACK of our stateless 407 is ours", request_text("ACK", bob, "", kStatelessTag),
       "ack-of-our-answer", Outcome::Stop, 0},
      {"§12.2.2: an in-dialog request without our Route matches no dialog here",
       request_text("BYE", bob, "", "callee1"), "dialog-validator", Outcome::Respond, 481},
      {"§16.4: a Route naming us without our signature was not issued here",
       request_text("BYE", bob, "Route: <sip:127.0.0.1:5060;lr>\r\n", "callee1"),
       "dialog-validator", Outcome::Respond, 403, "Route not issued here"},
      {"§16.4, §12.2.2: our signed Route, a recorded dialog, its caller, its callee's host: "
       "forwarded",
       request_text("BYE", bob_device, signed_route("call-1@192.0.2.10"), "callee1"),
       "dialog-validator", Outcome::Respond, 0},
      {"§12.2.2: a signed Route but tags of no recorded dialog",
       request_text("BYE", bob_device, signed_route("call-1@192.0.2.10"), "other-tag"),
       "dialog-validator", Outcome::Respond, 481},
      {"§12.2.2: a recorded dialog, but the sender is neither of its parties",
       request_text("BYE", "sip:x@198.51.100.2", signed_route("call-2") + "Call-ID: call-2\r\n",
                    "callee1"),
       "dialog-validator", Outcome::Respond, 481},
      {"§12.2.1.1 (local policy): a party may reach the other party only, not any host",
       request_text("BYE", "sip:bob@198.51.100.7", signed_route("call-1@192.0.2.10"), "callee1"),
       "dialog-validator", Outcome::Respond, 403, "Request-URI outside the dialog"},
      {"§17: a refused ACK goes no further, unanswered",
       request_text("ACK", "sip:bob@198.51.100.7", signed_route("call-1@192.0.2.10"), "callee1"),
       "dialog-validator", Outcome::Stop, 0},
      {"§16.4: a Route past us is not ours to follow",
       request_text("INVITE", bob, "Route: <sip:198.51.100.7;lr>\r\n"), "relaying-denied",
       Outcome::Respond, 403, "Relaying denied"},
      {"§11: OPTIONS to the proxy itself", request_text("OPTIONS", "sip:127.0.0.1:5060"),
       "requests-to-us", Outcome::Respond, 200},
      {"§11: OPTIONS to an alias of ours", request_text("OPTIONS", "sip:intercom.local"),
       "requests-to-us", Outcome::Respond, 200},
      {"§8.2.2.1: a MESSAGE to the proxy itself reaches nobody",
       request_text("MESSAGE", "sip:127.0.0.1:5060"), "requests-to-us", Outcome::Respond, 404},
      {"§16.3 (local policy): a domain we do not serve",
       request_text("INVITE", "sip:bob@elsewhere.example"), "domain-filter", Outcome::Respond, 403,
       "Domain not served here"},
      {"local policy: a caller of a domain we do not authenticate",
       request_text("INVITE", bob, "", "", "<sip:eve@elsewhere.example>"), "domain-filter",
       Outcome::Respond, 403, "Caller domain not served here"},
      {"§10.3 step 2, §22.1: REGISTER without credentials is challenged (401)", kRegisterAlice,
       "registrar", Outcome::Respond, 401},
      {"§16.3 step 6, §22.3: INVITE without credentials is challenged (407)",
       request_text("INVITE", bob), "digest-auth", Outcome::Respond, 407},
      {"§16.4: a Route naming us is consumed, then authentication as usual",
       request_text("INVITE", bob, "Route: <sip:127.0.0.1:5060;lr>\r\n"), "digest-auth",
       Outcome::Respond, 407},
  };
  for (const Row &row : rows) check(c, row);
  EXPECT_EQ(router_.forks, 0);
  EXPECT_EQ(router_.onward, 1);
  EXPECT_EQ(router_.onward_side, DialogTable::Side::Caller);
}

// The Proxy-Authorization a client with this password sends after the 407 of
// `challenge` (the Proxy-Authenticate the chain sent).
std::string answer(const std::string &challenge, const std::string &password,
                   const std::string &ruri, const std::string &user = "alice",
                   const char *method = "INVITE") {
  su_home_t home[1] = {SU_HOME_INIT(home)};
  std::string out;
  if (msg_auth_t *au = sip_proxy_authenticate_make(home, challenge.c_str())) {
    std::vector<std::string_view> params;
    for (const msg_param_t *p = au->au_params; p && *p; ++p) params.emplace_back(*p);
    auth::DigestClient client(user, password);
    if (auto c = auth::parse_challenge(au->au_scheme, params); c && client.challenged({*c}))
      out = client.authorization(method, ruri);
  }
  su_home_deinit(home);
  return out;
}

TEST_F(ChainPolicy, AnAnsweredChallengeReachesTheRouterWithTheProvedCaller) {
  const Chain c = chain(true);
  bind("sip:bob@home.example", "sip:bob@192.0.2.20:5060");
  const std::string bob = "sip:bob@home.example", alice = "<sip:alice@home.example>";
  Request first(request_text("INVITE", bob, "", "", alice));
  ASSERT_EQ(c.run(first.ctx), Outcome::Respond);
  ASSERT_EQ(first.reply.status(), 407);
  const std::string challenge = first.reply.header("proxy_authenticate_str");
  ASSERT_FALSE(challenge.empty());

  const std::string right = answer(challenge, "secret", bob);
  check(c, {"§16.3 step 6, §22.3: credentials that check out",
            request_text("INVITE", bob, "Proxy-Authorization: " + right + "\r\n", "", alice),
            "fork", Outcome::Respond, 0});
  ASSERT_EQ(router_.forks, 1);
  EXPECT_EQ(router_.caller_aor, "sip:alice@home.example");
  ASSERT_EQ(router_.targets.size(), 1u);
  EXPECT_EQ(router_.targets[0].uri, "sip:bob@192.0.2.20:5060");

  // §22.3: a wrong password (to a fresh challenge) is challenged again,
  // and never reaches the router.
  Request again(request_text("INVITE", bob, "", "", alice));
  ASSERT_EQ(c.run(again.ctx), Outcome::Respond);
  const std::string fresh = again.reply.header("proxy_authenticate_str");
  const std::string wrong = answer(fresh, "guess", bob);
  ASSERT_FALSE(wrong.empty());
  check(c, {"§22.3: wrong password",
            request_text("INVITE", bob, "Proxy-Authorization: " + wrong + "\r\n", "", alice),
            "digest-auth", Outcome::Respond, 407});
  EXPECT_EQ(router_.forks, 1);
}

TEST_F(ChainPolicy, ABannedSourceIsDroppedBeforeAnythingElse) {
  const Chain c = chain(true);
  const int64_t now = static_cast<int64_t>(time(nullptr));
  for (unsigned i = 0; i < auth::FailureLimits{}.max_failures; ++i)
    bans_.failed("192.0.2.10", "alice@home.example", now);
  check(c, {"local policy: banned after repeated failures",
            request_text("OPTIONS", "sip:127.0.0.1:5060"), "source-limiter", Outcome::Stop, 0});
}

TEST_F(ChainPolicy, WithoutAuthenticationTheTargetsGoToTheRouter) {
  const Chain c = chain(false);
  bind("sip:bob@home.example", "sip:bob@192.0.2.20:5060");
  const Row rows[] = {
      {"§16.5: the AOR's binding is the target", request_text("INVITE", "sip:bob@home.example"),
       "fork", Outcome::Respond, 0},
      {"§16.5: nobody of that name (404)", request_text("INVITE", "sip:nobody@home.example"),
       "target-resolver", Outcome::Respond, 404},
      {"§16.5: a user without a binding is temporarily unavailable (480)",
       request_text("INVITE", "sip:alice@home.example"), "target-resolver", Outcome::Respond, 480},
  };
  for (const Row &row : rows) check(c, row);
  ASSERT_EQ(router_.forks, 1);
  ASSERT_EQ(router_.targets.size(), 1u);
  EXPECT_EQ(router_.targets[0].uri, "sip:bob@192.0.2.20:5060");
  EXPECT_EQ(router_.targets[0].aor, "sip:bob@home.example");
  // Authentication off: the caller is who From says.
  EXPECT_EQ(router_.caller_aor, "sip:door@home.example");
  EXPECT_EQ(router_.aor, "sip:bob@home.example");
}

TEST_F(ChainPolicy, ARegisterWaitsForTheJournalThenIsAnswered) {
  const Chain c = chain(false);
  Request r(kRegisterAlice);
  ASSERT_NE(r.sip, nullptr);
  // "A 200 means the binding survives a crash": parked until the journal holds it.
  EXPECT_EQ(c.run(r.ctx), Outcome::Wait);
  EXPECT_EQ(r.reply.status(), 0);
  EXPECT_EQ(registrar_->held_replies(), 1u);
  EXPECT_EQ(locations_.lookup("sip:alice@home.example", portier::clock::wall_s_rounded_up()).size(), 1u);
  persister_->drain();
  registrar_->release_register_replies();
  EXPECT_EQ(registrar_->held_replies(), 0u);
}

// Two houses on one proxy: a.example and b.example, each with its alice (other
// passwords), and `home` a group address in each (sip:home@*).
class TwoHouses : public ChainPolicy {
 protected:
  void SetUp() override {
    ChainPolicy::SetUp();
    std::string error;
    ASSERT_TRUE(
        users_.load_from_string("version:1\nalice@a.example clrtxt:a-secret ;\n"
                                "alice@b.example clrtxt:b-secret ;\n"
                                "bob@b.example clrtxt:bob-secret ;\n",
                                "users", &error))
        << error;
    names_ = testing::test_names({"a.example", "b.example"});
    settings_.group_addresses = {};
    settings_.group_addresses.in_every_domain = {"home"};
    bind("sip:bob@b.example", "sip:bob@192.0.2.20:5060");
  }

  // A request sent again with the credentials `user` computes for the
  // challenge its first attempt got (401 for REGISTER, 407 otherwise).
  Row answered(const Chain &c, const char *rfc, const std::string &method, const std::string &ruri,
               const std::string &headers, const std::string &from, const std::string &user,
               const std::string &password, const char *decided_by, int status) {
    Request first(request_text(method, ruri, headers, "", from));
    EXPECT_EQ(c.run(first.ctx), Outcome::Respond);
    const bool reg = method == "REGISTER";
    EXPECT_EQ(first.reply.status(), reg ? 401 : 407) << rfc;
    const std::string challenge =
        first.reply.header(reg ? "www_authenticate_str" : "proxy_authenticate_str");
    const std::string creds = answer(challenge, password, ruri, user, method.c_str());
    EXPECT_FALSE(creds.empty()) << rfc;
    return {
        rfc,
        request_text(method, ruri,
                     headers + (reg ? "Authorization: " : "Proxy-Authorization: ") + creds + "\r\n",
                     "", from),
        decided_by,
        // The registrar's 200 waits for the journal.
        std::string(decided_by) == "registrar" && status == 0 ? Outcome::Wait : Outcome::Respond,
        status};
  }
};

TEST_F(TwoHouses, EachHouseIsItsOwnWorld) {
  const Chain c = chain(true);
  const std::string reg_a = "To: <sip:alice@a.example>\r\nContact: <sip:alice@192.0.2.10:5062>\r\n";
  const std::string reg_b_alice =
      "To: <sip:alice@b.example>\r\nContact: <sip:alice@192.0.2.10:5062>\r\n";
  const Row rows[] = {
      {"§10.3 step 1 (local policy): REGISTER for a domain not served: 403, no challenge",
       request_text("REGISTER", "sip:c.example",
                    "To: <sip:alice@c.example>\r\nContact: <sip:alice@192.0.2.10:5062>\r\n", "",
                    "<sip:alice@c.example>"),
       "domain-filter", Outcome::Respond, 403, "Domain not served here"},
      {"§10.3 step 1: an AOR of a domain not served, sent to a served one: 403",
       request_text("REGISTER", "sip:a.example",
                    "To: <sip:alice@c.example>\r\nContact: <sip:alice@192.0.2.10:5062>\r\n", "",
                    "<sip:alice@c.example>"),
       "registrar", Outcome::Respond, 403, "Domain not served here"},
      {"§22.1: the realm is the AOR's domain: b's alice is challenged in b.example",
       request_text("REGISTER", "sip:b.example", reg_b_alice, "", "<sip:alice@b.example>"),
       "registrar", Outcome::Respond, 401},
      answered(c, "§10.3 step 3: a's alice registers with a's password", "REGISTER",
               "sip:a.example", reg_a, "<sip:alice@a.example>", "alice", "a-secret", "registrar",
               0 /* parked: the journal */),
      answered(c, "§22.4: a's password under b's realm is a wrong password: challenged again",
               "REGISTER", "sip:b.example", reg_b_alice, "<sip:alice@b.example>", "alice",
               "a-secret", "registrar", 401),
      answered(c,
               "§10.3 step 4: a's alice, proved (username alice@a.example), may not register "
               "b's alice: 403",
               "REGISTER", "sip:b.example", reg_b_alice, "<sip:alice@b.example>", "alice@a.example",
               "a-secret", "registrar", 403),
      answered(c, "§16.3 step 6 + local policy: a's alice calls b's bob: 403", "INVITE",
               "sip:bob@b.example", "", "<sip:alice@a.example>", "alice", "a-secret",
               "domain-isolation", 403),
      answered(c, "§22.3, §10.3 step 4 in spirit: a forged From of b with a's credentials: 403",
               "INVITE", "sip:bob@b.example", "", "<sip:alice@b.example>", "alice@a.example",
               "a-secret", "digest-auth", 403),
      answered(c, "§16.5: b's alice rings b's home group", "INVITE", "sip:home@b.example", "",
               "<sip:alice@b.example>", "alice", "b-secret", "fork", 0),
  };
  for (const Row &row : rows) check(c, row);
  ASSERT_EQ(router_.forks, 1);
  ASSERT_EQ(router_.targets.size(), 1u);
  EXPECT_EQ(router_.targets[0].aor, "sip:bob@b.example");
  EXPECT_TRUE(locations_.lookup("sip:alice@b.example", portier::clock::wall_s()).empty());
  persister_->drain();
  registrar_->release_register_replies();
}

TEST_F(TwoHouses, InterDomainRequestsWhenAllowed) {
  settings_.inter_domain_allowed = true;
  const Chain c = chain(true);
  check(c, answered(c, "local policy: inter-domain-requests = allow", "INVITE", "sip:bob@b.example",
                    "", "<sip:alice@a.example>", "alice", "a-secret", "fork", 0));
  ASSERT_EQ(router_.forks, 1);
  EXPECT_EQ(router_.caller_aor, "sip:alice@a.example");
}

}  // namespace
}  // namespace portier::proxy::chain
