#include "push/push_client.h"

#include <algorithm>
#include <chrono>

#include "common/log.h"

namespace portier::push {

PushClient::PushClient(su_root_t *root, const PushSettings &settings)
    : root_(root),
      retransmission_count_(settings.retransmission_count),
      retransmission_interval_ms_(settings.retransmission_interval_ms),
      http_(root, settings.ca_file),
      fcm_(http_, settings),
      apns_(http_, settings, settings.apns_base_url),
      apns_sandbox_(http_, settings, settings.apns_dev_base_url),
      webhook_(http_, settings.webhook_url) {}

PushClient::~PushClient() {
  for (auto &[id, p] : pending_)
    if (p.timer) su_timer_destroy(p.timer);
}

Provider &PushClient::provider_for(const std::string &pn_provider) {
  switch (service_for(pn_provider)) {
    case Service::Fcm:
      return fcm_;
    case Service::Apns:
      return apns_;
    case Service::ApnsSandbox:
      return apns_sandbox_;
    case Service::Webhook:
      break;
  }
  return webhook_;
}

void PushClient::send(const PushRequest &request, PushCallback done) {
  const uint64_t id = next_id_++;
  Pending &p = pending_[id];
  p.request = request;
  p.done = std::move(done);
  attempt(id);
}

void PushClient::attempt(uint64_t id) {
  Pending &p = pending_.at(id);
  ++p.attempts;
  provider_for(p.request.provider).send(p.request, [this, id](const PushResult &result) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    Pending &p = it->second;
    if (result.outcome != PushOutcome::RetryLater || p.attempts > retransmission_count_) {
      finish(id, result);
      return;
    }
    long delay_ms = static_cast<long>(retransmission_interval_ms_) << std::min(p.attempts - 1, 16);
    if (result.retry_after >= 0) delay_ms = std::max(delay_ms, result.retry_after * 1000L);
    if (std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms) >=
        p.request.deadline) {
      finish(id, result);
      return;
    }
    auto arg = std::make_unique<RetryArg>(RetryArg{this, id});
    p.timer = su_timer_create(su_root_task(root_), static_cast<su_duration_t>(delay_ms));
    if (!p.timer || su_timer_set(p.timer, on_retry, arg.get()) != 0) {
      finish(id, result);
      return;
    }
    retry_args_[id] = std::move(arg);
  });
}

void PushClient::on_retry(su_root_magic_t *, su_timer_t *, su_timer_arg_t *arg) {
  auto *a = static_cast<RetryArg *>(arg);
  PushClient *self = a->client;
  const uint64_t id = a->id;
  auto it = self->pending_.find(id);
  if (it == self->pending_.end()) return;
  su_timer_destroy(it->second.timer);
  it->second.timer = nullptr;
  self->retry_args_.erase(id);  // `a` is gone from here on
  self->attempt(id);
}

void PushClient::finish(uint64_t id, PushResult result) {
  auto it = pending_.find(id);
  if (it == pending_.end()) return;
  Pending p = std::move(it->second);
  pending_.erase(it);
  retry_args_.erase(id);
  if (p.timer) su_timer_destroy(p.timer);
  result.attempts = p.attempts;
  // Names the call and the provider; the device token stays out of the log.
  PLOG_INFO("push %s for call %s via %s: %s%s%s (%d attempt%s)", kind_name(p.request.kind),
            p.request.call_id.c_str(), p.request.provider.c_str(), outcome_name(result.outcome),
            result.reason.empty() ? "" : ", ", result.reason.c_str(), result.attempts,
            result.attempts == 1 ? "" : "s");
  if (p.done) p.done(result);
}

}  // namespace portier::push
