// The proxy's accounting of accepted TCP connections: the
// per-source limit, the idle rule for connections that carry no registration,
// the descriptor budget, and the check at accept time.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "proxy/connection_limits.h"

namespace portier::proxy {
namespace {

constexpr int64_t kSecond = 1000;

ConnectionLimits::Settings settings(size_t max_per_source, int64_t idle_s,
                                    int64_t first_request_s = 3600) {
  ConnectionLimits::Settings s;
  s.max_per_source = max_per_source;
  s.idle_ms = idle_s * kSecond;
  s.first_request_ms = first_request_s * kSecond;
  return s;
}

OpenConnection conn(const std::string &host, int port, bool registered = false) {
  return {host + ":" + std::to_string(port) + ">5060", host, registered};
}

std::vector<std::string> keys(const std::vector<Closing> &closing) {
  std::vector<std::string> out;
  for (const auto &c : closing) out.push_back(c.key);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(ConnectionLimits, TheNewestBeyondThePerSourceLimitAreClosed) {
  ConnectionLimits limits(settings(2, 3600));
  std::vector<OpenConnection> open = {conn("127.0.0.2", 1000), conn("127.0.0.2", 1001)};
  EXPECT_TRUE(limits.review(open, 0).empty());
  // Two more from the same host, one from another: the two newest of the first go.
  open.push_back(conn("127.0.0.2", 1002));
  open.push_back(conn("127.0.0.1", 2000));
  open.push_back(conn("127.0.0.2", 999));  // a lower port, but seen last
  auto closing = limits.review(open, 1 * kSecond);
  EXPECT_EQ(keys(closing), (std::vector<std::string>{"127.0.0.2:1002>5060", "127.0.0.2:999>5060"}));
  for (const auto &c : closing) EXPECT_EQ(c.why, Closing::Why::OverLimit);
}

TEST(ConnectionLimits, RegisteredConnectionsAreNeverClosedAndCountAgainstTheirSource) {
  ConnectionLimits limits(settings(2, 3600));
  std::vector<OpenConnection> open = {conn("10.0.0.5", 1, true), conn("10.0.0.5", 2, true),
                                      conn("10.0.0.5", 3, true), conn("10.0.0.5", 4)};
  // Three flows of devices behind one address stay; the unregistered one goes.
  EXPECT_EQ(keys(limits.review(open, 0)), (std::vector<std::string>{"10.0.0.5:4>5060"}));
}

TEST(ConnectionLimits, AnUnregisteredConnectionWithoutARequestForIdleTimeIsClosed) {
  ConnectionLimits limits(settings(64, 10, 10));
  std::vector<OpenConnection> open = {conn("127.0.0.2", 1), conn("127.0.0.1", 2),
                                      conn("127.0.0.1", 3, true)};
  EXPECT_TRUE(limits.review(open, 0).empty());
  // Port 2 sends a request at 5 s; port 1 sends nothing (keep-alives and
  // trickled bytes are not requests); the registered one sends nothing.
  EXPECT_TRUE(limits.note_request("127.0.0.1:2>5060", 5 * kSecond));
  auto closing = limits.review(open, 10 * kSecond);
  EXPECT_EQ(keys(closing), (std::vector<std::string>{"127.0.0.2:1>5060"}));
  EXPECT_EQ(closing[0].why, Closing::Why::Idle);
  open.erase(open.begin());
  EXPECT_EQ(keys(limits.review(open, 15 * kSecond)),
            (std::vector<std::string>{"127.0.0.1:2>5060"}));
  // The registered connection stays for as long as it is registered...
  open.erase(open.begin());
  EXPECT_TRUE(limits.review(open, 100 * kSecond).empty());
  // ... and once its binding is gone, the idle time runs from then.
  open[0].registered = false;
  EXPECT_TRUE(limits.review(open, 105 * kSecond).empty());
  EXPECT_EQ(keys(limits.review(open, 110 * kSecond)),
            (std::vector<std::string>{"127.0.0.1:3>5060"}));
}

TEST(ConnectionLimits, ANewConnectionHasTheIncompleteMessageTimeForItsFirstRequest) {
  ConnectionLimits limits(settings(64, 3600, 60));
  std::vector<OpenConnection> open = {conn("127.0.0.2", 1), conn("127.0.0.1", 2)};
  EXPECT_TRUE(limits.review(open, 0).empty());
  EXPECT_TRUE(limits.note_request("127.0.0.1:2>5060", 30 * kSecond));
  // Port 1 dribbled or said nothing for a minute; port 2 had its first
  // request and now has the idle time.
  auto closing = limits.review(open, 60 * kSecond);
  EXPECT_EQ(keys(closing), (std::vector<std::string>{"127.0.0.2:1>5060"}));
  open.erase(open.begin());
  EXPECT_TRUE(limits.review(open, 3629 * kSecond).empty());
  EXPECT_EQ(keys(limits.review(open, 3630 * kSecond)),
            (std::vector<std::string>{"127.0.0.1:2>5060"}));
}

TEST(ConnectionLimits, AShorterIdleTimeAppliesBeforeTheFirstRequestToo) {
  ConnectionLimits limits(settings(64, 10, 60));
  std::vector<OpenConnection> open = {conn("127.0.0.2", 1)};
  EXPECT_TRUE(limits.review(open, 0).empty());
  EXPECT_EQ(keys(limits.review(open, 10 * kSecond)),
            (std::vector<std::string>{"127.0.0.2:1>5060"}));
}

TEST(ConnectionLimits, AFirstRequestIsNotKnownYet) {
  ConnectionLimits limits(settings(64, 3600));
  EXPECT_FALSE(limits.note_request("127.0.0.1:5>5060", 0));
  EXPECT_TRUE(limits.note_request("127.0.0.1:5>5060", 1));
  EXPECT_EQ(limits.tracked(), 1u);
  // Gone from the open list: forgotten.
  limits.review({}, 2);
  EXPECT_EQ(limits.tracked(), 0u);
  EXPECT_FALSE(limits.note_request("127.0.0.1:5>5060", 3));
}

TEST(ConnectionLimits, OutOfDescriptorsTheNewestUnregisteredGoWhateverTheirSource) {
  ConnectionLimits limits(settings(64, 3600));
  std::vector<OpenConnection> open = {conn("127.0.0.1", 1, true), conn("127.0.0.3", 2),
                                      conn("127.0.0.4", 3)};
  EXPECT_TRUE(limits.review(open, 0, 3).empty());
  open.push_back(conn("127.0.0.5", 4));
  open.push_back(conn("127.0.0.3", 5));
  auto closing = limits.review(open, 1, 2);
  EXPECT_EQ(keys(closing),
            (std::vector<std::string>{"127.0.0.3:5>5060", "127.0.0.4:3>5060", "127.0.0.5:4>5060"}));
  for (const auto &c : closing) EXPECT_EQ(c.why, Closing::Why::NoDescriptors);
}

TEST(ConnectionLimits, AcceptCountsFromTheLastReview) {
  ConnectionLimits limits(settings(2, 3600));
  limits.review({conn("127.0.0.2", 1)}, 0);
  EXPECT_TRUE(limits.accept_from("127.0.0.2"));
  EXPECT_FALSE(limits.accept_from("127.0.0.2"));
  EXPECT_TRUE(limits.accept_from("127.0.0.1"));
  // The next review counts again what is really open.
  limits.review({conn("127.0.0.2", 1)}, 1);
  EXPECT_TRUE(limits.accept_from("127.0.0.2"));
}

}  // namespace
}  // namespace portier::proxy
