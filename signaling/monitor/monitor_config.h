// portier-monitor's configuration: the account (the same keys as the door's),
// media, the door actions, the doors it can call, and its face. Plain C++, so
// the unit tests check the schema, the cross-key rules and the settings.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/account_config.h"
#include "common/config.h"
#include "common/global_config.h"

namespace portier::monitor {

// How an action's code reaches the door (signaling/door/door.cpp accepts all three).
enum class ActionMethod {
  Dtmf,     // RFC 4733 telephone-events in the call's audio RTP
  Info,     // in-dialog SIP INFO application/dtmf-relay, one per key
  Message,  // SIP MESSAGE text/plain with the whole code, to the door's address
};
const char *action_method_name(ActionMethod m);

// Where a keyframe request goes when the door's picture is late.
struct KeyframeRequest {
  bool rtcp = true;  // RTCP PLI (RFC 4585 §6.3.1) through rtpbin
  bool info = true;  // SIP INFO picture_fast_update (RFC 5168)
};

struct MonitorMediaSettings {
  std::string address = "127.0.0.1";  // written into our SDP; RTP sockets bound to it
  uint16_t port_min = 32000, port_max = 32099;
  std::vector<std::string> video_codecs{"VP8", "H264"};  // accepted, in preference order
  std::string video_decoder = "auto";                    // auto (highest rank) or an element name
  int jitter_ms = 50;                                    // rtpbin latency
  KeyframeRequest keyframe;
  int keyframe_wait_ms = 300;  // after the first video RTP, before asking for a keyframe
  bool audio = true;
  std::vector<std::string> audio_codecs{"opus", "G722", "PCMU", "PCMA"};
  std::string microphone = "auto";  // auto, test (a tone), none (silence), or an ALSA device
  std::string speaker = "auto";     // auto, none (discarded), or an ALSA device
  int ptime_ms = 20;
  // SRTP keyed by SDES (RFC 4568), named as Linphone names them: "none" or
  // "srtp"; mandatory refuses a peer without it (488), else it is best effort.
  std::string media_encryption = "srtp";
  bool media_encryption_mandatory = false;
};

struct MonitorSettings : GlobalSettings {
  std::string events_file;

  AccountSettings account;  // [account]
  // [account] instance-id, push-provider, push-param, for the log and status
  // (in account.contact_features / contact_params for the REGISTER); the
  // push token is only in account.contact_params.
  std::string instance_id, push_provider, push_param;

  MonitorMediaSettings media;

  ActionMethod action_method = ActionMethod::Dtmf;
  std::string open_door_code;  // digits, * # A-D; empty: no such action
  std::string light_code;

  struct Door {
    std::string name;  // as typed: `call front`
    std::string aor;   // normalized
  };
  std::vector<Door> doors;  // in name order

  bool window = false;  // [ui] mode = window
};

const config::Schema &monitor_schema();
std::string check_monitor_config(const config::Config &cfg);
MonitorSettings monitor_settings_from_config(const config::Config &cfg);

// A code the monitor can send: 1 to 32 of 0-9 * # A-D (RFC 4733 events 0-15).
bool is_sendable_code(const std::string &code);

// [account] instance-id: urn:uuid: and an RFC 4122 UUID (8-4-4-4-12 hex digits).
bool is_instance_urn(const std::string &id);

// The REGISTER Contact's header parameter for an instance id (RFC 5626 §4.1:
// +sip.instance="<urn:uuid:...>"); "" without one.
std::string instance_feature(const std::string &id);

// The REGISTER Contact's URI parameters for a push-woken device (RFC 8599
// §4.1: pn-provider, pn-prid, pn-param), each value %HH-escaped where RFC 3261
// §25.1 paramchar does not allow it; "" without a provider. The token is in
// it: never log the result.
std::string push_contact_params(const std::string &provider, const std::string &prid,
                                const std::string &param);

}  // namespace portier::monitor
