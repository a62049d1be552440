// portier-door's configuration: the account, the call target, media, RTSP
// preview. The actions, access, actuator, button and events sections are
// declared and read by door_config_parts (the door's plain C++ core).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/account_config.h"
#include "common/config.h"
#include "common/global_config.h"
#include "door/door_config_parts.h"
#include "door/rtsp_config.h"

namespace portier::door {

struct MediaSettings {
  std::string address = "127.0.0.1";  // written into our SDP, RTP sockets bound to it
  uint16_t port_min = 30000, port_max = 30999;
  std::string video_codec = "vp8";  // vp8 or h264
  int width = 640, height = 480, framerate = 15;
  int bitrate_kbps = 800;
  int keyframe_interval_s = 2;
  std::string camera = "auto";        // auto, none (test pattern) or a /dev/video path
  bool camera_always_on = false;      // keep camera and encoder running between calls
  std::string audio_source = "auto";  // auto, none (silence) or an ALSA device
  std::string audio_sink = "auto";    // auto, none or an ALSA device
  std::vector<std::string> audio_codecs{"opus", "G722", "PCMU", "PCMA"};
  bool echo_cancel = true;
  // SRTP keyed by SDES (RFC 4568), named as Linphone names them: "none" or
  // "srtp"; mandatory refuses a peer without it (488), else it is best effort.
  std::string media_encryption = "srtp";
  bool media_encryption_mandatory = false;
};

struct DoorSettings : GlobalSettings {
  AccountSettings account;  // [account]

  std::string target;                    // what a button press calls
  int ring_timeout = 45;                 // seconds before an unanswered ring is given up
  int max_duration = 180;                // seconds a call may last
  std::vector<std::string> auto_answer;  // normalized AORs that may watch the camera

  MediaSettings media;
  RtspSettings rtsp;
  DoorParts parts;  // [actions], [access], [actuator], [button], [events]
};

const config::Schema &door_schema();
std::string check_door_config(const config::Config &cfg);
DoorSettings door_settings_from_config(const config::Config &cfg);

}  // namespace portier::door
