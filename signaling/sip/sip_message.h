// What the programs read from a sofia-sip message: a URL as text, who sent it,
// its body, its digest challenges. Thin helpers over url_t and sip_t, so the
// proxy, door.cpp and monitor.cpp read messages the same way.
#pragma once

#include <sofia-sip/sip.h>
#include <sofia-sip/su_tag.h>
#include <sys/socket.h>
#include <sofia-sip/url.h>

#include <string>
#include <vector>

#include "common/auth/digest_client.h"

// nua's handle and nta's agent, declared rather than included: nua.h and
// nta.h would fix sofia-sip's magic types for the proxy's files, which type
// them themselves.
typedef struct nua_handle_s nua_handle_t;
typedef struct nta_agent_s nta_agent_t;

namespace portier::sipmsg {

// A URL as it goes on the wire ("sip:alice@192.0.2.1:5062;transport=tcp");
// "" for none, or one longer than a SIP URI can reasonably be (511 bytes).
std::string url_string(const url_t *u);

// A URL's host without IPv6 brackets ("" for none): how hosts are compared.
std::string bare_host(const url_t *u);
// The IP address of a socket address as text ("192.0.2.1", "2001:db8::1") in
// buf, which holds at least kAddressTextSize bytes; "?" for another family.
// The proxy asks for it several times per request: IPv4 is written digit by
// digit, as glibc's inet_ntop formats it with sprintf (7% of a REGISTER).
constexpr size_t kAddressTextSize = 64;
const char *address_text(const struct sockaddr *sa, char *buf);

// Answers `request` without a transaction (RFC 3261 §8.2.6, §16.7), through
// nta_msg_mreply; `request` stays the caller's. Its Via, From, To, Call-ID and
// CSeq go into the response as shallow copies, so their text is sent as it
// came: nta_msg_treply copies every header deeply and prints it again, a
// third of what a stateless challenge or 200 to a REGISTER cost. A To without
// a tag gets `to_tag` (when given) in a response above 100 (§8.2.6.2). The
// status line, Content-Length, a Date and the string headers our answers
// carry (WWW-Authenticate, Contact...) go out as text, neither parsed nor
// printed again by sofia; the bytes sent are the same.
int reply_stateless(nta_agent_t *agent, msg_t *request, int status, char const *phrase,
                    char const *to_tag, tag_type_t tag, tag_value_t value, ...);

// "sip:user@host" of a URL, normalized (common/sip_address.h); "" without user or host.
std::string url_aor(const url_t *u);

// Who sent this: the identity our proxy asserted after digest authentication
// (RFC 3325 §9.1; the proxy removes any the client put in itself), else, for a
// request, its From. A response's From is our own: only the assertion counts.
std::string asserted_identity(const sip_t *sip, bool response = false);

// The first Contact's URI as written ("" without one): a dialog's remote
// target, the Request-URI of its in-dialog requests (RFC 3261 §12.1).
std::string contact_uri(const sip_t *sip);

bool body_is(const sip_t *sip, const char *type);
std::string body(const sip_t *sip);

// The Digest challenges of a 401 (WWW-Authenticate) or 407
// (Proxy-Authenticate) we can answer, in header order; *proxy_auth tells which
// header the answer goes in, *stale whether one of them says stale=true,
// *offered (when given) every challenge's scheme and algorithm, usable or not
// ("Digest SHA-512-256, Basic"), for the log when none is.
std::vector<auth::Challenge> challenges(const sip_t *sip, bool *proxy_auth, bool *stale,
                                        std::string *offered = nullptr);

// A handle with no call state to say when it is done (an incoming MESSAGE,
// an INFO outside our call): destroyed once the event that names it is over,
// from the main loop, not from inside nua's callback. Its response goes out
// first, with NUTAG_WITH_THIS (without it, nua answered a request the
// application had taken with 500).
void destroy_when_idle(nua_handle_t *nh);

}  // namespace portier::sipmsg
