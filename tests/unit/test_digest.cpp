// Digest arithmetic against the published vectors (RFC 7616 §3.9.1, RFC 2617 §3.5)
// and the parsing of sofia-sip's au_params strings.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

#include "common/auth/digest.h"

namespace portier::auth {
namespace {

// RFC 7616 §3.9.1.
constexpr const char *kUser = "Mufasa";
constexpr const char *kRealm = "http-auth@example.org";
constexpr const char *kPassword = "Circle of Life";
constexpr const char *kUri = "/dir/index.html";
constexpr const char *kNonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
constexpr const char *kCnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

struct VectorCase {
  Algorithm alg;
  const char *ha1;
  const char *response;
};

// gtest would print the struct byte by byte, padding included (valgrind: "uninitialised").
void PrintTo(const VectorCase &c, std::ostream *os) { *os << c.response; }

class Rfc7616Vector : public testing::TestWithParam<VectorCase> {};

TEST_P(Rfc7616Vector, Ha1AndResponse) {
  const VectorCase &c = GetParam();
  const std::string ha1 = compute_ha1(c.alg, kUser, kRealm, kPassword);
  EXPECT_EQ(ha1, c.ha1);
  EXPECT_EQ(compute_response(c.alg, ha1, kNonce, "00000001", kCnonce, "auth", "GET", kUri),
            c.response);
}

INSTANTIATE_TEST_SUITE_P(
    Digest, Rfc7616Vector,
    testing::Values(VectorCase{Algorithm::MD5, "3d78807defe7de2157e2b0b6573a855f",
                               "8ca523f5e9506fed4657c9700eebdbec"},
                    VectorCase{Algorithm::SHA256,
                               "7987c64c30e25f1b74be53f966b49b90f2808aa92faf9a00262392d7b4794232",
                               "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"}),
    [](const testing::TestParamInfo<VectorCase> &p) {
      return std::string(p.param.alg == Algorithm::MD5 ? "MD5" : "SHA256");
    });

TEST(Digest, Rfc2617Vector) {
  // RFC 2617 §3.5 (note the capital O in the password there).
  const std::string ha1 =
      compute_ha1(Algorithm::MD5, "Mufasa", "testrealm@host.com", "Circle Of Life");
  EXPECT_EQ(compute_response(Algorithm::MD5, ha1, "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001",
                             "0a4f113b", "auth", "GET", "/dir/index.html"),
            "6629fae49393a05397450978507c4ef1");
}

TEST(Digest, ResponseWithoutQopIgnoresNcAndCnonce) {
  // RFC 2069 style: H(HA1:nonce:HA2), value computed independently.
  const std::string ha1 = compute_ha1(Algorithm::MD5, kUser, kRealm, kPassword);
  EXPECT_EQ(compute_response(Algorithm::MD5, ha1, kNonce, "00000001", kCnonce, "", "GET", kUri),
            "7b2cc3b30e75b4777ea31027084363fd");
  EXPECT_EQ(compute_response(Algorithm::MD5, ha1, kNonce, "", "", "", "GET", kUri),
            "7b2cc3b30e75b4777ea31027084363fd");
}

TEST(Digest, HexHashOfEmptyInput) {
  EXPECT_EQ(hex_hash(Algorithm::MD5, ""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(hex_hash(Algorithm::SHA256, ""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Digest, ParseAlgorithm) {
  struct Case {
    const char *name;
    std::optional<Algorithm> expected;
  } cases[] = {
      {"MD5", Algorithm::MD5},        {"md5", Algorithm::MD5},       {"SHA-256", Algorithm::SHA256},
      {"sha-256", Algorithm::SHA256}, {"MD5-sess", std::nullopt},    {"SHA-256-sess", std::nullopt},
      {"SHA256", std::nullopt},       {"SHA-512-256", std::nullopt}, {"", std::nullopt},
  };
  for (const Case &c : cases) EXPECT_EQ(parse_algorithm(c.name), c.expected) << c.name;
  EXPECT_STREQ(algorithm_name(Algorithm::MD5), "MD5");
  EXPECT_STREQ(algorithm_name(Algorithm::SHA256), "SHA-256");
}

TEST(Digest, ConstantTimeEqual) {
  struct Case {
    const char *a, *b;
    bool equal;
  } cases[] = {
      {"", "", true},
      {"8ca523f5e9506fed4657c9700eebdbec", "8ca523f5e9506fed4657c9700eebdbec", true},
      {"8ca523f5e9506fed4657c9700eebdbec", "8ca523f5e9506fed4657c9700eebdbed", false},
      {"9ca523f5e9506fed4657c9700eebdbec", "8ca523f5e9506fed4657c9700eebdbec", false},
      {"8ca523f5e9506fed4657c9700eebdbec", "8ca523f5e9506fed4657c9700eebdbe", false},
      {"abc", "", false},
      {"", "abc", false},
  };
  for (const Case &c : cases) {
    EXPECT_EQ(constant_time_equal(c.a, c.b), c.equal) << '"' << c.a << "\" vs \"" << c.b << '"';
  }
}

TEST(Credentials, FromSofiaParams) {
  const std::vector<std::string_view> params = {
      "username=\"alice\"",
      "realm=\"home.example\"",
      "nonce=\"abc-_123\"",
      "uri=\"sip:home.example\"",
      "response=\"0123456789abcdef0123456789abcdef\"",
      "algorithm=SHA-256",
      "qop=auth",
      "nc=00000001",
      "cnonce=\"xyz\"",
      "opaque=\"op\"",
  };
  Credentials c;
  ASSERT_TRUE(credentials_from_params(params, c));
  EXPECT_EQ(c.username, "alice");
  EXPECT_EQ(c.realm, "home.example");
  EXPECT_EQ(c.nonce, "abc-_123");
  EXPECT_EQ(c.uri, "sip:home.example");
  EXPECT_EQ(c.response, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(c.algorithm, "SHA-256");
  EXPECT_EQ(c.qop, "auth");
  EXPECT_EQ(c.nc, "00000001");
  EXPECT_EQ(c.cnonce, "xyz");
  EXPECT_EQ(c.opaque, "op");
}

TEST(Credentials, NamesAreCaseInsensitiveAndEscapesRemoved) {
  const std::vector<std::string_view> params = {
      "UserName=\"al\\\"ice\\\\\"",
      "Realm = \"home.example\"",
      "NONCE=\"n\"",
      "Uri=\"sip:a@b\"",
      "Response=\"r\"",
      "x-unknown=\"ignored\"",
  };
  Credentials c;
  ASSERT_TRUE(credentials_from_params(params, c));
  EXPECT_EQ(c.username, "al\"ice\\");
  EXPECT_EQ(c.realm, "home.example");
  EXPECT_EQ(c.uri, "sip:a@b");
  EXPECT_TRUE(c.qop.empty());
  EXPECT_TRUE(c.algorithm.empty());
}

TEST(Credentials, OverwritesPreviousContent) {
  Credentials c;
  c.qop = "auth";
  c.opaque = "stale";
  ASSERT_TRUE(credentials_from_params(
      {"username=\"a\"", "realm=\"r\"", "nonce=\"n\"", "uri=\"u\"", "response=\"x\""}, c));
  EXPECT_TRUE(c.qop.empty());
  EXPECT_TRUE(c.opaque.empty());
}

TEST(Credentials, RejectsIncompleteOrBrokenParams) {
  const std::vector<std::string_view> full = {
      "username=\"a\"", "realm=\"r\"", "nonce=\"n\"", "uri=\"u\"", "response=\"x\"",
  };
  // Each required field, left out in turn.
  for (size_t skip = 0; skip < full.size(); ++skip) {
    std::vector<std::string_view> params;
    for (size_t i = 0; i < full.size(); ++i) {
      if (i != skip) params.push_back(full[i]);
    }
    Credentials c;
    EXPECT_FALSE(credentials_from_params(params, c)) << "without " << full[skip];
  }

  struct Case {
    const char *what;
    std::vector<std::string_view> extra;
  } cases[] = {
      {"qop without nc", {"qop=auth", "cnonce=\"c\""}},
      {"qop without cnonce", {"qop=auth", "nc=00000001"}},
      {"duplicate response", {"response=\"y\""}},
      {"unterminated quote", {"cnonce=\"abc"}},
      {"garbage after quote", {"opaque=\"a\"b"}},
      {"dangling escape", {"opaque=\"a\\"}},
  };
  for (const Case &k : cases) {
    std::vector<std::string_view> params = full;
    params.insert(params.end(), k.extra.begin(), k.extra.end());
    Credentials c;
    EXPECT_FALSE(credentials_from_params(params, c)) << k.what;
  }

  std::vector<std::string_view> with_qop = full;
  with_qop.insert(with_qop.end(), {"qop=auth", "nc=00000001", "cnonce=\"c\""});
  Credentials c;
  EXPECT_TRUE(credentials_from_params(with_qop, c));
}

}  // namespace
}  // namespace portier::auth
