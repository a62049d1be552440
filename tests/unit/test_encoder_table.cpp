// The plain C++ under portierenc: the per-encoder real-time table, the table
// file vendors write, and the order in which encoders are tried.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "portierenc/encoder_choice.h"
#include "portierenc/encoder_table.h"

using namespace portier::encpick;

namespace {

std::map<std::string, std::string> settings_of(const EncoderTable &t, const std::string &factory,
                                               Targets targets = {}) {
  std::map<std::string, std::string> out;
  const EncoderRow *row = t.find(factory);
  if (!row) return out;
  for (const ResolvedSetting &s : resolve(*row, targets)) out[s.property] = s.value;
  return out;
}

}  // namespace

// The software encoders of Debian's GStreamer, each in its own units.
TEST(EncoderTable, BuiltinRowsSetRealTimeInEachEncodersUnits) {
  const EncoderTable t = EncoderTable::builtin();
  const Targets targets{800, 90};

  auto x264 = settings_of(t, "x264enc", targets);
  EXPECT_EQ(x264["tune"], "zerolatency");
  EXPECT_EQ(x264["bframes"], "0");
  EXPECT_EQ(x264["bitrate"], "800");  // kbit/s
  EXPECT_EQ(x264["key-int-max"], "90");
  EXPECT_TRUE(x264.count("speed-preset"));

  auto openh264 = settings_of(t, "openh264enc", targets);
  EXPECT_EQ(openh264["bitrate"], "800000");  // bit/s
  EXPECT_EQ(openh264["gop-size"], "90");
  EXPECT_EQ(openh264["rate-control"], "bitrate");
  EXPECT_EQ(openh264["enable-frame-skip"], "true");  // or it overshoots (bench/README.md)

  auto vp8 = settings_of(t, "vp8enc", targets);
  EXPECT_EQ(vp8["deadline"], "1");
  EXPECT_EQ(vp8["lag-in-frames"], "0");
  EXPECT_EQ(vp8["end-usage"], "cbr");
  EXPECT_EQ(vp8["target-bitrate"], "800000");  // bit/s
  EXPECT_EQ(vp8["keyframe-max-dist"], "90");
}

TEST(EncoderTable, HardwareRowsAndTheV4l2ControlStructure) {
  const EncoderTable t = EncoderTable::builtin();
  for (const char *f : {"v4l2h264enc", "vaapih264enc", "nvh264enc", "omxh264enc", "v4l2vp8enc"})
    EXPECT_NE(t.find(f), nullptr) << f;
  auto v4l2 = settings_of(t, "v4l2h264enc", {500, 30});
  EXPECT_EQ(v4l2["extra-controls"],
            "controls,video_bitrate=500000,video_bitrate_mode=1,video_gop_size=30,"
            "h264_i_frame_period=30");
  EXPECT_EQ(settings_of(t, "vaapih264enc", {500, 30})["bitrate"], "500");
}

TEST(EncoderTable, EveryBuiltinValueUsesKnownPlaceholders) {
  const EncoderTable t = EncoderTable::builtin();
  for (const std::string &f : t.factories())
    for (const Setting &s : t.find(f)->settings)
      EXPECT_EQ(check_placeholders(s.value), "") << f << " " << s.property;
}

TEST(EncoderTable, BitrateSettingsAreMarkedForLiveChanges) {
  const EncoderTable t = EncoderTable::builtin();
  for (const ResolvedSetting &s : resolve(*t.find("x264enc"), {}))
    EXPECT_EQ(s.uses_bitrate, s.property == "bitrate") << s.property;
}

TEST(EncoderTable, BitRateInBitsDoesNotOverflow) {
  EncoderRow row{"e", {{"bitrate", "${bps}"}}, {}};
  EXPECT_EQ(resolve(row, {2000000, 1})[0].value, "2000000000");
  EXPECT_EQ(resolve(row, {4294967, 1})[0].value, "4294967000");
}

TEST(EncoderTable, AvencOmxIsSkippedWithAReason) {
  const EncoderTable t = EncoderTable::builtin();
  const EncoderRow *row = t.find("avenc_h264_omx");
  ASSERT_NE(row, nullptr);
  EXPECT_NE(row->skip_reason.find("OpenMAX"), std::string::npos);
}

TEST(EncoderTable, FileAddsRowsReplacesAndRemovesSettings) {
  EncoderTable t = EncoderTable::builtin();
  std::string err;
  ASSERT_TRUE(
      t.merge_text("# a vendor's encoder\n"
                   "[acmeh264enc]\n"
                   "target-bitrate = ${bps}   # bit/s\n"
                   "gop-length=${keyframe-interval}\n"
                   "\n"
                   "[x264enc]\n"
                   "speed-preset = veryfast\n"
                   "aud =\n"
                   "threads = 2\n",
                   "vendor.ini", &err))
      << err;
  auto acme = settings_of(t, "acmeh264enc", {300, 45});
  EXPECT_EQ(acme, (std::map<std::string, std::string>{{"target-bitrate", "300000"},
                                                      {"gop-length", "45"}}));
  auto x264 = settings_of(t, "x264enc");
  EXPECT_EQ(x264["speed-preset"], "veryfast");
  EXPECT_EQ(x264.count("aud"), 0u);
  EXPECT_EQ(x264["threads"], "2");
  EXPECT_EQ(x264["tune"], "zerolatency");  // the rest of the row stays
  // a new setting goes last, after the built-in ones it may depend on
  EXPECT_EQ(t.find("x264enc")->settings.back().property, "threads");
}

TEST(EncoderTable, FileSkipsAndUnskips) {
  EncoderTable t = EncoderTable::builtin();
  std::string err;
  ASSERT_TRUE(
      t.merge_text("[openh264enc]\n@skip = licence\n[avenc_h264_omx]\n@skip =\n", "t", &err))
      << err;
  EXPECT_EQ(t.find("openh264enc")->skip_reason, "licence");
  EXPECT_FALSE(t.find("openh264enc")->settings.empty());
  EXPECT_EQ(t.find("avenc_h264_omx")->skip_reason, "");
}

TEST(EncoderTable, ValuesKeepSemicolonsAndInnerHashes) {
  EncoderTable t;
  std::string err;
  ASSERT_TRUE(t.merge_text("[e]\ncaps = video/x-raw; video/x-h264\nname = a#b\n", "t", &err))
      << err;
  auto s = settings_of(t, "e");
  EXPECT_EQ(s["caps"], "video/x-raw; video/x-h264");
  EXPECT_EQ(s["name"], "a#b");
}

TEST(EncoderTable, FileErrorsNameFileAndLine) {
  struct Case {
    const char *text;
    const char *error;
  };
  const std::vector<Case> cases = {
      {"bitrate = 1\n", "t.ini:1: a setting before the first [FACTORY] group"},
      {"[x264enc]\n\nbitrate\n", "t.ini:3: expected PROPERTY = VALUE or [FACTORY]"},
      {"[x264enc\n", "t.ini:1: a group is written [FACTORY]"},
      {"[two words]\n", "t.ini:1: \"two words\" is not an element factory name"},
      {"[x264enc]\n1bitrate = 3\n", "t.ini:2: \"1bitrate\" is not a property name (nor @skip)"},
      {"[x264enc]\nbitrate = ${mbps}\n",
       "t.ini:2: bitrate: unknown placeholder ${mbps} (known: ${kbps}, ${bps}, "
       "${keyframe-interval})"},
      {"[x264enc]\nbitrate = ${kbps\n", "t.ini:2: bitrate: unterminated placeholder"},
  };
  for (const Case &c : cases) {
    EncoderTable t;
    std::string err;
    EXPECT_FALSE(t.merge_text(c.text, "t.ini", &err)) << c.text;
    EXPECT_EQ(err, c.error);
  }
}

TEST(EncoderTable, BadFileChangesNothing) {
  EncoderTable t = EncoderTable::builtin();
  std::string err;
  EXPECT_FALSE(t.merge_text("[x264enc]\nspeed-preset = slow\n[new]\nbitrate\n", "t.ini", &err));
  EXPECT_EQ(err, "t.ini:4: expected PROPERTY = VALUE or [FACTORY]");
  EXPECT_EQ(settings_of(t, "x264enc")["speed-preset"], "ultrafast");
  EXPECT_EQ(t.find("new"), nullptr);
}

TEST(EncoderTable, MissingFileIsAnError) {
  EncoderTable t;
  std::string err;
  EXPECT_FALSE(t.merge_file("/nonexistent/encoders.ini", &err));
  EXPECT_EQ(err.rfind("/nonexistent/encoders.ini: cannot open the encoder table: ", 0), 0u) << err;
}

// ------------------------------------------------------------------ ordering

namespace {

const std::vector<Candidate> kDebianH264 = {
    {"openh264enc", 64, false},
    {"x264enc", 256, false},
    {"avenc_h264_omx", 128, false},
};

}  // namespace

TEST(EncoderChoice, SoftwareByRankAndSkippedRowsLeftOut) {
  Ordering o = order_candidates(kDebianH264, {}, EncoderTable::builtin());
  EXPECT_EQ(o.order, (std::vector<std::string>{"x264enc", "openh264enc"}));
  ASSERT_EQ(o.left_out.size(), 1u);
  EXPECT_EQ(o.left_out[0].first, "avenc_h264_omx");
}

TEST(EncoderChoice, HardwareFirstEvenAtLowerRankUnlessTurnedOff) {
  auto c = kDebianH264;
  c.push_back({"v4l2h264enc", 64, true});
  c.push_back({"vaapih264enc", 256 + 1, true});
  EXPECT_EQ(order_candidates(c, {}, EncoderTable()).order,
            (std::vector<std::string>{"vaapih264enc", "v4l2h264enc", "x264enc", "avenc_h264_omx",
                                      "openh264enc"}));
  ChoicePolicy software_too;
  software_too.prefer_hardware = false;
  EXPECT_EQ(order_candidates(c, software_too, EncoderTable()).order,
            (std::vector<std::string>{"vaapih264enc", "x264enc", "avenc_h264_omx", "openh264enc",
                                      "v4l2h264enc"}));
}

TEST(EncoderChoice, RankNoneIsLeftOutLikeAutodetect) {
  auto c = kDebianH264;
  c.push_back({"vah264enc", 0, true});
  Ordering o = order_candidates(c, {}, EncoderTable());
  EXPECT_EQ(o.order.front(), "x264enc");
  EXPECT_EQ(std::count(o.order.begin(), o.order.end(), "vah264enc"), 0);
  EXPECT_EQ(o.left_out.back(), (std::pair<std::string, std::string>{"vah264enc", "rank none"}));
}

TEST(EncoderChoice, TryFirstWinsOverRankNoneAndSkipInItsOwnOrder) {
  auto c = kDebianH264;
  c.push_back({"vah264enc", 0, true});
  ChoicePolicy p;
  p.try_first = {"avenc_h264_omx", "absent", "vah264enc", "avenc_h264_omx"};
  EXPECT_EQ(order_candidates(c, p, EncoderTable::builtin()).order,
            (std::vector<std::string>{"avenc_h264_omx", "vah264enc", "x264enc", "openh264enc"}));
}

TEST(EncoderChoice, EqualRanksSortByName) {
  std::vector<Candidate> c = {{"b", 256, false}, {"a", 256, false}, {"c", 257, false}};
  EXPECT_EQ(order_candidates(c, {}, EncoderTable()).order,
            (std::vector<std::string>{"c", "a", "b"}));
}

TEST(EncoderChoice, SplitNames) {
  EXPECT_EQ(split_names(" a, b,,c "), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(split_names(""), std::vector<std::string>{});
  EXPECT_EQ(split_names(" , "), std::vector<std::string>{});
}
