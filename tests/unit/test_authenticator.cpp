// Nonces (authenticity, age, nonce-count replay ring) and the whole digest check as
// the proxy runs it: challenge, answer as a client would, outcome.
#include <gtest/gtest.h>
#include <openssl/hmac.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "common/auth/authenticator.h"

namespace portier::auth {
namespace {

constexpr const char *kSecret = "test-secret";
constexpr unsigned kLifetime = 300;
constexpr int64_t kT0 = 1700000000;
// The address the challenges go to, and the answers come from.
constexpr const char *kHost = "10.0.0.1";

// ---------------------------------------------------------------- NonceManager

TEST(Nonce, IssuedNonceIsValidPrintableAndUnique) {
  NonceManager nonces(kSecret, kLifetime);
  const std::string a = nonces.issue(kT0, kHost);
  const std::string b = nonces.issue(kT0, kHost);
  EXPECT_NE(a, b);
  EXPECT_FALSE(a.empty());
  for (char c : a) {
    EXPECT_TRUE(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') << a;
  }
  EXPECT_EQ(a.find(kSecret), std::string::npos);
  EXPECT_EQ(nonces.check(a, kT0, kHost), NonceManager::Check::Valid);
  EXPECT_EQ(nonces.check(b, kT0, kHost), NonceManager::Check::Valid);
  EXPECT_EQ(nonces.lifetime(), kLifetime);
}

TEST(Nonce, AgeDecidesStale) {
  NonceManager nonces(kSecret, kLifetime);
  const std::string n = nonces.issue(kT0, kHost);
  struct Case {
    int64_t now;
    NonceManager::Check expected;
  } cases[] = {
      {kT0, NonceManager::Check::Valid},
      {kT0 + kLifetime, NonceManager::Check::Valid},
      {kT0 + kLifetime + 1, NonceManager::Check::Stale},
      {kT0 + 100000, NonceManager::Check::Stale},
      {kT0 - 60, NonceManager::Check::Valid},  // small clock skew between proxies
      {kT0 - 61, NonceManager::Check::Stale},  // from the future
  };
  for (const Case &c : cases) EXPECT_EQ(nonces.check(n, c.now, kHost), c.expected) << c.now - kT0;
}

TEST(Nonce, SharedSecretAcceptsOthersNonces) {
  NonceManager first(kSecret, kLifetime);
  NonceManager restarted(kSecret, kLifetime);
  NonceManager stranger("another-secret", kLifetime);
  const std::string n = first.issue(kT0, kHost);
  EXPECT_EQ(restarted.check(n, kT0, kHost), NonceManager::Check::Valid);
  EXPECT_EQ(stranger.check(n, kT0, kHost), NonceManager::Check::Invalid);
}

TEST(Nonce, EmptySecretIsReplacedByARandomOne) {
  NonceManager a("", kLifetime);
  NonceManager b("", kLifetime);
  EXPECT_EQ(a.check(a.issue(kT0, kHost), kT0, kHost), NonceManager::Check::Valid);
  EXPECT_EQ(b.check(a.issue(kT0, kHost), kT0, kHost), NonceManager::Check::Invalid);
}

TEST(Nonce, ForgedOrMalformedIsInvalid) {
  NonceManager nonces(kSecret, kLifetime);
  const std::string n = nonces.issue(kT0, kHost);
  std::vector<std::string> bad = {"",
                                  "abc",
                                  n + "A",
                                  n.substr(1),
                                  n.substr(0, n.size() - 1),
                                  std::string(n.size(), 'A'),
                                  "!" + n.substr(1)};
  // Every single-character change, including to the MAC and the timestamp.
  for (size_t i = 0; i < n.size(); ++i) {
    std::string forged = n;
    forged[i] = forged[i] == 'A' ? 'B' : 'A';
    bad.push_back(forged);
  }
  for (const std::string &b : bad) {
    EXPECT_EQ(nonces.check(b, kT0, kHost), NonceManager::Check::Invalid) << b;
  }
}

TEST(Nonce, OnlyTheCanonicalSpellingIsValid) {
  // base64 leaves unused bits in the last character; were other spellings accepted,
  // each would get its own nonce-count history and a response could be replayed.
  NonceManager nonces(kSecret, kLifetime);
  const std::string n = nonces.issue(kT0, kHost);
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  int valid = 0;
  for (char c : alphabet) {
    std::string variant = n;
    variant.back() = c;
    if (nonces.check(variant, kT0, kHost) == NonceManager::Check::Valid) {
      ++valid;
      EXPECT_EQ(variant, n);
    }
  }
  EXPECT_EQ(valid, 1);
}

using Nc = NonceManager::Nc;

TEST(Nonce, NonceCountMustGrow) {
  NonceManager nonces(kSecret, kLifetime);
  const std::string n = nonces.issue(kT0, kHost);
  struct Step {
    const char *nc;
    Nc expected;
  } steps[] = {
      {"00000001", Nc::Accepted}, {"00000001", Nc::Replay},   {"00000002", Nc::Accepted},
      {"00000001", Nc::Replay},   {"0000000A", Nc::Accepted}, {"00000009", Nc::Replay},
      {"0000000b", Nc::Accepted}, {"0000000B", Nc::Replay},   {"fffffffe", Nc::Accepted},
      {"FFFFFFFE", Nc::Replay},
  };
  for (const Step &s : steps)
    EXPECT_EQ(nonces.accept_nc(n, s.nc, kT0 + 1, kHost), s.expected) << s.nc;
  // Counts of one nonce do not affect another.
  EXPECT_EQ(nonces.accept_nc(nonces.issue(kT0, kHost), "00000001", kT0 + 1, kHost), Nc::Accepted);
}

TEST(Nonce, MalformedNonceCountIsRefused) {
  NonceManager nonces(kSecret, kLifetime);
  const std::string n = nonces.issue(kT0, kHost);
  for (const char *nc : {"", "1", "0000001", "000000001", "0000000g", "00000000", " 0000001"}) {
    EXPECT_EQ(nonces.accept_nc(n, nc, kT0, kHost), Nc::Malformed) << '"' << nc << '"';
  }
  EXPECT_EQ(nonces.accept_nc(n, "00000001", kT0, kHost), Nc::Accepted);
}

TEST(Nonce, ForgedNonceIsMalformedExpiredOneForgotten) {
  NonceManager nonces(kSecret, kLifetime);
  const std::string n = nonces.issue(kT0, kHost);
  // Expired (or from too far in the future): authentic, but no longer usable.
  EXPECT_EQ(nonces.accept_nc(n, "00000001", kT0 + kLifetime + 1, kHost), Nc::Forgotten);
  EXPECT_EQ(nonces.accept_nc(n, "00000001", kT0 - 61, kHost), Nc::Forgotten);
  // Refusing those did not touch its slot.
  EXPECT_EQ(nonces.accept_nc(n, "00000001", kT0, kHost), Nc::Accepted);
  EXPECT_EQ(nonces.accept_nc(n, "00000002", kT0 + kLifetime + 1, kHost), Nc::Forgotten);
  EXPECT_EQ(nonces.accept_nc(n, "00000002", kT0 + kLifetime, kHost), Nc::Accepted);

  // Not ours, or not a nonce at all.
  EXPECT_EQ(
      nonces.accept_nc(NonceManager("other", kLifetime).issue(kT0, kHost), "00000001", kT0, kHost),
      Nc::Malformed);
  std::string forged = n;
  forged[20] = forged[20] == 'A' ? 'B' : 'A';  // inside the counter
  EXPECT_EQ(nonces.accept_nc(forged, "00000001", kT0, kHost), Nc::Malformed);
  EXPECT_EQ(nonces.accept_nc("", "00000001", kT0, kHost), Nc::Malformed);
  EXPECT_EQ(nonces.accept_nc("not a nonce", "00000001", kT0, kHost), Nc::Malformed);
}

TEST(Nonce, SpentNonceIsNeverAcceptedAgain) {
  NonceManager nonces(kSecret, kLifetime);
  const std::string n = nonces.issue(kT0, kHost);
  const std::string other = nonces.issue(kT0, kHost);
  EXPECT_EQ(nonces.accept_nc(n, "00000001", kT0, kHost), NonceManager::Nc::Accepted);
  nonces.spend(n, kT0, kHost);
  EXPECT_EQ(nonces.check(n, kT0, kHost), NonceManager::Check::Spent);
  EXPECT_EQ(nonces.check(n, kT0 + kLifetime + 1, kHost), NonceManager::Check::Spent);
  for (const char *nc : {"00000002", "7ffffffe", "fffffffe"})
    EXPECT_EQ(nonces.accept_nc(n, nc, kT0, kHost), NonceManager::Nc::Replay) << nc;
  // ffffffff marks a spent slot: no client may send it.
  EXPECT_EQ(nonces.accept_nc(other, "ffffffff", kT0, kHost), NonceManager::Nc::Malformed);
  // Other nonces are untouched; a forged one spends nothing.
  EXPECT_EQ(nonces.check(other, kT0, kHost), NonceManager::Check::Valid);
  std::string forged = other;
  forged[3] = forged[3] == 'A' ? 'B' : 'A';
  nonces.spend(forged, kT0, kHost);
  EXPECT_EQ(nonces.accept_nc(other, "00000001", kT0, kHost), NonceManager::Nc::Accepted);
}

TEST(Nonce, RingSize) {
  EXPECT_EQ(NonceManager(kSecret, kLifetime).slots(), NonceManager::kDefaultSlots);
  EXPECT_EQ(NonceManager(kSecret, kLifetime, 4).slots(), 4u);
  EXPECT_THROW(NonceManager(kSecret, kLifetime, 0), std::invalid_argument);
}

TEST(Nonce, OverwrittenSlotIsForgotten) {
  NonceManager nonces(kSecret, kLifetime, /*slots=*/4, kT0);
  const std::string n = nonces.issue(kT0, kHost);
  EXPECT_EQ(nonces.accept_nc(n, "00000001", kT0, kHost), Nc::Accepted);
  // Three more nonces fill the other slots: n is still tracked.
  std::vector<std::string> later;
  for (int i = 0; i < 3; ++i) later.push_back(nonces.issue(kT0, kHost));
  EXPECT_EQ(nonces.accept_nc(n, "00000001", kT0, kHost), Nc::Replay);
  EXPECT_EQ(nonces.accept_nc(n, "00000002", kT0, kHost), Nc::Accepted);
  // The next one takes n's slot: n is forgotten, whatever its nc, and stays so.
  later.push_back(nonces.issue(kT0, kHost));
  EXPECT_EQ(nonces.accept_nc(n, "00000003", kT0, kHost), Nc::Forgotten);
  EXPECT_EQ(nonces.accept_nc(n, "00000001", kT0, kHost), Nc::Forgotten);
  for (int i = 0; i < 5; ++i) later.push_back(nonces.issue(kT0, kHost));
  EXPECT_EQ(nonces.accept_nc(n, "00000004", kT0, kHost), Nc::Forgotten);
  // Still authentic and young: only the nonce-count history is gone.
  EXPECT_EQ(nonces.check(n, kT0, kHost), NonceManager::Check::Valid);
  // Only the last 4 are tracked.
  for (size_t i = 0; i < later.size(); ++i) {
    EXPECT_EQ(nonces.accept_nc(later[i], "00000001", kT0, kHost),
              i + 4 < later.size() ? Nc::Forgotten : Nc::Accepted)
        << i;
  }
}

TEST(Nonce, NoncesFromAnEarlierRunAreForgotten) {
  NonceManager before(kSecret, kLifetime, NonceManager::kDefaultSlots, kT0);
  const std::string n = before.issue(kT0, kHost);
  EXPECT_EQ(before.accept_nc(n, "00000001", kT0, kHost), Nc::Accepted);

  // Restarted a minute later with the same secret: n is authentic and young, but its
  // history is gone, so it must not be accepted again (not even with nc 1 replayed).
  NonceManager after(kSecret, kLifetime, NonceManager::kDefaultSlots, kT0 + 60);
  EXPECT_EQ(after.check(n, kT0 + 60, kHost), NonceManager::Check::Valid);
  EXPECT_EQ(after.accept_nc(n, "00000001", kT0 + 60, kHost), Nc::Forgotten);
  EXPECT_EQ(after.accept_nc(n, "00000002", kT0 + 60, kHost), Nc::Forgotten);
  for (int i = 0; i < 100; ++i) after.issue(kT0 + 60, kHost);
  EXPECT_EQ(after.accept_nc(n, "00000002", kT0 + 60, kHost), Nc::Forgotten);

  // A nonce from a run started later (a peer, or a clock that was ahead) has a counter
  // this run has not reached.
  NonceManager peer(kSecret, kLifetime, NonceManager::kDefaultSlots, kT0 + 120);
  EXPECT_EQ(after.accept_nc(peer.issue(kT0 + 60, kHost), "00000001", kT0 + 60, kHost),
            Nc::Forgotten);
}

TEST(Nonce, SameCounterFromAnotherRunDoesNotShareTheSlot) {
  // Two proxies started in the same second issue the same counters.
  NonceManager a(kSecret, kLifetime, 16, kT0);
  NonceManager b(kSecret, kLifetime, 16, kT0);
  const std::string mine = b.issue(kT0, kHost);
  const std::string theirs = a.issue(kT0, kHost);
  EXPECT_EQ(b.check(theirs, kT0, kHost), NonceManager::Check::Valid);
  EXPECT_EQ(b.accept_nc(theirs, "00000001", kT0, kHost), Nc::Forgotten);
  EXPECT_EQ(b.accept_nc(theirs, "00000005", kT0, kHost), Nc::Forgotten);
  // ...and b's own nonce with that counter keeps a clean history.
  EXPECT_EQ(b.accept_nc(mine, "00000001", kT0, kHost), Nc::Accepted);
}

TEST(Nonce, FloodDoesNotLockOutFreshNonces) {
  // The old bounded table refused every new nonce once full; the ring only forgets
  // old ones.
  NonceManager nonces(kSecret, 3600, /*slots=*/8, kT0);
  std::vector<std::string> issued;
  for (int i = 0; i < 1000; ++i) {
    issued.push_back(nonces.issue(kT0 + i / 100, kHost));
    ASSERT_EQ(nonces.accept_nc(issued.back(), "00000001", kT0 + i / 100, kHost), Nc::Accepted) << i;
  }
  // The last 8 are still tracked (replays refused, next counts accepted); the rest
  // are forgotten, never replayable.
  for (size_t i = 0; i < issued.size(); ++i) {
    const bool tracked = i + 8 >= issued.size();
    EXPECT_EQ(nonces.accept_nc(issued[i], "00000001", kT0 + 10, kHost),
              tracked ? Nc::Replay : Nc::Forgotten)
        << i;
    EXPECT_EQ(nonces.accept_nc(issued[i], "00000002", kT0 + 10, kHost),
              tracked ? Nc::Accepted : Nc::Forgotten)
        << i;
  }
}

// Spoofed bans: a nonce is bound to the host it was issued to (the
// source IP of the request the challenge answered), so a response carrying it from
// another host is refused as forged, and touches neither its nonce-count nor its
// spent mark.
TEST(NonceManager, BoundToTheHostItWasIssuedTo) {
  NonceManager nonces(kSecret, kLifetime);
  const std::string n = nonces.issue(kT0, "10.0.0.1");
  EXPECT_EQ(nonces.check(n, kT0, "10.0.0.1"), NonceManager::Check::Valid);
  EXPECT_EQ(nonces.check(n, kT0, "10.0.0.2"), NonceManager::Check::Invalid);
  EXPECT_EQ(nonces.check(n, kT0, "10.0.0.10"), NonceManager::Check::Invalid);
  EXPECT_EQ(nonces.check(n, kT0, ""), NonceManager::Check::Invalid);
  // Expired: still Invalid elsewhere (stale=true would tell the guesser too much).
  EXPECT_EQ(nonces.check(n, kT0 + kLifetime + 1, "10.0.0.2"), NonceManager::Check::Invalid);
  EXPECT_EQ(nonces.check(n, kT0 + kLifetime + 1, "10.0.0.1"), NonceManager::Check::Stale);
  // Another host can neither use, replay-lock nor spend it.
  EXPECT_EQ(nonces.accept_nc(n, "00000005", kT0, "10.0.0.2"), Nc::Malformed);
  nonces.spend(n, kT0, "10.0.0.2");
  EXPECT_EQ(nonces.check(n, kT0, "10.0.0.1"), NonceManager::Check::Valid);
  EXPECT_EQ(nonces.accept_nc(n, "00000001", kT0, "10.0.0.1"), Nc::Accepted);
  // The binding survives a restart (same secret), like the nonce itself.
  NonceManager restarted(kSecret, kLifetime);
  EXPECT_EQ(restarted.check(n, kT0, "10.0.0.1"), NonceManager::Check::Valid);
  EXPECT_EQ(restarted.check(n, kT0, "10.0.0.2"), NonceManager::Check::Invalid);
}

// A nonce checked right after its challenge (known from issue(), no MAC computed)
// and one checked after a few thousand others were issued (its MAC computed) get
// the same answers, host binding included.
TEST(NonceManager, RecentAndOlderNoncesAreCheckedAlike) {
  NonceManager nonces(kSecret, kLifetime);
  const std::string old_nonce = nonces.issue(kT0, "10.0.0.1");
  for (int i = 0; i < 5000; ++i) nonces.issue(kT0, "10.0.0.3");
  const std::string recent = nonces.issue(kT0, "10.0.0.1");
  for (const std::string &n : {old_nonce, recent}) {
    EXPECT_EQ(nonces.check(n, kT0, "10.0.0.2"), NonceManager::Check::Invalid);
    EXPECT_EQ(nonces.check(n, kT0, "::ffff:10.0.0.1"), NonceManager::Check::Valid);
    EXPECT_EQ(nonces.check(n, kT0 + kLifetime + 1, "10.0.0.1"), NonceManager::Check::Stale);
    std::string forged = n;
    forged[n.size() - 3] = forged[n.size() - 3] == 'A' ? 'B' : 'A';  // in the MAC
    EXPECT_EQ(nonces.check(forged, kT0, "10.0.0.1"), NonceManager::Check::Invalid);
    forged = n;
    forged[12] = forged[12] == 'A' ? 'B' : 'A';  // in the counter
    EXPECT_EQ(nonces.check(forged, kT0, "10.0.0.1"), NonceManager::Check::Invalid);
    EXPECT_EQ(nonces.accept_nc(n, "00000001", kT0, "10.0.0.2"), Nc::Malformed);
    EXPECT_EQ(nonces.accept_nc(n, "00000001", kT0, "10.0.0.1"), Nc::Accepted);
    EXPECT_EQ(nonces.accept_nc(n, "00000001", kT0, "10.0.0.1"), Nc::Replay);
  }
  // A name, not an address, is never taken from the recent ones.
  const std::string named = nonces.issue(kT0, "?");
  EXPECT_EQ(nonces.check(named, kT0, "?"), NonceManager::Check::Valid);
  EXPECT_EQ(nonces.check(named, kT0, "??"), NonceManager::Check::Invalid);
}

TEST(NonceManager, HostSpellingsOfOneAddressAreOneHost) {
  NonceManager nonces(kSecret, kLifetime);
  // A dual-stack socket reports IPv4 peers as IPv4-mapped IPv6 (RFC 4291 §2.5.5.2).
  const std::string v4 = nonces.issue(kT0, "10.0.0.1");
  EXPECT_EQ(nonces.check(v4, kT0, "::ffff:10.0.0.1"), NonceManager::Check::Valid);
  EXPECT_EQ(nonces.check(v4, kT0, "[::ffff:10.0.0.1]"), NonceManager::Check::Valid);
  EXPECT_EQ(nonces.check(v4, kT0, "::ffff:10.0.0.2"), NonceManager::Check::Invalid);
  const std::string v6 = nonces.issue(kT0, "2001:db8::1");
  for (const char *same : {"2001:db8::1", "2001:DB8:0:0:0:0:0:1", "[2001:db8::1]"})
    EXPECT_EQ(nonces.check(v6, kT0, same), NonceManager::Check::Valid) << same;
  for (const char *other : {"2001:db8::2", "::1", "10.0.0.1", "2001:db8::1%eth0"})
    EXPECT_EQ(nonces.check(v6, kT0, other), NonceManager::Check::Invalid) << other;
  // Only what inet_pton takes for IPv4 is an address; any other text is a
  // name, and no name is an address.
  const std::string quad = nonces.issue(kT0, "192.0.2.1");
  EXPECT_EQ(nonces.check(quad, kT0, "[192.0.2.1]"), NonceManager::Check::Valid);
  for (const char *other : {"192.0.2.01", "192.0.2.10", "192.0.2", "192.0.2.1.", "192.0.2.256",
                            "192.0.2.1 ", "192.0..2.1", "0300.0.2.1", ""})
    EXPECT_EQ(nonces.check(quad, kT0, other), NonceManager::Check::Invalid) << other;
  const std::string zeros = nonces.issue(kT0, "0.0.0.0");
  EXPECT_EQ(nonces.check(zeros, kT0, "::ffff:0.0.0.0"), NonceManager::Check::Valid);
  const std::string named = nonces.issue(kT0, "192.0.2.01");
  EXPECT_EQ(nonces.check(named, kT0, "192.0.2.01"), NonceManager::Check::Valid);
  EXPECT_EQ(nonces.check(named, kT0, "192.0.2.1"), NonceManager::Check::Invalid);
  // No address known: the text itself, never equal to an address.
  const std::string unknown = nonces.issue(kT0, "?");
  EXPECT_EQ(nonces.check(unknown, kT0, "?"), NonceManager::Check::Valid);
  EXPECT_EQ(nonces.check(unknown, kT0, "10.0.0.1"), NonceManager::Check::Invalid);
}

// --------------------------------------------------------------- Authenticator

// HA1 values computed outside portier (Python hashlib):
//   MD5("bob:home.example:bobpw"), SHA-256("carol:home.example:carolpw").
constexpr const char *kUsers =
    "version:1\n"
    "alice@home.example clrtxt:secret ;\n"
    "bob@home.example md5:e3b394a1c820cc9c115eb23c27b0359e ;\n"
    "carol@home.example sha256:927c09ce06af584f12e33b32922f28987458d5081bd7ee1f17f227483f5a879b "
    ";\n"
    "alice@other.example clrtxt:otherpw ;\n";
constexpr const char *kRealm = "home.example";
constexpr const char *kMethod = "REGISTER";
constexpr const char *kUri = "sip:home.example";

std::string param(const std::string &challenge, const std::string &name) {
  const std::string key = name + "=\"";
  const size_t start = challenge.find(key);
  if (start == std::string::npos) return {};
  const size_t end = challenge.find('"', start + key.size());
  return challenge.substr(start + key.size(), end - start - key.size());
}

// What a client sends back, computed the way RFC 7616 tells a client to.
struct Answer {
  std::string user = "alice";
  std::string password = "secret";
  std::string algorithm = "SHA-256";
  std::string realm = kRealm;
  std::string qop = "auth";
  std::string nc = "00000001";
  std::string method = kMethod;
};

Credentials answer(const std::string &nonce, const Answer &a) {
  Credentials c;
  c.username = a.user;
  c.realm = a.realm;
  c.nonce = nonce;
  c.uri = kUri;
  c.algorithm = a.algorithm;
  c.qop = a.qop;
  c.nc = a.qop.empty() ? "" : a.nc;
  c.cnonce = a.qop.empty() ? "" : "0a4f113b";
  const Algorithm alg = parse_algorithm(a.algorithm).value_or(Algorithm::MD5);
  c.response = compute_response(alg, compute_ha1(alg, a.user, a.realm, a.password), nonce, c.nc,
                                c.cnonce, c.qop, a.method, kUri);
  return c;
}

class AuthenticatorTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(users_.load_from_string(kUsers, "users.txt", &error)) << error;
  }

  std::string nonce(int64_t now = kT0) {
    return param(auth_.challenges(kRealm, false, now, kHost)[0], "nonce");
  }

  UsersFile users_;
  NonceManager nonces_{kSecret, kLifetime};
  Authenticator auth_{users_, {Algorithm::SHA256, Algorithm::MD5}, nonces_};
};

TEST_F(AuthenticatorTest, ChallengesOnePerAlgorithmInOrder) {
  const std::vector<std::string> c = auth_.challenges(kRealm, false, kT0, kHost);
  ASSERT_EQ(c.size(), 2u);
  const std::string n = param(c[0], "nonce");
  EXPECT_EQ(nonces_.check(n, kT0, kHost), NonceManager::Check::Valid);
  EXPECT_EQ(c[0],
            "Digest realm=\"home.example\", nonce=\"" + n + "\", algorithm=SHA-256, qop=\"auth\"");
  EXPECT_EQ(c[1],
            "Digest realm=\"home.example\", nonce=\"" + n + "\", algorithm=MD5, qop=\"auth\"");

  const std::vector<std::string> s = auth_.challenges(kRealm, true, kT0, kHost);
  ASSERT_EQ(s.size(), 2u);
  const std::string m = param(s[0], "nonce");
  EXPECT_NE(m, n);
  EXPECT_EQ(s[0], "Digest realm=\"home.example\", nonce=\"" + m +
                      "\", algorithm=SHA-256, qop=\"auth\", stale=true");
  EXPECT_EQ(s[1], "Digest realm=\"home.example\", nonce=\"" + m +
                      "\", algorithm=MD5, qop=\"auth\", stale=true");
}

TEST_F(AuthenticatorTest, ChallengeDoesNotRevealWhetherTheUserExists) {
  // What the proxy sends after a failure, with the nonce blanked out: must be the
  // same bytes for a known user with a wrong password and for an unknown user.
  auto after_failure = [&](const std::string &user) {
    Answer a;
    a.user = user;
    a.password = "wrong";
    const Credentials creds = answer(nonce(), a);
    EXPECT_EQ(auth_.check(&creds, kMethod, kRealm, kT0, kHost).outcome,
              Authenticator::Outcome::Failed);
    std::vector<std::string> c = auth_.challenges(kRealm, false, kT0, kHost);
    for (std::string &s : c) {
      const std::string n = param(s, "nonce");
      s.replace(s.find(n), n.size(), "NONCE");
    }
    return c;
  };
  const std::vector<std::string> known = after_failure("alice");
  const std::vector<std::string> unknown = after_failure("nobody");
  EXPECT_EQ(known, unknown);
  ASSERT_EQ(known.size(), 2u);
  EXPECT_EQ(known[0],
            "Digest realm=\"home.example\", nonce=\"NONCE\", algorithm=SHA-256, qop=\"auth\"");
}

TEST_F(AuthenticatorTest, NoCredentialsMeansChallenge) {
  const Authenticator::Result r = auth_.check(nullptr, kMethod, kRealm, kT0, kHost);
  EXPECT_EQ(r.outcome, Authenticator::Outcome::Challenge);
  EXPECT_TRUE(r.user.empty());
}

struct OutcomeCase {
  const char *name;
  Answer answer;
  Authenticator::Outcome outcome;
  const char *reason;
};

Answer with(std::string user, std::string password, std::string algorithm = "SHA-256") {
  Answer a;
  a.user = std::move(user);
  a.password = std::move(password);
  a.algorithm = std::move(algorithm);
  return a;
}

TEST_F(AuthenticatorTest, Outcomes) {
  using O = Authenticator::Outcome;
  std::vector<OutcomeCase> cases = {
      {"clrtxt SHA-256", with("alice", "secret"), O::Ok, ""},
      {"clrtxt MD5", with("alice", "secret", "MD5"), O::Ok, ""},
      {"algorithm token case", with("alice", "secret", "sha-256"), O::Ok, ""},
      {"clrtxt wrong password", with("alice", "Secret"), O::Failed, "wrong-password"},
      {"md5 HA1", with("bob", "bobpw", "MD5"), O::Ok, ""},
      {"md5 HA1 wrong password", with("bob", "bobpw2", "MD5"), O::Failed, "wrong-password"},
      {"md5 HA1 but SHA-256 asked", with("bob", "bobpw"), O::Failed, "no-secret"},
      {"sha256 HA1", with("carol", "carolpw"), O::Ok, ""},
      {"sha256 HA1 wrong password", with("carol", "bobpw"), O::Failed, "wrong-password"},
      {"sha256 HA1 but MD5 asked", with("carol", "carolpw", "MD5"), O::Failed, "no-secret"},
      {"unknown user", with("eve", "secret"), O::Failed, "unknown-user"},
      // The dummy HA1 hashed for unknown users must never authenticate anyone.
      {"unknown user, empty password", with("eve", ""), O::Failed, "unknown-user"},
      {"full AOR username", with("alice@home.example", "secret"), O::Ok, ""},
      // A user of another domain proves who it is with its own password (RFC
      // 3261 §22.4: the username names whose credentials these are); the
      // proxy then refuses it as not the realm's alice (§10.3 step 4: 403).
      {"full AOR, other domain", with("alice@other.example", "otherpw"), O::Ok, ""},
      {"full AOR, other domain, realm user's password", with("alice@other.example", "secret"),
       O::Failed, "wrong-password"},
      {"full AOR, domain not in the file", with("alice@nowhere.example", "secret"), O::Failed,
       "unknown-user"},
      {"full AOR, domain case", with("alice@Home.Example", "secret"), O::Ok, ""},
      {"-sess algorithm", with("alice", "secret", "MD5-sess"), O::Failed, "bad-algorithm"},
      {"unknown algorithm", with("alice", "secret", "SHA-512-256"), O::Failed, "bad-algorithm"},
  };
  {
    Answer a = with("alice", "secret");
    a.realm = "other.example";
    cases.push_back({"other realm", a, O::Challenge, ""});
    a = with("alice", "secret", "");  // RFC 2617: no algorithm means MD5
    cases.push_back({"no algorithm", a, O::Ok, ""});
    a = with("alice", "secret");
    a.qop = "";  // RFC 2069 style: no nc, so replayable for the nonce's lifetime
    cases.push_back({"no qop", a, O::Failed, "no-qop"});
    a.qop = "auth-int";
    cases.push_back({"auth-int", a, O::Failed, "malformed"});
    a = with("alice", "secret");
    a.method = "INVITE";  // response computed for another method
    cases.push_back({"other method", a, O::Failed, "wrong-password"});
  }
  for (const OutcomeCase &c : cases) {
    const Credentials creds = answer(nonce(), c.answer);
    const Authenticator::Result r = auth_.check(&creds, kMethod, kRealm, kT0 + 1, kHost);
    EXPECT_EQ(r.outcome, c.outcome) << c.name;
    EXPECT_EQ(r.reason, c.reason) << c.name;
    EXPECT_EQ(r.user, c.answer.user) << c.name;
  }
}

TEST_F(AuthenticatorTest, UpperCaseHexResponseIsAccepted) {
  Credentials creds = answer(nonce(), Answer{});
  for (char &ch : creds.response) ch = static_cast<char>(toupper(static_cast<unsigned char>(ch)));
  EXPECT_EQ(auth_.check(&creds, kMethod, kRealm, kT0, kHost).outcome, Authenticator::Outcome::Ok);
}

TEST_F(AuthenticatorTest, OfferedAlgorithmsOnly) {
  Authenticator sha_only(users_, {Algorithm::SHA256}, nonces_);
  const std::vector<std::string> c = sha_only.challenges(kRealm, false, kT0, kHost);
  ASSERT_EQ(c.size(), 1u);
  const std::string n = param(c[0], "nonce");
  for (const char *alg : {"MD5", ""}) {
    const Credentials creds = answer(n, with("alice", "secret", alg));
    const Authenticator::Result r = sha_only.check(&creds, kMethod, kRealm, kT0, kHost);
    EXPECT_EQ(r.outcome, Authenticator::Outcome::Failed) << alg;
    EXPECT_EQ(r.reason, "bad-algorithm") << alg;
  }
  // The refusals spent n: the client answers the next challenge.
  const std::string fresh = param(sha_only.challenges(kRealm, false, kT0, kHost)[0], "nonce");
  const Credentials creds = answer(fresh, with("alice", "secret", "SHA-256"));
  EXPECT_EQ(sha_only.check(&creds, kMethod, kRealm, kT0, kHost).outcome,
            Authenticator::Outcome::Ok);
}

TEST_F(AuthenticatorTest, ForgedNonceIsBadNonce) {
  std::string n = nonce();
  n[5] = n[5] == 'x' ? 'y' : 'x';
  const std::string foreign = NonceManager("other-secret", kLifetime).issue(kT0, kHost);
  for (const std::string &bad :
       {n, foreign, std::string("7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v")}) {
    const Credentials creds = answer(bad, Answer{});  // right password, forged nonce
    const Authenticator::Result r = auth_.check(&creds, kMethod, kRealm, kT0, kHost);
    EXPECT_EQ(r.outcome, Authenticator::Outcome::Failed) << bad;
    EXPECT_EQ(r.reason, "bad-nonce") << bad;
  }
}

// Spoofed bans: wrong answers from a forged source address, with a nonce
// the attacker got under its own, are bad-nonce, not the claimed source's failures,
// and leave that nonce usable by the host it was issued to.
TEST_F(AuthenticatorTest, NonceOfAnotherHostIsNotAFailureOfTheSource) {
  const std::string attackers = param(auth_.challenges(kRealm, false, kT0, "10.0.0.2")[0], "nonce");
  for (const char *password : {"guess", "secret"}) {
    const Credentials creds = answer(attackers, with("alice", password));
    const Authenticator::Result r = auth_.check(&creds, kMethod, kRealm, kT0, "10.0.0.1");
    EXPECT_EQ(r.outcome, Authenticator::Outcome::Failed) << password;
    EXPECT_EQ(r.reason, "bad-nonce") << password;
    EXPECT_FALSE(r.from_source) << password;
  }
  // Refusals that would spend a nonce of the source's own do not spend this one.
  Answer no_qop;
  no_qop.qop = "";
  const Credentials bad = answer(attackers, no_qop);
  EXPECT_EQ(auth_.check(&bad, kMethod, kRealm, kT0, "10.0.0.1").reason, "bad-nonce");
  EXPECT_EQ(nonces_.check(attackers, kT0, "10.0.0.2"), NonceManager::Check::Valid);

  // The same wrong answer with a nonce issued to 10.0.0.1 is 10.0.0.1's failure.
  const std::string own = param(auth_.challenges(kRealm, false, kT0, "10.0.0.1")[0], "nonce");
  const Credentials wrong = answer(own, with("alice", "guess"));
  const Authenticator::Result r = auth_.check(&wrong, kMethod, kRealm, kT0, "10.0.0.1");
  EXPECT_EQ(r.reason, "wrong-password");
  EXPECT_TRUE(r.from_source);
  // And the host that got the first nonce still answers it.
  const Credentials right = answer(attackers, Answer{});
  EXPECT_EQ(auth_.check(&right, kMethod, kRealm, kT0, "10.0.0.2").outcome,
            Authenticator::Outcome::Ok);
}

TEST_F(AuthenticatorTest, ReplayedNonceCountIsRejected) {
  const std::string n = nonce();
  Answer a;
  const Credentials first = answer(n, a);
  EXPECT_EQ(auth_.check(&first, kMethod, kRealm, kT0, kHost).outcome, Authenticator::Outcome::Ok);
  // The same request again (a captured REGISTER replayed by someone else, or a
  // UDP retransmission): never Ok; a fresh challenge with stale=true.
  const Authenticator::Result replay = auth_.check(&first, kMethod, kRealm, kT0 + 1, kHost);
  EXPECT_EQ(replay.outcome, Authenticator::Outcome::Stale);
  EXPECT_EQ(replay.reason, "replay");

  a.nc = "00000002";
  const Credentials second = answer(n, a);
  EXPECT_EQ(auth_.check(&second, kMethod, kRealm, kT0 + 2, kHost).outcome,
            Authenticator::Outcome::Ok);
  EXPECT_EQ(auth_.check(&first, kMethod, kRealm, kT0 + 3, kHost).reason, "replay");
  a.nc = "00000010";
  const Credentials later = answer(n, a);
  EXPECT_EQ(auth_.check(&later, kMethod, kRealm, kT0 + 4, kHost).outcome,
            Authenticator::Outcome::Ok);
}

TEST_F(AuthenticatorTest, WrongPasswordSpendsTheNonce) {
  const std::string n = nonce();
  const Credentials wrong = answer(n, with("alice", "guess"));
  EXPECT_EQ(auth_.check(&wrong, kMethod, kRealm, kT0, kHost).reason, "wrong-password");
  // The nonce that saw a wrong guess never takes the right password.
  const Credentials right = answer(n, Answer{});
  const Authenticator::Result r = auth_.check(&right, kMethod, kRealm, kT0, kHost);
  EXPECT_EQ(r.outcome, Authenticator::Outcome::Failed);
  EXPECT_EQ(r.reason, "spent-nonce");
  // A fresh challenge works at once.
  const Credentials retry = answer(nonce(), Answer{});
  EXPECT_EQ(auth_.check(&retry, kMethod, kRealm, kT0, kHost).outcome, Authenticator::Outcome::Ok);
}

TEST_F(AuthenticatorTest, BruteForceAgainstOneNonceGetsOneGuess) {
  // The brute-force attack: thousands of guesses against one nonce, then the right
  // password. Only the first guess is checked; the rest, and the right password,
  // are refused without hashing and without telling anything.
  const std::string n = nonce();
  Answer a = with("alice", "guess-0");
  for (int i = 0; i < 1000; ++i) {
    a.password = "guess-" + std::to_string(i);
    char nc[9];
    snprintf(nc, sizeof nc, "%08x", i + 1);
    a.nc = nc;
    const Credentials creds = answer(n, a);
    const Authenticator::Result r = auth_.check(&creds, kMethod, kRealm, kT0, kHost);
    ASSERT_EQ(r.outcome, Authenticator::Outcome::Failed) << i;
    ASSERT_EQ(r.reason, i == 0 ? "wrong-password" : "spent-nonce") << i;
  }
  Answer right;
  right.nc = "00001000";
  const Credentials creds = answer(n, right);
  EXPECT_EQ(auth_.check(&creds, kMethod, kRealm, kT0, kHost).reason, "spent-nonce");
  // Even once expired: a spent nonce never earns stale=true (which would confirm
  // the password).
  EXPECT_EQ(auth_.check(&creds, kMethod, kRealm, kT0 + kLifetime + 1, kHost).reason, "spent-nonce");
}

TEST_F(AuthenticatorTest, EveryRefusalSpendsTheNonce) {
  using O = Authenticator::Outcome;
  std::vector<std::pair<const char *, Answer>> refusals = {
      {"unknown user", with("nobody", "secret")},
      {"other domain's user, wrong password", with("alice@other.example", "secret")},
      {"no secret for the algorithm", with("carol", "carolpw", "MD5")},
      {"bad algorithm", with("alice", "secret", "MD5-sess")},
  };
  Answer no_qop = with("alice", "secret");
  no_qop.qop = "";
  refusals.push_back({"no qop", no_qop});
  for (const auto &[name, refused] : refusals) {
    const std::string n = nonce();
    const Credentials bad = answer(n, refused);
    EXPECT_EQ(auth_.check(&bad, kMethod, kRealm, kT0, kHost).outcome, O::Failed) << name;
    const Credentials right = answer(n, Answer{});
    EXPECT_EQ(auth_.check(&right, kMethod, kRealm, kT0, kHost).reason, "spent-nonce") << name;
  }
}

TEST_F(AuthenticatorTest, StaleNonceOnlyTellsTheRightPassword) {
  const std::string n = nonce(kT0);
  const int64_t later = kT0 + kLifetime + 1;

  const Credentials right = answer(n, Answer{});
  const Authenticator::Result stale = auth_.check(&right, kMethod, kRealm, later, kHost);
  EXPECT_EQ(stale.outcome, Authenticator::Outcome::Stale);
  EXPECT_EQ(stale.user, "alice");

  const Credentials wrong = answer(n, with("alice", "guess"));
  const Authenticator::Result failed = auth_.check(&wrong, kMethod, kRealm, later, kHost);
  EXPECT_EQ(failed.outcome, Authenticator::Outcome::Failed);
  EXPECT_EQ(failed.reason, "wrong-password");

  // The wrong guess spent the nonce: nothing more is checked against it.
  const Credentials unknown = answer(n, with("nobody", "secret"));
  EXPECT_EQ(auth_.check(&unknown, kMethod, kRealm, later, kHost).reason, "spent-nonce");
  EXPECT_EQ(auth_.check(&right, kMethod, kRealm, later, kHost).reason, "spent-nonce");

  // The client retries with a fresh nonce from the stale=true challenge.
  const std::vector<std::string> c = auth_.challenges(kRealm, true, later, kHost);
  const Credentials retry = answer(param(c[0], "nonce"), Answer{});
  EXPECT_EQ(auth_.check(&retry, kMethod, kRealm, later, kHost).outcome, Authenticator::Outcome::Ok);
}

TEST_F(AuthenticatorTest, MalformedNonceCountFails) {
  Answer a;
  a.nc = "0000000z";  // response computed over it, so only the nc is wrong
  const Credentials creds = answer(nonce(), a);
  const Authenticator::Result r = auth_.check(&creds, kMethod, kRealm, kT0, kHost);
  EXPECT_EQ(r.outcome, Authenticator::Outcome::Failed);
  EXPECT_EQ(r.reason, "malformed");
}

TEST_F(AuthenticatorTest, ForgottenNonceIsStaleOnlyForTheRightPassword) {
  NonceManager small(kSecret, kLifetime, /*slots=*/4, kT0);
  Authenticator auth(users_, {Algorithm::SHA256, Algorithm::MD5}, small);
  const std::string n = param(auth.challenges(kRealm, false, kT0, kHost)[0], "nonce");
  Answer a;
  const Credentials first = answer(n, a);
  EXPECT_EQ(auth.check(&first, kMethod, kRealm, kT0, kHost).outcome, Authenticator::Outcome::Ok);
  // Five more challenges reuse n's slot.
  for (int i = 0; i < 5; ++i) auth.challenges(kRealm, false, kT0 + 1, kHost);

  a.nc = "00000002";
  const Credentials right = answer(n, a);
  const Authenticator::Result stale = auth.check(&right, kMethod, kRealm, kT0 + 2, kHost);
  EXPECT_EQ(stale.outcome, Authenticator::Outcome::Stale);
  EXPECT_EQ(stale.reason, "");
  EXPECT_EQ(stale.user, "alice");
  // A replay of the first request is not let through either.
  EXPECT_EQ(auth.check(&first, kMethod, kRealm, kT0 + 2, kHost).outcome,
            Authenticator::Outcome::Stale);

  Answer w = with("alice", "guess");
  w.nc = "00000002";
  const Credentials wrong = answer(n, w);
  const Authenticator::Result failed = auth.check(&wrong, kMethod, kRealm, kT0 + 2, kHost);
  EXPECT_EQ(failed.outcome, Authenticator::Outcome::Failed);
  EXPECT_EQ(failed.reason, "wrong-password");
  const Credentials unknown = answer(n, with("nobody", "secret"));
  EXPECT_EQ(auth.check(&unknown, kMethod, kRealm, kT0 + 2, kHost).reason, "unknown-user");

  // The client retries with the nonce of the stale=true challenge.
  const Credentials retry =
      answer(param(auth.challenges(kRealm, true, kT0 + 2, kHost)[0], "nonce"), {});
  EXPECT_EQ(auth.check(&retry, kMethod, kRealm, kT0 + 2, kHost).outcome,
            Authenticator::Outcome::Ok);
}

TEST_F(AuthenticatorTest, NonceFromBeforeARestartIsStale) {
  NonceManager before(kSecret, kLifetime, NonceManager::kDefaultSlots, kT0);
  Authenticator first_run(users_, {Algorithm::SHA256}, before);
  const std::string n = param(first_run.challenges(kRealm, false, kT0, kHost)[0], "nonce");
  Answer a;
  const Credentials first = answer(n, a);
  EXPECT_EQ(first_run.check(&first, kMethod, kRealm, kT0, kHost).outcome,
            Authenticator::Outcome::Ok);

  NonceManager after(kSecret, kLifetime, NonceManager::kDefaultSlots, kT0 + 30);
  Authenticator second_run(users_, {Algorithm::SHA256}, after);
  a.nc = "00000002";
  const Credentials next = answer(n, a);
  EXPECT_EQ(second_run.check(&next, kMethod, kRealm, kT0 + 30, kHost).outcome,
            Authenticator::Outcome::Stale);
  // Replaying the request the first run accepted gets no further.
  EXPECT_EQ(second_run.check(&first, kMethod, kRealm, kT0 + 30, kHost).outcome,
            Authenticator::Outcome::Stale);
  const Credentials wrong = answer(n, with("alice", "guess"));
  EXPECT_EQ(second_run.check(&wrong, kMethod, kRealm, kT0 + 30, kHost).reason, "wrong-password");
}

TEST_F(AuthenticatorTest, FloodOfValidClientsIsNeverRefused) {
  NonceManager small(kSecret, 3600, /*slots=*/8, kT0);
  Authenticator auth(users_, {Algorithm::SHA256}, small);
  for (int i = 0; i < 1000; ++i) {
    const std::string n = param(auth.challenges(kRealm, false, kT0, kHost)[0], "nonce");
    const Credentials creds = answer(n, Answer{});
    const Authenticator::Result r = auth.check(&creds, kMethod, kRealm, kT0, kHost);
    ASSERT_EQ(r.outcome, Authenticator::Outcome::Ok) << i << ' ' << r.reason;
  }
}

}  // namespace
}  // namespace portier::auth

// The nonce's tag is HMAC-SHA256 (RFC 2104) of its 24-byte payload followed by the
// host it was issued to ('I' and the 16-byte address, IPv4 mapped into IPv6),
// truncated to 16 bytes, whatever the key length: checked against OpenSSL's own
// HMAC().
TEST(NonceManagerMac, IsHmacSha256OfThePayload) {
  auto b64 = [](char c) -> unsigned {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '-' ? 62 : 63;
  };
  for (const std::string &secret :
       {std::string(32, 'k'), std::string("short"), std::string(100, 'x')}) {
    portier::auth::NonceManager nonces(secret, 60);
    const std::string n = nonces.issue(1000, "10.0.0.1");
    std::string raw;
    unsigned acc = 0;
    int bits = 0;
    for (char c : n) {
      acc = (acc << 6) | b64(c);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        raw.push_back(static_cast<char>((acc >> bits) & 0xff));
      }
    }
    ASSERT_EQ(raw.size(), 40u) << n;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    const std::string input = raw.substr(0, 24) + 'I' + std::string(10, '\0') + "\xff\xff" +
                              std::string("\x0a\x00\x00\x01", 4);
    ASSERT_NE(HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                   reinterpret_cast<const unsigned char *>(input.data()), input.size(), md, &len),
              nullptr);
    EXPECT_EQ(std::string(reinterpret_cast<char *>(md), 16), raw.substr(24)) << secret.size();
  }
}
