// The door's and the monitor's media sockets hear only the peer the SDP
// named (else RFC 4733 events from a port in no SDP could open the door).
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "common/rtp_source_latch.h"

namespace {

using portier::RtpSourceLatch;

struct From {
  uint8_t bytes[16];
  size_t length;
};

From v4(const char *a) {
  From f{{}, 4};
  inet_pton(AF_INET, a, f.bytes);
  return f;
}

From v6(const char *a) {
  From f{{}, 16};
  inet_pton(AF_INET6, a, f.bytes);
  return f;
}

bool admit(RtpSourceLatch &l, const From &f, uint16_t port) {
  return l.admit(f.bytes, f.length, port);
}

TEST(RtpSourceLatch, NothingIsHeardBeforeTheSdpNamesAPeer) {
  RtpSourceLatch l;
  EXPECT_FALSE(admit(l, v4("10.0.0.1"), 20000));
  l.expect("");
  EXPECT_FALSE(admit(l, v4("10.0.0.1"), 20000));
  l.expect("relay.example");  // not an IP literal
  EXPECT_FALSE(admit(l, v4("10.0.0.1"), 20000));
  EXPECT_EQ(l.dropped(), 3u);
}

TEST(RtpSourceLatch, OnlyTheSignalledHostThenOnlyItsFirstPort) {
  RtpSourceLatch l;
  l.expect("10.0.0.1");
  EXPECT_FALSE(admit(l, v4("10.0.0.2"), 20000)) << "another host";
  EXPECT_TRUE(admit(l, v4("10.0.0.1"), 20000)) << "the first packet latches";
  EXPECT_TRUE(admit(l, v4("10.0.0.1"), 20000));
  EXPECT_FALSE(admit(l, v4("10.0.0.1"), 40000)) << "another port of the relay's host";
  EXPECT_FALSE(admit(l, v4("10.0.0.2"), 20000));
  // The same SDP again (the 200 after the 183) keeps the latch.
  l.expect("10.0.0.1");
  EXPECT_FALSE(admit(l, v4("10.0.0.1"), 40000));
  // A re-INVITE naming another host starts over.
  l.expect("10.0.0.9");
  EXPECT_FALSE(admit(l, v4("10.0.0.1"), 20000));
  EXPECT_TRUE(admit(l, v4("10.0.0.9"), 30000));
}

TEST(RtpSourceLatch, MappedAndNativeIpv6) {
  RtpSourceLatch l;
  l.expect("127.0.0.1");
  EXPECT_TRUE(admit(l, v6("::ffff:127.0.0.1"), 5000));
  EXPECT_FALSE(admit(l, v6("::1"), 5000));
  l.expect("2001:db8::1");
  EXPECT_TRUE(admit(l, v6("2001:db8::1"), 5000));
  EXPECT_FALSE(admit(l, v4("127.0.0.1"), 5000));
  EXPECT_FALSE(l.admit(nullptr, 0, 5000));
}

}  // namespace
