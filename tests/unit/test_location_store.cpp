// The registrar's location service against RFC 3261 §10.3 and RFC 5626 instance ids.
#include <gtest/gtest.h>

#include <climits>
#include <string>
#include <vector>

#include "proxy/location_store.h"

namespace portier::proxy {
namespace {

constexpr int64_t kNow = 1700000000;
const std::string kAlice = "sip:alice@home.example";

ContactSpec contact(std::string uri, std::optional<int> expires = std::nullopt,
                    std::string instance = "", std::optional<int> q_milli = std::nullopt) {
  ContactSpec c;
  c.uri = std::move(uri);
  c.expires = expires;
  c.instance = std::move(instance);
  c.q_milli = q_milli;
  return c;
}

RegisterRequest reg(std::vector<ContactSpec> contacts, std::string call_id, uint32_t cseq,
                    int64_t now = kNow, const std::string &aor = kAlice) {
  RegisterRequest r;
  r.aor = aor;
  r.contacts = std::move(contacts);
  r.call_id = std::move(call_id);
  r.cseq = cseq;
  r.now = now;
  r.user_agent = "test-ua/1.0";
  r.received = "udp:127.0.0.1:5070";
  return r;
}

RegisterRequest wildcard(std::string call_id, uint32_t cseq, std::optional<int> expires_header) {
  RegisterRequest r = reg({}, std::move(call_id), cseq);
  r.wildcard = true;
  r.expires_header = expires_header;
  return r;
}

std::vector<std::string> contacts_of(const std::vector<Binding> &bindings) {
  std::vector<std::string> out;
  for (const Binding &b : bindings) out.push_back(b.contact);
  return out;
}

// What the registrar journals and reports without looking the AOR up again: the
// count before the request, and after a change the record as stored (registration
// order, not the 200's q order), or none once the request removed it.
// A reload removes the AOR of a user or domain no longer served: every binding
// at once, the domain's group no longer lists it, and it counts as a change.
TEST(LocationStore, RemoveAorTakesEveryBindingAndTheDomainIndexEntry) {
  LocationStore s;
  ASSERT_EQ(s.apply(reg({contact("sip:a@192.0.2.1"), contact("sip:a@192.0.2.2")}, "c1", 1)).status,
            200);
  ASSERT_EQ(
      s.apply(reg({contact("sip:b@192.0.2.3")}, "c2", 1, kNow, "sip:bob@home.example")).status,
      200);
  const uint64_t generation = s.generation();
  EXPECT_TRUE(s.remove_aor(kAlice));
  EXPECT_GT(s.generation(), generation);
  EXPECT_TRUE(s.lookup(kAlice, kNow).empty());
  EXPECT_EQ(s.aors_in_domain("home.example", kNow),
            std::vector<std::string>{"sip:bob@home.example"});
  EXPECT_FALSE(s.remove_aor(kAlice));
}

TEST(LocationStore, OutcomeCarriesTheCountBeforeAndTheStoredRecord) {
  LocationStore store;
  RegisterOutcome out =
      store.apply(reg({contact("sip:alice@127.0.0.1:5070", 600, "", 500)}, "cid-1", 1));
  EXPECT_EQ(out.bindings_before, 0u);
  ASSERT_NE(out.record, nullptr);
  EXPECT_EQ(out.record, &store.records().at(kAlice));
  out = store.apply(reg({contact("sip:alice@127.0.0.1:5071", 600, "", 1000)}, "cid-2", 1));
  EXPECT_EQ(out.bindings_before, 1u);
  ASSERT_NE(out.record, nullptr);
  EXPECT_EQ(contacts_of(*out.record),
            (std::vector<std::string>{"sip:alice@127.0.0.1:5070", "sip:alice@127.0.0.1:5071"}));
  EXPECT_EQ(contacts_of(out.bindings),
            (std::vector<std::string>{"sip:alice@127.0.0.1:5071", "sip:alice@127.0.0.1:5070"}));
  out = store.apply(wildcard("cid-3", 1, 0));
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(out.bindings_before, 2u);
  EXPECT_EQ(out.record, nullptr);
  EXPECT_TRUE(store.records().empty());
}

TEST(LocationStore, Rfc3261_10_3_Step7_AddsBindingWithEveryField) {
  LocationStore store;
  RegisterOutcome out = store.apply(reg({contact("sip:alice@127.0.0.1:5070")}, "cid-1", 7));
  ASSERT_EQ(out.status, 200);
  ASSERT_EQ(out.bindings.size(), 1u);
  const Binding &b = out.bindings[0];
  EXPECT_EQ(b.contact, "sip:alice@127.0.0.1:5070");
  EXPECT_EQ(b.instance, "");
  EXPECT_EQ(b.call_id, "cid-1");
  EXPECT_EQ(b.cseq, 7u);
  EXPECT_EQ(b.q_milli, 1000);
  EXPECT_EQ(b.expires_at, kNow + 3600);  // default_expires
  EXPECT_EQ(b.user_agent, "test-ua/1.0");
  EXPECT_EQ(b.received, "udp:127.0.0.1:5070");
  EXPECT_EQ(store.binding_count(), 1u);
  EXPECT_EQ(store.lookup(kAlice, kNow).size(), 1u);
}

TEST(LocationStore, Rfc3261_10_3_Step6_ExpiresParamThenHeaderThenDefault) {
  LocationStore::Limits limits;
  limits.default_expires = 1800;
  LocationStore store(limits);
  RegisterRequest r =
      reg({contact("sip:a@10.0.0.1", 120), contact("sip:b@10.0.0.2"), contact("sip:c@10.0.0.3", 0)},
          "cid", 1);
  r.expires_header = 600;
  RegisterOutcome out = store.apply(r);
  ASSERT_EQ(out.status, 200);
  std::vector<Binding> now = store.lookup(kAlice, kNow);
  ASSERT_EQ(now.size(), 2u);  // c asked for 0: nothing to add
  // Same q, so the most recent (the later contact of the request) comes first.
  EXPECT_EQ(now[0].contact, "sip:b@10.0.0.2");
  EXPECT_EQ(now[0].expires_at, kNow + 600);
  EXPECT_EQ(now[1].contact, "sip:a@10.0.0.1");
  EXPECT_EQ(now[1].expires_at, kNow + 120);
  store.apply(reg({contact("sip:d@10.0.0.4")}, "cid", 2));
  std::vector<Binding> all = store.lookup(kAlice, kNow);
  ASSERT_EQ(all.front().contact, "sip:d@10.0.0.4");
  EXPECT_EQ(all.front().expires_at, kNow + 1800);
}

TEST(LocationStore, Rfc3261_10_3_Step6_IntervalTooBriefIs423AndChangesNothing) {
  LocationStore store;  // min_expires 60
  store.apply(reg({contact("sip:alice@10.0.0.1", 3600)}, "cid", 1));
  const uint64_t generation = store.generation();
  RegisterOutcome out = store.apply(
      reg({contact("sip:alice@10.0.0.1", 0), contact("sip:alice@10.0.0.2", 30)}, "cid", 2));
  EXPECT_EQ(out.status, 423);
  EXPECT_EQ(out.min_expires, 60);
  EXPECT_TRUE(out.bindings.empty());
  EXPECT_EQ(store.generation(), generation);
  std::vector<Binding> left = store.lookup(kAlice, kNow);
  ASSERT_EQ(left.size(), 1u);  // the removal in the same request was not applied
  EXPECT_EQ(left[0].cseq, 1u);
}

TEST(LocationStore, Rfc3261_10_3_Step6_ExpiresAtMinimumIsAccepted) {
  LocationStore store;
  EXPECT_EQ(store.apply(reg({contact("sip:alice@10.0.0.1", 60)}, "cid", 1)).status, 200);
}

TEST(LocationStore, Rfc3261_10_3_Step6_LongExpiresIsCutToMaximum) {
  LocationStore store;  // max_expires 3600
  RegisterOutcome out = store.apply(reg({contact("sip:alice@10.0.0.1", 86400)}, "cid", 1));
  ASSERT_EQ(out.bindings.size(), 1u);
  EXPECT_EQ(out.bindings[0].expires_at, kNow + 3600);
}

TEST(LocationStore, NegativeExpiresIs400) {
  LocationStore store;
  RegisterRequest r = reg({contact("sip:alice@10.0.0.1")}, "cid", 1);
  r.expires_header = -5;
  EXPECT_EQ(store.apply(r).status, 400);
  EXPECT_EQ(store.binding_count(), 0u);
}

TEST(LocationStore, Rfc3261_10_3_Step7_ExpiresZeroRemovesBindingAndEmptyAor) {
  LocationStore store;
  store.apply(reg({contact("sip:alice@10.0.0.1")}, "cid", 1));
  const uint64_t generation = store.generation();
  RegisterOutcome out = store.apply(reg({contact("sip:alice@10.0.0.1", 0)}, "cid", 2));
  EXPECT_EQ(out.status, 200);
  EXPECT_TRUE(out.bindings.empty());
  EXPECT_TRUE(store.records().empty());
  EXPECT_GT(store.generation(), generation);
  EXPECT_TRUE(store.aors_in_domain("home.example", kNow).empty());
}

TEST(LocationStore, Rfc3261_10_3_Step7_RemovingUnknownBindingChangesNothing) {
  LocationStore store;
  const uint64_t generation = store.generation();
  RegisterOutcome out = store.apply(reg({contact("sip:alice@10.0.0.1", 0)}, "cid", 1));
  EXPECT_EQ(out.status, 200);
  EXPECT_TRUE(store.records().empty());
  EXPECT_EQ(store.generation(), generation);
}

TEST(LocationStore, Rfc3261_10_3_Step7_RefreshUpdatesInPlace) {
  LocationStore store;
  store.apply(reg({contact("sip:alice@10.0.0.1:5070;transport=udp", 600)}, "cid", 1));
  // §19.1.4: host and parameters compare case-insensitively.
  RegisterRequest r =
      reg({contact("sip:alice@10.0.0.1:5070;Transport=UDP", 900, "", 500)}, "cid", 2, kNow + 100);
  r.user_agent = "test-ua/2.0";
  r.received = "udp:127.0.0.1:6000";
  RegisterOutcome out = store.apply(r);
  ASSERT_EQ(out.bindings.size(), 1u);
  EXPECT_EQ(out.bindings[0].expires_at, kNow + 100 + 900);
  EXPECT_EQ(out.bindings[0].cseq, 2u);
  EXPECT_EQ(out.bindings[0].q_milli, 500);
  EXPECT_EQ(out.bindings[0].user_agent, "test-ua/2.0");
  EXPECT_EQ(out.bindings[0].received, "udp:127.0.0.1:6000");
  EXPECT_EQ(store.binding_count(), 1u);
}

TEST(LocationStore, Rfc3261_19_1_4_HostCaseInsensitiveUserCaseSensitive) {
  LocationStore store;
  store.apply(reg({contact("sip:alice@Host.Example:5070")}, "cid", 1));
  store.apply(reg({contact("SIP:alice@host.example:5070")}, "cid", 2));
  EXPECT_EQ(store.binding_count(), 1u);
  store.apply(reg({contact("sip:Alice@host.example:5070")}, "cid", 3));
  EXPECT_EQ(store.binding_count(), 2u);
  store.apply(reg({contact("sip:alice@host.example:5071")}, "cid", 4));
  EXPECT_EQ(store.binding_count(), 3u);
}

TEST(LocationStore, Rfc5626_SameInstanceReplacesBindingWithNewUri) {
  LocationStore store;
  const std::string instance = "<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";
  store.apply(reg({contact("sip:alice@10.0.0.1:5070", 3600, instance)}, "cid-a", 1));
  store.apply(reg({contact("sip:bob@10.0.0.9")}, "cid-b", 1));
  // The device came back from another address, with a new Call-ID and a lower
  // CSeq: it is still the same device.
  RegisterOutcome out = store.apply(reg(
      {contact("sip:alice@10.0.0.2:6000", 3600, "<URN:UUID:F81D4FAE-7DEC-11D0-A765-00A0C91E6BF6>")},
      "cid-new", 1, kNow + 10));
  ASSERT_EQ(out.status, 200);
  EXPECT_EQ(contacts_of(out.bindings),
            (std::vector<std::string>{"sip:alice@10.0.0.2:6000", "sip:bob@10.0.0.9"}));
  EXPECT_EQ(store.binding_count(), 2u);
}

TEST(LocationStore, Rfc5626_DifferentInstancesSameUriFallBackToUri) {
  LocationStore store;
  store.apply(reg({contact("sip:alice@10.0.0.1", 3600, "<urn:uuid:1>")}, "cid", 1));
  store.apply(reg({contact("sip:alice@10.0.0.1", 3600, "<urn:uuid:2>")}, "cid", 2));
  std::vector<Binding> now = store.lookup(kAlice, kNow);
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].instance, "<urn:uuid:2>");
}

TEST(LocationStore, Rfc3261_10_3_Step7_SameCallIdOldCSeqIs500) {
  struct Case {
    const char *call_id;
    uint32_t cseq;
    int status;
  };
  const Case cases[] = {
      {"cid", 4, 500},    // an older request that arrived late
      {"cid", 6, 200},    // the next one
      {"other", 1, 200},  // a new Call-ID (the UA restarted): CSeq starts over
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(std::string(c.call_id) + " " + std::to_string(c.cseq));
    LocationStore store;
    store.apply(reg({contact("sip:alice@10.0.0.1", 600)}, "cid", 5));
    const uint64_t generation = store.generation();
    RegisterOutcome out =
        store.apply(reg({contact("sip:alice@10.0.0.1", 1200)}, c.call_id, c.cseq, kNow + 1));
    EXPECT_EQ(out.status, c.status);
    std::vector<Binding> now = store.lookup(kAlice, kNow + 1);
    ASSERT_EQ(now.size(), 1u);
    if (c.status == 500) {
      EXPECT_EQ(out.phrase, "Out of order");
      EXPECT_EQ(now[0].expires_at, kNow + 600);
      EXPECT_EQ(store.generation(), generation);
    } else {
      EXPECT_EQ(now[0].expires_at, kNow + 1 + 1200);
      EXPECT_EQ(now[0].call_id, c.call_id);
    }
  }
}

// The registrar is stateless (no transaction absorbs a UDP retransmission), so
// the same Call-ID and CSeq again is the stored request retransmitted: it is
// answered 200 with the bindings as they are, and changes nothing (§10.3 step 7
// keeps the newer state; §17.2.2 would have absorbed it in a transaction).
TEST(LocationStore, Rfc3261_10_3_Step7_RetransmissionChangesNothing) {
  LocationStore store;
  store.apply(reg({contact("sip:alice@10.0.0.1", 600)}, "cid", 5));
  const uint64_t generation = store.generation();
  RegisterOutcome out = store.apply(reg({contact("sip:alice@10.0.0.1", 1200)}, "cid", 5, kNow + 1));
  EXPECT_EQ(out.status, 200);
  ASSERT_EQ(out.bindings.size(), 1u);
  EXPECT_EQ(out.bindings[0].expires_at, kNow + 600);
  EXPECT_EQ(store.generation(), generation);
  // A wildcard with the stored CSeq is a retransmission too: nothing removed.
  EXPECT_EQ(store.apply(wildcard("cid", 5, 0)).status, 200);
  EXPECT_EQ(store.binding_count(), 1u);
}

TEST(LocationStore, Rfc3261_10_3_Step7_RequestIsAtomic) {
  LocationStore store;
  store.apply(reg({contact("sip:alice@10.0.0.1")}, "cid", 5));
  // The new contact is fine, the second one is out of order: neither is applied.
  RegisterOutcome out =
      store.apply(reg({contact("sip:alice@10.0.0.2"), contact("sip:alice@10.0.0.1", 0)}, "cid", 4));
  EXPECT_EQ(out.status, 500);
  EXPECT_EQ(contacts_of(store.lookup(kAlice, kNow)),
            (std::vector<std::string>{"sip:alice@10.0.0.1"}));
}

TEST(LocationStore, Rfc3261_10_3_Step7_ExpiredBindingDoesNotCount) {
  LocationStore store;
  store.apply(reg({contact("sip:alice@10.0.0.1", 60)}, "cid", 9));
  RegisterOutcome out = store.apply(reg({contact("sip:alice@10.0.0.1", 60)}, "cid", 3, kNow + 61));
  EXPECT_EQ(out.status, 200);
  ASSERT_EQ(out.bindings.size(), 1u);
  EXPECT_EQ(out.bindings[0].cseq, 3u);
}

TEST(LocationStore, Rfc3261_10_3_Step5_WildcardRemovesEveryBinding) {
  LocationStore store;
  store.apply(reg({contact("sip:alice@10.0.0.1"), contact("sip:alice@10.0.0.2")}, "cid", 1));
  store.apply(reg({contact("sip:bob@10.0.0.3")}, "cid", 1, kNow, "sip:bob@home.example"));
  const uint64_t generation = store.generation();
  RegisterOutcome out = store.apply(wildcard("cid", 2, 0));
  EXPECT_EQ(out.status, 200);
  EXPECT_TRUE(out.bindings.empty());
  EXPECT_TRUE(store.lookup(kAlice, kNow).empty());
  EXPECT_EQ(store.lookup("sip:bob@home.example", kNow).size(), 1u);
  EXPECT_GT(store.generation(), generation);
  EXPECT_EQ(store.aors_in_domain("home.example", kNow),
            (std::vector<std::string>{"sip:bob@home.example"}));
}

TEST(LocationStore, Rfc3261_10_3_Step5_InvalidWildcardIs400) {
  struct Case {
    const char *name;
    bool with_contact;
    std::optional<int> expires_header;
  };
  const Case cases[] = {
      {"no Expires header", false, std::nullopt},
      {"non-zero Expires", false, 3600},
      {"with another contact", true, 0},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.name);
    LocationStore store;
    store.apply(reg({contact("sip:alice@10.0.0.1")}, "cid", 1));
    RegisterRequest r = wildcard("cid", 2, c.expires_header);
    if (c.with_contact) r.contacts.push_back(contact("sip:alice@10.0.0.2"));
    RegisterOutcome out = store.apply(r);
    EXPECT_EQ(out.status, 400);
    EXPECT_EQ(out.phrase, "Invalid wildcard Contact");
    EXPECT_EQ(store.binding_count(), 1u);
  }
}

TEST(LocationStore, Rfc3261_10_3_Step5_WildcardOutOfOrderIs500) {
  LocationStore store;
  store.apply(reg({contact("sip:alice@10.0.0.1")}, "cid-a", 1));
  store.apply(reg({contact("sip:alice@10.0.0.2")}, "cid-b", 8));
  EXPECT_EQ(store.apply(wildcard("cid-b", 7, 0)).status, 500);
  EXPECT_EQ(store.binding_count(), 2u);
  // Another Call-ID removes everything whatever its CSeq.
  EXPECT_EQ(store.apply(wildcard("cid-c", 1, 0)).status, 200);
  EXPECT_EQ(store.binding_count(), 0u);
}

TEST(LocationStore, Rfc3261_10_3_Step8_FetchListsBindingsAndChangesNothing) {
  LocationStore store;
  store.apply(reg({contact("sip:alice@10.0.0.1")}, "cid", 1));
  store.apply(reg({contact("sip:alice@10.0.0.2")}, "cid2", 1));
  const uint64_t generation = store.generation();
  RegisterOutcome out = store.apply(reg({}, "cid", 1));  // even an old CSeq: nothing to order
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(contacts_of(out.bindings),
            (std::vector<std::string>{"sip:alice@10.0.0.2", "sip:alice@10.0.0.1"}));
  EXPECT_EQ(store.generation(), generation);
  EXPECT_TRUE(store.apply(reg({}, "x", 1, kNow, "sip:nobody@home.example")).bindings.empty());
  EXPECT_EQ(store.generation(), generation);
  EXPECT_EQ(store.records().size(), 1u);
}

TEST(LocationStore, Rfc3261_10_3_Step8_OutcomeListsEveryBindingOfTheAor) {
  LocationStore store;
  store.apply(reg({contact("sip:alice@10.0.0.1")}, "phone", 1));
  RegisterOutcome out = store.apply(reg({contact("sip:alice@10.0.0.2")}, "tablet", 1));
  EXPECT_EQ(contacts_of(out.bindings),
            (std::vector<std::string>{"sip:alice@10.0.0.2", "sip:alice@10.0.0.1"}));
}

TEST(LocationStore, GenerationMovesOnlyOnChange) {
  LocationStore store;
  uint64_t g = store.generation();
  store.apply(reg({contact("sip:alice@10.0.0.1")}, "cid", 1));
  EXPECT_EQ(store.generation(), g + 1);
  g = store.generation();
  store.apply(reg({contact("sip:alice@10.0.0.1")}, "cid", 2));  // a refresh is a change
  EXPECT_EQ(store.generation(), g + 1);
  g = store.generation();
  store.apply(reg({contact("sip:alice@10.0.0.1")}, "cid", 2));      // 500
  store.apply(reg({contact("sip:alice@10.0.0.1", 10)}, "cid", 3));  // 423
  store.apply(wildcard("cid", 3, 60));                              // 400
  store.lookup(kAlice, kNow);
  EXPECT_EQ(store.generation(), g);
}

TEST(LocationStore, LookupOrdersByQThenMostRecent) {
  LocationStore store;
  store.apply(reg({contact("sip:a@10.0.0.1", 3600, "", 500)}, "a", 1));
  store.apply(reg({contact("sip:b@10.0.0.2")}, "b", 1, kNow + 1));
  store.apply(reg({contact("sip:c@10.0.0.3")}, "c", 1, kNow + 2));
  store.apply(reg({contact("sip:d@10.0.0.4", 3600, "", 0)}, "d", 1, kNow + 3));
  EXPECT_EQ(contacts_of(store.lookup(kAlice, kNow + 4)),
            (std::vector<std::string>{"sip:c@10.0.0.3", "sip:b@10.0.0.2", "sip:a@10.0.0.1",
                                      "sip:d@10.0.0.4"}));
  // b refreshes: it is now the most recent of the q=1 bindings.
  store.apply(reg({contact("sip:b@10.0.0.2")}, "b", 2, kNow + 5));
  EXPECT_EQ(contacts_of(store.lookup(kAlice, kNow + 6)),
            (std::vector<std::string>{"sip:b@10.0.0.2", "sip:c@10.0.0.3", "sip:a@10.0.0.1",
                                      "sip:d@10.0.0.4"}));
}

TEST(LocationStore, LookupHidesExpiredBindingsAndPurgeRemovesThem) {
  LocationStore store;
  store.apply(reg({contact("sip:alice@10.0.0.1", 60)}, "cid", 1));
  store.apply(reg({contact("sip:alice@10.0.0.2", 120)}, "cid2", 1));
  store.apply(reg({contact("sip:bob@10.0.0.3", 60)}, "cid3", 1, kNow, "sip:bob@home.example"));
  EXPECT_EQ(store.lookup(kAlice, kNow + 59).size(), 2u);
  // expires_at is the first second the binding is gone.
  EXPECT_EQ(contacts_of(store.lookup(kAlice, kNow + 60)),
            (std::vector<std::string>{"sip:alice@10.0.0.2"}));
  EXPECT_EQ(store.binding_count(), 3u);  // lookup does not remove

  uint64_t g = store.generation();
  EXPECT_EQ(store.purge_expired(kNow + 59), 0u);
  EXPECT_EQ(store.generation(), g);
  EXPECT_EQ(store.purge_expired(kNow + 60), 2u);
  EXPECT_EQ(store.generation(), g + 1);
  EXPECT_EQ(store.binding_count(), 1u);
  EXPECT_EQ(store.records().count("sip:bob@home.example"), 0u);  // empty AOR dropped
  EXPECT_EQ(store.aors_in_domain("home.example", kNow + 60), (std::vector<std::string>{kAlice}));
}

TEST(LocationStore, PurgeInSlicesResumesWhereItStoppedAndVisitsEveryAor) {
  LocationStore store;
  for (int i = 0; i < 7; ++i) {
    const std::string n = std::to_string(i);
    store.apply(reg({contact("sip:u" + n + "@10.0.0.1", 60)}, "cid" + n, 1, kNow,
                    "sip:user" + n + "@home.example"));
  }
  // One AOR that stays, in the middle of the key order.
  store.apply(
      reg({contact("sip:keep@10.0.0.9", 3600)}, "keep", 1, kNow, "sip:user3x@home.example"));
  ASSERT_EQ(store.aor_count(), 8u);
  // Three AORs a call: the 7 expired ones are gone after three calls, none twice.
  size_t removed = 0;
  removed += store.purge_expired(kNow + 60, 3);
  EXPECT_EQ(store.aor_count(), 8u - removed);
  removed += store.purge_expired(kNow + 60, 3);
  removed += store.purge_expired(kNow + 60, 3);
  EXPECT_EQ(removed, 7u);
  EXPECT_EQ(store.aor_count(), 1u);
  EXPECT_EQ(store.records().count("sip:user3x@home.example"), 1u);
  // A budget larger than the store visits each AOR once and wraps safely.
  EXPECT_EQ(store.purge_expired(kNow + 3600, 100), 1u);
  EXPECT_EQ(store.aor_count(), 0u);
  EXPECT_EQ(store.purge_expired(kNow + 3600, 100), 0u);
  // New registrations after the cursor wrapped are reached again.
  store.apply(reg({contact("sip:a@10.0.0.1", 60)}, "n1", 1, kNow, "sip:aaa@home.example"));
  store.apply(reg({contact("sip:z@10.0.0.1", 60)}, "n2", 1, kNow, "sip:zzz@home.example"));
  EXPECT_EQ(store.purge_expired(kNow + 60, 1) + store.purge_expired(kNow + 60, 1), 2u);
  EXPECT_TRUE(store.aors_in_domain("home.example", kNow).empty());
}

TEST(LocationStore, AorsInDomainListsLiveAorsCaseInsensitively) {
  LocationStore store;
  store.apply(reg({contact("sip:m1@10.0.0.1")}, "1", 1, kNow, "sip:mon1@home.example"));
  store.apply(reg({contact("sip:m2@10.0.0.2")}, "2", 1, kNow, "sip:mon2@home.example"));
  store.apply(reg({contact("sip:d@10.0.0.3", 60)}, "3", 1, kNow, "sip:door@home.example"));
  store.apply(reg({contact("sip:x@10.0.0.4")}, "4", 1, kNow, "sip:mon1@other.example"));
  EXPECT_EQ(store.aors_in_domain("HOME.example", kNow + 100),
            (std::vector<std::string>{"sip:mon1@home.example", "sip:mon2@home.example"}));
  EXPECT_EQ(store.aors_in_domain("home.example", kNow).size(), 3u);
  EXPECT_EQ(store.aors_in_domain("other.example", kNow),
            (std::vector<std::string>{"sip:mon1@other.example"}));
  EXPECT_TRUE(store.aors_in_domain("nowhere.example", kNow).empty());
}

TEST(LocationStore, MaxContactsDropsTheBindingThatExpiresSoonest) {
  LocationStore::Limits limits;
  limits.max_contacts_per_aor = 2;
  LocationStore store(limits);
  store.apply(reg({contact("sip:a@10.0.0.1", 3600)}, "a", 1));
  store.apply(reg({contact("sip:b@10.0.0.2", 600)}, "b", 1));
  RegisterOutcome out = store.apply(reg({contact("sip:c@10.0.0.3", 3600)}, "c", 1));
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(contacts_of(out.bindings),
            (std::vector<std::string>{"sip:c@10.0.0.3", "sip:a@10.0.0.1"}));
}

TEST(LocationStore, MaxContactsSparesTheRegisteringDevice) {
  LocationStore::Limits limits;
  limits.max_contacts_per_aor = 2;
  LocationStore store(limits);
  store.apply(reg({contact("sip:a@10.0.0.1", 3600)}, "a", 1));
  store.apply(reg({contact("sip:b@10.0.0.2", 3600)}, "b", 1));
  // c expires first, but it is the one registering now; a and b expire together,
  // a registered earlier and goes.
  RegisterOutcome out = store.apply(reg({contact("sip:c@10.0.0.3", 60)}, "c", 1));
  EXPECT_EQ(contacts_of(out.bindings),
            (std::vector<std::string>{"sip:c@10.0.0.3", "sip:b@10.0.0.2"}));
  // One request with more contacts than allowed keeps the longest-lived of its own.
  out = store.apply(reg({contact("sip:d@10.0.0.4", 100), contact("sip:e@10.0.0.5", 200),
                         contact("sip:f@10.0.0.6", 300)},
                        "d", 1));
  EXPECT_EQ(contacts_of(out.bindings),
            (std::vector<std::string>{"sip:f@10.0.0.6", "sip:e@10.0.0.5"}));
}

TEST(LocationStore, RestoreReplacesRecordsAndIndexesDomains) {
  LocationStore store;
  store.apply(reg({contact("sip:alice@10.0.0.1")}, "cid", 1));
  std::map<std::string, std::vector<Binding>> records;
  Binding b;
  b.contact = "sip:m@10.0.0.9";
  b.expires_at = kNow + 100;
  records["sip:mon@flat.example"].push_back(b);
  records["sip:empty@flat.example"];  // no bindings: dropped
  const uint64_t g = store.generation();
  store.restore(std::move(records));
  EXPECT_GT(store.generation(), g);
  EXPECT_TRUE(store.lookup(kAlice, kNow).empty());
  EXPECT_TRUE(store.aors_in_domain("home.example", kNow).empty());
  EXPECT_EQ(store.aors_in_domain("flat.example", kNow),
            (std::vector<std::string>{"sip:mon@flat.example"}));
  EXPECT_EQ(store.records().size(), 1u);
}

TEST(LocationStore, NormalizeAorLowerCasesHostOnly) {
  EXPECT_EQ(normalize_aor("Alice", "Home.Example"), "sip:Alice@home.example");
  EXPECT_EQ(normalize_aor("alice", "Home.Example:5060;transport=udp"), "sip:alice@home.example");
  EXPECT_EQ(normalize_aor("alice", "[2001:DB8::1]:5060"), "sip:alice@[2001:db8::1]");
  EXPECT_EQ(normalize_aor("", "Home.Example"), "sip:home.example");
  EXPECT_EQ(aor_domain("sip:alice@home.example"), "home.example");
  EXPECT_EQ(aor_domain("sip:home.example"), "home.example");
  EXPECT_EQ(aor_domain(normalize_aor("a", "X.Y")), "x.y");
}

// RFC 3261 §25.1 qvalue: what a REGISTER may carry as ;q=, as q * 1000.
TEST(RegisterInput, QvalueFollowsTheGrammar) {
  struct Case {
    const char *text;
    std::optional<int> milli;
  } cases[] = {
      {"0", 0},
      {"1", 1000},
      {"0.5", 500},
      {"0.05", 50},
      {"0.123", 123},
      {"1.0", 1000},
      {"1.000", 1000},
      {"0.", 0},
      {"2", std::nullopt},
      {"1.5", std::nullopt},
      {"1.001", std::nullopt},
      {"-1", std::nullopt},
      {"0.1234", std::nullopt},
      {"abc", std::nullopt},
      {"", std::nullopt},
      {".5", std::nullopt},
      {"0,5", std::nullopt},
      {"1e0", std::nullopt},
      {"00.5", std::nullopt},
  };
  for (const auto &c : cases) EXPECT_EQ(parse_qvalue(c.text), c.milli) << c.text;
}

// RFC 3261 §25.1 delta-seconds; huge values saturate instead of wrapping to 0
// (a removal), and the store then shortens them (§10.3 step 6).
TEST(RegisterInput, DeltaSecondsSaturatesAndRefusesTheRest) {
  EXPECT_EQ(parse_delta_seconds("0"), 0);
  EXPECT_EQ(parse_delta_seconds("3600"), 3600);
  EXPECT_EQ(parse_delta_seconds("4294967296"), INT_MAX);  // 2^32: atoi gave 0
  EXPECT_EQ(parse_delta_seconds("99999999999"), INT_MAX);
  EXPECT_EQ(parse_delta_seconds("999999999999999999999999999999"), INT_MAX);
  for (const char *bad : {"", "abc", "-1", "60s", " 60", "1.5", "Thu, 01 Dec 2044 16:00:00 GMT"}) {
    EXPECT_EQ(parse_delta_seconds(bad), std::nullopt) << bad;
  }
}

TEST(RegisterInput, ContactMustBeASipUri) {
  for (const char *good : {"sip:alice@127.0.0.1:5070", "sips:alice@home.example", "sip:127.0.0.1",
                           "sip:a%20b@[::1]:5060;transport=tcp",
                           "sip:bob@host;ob?Subject=x&Priority=y", "SIP:Alice@Host"}) {
    EXPECT_TRUE(is_valid_contact_uri(good)) << good;
  }
  for (const char *bad : {"", "alice@127.0.0.1", "tel:+123", "http://x", "sip:", "sip:alice@",
                          "sip:al ice@h", "sip:a\"b@h", "sip:a<b@h", "sip:a%zzb@h", "sip:a%2",
                          "sip:\x01\xff\xfe@h", "sip:caf\xc3\xa9@h", "sip:a@h\r\nX: y"}) {
    EXPECT_FALSE(is_valid_contact_uri(bad)) << bad;
  }
}

TEST(LocationStore, QOutsideZeroToOneIsRefusedAndStoresNothing) {
  LocationStore store;
  for (int q : {-1, 1001, 2000}) {
    RegisterOutcome out = store.apply(reg({contact("sip:a@127.0.0.1:5070", 600, "", q)}, "c", 1));
    EXPECT_EQ(out.status, 400) << q;
  }
  EXPECT_EQ(store.binding_count(), 0u);
}

}  // namespace
}  // namespace portier::proxy
