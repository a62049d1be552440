// HMAC-SHA256 with a prepared key (common/auth/hmac.h) against the test vectors
// of RFC 4231 §4, and the same MAC whether the message comes in one part or many.
#include <gtest/gtest.h>

#include <string>

#include "common/auth/hmac.h"

namespace portier::auth {
namespace {

std::string bytes(size_t n, char c) { return std::string(n, c); }

struct Rfc4231Case {
  const char *name;
  std::string key, data;
  const char *mac;
};

TEST(HmacSha256, Rfc4231Vectors) {
  const Rfc4231Case cases[] = {
      // §4.2 test case 1
      {"4.2", bytes(20, '\x0b'), "Hi There",
       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
      // §4.3 test case 2: a key shorter than the hash
      {"4.3", "Jefe", "what do ya want for nothing?",
       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
      // §4.4 test case 3
      {"4.4", bytes(20, '\xaa'), bytes(50, '\xdd'),
       "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
      // §4.7 test case 6: a key longer than the block is hashed first
      {"4.7", bytes(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First",
       "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
  };
  for (const Rfc4231Case &c : cases) {
    const HmacSha256 key(c.key);
    EXPECT_EQ(to_hex(key.mac({c.data})), c.mac) << "RFC 4231 §" << c.name;
    // The prepared key is reused: a second MAC gives the same result.
    EXPECT_EQ(to_hex(key.mac({c.data})), c.mac) << "RFC 4231 §" << c.name << ", again";
  }
}

TEST(HmacSha256, PartsAreConcatenated) {
  const HmacSha256 key("Jefe");
  EXPECT_EQ(key.mac({"what do ya want ", "", "for nothing?"}),
            key.mac({"what do ya want for nothing?"}));
  EXPECT_NE(key.mac({"what do ya want for nothing"}), key.mac({"what do ya want for nothing?"}));
}

TEST(HmacSha256, MovedKeyStillWorks) {
  HmacSha256 a("Jefe");
  HmacSha256 b = std::move(a);
  EXPECT_EQ(to_hex(b.mac({"what do ya want for nothing?"})),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace
}  // namespace portier::auth
