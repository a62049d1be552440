// The real-time settings of each video encoder portierenc may pick, keyed by
// element factory name: which properties to set, to what.
//
// A door streams live to phones: every encoder must emit each frame at once
// (no B-frames, no lookahead), hold a bitrate, and put a keyframe at least
// every `keyframe-interval` frames. Each vendor spells that differently
// (x264enc's bitrate is in kbit/s, vp8enc's in bit/s, v4l2 encoders take
// driver controls in one structure), so the table holds, per factory, plain
// "property = value" strings as gst-launch-1.0 would take them, with three
// placeholders for what the application chooses:
//
//   ${kbps}               the bitrate in kbit/s
//   ${bps}                the bitrate in bit/s
//   ${keyframe-interval}  the largest distance between keyframes, in frames
//
// A row can also mark a factory as one to skip, with the reason (an encoder
// that passes the READY probe and still cannot work).
//
// Vendors extend the built-in rows with a table file (PORTIER_ENCODER_TABLE or
// portierenc's encoder-table property), read by merge_text():
//
//   # '#' starts a comment at the beginning of a line or after whitespace
//   [acmeh264enc]                 # one group per element factory
//   target-bitrate = ${bps}       # property = value, as gst-launch takes it
//   gop-length = ${keyframe-interval}
//   low-latency = true
//   [x264enc]
//   speed-preset = veryfast       # replaces the built-in value
//   aud =                         # empty: drop the built-in setting
//   [avenc_h264_omx]
//   @skip =                       # empty: try it after all
//
// No GStreamer here: the element applies the strings through the encoders'
// own property specs, and unit tests read the table directly.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace portier::encpick {

struct Setting {
  std::string property;
  std::string value;  // may hold placeholders
};

struct EncoderRow {
  std::string factory;
  std::vector<Setting> settings;  // applied in this order
  std::string skip_reason;        // not empty: never picked unless named in try-first
};

// What the application asked for.
struct Targets {
  uint32_t bitrate_kbps = 1000;
  uint32_t keyframe_interval = 60;  // frames
};

// One setting ready for the encoder.
struct ResolvedSetting {
  std::string property;
  std::string value;          // placeholders filled in
  bool uses_bitrate = false;  // set again when the bitrate changes while playing
};

class EncoderTable {
 public:
  // The rows portier ships: the software encoders of Debian's GStreamer and the
  // common hardware ones (V4L2 stateful, VA-API, NVENC, OpenMAX, Intel QSV).
  static EncoderTable builtin();

  // Adds or replaces the row of `row.factory`.
  void set_row(EncoderRow row);
  // Nullptr when the factory has no row (it is used with its defaults).
  const EncoderRow *find(std::string_view factory) const;
  std::vector<std::string> factories() const;

  // Merges a table file's text over the rows: a key replaces the setting of
  // the same property (or adds it at the end), an empty value removes it;
  // `@skip = REASON` marks the factory as one to skip, `@skip =` clears that.
  // On error returns false, leaves the table as it was, and sets *error to
  // "NAME:LINE: message".
  bool merge_text(std::string_view text, const std::string &name, std::string *error);
  // The same for a file; "PATH: cannot open ..." when it cannot be read.
  bool merge_file(const std::string &path, std::string *error);

 private:
  std::map<std::string, EncoderRow, std::less<>> rows_;
};

// The settings of `row` for `targets`, in the row's order, placeholders
// filled in.
std::vector<ResolvedSetting> resolve(const EncoderRow &row, const Targets &targets);

// Empty when every "${...}" in `value` is a known placeholder, else a message.
std::string check_placeholders(std::string_view value);

}  // namespace portier::encpick
