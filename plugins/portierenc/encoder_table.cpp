#include "encoder_table.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace portier::encpick {
namespace {

constexpr std::string_view kKbps = "${kbps}";
constexpr std::string_view kBps = "${bps}";
constexpr std::string_view kInterval = "${keyframe-interval}";
constexpr std::string_view kSkipKey = "@skip";

// The rows portier ships. Software rows were checked against Debian 12's
// elements (gst-inspect-1.0) and are exercised by the tests; hardware rows
// follow each element's documented properties and could not be run here, so
// a property a given version lacks is skipped by the element, not an error.
std::vector<EncoderRow> builtin_rows() {
  // Settings shared by the V4L2 stateful (memory-to-memory) encoders: driver
  // controls by their v4l2-ctl names. Bitrate mode 1 is CBR.
  const std::string v4l2_controls =
      "controls,video_bitrate=${bps},video_bitrate_mode=1,video_gop_size=${keyframe-interval}";
  return {
      // x264: zerolatency turns off lookahead, B-frames and frame threading,
      // so each frame leaves the encoder as soon as it is coded. ultrafast
      // because a door's CPU is small (see bench/README.md for the cost).
      // No AUD: RTP does not need access unit delimiters.
      {"x264enc",
       {{"tune", "zerolatency"},
        {"speed-preset", "ultrafast"},
        {"bframes", "0"},
        {"b-adapt", "false"},
        {"key-int-max", std::string(kInterval)},
        {"bitrate", std::string(kKbps)},
        {"aud", "false"}},
       {}},
      // openh264 never makes B-frames; its default rate control ("quality")
      // ignores the bitrate, hence rate-control=bitrate. Even so it overshot
      // 2.5 times on hard content (bench/README.md) unless it may skip
      // frames, as WebRTC lets it: fewer frames beat a saturated uplink.
      {"openh264enc",
       {{"usage-type", "camera"},
        {"complexity", "low"},
        {"rate-control", "bitrate"},
        {"enable-frame-skip", "true"},
        {"bitrate", std::string(kBps)},
        {"gop-size", std::string(kInterval)}},
       {}},
      // libvpx in real-time mode: deadline 1 is "realtime", no lag (no
      // alt-ref lookahead), CBR, and error-resilient so a lost packet does
      // not break the following frames' entropy contexts.
      {"vp8enc",
       {{"deadline", "1"},
        {"cpu-used", "8"},
        {"lag-in-frames", "0"},
        {"end-usage", "cbr"},
        {"error-resilient", "default"},
        {"target-bitrate", std::string(kBps)},
        {"keyframe-max-dist", std::string(kInterval)}},
       {}},
      // libav's OpenMAX IL wrapper looks for an OpenMAX core
      // (libOMX_Core.so) only when the caps arrive, so it passes the READY
      // probe and then fails to negotiate; Debian ships no such core. It has
      // rank secondary, above openh264enc, hence the explicit skip.
      {"avenc_h264_omx",
       {},
       "libav's OpenMAX IL wrapper needs an OpenMAX core library, which it only looks for "
       "once caps arrive"},
      // V4L2 stateful encoders (Raspberry Pi, i.MX, Rockchip, Qualcomm...).
      {"v4l2h264enc",
       {{"extra-controls", v4l2_controls + ",h264_i_frame_period=${keyframe-interval}"}},
       {}},
      {"v4l2vp8enc", {{"extra-controls", v4l2_controls}}, {}},
      // VA-API (Intel, AMD), gstreamer-vaapi and the newer va plugin.
      {"vaapih264enc",
       {{"rate-control", "cbr"},
        {"bitrate", std::string(kKbps)},
        {"keyframe-period", std::string(kInterval)},
        {"max-bframes", "0"}},
       {}},
      {"vaapivp8enc",
       {{"rate-control", "cbr"},
        {"bitrate", std::string(kKbps)},
        {"keyframe-period", std::string(kInterval)}},
       {}},
      {"vah264enc",
       {{"rate-control", "cbr"},
        {"bitrate", std::string(kKbps)},
        {"key-int-max", std::string(kInterval)},
        {"b-frames", "0"}},
       {}},
      // NVIDIA NVENC.
      {"nvh264enc",
       {{"preset", "low-latency-hq"},
        {"rc-mode", "cbr"},
        {"zerolatency", "true"},
        {"bframes", "0"},
        {"bitrate", std::string(kKbps)},
        {"gop-size", std::string(kInterval)}},
       {}},
      // gst-omx (older Raspberry Pi firmware, Xilinx Zynq, some TI boards).
      {"omxh264enc",
       {{"control-rate", "constant"},
        {"target-bitrate", std::string(kBps)},
        {"periodicity-idr", std::string(kInterval)},
        {"interval-intraframes", std::string(kInterval)},
        {"b-frames", "0"}},
       {}},
      // Intel Quick Sync.
      {"qsvh264enc",
       {{"rate-control", "cbr"},
        {"bitrate", std::string(kKbps)},
        {"gop-size", std::string(kInterval)},
        {"b-frames", "0"}},
       {}},
  };
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

// '#' starts a comment at the beginning of a line or after whitespace, as in
// portier's config files; a '#' inside a value needs no escaping.
std::string_view strip_comment(std::string_view line) {
  for (size_t i = 0; i < line.size(); ++i)
    if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t'))
      return line.substr(0, i);
  return line;
}

bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// GObject's rule for property names: a letter, then letters, digits, '-' or '_'.
bool is_property_name(std::string_view s) {
  if (s.empty() || !is_alpha(s[0])) return false;
  for (char c : s)
    if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_') return false;
  return true;
}

// GStreamer's rule for feature names is looser than this, but every encoder
// factory in the wild fits it, and it rejects a mistyped "[x264enc" early.
bool is_factory_name(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '_' && c != '.') return false;
  return true;
}

void replace_all(std::string *s, std::string_view what, const std::string &with) {
  for (size_t pos = s->find(what); pos != std::string::npos; pos = s->find(what, pos + with.size()))
    s->replace(pos, what.size(), with);
}

void set_setting(EncoderRow *row, const std::string &property, const std::string &value) {
  auto &settings = row->settings;
  for (auto it = settings.begin(); it != settings.end(); ++it) {
    if (it->property != property) continue;
    if (value.empty())
      settings.erase(it);
    else
      it->value = value;
    return;
  }
  if (!value.empty()) settings.push_back({property, value});
}

}  // namespace

EncoderTable EncoderTable::builtin() {
  EncoderTable t;
  for (EncoderRow &row : builtin_rows()) t.set_row(std::move(row));
  return t;
}

void EncoderTable::set_row(EncoderRow row) {
  std::string key = row.factory;
  rows_[key] = std::move(row);
}

const EncoderRow *EncoderTable::find(std::string_view factory) const {
  auto it = rows_.find(factory);
  return it == rows_.end() ? nullptr : &it->second;
}

std::vector<std::string> EncoderTable::factories() const {
  std::vector<std::string> names;
  for (const auto &[name, row] : rows_) names.push_back(name);
  return names;
}

bool EncoderTable::merge_text(std::string_view text, const std::string &name, std::string *error) {
  // Work on a copy so that a bad file changes nothing.
  auto rows = rows_;
  EncoderRow *row = nullptr;
  int line_no = 0;
  auto fail = [&](const std::string &msg) {
    if (error) *error = name + ":" + std::to_string(line_no) + ": " + msg;
    return false;
  };
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    std::string_view line = trim(strip_comment(text.substr(0, nl)));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty()) continue;
    if (line.front() == '[') {
      if (line.back() != ']') return fail("a group is written [FACTORY]");
      std::string_view factory = trim(line.substr(1, line.size() - 2));
      if (!is_factory_name(factory))
        return fail("\"" + std::string(factory) + "\" is not an element factory name");
      auto [it, added] = rows.try_emplace(std::string(factory));
      if (added) it->second.factory = std::string(factory);
      row = &it->second;
      continue;
    }
    const size_t eq = line.find('=');
    if (eq == std::string_view::npos) return fail("expected PROPERTY = VALUE or [FACTORY]");
    if (!row) return fail("a setting before the first [FACTORY] group");
    const std::string key(trim(line.substr(0, eq)));
    const std::string value(trim(line.substr(eq + 1)));
    if (key == kSkipKey) {
      row->skip_reason = value;
      continue;
    }
    if (!is_property_name(key)) return fail("\"" + key + "\" is not a property name (nor @skip)");
    if (std::string why = check_placeholders(value); !why.empty()) return fail(key + ": " + why);
    set_setting(row, key, value);
  }
  rows_ = std::move(rows);
  return true;
}

bool EncoderTable::merge_file(const std::string &path, std::string *error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (error) *error = path + ": cannot open the encoder table: " + std::strerror(errno);
    return false;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return merge_text(text.str(), path, error);
}

std::string check_placeholders(std::string_view value) {
  for (size_t pos = value.find("${"); pos != std::string_view::npos;
       pos = value.find("${", pos + 2)) {
    const size_t end = value.find('}', pos);
    if (end == std::string_view::npos) return "unterminated placeholder";
    std::string_view p = value.substr(pos, end - pos + 1);
    if (p != kKbps && p != kBps && p != kInterval)
      return "unknown placeholder " + std::string(p) + " (known: ${kbps}, ${bps}, " +
             "${keyframe-interval})";
  }
  return {};
}

std::vector<ResolvedSetting> resolve(const EncoderRow &row, const Targets &targets) {
  const std::string kbps = std::to_string(targets.bitrate_kbps);
  const std::string bps = std::to_string(static_cast<uint64_t>(targets.bitrate_kbps) * 1000);
  const std::string interval = std::to_string(targets.keyframe_interval);
  std::vector<ResolvedSetting> out;
  out.reserve(row.settings.size());
  for (const Setting &s : row.settings) {
    ResolvedSetting r{s.property, s.value, false};
    r.uses_bitrate =
        r.value.find(kKbps) != std::string::npos || r.value.find(kBps) != std::string::npos;
    replace_all(&r.value, kKbps, kbps);
    replace_all(&r.value, kBps, bps);
    replace_all(&r.value, kInterval, interval);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace portier::encpick
