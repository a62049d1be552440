// Whether the digest "uri" of a request's credentials names its Request-URI.
// RFC 2617 §3.2.2.5: the server checks that the digest-uri names the same
// resource as the Request-URI, else a response computed for another request
// (another target) would be accepted. Compared as SIP URIs (RFC 3261 §19.1.4),
// not as bytes: clients may spell the host in another case or escape the user.
#pragma once

#include <string_view>

namespace portier::auth {

// a and b as SIP or SIPS URIs, equal under RFC 3261 §19.1.4. Anything that does
// not parse as a sip:/sips: URI is compared byte for byte.
bool same_sip_uri(std::string_view a, std::string_view b);

}  // namespace portier::auth
