// tls/one_record.h: a SIP message bound for a stream transport leaves sofia's
// msg_iovec() as one piece (so tport_tls_send writes it as one TLS record),
// with exactly the bytes it had in pieces; datagram messages keep their pieces.
// The test executable links portier_tls, so its msg_iovec() is ours, as in the
// daemons.
#include <gtest/gtest.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/sip.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_tag.h>
#include <sys/socket.h>

#include <cstring>
#include <string>

#include "tls/one_record.h"

namespace {

const char kRequest[] =
    "REGISTER sip:home.example SIP/2.0\r\n"
    "Via: SIP/2.0/TLS 192.0.2.7:5061;branch=z9hG4bK-1;rport\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:alice@home.example>;tag=a1\r\n"
    "To: <sip:alice@home.example>\r\n"
    "Call-ID: c1@192.0.2.7\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Contact: <sips:alice@192.0.2.7:5061>\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

// A response made as the proxy's stateless replies are: the request's Via,
// From, To, Call-ID and CSeq copied (their text stays in the request's
// buffer), the status line and Content-Length printed into the reply's.
struct Reply {
  msg_t *request = nullptr;
  msg_t *reply = nullptr;
  Reply() {
    request = msg_make(sip_default_mclass(), 0, kRequest, sizeof kRequest - 1);
    reply = msg_create(sip_default_mclass(), 0);
    msg_set_parent(reply, request);
    const sip_t *req = sip_object(request);
    sip_t *rsip = sip_object(reply);
    su_home_t *home = msg_home(reply);
    for (const void *h :
         {static_cast<const void *>(req->sip_via), static_cast<const void *>(req->sip_from),
          static_cast<const void *>(req->sip_to), static_cast<const void *>(req->sip_call_id),
          static_cast<const void *>(req->sip_cseq)}) {
      msg_header_t *copy = msg_header_copy(home, static_cast<const msg_header_t *>(h));
      msg_header_insert(reply, reinterpret_cast<msg_pub_t *>(rsip), copy);
    }
    sip_add_tl(reply, rsip, SIPTAG_STATUS_STR("SIP/2.0 200 OK"), SIPTAG_CONTENT_LENGTH_STR("0"),
               TAG_END());
    // As nta does before it sends: the headers in order, then their text.
    msg_serialize(reply, reinterpret_cast<msg_pub_t *>(rsip));
    msg_prepare(reply);
    scatter();
  }
  // msg_prepare printed every fragment into the reply's buffer, one after
  // the other. Where the proxy's replies keep text in the request's buffer
  // and in header objects of their own, point every other fragment at a copy
  // of its text elsewhere, so the message is in pieces as those are.
  void scatter() {
    int i = 0;
    for (msg_header_t *h = *msg_chain_head(reply); h; h = h->sh_succ, ++i) {
      if (i % 2 == 0 || !h->sh_data) continue;
      elsewhere[i].assign(static_cast<const char *>(h->sh_data), h->sh_len);
      h->sh_data = elsewhere[i].data();
    }
  }
  std::string elsewhere[32];
  ~Reply() {
    msg_destroy(reply);
    msg_destroy(request);
  }
  std::string pieces(int socktype, isize_t *n) {
    msg_addrinfo(reply)->ai_socktype = socktype;
    msg_iovec_t vec[64];
    *n = msg_iovec(reply, vec, 64);
    std::string text;
    for (isize_t i = 0; i < *n; ++i)
      text.append(static_cast<const char *>(vec[i].mv_base), vec[i].mv_len);
    return text;
  }
};

TEST(OneRecord, StreamMessageLeavesInOnePieceWithTheSameBytes) {
  Reply r;
  ASSERT_NE(r.request, nullptr);
  isize_t datagram_pieces = 0, stream_pieces = 0;
  const std::string as_datagram = r.pieces(SOCK_DGRAM, &datagram_pieces);
  // Without the join, this is what tport_tls_send wrote one record per piece of.
  EXPECT_GT(datagram_pieces, 1);
  const uint64_t joined_before = portier::tls::one_record_stats().joined;
  const std::string as_stream = r.pieces(SOCK_STREAM, &stream_pieces);
  EXPECT_EQ(stream_pieces, 1);
  EXPECT_EQ(as_stream, as_datagram);
  EXPECT_EQ(as_stream.compare(0, 18, "SIP/2.0 200 OK\r\nVi"), 0) << as_stream;
  EXPECT_NE(as_stream.find("CSeq: 1 REGISTER\r\n"), std::string::npos);
  EXPECT_TRUE(portier::tls::one_record_stats().active);
  EXPECT_EQ(portier::tls::one_record_stats().joined, joined_before + 1);
  // Joined once: a later send (a retransmission over TCP) finds one piece
  // without copying again.
  isize_t again = 0;
  EXPECT_EQ(r.pieces(SOCK_STREAM, &again), as_datagram);
  EXPECT_EQ(again, 1);
  EXPECT_EQ(portier::tls::one_record_stats().joined, joined_before + 1);
}

TEST(OneRecord, DatagramMessageKeepsItsPieces) {
  Reply r;
  isize_t first = 0, second = 0;
  const std::string a = r.pieces(SOCK_DGRAM, &first);
  const std::string b = r.pieces(SOCK_DGRAM, &second);
  EXPECT_GT(first, 1);
  EXPECT_EQ(first, second);
  EXPECT_EQ(a, b);
}

TEST(OneRecord, AChangedHeaderIsPrintedAnewAndJoinedAgain) {
  Reply r;
  isize_t n = 0;
  r.pieces(SOCK_STREAM, &n);
  ASSERT_EQ(n, 1);
  // A header added after the first send (as nta adds one to a forwarded
  // request it sends again elsewhere) is a new piece until the next join.
  sip_add_tl(r.reply, sip_object(r.reply), SIPTAG_SERVER_STR("portier"), TAG_END());
  msg_serialize(r.reply, reinterpret_cast<msg_pub_t *>(sip_object(r.reply)));
  msg_prepare(r.reply);
  r.scatter();
  isize_t datagram = 0;
  const std::string before = r.pieces(SOCK_DGRAM, &datagram);
  EXPECT_GT(datagram, 1);
  const std::string after = r.pieces(SOCK_STREAM, &n);
  EXPECT_EQ(n, 1);
  EXPECT_EQ(after, before);
  EXPECT_NE(after.find("Server: portier\r\n"), std::string::npos);
}

}  // namespace
