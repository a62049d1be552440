// portierenc against the encoders really installed (x264enc, openh264enc,
// vp8enc): which one it picks and what comes out. Unlike test_rtpfork, this
// test keeps the system plugin path, since choosing among the host's encoders
// is the point; ctest gives it a registry file of its own in the build tree.
//
// A hardware encoder cannot exist here, so two stand-ins are registered in
// this process: a bin around x264enc with klass "Codec/Encoder/Video/Hardware"
// and properties named its own way (only a table row can set them), and an
// encoder whose device is missing, which fails to reach READY. Both are
// registered at rank NONE and ranked up by the tests that need them.
#include <glib/gstdio.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video-event.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace {

constexpr const char *kFakeHw = "portiertesthwh264enc";
constexpr const char *kBroken = "portiertestbrokenh264enc";
constexpr const char *kRawCaps = "video/x-raw,format=I420,width=320,height=240,framerate=30/1";

// ------------------------------------------------------------------ stand-ins

// The fake hardware encoder: x264enc tuned as a hardware block would be by
// its driver (no frame delay), with vendor-style property names.
struct TestHwEnc {
  GstBin parent;
  GstElement *x264;
};
struct TestHwEncClass {
  GstBinClass parent_class;
};
G_DEFINE_TYPE(TestHwEnc, test_hw_enc, GST_TYPE_BIN)

enum { HW_PROP_0, HW_PROP_TARGET_KBPS, HW_PROP_IDR_PERIOD };

void test_hw_enc_set_property(GObject *object, guint id, const GValue *value, GParamSpec *) {
  auto *self = reinterpret_cast<TestHwEnc *>(object);
  g_object_set(self->x264, id == HW_PROP_TARGET_KBPS ? "bitrate" : "key-int-max",
               g_value_get_uint(value), nullptr);
}

void test_hw_enc_get_property(GObject *object, guint id, GValue *value, GParamSpec *) {
  auto *self = reinterpret_cast<TestHwEnc *>(object);
  guint v = 0;
  g_object_get(self->x264, id == HW_PROP_TARGET_KBPS ? "bitrate" : "key-int-max", &v, nullptr);
  g_value_set_uint(value, v);
}

GstStaticPadTemplate hw_sink =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-raw"));
GstStaticPadTemplate hw_src =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS("video/x-h264"));

void test_hw_enc_class_init(TestHwEncClass *klass) {
  GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
  gobject_class->set_property = test_hw_enc_set_property;
  gobject_class->get_property = test_hw_enc_get_property;
  const auto rw = static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_property(gobject_class, HW_PROP_TARGET_KBPS,
                                  g_param_spec_uint("target-kbps", "", "", 1, 100000, 2048, rw));
  g_object_class_install_property(gobject_class, HW_PROP_IDR_PERIOD,
                                  g_param_spec_uint("idr-period", "", "", 0, 100000, 0, rw));
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  gst_element_class_add_static_pad_template(element_class, &hw_sink);
  gst_element_class_add_static_pad_template(element_class, &hw_src);
  gst_element_class_set_static_metadata(element_class, "Test hardware H.264 encoder",
                                        "Codec/Encoder/Video/Hardware", "x264enc in disguise",
                                        "portier tests");
}

void test_hw_enc_init(TestHwEnc *self) {
  self->x264 = gst_element_factory_make("x264enc", nullptr);
  g_object_set(self->x264, "tune", 4 /* zerolatency */, "speed-preset", 1 /* ultrafast */, nullptr);
  gst_bin_add(GST_BIN(self), self->x264);
  for (const char *name : {"sink", "src"}) {
    GstPad *target = gst_element_get_static_pad(self->x264, name);
    GstPad *ghost = gst_ghost_pad_new_from_template(
        name, target, gst_element_class_get_pad_template(GST_ELEMENT_GET_CLASS(self), name));
    gst_element_add_pad(GST_ELEMENT(self), ghost);
    gst_object_unref(target);
  }
}

// An encoder whose device is gone: it fails to open, as v4l2h264enc does when
// /dev/videoN is missing or busy.
struct TestBrokenEnc {
  GstElement parent;
};
struct TestBrokenEncClass {
  GstElementClass parent_class;
};
G_DEFINE_TYPE(TestBrokenEnc, test_broken_enc, GST_TYPE_ELEMENT)

GstStateChangeReturn test_broken_enc_change_state(GstElement *element, GstStateChange t) {
  if (t == GST_STATE_CHANGE_NULL_TO_READY) {
    GST_ELEMENT_ERROR(element, RESOURCE, NOT_FOUND, ("No encoder device /dev/video-test"),
                      (nullptr));
    return GST_STATE_CHANGE_FAILURE;
  }
  return GST_ELEMENT_CLASS(test_broken_enc_parent_class)->change_state(element, t);
}

void test_broken_enc_class_init(TestBrokenEncClass *klass) {
  GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
  element_class->change_state = test_broken_enc_change_state;
  gst_element_class_add_static_pad_template(element_class, &hw_sink);
  gst_element_class_add_static_pad_template(element_class, &hw_src);
  gst_element_class_set_static_metadata(element_class, "Test broken hardware H.264 encoder",
                                        "Codec/Encoder/Video/Hardware", "never opens",
                                        "portier tests");
}

void test_broken_enc_init(TestBrokenEnc *) {}

// ------------------------------------------------------------------ helpers

// Sets a feature's rank for one test and puts the old one back.
class RankOverride {
 public:
  RankOverride(const char *name, guint rank)
      : feature_(gst_registry_lookup_feature(gst_registry_get(), name)) {
    EXPECT_NE(feature_, nullptr) << name << " is not installed";
    if (!feature_) return;
    old_ = gst_plugin_feature_get_rank(feature_);
    gst_plugin_feature_set_rank(feature_, rank);
  }
  ~RankOverride() {
    if (!feature_) return;
    gst_plugin_feature_set_rank(feature_, old_);
    gst_object_unref(feature_);
  }
  RankOverride(const RankOverride &) = delete;
  RankOverride &operator=(const RankOverride &) = delete;

 private:
  GstPluginFeature *feature_;
  guint old_ = 0;
};

std::string get_string(gpointer object, const char *property) {
  gchar *v = nullptr;
  g_object_get(object, property, &v, nullptr);
  std::string s = v ? v : "";
  g_free(v);
  return s;
}

// The encoder portierenc picks when brought to READY on its own (no peer:
// the codec property decides).
std::string choice(const char *codec, const char *more_props = nullptr) {
  GstElement *e = gst_element_factory_make("portierenc", nullptr);
  EXPECT_NE(e, nullptr) << "portierenc not found: is GST_PLUGIN_PATH set to build/plugins?";
  if (!e) return "";
  gst_util_set_object_arg(G_OBJECT(e), "codec", codec);
  if (more_props) {
    gchar **kv = g_strsplit(more_props, "=", 2);
    gst_util_set_object_arg(G_OBJECT(e), kv[0], kv[1]);
    g_strfreev(kv);
  }
  std::string chosen;
  GstElement *encoder = nullptr;
  if (gst_element_set_state(e, GST_STATE_READY) == GST_STATE_CHANGE_SUCCESS) {
    chosen = get_string(e, "encoder");
    encoder = gst_bin_get_by_name(GST_BIN(e), "encoder");
    g_object_add_weak_pointer(G_OBJECT(encoder), reinterpret_cast<gpointer *>(&encoder));
    gst_object_unref(encoder);
  }
  g_object_add_weak_pointer(G_OBJECT(e), reinterpret_cast<gpointer *>(&e));
  gst_element_set_state(e, GST_STATE_NULL);
  EXPECT_EQ(encoder, nullptr) << "the encoder outlived the return to NULL";
  gst_object_unref(e);
  EXPECT_EQ(e, nullptr) << "portierenc was not finalized";
  return chosen;
}

// A file in a fresh temporary directory, removed with the object.
class TempFile {
 public:
  explicit TempFile(const std::string &text) {
    gchar *dir = g_dir_make_tmp("portier-encpick-XXXXXX", nullptr);
    dir_ = dir;
    g_free(dir);
    path_ = dir_ + "/encoders.ini";
    std::ofstream(path_) << text;
  }
  ~TempFile() {
    std::remove(path_.c_str());
    g_rmdir(dir_.c_str());
  }
  const char *path() const { return path_.c_str(); }

 private:
  std::string dir_, path_;
};

struct Finished {
  bool eos = false;
  std::string error;  // the first error message and its debug text
};

// Runs a pipeline to EOS (bounded, so a bug cannot hang the test).
Finished run_to_eos(GstElement *pipeline) {
  Finished f;
  GstBus *bus = gst_element_get_bus(pipeline);
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  GstMessage *msg = gst_bus_timed_pop_filtered(
      bus, 60 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
  if (msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_EOS) f.eos = true;
  if (msg && GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
    GError *err = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_error(msg, &err, &dbg);
    f.error = std::string(err->message) + " | " + (dbg ? dbg : "");
    g_error_free(err);
    g_free(dbg);
  }
  if (msg) gst_message_unref(msg);
  gst_object_unref(bus);
  return f;
}

// The first error message on a pipeline's bus so far, or "".
std::string pending_error(GstElement *pipeline) {
  GstBus *bus = gst_element_get_bus(pipeline);
  std::string out;
  if (GstMessage *msg = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
    GError *err = nullptr;
    gchar *dbg = nullptr;
    gst_message_parse_error(msg, &err, &dbg);
    out = std::string(err->message) + " | " + (dbg ? dbg : "");
    g_error_free(err);
    g_free(dbg);
    gst_message_unref(msg);
  }
  gst_object_unref(bus);
  return out;
}

// NAL unit types of an H.264 byte-stream access unit, in order.
std::vector<int> nal_types(GstBuffer *buf) {
  std::vector<int> types;
  GstMapInfo map;
  if (!gst_buffer_map(buf, &map, GST_MAP_READ)) return types;
  for (size_t i = 0; i + 3 < map.size; ++i)
    if (map.data[i] == 0 && map.data[i + 1] == 0 && map.data[i + 2] == 1) {
      types.push_back(map.data[i + 3] & 0x1f);
      i += 2;
    }
  gst_buffer_unmap(buf, &map);
  return types;
}

bool is_keyframe(GstBuffer *buf) {
  return !GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);
}

}  // namespace

// ------------------------------------------------------------------ the choice

TEST(EncPick, H264FollowsRankX264encOverOpenh264enc) {
  GstPluginFeature *x264 = gst_registry_lookup_feature(gst_registry_get(), "x264enc");
  GstPluginFeature *openh264 = gst_registry_lookup_feature(gst_registry_get(), "openh264enc");
  ASSERT_TRUE(x264 && openh264) << "x264enc and openh264enc must be installed";
  EXPECT_GT(gst_plugin_feature_get_rank(x264), gst_plugin_feature_get_rank(openh264));
  gst_object_unref(x264);
  gst_object_unref(openh264);
  EXPECT_EQ(choice("h264"), "x264enc");
  EXPECT_EQ(choice("auto"), "x264enc");  // nothing linked downstream: H.264
}

TEST(EncPick, RankSetInProcessChangesTheChoice) {
  RankOverride x264("x264enc", GST_RANK_NONE), openh264("openh264enc", G_MAXINT);
  EXPECT_EQ(choice("h264"), "openh264enc");
}

// GStreamer's own environment variable, read at gst_init(): the test runs
// this executable again with it set (see main()).
TEST(EncPick, FeatureRankEnvironmentVariableChangesTheChoice) {
  gchar *self = g_file_read_link("/proc/self/exe", nullptr);
  ASSERT_NE(self, nullptr);
  gchar **env = g_get_environ();
  env = g_environ_setenv(env, "GST_PLUGIN_FEATURE_RANK", "x264enc:NONE,openh264enc:MAX", TRUE);
  const gchar *argv[] = {self, "--print-choice", "h264", nullptr};
  gchar *out = nullptr;
  gint status = -1;
  GError *err = nullptr;
  ASSERT_TRUE(g_spawn_sync(nullptr, const_cast<gchar **>(argv), env, G_SPAWN_DEFAULT, nullptr,
                           nullptr, &out, nullptr, &status, &err))
      << err->message;
  EXPECT_EQ(status, 0);
  EXPECT_EQ(std::string(out), "openh264enc\n");
  g_free(out);
  g_strfreev(env);
  g_free(self);
}

TEST(EncPick, Vp8PicksVp8enc) { EXPECT_EQ(choice("vp8"), "vp8enc"); }

TEST(EncPick, FakeHardwareEncoderIsChosenAndConfiguredByATableFile) {
  RankOverride hw(kFakeHw, GST_RANK_PRIMARY + 1);
  TempFile table(std::string("[") + kFakeHw +
                 "]\n"
                 "target-kbps = ${kbps}\n"
                 "idr-period = ${keyframe-interval}\n"
                 "no-such-knob = 1   # a property it lacks: skipped, no error\n");
  GstElement *e = gst_element_factory_make("portierenc", nullptr);
  g_object_set(e, "encoder-table", table.path(), "bitrate", 640u, "keyframe-interval", 48u,
               nullptr);
  ASSERT_EQ(gst_element_set_state(e, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
  EXPECT_EQ(get_string(e, "encoder"), kFakeHw);
  GstElement *enc = gst_bin_get_by_name(GST_BIN(e), "encoder");
  ASSERT_NE(enc, nullptr);
  guint kbps = 0, period = 0;
  g_object_get(enc, "target-kbps", &kbps, "idr-period", &period, nullptr);
  EXPECT_EQ(kbps, 640u);
  EXPECT_EQ(period, 48u);
  gst_object_unref(enc);
  gst_element_set_state(e, GST_STATE_NULL);
  gst_object_unref(e);
}

TEST(EncPick, HardwareComesFirstEvenBelowSoftwareRankUnlessTurnedOff) {
  RankOverride hw(kFakeHw, GST_RANK_MARGINAL);
  EXPECT_EQ(choice("h264"), kFakeHw);
  EXPECT_EQ(choice("h264", "prefer-hardware=false"), "x264enc");
}

TEST(EncPick, RankNoneIsOnlyTriedWhenNamed) {
  EXPECT_EQ(choice("h264"), "x264enc");  // the fake is at rank none
  EXPECT_EQ(choice("h264", (std::string("try-first=nosuchenc,") + kFakeHw).c_str()), kFakeHw);
}

TEST(EncPick, HardwareEncoderThatCannotOpenIsSkippedQuietly) {
  RankOverride broken(kBroken, GST_RANK_PRIMARY + 2), hw(kFakeHw, GST_RANK_PRIMARY + 1);
  GstElement *p = gst_parse_launch(
      "videotestsrc num-buffers=5 ! video/x-raw,width=160,height=120 ! portierenc name=e ! "
      "fakesink",
      nullptr);
  ASSERT_NE(p, nullptr);
  Finished f = run_to_eos(p);
  EXPECT_TRUE(f.eos) << f.error;  // the broken one's error stayed on its probe bus
  GstElement *e = gst_bin_get_by_name(GST_BIN(p), "e");
  EXPECT_EQ(get_string(e, "encoder"), kFakeHw);
  gst_object_unref(e);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);

  // With no working hardware, the software encoder.
  RankOverride no_hw(kFakeHw, GST_RANK_NONE);
  EXPECT_EQ(choice("h264"), "x264enc");
}

TEST(EncPick, CodecFollowsTheDownstreamCaps) {
  struct Case {
    const char *downstream, *encoder;
  } cases[] = {
      {"rtph264pay", "x264enc"},
      {"rtpvp8pay", "vp8enc"},
      {"capsfilter caps=video/x-vp8", "vp8enc"},
      {"capsfilter caps=\"video/x-vp8;video/x-h264\"", "vp8enc"},  // the peer's order
      {"capsfilter caps=\"video/x-h264;video/x-vp8\"", "x264enc"},
  };
  for (const Case &c : cases) {
    std::string line = std::string("portierenc name=e ! ") + c.downstream + " ! fakesink";
    GstElement *p = gst_parse_launch(line.c_str(), nullptr);
    ASSERT_NE(p, nullptr) << line;
    EXPECT_EQ(gst_element_set_state(p, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS) << line;
    GstElement *e = gst_bin_get_by_name(GST_BIN(p), "e");
    EXPECT_EQ(get_string(e, "encoder"), c.encoder) << line;
    gst_object_unref(e);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
  }
}

TEST(EncPick, NoUsableEncoderIsAnErrorNamingTheCandidates) {
  RankOverride vp8("vp8enc", GST_RANK_NONE);
  GstElement *p = gst_parse_launch("portierenc codec=vp8 ! fakesink", nullptr);
  EXPECT_EQ(gst_element_set_state(p, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  const std::string error = pending_error(p);
  EXPECT_NE(error.find("No usable VP8 encoder"), std::string::npos) << error;
  EXPECT_NE(error.find("vp8enc: left out, rank none"), std::string::npos) << error;
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
}

TEST(EncPick, BadTableFileIsAnErrorNamingFileAndLine) {
  TempFile table("[x264enc]\nbitrate = ${mbps}\n");
  GstElement *p = gst_parse_launch("portierenc name=e ! fakesink", nullptr);
  GstElement *e = gst_bin_get_by_name(GST_BIN(p), "e");
  g_object_set(e, "encoder-table", table.path(), nullptr);
  EXPECT_EQ(gst_element_set_state(p, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
  const std::string error = pending_error(p);
  EXPECT_NE(error.find(std::string(table.path()) + ":2: bitrate: unknown placeholder ${mbps}"),
            std::string::npos)
      << error;
  gst_object_unref(e);
  gst_element_set_state(p, GST_STATE_NULL);
  gst_object_unref(p);
}

TEST(EncPick, X264encIsSetUpForRealTimeAndTakesANewBitrateWhilePlaying) {
  // The harness starts the element at once: properties go first.
  GstElement *e = gst_element_factory_make("portierenc", nullptr);
  g_object_set(e, "bitrate", 700u, "keyframe-interval", 45u, nullptr);
  GstHarness *h = gst_harness_new_with_element(e, "sink", "src");
  gst_object_unref(e);
  GstElement *enc = gst_bin_get_by_name(GST_BIN(h->element), "encoder");
  ASSERT_NE(enc, nullptr);
  EXPECT_EQ(GST_OBJECT_NAME(gst_element_get_factory(enc)), std::string("x264enc"));
  guint bitrate = 0, key_int_max = 0, bframes = 9, tune = 0;
  g_object_get(enc, "bitrate", &bitrate, "key-int-max", &key_int_max, "bframes", &bframes, "tune",
               &tune, nullptr);
  EXPECT_EQ(bitrate, 700u);
  EXPECT_EQ(key_int_max, 45u);
  EXPECT_EQ(bframes, 0u);
  EXPECT_TRUE(tune & 4) << "no zerolatency";
  g_object_set(h->element, "bitrate", 900u, nullptr);
  g_object_get(enc, "bitrate", &bitrate, nullptr);
  EXPECT_EQ(bitrate, 900u);
  gst_object_unref(enc);
  gst_harness_teardown(h);
}

// ------------------------------------------------------------------ the output

struct Encoder {
  const char *name;     // test name
  const char *codec;    // portierenc codec
  const char *encoder;  // expected choice
  const char *decoder;  // to check the output
  const char *try_first;
  bool fake_hw;
};

void PrintTo(const Encoder &e, std::ostream *os) { *os << e.name; }

class EncPickOutput : public ::testing::TestWithParam<Encoder> {
 protected:
  // The fake hardware encoder is set up as a vendor would: by a table row.
  void SetUp() override {
    if (!GetParam().fake_hw) return;
    hw_ = std::make_unique<RankOverride>(kFakeHw, GST_RANK_PRIMARY + 1);
    table_ = std::make_unique<TempFile>(std::string("[") + kFakeHw +
                                        "]\ntarget-kbps = ${kbps}\n"
                                        "idr-period = ${keyframe-interval}\n");
  }
  const char *table() const { return table_ ? table_->path() : ""; }
  bool h264() const { return g_str_equal(GetParam().codec, "h264"); }

  // portierenc under a harness, fed by videotestsrc (a ball that moves, so
  // P-frames are not empty), keyframes every `interval` frames.
  GstHarness *start(guint interval) {
    // The harness starts the element at once: properties go first.
    GstElement *e = gst_element_factory_make("portierenc", nullptr);
    gst_util_set_object_arg(G_OBJECT(e), "codec", GetParam().codec);
    g_object_set(e, "keyframe-interval", interval, "try-first", GetParam().try_first,
                 "encoder-table", table(), nullptr);
    GstHarness *h = gst_harness_new_with_element(e, "sink", "src");
    gst_object_unref(e);
    // byte-stream, so that the test can read the NAL units
    gst_harness_set_sink_caps_str(
        h, h264() ? "video/x-h264,stream-format=byte-stream,alignment=au" : "video/x-vp8");
    gst_harness_add_src_parse(
        h, (std::string("videotestsrc pattern=ball ! capsfilter caps=") + kRawCaps).c_str(), FALSE);
    EXPECT_EQ(get_string(h->element, "encoder"), GetParam().encoder);
    return h;
  }
  // Pushes n frames and returns what came out.
  std::vector<GstBuffer *> encode(GstHarness *h, int n) {
    EXPECT_EQ(gst_harness_src_crank_and_push_many(h, 0, n), GST_FLOW_OK);
    std::vector<GstBuffer *> out;
    while (GstBuffer *b = gst_harness_try_pull(h)) out.push_back(b);
    return out;
  }
  static void unref_all(std::vector<GstBuffer *> &bufs) {
    for (GstBuffer *b : bufs) gst_buffer_unref(b);
    bufs.clear();
  }

  std::unique_ptr<RankOverride> hw_;
  std::unique_ptr<TempFile> table_;
};

// The same for H.264 only.
class EncPickH264Output : public EncPickOutput {};

TEST_P(EncPickOutput, DecodesToEveryFrame) {
  const Encoder &p = GetParam();
  std::string line = std::string("videotestsrc num-buffers=30 pattern=ball ! ") + kRawCaps +
                     " ! portierenc name=e codec=" + p.codec;
  if (*p.try_first) line += std::string(" try-first=") + p.try_first;
  if (*table()) line += std::string(" encoder-table=") + table();
  line += std::string(" ! ") + p.decoder + " name=dec ! fakesink";
  GstElement *pipeline = gst_parse_launch(line.c_str(), nullptr);
  ASSERT_NE(pipeline, nullptr) << line;
  GstElement *dec = gst_bin_get_by_name(GST_BIN(pipeline), "dec");
  GstPad *pad = gst_element_get_static_pad(dec, "src");
  int frames = 0;
  gst_pad_add_probe(
      pad, GST_PAD_PROBE_TYPE_BUFFER,
      [](GstPad *, GstPadProbeInfo *, gpointer n) -> GstPadProbeReturn {
        ++*static_cast<int *>(n);
        return GST_PAD_PROBE_OK;
      },
      &frames, nullptr);
  Finished f = run_to_eos(pipeline);
  EXPECT_TRUE(f.eos) << f.error;
  EXPECT_EQ(frames, 30);
  GstElement *e = gst_bin_get_by_name(GST_BIN(pipeline), "e");
  EXPECT_EQ(get_string(e, "encoder"), p.encoder);
  gst_object_unref(e);
  gst_object_unref(pad);
  gst_object_unref(dec);
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(pipeline);
}

// Every frame leaves the encoder when it goes in, in presentation order: no
// B-frames, no lookahead. H.264 also says so in its profile.
TEST_P(EncPickOutput, OneFrameOutPerFrameInAndNoReordering) {
  GstHarness *h = start(15);
  std::vector<GstBuffer *> out;
  for (int i = 0; i < 40; ++i) {
    std::vector<GstBuffer *> got = encode(h, 1);
    ASSERT_EQ(got.size(), 1u) << "frame " << i << " was held back or split";
    out.push_back(got[0]);
  }
  for (size_t i = 0; i < out.size(); ++i) {
    const GstClockTime pts = GST_BUFFER_PTS(out[i]), dts = GST_BUFFER_DTS(out[i]);
    if (GST_CLOCK_TIME_IS_VALID(dts)) {
      EXPECT_EQ(pts, dts) << "frame " << i;
    }
    if (i > 0) {
      EXPECT_GT(pts, GST_BUFFER_PTS(out[i - 1])) << "frame " << i;
    }
    EXPECT_EQ(is_keyframe(out[i]), i % 15 == 0) << "frame " << i;
  }
  if (h264()) {
    GstCaps *caps = gst_pad_get_current_caps(h->sinkpad);
    ASSERT_NE(caps, nullptr);
    EXPECT_STREQ(gst_structure_get_string(gst_caps_get_structure(caps, 0), "profile"),
                 "constrained-baseline");
    gst_caps_unref(caps);
  }
  unref_all(out);
  gst_harness_teardown(h);
}

// A device joining mid-call (rtpfork) or a phone's PLI: GstForceKeyUnit from
// downstream makes the very next frame a keyframe, long before the interval.
TEST_P(EncPickOutput, ForceKeyUnitMakesTheNextFrameAKeyframe) {
  GstHarness *h = start(1000);
  std::vector<GstBuffer *> out = encode(h, 10);
  ASSERT_EQ(out.size(), 10u);
  EXPECT_TRUE(is_keyframe(out[0]));
  for (size_t i = 1; i < out.size(); ++i) EXPECT_FALSE(is_keyframe(out[i])) << "frame " << i;
  unref_all(out);

  EXPECT_TRUE(gst_harness_push_upstream_event(
      h, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 1)));
  out = encode(h, 5);
  ASSERT_EQ(out.size(), 5u);
  EXPECT_TRUE(is_keyframe(out[0])) << "the frame after the request is not a keyframe";
  if (!h264()) {  // VP8's own keyframe bit (RFC 6386 §9.1), not only the flag
    GstMapInfo map;
    ASSERT_TRUE(gst_buffer_map(out[0], &map, GST_MAP_READ));
    EXPECT_EQ(map.data[0] & 1, 0);
    gst_buffer_unmap(out[0], &map);
  }
  for (size_t i = 1; i < out.size(); ++i) EXPECT_FALSE(is_keyframe(out[i])) << "frame " << i;
  unref_all(out);
  gst_harness_teardown(h);
}

// SPS and PPS come with every IDR, the forced ones too, so a device that
// joins mid-call decodes from the next keyframe.
TEST_P(EncPickH264Output, ParameterSetsPrecedeEveryIdr) {
  GstHarness *h = start(10);
  std::vector<GstBuffer *> out = encode(h, 25);
  ASSERT_TRUE(gst_harness_push_upstream_event(
      h, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 1)));
  std::vector<GstBuffer *> more = encode(h, 3);
  out.insert(out.end(), more.begin(), more.end());
  int idr_frames = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    const std::vector<int> t = nal_types(out[i]);
    auto at = [&](int type) { return std::find(t.begin(), t.end(), type) - t.begin(); };
    const bool idr = at(5) < static_cast<long>(t.size());
    EXPECT_EQ(idr, is_keyframe(out[i])) << "frame " << i;
    if (!idr) continue;
    ++idr_frames;
    EXPECT_LT(at(7), at(5)) << "no SPS before the IDR of frame " << i;
    EXPECT_LT(at(8), at(5)) << "no PPS before the IDR of frame " << i;
  }
  EXPECT_EQ(idr_frames, 4);  // frames 0, 10, 20 and the forced one
  unref_all(out);
  gst_harness_teardown(h);
}

namespace {

const Encoder kX264{"x264enc", "h264", "x264enc", "avdec_h264", "", false};
const Encoder kOpenh264{"openh264enc", "h264", "openh264enc", "avdec_h264", "openh264enc", false};
const Encoder kVp8{"vp8enc", "vp8", "vp8enc", "vp8dec", "", false};
const Encoder kFakeHardware{"fake_hardware", "h264", kFakeHw, "avdec_h264", "", true};

std::string name_of(const ::testing::TestParamInfo<Encoder> &info) { return info.param.name; }

}  // namespace

INSTANTIATE_TEST_SUITE_P(Encoders, EncPickOutput,
                         ::testing::Values(kX264, kOpenh264, kVp8, kFakeHardware), name_of);
INSTANTIATE_TEST_SUITE_P(Encoders, EncPickH264Output,
                         ::testing::Values(kX264, kOpenh264, kFakeHardware), name_of);

// `test_encpick --print-choice CODEC` prints portierenc's choice and exits:
// how FeatureRankEnvironmentVariableChangesTheChoice sees a fresh gst_init().
int main(int argc, char **argv) {
  gst_init(&argc, &argv);
  gst_element_register(nullptr, kFakeHw, GST_RANK_NONE, test_hw_enc_get_type());
  gst_element_register(nullptr, kBroken, GST_RANK_NONE, test_broken_enc_get_type());
  if (argc == 3 && g_str_equal(argv[1], "--print-choice")) {
    std::printf("%s\n", choice(argv[2]).c_str());
    return 0;
  }
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
