// The push clients as the proxy's fork sees them: send(request, callback).
// Picks the provider from pn-provider (push_messages.h service_for), retries
// what the provider asked to retry (429, 5xx) after retransmission-interval,
// doubled each time, or its Retry-After when longer, as long as the deadline
// allows and at most retransmission-count times; calls back once, on the
// root's thread, with the final outcome. Destroying the client drops the
// pushes in flight and the retries waiting, without calling back.
#pragma once

#include <sofia-sip/su_wait.h>

#include <cstdint>
#include <map>
#include <memory>

#include "push/http2_client.h"
#include "push/push_config.h"
#include "push/push_providers.h"
#include "push/push_request.h"

namespace portier::push {

class PushClient {
 public:
  // `settings` as load_push_settings() made them (keys already read).
  PushClient(su_root_t *root, const PushSettings &settings);
  ~PushClient();
  PushClient(const PushClient &) = delete;
  PushClient &operator=(const PushClient &) = delete;

  void send(const PushRequest &request, PushCallback done);

  size_t pending() const { return pending_.size(); }
  const FcmProvider &fcm() const { return fcm_; }
  const ApnsProvider &apns() const { return apns_; }

 private:
  struct Pending {
    PushRequest request;
    PushCallback done;
    int attempts = 0;
    su_timer_t *timer = nullptr;
  };
  Provider &provider_for(const std::string &pn_provider);
  void attempt(uint64_t id);
  void finish(uint64_t id, PushResult result);
  static void on_retry(su_root_magic_t *, su_timer_t *, su_timer_arg_t *arg);

  su_root_t *root_;
  int retransmission_count_;
  int retransmission_interval_ms_;
  Http2Client http_;  // before the providers: they post through it
  FcmProvider fcm_;
  ApnsProvider apns_;
  ApnsProvider apns_sandbox_;
  WebhookProvider webhook_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, Pending> pending_;
  // su_timer callbacks carry one pointer: (client, id) pairs, owned here.
  struct RetryArg {
    PushClient *client;
    uint64_t id;
  };
  std::map<uint64_t, std::unique_ptr<RetryArg>> retry_args_;
};

}  // namespace portier::push
