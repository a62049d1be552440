#include "push/push_config.h"

#include <openssl/crypto.h>

#include "common/text_file.h"
#include "common/tls_files.h"
#include "push/json_value.h"

namespace portier::push {

void add_push_schema(config::Schema &s) {
  s.boolean(kSection, "enabled", false,
            "wake sleeping phone apps with push notifications (RFC 8599 contact parameters)")
      .list(kSection, "firebase-service-accounts", "",
            "PROJECT_ID:FILE ...: for each Firebase project, Google's service-account JSON "
            "(client_email, private_key, token_uri) the FCM HTTP v1 access tokens come from")
      .str(kSection, "firebase-base-url", "https://fcm.googleapis.com",
           "FCM HTTP v1 endpoint; messages go to BASE/v1/projects/PROJECT_ID/messages:send")
      .str(kSection, "apns-base-url", "https://api.push.apple.com",
           "APNs production endpoint; pushes go to BASE/3/device/TOKEN")
      .str(kSection, "apns-dev-base-url", "https://api.sandbox.push.apple.com",
           "APNs sandbox endpoint, for pn-provider=apns.dev (development builds of an app)")
      .str(kSection, "apns-key-file", "",
           "APNs token authentication: the .p8 signing key (PEM, P-256) from Apple's developer "
           "account; needs apns-key-id and apns-team-id")
      .str(kSection, "apns-key-id", "", "the 10-character key ID of apns-key-file")
      .str(kSection, "apns-team-id", "", "the 10-character team ID the key belongs to")
      .str(kSection, "apns-certificate-file", "",
           "APNs certificate authentication instead of a key: PEM client certificate and its "
           "unencrypted private key in one file")
      .str(kSection, "webhook-url", "",
           "https URL that gets a JSON POST for every other pn-provider (a self-hosted app's "
           "push service)")
      .str(kSection, "ca-file", "",
           "PEM CA certificates trusted for the providers besides the system's (tests: their "
           "own CA)")
      .integer(kSection, "retransmission-count", 5, 0, 100,
               "retries of a push the provider refused for now (429, 5xx), within the fork's "
               "timeout")
      .integer(kSection, "retransmission-interval", 2, 1, 600,
               "seconds before the first retry, doubled for each next one; a longer "
               "Retry-After from the provider wins");
}

bool serves_provider(const PushSettings &settings, const std::string &provider,
                     const std::string &param) {
  if (!settings.enabled || provider.empty()) return false;
  if (provider == "fcm") {
    for (const ServiceAccount &a : settings.service_accounts)
      if (a.project_id == param) return true;
    return false;
  }
  if (provider == "apns" || provider == "apns.dev")
    return settings.apns_key != nullptr || !settings.apns_certificate_file.empty();
  return !settings.webhook_url.empty();
}

bool is_https_url(const std::string &url) {
  const std::string scheme = "https://";
  if (url.compare(0, scheme.size(), scheme) != 0) return false;
  const size_t host_end = url.find_first_of("/?#", scheme.size());
  const std::string authority = url.substr(scheme.size(), host_end - scheme.size());
  if (authority.empty() || authority[0] == ':' || authority.find('@') != std::string::npos)
    return false;
  for (char c : url)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return false;
  return true;
}

bool read_service_account(const std::string &project_id, const std::string &file,
                          ServiceAccount *out, std::string *error) {
  std::string text;
  if (!read_text_file(file, "service-account file", &text, error)) return false;
  json::Value doc;
  std::string why;
  const bool parsed = json::parse(text, &doc, &why);
  OPENSSL_cleanse(text.data(), text.size());
  if (!parsed || !doc.is_object()) {
    *error = file + ": not a service-account JSON (" + (parsed ? "not an object" : why) + ")";
    return false;
  }
  out->project_id = project_id;
  out->file = file;
  out->client_email = doc.string_or("client_email");
  out->token_uri = doc.string_or("token_uri");
  if (out->client_email.empty()) {
    *error = file + ": no client_email";
    return false;
  }
  if (!is_https_url(out->token_uri)) {
    *error = file + ": token_uri is not an https URL";
    return false;
  }
  const json::Value *pem = doc.get("private_key");
  if (!pem || !pem->is_string() || pem->string.empty()) {
    *error = file + ": no private_key";
    return false;
  }
  out->key = SigningKey::from_pem(pem->string, file + " (private_key)", error);
  // Our copy of the key in the parsed document goes with `doc`; wipe it first.
  auto &secret = const_cast<json::Value *>(pem)->string;
  OPENSSL_cleanse(secret.data(), secret.size());
  if (!out->key) return false;
  if (out->key->kind() != SigningKey::Kind::Rsa) {
    *error = file + ": private_key is not an RSA key (RS256, RFC 7518 §3.3)";
    return false;
  }
  return true;
}

std::string load_push_settings(const config::Config &cfg, PushSettings *out) {
  PushSettings s;
  s.enabled = cfg.get_bool(kSection, "enabled");
  if (!s.enabled) {
    *out = std::move(s);
    return "";
  }
  auto where = [&](const char *key) { return cfg.where(kSection, key); };
  std::string error;
  for (const auto &entry : cfg.get_list(kSection, "firebase-service-accounts")) {
    const size_t colon = entry.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == entry.size())
      return where("firebase-service-accounts") + "'" + entry + "' is not PROJECT_ID:FILE";
    ServiceAccount account;
    if (!read_service_account(entry.substr(0, colon), entry.substr(colon + 1), &account, &error))
      return where("firebase-service-accounts") + error;
    s.service_accounts.push_back(std::move(account));
  }
  for (const char *key : {"firebase-base-url", "apns-base-url", "apns-dev-base-url"}) {
    const std::string url = cfg.get_string(kSection, key);
    if (!is_https_url(url)) return where(key) + "'" + url + "' is not an https URL";
  }
  s.firebase_base_url = cfg.get_string(kSection, "firebase-base-url");
  s.apns_base_url = cfg.get_string(kSection, "apns-base-url");
  s.apns_dev_base_url = cfg.get_string(kSection, "apns-dev-base-url");
  s.webhook_url = cfg.get_string(kSection, "webhook-url");
  if (!s.webhook_url.empty() && !is_https_url(s.webhook_url))
    return where("webhook-url") + "'" + s.webhook_url + "' is not an https URL";

  const std::string key_file = cfg.get_string(kSection, "apns-key-file");
  s.apns_key_id = cfg.get_string(kSection, "apns-key-id");
  s.apns_team_id = cfg.get_string(kSection, "apns-team-id");
  s.apns_certificate_file = cfg.get_string(kSection, "apns-certificate-file");
  if (!key_file.empty() && !s.apns_certificate_file.empty())
    return where("apns-certificate-file") + "set apns-key-file or apns-certificate-file, not both";
  if (!key_file.empty()) {
    if (s.apns_key_id.empty()) return where("apns-key-id") + "needed with apns-key-file";
    if (s.apns_team_id.empty()) return where("apns-team-id") + "needed with apns-key-file";
    s.apns_key = SigningKey::from_file(key_file, &error);
    if (!s.apns_key) return where("apns-key-file") + error;
    if (s.apns_key->kind() != SigningKey::Kind::EcP256)
      return where("apns-key-file") + key_file + ": not a P-256 key (ES256, RFC 7518 §3.4)";
  }
  if (!s.apns_certificate_file.empty()) {
    TlsFiles files{s.apns_certificate_file, s.apns_certificate_file, ""};
    if (!check_tls_files(files, &error)) return where("apns-certificate-file") + error;
  }
  s.ca_file = cfg.get_string(kSection, "ca-file");
  if (!s.ca_file.empty() && !check_tls_files(TlsFiles{"", "", s.ca_file}, &error))
    return where("ca-file") + error;
  s.retransmission_count = static_cast<int>(cfg.get_int(kSection, "retransmission-count"));
  s.retransmission_interval_ms =
      static_cast<int>(cfg.get_int(kSection, "retransmission-interval")) * 1000;
  *out = std::move(s);
  return "";
}

}  // namespace portier::push
