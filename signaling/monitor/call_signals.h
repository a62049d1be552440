// The monitor's call vocabulary, in plain C++: its call states, why a call
// ended, and the SIP bodies it sends and takes (dtmf-relay, RFC 5168 keyframe
// requests). The nua side (monitor.cpp) only moves these over the wire.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "sip/call_leg.h"

namespace portier::monitor {

// The call's states are the call leg's (common/call_leg.h): idle, ringing
// (an INVITE came in, 180 sent), early (our recvonly answer in a 183: the
// door's video is shown, or the door's 183 to our call), answered, calling
// (our INVITE to a door), ended (see the reason).
using sip::call_state_name;
using sip::CallState;
using sip::in_call;

// Why a ringing call stopped when the caller's side sent CANCEL: with
// "Reason: SIP;cause=200" (RFC 3326; RFC 3261 §16.7 step 10: a forking proxy
// cancels the other branches once one answered) another device answered,
// otherwise the caller gave up. `protocol` and `params` are the Reason
// header's ("SIP", {"cause=200", "text=\"Call completed elsewhere\""}); the
// CANCEL may carry several Reason headers: each is passed in turn.
inline constexpr const char *kAnsweredElsewhere = "answered elsewhere";
inline constexpr const char *kMissed = "missed";
inline constexpr const char *kDeclined = "declined";
bool reason_is_answered_elsewhere(std::string_view protocol,
                                  const std::vector<std::string_view> &params);

// The body of a SIP INFO application/dtmf-relay for one key, as the door
// (signaling/door/dtmf.h parse_dtmf_relay) and most PBXs read it.
std::string dtmf_relay_body(char key, int duration_ms);

// RFC 5168 §3: the XML body asking the sender for a full picture now, sent as
// SIP INFO application/media_control+xml.
std::string picture_fast_update_body();

// What the monitor answers to an INFO inside a call, by its Content-Type (RFC
// 6086 §4.2.2: legacy INFO usage without Info-Package): the two bodies it
// knows get 200, an INFO without a body 200 (a keep-alive), anything else
// 415 Unsupported Media Type with an Accept header listing the two.
struct InfoVerdict {
  int status = 200;
  const char *phrase = "OK";
};
InfoVerdict info_verdict(std::string_view content_type, bool has_body);
inline constexpr const char *kInfoAccept = "application/dtmf-relay, application/media_control+xml";

}  // namespace portier::monitor
