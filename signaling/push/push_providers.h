// The three push services behind one interface: one attempt of one push,
// answered with an outcome (push_request.h). Retries and the choice of
// provider are the PushClient's (push_client.h).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "push/http2_client.h"
#include "push/push_config.h"
#include "push/push_messages.h"
#include "push/push_request.h"

namespace portier::push {

// An endpoint that stopped answering is logged once, and once again when it
// answers, instead of once per push (a provider outage would flood the log).
class Reachability {
 public:
  explicit Reachability(std::string name) : name_(std::move(name)) {}
  void failed(const std::string &error);
  void answered();
  bool down() const { return down_; }

 private:
  std::string name_;
  bool down_ = false;
};

class Provider {
 public:
  virtual ~Provider() = default;
  virtual void send(const PushRequest &request, PushCallback done) = 0;
};

// FCM HTTP v1 with an OAuth2 access token per project, fetched with the
// service account's signed assertion and kept until shortly before it
// expires; pushes that arrive while it is being fetched wait for it.
class FcmProvider : public Provider {
 public:
  FcmProvider(Http2Client &http, const PushSettings &settings);
  void send(const PushRequest &request, PushCallback done) override;
  // How many access tokens were fetched (tests, stats).
  unsigned tokens_fetched() const { return fetched_; }

 private:
  struct Project {
    ServiceAccount account;
    std::string token;
    std::chrono::steady_clock::time_point valid_until;
    bool fetching = false;
    std::vector<std::function<void(const PushResult *failure)>> waiting;
  };
  void fetch_token(Project &project, long timeout_ms);
  void post(Project &project, const PushRequest &request, PushCallback done);

  Http2Client &http_;
  std::string base_url_;
  std::map<std::string, Project> projects_;
  Reachability reach_;
  Reachability token_reach_;
  unsigned fetched_ = 0;
};

// APNs over HTTP/2, with a provider token (ES256 JWT, reused for
// PushSettings::apns_token_lifetime) or a client certificate.
class ApnsProvider : public Provider {
 public:
  ApnsProvider(Http2Client &http, const PushSettings &settings, std::string base_url);
  void send(const PushRequest &request, PushCallback done) override;
  unsigned jwts_made() const { return made_; }

 private:
  std::string provider_token();

  Http2Client &http_;
  std::string base_url_;
  std::shared_ptr<SigningKey> key_;
  std::string key_id_, team_id_, certificate_file_;
  std::chrono::seconds token_lifetime_;
  std::string jwt_;
  std::chrono::steady_clock::time_point jwt_made_;
  Reachability reach_;
  unsigned made_ = 0;
};

// Any other pn-provider: a JSON POST to webhook-url (push_messages.h).
class WebhookProvider : public Provider {
 public:
  WebhookProvider(Http2Client &http, std::string url);
  void send(const PushRequest &request, PushCallback done) override;

 private:
  Http2Client &http_;
  std::string url_;
  Reachability reach_;
};

}  // namespace portier::push
