// The proxy's proof of P-Asserted-Identity for a device: the key is
// the receiving device's digest HA1, however the users file stores it.
#include <gtest/gtest.h>

#include "common/auth/identity_proof.h"
#include "common/auth/users_file.h"

namespace {

using namespace portier::auth;
using Result = IdentityProofVerifier::Result;

ProofFields message_from_mon1() {
  return {"sip:mon1@home.example", "abc@127.0.0.1", "tag1", 2, "MESSAGE"};
}

std::string door_ha1(Algorithm a) { return compute_ha1(a, "door", "home.example", "doorpw"); }

TEST(IdentityProof, TheDoorVerifiesWhatTheProxyMadeFromEitherHa1) {
  IdentityProofVerifier door("door", "home.example", "doorpw");
  const int64_t now = 1'800'000'000;
  for (Algorithm a : {Algorithm::SHA256, Algorithm::MD5}) {
    ProofFields f = message_from_mon1();
    f.cseq = a == Algorithm::MD5 ? 3 : 2;  // two messages
    const std::string header = identity_proof(a, door_ha1(a), f, now);
    EXPECT_EQ(door.verify(header, f, now + 1), Result::Valid) << header;
  }
}

// The proxy's side: whichever secret the users file holds for the door
// (clrtxt, md5: only, sha256: only), the door verifies with its password.
TEST(IdentityProof, EveryWayOfStoringTheDoorsPasswordWorks) {
  const std::string md5 = door_ha1(Algorithm::MD5), sha = door_ha1(Algorithm::SHA256);
  const int64_t now = 1'800'000'000;
  uint32_t cseq = 1;
  for (const std::string &line :
       {std::string("door@home.example clrtxt:doorpw ;"), ("door@home.example md5:" + md5 + " ;"),
        ("door@home.example sha256:" + sha + " ;")}) {
    UsersFile users;
    std::string error;
    ASSERT_TRUE(users.load_from_string("version:1\n" + line + "\n", "users", &error)) << error;
    // As the proxy picks: SHA-256 when it has it, else MD5.
    Algorithm a = Algorithm::SHA256;
    auto ha1 = users.ha1("door", "home.example", "home.example", a);
    if (!ha1) ha1 = users.ha1("door", "home.example", "home.example", a = Algorithm::MD5);
    ASSERT_TRUE(ha1) << line;
    ProofFields f = message_from_mon1();
    f.cseq = ++cseq;
    IdentityProofVerifier door("door", "home.example", "doorpw");
    EXPECT_EQ(door.verify(identity_proof(a, *ha1, f, now), f, now), Result::Valid) << line;
  }
}

TEST(IdentityProof, EveryCoveredFieldCounts) {
  const int64_t now = 1'800'000'000;
  const ProofFields f = message_from_mon1();
  const std::string header = identity_proof(Algorithm::SHA256, door_ha1(Algorithm::SHA256), f, now);
  std::vector<ProofFields> changed(5, f);
  changed[0].identity = "sip:alice@home.example";
  changed[1].call_id = "other";
  changed[2].from_tag = "tag2";
  changed[3].cseq = 3;
  changed[4].what = "INVITE";
  for (const ProofFields &c : changed) {
    IdentityProofVerifier door("door", "home.example", "doorpw");
    EXPECT_EQ(door.verify(header, c, now), Result::BadMac) << c.identity << " " << c.what;
  }
}

TEST(IdentityProof, AnotherDevicesKeyOrPasswordDoesNotVerify) {
  const int64_t now = 1'800'000'000;
  const ProofFields f = message_from_mon1();
  // Made for mon2 (its HA1), presented to the door.
  const std::string for_mon2 = identity_proof(
      Algorithm::SHA256, compute_ha1(Algorithm::SHA256, "mon2", "home.example", "doorpw"), f, now);
  IdentityProofVerifier door("door", "home.example", "doorpw");
  EXPECT_EQ(door.verify(for_mon2, f, now), Result::BadMac);
  IdentityProofVerifier wrong("door", "home.example", "other");
  EXPECT_EQ(wrong.verify(identity_proof(Algorithm::MD5, door_ha1(Algorithm::MD5), f, now), f, now),
            Result::BadMac);
}

TEST(IdentityProof, ACapturedProofOpensNothingTwice) {
  IdentityProofVerifier door("door", "home.example", "doorpw");
  const int64_t now = 1'800'000'000;
  const ProofFields f = message_from_mon1();
  const std::string header = identity_proof(Algorithm::SHA256, door_ha1(Algorithm::SHA256), f, now);
  EXPECT_EQ(door.verify(header, f, now), Result::Valid);
  EXPECT_EQ(door.verify(header, f, now + 5), Result::Replayed);
}

TEST(IdentityProof, ClockWindowAndMalformedHeaders) {
  IdentityProofVerifier door("door", "home.example", "doorpw", 30);
  const int64_t now = 1'800'000'000;
  const ProofFields f = message_from_mon1();
  const std::string ha1 = door_ha1(Algorithm::SHA256);
  EXPECT_EQ(door.verify(identity_proof(Algorithm::SHA256, ha1, f, now - 31), f, now),
            Result::Expired);
  EXPECT_EQ(door.verify(identity_proof(Algorithm::SHA256, ha1, f, now + 31), f, now),
            Result::Expired);
  EXPECT_EQ(door.verify(std::nullopt, f, now), Result::Missing);
  for (const char *bad :
       {"", "v=1", "v=2;alg=sha256;ts=1;mac=00", "v=1;alg=sha1;ts=1800000000;mac=" /* short */,
        "v=1;alg=sha256;ts=-5;mac=0000000000000000000000000000000000000000000000000000000000000000",
        "v=1;alg=des;ts=1800000000;mac="
        "0000000000000000000000000000000000000000000000000000000000000000"})
    EXPECT_EQ(door.verify(std::string_view(bad), f, now), Result::Malformed) << bad;
  ProofFields no_identity = f;
  no_identity.identity.clear();
  EXPECT_EQ(door.verify(identity_proof(Algorithm::SHA256, ha1, no_identity, now), no_identity, now),
            Result::Malformed);
}

}  // namespace
