// The relay's ICE-lite STUN codec (RFC 8445 §7.3, RFC 5389): what a phone's
// connectivity check gets back, and that a forged or broken one moves nothing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>
#include <string>

#include "proxy/ice_lite.h"

using namespace portier::proxy::ice;

namespace {

// The relay's leg: its credentials, and the phone's ufrag from the phone's SDP.
Credentials relay_creds() {
  Credentials c;
  c.local_ufrag = "RELAYufr";
  c.local_pwd = "relayPasswordOf24Chars+/";
  c.remote_ufrag = "ph0n";
  return c;
}

sockaddr_storage v4(const char *ip, uint16_t port) {
  sockaddr_storage ss{};
  auto *sin = reinterpret_cast<sockaddr_in *>(&ss);
  sin->sin_family = AF_INET;
  sin->sin_port = htons(port);
  inet_pton(AF_INET, ip, &sin->sin_addr);
  return ss;
}

// The phone's check as RFC 8445 §7.2.2 has it: USERNAME "<relay's ufrag>:<phone's
// ufrag>", MESSAGE-INTEGRITY with the relay's ice-pwd.
Request good_check() {
  Request r;
  r.username = "RELAYufr:ph0n";
  r.pwd = "relayPasswordOf24Chars+/";
  return r;
}

struct Result {
  Answer answer;
  std::optional<Parsed> response;
};

Result ask(const std::string &req, const Credentials &creds = relay_creds(),
           const sockaddr_storage &from = v4("192.0.2.7", 40123)) {
  Result r;
  uint8_t out[kMaxResponse];
  r.answer = answer(reinterpret_cast<const uint8_t *>(req.data()), req.size(), creds, from,
                    from.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6), out);
  EXPECT_LE(r.answer.size, kMaxResponse);
  if (r.answer.size) r.response = parse_response(out, r.answer.size, creds.local_pwd);
  return r;
}

}  // namespace

TEST(IceLite, AValidCheckGetsASuccessWithTheSourceAddressIntegrityAndFingerprint) {
  Request req = good_check();
  const Result r = ask(build_request(req));
  EXPECT_EQ(r.answer.verdict, Verdict::Success);
  EXPECT_FALSE(r.answer.use_candidate);
  ASSERT_TRUE(r.response);
  EXPECT_EQ(r.response->type, 0x0101);
  // RFC 8445 §7.3.1.4: XOR-MAPPED-ADDRESS is the source of the request.
  EXPECT_EQ(r.response->mapped, "192.0.2.7:40123");
  // RFC 5389 §10.1.2: the response is protected with the same password.
  EXPECT_TRUE(r.response->integrity_ok);
  EXPECT_TRUE(r.response->fingerprint_ok);
  EXPECT_EQ(0, memcmp(r.response->transaction, req.transaction, 12));
}

TEST(IceLite, UseCandidateIsReportedAsANomination) {
  Request req = good_check();
  req.use_candidate = true;
  const Result r = ask(build_request(req));
  EXPECT_EQ(r.answer.verdict, Verdict::Success);
  EXPECT_TRUE(r.answer.use_candidate);  // RFC 8445 §7.3.1.5
}

TEST(IceLite, ControlledPeerIsReported) {
  // A controlling peer's check without USE-CANDIDATE chooses nothing; a peer
  // that calls itself controlled is told apart (RFC 8445 §7.1.1 attributes).
  Request req = good_check();
  Result r = ask(build_request(req));
  EXPECT_FALSE(r.answer.peer_controlled);
  req.controlled = true;
  r = ask(build_request(req));
  EXPECT_EQ(r.answer.verdict, Verdict::Success);
  EXPECT_TRUE(r.answer.peer_controlled);
  EXPECT_FALSE(r.answer.use_candidate);
  // Not when it fails: a forger's claim means nothing.
  req.pwd = "notTheRelaysPassword0000";
  r = ask(build_request(req));
  EXPECT_EQ(r.answer.verdict, Verdict::Unauthorized);
  EXPECT_FALSE(r.answer.peer_controlled);
}

TEST(IceLite, IPv6SourceIsMappedBack) {
  sockaddr_storage ss{};
  auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&ss);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(5000);
  inet_pton(AF_INET6, "2001:db8::1", &sin6->sin6_addr);
  const Result r = ask(build_request(good_check()), relay_creds(), ss);
  EXPECT_EQ(r.answer.verdict, Verdict::Success);
  ASSERT_TRUE(r.response);
  EXPECT_TRUE(r.response->integrity_ok);
}

TEST(IceLite, WrongPasswordIs401WithoutIntegrity) {
  Request req = good_check();
  req.pwd = "notTheRelaysPassword0000";
  req.use_candidate = true;
  const Result r = ask(build_request(req));
  EXPECT_EQ(r.answer.verdict, Verdict::Unauthorized);
  EXPECT_FALSE(r.answer.use_candidate);  // nothing moves
  ASSERT_TRUE(r.response);
  EXPECT_EQ(r.response->type, 0x0111);
  EXPECT_EQ(r.response->error_code, 401);
  EXPECT_FALSE(r.response->has_integrity);
  EXPECT_TRUE(r.response->fingerprint_ok);
}

TEST(IceLite, WrongUsernameIs401) {
  for (const char *name : {"OTHERufr:ph0n", "RELAYufr:other", "RELAYufr", "RELAYufrX:ph0n", ""}) {
    Request req = good_check();
    req.username = name;
    const Result r = ask(build_request(req));
    EXPECT_EQ(r.answer.verdict, Verdict::Unauthorized) << name;
    ASSERT_TRUE(r.response) << name;
    EXPECT_EQ(r.response->error_code, 401) << name;
  }
}

TEST(IceLite, AnyRemoteUfragWhenTheDevicesSdpGaveNone) {
  Credentials c = relay_creds();
  c.remote_ufrag.clear();
  Request req = good_check();
  req.username = "RELAYufr:whatever";
  EXPECT_EQ(ask(build_request(req), c).answer.verdict, Verdict::Success);
}

TEST(IceLite, NoIntegrityIs400) {
  Request req = good_check();
  req.integrity = false;
  const Result r = ask(build_request(req));
  EXPECT_EQ(r.answer.verdict, Verdict::BadRequest);
  ASSERT_TRUE(r.response);
  EXPECT_EQ(r.response->error_code, 400);
}

TEST(IceLite, NoPriorityIs400) {
  Request req = good_check();
  req.priority = false;
  EXPECT_EQ(ask(build_request(req)).answer.verdict, Verdict::BadRequest);
}

TEST(IceLite, UnknownComprehensionRequiredAttributeIs420) {
  Request req = good_check();
  req.extra_attribute = 0x0031;
  const Result r = ask(build_request(req));
  EXPECT_EQ(r.answer.verdict, Verdict::UnknownAttribute);
  ASSERT_TRUE(r.response);
  EXPECT_EQ(r.response->error_code, 420);
  // An unknown optional one (0x8000 and up) is ignored.
  req.extra_attribute = 0xC057;
  EXPECT_EQ(ask(build_request(req)).answer.verdict, Verdict::Success);
}

TEST(IceLite, BadOrMissingFingerprintIsDropped) {
  Request req = good_check();
  std::string bytes = build_request(req);
  bytes[bytes.size() - 1] ^= 0x01;  // the CRC's last byte
  EXPECT_EQ(ask(bytes).answer.verdict, Verdict::Dropped);
  EXPECT_EQ(ask(bytes).answer.size, 0u);
  req.fingerprint = false;
  EXPECT_EQ(ask(build_request(req)).answer.verdict, Verdict::Dropped);
}

TEST(IceLite, TamperedAfterSigningIs401) {
  // A bit of USERNAME flipped after MESSAGE-INTEGRITY was computed, with a
  // FINGERPRINT a forger can always recompute: only the integrity check can
  // tell (RFC 5389 §15.4), and it does.
  Request req = good_check();
  req.fingerprint = false;
  req.use_candidate = true;
  std::string bytes = build_request(req);
  bytes[24 + 12] ^= 0x01;  // the USERNAME's last byte: "RELAYufr:ph0n" -> "...ph0o"
  Credentials any = relay_creds();
  any.remote_ufrag.clear();
  const Result r = ask(add_fingerprint(bytes), any);
  EXPECT_EQ(r.answer.verdict, Verdict::Unauthorized);
  EXPECT_FALSE(r.answer.use_candidate);
  // The same bytes untampered pass: the test can fail.
  EXPECT_EQ(ask(add_fingerprint(build_request(req)), any).answer.verdict, Verdict::Success);
}

TEST(IceLite, TruncatedAndGarbageAreDroppedWithoutAnswer) {
  const std::string good = build_request(good_check());
  for (size_t n = 0; n < good.size(); ++n)
    EXPECT_EQ(ask(good.substr(0, n)).answer.verdict, Verdict::Dropped) << n;
  // A length field that claims more than the datagram.
  std::string longer = good;
  longer[3] = static_cast<char>(longer[3] + 4);
  EXPECT_EQ(ask(longer).answer.verdict, Verdict::Dropped);
  // An attribute whose length runs past the end.
  std::string overrun = good;
  overrun[22] = 0x7f;
  EXPECT_EQ(ask(overrun).answer.verdict, Verdict::Dropped);
  // No magic cookie (RFC 3489 style), RTP, and zeros.
  std::string classic = good;
  classic[4] = 0;
  EXPECT_EQ(ask(classic).answer.verdict, Verdict::Dropped);
  EXPECT_EQ(ask(std::string("\x80\x00\x00\x01" + std::string(40, 'x'))).answer.verdict,
            Verdict::Dropped);
  EXPECT_EQ(ask(std::string(64, '\0')).answer.verdict, Verdict::Dropped);
  // Pseudo-random junk that starts like STUN never crashes and is never a success.
  uint32_t seed = 12345;
  for (int i = 0; i < 20000; ++i) {
    std::string junk = good;
    for (int k = 0; k < 4; ++k) {
      seed = seed * 1103515245 + 12345;
      junk[(seed >> 8) % junk.size()] = static_cast<char>(seed >> 24);
    }
    seed = seed * 1103515245 + 12345;
    junk.resize(20 + (seed >> 8) % (junk.size() - 19));
    EXPECT_NE(ask(junk).answer.verdict, Verdict::Success);
  }
}

TEST(IceLite, IndicationsAndResponsesGetNoAnswer) {
  std::string bytes = build_request(good_check());
  // A success response echoed back at us: not a request (0x0101).
  bytes[0] = 0x01;
  bytes[1] = 0x01;
  EXPECT_EQ(ask(bytes).answer.verdict, Verdict::Dropped);
}

TEST(IceLite, StunIsToldFromRtpByTheFirstByte) {
  const uint8_t stun[] = {0x00, 0x01}, rtp[] = {0x80, 0x60}, rtcp[] = {0x81, 0xc8};
  EXPECT_TRUE(is_stun(stun, 2));
  EXPECT_FALSE(is_stun(rtp, 2));
  EXPECT_FALSE(is_stun(rtcp, 2));
  EXPECT_FALSE(is_stun(stun, 0));
}

TEST(IceLite, GeneratedCredentialsHaveRfcLengthsAndIceChars) {
  auto a = Credentials::generate(), b = Credentials::generate();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->local_ufrag.size(), 8u);   // >= 4 chars, 24 bits (RFC 8445 §5.3)
  EXPECT_EQ(a->local_pwd.size(), 24u);    // >= 22 chars, 128 bits
  EXPECT_NE(a->local_pwd, b->local_pwd);
  for (char ch : a->local_ufrag + a->local_pwd)
    EXPECT_TRUE(isalnum(static_cast<unsigned char>(ch)) || ch == '+' || ch == '/') << ch;
}
