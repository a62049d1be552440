// Does this RTP packet start a keyframe? Looked up in the payload format of the
// codec without depayloading: H.264 (RFC 6184), H.265 (RFC 7798), VP8 (RFC 7741)
// and VP9 (RFC 9628). Audio has no keyframes: every packet stands alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace portier::rtp {

enum class VideoCodec { None, H264, H265, VP8, VP9 };

// From the caps' or SDP's encoding name ("H264", "VP8", ...); None for others.
VideoCodec codec_from_encoding_name(std::string_view name);

// True when the payload begins a keyframe: for H.264/H.265 the first packet of
// a parameter set or of an IDR/IRAP picture, for VP8/VP9 the first packet of
// a frame that does not depend on earlier ones.
bool starts_keyframe(VideoCodec codec, const uint8_t *payload, size_t size);

}  // namespace portier::rtp
