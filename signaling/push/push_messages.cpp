#include "push/push_messages.h"

#include <strings.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/json.h"
#include "push/json_value.h"

namespace portier::push {

const char *kind_name(PushKind kind) {
  switch (kind) {
    case PushKind::Call:
      return "call";
    case PushKind::AnsweredElsewhere:
      return "answered-elsewhere";
    case PushKind::Missed:
      return "missed";
  }
  return "call";
}

const char *outcome_name(PushOutcome outcome) {
  switch (outcome) {
    case PushOutcome::Delivered:
      return "delivered";
    case PushOutcome::InvalidToken:
      return "invalid-token";
    case PushOutcome::RetryLater:
      return "retry-later";
    case PushOutcome::Failed:
      return "failed";
  }
  return "failed";
}

Service service_for(const std::string &provider) {
  if (provider == "fcm") return Service::Fcm;
  if (provider == "apns") return Service::Apns;
  if (provider == "apns.dev") return Service::ApnsSandbox;
  return Service::Webhook;
}

namespace {

bool is_hex_token(const std::string &t) {
  return !t.empty() && t.size() <= 200 && std::all_of(t.begin(), t.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
  });
}

std::vector<std::string> split(const std::string &s, char sep) {
  std::vector<std::string> out;
  size_t from = 0;
  for (;;) {
    const size_t at = s.find(sep, from);
    out.push_back(s.substr(from, at - from));
    if (at == std::string::npos) return out;
    from = at + 1;
  }
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool parse_apns_target(const std::string &param, const std::string &prid, ApnsTarget *out,
                       std::string *error) {
  *out = ApnsTarget{};
  const size_t first = param.find('.');
  if (first == std::string::npos || first == 0 || first + 1 >= param.size()) {
    *error = "pn-param is not TEAM.BUNDLE[.SERVICES]";
    return false;
  }
  std::string bundle = param.substr(first + 1);
  bool voip = false, remote = false;
  const size_t last = bundle.rfind('.');
  const std::string tail = last == std::string::npos ? "" : bundle.substr(last + 1);
  const auto services = split(tail, '&');
  const bool tail_is_services =
      !tail.empty() && std::all_of(services.begin(), services.end(), [](const std::string &s) {
        return s == "voip" || s == "remote";
      });
  if (tail_is_services) {
    for (const auto &s : services) (s == "voip" ? voip : remote) = true;
    bundle.resize(last);
  } else {
    // RFC 8599 §10 names only "voip"; without a service the topic is the
    // bundle ID itself, that of the app's user notifications.
    remote = true;
  }
  if (bundle.empty()) {
    *error = "pn-param has no bundle id";
    return false;
  }
  out->bundle = bundle;
  const auto tokens = split(prid, '&');
  if (tokens.size() == 1 && tokens[0].find(':') == std::string::npos) {
    if (voip == remote) {
      *error = "pn-param names two services and pn-prid one token";
      return false;
    }
    (voip ? out->voip_token : out->remote_token) = tokens[0];
  } else {
    for (const auto &t : tokens) {
      const size_t colon = t.rfind(':');
      const std::string service = colon == std::string::npos ? "" : t.substr(colon + 1);
      const std::string token = t.substr(0, colon);
      if (service == "voip" && voip)
        out->voip_token = token;
      else if (service == "remote" && remote)
        out->remote_token = token;
      else {
        *error = "pn-prid names a service pn-param does not";
        return false;
      }
    }
  }
  for (const auto *t : {&out->voip_token, &out->remote_token})
    if (!t->empty() && !is_hex_token(*t)) {
      *error = "pn-prid is not a hexadecimal device token";
      return false;
    }
  if (out->voip_token.empty() && out->remote_token.empty()) {
    *error = "pn-prid has no token";
    return false;
  }
  return true;
}

PushParams from_legacy_params(const std::string &pn_type, const std::string &app_id,
                              const std::string &pn_tok) {
  if (pn_type == "apple") {
    const size_t last = app_id.rfind('.');
    const bool sandbox = last != std::string::npos && app_id.compare(last, 4, ".dev") == 0 &&
                         last + 4 == app_id.size();
    // The team id is not in a legacy contact; the topic needs the bundle alone.
    return {sandbox ? "apns.dev" : "apns",
            "TEAM." + (last == std::string::npos ? app_id : app_id.substr(0, last)), pn_tok};
  }
  if (pn_type == "firebase" || pn_type == "android" || pn_type == "google")
    return {"fcm", app_id, pn_tok};
  return {pn_type, app_id, pn_tok};
}

int seconds_left(const PushRequest &request) {
  const auto left = std::chrono::duration_cast<std::chrono::seconds>(
                        request.deadline - std::chrono::steady_clock::now())
                        .count();
  return static_cast<int>(std::max<int64_t>(1, left));
}

// ---- FCM

std::string fcm_send_url(const std::string &base_url, const std::string &project_id) {
  return base_url + "/v1/projects/" + project_id + "/messages:send";
}

std::string fcm_message_body(const PushRequest &r, int ttl_seconds) {
  // FCM's data map takes strings only (Message.data: map<string, string>).
  portier::json::Writer w;
  w.begin_object().key("message").begin_object();
  w.field("token", r.prid);
  w.key("android")
      .begin_object()
      .field("priority", "HIGH")
      .field("ttl", std::to_string(ttl_seconds) + "s")
      .end_object();
  w.key("data")
      .begin_object()
      .field("kind", kind_name(r.kind))
      .field("call-id", r.call_id)
      .field("from-uri", r.caller_uri)
      .field("display-name", r.caller_display)
      .field("send-time", std::to_string(unix_now()))
      .end_object();
  w.end_object().end_object();
  return w.take();
}

std::string oauth_assertion_header() {
  return portier::json::Writer()
      .begin_object()
      .field("alg", "RS256")
      .field("typ", "JWT")
      .end_object()
      .take();
}

std::string oauth_assertion_claims(const std::string &client_email, const std::string &token_uri,
                                   int64_t issued_at) {
  return portier::json::Writer()
      .begin_object()
      .field("iss", client_email)
      .field("scope", "https://www.googleapis.com/auth/firebase.messaging")
      .field("aud", token_uri)
      .field("iat", issued_at)
      .field("exp", issued_at + 3600)  // Google accepts at most an hour
      .end_object()
      .take();
}

std::string oauth_token_request_body(const std::string &assertion) {
  // The JWT is base64url and dots: nothing in it needs escaping.
  return "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=" + assertion;
}

bool parse_access_token(const std::string &body, AccessToken *out, std::string *error) {
  json::Value doc;
  if (!json::parse(body, &doc, error)) return false;
  const json::Value *expires = doc.get("expires_in");
  out->token = doc.string_or("access_token");
  if (out->token.empty()) {
    *error = "no access_token in the answer";
    return false;
  }
  if (out->token.find_first_of("\r\n") != std::string::npos) {
    *error = "the access_token is not one line";
    return false;
  }
  const std::string type = doc.string_or("token_type", "Bearer");
  if (strcasecmp(type.c_str(), "bearer") != 0) {
    *error = "token_type is not Bearer";
    return false;
  }
  // RFC 6749 §5.1: expires_in is RECOMMENDED; Google always sends it. Without
  // it, an hour (the lifetime Google documents).
  out->expires_in = 3600;
  if (expires && expires->type == json::Value::Type::Number)
    out->expires_in = static_cast<int>(std::clamp(expires->number, 0.0, 86400.0));
  return true;
}

// ---- APNs

std::string apns_jwt_header(const std::string &key_id) {
  return portier::json::Writer()
      .begin_object()
      .field("alg", "ES256")
      .field("kid", key_id)
      .end_object()
      .take();
}

std::string apns_jwt_claims(const std::string &team_id, int64_t issued_at) {
  return portier::json::Writer()
      .begin_object()
      .field("iss", team_id)
      .field("iat", issued_at)
      .end_object()
      .take();
}

ApnsPush apns_push(const std::string &base_url, const ApnsTarget &target, const PushRequest &r,
                   int64_t expiration) {
  ApnsPush p;
  p.voip = !target.voip_token.empty() && r.kind == PushKind::Call;
  const std::string &token = p.voip ? target.voip_token : target.remote_token;
  p.url = base_url + "/3/device/" + token;
  p.headers = {
      std::string("apns-push-type: ") + (p.voip ? "voip" : "alert"),
      "apns-topic: " + target.bundle + (p.voip ? ".voip" : ""),
      // 10: at once. Apple requires 10 for VoIP pushes, and an alert for a
      // ringing door is as urgent.
      "apns-priority: 10",
      "apns-expiration: " + std::to_string(expiration),
      "content-type: application/json",
  };
  portier::json::Writer w;
  w.begin_object().key("aps").begin_object();
  if (!p.voip) {
    const std::string who = r.caller_display.empty() ? r.caller_uri : r.caller_display;
    const char *body = r.kind == PushKind::Call                ? "is at the door"
                       : r.kind == PushKind::AnsweredElsewhere ? "answered elsewhere"
                                                               : "missed call";
    w.key("alert").begin_object().field("title", who).field("body", body).end_object();
    if (r.kind == PushKind::Call) w.field("sound", "default");
  }
  w.end_object();
  w.field("kind", kind_name(r.kind))
      .field("call-id", r.call_id)
      .field("from-uri", r.caller_uri)
      .field("display-name", r.caller_display);
  w.end_object();
  p.body = w.take();
  return p;
}

bool follow_up_possible(const std::string &provider, const std::string &param,
                        const std::string &prid) {
  if (service_for(provider) == Service::Fcm || service_for(provider) == Service::Webhook)
    return true;
  ApnsTarget target;
  std::string error;
  return parse_apns_target(param, prid, &target, &error) && !target.remote_token.empty();
}

// ---- webhook

std::string webhook_body(const PushRequest &r, int ttl_seconds) {
  return portier::json::Writer()
      .begin_object()
      .field("provider", r.provider)
      .field("prid", r.prid)
      .field("param", r.param)
      .field("kind", kind_name(r.kind))
      .field("call_id", r.call_id)
      .field("caller_uri", r.caller_uri)
      .field("caller_display", r.caller_display)
      .field("ttl", ttl_seconds)
      .end_object()
      .take();
}

// ---- verdicts

namespace {

Verdict retry_or_fail(int status, std::string reason) {
  // 429: too many requests; 5xx: the provider's trouble. Both say "later"
  // (FCM ErrorCode QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL; APNs 429
  // TooManyRequests, 500 InternalServerError, 503 ServiceUnavailable).
  if (status == 429 || (status >= 500 && status <= 599))
    return {PushOutcome::RetryLater, std::move(reason)};
  return {PushOutcome::Failed, std::move(reason)};
}

std::string status_text(int status) { return "HTTP " + std::to_string(status); }

}  // namespace

Verdict fcm_verdict(int status, const std::string &body) {
  if (status >= 200 && status <= 299) return {PushOutcome::Delivered, ""};
  // {"error":{"code":404,"status":"NOT_FOUND","details":[{"@type":
  //   "type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}
  std::string code;
  json::Value doc;
  std::string ignored;
  if (json::parse(body, &doc, &ignored))
    if (const json::Value *error = doc.get("error")) {
      code = error->string_or("status");
      if (const json::Value *details = error->get("details"))
        for (const auto &d : details->array)
          if (!d.string_or("errorCode").empty()) code = d.string_or("errorCode");
    }
  const std::string reason = status_text(status) + (code.empty() ? "" : " " + code);
  switch (status) {
    case 400:  // INVALID_ARGUMENT: "the registration token is not valid" among others
    case 403:  // SENDER_ID_MISMATCH: the token belongs to another sender
    case 404:  // UNREGISTERED: "the app instance was unregistered from FCM"
    case 410:
      return {PushOutcome::InvalidToken, reason};
    case 401:  // our access token was refused: fetch a new one
      return {PushOutcome::Failed, reason, true};
    default:
      return retry_or_fail(status, reason);
  }
}

Verdict apns_verdict(int status, const std::string &body) {
  if (status == 200) return {PushOutcome::Delivered, ""};
  json::Value doc;
  std::string ignored, reason;
  if (json::parse(body, &doc, &ignored)) reason = doc.string_or("reason");
  // Only what can pass for a word goes into the log.
  if (reason.size() > 64 ||
      reason.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") !=
          std::string::npos)
    reason.clear();
  const std::string text = status_text(status) + (reason.empty() ? "" : " " + reason);
  // "Handling notification responses from APNs": 410 Unregistered (the token
  // is no longer active for the topic); 400 BadDeviceToken and
  // DeviceTokenNotForTopic. Other 400s and 403s are about our request or our
  // credentials, not the device: the binding stays.
  if (status == 410) return {PushOutcome::InvalidToken, text};
  if (status == 400 && (reason == "BadDeviceToken" || reason == "DeviceTokenNotForTopic"))
    return {PushOutcome::InvalidToken, text};
  if (status == 403 && (reason == "ExpiredProviderToken" || reason == "InvalidProviderToken"))
    return {PushOutcome::Failed, text, true};
  return retry_or_fail(status, text);
}

Verdict webhook_verdict(int status) {
  if (status >= 200 && status <= 299) return {PushOutcome::Delivered, ""};
  // The same meaning as FCM's and APNs': the token is unknown or gone.
  if (status == 400 || status == 403 || status == 404 || status == 410)
    return {PushOutcome::InvalidToken, status_text(status)};
  return retry_or_fail(status, status_text(status));
}

int parse_retry_after(const std::string &value, std::time_t now) {
  if (value.empty()) return -1;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return value.size() > 6 ? 86400 : std::min(86400, std::stoi(value));
  struct tm tm {};
  const char *end = strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end) return -1;
  const std::time_t at = timegm(&tm);
  return static_cast<int>(std::clamp<std::time_t>(at - now, 0, 86400));
}

}  // namespace portier::push
