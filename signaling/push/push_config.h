// [module::PushNotification]: the keys (Flexisip's names), their checks at
// start-up, and the settings the push clients run with. The proxy's schema
// includes these (proxy/proxy_config.cpp).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "push/jwt.h"

namespace portier::push {

inline constexpr const char *kSection = "module::PushNotification";

// One firebase-service-accounts entry: Google's service-account JSON, read.
struct ServiceAccount {
  std::string project_id;  // from the config entry (PROJECT_ID:FILE)
  std::string file;
  std::string client_email;
  std::string token_uri;
  std::shared_ptr<SigningKey> key;  // RSA
};

struct PushSettings {
  bool enabled = false;
  std::vector<ServiceAccount> service_accounts;
  std::string firebase_base_url;
  std::string apns_base_url;
  std::string apns_dev_base_url;
  std::shared_ptr<SigningKey> apns_key;  // token auth (P-256); null with certificate auth
  std::string apns_key_id;
  std::string apns_team_id;
  std::string apns_certificate_file;  // certificate auth: PEM certificate and key
  std::string webhook_url;
  std::string ca_file;
  int retransmission_count = 5;
  int retransmission_interval_ms = 2000;
  // Not a key: how long an APNs provider token is used. Apple refuses one
  // older than an hour and one renewed more often than every 20 minutes
  // ("Establishing a token-based connection to APNs"). Tests shorten it.
  std::chrono::seconds apns_token_lifetime{50 * 60};
};

void add_push_schema(config::Schema &schema);

// Reads and checks everything the keys point at (service accounts, keys,
// certificates, URLs). Returns "" and fills *out when valid, else a message
// naming the key and the file at fault. Nothing is read when enabled is false.
std::string load_push_settings(const config::Config &cfg, PushSettings *out);

// Reads one service-account JSON (client_email, private_key, token_uri).
bool read_service_account(const std::string &project_id, const std::string &file,
                          ServiceAccount *out, std::string *error);

// Whether pushes to pn-provider `provider` can be sent with these settings
// (the registrar answers 555 otherwise, RFC 8599 §5.6.1.1): fcm needs the
// service account of the project pn-param names (RFC 8599 §11: pn-param is
// the FCM project id), apns and apns.dev a key or a certificate, and any other
// provider the webhook. Nothing is served while push is disabled.
bool serves_provider(const PushSettings &settings, const std::string &provider,
                     const std::string &param);

// True for an https URL with a host ("https://host[:port][/path]").
bool is_https_url(const std::string &url);

}  // namespace portier::push
