#include "push/push_providers.h"

#include <algorithm>

#include "common/log.h"

namespace portier::push {
namespace {

using Clock = std::chrono::steady_clock;

// "https://host:port" of a URL: what the log names (a path may carry a token).
std::string origin_of(const std::string &url) {
  const size_t start = url.find("://");
  const size_t end = url.find_first_of("/?#", start == std::string::npos ? 0 : start + 3);
  return url.substr(0, end);
}

long ms_left(const PushRequest &r) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(r.deadline - Clock::now()).count();
  return static_cast<long>(std::max<int64_t>(0, left));
}

int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

PushResult failure(std::string reason, int status = 0) {
  PushResult r;
  r.outcome = PushOutcome::Failed;
  r.reason = std::move(reason);
  r.status = status;
  r.attempts = 1;
  return r;
}

// The answer's meaning, the transport's failure logged once per outage.
PushResult result_of(const HttpResponse &response, Reachability &reach, const Verdict &verdict) {
  PushResult r;
  r.attempts = 1;
  r.status = response.status;
  if (response.status == 0) {
    reach.failed(response.error);
    r.outcome = PushOutcome::Failed;
    r.reason = "no answer: " + response.error;
    return r;
  }
  reach.answered();
  r.outcome = verdict.outcome;
  r.reason = verdict.reason;
  r.retry_after = parse_retry_after(response.header("retry-after"), std::time(nullptr));
  return r;
}

}  // namespace

void Reachability::failed(const std::string &error) {
  if (down_) return;
  down_ = true;
  PLOG_WARN("push: %s unreachable (%s); pushes to it fail until it answers", name_.c_str(),
            error.c_str());
}

void Reachability::answered() {
  if (!down_) return;
  down_ = false;
  PLOG_INFO("push: %s answers again", name_.c_str());
}

// ---- FCM

FcmProvider::FcmProvider(Http2Client &http, const PushSettings &settings)
    : http_(http),
      base_url_(settings.firebase_base_url),
      reach_(origin_of(settings.firebase_base_url)),
      token_reach_("the OAuth2 token endpoint") {
  for (const auto &account : settings.service_accounts)
    projects_[account.project_id].account = account;
}

void FcmProvider::send(const PushRequest &request, PushCallback done) {
  auto it = projects_.find(request.param);
  if (it == projects_.end()) {
    done(failure("no service account for this pn-param (FCM project)"));
    return;
  }
  Project &project = it->second;
  if (!project.token.empty() && Clock::now() < project.valid_until) {
    post(project, request, std::move(done));
    return;
  }
  project.waiting.push_back([this, &project, request, done](const PushResult *failed) {
    if (failed)
      done(*failed);
    else
      post(project, request, done);
  });
  if (!project.fetching) fetch_token(project, std::max(1L, ms_left(request)));
}

void FcmProvider::fetch_token(Project &project, long timeout_ms) {
  project.fetching = true;
  project.token.clear();
  const ServiceAccount &a = project.account;
  HttpRequest rq;
  rq.url = a.token_uri;
  rq.headers = {"content-type: application/x-www-form-urlencoded"};
  rq.body = oauth_token_request_body(a.key->sign_jwt(
      oauth_assertion_header(), oauth_assertion_claims(a.client_email, a.token_uri, unix_now())));
  rq.timeout_ms = std::min(timeout_ms, 10000L);
  const Clock::time_point asked = Clock::now();
  http_.post(std::move(rq), [this, &project, asked](const HttpResponse &response) {
    project.fetching = false;
    ++fetched_;
    PushResult failed;
    bool ok = false;
    if (response.status == 0) {
      token_reach_.failed(response.error);
      failed = failure("no access token: " + response.error);
    } else {
      token_reach_.answered();
      AccessToken token;
      std::string error;
      if (response.status == 200 && parse_access_token(response.body, &token, &error)) {
        // Renewed before it runs out: a push never goes with a token that
        // expires on its way (the larger of a tenth and 60 s early, at most
        // half its life).
        const int early = std::min(std::max(token.expires_in / 10, 60), token.expires_in / 2);
        project.token = std::move(token.token);
        project.valid_until = asked + std::chrono::seconds(token.expires_in - early);
        ok = true;
      } else {
        // The endpoint's words are not logged: an error page may quote the assertion.
        failed = failure(response.status == 200 ? "token endpoint: " + error
                                                : "token endpoint refused the assertion: HTTP " +
                                                      std::to_string(response.status),
                         response.status);
        if (response.status == 429 || response.status >= 500) {
          failed.outcome = PushOutcome::RetryLater;
          failed.retry_after =
              parse_retry_after(response.header("retry-after"), std::time(nullptr));
        }
        PLOG_WARN("push: FCM project %s: %s", project.account.project_id.c_str(),
                  failed.reason.c_str());
      }
    }
    auto waiting = std::move(project.waiting);
    project.waiting.clear();
    for (auto &w : waiting) w(ok ? nullptr : &failed);
  });
}

void FcmProvider::post(Project &project, const PushRequest &request, PushCallback done) {
  const long left = ms_left(request);
  if (left <= 0) {
    done(failure("the deadline passed"));
    return;
  }
  HttpRequest rq;
  rq.url = fcm_send_url(base_url_, project.account.project_id);
  rq.headers = {"authorization: Bearer " + project.token, "content-type: application/json"};
  rq.body = fcm_message_body(request, seconds_left(request));
  rq.timeout_ms = left;
  http_.post(std::move(rq), [this, &project, done](const HttpResponse &response) {
    const Verdict v = fcm_verdict(response.status, response.body);
    if (v.credentials_rejected) project.token.clear();
    done(result_of(response, reach_, v));
  });
}

// ---- APNs

ApnsProvider::ApnsProvider(Http2Client &http, const PushSettings &settings, std::string base_url)
    : http_(http),
      base_url_(std::move(base_url)),
      key_(settings.apns_key),
      key_id_(settings.apns_key_id),
      team_id_(settings.apns_team_id),
      certificate_file_(settings.apns_certificate_file),
      token_lifetime_(settings.apns_token_lifetime),
      reach_(origin_of(base_url_)) {}

std::string ApnsProvider::provider_token() {
  // "Establishing a token-based connection to APNs": refresh the token no
  // more than once every 20 minutes and no less than once every 60 minutes.
  if (jwt_.empty() || Clock::now() - jwt_made_ >= token_lifetime_) {
    jwt_ = key_->sign_jwt(apns_jwt_header(key_id_), apns_jwt_claims(team_id_, unix_now()));
    jwt_made_ = Clock::now();
    ++made_;
  }
  return jwt_;
}

void ApnsProvider::send(const PushRequest &request, PushCallback done) {
  ApnsTarget target;
  std::string error;
  if (!parse_apns_target(request.param, request.prid, &target, &error)) {
    PushResult r = failure(error);
    r.outcome = PushOutcome::InvalidToken;  // the binding's parameters cannot work
    done(r);
    return;
  }
  if (!key_ && certificate_file_.empty()) {
    done(failure("no APNs credentials (apns-key-file or apns-certificate-file)"));
    return;
  }
  const long left = ms_left(request);
  if (left <= 0) {
    done(failure("the deadline passed"));
    return;
  }
  const ApnsPush push = apns_push(base_url_, target, request, unix_now() + seconds_left(request));
  HttpRequest rq;
  rq.url = push.url;
  rq.headers = push.headers;
  if (key_)
    rq.headers.push_back("authorization: bearer " + provider_token());
  else
    rq.client_certificate = certificate_file_;
  rq.body = push.body;
  rq.timeout_ms = left;
  http_.post(std::move(rq), [this, done](const HttpResponse &response) {
    const Verdict v = apns_verdict(response.status, response.body);
    if (v.credentials_rejected) jwt_.clear();
    done(result_of(response, reach_, v));
  });
}

// ---- webhook

WebhookProvider::WebhookProvider(Http2Client &http, std::string url)
    : http_(http), url_(std::move(url)), reach_(origin_of(url_)) {}

void WebhookProvider::send(const PushRequest &request, PushCallback done) {
  if (url_.empty()) {
    done(failure("no webhook-url for pn-provider " + request.provider));
    return;
  }
  const long left = ms_left(request);
  if (left <= 0) {
    done(failure("the deadline passed"));
    return;
  }
  HttpRequest rq;
  rq.url = url_;
  rq.headers = {"content-type: application/json"};
  rq.body = webhook_body(request, seconds_left(request));
  rq.timeout_ms = left;
  http_.post(std::move(rq), [this, done](const HttpResponse &response) {
    done(result_of(response, reach_, webhook_verdict(response.status)));
  });
}

}  // namespace portier::push
