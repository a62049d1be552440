#include "monitor/monitor_config.h"

#include <strings.h>

#include <cctype>
#include <cstring>

#include "common/ascii.h"
#include "common/audio_codecs.h"
#include "common/sip_address.h"

namespace portier::monitor {
namespace {

config::Schema make_schema() {
  config::Schema s("portier-monitor");
  add_global_schema(s, "/run/portier/monitor.sock",
                    "status, answer, hangup, action, call, snapshot, ... (help lists them)");
  s.str("global", "events-file", "",
        "file the milestones are appended to, one JSON line each (empty: log only)");
  add_account_schema(s, {"sip:monitor1@home.example", "the monitor's SIP address",
                         "SIP URI the monitor listens on (* = any port; ;transport=tcp for TCP)",
                         "besides the proxy, hosts (host or host:port) whose calls the monitor "
                         "takes; calls from anywhere else get 403 (RFC 3325: only the proxy "
                         "vouches for a caller)"});
  // RFC 5626 §4.1 and RFC 8599 §4.1.1, named as the other [account] keys are
  // (Linphone's: [misc] uuid, [proxy_N] push_parameters).
  s.str("account", "instance-id", "",
        "this monitor's instance id, urn:uuid:<UUID> (RFC 5626 +sip.instance in the REGISTER's "
        "Contact): the proxy knows the device again at a new address and replaces its stale "
        "branch. Keep it for the device's lifetime (uuidgen makes one); empty: none")
      .str("account", "push-provider", "",
           "RFC 8599 pn-provider of a push-woken device (fcm, apns, apns.dev, or a name the "
           "proxy's webhook serves); empty: no push parameters")
      .str("account", "push-prid", "",
           "RFC 8599 pn-prid: the device's push token (never logged); with push-provider")
      .str("account", "push-param", "",
           "RFC 8599 pn-param (fcm: the project id; apns: TEAM.BUNDLE.voip); empty: none");
  s.str("media", "address", "127.0.0.1", "IP address of the monitor's RTP sockets, written in SDP")
      .str("media", "port-range", "32000-32099", "UDP ports for RTP/RTCP, MIN-MAX (2 pairs a call)")
      .list("media", "video-codecs", "VP8 H264", "video codecs accepted, in order of preference",
            {"VP8", "H264"})
      .str("media", "video-decoder", "auto",
           "auto (the highest-ranked decoder installed, hardware first) or a GStreamer element")
      .integer("media", "jitter-buffer", 50, 0, 1000, "milliseconds of jitter buffer (latency)")
      .str("media", "keyframe-request", "both",
           "how to ask the door for a keyframe when its picture is late: RTCP PLI, SIP INFO "
           "picture_fast_update (RFC 5168), both or none",
           {"rtcp", "info", "both", "none"})
      .integer("media", "keyframe-wait", 300, 50, 10000,
               "milliseconds after the first video packet without a decoded picture before a "
               "keyframe is asked for")
      .boolean("media", "audio", true, "two-way audio (off: the call has video only)")
      .list("media", "audio-codecs", audio::default_audio_codec_list(),
            "audio codecs offered and accepted, best first (one whose GStreamer elements are not "
            "installed is left out; an offer is answered in the offerer's order)",
            audio::audio_codec_names())
      .str("media", "microphone", "auto",
           "auto (the default microphone), test (a quiet tone), none (silence) or an ALSA device")
      .str("media", "speaker", "auto",
           "auto (the default speaker), none (discarded) or an ALSA "
           "device")
      .integer("media", "ptime", 20, 10, 60, "milliseconds of audio per RTP packet")
      .str("media", "media-encryption", "srtp",
           "srtp: RTP and RTCP encrypted and authenticated (SRTP, keys in the SDP: SDES, "
           "RFC 4568), or none",
           {"none", "srtp"})
      .boolean("media", "media-encryption-mandatory", false,
               "refuse calls without SRTP (488); off: SRTP when the peer has it, else plain RTP");
  s.str("actions", "method", "dtmf",
        "how codes reach the door: dtmf (RFC 4733 events in the audio), info (SIP INFO "
        "application/dtmf-relay) or message (SIP MESSAGE with the code)",
        {"dtmf", "info", "message"})
      .str("actions", "open-door", "", "the door's code for opening (empty: no such button)")
      .str("actions", "light", "", "the door's code for the light (empty: no such button)");
  s.any_key("doors", config::Type::String, "front = sip:door@home.example",
            "a door the monitor can call to watch its camera: NAME = its SIP address");
  s.str("ui", "mode", "headless",
        "headless (driven by the control socket) or window (a GTK window as well: video, "
        "buttons, doors; without a display it runs headless)",
        {"headless", "window"});
  return s;
}

}  // namespace

const char *action_method_name(ActionMethod m) {
  switch (m) {
    case ActionMethod::Dtmf:
      return "dtmf";
    case ActionMethod::Info:
      return "info";
    case ActionMethod::Message:
      return "message";
  }
  return "?";
}

bool is_sendable_code(const std::string &code) {
  if (code.empty() || code.size() > 32) return false;
  for (char c : code) {
    const bool ok = (c >= '0' && c <= '9') || c == '*' || c == '#' || (c >= 'A' && c <= 'D');
    if (!ok) return false;
  }
  return true;
}

bool is_instance_urn(const std::string &id) {
  static const char kPrefix[] = "urn:uuid:";
  const size_t n = sizeof kPrefix - 1;
  if (id.size() != n + 36 || strncasecmp(id.c_str(), kPrefix, n) != 0) return false;
  for (size_t i = 0; i < 36; ++i) {
    const char c = id[n + i];
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::string instance_feature(const std::string &id) {
  return id.empty() ? "" : "+sip.instance=\"<" + id + ">\"";
}

namespace {

// RFC 3261 §25.1: paramchar = param-unreserved / unreserved / escaped.
std::string escape_param(const std::string &v) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) || std::strchr("-_.!~*'()[]/:&+$", c))
      out += static_cast<char>(c);
    else
      out += '%', out += kHex[c >> 4], out += kHex[c & 15];
  }
  return out;
}

// What the proxy takes (chain::split_push_params): printable ASCII without
// space or double quote, bounded.
bool push_value_ok(const std::string &v, size_t max) {
  if (v.size() > max) return false;
  for (unsigned char c : v)
    if (c <= ' ' || c >= 0x7f || c == '"') return false;
  return true;
}

bool push_provider_ok(const std::string &v) {
  if (v.empty() || v.size() > 32) return false;
  for (unsigned char c : v)
    if (!std::isalnum(c) && c != '.' && c != '-' && c != '_') return false;
  return true;
}

}  // namespace

std::string push_contact_params(const std::string &provider, const std::string &prid,
                                const std::string &param) {
  if (provider.empty()) return "";
  std::string p = "pn-provider=" + escape_param(provider) + ";pn-prid=" + escape_param(prid);
  if (!param.empty()) p += ";pn-param=" + escape_param(param);
  return p;
}

const config::Schema &monitor_schema() {
  static const config::Schema schema = make_schema();
  return schema;
}

std::string check_monitor_config(const config::Config &cfg) {
  if (std::string problem = check_account_config(cfg); !problem.empty()) return problem;
  const std::string &instance = cfg.get_string("account", "instance-id");
  if (!instance.empty() && !is_instance_urn(instance))
    return cfg.where("account", "instance-id") + "'" + instance +
           "' is not urn:uuid: and a UUID (RFC 5626 §4.1), e.g. "
           "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
  const std::string &provider = cfg.get_string("account", "push-provider");
  const std::string &prid = cfg.get_string("account", "push-prid");
  const std::string &param = cfg.get_string("account", "push-param");
  if (!provider.empty() && !push_provider_ok(provider))
    return cfg.where("account", "push-provider") + "'" + provider +
           "' is not a provider name (1 to 32 letters, digits, '.', '-', '_')";
  if (provider.empty() && (!prid.empty() || !param.empty()))
    return cfg.where("account", prid.empty() ? "push-param" : "push-prid") +
           "needs push-provider (RFC 8599: pn-provider names the service)";
  // The token is a secret: the messages name the key, never the value.
  if (!provider.empty() && prid.empty())
    return cfg.where("account", "push-provider") + "needs push-prid, the device's token";
  if (!push_value_ok(prid, 1024))
    return cfg.where("account", "push-prid") +
           "a token is 1 to 1024 printable ASCII characters without space or '\"'";
  if (!push_value_ok(param, 256))
    return cfg.where("account", "push-param") + "'" + param +
           "' is more than 256 characters, or has a space, '\"' or a non-ASCII one";
  uint16_t lo, hi;
  if (!parse_port_range(cfg.get_string("media", "port-range"), &lo, &hi))
    return cfg.where("media", "port-range") + "must be MIN-MAX with 1024 <= MIN < MAX <= 65535";
  if (hi - lo + 1 < 4)
    return cfg.where("media", "port-range") + "needs 4 ports at least (audio and video pairs)";
  if (!is_ip_literal(cfg.get_string("media", "address")))
    return cfg.where("media", "address") + "'" + cfg.get_string("media", "address") +
           "' is not an IPv4 or IPv6 address";
  if (cfg.get_list("media", "video-codecs").empty())
    return cfg.where("media", "video-codecs") + "at least one codec is needed";
  if (cfg.get_bool("media", "audio") && cfg.get_list("media", "audio-codecs").empty())
    return cfg.where("media", "audio-codecs") + "at least one codec is needed with audio on";
  for (const char *key : {"open-door", "light"}) {
    const std::string &code = cfg.get_string("actions", key);
    // The code itself is a secret: the message names the key, never the value.
    if (!code.empty() && !is_sendable_code(code))
      return cfg.where("actions", key) + "a code is 1 to 32 of 0-9 * # A-D";
  }
  for (const std::string &name : cfg.names_in("doors")) {
    const std::string &uri = cfg.get_string("doors", name);
    if (parse_aor(uri).empty())
      return cfg.where("doors", name) + "'" + uri + "' is not a sip:user@domain address";
  }
  return "";
}

MonitorSettings monitor_settings_from_config(const config::Config &cfg) {
  MonitorSettings s;
  read_global_settings(cfg, &s);
  s.events_file = cfg.get_string("global", "events-file");
  s.account = account_settings_from_config(cfg);
  s.instance_id = cfg.get_string("account", "instance-id");
  s.push_provider = cfg.get_string("account", "push-provider");
  s.push_param = cfg.get_string("account", "push-param");
  s.account.contact_features = instance_feature(s.instance_id);
  s.account.contact_params =
      push_contact_params(s.push_provider, cfg.get_string("account", "push-prid"), s.push_param);
  MonitorMediaSettings &m = s.media;
  m.address = cfg.get_string("media", "address");
  parse_port_range(cfg.get_string("media", "port-range"), &m.port_min, &m.port_max);
  m.video_codecs = cfg.get_list("media", "video-codecs");
  m.video_decoder = cfg.get_string("media", "video-decoder");
  m.jitter_ms = static_cast<int>(cfg.get_int("media", "jitter-buffer"));
  const std::string &kf = cfg.get_string("media", "keyframe-request");
  m.keyframe.rtcp = kf == "rtcp" || kf == "both";
  m.keyframe.info = kf == "info" || kf == "both";
  m.keyframe_wait_ms = static_cast<int>(cfg.get_int("media", "keyframe-wait"));
  m.audio = cfg.get_bool("media", "audio");
  m.audio_codecs = cfg.get_list("media", "audio-codecs");
  m.microphone = cfg.get_string("media", "microphone");
  m.speaker = cfg.get_string("media", "speaker");
  m.ptime_ms = static_cast<int>(cfg.get_int("media", "ptime"));
  m.media_encryption = cfg.get_string("media", "media-encryption");
  m.media_encryption_mandatory = cfg.get_bool("media", "media-encryption-mandatory");
  const std::string &method = cfg.get_string("actions", "method");
  s.action_method = method == "info"      ? ActionMethod::Info
                    : method == "message" ? ActionMethod::Message
                                          : ActionMethod::Dtmf;
  s.open_door_code = cfg.get_string("actions", "open-door");
  s.light_code = cfg.get_string("actions", "light");
  for (const std::string &name : cfg.names_in("doors"))
    s.doors.push_back({name, parse_aor(cfg.get_string("doors", name))});
  s.window = cfg.get_string("ui", "mode") == "window";
  return s;
}

}  // namespace portier::monitor
