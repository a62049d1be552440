// portieraecprobe and portieraec under GstHarness: the speaker path stays
// bit-exact, a synthetic echo goes away, a visitor's voice does not, and an
// unpaired canceller says so and stays out of the way.
//
// Each element gets its own harness; the two meet through the probe's name,
// as in a door pipeline, and are fed in lock step: 10 ms (or an odd-sized
// buffer) of far end to the probe, then the microphone's buffer of the same
// running time to the canceller. The far end is deterministic pseudo-speech
// (plugins/portieraec/synthetic_echo.h), its echo delayed 40 ms and filtered by a
// small room, with a little microphone noise.
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "portieraec/erle_meter.h"
#include "portieraec/synthetic_echo.h"

namespace aec = portier::aec;

namespace {

std::string caps_str(int rate, int channels) {
  return "audio/x-raw,format=S16LE,layout=interleaved,rate=" + std::to_string(rate) +
         ",channels=" + std::to_string(channels) +
         (channels == 2 ? ",channel-mask=(bitmask)0x3" : "");
}

GstBuffer *s16_buffer(const std::vector<int16_t> &samples, int rate, int channels,
                      guint64 first_sample) {
  GstBuffer *buf = gst_buffer_new_memdup(samples.data(), samples.size() * sizeof(int16_t));
  GST_BUFFER_PTS(buf) = gst_util_uint64_scale_int(first_sample, GST_SECOND, rate);
  GST_BUFFER_DURATION(buf) = gst_util_uint64_scale_int(samples.size() / channels, GST_SECOND, rate);
  return buf;
}

std::vector<int16_t> contents(GstBuffer *buf) {
  GstMapInfo map;
  EXPECT_TRUE(gst_buffer_map(buf, &map, GST_MAP_READ));
  std::vector<int16_t> v(map.size / sizeof(int16_t));
  std::memcpy(v.data(), map.data, v.size() * sizeof(int16_t));
  gst_buffer_unmap(buf, &map);
  return v;
}

// Everything a harness has received so far, concatenated.
std::vector<int16_t> drain(GstHarness *h) {
  std::vector<int16_t> out;
  while (GstBuffer *b = gst_harness_try_pull(h)) {
    std::vector<int16_t> v = contents(b);
    out.insert(out.end(), v.begin(), v.end());
    gst_buffer_unref(b);
  }
  return out;
}

GstHarness *harness_for(GstElement *element, int rate, int channels) {
  GstHarness *h = gst_harness_new_with_element(element, "sink", "src");
  gst_object_unref(element);  // the harness holds its own reference
  gst_harness_play(h);
  gst_harness_set_src_caps_str(h, caps_str(rate, channels).c_str());
  return h;
}

GstStructure *stats_of(GstElement *aec_element) {
  GstStructure *s = nullptr;
  g_object_get(aec_element, "stats", &s, nullptr);
  return s;
}

// Warnings the canceller posted, with their text.
std::vector<std::string> warnings(GstBus *bus) {
  std::vector<std::string> out;
  while (GstMessage *m = gst_bus_pop_filtered(bus, GST_MESSAGE_WARNING)) {
    GError *err = nullptr;
    gst_message_parse_warning(m, &err, nullptr);
    out.push_back(err->message);
    g_error_free(err);
    gst_message_unref(m);
  }
  return out;
}

// A probe and a canceller paired by name, fed in lock step.
class AecPair {
 public:
  AecPair(const char *probe_name, int rate, int channels, bool with_probe = true)
      : rate_(rate), channels_(channels), bus_(gst_bus_new()) {
    if (with_probe) {
      probe_el_ = gst_element_factory_make("portieraecprobe", probe_name);
      EXPECT_NE(probe_el_, nullptr) << "portieraecprobe not found: GST_PLUGIN_PATH=build/plugins?";
      probe = harness_for(probe_el_, rate, channels);
    }
    aec_el_ = gst_element_factory_make("portieraec", nullptr);
    EXPECT_NE(aec_el_, nullptr);
    g_object_set(aec_el_, "probe-name", probe_name, nullptr);
    gst_element_set_bus(aec_el_, bus_);
    canceller = harness_for(aec_el_, rate, channels);
  }
  ~AecPair() {
    if (probe) gst_harness_teardown(probe);
    gst_harness_teardown(canceller);
    gst_object_unref(bus_);
  }
  GstElement *element() const { return canceller->element; }
  GstBus *bus() const { return bus_; }

  // Plays `far` (interleaved) through the probe and records `mic` with the
  // canceller, `samples` per channel per buffer; returns the canceller's output.
  std::vector<int16_t> run(const std::vector<int16_t> &far, const std::vector<int16_t> &mic,
                           size_t samples) {
    std::vector<int16_t> out;
    const size_t total = mic.size() / channels_;
    for (size_t pos = 0; pos < total; pos += samples) {
      const size_t n = std::min(samples, total - pos);
      if (probe && !far.empty()) {
        std::vector<int16_t> f(far.begin() + pos * channels_, far.begin() + (pos + n) * channels_);
        EXPECT_EQ(gst_harness_push(probe, s16_buffer(f, rate_, channels_, pos)), GST_FLOW_OK);
        drain(probe);  // the speaker plays it
      }
      std::vector<int16_t> m(mic.begin() + pos * channels_, mic.begin() + (pos + n) * channels_);
      EXPECT_EQ(gst_harness_push(canceller, s16_buffer(m, rate_, channels_, pos)), GST_FLOW_OK);
      std::vector<int16_t> o = drain(canceller);
      out.insert(out.end(), o.begin(), o.end());
    }
    return out;
  }

  GstHarness *probe = nullptr;
  GstHarness *canceller = nullptr;

 private:
  int rate_, channels_;
  GstBus *bus_;
  GstElement *probe_el_ = nullptr, *aec_el_ = nullptr;
};

// The door's far end and what its microphone hears of it.
struct EchoScene {
  std::vector<int16_t> far, mic;
};

EchoScene echo_scene(int rate, int channels, double seconds, bool far_talks = true,
                     bool visitor_talks = false) {
  const size_t n = static_cast<size_t>(rate * seconds);
  aec::PseudoSpeech voice(rate, 11), visitor(rate, 12);
  aec::EchoPathSpec spec;  // 40 ms, a 30 ms room, -6 dB, mic noise at -70 dBFS
  aec::EchoPath path(rate, spec);
  std::vector<float> f = voice.generate(n), m(n);
  if (!far_talks) std::fill(f.begin(), f.end(), 0.0f);
  path.process(f.data(), m.data(), n);
  if (visitor_talks) {
    std::vector<float> v = visitor.generate(n);
    for (size_t i = 0; i < n; ++i) m[i] += v[i];
  }
  EchoScene s;
  // the same signal on every channel: a door with a stereo card
  for (size_t i = 0; i < n; ++i)
    for (int c = 0; c < channels; ++c) {
      s.far.push_back(aec::to_s16(f[i]));
      s.mic.push_back(aec::to_s16(m[i]));
    }
  return s;
}

// ------------------------------------------------------------------ probe

TEST(AecProbe, PassesTheSpeakerAudioThroughBitExact) {
  for (auto [rate, channels] : {std::pair{16000, 1}, std::pair{48000, 2}}) {
    GstHarness *h =
        harness_for(gst_element_factory_make("portieraecprobe", "bitexact-probe"), rate, channels);
    EchoScene s = echo_scene(rate, channels, 1.0);
    // odd-sized buffers, as a decoder would produce
    const size_t step = 333;
    size_t pushed = 0;
    std::vector<int16_t> got;
    for (size_t pos = 0; pos * channels < s.far.size(); pos += step) {
      const size_t n = std::min(step, s.far.size() / channels - pos);
      std::vector<int16_t> f(s.far.begin() + pos * channels, s.far.begin() + (pos + n) * channels);
      GstBuffer *in = s16_buffer(f, rate, channels, pos);
      const GstClockTime pts = GST_BUFFER_PTS(in);
      ASSERT_EQ(gst_harness_push(h, in), GST_FLOW_OK);
      GstBuffer *out = gst_harness_pull(h);
      EXPECT_EQ(GST_BUFFER_PTS(out), pts);
      std::vector<int16_t> o = contents(out);
      got.insert(got.end(), o.begin(), o.end());
      gst_buffer_unref(out);
      ++pushed;
    }
    EXPECT_EQ(got, s.far) << rate << " Hz, " << channels << " channel(s)";
    guint queued = 0;
    g_object_get(h->element, "queued-frames", &queued, nullptr);
    EXPECT_EQ(queued, 100u) << "one second of 10 ms frames waits for a canceller";
    gst_harness_teardown(h);
  }
}

TEST(AecProbe, ASecondProbeOfTheSameNameDoesNotStart) {
  GstElement *a = gst_element_factory_make("portieraecprobe", "twin");
  GstElement *b = gst_element_factory_make("portieraecprobe", "twin");
  EXPECT_EQ(gst_element_set_state(a, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  EXPECT_EQ(gst_element_set_state(b, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  gst_element_set_state(a, GST_STATE_NULL);
  EXPECT_EQ(gst_element_set_state(b, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS)
      << "the name is free again once the first probe stopped";
  gst_element_set_state(b, GST_STATE_NULL);
  gst_object_unref(a);
  gst_object_unref(b);
}

// ------------------------------------------------------------------ canceller

// ERLE after 5 s of convergence, from the canceller's input and output.
double steady_erle(int rate, int channels, const std::vector<int16_t> &mic,
                   const std::vector<int16_t> &out) {
  aec::ErleMeter meter(rate, channels);
  meter.add(mic.data(), out.data(), std::min(mic.size(), out.size()) / channels);
  return meter.erle_db(5.0);
}

TEST(Aec, RemovesASyntheticEchoAt16kHz) {
  AecPair pair("probe-16k", 16000, 1);
  EchoScene s = echo_scene(16000, 1, 12.0);
  // 256-sample buffers: the 10 ms framing has work to do
  std::vector<int16_t> out = pair.run(s.far, s.mic, 256);
  ASSERT_EQ(out.size() + 256 > s.mic.size(), true) << "all but the last partial frame came out";
  const double erle = steady_erle(16000, 1, s.mic, out);
  RecordProperty("erle_db", std::to_string(erle));
  EXPECT_GE(erle, 15.0) << "steady-state ERLE (bench/aec reports the real figure)";

  GstStructure *st = stats_of(pair.element());
  gboolean linked = FALSE;
  guint64 frames = 0, far_frames = 0, passthrough = 0;
  gst_structure_get_boolean(st, "probe-linked", &linked);
  gst_structure_get_uint64(st, "frames", &frames);
  gst_structure_get_uint64(st, "far-frames", &far_frames);
  gst_structure_get_uint64(st, "passthrough-frames", &passthrough);
  EXPECT_TRUE(linked);
  EXPECT_EQ(frames, 1200u);
  EXPECT_GE(far_frames, 1195u) << "one far-end frame per near-end frame";
  EXPECT_EQ(passthrough, 0u);
  gboolean valid = FALSE;
  gint lib_erle = 0;
  gst_structure_get_boolean(st, "metrics-valid", &valid);
  gst_structure_get_int(st, "erle", &lib_erle);
  EXPECT_TRUE(valid) << "the library reports its own ERLE";
  EXPECT_GT(lib_erle, 0);
  gst_structure_free(st);
  EXPECT_TRUE(warnings(pair.bus()).empty());
}

TEST(Aec, RemovesASyntheticEchoAt48kHzStereo) {
  AecPair pair("probe-48k", 48000, 2);
  EchoScene s = echo_scene(48000, 2, 10.0);
  std::vector<int16_t> out = pair.run(s.far, s.mic, 480);
  ASSERT_EQ(out.size(), s.mic.size());
  EXPECT_GE(steady_erle(48000, 2, s.mic, out), 15.0);
}

// The rates the door runs its canceller at, one per codec family (G.711
// 8 kHz, G.722 16 kHz, opus 48 kHz: common/audio_codecs), mono, fed in the
// 20 ms buffers of the door's microphone.
TEST(Aec, RemovesASyntheticEchoAtEachCodecRate) {
  for (int rate : {8000, 16000, 48000}) {
    const std::string probe = "probe-codec-" + std::to_string(rate);
    AecPair pair(probe.c_str(), rate, 1);
    EchoScene s = echo_scene(rate, 1, 10.0);
    std::vector<int16_t> out = pair.run(s.far, s.mic, static_cast<size_t>(rate / 50));
    ASSERT_EQ(out.size(), s.mic.size()) << rate;
    const double erle = steady_erle(rate, 1, s.mic, out);
    RecordProperty("erle_db_" + std::to_string(rate), std::to_string(erle));
    EXPECT_GE(erle, 15.0) << rate << " Hz";
    EXPECT_TRUE(warnings(pair.bus()).empty()) << rate;
  }
}

TEST(Aec, AVisitorTalkingAlonePassesWithLittleAttenuation) {
  // The speaker is silent (the probe plays zeros) while the visitor talks:
  // nothing is echo, so nearly all of it must come through.
  AecPair pair("probe-visitor", 16000, 1);
  EchoScene s = echo_scene(16000, 1, 8.0, false, true);
  std::vector<int16_t> out = pair.run(s.far, s.mic, 160);
  aec::ErleMeter meter(16000, 1);
  meter.add(s.mic.data(), out.data(), out.size());
  const double change = meter.output_dbfs(1.0) - meter.input_dbfs(1.0);
  EXPECT_NEAR(change, 0.0, 3.0) << "output level against input, dB";
}

TEST(Aec, NegotiatesTheRatesAndChannelsOfTheLibrary) {
  for (int rate : {8000, 16000, 32000, 48000})
    for (int channels : {1, 2}) {
      GstHarness *h = harness_for(gst_element_factory_make("portieraec", nullptr), rate, channels);
      g_object_set(h->element, "echo-cancel", FALSE, nullptr);
      std::vector<int16_t> in(static_cast<size_t>(rate / 50) * channels, 0);  // 20 ms
      ASSERT_EQ(gst_harness_push(h, s16_buffer(in, rate, channels, 0)), GST_FLOW_OK)
          << rate << " Hz, " << channels << " channel(s)";
      GstBuffer *out = gst_harness_pull(h);
      EXPECT_EQ(gst_buffer_get_size(out), in.size() * sizeof(int16_t));
      gst_buffer_unref(out);
      GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
      ASSERT_NE(caps, nullptr);
      gint got_rate = 0, got_channels = 0;
      gst_structure_get_int(gst_caps_get_structure(caps, 0), "rate", &got_rate);
      gst_structure_get_int(gst_caps_get_structure(caps, 0), "channels", &got_channels);
      EXPECT_EQ(got_rate, rate);
      EXPECT_EQ(got_channels, channels);
      gst_caps_unref(caps);
      gst_harness_teardown(h);
    }
  // a rate the library cannot run at is refused at negotiation
  GstHarness *h = gst_harness_new("portieraec");
  GstCaps *cd = gst_caps_from_string(caps_str(44100, 1).c_str());
  GstCaps *accepted = gst_pad_query_caps(GST_PAD_PEER(h->srcpad), nullptr);
  EXPECT_FALSE(gst_caps_can_intersect(cd, accepted));
  gst_caps_unref(cd);
  gst_caps_unref(accepted);
  gst_harness_teardown(h);
}

TEST(Aec, WithoutItsProbeAudioPassesThroughAndOneWarningSaysSo) {
  AecPair pair("nobody-by-this-name", 16000, 1, false);
  EchoScene s = echo_scene(16000, 1, 1.0);
  std::vector<int16_t> out = pair.run({}, s.mic, 160);
  EXPECT_EQ(out, s.mic) << "untouched, bit for bit";
  std::vector<std::string> w = warnings(pair.bus());
  ASSERT_EQ(w.size(), 1u) << "one warning, not one per buffer";
  EXPECT_NE(w[0].find("nobody-by-this-name"), std::string::npos) << w[0];
  GstStructure *st = stats_of(pair.element());
  gboolean linked = TRUE;
  guint64 passthrough = 0;
  gst_structure_get_boolean(st, "probe-linked", &linked);
  gst_structure_get_uint64(st, "passthrough-frames", &passthrough);
  EXPECT_FALSE(linked);
  EXPECT_EQ(passthrough, 100u);
  gst_structure_free(st);
}

TEST(Aec, WhenTheProbeStopsTheCancellerPassesThroughAndSaysSoOnce) {
  AecPair pair("probe-leaving", 16000, 1);
  EchoScene s = echo_scene(16000, 1, 2.0);
  const size_t half = s.mic.size() / 2;
  std::vector<int16_t> far1(s.far.begin(), s.far.begin() + half),
      mic1(s.mic.begin(), s.mic.begin() + half);
  pair.run(far1, mic1, 160);
  EXPECT_TRUE(warnings(pair.bus()).empty());

  gst_harness_teardown(pair.probe);  // the speaker path goes away
  pair.probe = nullptr;
  std::vector<int16_t> mic2(s.mic.begin() + half, s.mic.end());
  std::vector<int16_t> out;
  for (size_t pos = 0; pos < mic2.size(); pos += 160) {
    std::vector<int16_t> m(mic2.begin() + pos, mic2.begin() + pos + 160);
    ASSERT_EQ(gst_harness_push(pair.canceller, s16_buffer(m, 16000, 1, half + pos)), GST_FLOW_OK);
    std::vector<int16_t> o = drain(pair.canceller);
    out.insert(out.end(), o.begin(), o.end());
  }
  EXPECT_EQ(out, mic2);
  EXPECT_EQ(warnings(pair.bus()).size(), 1u);
}

TEST(Aec, TheLastPartialFrameComesOutAtEos) {
  GstHarness *h = harness_for(gst_element_factory_make("portieraec", nullptr), 16000, 1);
  g_object_set(h->element, "echo-cancel", FALSE, nullptr);
  std::vector<int16_t> in(250, 100);
  ASSERT_EQ(gst_harness_push(h, s16_buffer(in, 16000, 1, 0)), GST_FLOW_OK);
  EXPECT_EQ(drain(h).size(), 160u);
  EXPECT_TRUE(gst_harness_push_event(h, gst_event_new_eos()));
  EXPECT_EQ(drain(h).size(), 90u) << "the rest, not padded";
  gst_harness_teardown(h);
}

TEST(Aec, ReportsOneFrameOfLatency) {
  GstHarness *h = gst_harness_new("portieraec");
  gst_harness_set_upstream_latency(h, 20 * GST_MSECOND);
  gst_harness_play(h);
  GstQuery *q = gst_query_new_latency();
  ASSERT_TRUE(gst_pad_peer_query(h->sinkpad, q));
  GstClockTime min = 0;
  gst_query_parse_latency(q, nullptr, &min, nullptr);
  EXPECT_EQ(min, 30 * GST_MSECOND);
  gst_query_unref(q);
  gst_harness_teardown(h);
}

}  // namespace

int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
