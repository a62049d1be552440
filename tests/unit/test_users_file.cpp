// The users file: Flexisip's text format, its errors, and which HA1 each entry yields.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "common/auth/users_file.h"

namespace portier::auth {
namespace {

// Reference values computed outside portier (Python hashlib):
//   MD5("alice:home.example:secret"), SHA-256("alice:home.example:secret").
constexpr const char *kAliceMd5 = "8e04e22ce8503c2e46298f77fb79cb77";
constexpr const char *kAliceSha256 =
    "594b89586ed1edb1d8cbaf00e705b82ed9d4a85733a26b9392bc5eb76bbb50c1";

constexpr const char *kGoodFile =
    "# portier users\n"
    "\n"
    "version:1\n"
    "   # indented comment\n"
    "alice@Home.Example clrtxt:secret ;\n"
    "bob@home.example md5:8E04E22CE8503C2E46298F77FB79CB77 "
    "sha256:594b89586ed1edb1d8cbaf00e705b82ed9d4a85733a26b9392bc5eb76bbb50c1 ;\n"
    "carol@home.example\tsha256:594b89586ed1edb1d8cbaf00e705b82ed9d4a85733a26b9392bc5eb76bbb50c1;"
    " +33123456789\r\n"
    "dave@other.example md5:8e04e22ce8503c2e46298f77fb79cb77 ; trailing words are ignored\n";

UsersFile load_good() {
  UsersFile users;
  std::string error;
  EXPECT_TRUE(users.load_from_string(kGoodFile, "users.txt", &error)) << error;
  return users;
}

TEST(UsersFile, ParsesEntries) {
  const UsersFile users = load_good();
  EXPECT_EQ(users.size(), 4u);
  EXPECT_TRUE(users.has_user("alice", "home.example"));
  EXPECT_TRUE(users.has_user("alice", "HOME.example"));  // domains are case-insensitive
  EXPECT_TRUE(users.has_user("bob", "home.example"));
  EXPECT_TRUE(users.has_user("carol", "home.example"));
  EXPECT_TRUE(users.has_user("dave", "other.example"));
  EXPECT_FALSE(users.has_user("Alice", "home.example"));  // user parts are not
  EXPECT_FALSE(users.has_user("dave", "home.example"));
  EXPECT_FALSE(users.has_user("eve", "home.example"));
}

// What "*" in the proxy's reg-domains and auth-domains stands for.
TEST(UsersFile, DomainsAreEveryUsersDomainOnce) {
  const UsersFile users = load_good();
  EXPECT_EQ(users.domains(), (std::unordered_set<std::string>{"home.example", "other.example"}));
}

TEST(UsersFile, ClearTextWorksForAnyRealmAndAlgorithm) {
  const UsersFile users = load_good();
  EXPECT_EQ(users.ha1("alice", "home.example", "home.example", Algorithm::MD5), kAliceMd5);
  EXPECT_EQ(users.ha1("alice", "home.example", "home.example", Algorithm::SHA256), kAliceSha256);
  EXPECT_EQ(users.ha1("alice", "home.example", "other.realm", Algorithm::MD5),
            compute_ha1(Algorithm::MD5, "alice", "other.realm", "secret"));
  // A clrtxt HA1 is kept once computed: asked for again, in another realm
  // spelling (the hash covers the realm as written), or back, it stays right.
  EXPECT_EQ(users.ha1("alice", "home.example", "home.example", Algorithm::MD5), kAliceMd5);
  EXPECT_EQ(users.ha1("alice", "home.example", "Home.Example", Algorithm::MD5),
            compute_ha1(Algorithm::MD5, "alice", "Home.Example", "secret"));
  EXPECT_EQ(users.ha1("alice", "home.example", "home.example", Algorithm::MD5), kAliceMd5);
  EXPECT_EQ(users.ha1("alice", "home.example", "home.example", Algorithm::SHA256), kAliceSha256);
}

TEST(UsersFile, StoredHa1OnlyForItsAlgorithmAndRealm) {
  const UsersFile users = load_good();
  struct Case {
    const char *user, *domain, *realm;
    Algorithm alg;
    std::optional<std::string> expected;
  } cases[] = {
      {"bob", "home.example", "home.example", Algorithm::MD5, kAliceMd5},  // stored lower-cased
      {"bob", "home.example", "home.example", Algorithm::SHA256, kAliceSha256},
      {"bob", "home.example", "HOME.EXAMPLE", Algorithm::MD5, kAliceMd5},
      {"bob", "home.example", "other.realm", Algorithm::MD5, std::nullopt},
      {"carol", "home.example", "home.example", Algorithm::SHA256, kAliceSha256},
      {"carol", "home.example", "home.example", Algorithm::MD5, std::nullopt},
      {"dave", "other.example", "other.example", Algorithm::MD5, kAliceMd5},
      {"dave", "other.example", "home.example", Algorithm::MD5, std::nullopt},
      {"eve", "home.example", "home.example", Algorithm::MD5, std::nullopt},
  };
  for (const Case &c : cases) {
    EXPECT_EQ(users.ha1(c.user, c.domain, c.realm, c.alg), c.expected)
        << c.user << "@" << c.domain << " realm " << c.realm << " " << algorithm_name(c.alg);
  }
}

TEST(UsersFile, FullAorUsername) {
  const UsersFile users = load_good();
  // The client hashes the username it sends, the full AOR included.
  EXPECT_EQ(users.ha1("alice@home.example", "home.example", "home.example", Algorithm::MD5),
            compute_ha1(Algorithm::MD5, "alice@home.example", "home.example", "secret"));
  EXPECT_TRUE(users.has_user("alice@home.example", "home.example"));
  // A stored HA1 was computed over "bob", so it cannot serve "bob@home.example".
  EXPECT_EQ(users.ha1("bob@home.example", "home.example", "home.example", Algorithm::MD5),
            std::nullopt);
}

TEST(UsersFile, ErrorsNameFileAndLineAndNeverThePassword) {
  struct Case {
    const char *text;
    const char *error;
  } cases[] = {
      {"", "users.txt:1: missing 'version:1' line"},
      {"# only a comment\n\n", "users.txt:2: missing 'version:1' line"},
      {"alice@home.example clrtxt:s3cr3t ;\n",
       "users.txt:1: expected 'version:1' as the first line"},
      {"# c\nversion:2\n",
       "users.txt:2: unsupported users file version '2' (only version:1 is known)"},
      {"version:1\n\nalice@home.example clrtxt:s3cr3t\n",
       "users.txt:3: missing ';' at the end of the entry"},
      {"version:1\n ;\n", "users.txt:2: missing user@domain before ';'"},
      {"version:1\nclrtxt:s3cr3t ;\n", "users.txt:2: the entry must start with user@domain"},
      {"version:1\nalice clrtxt:s3cr3t ;\n", "users.txt:2: the entry must start with user@domain"},
      {"version:1\n@home.example clrtxt:s3cr3t ;\n",
       "users.txt:2: the entry must start with user@domain"},
      {"version:1\nalice@ clrtxt:s3cr3t ;\n", "users.txt:2: the entry must start with user@domain"},
      {"version:1\nalice@home.example s3cr3t ;\n",
       "users.txt:2: each secret needs a type: clrtxt:, md5: or sha256:"},
      {"version:1\nalice@home.example plain:s3cr3t ;\n",
       "users.txt:2: unknown secret type (expected clrtxt:, md5: or sha256:)"},
      {"version:1\nalice@home.example s3:cr3t ;\n",
       "users.txt:2: unknown secret type (expected clrtxt:, md5: or sha256:)"},
      {"version:1\nalice@home.example clrtxt: ;\n", "users.txt:2: empty clrtxt: secret"},
      {"version:1\nalice@home.example clrtxt:s3cr3t clrtxt:s3cr3t ;\n",
       "users.txt:2: clrtxt: given twice"},
      {"version:1\nalice@home.example md5:s3cr3t ;\n",
       "users.txt:2: md5: expects 32 hex digits (HA1)"},
      {"version:1\nalice@home.example md5:8e04e22ce8503c2e46298f77fb79cb7 ;\n",
       "users.txt:2: md5: expects 32 hex digits (HA1)"},
      {"version:1\nalice@home.example sha256:8e04e22ce8503c2e46298f77fb79cb77 ;\n",
       "users.txt:2: sha256: expects 64 hex digits (HA1)"},
      {"version:1\nalice@home.example ;\n", "users.txt:2: no secret for alice@home.example"},
      {"version:1\nalice@home.example clrtxt:s3cr3t ;\n# x\nalice@HOME.example clrtxt:b ;\n",
       "users.txt:4: duplicate user alice@home.example (first at line 2)"},
  };
  for (const Case &c : cases) {
    UsersFile users;
    std::string error;
    EXPECT_FALSE(users.load_from_string(c.text, "users.txt", &error)) << c.text;
    EXPECT_EQ(error, c.error) << c.text;
    EXPECT_EQ(error.find("s3cr3t"), std::string::npos) << error;
    EXPECT_EQ(error.find("cr3t"), std::string::npos) << error;
    EXPECT_EQ(users.size(), 0u);
  }
}

TEST(UsersFile, FailedReloadKeepsPreviousUsers) {
  UsersFile users = load_good();
  std::string error;
  EXPECT_FALSE(users.load_from_string("version:1\nbroken\n", "users.txt", &error));
  EXPECT_EQ(users.size(), 4u);
  EXPECT_TRUE(users.has_user("alice", "home.example"));
  // A good reload replaces everything.
  EXPECT_TRUE(users.load_from_string("version:1\nzoe@home.example clrtxt:z ;\n", "u", &error));
  EXPECT_EQ(users.size(), 1u);
  EXPECT_FALSE(users.has_user("alice", "home.example"));
}

TEST(UsersFile, LoadsFromDisk) {
  char path[] = "/tmp/portier-users-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream out(path);
    out << kGoodFile;
  }
  UsersFile users;
  std::string error;
  EXPECT_TRUE(users.load(path, &error)) << error;
  EXPECT_EQ(users.size(), 4u);
  {
    std::ofstream out(path);
    out << "version:1\nalice@home.example clrtxt:x\n";
  }
  EXPECT_FALSE(users.load(path, &error));
  EXPECT_EQ(error, std::string(path) + ":2: missing ';' at the end of the entry");
  std::remove(path);

  EXPECT_FALSE(users.load(path, &error));
  EXPECT_EQ(error.rfind(std::string(path) + ": cannot open the users file", 0), 0u) << error;
  EXPECT_EQ(users.size(), 4u);
}

}  // namespace
}  // namespace portier::auth
