// control::Table: one command line in, one JSON reply out, for every daemon's
// control socket; unknown commands and stray arguments get an error reply
// that names what the daemon knows.
#include <gtest/gtest.h>

#include <string>

#include "common/control_table.h"

namespace portier::control {
namespace {

Table make_table(std::string *last_args) {
  return Table({
      {"status", "", "how it is", [](const std::string &) { return std::string("{\"up\":true}"); }},
      {"unban", "ADDRESS|all", "lift a ban",
       [last_args](const std::string &args) {
         *last_args = args;
         return result("unbanned " + args);
       }},
  });
}

TEST(ControlTable, DispatchesByNameAndTrimsTheArguments) {
  std::string args;
  const Table t = make_table(&args);
  struct Case {
    std::string line, reply, args;
  } cases[] = {
      {"status", "{\"up\":true}", ""},
      {"  status \t", "{\"up\":true}", ""},
      {"unban 192.0.2.1", "{\"result\":\"unbanned 192.0.2.1\"}", "192.0.2.1"},
      {"unban   all  ", "{\"result\":\"unbanned all\"}", "all"},
      {"unban", "{\"result\":\"unbanned \"}", ""},
  };
  for (const auto &c : cases) {
    args = "-";
    EXPECT_EQ(t.dispatch(c.line), c.reply) << c.line;
    if (c.line.find("unban") != std::string::npos) {
      EXPECT_EQ(args, c.args) << c.line;
    }
  }
}

TEST(ControlTable, RefusesWhatItDoesNotKnow) {
  std::string args;
  const Table t = make_table(&args);
  EXPECT_EQ(t.dispatch("reboot now"),
            "{\"error\":\"unknown command 'reboot' (status, unban, ping, help)\"}");
  EXPECT_EQ(t.dispatch(""), "{\"error\":\"unknown command '' (status, unban, ping, help)\"}");
  EXPECT_EQ(t.dispatch("status all"), "{\"error\":\"'status' takes no arguments\"}");
  EXPECT_EQ(t.dispatch("Status"),
            "{\"error\":\"unknown command 'Status' (status, unban, ping, help)\"}");
}

TEST(ControlTable, EveryTableAnswersPingAndHelp) {
  std::string args;
  const Table t = make_table(&args);
  EXPECT_EQ(t.dispatch("ping"), "{\"ok\":true,\"pong\":true}");
  EXPECT_EQ(t.dispatch("help"),
            "{\"commands\":["
            "{\"name\":\"status\",\"args\":\"\",\"help\":\"how it is\"},"
            "{\"name\":\"unban\",\"args\":\"ADDRESS|all\",\"help\":\"lift a ban\"},"
            "{\"name\":\"ping\",\"args\":\"\",\"help\":\"is the daemon alive\"},"
            "{\"name\":\"help\",\"args\":\"\",\"help\":\"these commands\"}]}");
}

TEST(ControlTable, RepliesAreOneObject) {
  EXPECT_EQ(result("hung up"), "{\"result\":\"hung up\"}");
  EXPECT_EQ(error("no call"), "{\"error\":\"no call\"}");
}

}  // namespace
}  // namespace portier::control
