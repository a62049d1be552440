// The digest client of the door and monitors (RFC 7616, RFC 8760), checked
// against the server-side arithmetic the proxy uses.
#include <gtest/gtest.h>

#include <sstream>

#include "common/auth/digest_client.h"

namespace {

using namespace portier::auth;

// "name=value" pieces of a header value, as sofia-sip keeps au_params.
std::vector<std::string> params_of(const std::string &header) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char c : header) {
    if (c == '"') quoted = !quoted;
    if (c == ',' && !quoted) {
      out.push_back(cur);
      cur.clear();
      continue;
    }
    if (!(cur.empty() && c == ' ')) cur += c;
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

std::vector<std::string_view> views(const std::vector<std::string> &v) {
  return std::vector<std::string_view>(v.begin(), v.end());
}

TEST(DigestClient, ParsesChallengesAndSkipsUnknownAlgorithms) {
  auto md5 = params_of("realm=\"home.example\", nonce=\"abc\", algorithm=MD5, qop=\"auth\"");
  auto c = parse_challenge("Digest", views(md5));
  ASSERT_TRUE(c);
  EXPECT_EQ(c->realm, "home.example");
  EXPECT_EQ(c->algorithm, Algorithm::MD5);
  EXPECT_TRUE(c->qop_auth);
  auto sha =
      params_of("realm=\"home.example\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth,auth-int\"");
  EXPECT_EQ(parse_challenge("Digest", views(sha))->algorithm, Algorithm::SHA256);
  // RFC 8760 §2.4: an unknown algorithm's challenge is skipped, not fatal
  auto sha512 = params_of("realm=\"home.example\", nonce=\"abc\", algorithm=SHA-512-256");
  EXPECT_FALSE(parse_challenge("Digest", views(sha512)));
  auto plain = params_of("realm=\"home.example\", nonce=\"abc\"");
  EXPECT_EQ(parse_challenge("Digest", views(plain))->algorithm, Algorithm::MD5)
      << "no algorithm means MD5 (RFC 7616 §3.3)";
  EXPECT_FALSE(parse_challenge("Basic", views(plain)));
  auto no_realm = params_of("nonce=\"abc\"");
  EXPECT_FALSE(parse_challenge("Digest", views(no_realm)));
}

// What the client sends is what the proxy's arithmetic expects, for both
// algorithms, with qop=auth and a counted nc.
TEST(DigestClient, AuthorizationVerifiesOnTheServerSide) {
  for (Algorithm alg : {Algorithm::SHA256, Algorithm::MD5}) {
    DigestClient client("door", "door-Pw-4410");
    Challenge ch;
    ch.algorithm = alg;
    ch.realm = "home.example";
    ch.nonce = "n0nce";
    ch.opaque = "op";
    ch.qop_auth = true;
    ASSERT_TRUE(client.challenged({ch}));
    for (const char *nc : {"00000001", "00000002"}) {
      const std::string h = client.authorization("REGISTER", "sip:home.example");
      ASSERT_EQ(h.rfind("Digest ", 0), 0u) << h;
      auto p = params_of(h.substr(7));
      Credentials cr;
      ASSERT_TRUE(credentials_from_params(views(p), cr)) << h;
      EXPECT_EQ(cr.username, "door");
      EXPECT_EQ(cr.uri, "sip:home.example");
      EXPECT_EQ(cr.nc, nc);
      EXPECT_EQ(cr.opaque, "op");
      EXPECT_EQ(cr.algorithm, algorithm_name(alg));
      const std::string ha1 = compute_ha1(alg, "door", "home.example", "door-Pw-4410");
      EXPECT_EQ(cr.response, compute_response(alg, ha1, cr.nonce, cr.nc, cr.cnonce, "auth",
                                              "REGISTER", "sip:home.example"));
      EXPECT_EQ(h.find("door-Pw-4410"), std::string::npos) << "the password itself is never sent";
    }
  }
}

TEST(DigestClient, NewNonceRestartsTheCount) {
  DigestClient client("u", "p");
  Challenge ch;
  ch.realm = "r";
  ch.nonce = "one";
  ch.qop_auth = true;
  client.challenged({ch});
  client.authorization("INVITE", "sip:x@r");
  ch.nonce = "two";
  ch.stale = true;
  client.challenged({ch});
  auto p = params_of(client.authorization("INVITE", "sip:x@r").substr(7));
  Credentials cr;
  ASSERT_TRUE(credentials_from_params(views(p), cr));
  EXPECT_EQ(cr.nonce, "two");
  EXPECT_EQ(cr.nc, "00000001");
}

}  // namespace
