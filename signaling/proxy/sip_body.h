// The SDP body of a message the proxy forwards: read it, put another in its
// place, or take it out. Used by the router (a retransmitted 2xx goes up with
// the body the first one had) and by the relay's observer (which points the
// SDP at the relay).
#pragma once

#include <sofia-sip/msg.h>
#include <sofia-sip/sip.h>

#include <optional>
#include <string>
#include <string_view>

namespace portier::proxy {

// The application/sdp body of a message, if it has one.
std::optional<std::string_view> sdp_body(const sip_t *sip);
// Puts `sdp` in place of the message's body, with a matching Content-Length.
void replace_sdp(msg_t *msg, std::string_view sdp);
// Takes the body out (a provisional response whose SDP the relay cannot use:
// the caller hears the device ring, without its media address).
void remove_body(msg_t *msg);

}  // namespace portier::proxy
