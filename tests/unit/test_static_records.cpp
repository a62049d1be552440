// Static records in Flexisip's format: aliases that fork to a list of AORs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "proxy/static_records.h"

namespace portier::proxy {
namespace {

using Targets = std::vector<std::string>;

TEST(StaticRecords, ParsesFlexisipLinesAndNormalizes) {
  StaticRecords records;
  std::string error;
  ASSERT_TRUE(records.load_from_string(
      "# the home's group address\n"
      "\n"
      "<sip:home@Home.Example> <sip:mon1@home.example>,<sip:mon2@HOME.example:5060>\r\n"
      "   # indented comment\n"
      "sip:door-watchers@home.example sips:Phone@Cloud.Example;transport=tls , "
      "sip:mon1@home.example\tsip:mon1@home.example:5070\n"
      "<sip:v6@home.example> <sip:dev@[2001:DB8::1]:5060>",
      "records.conf", &error))
      << error;
  EXPECT_EQ(records.size(), 3u);

  const Targets *home = records.find("sip:home@home.example");
  ASSERT_NE(home, nullptr);
  EXPECT_EQ(*home, (Targets{"sip:mon1@home.example", "sip:mon2@home.example"}));

  const Targets *watchers = records.find("sip:door-watchers@home.example");
  ASSERT_NE(watchers, nullptr);
  // User part case is kept; the same AOR twice is listed once.
  EXPECT_EQ(*watchers, (Targets{"sip:Phone@cloud.example", "sip:mon1@home.example"}));

  const Targets *v6 = records.find("sip:v6@home.example");
  ASSERT_NE(v6, nullptr);
  EXPECT_EQ(*v6, (Targets{"sip:dev@[2001:db8::1]"}));

  EXPECT_EQ(records.find("sip:nobody@home.example"), nullptr);
  EXPECT_EQ(records.find("sip:Home@home.example"), nullptr);  // keys are normalized AORs
}

// A cloud proxy's one line for every house: <sip:g@*> rings m and n of the
// request's own domain.
TEST(StaticRecords, EveryDomainAliasResolvesInTheRequestsDomain) {
  StaticRecords records;
  std::string error;
  ASSERT_TRUE(records.load_from_string("<sip:g@*> <sip:m@*>,<sip:n@*>\n", "r", &error)) << error;
  std::vector<std::string> out;
  ASSERT_TRUE(records.find_in_domain("g", "a.example", &out));
  EXPECT_EQ(out, (std::vector<std::string>{"sip:m@a.example", "sip:n@a.example"}));
  ASSERT_TRUE(records.find_in_domain("g", "b.example", &out));
  EXPECT_EQ(out, (std::vector<std::string>{"sip:m@b.example", "sip:n@b.example"}));
  EXPECT_FALSE(records.find_in_domain("m", "a.example", &out));
  EXPECT_EQ(records.find("sip:g@a.example"), nullptr);  // not an exact alias
}

TEST(StaticRecords, EmptyFileHasNoRecords) {
  StaticRecords records;
  std::string error;
  EXPECT_TRUE(records.load_from_string("# nothing yet\n\n", "records.conf", &error));
  EXPECT_EQ(records.size(), 0u);
}

TEST(StaticRecords, ErrorsNameFileAndLine) {
  struct Case {
    const char *text;
    const char *error;
  };
  const Case cases[] = {
      {"# ok\n<sip:a@h.example <sip:b@h.example>\n", "records.conf:2: missing '>'"},
      {"<sip:a@h.example>x <sip:b@h.example>\n", "records.conf:1: unexpected text after '>'"},
      {"<tel:+123> <sip:b@h.example>\n", "records.conf:1: expected a sip: URI, got 'tel:+123'"},
      {"<sip:a@h.example> b@h.example\n", "records.conf:1: expected a sip: URI, got 'b@h.example'"},
      {"<sip:a@h.example>\n", "records.conf:1: alias sip:a@h.example has no targets"},
      {"<sip:h.example> <sip:b@h.example>\n",
       "records.conf:1: missing user part in 'sip:h.example'"},
      {"<sip:a@> <sip:b@h.example>\n", "records.conf:1: missing host in 'sip:a@'"},
      {"<sip:a@h.example> <>\n", "records.conf:1: empty '<>'"},
      {"<sip:a@h.example> sip:b@h.example>\n", "records.conf:1: unbalanced '<' or '>' in"},
      {"<sip:a@h.example> <sip:A@H.example>,<sip:a@H.EXAMPLE:5060>\n",
       "records.conf:1: alias sip:a@h.example lists itself"},
      {"<sip:a@h.example> <sip:b@h.example>\n\n<sip:a@H.example> <sip:c@h.example>\n",
       "records.conf:3: duplicate alias sip:a@h.example (first on line 1)"},
      // One house per domain: an every-domain alias rings its own domain's users.
      {"<sip:g@*> <sip:m@*>,<sip:n@h.example>\n",
       "records.conf:1: alias sip:g@* (every domain) lists sip:n@h.example: its targets are "
       "sip:USER@* too"},
      {"<sip:g@h.example> <sip:m@*>\n",
       "records.conf:1: alias sip:g@h.example lists sip:m@*: sip:USER@* targets need a "
       "sip:ALIAS@* alias"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(c.text);
    StaticRecords records;
    std::string error;
    EXPECT_FALSE(records.load_from_string(c.text, "records.conf", &error));
    EXPECT_EQ(error.rfind(c.error, 0), 0u) << error;
  }
}

TEST(StaticRecords, FailedReloadKeepsTheWorkingRecords) {
  StaticRecords records;
  std::string error;
  ASSERT_TRUE(records.load_from_string("<sip:g@h.example> <sip:m@h.example>\n", "a", &error));
  EXPECT_FALSE(
      records.load_from_string("<sip:x@h.example> <sip:y@h.example>\n<broken\n", "b", &error));
  EXPECT_EQ(error, "b:2: missing '>'");
  EXPECT_EQ(records.size(), 1u);
  EXPECT_NE(records.find("sip:g@h.example"), nullptr);
  EXPECT_EQ(records.find("sip:x@h.example"), nullptr);
  // A good reload replaces everything.
  ASSERT_TRUE(records.load_from_string("<sip:x@h.example> <sip:y@h.example>\n", "c", &error));
  EXPECT_EQ(records.find("sip:g@h.example"), nullptr);
  EXPECT_NE(records.find("sip:x@h.example"), nullptr);
}

TEST(StaticRecords, LoadsFromFile) {
  char tmpl[] = "/tmp/portier-records-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string path = dir + "/static-records.conf";
  {
    std::ofstream out(path);
    out << "<sip:home@home.example> <sip:mon1@home.example> <sip:mon2@home.example>\n"
        << "<sip:bad@home.example>\n";
  }
  StaticRecords records;
  std::string error;
  EXPECT_FALSE(records.load(path, &error));
  EXPECT_EQ(error, path + ":2: alias sip:bad@home.example has no targets");
  {
    std::ofstream out(path, std::ios::trunc);
    out << "<sip:home@home.example> <sip:mon1@home.example> <sip:mon2@home.example>\n";
  }
  ASSERT_TRUE(records.load(path, &error)) << error;
  ASSERT_NE(records.find("sip:home@home.example"), nullptr);
  EXPECT_EQ(records.find("sip:home@home.example")->size(), 2u);

  EXPECT_FALSE(records.load(dir + "/missing.conf", &error));
  EXPECT_EQ(error,
            dir + "/missing.conf: cannot open the static records file: No such file or directory");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace portier::proxy
