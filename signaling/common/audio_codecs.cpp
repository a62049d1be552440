#include "common/audio_codecs.h"

#include "common/ascii.h"

namespace portier::audio {

const std::vector<AudioCodec> &audio_codecs() {
  // opus: RFC 7587 §7 writes opus/48000/2 whatever is sent; useinbandfec=1
  // says we decode its FEC (§6.1, as Linphone writes it); stereo=0 and
  // sprop-stereo=0: we want and send mono (§7.1; both are the defaults, said
  // anyway since baresip offers stereo). 96 is what Linphone and baresip use.
  // G722: static 9 with an 8000 clock for 16 kHz audio (RFC 3551 §4.5.2).
  // One codec a row:
  // clang-format off
  static const std::vector<AudioCodec> table{
      {"opus", "OPUS", 48000, 2, 96, "useinbandfec=1;stereo=0;sprop-stereo=0", 48000,
       {"opusenc", "opusdec", "rtpopuspay", "rtpopusdepay"}},
      {"G722", "G722", 8000, 1, 9, "", 16000,
       {"avenc_g722", "avdec_g722", "rtpg722pay", "rtpg722depay"}},
      {"PCMU", "PCMU", 8000, 1, 0, "", 8000,
       {"mulawenc", "mulawdec", "rtppcmupay", "rtppcmudepay"}},
      {"PCMA", "PCMA", 8000, 1, 8, "", 8000,
       {"alawenc", "alawdec", "rtppcmapay", "rtppcmadepay"}},
  };
  // clang-format on
  return table;
}

std::vector<std::string> audio_codec_names() {
  std::vector<std::string> out;
  for (const AudioCodec &c : audio_codecs()) out.emplace_back(c.name);
  return out;
}

std::string default_audio_codec_list() {
  std::string out;
  for (const AudioCodec &c : audio_codecs()) out += (out.empty() ? "" : " ") + std::string(c.name);
  return out;
}

const AudioCodec *find_audio_codec(std::string_view name) {
  for (const AudioCodec &c : audio_codecs())
    if (ascii::iequals(c.name, name)) return &c;
  return nullptr;
}

std::vector<const AudioCodec *> usable_audio_codecs(
    const std::vector<std::string> &names, const std::function<bool(const char *)> &installed,
    std::vector<std::string> *missing) {
  std::vector<const AudioCodec *> out;
  for (const std::string &n : names) {
    const AudioCodec *c = find_audio_codec(n);
    if (!c) continue;  // the config check refuses unknown names
    bool all = true;
    for (const char *e : c->elements) all = all && installed(e);
    if (all)
      out.push_back(c);
    else if (missing)
      missing->push_back(c->name);
  }
  return out;
}

int audio_packet_ms(const AudioCodec &codec, int ptime_ms) {
  if (ascii::iequals(codec.name, "opus"))
    return ptime_ms == 10 || ptime_ms == 20 || ptime_ms == 40 || ptime_ms == 60 ? ptime_ms : 20;
  return ptime_ms;
}

std::string audio_encoder_chain(const AudioCodec &codec, int ptime_ms,
                                const std::string &pay_name) {
  const int ms = audio_packet_ms(codec, ptime_ms);
  const std::string ptime_ns = std::to_string(int64_t(ms) * 1000000);
  // G.711 and G.722 payloaders cut whatever the source gives into ms-long packets.
  const std::string ptime = " min-ptime=" + ptime_ns + " max-ptime=" + ptime_ns;
  const std::string name = std::string(codec.name);
  if (name == "opus")
    // Voice at 32 kbit/s (full band speech: RFC 7587 §3.1.1's range); FEC
    // only goes in when the encoder expects loss, hence a loss percentage.
    return "opusenc audio-type=voice bitrate=32000 frame-size=" + std::to_string(ms) +
           " inband-fec=true packet-loss-percentage=10 ! rtpopuspay name=" + pay_name;
  if (name == "G722") return "avenc_g722 ! rtpg722pay name=" + pay_name + ptime;
  if (name == "PCMA") return "alawenc ! rtppcmapay name=" + pay_name + ptime;
  return "mulawenc ! rtppcmupay name=" + pay_name + ptime;
}

std::string audio_decoder_chain(const AudioCodec &codec) {
  const std::string name = std::string(codec.name);
  // PLC and FEC: a lost packet is rebuilt from the next one's redundancy
  // (RFC 6716 §2.1.7) or concealed.
  if (name == "opus") return "rtpopusdepay ! opusdec use-inband-fec=true plc=true";
  if (name == "G722") return "rtpg722depay ! avdec_g722";
  if (name == "PCMA") return "rtppcmadepay ! alawdec";
  return "rtppcmudepay ! mulawdec";
}

std::string audio_rtp_caps(const AudioCodec &codec, int pt) {
  return "application/x-rtp,media=audio,clock-rate=" + std::to_string(codec.clock_rate) +
         ",encoding-name=" + codec.encoding_name + ",payload=" + std::to_string(pt);
}

std::string audio_codec_label(const AudioCodec &codec) {
  return std::string(codec.name) + "/" + std::to_string(codec.clock_rate);
}

}  // namespace portier::audio
