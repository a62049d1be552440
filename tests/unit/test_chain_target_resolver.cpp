// chain::TargetResolver: RFC 3261 §16.5 request targets from a parsed request
// and a real LocationStore.
#include <gtest/gtest.h>

#include "chain_test_util.h"
#include "proxy/chain/target_resolver.h"

namespace portier::proxy::chain {
namespace {

using testing::Request;
using testing::request_text;

class TargetResolverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(users_.load_from_string(
        "version:1\ncarol@home.example clrtxt:x ;\nloop@home.example clrtxt:x ;\n", "users",
        &error));
    ASSERT_TRUE(statics_.load_from_string(
        "sip:flat@home.example sip:mon1@home.example,sip:door@home.example\n"
        "sip:mixed@home.example sip:mon1@home.example,sip:mon1@b.example\n"
        "sip:pair@* sip:mon1@*,sip:mon2@*\n",
        "static", &error));
    bind("sip:mon1@home.example", "sip:mon1@192.0.2.21:5060", "udp:192.0.2.21:5060");
    // Behind NAT: registered from another address than its contact names.
    bind("sip:mon2@home.example", "sip:mon2@10.0.0.22:5060", "udp:203.0.113.5:40211");
    bind("sip:door@home.example", "sip:door@192.0.2.10:5062", "udp:192.0.2.10:5062");
    // A contact naming the proxy itself: never a target.
    bind("sip:loop@home.example", "sip:loop@127.0.0.1:5060", "udp:192.0.2.30:5060");
    // A second house on the same proxy.
    bind("sip:mon1@b.example", "sip:mon1@192.0.2.41:5060", "udp:192.0.2.41:5060");
    bind("sip:mon2@b.example", "sip:mon2@192.0.2.42:5060", "udp:192.0.2.42:5060");
    groups_.aors = {"sip:home@home.example"};
    groups_.in_every_domain = {"all"};
  }

  void bind(const std::string &aor, const std::string &contact, const std::string &received) {
    ASSERT_TRUE(testing::bind(locations_, aor, contact, received, now_));
  }

  // The targets' URIs (and next hops, after a '>') in order, or the status.
  std::string resolve(const std::string &ruri, const std::string &caller_aor) {
    Request r(request_text("INVITE", ruri));
    r.ctx.caller_aor = caller_aor;
    r.ctx.cloud_flow = cloud_flow_;
    TargetResolver resolver(names_, groups_, inter_domain_allowed_, locations_, statics_, users_);
    if (!cloud_.empty())
      resolver.set_cloud_flow([this](const std::string &domain) {
        return domain == "home.example" ? cloud_ : std::string();
      });
    if (resolver.resolve(r.ctx, now_) != Outcome::Continue) return std::to_string(r.reply.status());
    std::string out;
    for (const Target &t : r.ctx.targets)
      out += (out.empty() ? "" : " ") + t.uri + (t.next_hop.empty() ? "" : ">" + t.next_hop) +
             (t.flow_domain.empty() ? "" : "^" + t.flow_domain);
    return out;
  }

  int64_t now_ = 1'000'000;
  LocalNames names_ = testing::test_names({"home.example", "b.example"});
  GroupAddresses groups_;
  bool inter_domain_allowed_ = false;
  std::string cloud_;       // home.example's flow up to the cloud, while registered
  std::string cloud_flow_;  // the request came down that flow (RequestContext)
  LocationStore locations_{LocationStore::Limits{}};
  StaticRecords statics_;
  auth::UsersFile users_;
};

TEST_F(TargetResolverTest, Table) {
  struct Row {
    const char *rfc;
    const char *ruri;
    const char *caller;
    const char *expected;
  };
  const Row rows[] = {
      {"§16.5: an AOR's binding", "sip:mon1@home.example", "", "sip:mon1@192.0.2.21:5060"},
      {"§16.5, RFC 3581 in spirit: a NATed binding goes where its REGISTER came from",
       "sip:mon2@home.example", "", "sip:mon2@10.0.0.22:5060>sip:203.0.113.5:40211;transport=udp"},
      {"§16.5: a static record lists its AORs, the caller left out", "sip:flat@home.example",
       "sip:door@home.example", "sip:mon1@192.0.2.21:5060"},
      {"§16.5: a group address rings every AOR of its domain but the caller's",
       "sip:home@home.example", "sip:door@home.example",
       "sip:mon1@192.0.2.21:5060 sip:mon2@10.0.0.22:5060>sip:203.0.113.5:40211;transport=udp"},
      {"§16.3 step 4 in spirit: a binding naming us is no target", "sip:loop@home.example", "",
       "480"},
      {"§16.5: a known user without a binding (480)", "sip:carol@home.example", "", "480"},
      {"§16.5: nobody of that name (404)", "sip:nobody@home.example", "", "404"},
      {"§16.5: no user part names no AOR (404)", "sip:home.example", "", "404"},
      // One house per domain.
      {"§16.5: sip:all@* is a group in each served domain, ringing that domain's devices",
       "sip:all@b.example", "sip:mon2@b.example", "sip:mon1@192.0.2.41:5060"},
      {"§16.5: sip:all@* in the other house rings its own devices only", "sip:all@home.example",
       "sip:door@home.example",
       "sip:mon1@192.0.2.21:5060 sip:mon2@10.0.0.22:5060>sip:203.0.113.5:40211;transport=udp"},
      {"§16.5: a full group address is of its own domain only (404 elsewhere)",
       "sip:home@b.example", "", "404"},
      {"§16.5: a static record rings its own domain's AORs only (isolation)",
       "sip:mixed@home.example", "", "sip:mon1@192.0.2.21:5060"},
      {"§16.5: a sip:ALIAS@* static record rings its AORs in the request's domain",
       "sip:pair@b.example", "", "sip:mon1@192.0.2.41:5060 sip:mon2@192.0.2.42:5060"},
      {"§16.5: ... and in the other house, that house's", "sip:pair@home.example", "",
       "sip:mon1@192.0.2.21:5060 sip:mon2@10.0.0.22:5060>sip:203.0.113.5:40211;transport=udp"},
      {"§16.5: a sip:ALIAS@* record in a domain not served names nobody (404)",
       "sip:pair@other.example", "", "404"},
  };
  for (const Row &row : rows) {
    SCOPED_TRACE(row.rfc);
    EXPECT_EQ(resolve(row.ruri, row.caller), row.expected);
  }
}

TEST_F(TargetResolverTest, StaticRecordCrossesDomainsWhenAllowed) {
  inter_domain_allowed_ = true;
  EXPECT_EQ(resolve("sip:mixed@home.example", ""),
            "sip:mon1@192.0.2.21:5060 sip:mon1@192.0.2.41:5060");
}

// Issue 15: home.example registered to a cloud. Its group address rings the
// house's devices and one branch up the flow, Request-URI unchanged, for the
// cloud to fork to the residents' phones (the door's video crosses the
// uplink once). While the cloud is unreachable the group rings the house
// alone; a request that came down the flow never goes back up.
TEST_F(TargetResolverTest, GroupGoesUpTheCloudFlowOnce) {
  const std::string house = "sip:mon1@192.0.2.21:5060 sip:mon2@10.0.0.22:5060>"
                            "sip:203.0.113.5:40211;transport=udp";
  EXPECT_EQ(resolve("sip:home@home.example", "sip:door@home.example"), house);
  cloud_ = "sips:cloud.test;maddr=198.51.100.1";
  EXPECT_EQ(resolve("sip:home@home.example", "sip:door@home.example"),
            house + " sip:home@home.example>" + cloud_ + "^home.example");
  // Not a group: the house's own devices only.
  EXPECT_EQ(resolve("sip:mon1@home.example", "sip:door@home.example"), "sip:mon1@192.0.2.21:5060");
  cloud_flow_ = "home.example";
  EXPECT_EQ(resolve("sip:home@home.example", "sip:alice@cloud.test"),
            "sip:door@192.0.2.10:5062 " + house);
}

// reg-domains = * (and auth-domains = *): the users file's domains, never any
// domain a request names; listed names beside it are kept, lower-case.
// Domain registrations (issue 15): a reg-domain is never a house's; a
// registered house domain whose flow is not open gets 480 (RFC 5626 §5.3),
// never a new connection to the address it came from.
TEST_F(TargetResolverTest, HouseDomainWithoutOpenFlow) {
  bind("sip:house.example", "sips:house.example;transport=tls", "tls:198.51.100.7:40001");
  HouseDomains off(HouseDomainSettings{}, names_, locations_);
  EXPECT_FALSE(off.may_register("house.example"));
  HouseDomains house(HouseDomainSettings{true, false}, names_, locations_);
  EXPECT_TRUE(house.may_register("house.example"));
  EXPECT_FALSE(house.may_register("home.example"));
  EXPECT_FALSE(house.may_register("B.Example"));
  EXPECT_FALSE(house.may_register(""));
  EXPECT_TRUE(house.is_registered("house.example", now_));
  EXPECT_FALSE(house.is_registered("other.example", now_));
  EXPECT_FALSE(house.flow_open("tls:198.51.100.7:40001"));

  Request r(request_text("INVITE", "sip:door@house.example"));
  r.ctx.caller_aor = "sip:carol@home.example";
  TargetResolver resolver(names_, groups_, inter_domain_allowed_, locations_, statics_, users_);
  resolver.set_house_domains(&house);
  ASSERT_EQ(resolver.resolve(r.ctx, now_), Outcome::Respond);
  EXPECT_EQ(r.reply.status(), 480);
  EXPECT_TRUE(r.ctx.targets.empty());
}

TEST(LocalNamesDomains, StarIsTheUsersFilesDomains) {
  const LocalNames::Domains users = {"a.example", "b.example"};
  EXPECT_EQ(LocalNames::expand({"*"}, users), users);
  EXPECT_EQ(LocalNames::expand({"*", "Extra.Example"}, users),
            (LocalNames::Domains{"a.example", "b.example", "extra.example"}));
  EXPECT_EQ(LocalNames::expand({"home.example"}, users), LocalNames::Domains{"home.example"});
  LocalNames names = testing::test_names();
  names.set_domains(LocalNames::expand({"*"}, users), LocalNames::expand({"*"}, users));
  EXPECT_TRUE(names.is_reg_domain("A.Example"));
  EXPECT_TRUE(names.is_auth_domain("b.example"));
  EXPECT_FALSE(names.is_reg_domain("home.example"));  // no longer served
  EXPECT_FALSE(names.is_reg_domain("c.example"));
  EXPECT_FALSE(names.is_reg_domain("*"));
}

TEST(GroupAddressesConfig, WildcardAndFullEntries) {
  GroupAddresses g;
  EXPECT_EQ(parse_group_addresses({"sip:home@*", "<sip:door-bell@Home.Example>"}, &g), "");
  EXPECT_EQ(g.in_every_domain.count("home"), 1u);
  EXPECT_EQ(g.aors.count("sip:door-bell@home.example"), 1u);
  EXPECT_TRUE(g.contains("sip:home@a.example", "home", true));
  EXPECT_FALSE(g.contains("sip:home@a.example", "home", false));  // not a served domain
  EXPECT_NE(parse_group_addresses({"sip:@*"}, &g), "");
  EXPECT_NE(parse_group_addresses({"home@*"}, &g), "");
  EXPECT_NE(parse_group_addresses({"sip:home@a*"}, &g), "");
}

}  // namespace
}  // namespace portier::proxy::chain
