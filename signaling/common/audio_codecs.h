// The audio codecs of the door and the monitor, in one table: the name in
// the config and in SDP, the RTP clock, what we write in a=rtpmap/a=fmtp, the
// rate the microphone, the speaker and the echo canceller run at, and the
// GStreamer elements that encode and decode it.
//
// Plain C++ (the configs, which the unit tests link, check names against it;
// the call pipelines build their chains from it). Whether a codec's elements
// are installed is asked through a predicate, so a door built without
// gst-libav just does not offer G.722.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace portier::audio {

struct AudioCodec {
  const char *name;           // config and a=rtpmap spelling: "opus", "G722", "PCMU", "PCMA"
  const char *encoding_name;  // GStreamer's RTP caps spelling: "OPUS", "G722", ...
  uint32_t clock_rate;        // the RTP clock (G.722's is 8000 though it samples at 16 kHz)
  int channels;               // written in a=rtpmap (opus: always 2, RFC 7587 §7)
  int pt;                     // our payload type: static (RFC 3551 §6) or our dynamic choice
  const char *fmtp;           // our a=fmtp ("" for none)
  int sample_rate;            // the PCM rate of the codec: microphone, speaker, AEC
  std::vector<const char *> elements;  // GStreamer factories both directions need
};

// Every codec we know, best first: the default order of [media] audio-codecs.
const std::vector<AudioCodec> &audio_codecs();
// The names, for the config schema's choices.
std::vector<std::string> audio_codec_names();
// The default [media] audio-codecs value ("opus G722 PCMU PCMA").
std::string default_audio_codec_list();
// By name (case-insensitive, as SDP encoding names are: RFC 4855 §3); nullptr if unknown.
const AudioCodec *find_audio_codec(std::string_view name);

// The codecs of `names` (a config list) whose elements `installed` finds, in
// that order. `*missing` gets the names left out.
std::vector<const AudioCodec *> usable_audio_codecs(
    const std::vector<std::string> &names, const std::function<bool(const char *)> &installed,
    std::vector<std::string> *missing = nullptr);

// The RTP duration of a packet of `ptime_ms` milliseconds, in timestamp units
// of `clock_rate` (RFC 4733 §2.5.1.3: event durations count in the audio's clock).
inline uint32_t rtp_units(uint32_t clock_rate, int ptime_ms) {
  return clock_rate / 1000 * static_cast<uint32_t>(ptime_ms);
}

// Packet duration for the codec: the configured ptime where the codec can do
// it, else 20 ms (opus frames are 2.5, 5, 10, 20, 40 or 60 ms: RFC 6716 §2.1.4).
int audio_packet_ms(const AudioCodec &codec, int ptime_ms);

// gst-launch fragments, from raw mono S16 audio at sample_rate to the
// payloader (without pt=, which the caller sets) and from the depayloader to
// raw audio. The payloader is named `pay_name`.
std::string audio_encoder_chain(const AudioCodec &codec, int ptime_ms, const std::string &pay_name);
std::string audio_decoder_chain(const AudioCodec &codec);
// The caps a udpsrc of the codec's RTP carries (payload `pt`).
std::string audio_rtp_caps(const AudioCodec &codec, int pt);
// "opus/48000", for status and events.
std::string audio_codec_label(const AudioCodec &codec);

}  // namespace portier::audio
