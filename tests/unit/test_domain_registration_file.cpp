// [inter-domain-connections] domain-registrations: the in-house proxy's list
// of domains to register to a cloud (docs/notes/housereg.md).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "proxy/domain_registration_file.h"

namespace portier::proxy {
namespace {

std::string write_file(const std::string &text) {
  char path[] = "/tmp/portier-domregs-XXXXXX";
  const int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(DomainRegistrationFile, ReadsLinesCommentsAndPasswords) {
  const std::string path = write_file(
      "# house -> cloud\n"
      "\n"
      "Home.Example sips:cloud.example.net:5061 pw#with-hash   # a comment\n"
      "  b.example\tsips:proxy.test:45318;maddr=127.0.0.1\n"
      "c.example sips:[2001:db8::1]:5061 secret\r\n");
  std::vector<DomainRegistrationEntry> e;
  ASSERT_EQ(load_domain_registrations(path, &e), "");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].local_domain, "home.example");
  EXPECT_EQ(e[0].cloud_uri, "sips:cloud.example.net:5061");
  EXPECT_EQ(e[0].cloud_host, "cloud.example.net");
  EXPECT_EQ(e[0].password, "pw#with-hash");  // '#' starts a comment only after a blank
  EXPECT_EQ(e[0].line, 3);
  EXPECT_EQ(e[1].cloud_host, "proxy.test");
  EXPECT_EQ(e[1].password, "");  // a client certificate alone
  EXPECT_EQ(e[2].cloud_host, "[2001:db8::1]");
  EXPECT_EQ(e[2].password, "secret");
  unlink(path.c_str());
}

TEST(DomainRegistrationFile, ABadLineNamesFileAndLineNeverThePassword) {
  const struct {
    const char *line, *why;
  } bad[] = {
      {"home.example sip:cloud.example Leaky-Pw-1", "not a sips: URI"},
      {"home.example", "expected LOCAL-DOMAIN"},
      {"home.example sips:cloud.example pw extra", "more than three fields"},
      {"home.example sips:alice@cloud.example Leaky-Pw-1", "cloud proxy alone"},
      {"home.example sips:cloud.example:99999 Leaky-Pw-1", "bad port"},
      {"home_example sips:cloud.example Leaky-Pw-1", "not a domain name"},
  };
  for (const auto &b : bad) {
    const std::string path = write_file(std::string("# first\n") + b.line + "\n");
    std::vector<DomainRegistrationEntry> e;
    const std::string error = load_domain_registrations(path, &e);
    EXPECT_NE(error.find(path + ":2: "), std::string::npos) << error;
    EXPECT_NE(error.find(b.why), std::string::npos) << error;
    EXPECT_EQ(error.find("Leaky-Pw-1"), std::string::npos) << error;
    EXPECT_TRUE(e.empty());
    unlink(path.c_str());
  }
}

TEST(DomainRegistrationFile, OneFlowPerDomain) {
  const std::string path = write_file("home.example sips:a.example\nHOME.example sips:b.example\n");
  std::vector<DomainRegistrationEntry> e;
  const std::string error = load_domain_registrations(path, &e);
  EXPECT_NE(error.find(":2: home.example is registered on an earlier line"), std::string::npos)
      << error;
  unlink(path.c_str());
  EXPECT_NE(load_domain_registrations("/nonexistent/regs", &e).find("cannot be read"),
            std::string::npos);
}

}  // namespace
}  // namespace portier::proxy
