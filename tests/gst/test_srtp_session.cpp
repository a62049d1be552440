// media/srtp_session: srtpdec spliced into a real rtpbin, fed packets that
// libsrtp2 itself protected (an implementation apart from GStreamer's
// elements): the agreed key decrypts (RFC 3711 §3.3), a new key replaces the
// old one at once (a re-INVITE, or another branch's 200), packets under the
// old key then fail authentication and are counted, never decoded; plain
// RTP goes round the elements; muxed RTCP (RFC 5761 §4) is split off.
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <srtp2/srtp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "media/srtp_session.h"

namespace {

using portier::SrtpSession;
using portier::sdp::Agreed;
namespace sdp = portier::sdp;

constexpr uint32_t kSsrc = 0x5eed1234;

std::vector<uint8_t> key_of(uint8_t seed) {
  std::vector<uint8_t> k(30);
  for (size_t i = 0; i < k.size(); ++i) k[i] = uint8_t(seed + i);
  return k;
}

sdp::CryptoKey crypto_key(uint8_t seed) {
  sdp::CryptoKey k;
  k.suite = sdp::SrtpSuite::AesCm128HmacSha1_80;
  const std::vector<uint8_t> bytes = key_of(seed);
  std::copy(bytes.begin(), bytes.end(), k.bytes.begin());
  k.size = bytes.size();
  return k;
}

// A sender under one AES_CM_128_HMAC_SHA1_80 key (RFC 4568 §6.2.1).
class Sender {
 public:
  explicit Sender(std::vector<uint8_t> key) : key_(std::move(key)) {
    srtp_policy_t p{};
    srtp_crypto_policy_set_rtp_default(&p.rtp);
    srtp_crypto_policy_set_rtcp_default(&p.rtcp);
    p.ssrc.type = ssrc_any_outbound;
    p.key = key_.data();
    p.window_size = 128;
    EXPECT_EQ(srtp_create(&session_, &p), srtp_err_status_ok);
  }
  ~Sender() { srtp_dealloc(session_); }
  // A PCMU packet (RFC 3551), protected unless `plain`.
  std::vector<uint8_t> rtp(uint16_t seq, bool plain = false) {
    std::vector<uint8_t> p(12 + 160 + SRTP_MAX_TRAILER_LEN, 0xff);
    p[0] = 0x80, p[1] = 0, p[2] = seq >> 8, p[3] = seq & 0xff;
    const uint32_t ts = seq * 160u;
    for (int i = 0; i < 4; ++i) p[4 + i] = uint8_t(ts >> (24 - 8 * i));
    for (int i = 0; i < 4; ++i) p[8 + i] = uint8_t(kSsrc >> (24 - 8 * i));
    int len = 12 + 160;
    if (!plain) {
      EXPECT_EQ(srtp_protect(session_, p.data(), &len), srtp_err_status_ok);
    }
    p.resize(len);
    return p;
  }
  // A receiver report (RFC 3550 §6.4.2) with no report blocks, protected.
  std::vector<uint8_t> rtcp() {
    std::vector<uint8_t> p(8 + SRTP_MAX_TRAILER_LEN, 0);
    p[0] = 0x80, p[1] = 201, p[2] = 0, p[3] = 1;
    for (int i = 0; i < 4; ++i) p[4 + i] = uint8_t(kSsrc >> (24 - 8 * i));
    int len = 8;
    EXPECT_EQ(srtp_protect_rtcp(session_, p.data(), &len), srtp_err_status_ok);
    p.resize(len);
    return p;
  }

 private:
  std::vector<uint8_t> key_;
  srtp_t session_ = nullptr;
};

class SrtpSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    gst_init(nullptr, nullptr);
    srtp_init();
    if (!gst_element_factory_find("srtpdec")) GTEST_SKIP() << "no srtpdec (plugins-bad)";
    GError *err = nullptr;
    pipeline_ = gst_parse_launch(
        "rtpbin name=rtpbin appsrc name=in is-live=true format=time "
        "caps=\"application/x-rtp,media=audio,clock-rate=8000,encoding-name=PCMU,payload=0\" "
        "! rtpbin.recv_rtp_sink_0 fakesink name=out sync=false async=false",
        &err);
    ASSERT_TRUE(pipeline_) << (err ? err->message : "");
    rtpbin_ = gst_bin_get_by_name(GST_BIN(pipeline_), "rtpbin");
    in_ = gst_bin_get_by_name(GST_BIN(pipeline_), "in");
    g_signal_connect(
        rtpbin_, "pad-added", G_CALLBACK(+[](GstElement *, GstPad *pad, gpointer p) {
          if (!GST_PAD_IS_SRC(pad) || !g_str_has_prefix(GST_OBJECT_NAME(pad), "recv_rtp_src"))
            return;
          GstElement *out = gst_bin_get_by_name(GST_BIN(p), "out");
          GstPad *sink = gst_element_get_static_pad(out, "sink");
          if (!gst_pad_is_linked(sink)) gst_pad_link(pad, sink);
          gst_object_unref(sink);
          gst_object_unref(out);
        }),
        pipeline_);
    std::string error;
    ASSERT_TRUE(session_.insert(pipeline_, rtpbin_, 0, nullptr, nullptr, &error)) << error;
    GstPad *clear = session_.decrypted_rtp_pad();
    ASSERT_TRUE(clear);
    gst_pad_add_probe(
        clear, GST_PAD_PROBE_TYPE_BUFFER,
        +[](GstPad *, GstPadProbeInfo *, gpointer n) {
          ++*static_cast<std::atomic<int> *>(n);
          return GST_PAD_PROBE_OK;
        },
        &decrypted_, nullptr);
    gst_object_unref(clear);
    GstPad *rtcp = gst_element_request_pad_simple(rtpbin_, "recv_rtcp_sink_0");
    // Muxed RTCP reaches rtpbin's RTCP input: srtpdec's rtcp_src, linked
    // here to count what it hands on.
    GstElement *dec = nullptr;
    GstIterator *it = gst_bin_iterate_elements(GST_BIN(pipeline_));
    GValue v = G_VALUE_INIT;
    while (gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
      GstElement *e = GST_ELEMENT(g_value_get_object(&v));
      if (g_str_has_prefix(GST_OBJECT_NAME(e), "srtpdec")) dec = GST_ELEMENT(gst_object_ref(e));
      g_value_reset(&v);
    }
    g_value_unset(&v);
    gst_iterator_free(it);
    ASSERT_TRUE(dec);
    GstPad *rtcp_src = gst_element_get_static_pad(dec, "rtcp_src");
    ASSERT_EQ(gst_pad_link(rtcp_src, rtcp), GST_PAD_LINK_OK);
    gst_pad_add_probe(
        rtcp_src, GST_PAD_PROBE_TYPE_BUFFER,
        +[](GstPad *, GstPadProbeInfo *, gpointer n) {
          ++*static_cast<std::atomic<int> *>(n);
          return GST_PAD_PROBE_OK;
        },
        &rtcp_out_, nullptr);
    gst_object_unref(rtcp_src);
    gst_object_unref(rtcp);
    gst_object_unref(dec);
    ASSERT_NE(gst_element_set_state(pipeline_, GST_STATE_PLAYING), GST_STATE_CHANGE_FAILURE);
  }
  void TearDown() override {
    if (pipeline_) {
      gst_element_set_state(pipeline_, GST_STATE_NULL);
      session_.reset();
      gst_object_unref(in_);
      gst_object_unref(rtpbin_);
      gst_object_unref(pipeline_);
    }
  }
  void push(const std::vector<uint8_t> &bytes) {
    GstBuffer *b = gst_buffer_new_memdup(bytes.data(), bytes.size());
    ASSERT_EQ(gst_app_src_push_buffer(GST_APP_SRC(in_), b), GST_FLOW_OK);
  }
  // Waits (bounded) until `n` reaches `want`; returns its value.
  static int reach(const std::atomic<int> &n, int want) {
    for (int i = 0; i < 500 && n.load() < want; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return n.load();
  }
  static uint64_t reach(const SrtpSession &s, uint64_t want) {
    for (int i = 0; i < 500 && s.dropped() < want; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return s.dropped();
  }
  Agreed::Srtp keys(uint8_t recv_seed) {
    return Agreed::Srtp{crypto_key(200), crypto_key(recv_seed)};
  }

  GstElement *pipeline_ = nullptr, *rtpbin_ = nullptr, *in_ = nullptr;
  SrtpSession session_;
  std::atomic<int> decrypted_{0}, rtcp_out_{0};
};

TEST_F(SrtpSessionTest, DecryptsRekeysAndCountsWhatFailsAuthentication) {
  Sender one(key_of(1)), two(key_of(2));
  session_.set(keys(1));
  EXPECT_EQ(session_.suite(), "AES_CM_128_HMAC_SHA1_80");
  uint16_t seq = 100;
  for (int i = 0; i < 10; ++i) push(one.rtp(seq++));
  EXPECT_EQ(reach(decrypted_, 10), 10) << "the agreed key decrypts";
  EXPECT_EQ(session_.dropped(), 0u);

  // The peer's new key (a re-INVITE): from now on only it is heard.
  session_.set(keys(2));
  for (int i = 0; i < 10; ++i) push(one.rtp(seq++));
  EXPECT_EQ(reach(session_, 10), 10u) << "the old key's packets fail authentication";
  for (int i = 0; i < 10; ++i) push(two.rtp(seq++));
  EXPECT_EQ(reach(decrypted_, 20), 20) << "the new key decrypts";
  EXPECT_EQ(session_.dropped(), 10u);

  // Forged: the new key's packet with one payload byte changed.
  auto forged = two.rtp(seq++);
  forged[20] ^= 0x01;
  push(forged);
  EXPECT_EQ(reach(session_, 11), 11u);
  // A plain packet where SRTP was agreed: dropped too.
  push(one.rtp(seq++, true));
  EXPECT_EQ(reach(session_, 12), 12u);
  EXPECT_EQ(decrypted_.load(), 20);

  // RFC 5761 §4: an SRTCP packet on the RTP input goes to the RTCP output.
  push(two.rtcp());
  EXPECT_EQ(reach(rtcp_out_, 1), 1);
  EXPECT_EQ(decrypted_.load(), 20);
}

TEST_F(SrtpSessionTest, PlainRtpGoesRoundAndMuxedRtcpIsSplitOff) {
  Sender any(key_of(9));
  session_.set(std::nullopt);
  EXPECT_EQ(session_.suite(), "");
  for (uint16_t seq = 1; seq <= 10; ++seq) push(any.rtp(seq, true));
  EXPECT_EQ(reach(decrypted_, 10), 10);
  std::vector<uint8_t> rr{0x80, 201, 0, 1, 0x5e, 0xed, 0x12, 0x34};  // RTCP RR, no blocks
  push(rr);
  EXPECT_EQ(reach(rtcp_out_, 1), 1) << "plain RTCP on the RTP input reaches the RTCP output";
  EXPECT_EQ(decrypted_.load(), 10);
  EXPECT_EQ(session_.dropped(), 0u);
}

TEST_F(SrtpSessionTest, NothingIsHeardBeforeTheSdpIsSettled) {
  Sender one(key_of(1));
  for (uint16_t seq = 1; seq <= 5; ++seq) push(one.rtp(seq, true));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(decrypted_.load(), 0);
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
