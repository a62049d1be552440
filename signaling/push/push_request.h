// What the fork hands the push clients, and what it gets back. One request
// wakes one device: the binding's RFC 8599 parameters (pn-provider, pn-prid,
// pn-param), the call it is woken for, and the time after which a push is
// pointless (the fork's timeout).
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace portier::push {

// Why the device is pushed. A VoIP push must be reported as a call by iOS, so
// the follow-ups say which call they end (call_id) and the app tells the user.
enum class PushKind { Call, AnsweredElsewhere, Missed };
const char *kind_name(PushKind kind);

struct PushRequest {
  std::string provider;  // pn-provider: "fcm", "apns", "apns.dev"; any other: the webhook
  std::string prid;      // pn-prid: the device token (APNs: "tok:voip&tok2:remote" allowed)
  std::string param;     // pn-param: FCM project id; APNs TEAM.BUNDLE[.voip|.remote|.voip&remote]
  std::string call_id;
  std::string caller_display;
  std::string caller_uri;
  PushKind kind = PushKind::Call;
  std::chrono::steady_clock::time_point deadline;
};

enum class PushOutcome {
  Delivered,     // the provider accepted it
  InvalidToken,  // the token is gone or was never valid: drop the binding's push parameters
  RetryLater,    // the provider asked to wait (429, 5xx) and the deadline came first
  Failed,        // anything else: unreachable, refused, misconfigured
};
const char *outcome_name(PushOutcome outcome);

struct PushResult {
  PushOutcome outcome = PushOutcome::Failed;
  int status = 0;      // the last HTTP status; 0 when no response came
  std::string reason;  // the provider's reason or our own, for the log: never a token
  int attempts = 0;
  int retry_after = -1;  // seconds the provider asked us to wait (Retry-After), -1: none
};

using PushCallback = std::function<void(const PushResult &)>;

}  // namespace portier::push
