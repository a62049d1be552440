#include "keyframe_detect.h"

#include <strings.h>

#include <cstring>

namespace portier::rtp {
namespace {

// H.264 NAL unit types (RFC 6184 §5.4, H.264 table 7-1)
constexpr int kH264Idr = 5, kH264Sps = 7, kH264StapA = 24, kH264FuA = 28;
bool h264_key_type(int type) { return type == kH264Idr || type == kH264Sps; }

bool h264(const uint8_t *p, size_t n) {
  if (n < 1) return false;
  const int type = p[0] & 0x1f;
  if (type == kH264StapA) {  // [size16][NAL]... after the STAP-A header byte
    for (size_t i = 1; i + 2 < n;) {
      const size_t len = static_cast<size_t>(p[i] << 8 | p[i + 1]);
      if (len == 0 || i + 2 + len > n) return false;
      if (h264_key_type(p[i + 2] & 0x1f)) return true;
      i += 2 + len;
    }
    return false;
  }
  if (type == kH264FuA) return n >= 2 && (p[1] & 0x80) && h264_key_type(p[1] & 0x1f);
  return h264_key_type(type);
}

// H.265 NAL unit types (RFC 7798 §1.1.4): IRAP pictures 16-21, VPS 32, SPS 33
constexpr int kH265Ap = 48, kH265Fu = 49;
bool h265_key_type(int type) { return (type >= 16 && type <= 21) || type == 32 || type == 33; }

bool h265(const uint8_t *p, size_t n) {
  if (n < 2) return false;
  const int type = (p[0] >> 1) & 0x3f;
  if (type == kH265Ap) {  // [size16][NAL]... after the 2-byte payload header
    for (size_t i = 2; i + 3 < n;) {
      const size_t len = static_cast<size_t>(p[i] << 8 | p[i + 1]);
      if (len < 2 || i + 2 + len > n) return false;
      if (h265_key_type((p[i + 2] >> 1) & 0x3f)) return true;
      i += 2 + len;
    }
    return false;
  }
  if (type == kH265Fu) return n >= 3 && (p[2] & 0x80) && h265_key_type(p[2] & 0x3f);
  return h265_key_type(type);
}

// VP8 payload descriptor (RFC 7741 §4.2), then the payload header's P bit
// (§4.3): 0 for a keyframe, meaningful only at the start of partition 0.
bool vp8(const uint8_t *p, size_t n) {
  if (n < 1) return false;
  const bool start = p[0] & 0x10;
  const int partition = p[0] & 0x07;
  size_t i = 1;
  if (p[0] & 0x80) {  // X: extension byte I L T K
    if (n < 2) return false;
    const uint8_t x = p[1];
    i = 2;
    if (x & 0x80) {  // I: picture id, 7 or 15 bits
      if (i >= n) return false;
      i += (p[i] & 0x80) ? 2 : 1;
    }
    if (x & 0x40) ++i;  // L: TL0PICIDX
    if (x & 0x30) ++i;  // T or K: TID/Y/KEYIDX
  }
  if (i >= n || !start || partition != 0) return false;
  return (p[i] & 0x01) == 0;
}

// VP9 payload descriptor (RFC 9628 §4.2): B (start of frame) set and P
// (inter-picture predicted) clear.
bool vp9(const uint8_t *p, size_t n) { return n >= 1 && (p[0] & 0x08) && !(p[0] & 0x40); }

}  // namespace

VideoCodec codec_from_encoding_name(std::string_view name) {
  auto is = [&](const char *s) {
    return name.size() == strlen(s) && strncasecmp(name.data(), s, name.size()) == 0;
  };
  if (is("H264")) return VideoCodec::H264;
  if (is("H265")) return VideoCodec::H265;
  if (is("VP8")) return VideoCodec::VP8;
  if (is("VP9")) return VideoCodec::VP9;
  return VideoCodec::None;
}

bool starts_keyframe(VideoCodec codec, const uint8_t *payload, size_t size) {
  switch (codec) {
    case VideoCodec::H264:
      return h264(payload, size);
    case VideoCodec::H265:
      return h265(payload, size);
    case VideoCodec::VP8:
      return vp8(payload, size);
    case VideoCodec::VP9:
      return vp9(payload, size);
    case VideoCodec::None:
      break;
  }
  return false;
}

}  // namespace portier::rtp
