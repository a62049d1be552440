#include "door/door_config.h"

#include "common/audio_codecs.h"
#include "common/sip_address.h"

namespace portier::door {
namespace {

config::Schema make_schema() {
  config::Schema s("portier-door");
  add_global_schema(s, "/run/portier/door.sock", "ring, hangup, status, events, help");
  add_account_schema(s, {"sip:door@home.example", "the door's SIP address",
                         "SIP URI the door listens on (* = any port)",
                         "besides the proxy, hosts (host or host:port) whose calls and messages "
                         "the door takes; requests from anywhere else get 403, since their "
                         "P-Asserted-Identity cannot be believed (RFC 3325)"});
  s.str("call", "target", "sip:home@home.example",
        "what the button calls: the home's group address rings every device")
      .integer("call", "ring-timeout", 45, 5, 600, "seconds before an unanswered ring ends")
      .integer("call", "max-duration", 180, 10, 7200, "seconds a call may last at most")
      .list("call", "auto-answer", "",
            "addresses whose calls the door answers at once with its camera (others get 403)");
  s.str("media", "address", "127.0.0.1", "IP address of the door's RTP sockets, written in SDP")
      .str("media", "port-range", "30000-30999", "UDP ports for RTP/RTCP, MIN-MAX")
      .str("media", "video-codec", "vp8", "the one video codec the door offers", {"vp8", "h264"})
      .integer("media", "width", 640, 160, 3840, "video width")
      .integer("media", "height", 480, 120, 2160, "video height")
      .integer("media", "framerate", 15, 1, 60, "frames per second")
      .integer("media", "bitrate", 800, 64, 20000, "video bitrate, kbit/s")
      .integer("media", "keyframe-interval", 2, 1, 60,
               "seconds between keyframes (devices also ask for one when they join)")
      .str("media", "camera", "auto",
           "auto (first V4L2 camera, else a test pattern), none (test pattern) or /dev/videoN")
      .boolean("media", "camera-always-on", false,
               "keep the camera and encoder running between calls: a press then costs only a "
               "keyframe (and snapshots and RTSP start at once), at the price of the encoder's CPU")
      .str("media", "audio-source", "auto", "auto (the default microphone), none (silence)")
      .str("media", "audio-sink", "auto", "auto (the default speaker), none (discarded)")
      .list("media", "audio-codecs", audio::default_audio_codec_list(),
            "audio codecs offered, best first (one whose GStreamer elements are not installed is "
            "left out; an offer is answered in the offerer's order)",
            audio::audio_codec_names())
      .boolean("media", "echo-cancel", true,
               "cancel the speaker's echo in the microphone (portieraec, when built)")
      .str("media", "media-encryption", "srtp",
           "srtp: RTP and RTCP encrypted and authenticated (SRTP, keys in the SDP: SDES, "
           "RFC 4568), or none",
           {"none", "srtp"})
      .boolean("media", "media-encryption-mandatory", false,
               "refuse calls without SRTP (488); off: SRTP when the peer has it, else plain RTP");
  add_rtsp_schema(s);
  add_door_parts_schema(s);
  return s;
}

}  // namespace

const config::Schema &door_schema() {
  static const config::Schema schema = make_schema();
  return schema;
}

std::string check_door_config(const config::Config &cfg) {
  if (std::string problem = check_account_config(cfg); !problem.empty()) return problem;
  if (parse_aor(cfg.get_string("call", "target")).empty())
    return cfg.where("call", "target") + "'" + cfg.get_string("call", "target") +
           "' is not a sip:user@domain address";
  for (const auto &a : cfg.get_list("call", "auto-answer"))
    if (parse_aor(a).empty())
      return cfg.where("call", "auto-answer") + "'" + a + "' is not a sip:user@domain address";
  uint16_t lo, hi;
  if (!parse_port_range(cfg.get_string("media", "port-range"), &lo, &hi))
    return cfg.where("media", "port-range") + "must be MIN-MAX with 1024 <= MIN < MAX <= 65535";
  if (!is_ip_literal(cfg.get_string("media", "address")))
    return cfg.where("media", "address") + "'" + cfg.get_string("media", "address") +
           "' is not an IPv4 or IPv6 address";
  const std::string &cam = cfg.get_string("media", "camera");
  if (cam != "auto" && cam != "none" && cam.compare(0, 5, "/dev/") != 0)
    return cfg.where("media", "camera") + "must be auto, none or a /dev/ path";
  RtspSettings rtsp;
  if (std::string problem = parse_rtsp_settings(cfg, &rtsp); !problem.empty()) return problem;
  DoorParts parts;
  return parse_door_parts(cfg, &parts);
}

DoorSettings door_settings_from_config(const config::Config &cfg) {
  DoorSettings d;
  read_global_settings(cfg, &d);
  d.account = account_settings_from_config(cfg);
  d.target = parse_aor(cfg.get_string("call", "target"));
  d.ring_timeout = static_cast<int>(cfg.get_int("call", "ring-timeout"));
  d.max_duration = static_cast<int>(cfg.get_int("call", "max-duration"));
  for (const auto &a : cfg.get_list("call", "auto-answer")) d.auto_answer.push_back(parse_aor(a));
  MediaSettings &m = d.media;
  m.address = cfg.get_string("media", "address");
  parse_port_range(cfg.get_string("media", "port-range"), &m.port_min, &m.port_max);
  m.video_codec = cfg.get_string("media", "video-codec");
  m.width = static_cast<int>(cfg.get_int("media", "width"));
  m.height = static_cast<int>(cfg.get_int("media", "height"));
  m.framerate = static_cast<int>(cfg.get_int("media", "framerate"));
  m.bitrate_kbps = static_cast<int>(cfg.get_int("media", "bitrate"));
  m.keyframe_interval_s = static_cast<int>(cfg.get_int("media", "keyframe-interval"));
  m.camera = cfg.get_string("media", "camera");
  m.camera_always_on = cfg.get_bool("media", "camera-always-on");
  m.audio_source = cfg.get_string("media", "audio-source");
  m.audio_sink = cfg.get_string("media", "audio-sink");
  m.audio_codecs = cfg.get_list("media", "audio-codecs");
  m.echo_cancel = cfg.get_bool("media", "echo-cancel");
  m.media_encryption = cfg.get_string("media", "media-encryption");
  m.media_encryption_mandatory = cfg.get_bool("media", "media-encryption-mandatory");
  parse_rtsp_settings(cfg, &d.rtsp);  // checked by check_door_config
  parse_door_parts(cfg, &d.parts);  // checked by check_door_config
  return d;
}

}  // namespace portier::door
