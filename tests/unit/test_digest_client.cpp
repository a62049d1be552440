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

// The usable challenges of a 401/407 in header order, as sipmsg::challenges
// hands them to the client: every (scheme, params) it cannot answer dropped.
std::vector<Challenge> usable(const std::vector<std::pair<std::string, std::string>> &headers) {
  std::vector<Challenge> out;
  for (const auto &[scheme, value] : headers) {
    auto p = params_of(value);
    if (auto c = parse_challenge(scheme, views(p))) out.push_back(*c);
  }
  return out;
}

std::string answered_algorithm(const std::vector<std::pair<std::string, std::string>> &headers) {
  DigestClient client("door", "door-Pw-4410");
  if (!client.challenged(usable(headers))) return "none";
  auto p = params_of(client.authorization("REGISTER", "sip:home.example").substr(7));
  Credentials cr;
  if (!credentials_from_params(views(p), cr)) return "unparsable";
  return cr.algorithm + " " + cr.nonce;
}

// RFC 8760 §2.4: one challenge per algorithm; RFC 7616 §3.7: in the server's
// order of preference. The first one we can answer wins, in every order.
TEST(DigestClient, ChoosesTheFirstChallengeItCanAnswerInEveryOrder) {
  const std::pair<std::string, std::string> md5{
      "Digest", "realm=\"home.example\", nonce=\"m\", algorithm=MD5, qop=\"auth\""};
  const std::pair<std::string, std::string> sha{
      "Digest", "realm=\"home.example\", nonce=\"s\", algorithm=SHA-256, qop=\"auth\""};
  const std::pair<std::string, std::string> sha512{
      "Digest", "realm=\"home.example\", nonce=\"x\", algorithm=SHA-512-256, qop=\"auth\""};
  const std::pair<std::string, std::string> bare{"Digest", "realm=\"home.example\", nonce=\"b\""};
  const std::pair<std::string, std::string> basic{"Basic", "realm=\"home.example\""};
  const std::pair<std::string, std::string> auth_int{
      "Digest", "realm=\"home.example\", nonce=\"i\", algorithm=MD5, qop=\"auth-int\""};
  struct Row {
    const char *name;
    std::vector<std::pair<std::string, std::string>> headers;
    const char *expected;
  } rows[] = {
      {"MD5 alone (Kamailio, Asterisk)", {md5}, "MD5 m"},
      {"SHA-256 alone", {sha}, "SHA-256 s"},
      {"MD5 then SHA-256", {md5, sha}, "MD5 m"},
      {"SHA-256 then MD5", {sha, md5}, "SHA-256 s"},
      {"an unknown algorithm first is skipped", {sha512, md5}, "MD5 m"},
      {"an unknown algorithm first, then SHA-256 and MD5", {sha512, sha, md5}, "SHA-256 s"},
      {"no algorithm means MD5 (RFC 7616 §3.3), RFC 2069 style", {bare}, "MD5 b"},
      {"another scheme first is skipped", {basic, sha}, "SHA-256 s"},
      {"qop=auth-int only: we cannot answer it, the next one wins", {auth_int, sha}, "SHA-256 s"},
      {"nothing we can answer", {sha512, basic, auth_int}, "none"},
      {"no challenge at all", {}, "none"},
  };
  for (const Row &row : rows) EXPECT_EQ(answered_algorithm(row.headers), row.expected) << row.name;
}

// Without qop (RFC 2069 style, Kamailio's default) the answer has no qop,
// nc or cnonce, and the response is H(HA1:nonce:HA2) (RFC 2617 §3.2.2.1).
TEST(DigestClient, AnswersAChallengeWithoutQop) {
  DigestClient client("mon1", "mon1-Pw-1931");
  auto p = params_of("realm=\"home.example\", nonce=\"abc\"");
  ASSERT_TRUE(client.challenged({*parse_challenge("Digest", views(p))}));
  const std::string h = client.authorization("INVITE", "sip:home@home.example");
  EXPECT_EQ(h.find("qop="), std::string::npos) << h;
  EXPECT_EQ(h.find("cnonce="), std::string::npos) << h;
  auto q = params_of(h.substr(7));
  Credentials cr;
  ASSERT_TRUE(credentials_from_params(views(q), cr)) << h;
  const std::string ha1 = compute_ha1(Algorithm::MD5, "mon1", "home.example", "mon1-Pw-1931");
  EXPECT_EQ(cr.response, compute_response(Algorithm::MD5, ha1, "abc", "", "", "", "INVITE",
                                          "sip:home@home.example"));
}

}  // namespace
