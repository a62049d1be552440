// The providers' wire formats as plain functions: the URL, headers and JSON
// of each push, the OAuth2 and APNs JWT claims, and what each provider's
// answer means for the binding. No I/O: the clients (push_providers.h) send
// what these build, and the unit tests check them against the documents.
//
// Documents:
//   FCM HTTP v1: "Send a message using FCM HTTP v1 API" and the REST reference
//     of projects.messages (Message, AndroidConfig) and ErrorCode;
//   Google OAuth2 for service accounts: "Using OAuth 2.0 for Server to Server
//     Applications" (the JWT assertion, RFC 7523), RFC 6749 §5.1 (the answer);
//   APNs: "Sending notification requests to APNs", "Establishing a token-based
//     connection to APNs", "Handling notification responses from APNs";
//   RFC 8599 §10 (pn-param and pn-prid of apns), §11 (fcm), and Flexisip's
//     reading and extension of both
//     (src/pushnotification/rfc8599-push-params.cc).
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <vector>

#include "push/push_request.h"

namespace portier::push {

// Which client serves a pn-provider.
enum class Service { Fcm, Apns, ApnsSandbox, Webhook };
Service service_for(const std::string &provider);

// RFC 8599 §10: pn-param = Team ID "." topic, the topic being the bundle ID
// "." a service ("voip" for a VoIP app); pn-prid = the device token. Flexisip
// and Linphone's apps also write the services "remote" and "voip&remote"
// (no service: remote), with pn-prid "TOKEN:voip&TOKEN:remote" when the app
// has both kinds. A token is hex (it goes into the request's path).
struct ApnsTarget {
  std::string bundle;
  std::string voip_token;    // PushKit: apns-push-type voip, topic BUNDLE.voip
  std::string remote_token;  // user notifications: apns-push-type alert, topic BUNDLE
};
bool parse_apns_target(const std::string &param, const std::string &prid, ApnsTarget *out,
                       std::string *error);

// The RFC 8599 triple a legacy Linphone contact (pn-type, app-id, pn-tok)
// stands for, as Flexisip maps it: pn-type "apple" is APNs, its app-id's last
// label says the environment (".dev": the sandbox, pn-provider apns.dev;
// ".prod" or anything else: production) and the labels before it are the
// bundle (the team id is not in a legacy contact and is not needed: the topic
// is the bundle); "firebase" or "android" is FCM with app-id as the project.
struct PushParams {
  std::string provider, param, prid;
};
PushParams from_legacy_params(const std::string &pn_type, const std::string &app_id,
                              const std::string &pn_tok);

// Seconds from now to the deadline, at least 1.
int seconds_left(const PushRequest &request);

// ---- FCM HTTP v1
std::string fcm_send_url(const std::string &base_url, const std::string &project_id);
// {"message":{"token":..,"android":{"priority":"HIGH","ttl":"Ns"},"data":{..}}}:
// a data message (the app decides what to show), high priority so a dozing
// device wakes, kept no longer than the call rings.
std::string fcm_message_body(const PushRequest &request, int ttl_seconds);
// The service-account assertion (Google's "server to server" guide, RFC 7523
// §3): iss = client_email, scope, aud = token_uri, iat, exp = iat + 3600.
std::string oauth_assertion_header();
std::string oauth_assertion_claims(const std::string &client_email, const std::string &token_uri,
                                   int64_t issued_at);
// application/x-www-form-urlencoded body of the token request (RFC 7523 §2.1).
std::string oauth_token_request_body(const std::string &assertion);
struct AccessToken {
  std::string token;
  int expires_in = 0;  // seconds
};
// RFC 6749 §5.1: {"access_token":..,"token_type":"Bearer","expires_in":N}.
bool parse_access_token(const std::string &body, AccessToken *out, std::string *error);

// ---- APNs
std::string apns_jwt_header(const std::string &key_id);
std::string apns_jwt_claims(const std::string &team_id, int64_t issued_at);
struct ApnsPush {
  std::string url;
  std::vector<std::string> headers;  // without authorization
  std::string body;
  bool voip = false;
};
// A call: a VoIP push when the app has a VoIP token (apns-push-type voip,
// priority 10, topic BUNDLE.voip), else an alert push to its remote token. A
// follow-up (answered elsewhere, missed): an alert push to the remote token;
// never a VoIP push (see apns_follow_up_possible).
// `expiration` is the UNIX time after which APNs drops it (apns-expiration).
ApnsPush apns_push(const std::string &base_url, const ApnsTarget &target,
                   const PushRequest &request, int64_t expiration);

// Whether a follow-up push (answered elsewhere, missed) can go to a device
// with these RFC 8599 parameters: not to an APNs app with a VoIP token only.
// Apple's PushKit documentation (PKPushType.voIP): a VoIP push is for
// starting a call only, and the app must report each one to CallKit as a new
// call, or iOS ends it and at length stops waking it. Such an app learns that
// the call ended over SIP instead: woken by the call's push, it registers and
// gets the INVITE and then the CANCEL (Router's late branches).
bool follow_up_possible(const std::string &provider, const std::string &param,
                        const std::string &prid);

// ---- webhook
// {"provider","prid","param","kind","call_id","caller_uri","caller_display","ttl"}
std::string webhook_body(const PushRequest &request, int ttl_seconds);

// ---- what an answer means
struct Verdict {
  PushOutcome outcome = PushOutcome::Failed;
  std::string reason;
  bool credentials_rejected = false;  // our token or JWT was refused: make a new one
};
Verdict fcm_verdict(int status, const std::string &body);
Verdict apns_verdict(int status, const std::string &body);
Verdict webhook_verdict(int status);
// Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date. -1 when
// absent or unreadable.
int parse_retry_after(const std::string &value, std::time_t now);

}  // namespace portier::push
