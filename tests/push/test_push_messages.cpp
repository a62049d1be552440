// The push clients' plain parts: JSON reading, JWT signing, the providers'
// wire formats and answers, and the config checks. The JWTs are verified here
// with OpenSSL's own verify, not by our code.
#include <gtest/gtest.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <string>

#include "common/config.h"
#include "push/json_value.h"
#include "push/jwt.h"
#include "push/push_config.h"
#include "push/push_messages.h"

namespace portier::push {
namespace {

std::string b64url_decode(const std::string &in) {
  std::string s = in;
  for (char &c : s) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (s.size() % 4) s += '=';
  std::string out(s.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                                reinterpret_cast<const unsigned char *>(s.data()),
                                static_cast<int>(s.size()));
  out.resize(n < 0 ? 0 : n - (in.size() % 4 == 2 ? 2 : in.size() % 4 == 3 ? 1 : 0));
  return out;
}

std::string tmp_file(const std::string &text) {
  char name[] = "/tmp/portier-push-unit.XXXXXX";
  const int fd = mkstemp(name);
  EXPECT_GE(fd, 0);
  EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  return name;
}

std::string pem_of(EVP_PKEY *key) {
  BIO *bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  char *data;
  const long n = BIO_get_mem_data(bio, &data);
  std::string pem(data, n);
  BIO_free(bio);
  return pem;
}

// ---- JSON (RFC 8259)

TEST(PushJson, ReadsWhatProvidersSend) {
  json::Value v;
  std::string error;
  ASSERT_TRUE(json::parse(
      R"({"error":{"code":404,"status":"NOT_FOUND","details":[{"errorCode":"UNREGISTERED"}]},)"
      R"("ok":true,"n":null,"s":"a\"b\\c\/d\n\u00e9\ud83d\ude00"})",
      &v, &error))
      << error;
  EXPECT_EQ(v.get("error")->get("code")->number, 404);
  EXPECT_EQ(v.get("error")->get("details")->array[0].string_or("errorCode"), "UNREGISTERED");
  EXPECT_TRUE(v.get("ok")->boolean);
  EXPECT_EQ(v.get("n")->type, json::Value::Type::Null);
  EXPECT_EQ(v.string_or("s"), "a\"b\\c/d\n\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(PushJson, RefusesBadTextWithoutCrashing) {
  const char *bad[] = {"",      "{",   "{\"a\":}", "[1,]",    "{\"a\" 1}",
                       "\"abc", "tru", "{} x",     "\"\\x\"", "\"\\u12\"",
                       "01x",   "-",   "1.",       "1e",      "\"a\tb\""};
  for (const char *text : bad) {
    json::Value v;
    std::string error;
    EXPECT_FALSE(json::parse(text, &v, &error)) << text;
    EXPECT_FALSE(error.empty());
  }
  // Nesting deep enough to exhaust a naive parser's stack.
  json::Value v;
  std::string error;
  EXPECT_FALSE(json::parse(std::string(100000, '['), &v, &error));
  EXPECT_NE(error.find("deep"), std::string::npos);
}

// ---- JWS / JWT (RFC 7515, 7518)

TEST(PushJwt, Base64urlHasNoPaddingAndUrlAlphabet) {
  // RFC 4648 §10 vectors, without the padding (RFC 7515 §2).
  EXPECT_EQ(base64url(""), "");
  EXPECT_EQ(base64url("f"), "Zg");
  EXPECT_EQ(base64url("fo"), "Zm8");
  EXPECT_EQ(base64url("foo"), "Zm9v");
  EXPECT_EQ(base64url("foob"), "Zm9vYg");
  EXPECT_EQ(base64url("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64url("\xfb\xff"), "-_8");
}

// RFC 7518 §3.4: an ES256 signature is R || S, 64 bytes; OpenSSL's verify
// wants DER, so the test converts back and lets OpenSSL judge.
TEST(PushJwt, Es256SignatureVerifiesWithThePublicKey) {
  EVP_PKEY *key = EVP_EC_gen("P-256");
  ASSERT_NE(key, nullptr);
  std::string error;
  auto signer = SigningKey::from_pem(pem_of(key), "test.p8", &error);
  ASSERT_TRUE(signer) << error;
  EXPECT_EQ(signer->kind(), SigningKey::Kind::EcP256);
  const std::string jwt =
      signer->sign_jwt(apns_jwt_header("KEYID12345"), apns_jwt_claims("TEAMID1234", 1700000000));
  const size_t d1 = jwt.find('.'), d2 = jwt.rfind('.');
  ASSERT_NE(d1, d2);
  EXPECT_EQ(b64url_decode(jwt.substr(0, d1)), R"({"alg":"ES256","kid":"KEYID12345"})");
  EXPECT_EQ(b64url_decode(jwt.substr(d1 + 1, d2 - d1 - 1)),
            R"({"iss":"TEAMID1234","iat":1700000000})");
  const std::string sig = b64url_decode(jwt.substr(d2 + 1));
  ASSERT_EQ(sig.size(), 64u);
  ECDSA_SIG *ecdsa = ECDSA_SIG_new();
  ECDSA_SIG_set0(ecdsa, BN_bin2bn(reinterpret_cast<const unsigned char *>(sig.data()), 32, nullptr),
                 BN_bin2bn(reinterpret_cast<const unsigned char *>(sig.data()) + 32, 32, nullptr));
  unsigned char *der = nullptr;
  const int der_len = i2d_ECDSA_SIG(ecdsa, &der);
  ECDSA_SIG_free(ecdsa);
  const std::string input = jwt.substr(0, d2);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  ASSERT_EQ(EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, key), 1);
  EXPECT_EQ(EVP_DigestVerify(md, der, der_len,
                             reinterpret_cast<const unsigned char *>(input.data()), input.size()),
            1);
  // One bit changed in the claims: the signature no longer holds.
  std::string tampered = input;
  tampered[d1 + 3] ^= 1;
  ASSERT_EQ(EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, key), 1);
  EXPECT_NE(
      EVP_DigestVerify(md, der, der_len, reinterpret_cast<const unsigned char *>(tampered.data()),
                       tampered.size()),
      1);
  EVP_MD_CTX_free(md);
  OPENSSL_free(der);
  EVP_PKEY_free(key);
}

TEST(PushJwt, Rs256AssertionVerifiesAndCarriesGooglesClaims) {
  EVP_PKEY *key = EVP_RSA_gen(2048);
  ASSERT_NE(key, nullptr);
  std::string error;
  auto signer = SigningKey::from_pem(pem_of(key), "sa.json", &error);
  ASSERT_TRUE(signer) << error;
  const std::string jwt =
      signer->sign_jwt(oauth_assertion_header(),
                       oauth_assertion_claims("a@b.iam.gserviceaccount.com",
                                              "https://oauth2.googleapis.com/token", 1700000000));
  const size_t d1 = jwt.find('.'), d2 = jwt.rfind('.');
  json::Value claims;
  ASSERT_TRUE(json::parse(b64url_decode(jwt.substr(d1 + 1, d2 - d1 - 1)), &claims, &error));
  EXPECT_EQ(claims.string_or("iss"), "a@b.iam.gserviceaccount.com");
  EXPECT_EQ(claims.string_or("scope"), "https://www.googleapis.com/auth/firebase.messaging");
  EXPECT_EQ(claims.string_or("aud"), "https://oauth2.googleapis.com/token");
  EXPECT_EQ(claims.get("exp")->number - claims.get("iat")->number, 3600);
  const std::string sig = b64url_decode(jwt.substr(d2 + 1));
  const std::string input = jwt.substr(0, d2);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  ASSERT_EQ(EVP_DigestVerifyInit(md, nullptr, EVP_sha256(), nullptr, key), 1);
  EXPECT_EQ(EVP_DigestVerify(md, reinterpret_cast<const unsigned char *>(sig.data()), sig.size(),
                             reinterpret_cast<const unsigned char *>(input.data()), input.size()),
            1);
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(key);
}

TEST(PushJwt, RefusesWhatIsNotAnUnencryptedRsaOrP256Key) {
  std::string error;
  EXPECT_FALSE(SigningKey::from_pem("not a key", "k.pem", &error));
  EXPECT_EQ(error, "k.pem: no unencrypted PEM private key");
  EVP_PKEY *p384 = EVP_EC_gen("P-384");
  EXPECT_FALSE(SigningKey::from_pem(pem_of(p384), "k.pem", &error));
  EXPECT_NE(error.find("neither"), std::string::npos);
  EVP_PKEY_free(p384);
}

// ---- RFC 8599 parameters

TEST(PushParams, ApnsParamAndPridAsFlexisipReadsThem) {
  struct Row {
    const char *param, *prid;
    bool ok;
    const char *bundle, *voip, *remote;
  } rows[] = {
      {"ABCD1234.org.example.app.voip", "aa11", true, "org.example.app", "aa11", ""},
      {"ABCD1234.org.example.app.remote", "bb22", true, "org.example.app", "", "bb22"},
      // No service named (RFC 8599 §10 names only voip): remote
      {"ABCD1234.org.example.app", "bb22", true, "org.example.app", "", "bb22"},
      {"ABCD1234.org.example.app.voip&remote", "aa11:voip&bb22:remote", true, "org.example.app",
       "aa11", "bb22"},
      {"ABCD1234.org.example.app.voip&remote", "aa11", false, "", "", ""},
      {"ABCD1234.org.example.app.voip", "bb22:remote", false, "", "", ""},
      {"nodots", "aa11", false, "", "", ""},
      {"ABCD1234.org.example.app.voip", "", false, "", "", ""},
      // The token goes into the path: only hex passes.
      {"ABCD1234.org.example.app.voip", "aa11/../x", false, "", "", ""},
  };
  for (const auto &r : rows) {
    ApnsTarget t;
    std::string error;
    EXPECT_EQ(parse_apns_target(r.param, r.prid, &t, &error), r.ok) << r.param << " " << r.prid;
    if (!r.ok) continue;
    EXPECT_EQ(t.bundle, r.bundle);
    EXPECT_EQ(t.voip_token, r.voip);
    EXPECT_EQ(t.remote_token, r.remote);
  }
}

// A follow-up never goes to a VoIP token (PKPushType.voIP: for starting a
// call only, each one reported to CallKit as a new call): an app with a
// remote token gets an alert there, one with a VoIP token only none.
TEST(PushParams, ApnsFollowUpsAreAlertsToTheRemoteTokenOnly) {
  EXPECT_FALSE(follow_up_possible("apns", "ABCD1234.org.example.app.voip", "aa11"));
  EXPECT_FALSE(follow_up_possible("apns.dev", "ABCD1234.org.example.app.voip", "aa11"));
  EXPECT_TRUE(
      follow_up_possible("apns", "ABCD1234.org.example.app.voip&remote", "aa11:voip&bb22:remote"));
  EXPECT_TRUE(follow_up_possible("apns", "ABCD1234.org.example.app.remote", "bb22"));
  EXPECT_TRUE(follow_up_possible("fcm", "project", "token"));
  EXPECT_TRUE(follow_up_possible("webpush", "", "token"));

  ApnsTarget t;
  std::string error;
  ASSERT_TRUE(parse_apns_target("ABCD1234.org.example.app.voip&remote", "aa11:voip&bb22:remote", &t,
                                &error));
  PushRequest r;
  r.kind = PushKind::Call;
  ApnsPush call = apns_push("https://apns.test", t, r, 100);
  EXPECT_TRUE(call.voip);
  EXPECT_EQ(call.url, "https://apns.test/3/device/aa11");
  for (PushKind kind : {PushKind::Missed, PushKind::AnsweredElsewhere}) {
    r.kind = kind;
    ApnsPush p = apns_push("https://apns.test", t, r, 100);
    EXPECT_FALSE(p.voip);
    EXPECT_EQ(p.url, "https://apns.test/3/device/bb22");
    EXPECT_NE(std::find(p.headers.begin(), p.headers.end(), "apns-push-type: alert"),
              p.headers.end());
    EXPECT_NE(std::find(p.headers.begin(), p.headers.end(), "apns-topic: org.example.app"),
              p.headers.end());
  }
}

TEST(PushParams, LegacyLinphoneParametersMapToRfc8599) {
  auto dev = from_legacy_params("apple", "org.linphone.phone.voip.dev", "aa11");
  EXPECT_EQ(dev.provider, "apns.dev");
  auto prod = from_legacy_params("apple", "org.linphone.phone.voip.prod", "aa11");
  EXPECT_EQ(prod.provider, "apns");
  ApnsTarget t;
  std::string error;
  ASSERT_TRUE(parse_apns_target(prod.param, prod.prid, &t, &error)) << error;
  EXPECT_EQ(t.bundle, "org.linphone.phone");
  EXPECT_EQ(t.voip_token, "aa11");
  auto fcm = from_legacy_params("firebase", "123456789", "tok");
  EXPECT_EQ(fcm.provider, "fcm");
  EXPECT_EQ(fcm.param, "123456789");
  EXPECT_EQ(service_for("fcm"), Service::Fcm);
  EXPECT_EQ(service_for("apns"), Service::Apns);
  EXPECT_EQ(service_for("apns.dev"), Service::ApnsSandbox);
  EXPECT_EQ(service_for("myapp"), Service::Webhook);
}

// ---- the providers' answers

TEST(PushVerdict, FcmErrorCodes) {
  auto body = [](int code, const char *error_code) {
    return std::string(R"({"error":{"code":)") + std::to_string(code) +
           R"(,"status":"X","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":")" +
           error_code + R"("}]}})";
  };
  struct Row {
    int status;
    const char *code;
    PushOutcome outcome;
  } rows[] = {
      {200, "", PushOutcome::Delivered},
      {404, "UNREGISTERED", PushOutcome::InvalidToken},
      {400, "INVALID_ARGUMENT", PushOutcome::InvalidToken},
      {403, "SENDER_ID_MISMATCH", PushOutcome::InvalidToken},
      {429, "QUOTA_EXCEEDED", PushOutcome::RetryLater},
      {503, "UNAVAILABLE", PushOutcome::RetryLater},
      {500, "INTERNAL", PushOutcome::RetryLater},
      {401, "THIRD_PARTY_AUTH_ERROR", PushOutcome::Failed},
  };
  for (const auto &r : rows) {
    const Verdict v = fcm_verdict(r.status, r.status == 200 ? "{}" : body(r.status, r.code));
    EXPECT_EQ(v.outcome, r.outcome) << r.status;
    if (r.status != 200) {
      EXPECT_NE(v.reason.find(r.code), std::string::npos) << v.reason;
    }
  }
  EXPECT_TRUE(fcm_verdict(401, "").credentials_rejected);
  EXPECT_EQ(fcm_verdict(404, "garbage{").outcome, PushOutcome::InvalidToken);
}

TEST(PushVerdict, ApnsReasons) {
  struct Row {
    int status;
    const char *reason;
    PushOutcome outcome;
    bool credentials;
  } rows[] = {
      {200, "", PushOutcome::Delivered, false},
      {410, "Unregistered", PushOutcome::InvalidToken, false},
      {400, "BadDeviceToken", PushOutcome::InvalidToken, false},
      {400, "DeviceTokenNotForTopic", PushOutcome::InvalidToken, false},
      {400, "BadExpirationDate", PushOutcome::Failed, false},
      {403, "ExpiredProviderToken", PushOutcome::Failed, true},
      {403, "InvalidProviderToken", PushOutcome::Failed, true},
      {429, "TooManyRequests", PushOutcome::RetryLater, false},
      {503, "ServiceUnavailable", PushOutcome::RetryLater, false},
      {500, "InternalServerError", PushOutcome::RetryLater, false},
  };
  for (const auto &r : rows) {
    const Verdict v = apns_verdict(r.status, std::string(R"({"reason":")") + r.reason + "\"}");
    EXPECT_EQ(v.outcome, r.outcome) << r.status << " " << r.reason;
    EXPECT_EQ(v.credentials_rejected, r.credentials) << r.reason;
  }
  // A reason that is not a word stays out of the log.
  EXPECT_EQ(apns_verdict(400, R"({"reason":"a b\n c"})").reason, "HTTP 400");
}

TEST(PushVerdict, WebhookAndRetryAfter) {
  EXPECT_EQ(webhook_verdict(204).outcome, PushOutcome::Delivered);
  EXPECT_EQ(webhook_verdict(410).outcome, PushOutcome::InvalidToken);
  EXPECT_EQ(webhook_verdict(503).outcome, PushOutcome::RetryLater);
  EXPECT_EQ(webhook_verdict(418).outcome, PushOutcome::Failed);
  // RFC 9110 §10.2.3: delay-seconds or an HTTP-date.
  EXPECT_EQ(parse_retry_after("120", 0), 120);
  EXPECT_EQ(parse_retry_after("", 0), -1);
  EXPECT_EQ(parse_retry_after("soon", 0), -1);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470), 10);
  EXPECT_EQ(parse_retry_after("99999999999", 0), 86400);
}

TEST(PushMessages, FcmBodyIsADataMessageWithHighPriorityAndTtl) {
  PushRequest r;
  r.prid = "tok\"en";
  r.call_id = "c1";
  r.caller_uri = "sip:door@h.test";
  r.caller_display = "Door";
  json::Value v;
  std::string error;
  ASSERT_TRUE(json::parse(fcm_message_body(r, 45), &v, &error)) << error;
  const json::Value *m = v.get("message");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->string_or("token"), "tok\"en");
  EXPECT_EQ(m->get("android")->string_or("priority"), "HIGH");
  EXPECT_EQ(m->get("android")->string_or("ttl"), "45s");
  for (const auto &[k, val] : m->get("data")->object) EXPECT_TRUE(val.is_string()) << k;
  EXPECT_EQ(m->get("data")->string_or("call-id"), "c1");
  EXPECT_FALSE(m->get("notification")) << "a data message";
  EXPECT_EQ(fcm_send_url("https://fcm.googleapis.com", "p1"),
            "https://fcm.googleapis.com/v1/projects/p1/messages:send");
}

TEST(PushMessages, AccessTokenAnswer) {
  AccessToken t;
  std::string error;
  ASSERT_TRUE(parse_access_token(
      R"({"access_token":"ya29.x","expires_in":3599,"token_type":"Bearer"})", &t, &error));
  EXPECT_EQ(t.token, "ya29.x");
  EXPECT_EQ(t.expires_in, 3599);
  EXPECT_FALSE(parse_access_token(R"({"expires_in":3599})", &t, &error));
  EXPECT_FALSE(parse_access_token(R"({"access_token":"a\r\nX-Evil: 1"})", &t, &error));
  EXPECT_FALSE(parse_access_token(R"({"access_token":"a","token_type":"mac"})", &t, &error));
}

// ---- [module::PushNotification] at start-up

class PushConfigTest : public ::testing::Test {
 protected:
  // load_push_settings' verdict on `text` (a config file's text) and what it
  // read into `s`.
  std::string load(const std::string &text, PushSettings *s) {
    static const config::Schema schema = [] {
      config::Schema sc("push-test");
      add_push_schema(sc);
      return sc;
    }();
    config::Config cfg(schema);
    std::string error;
    EXPECT_TRUE(cfg.load_string(text, "t.conf", &error)) << error;
    return load_push_settings(cfg, s);
  }

  std::string check(const std::string &body) {
    PushSettings s;
    return load("[module::PushNotification]\nenabled = true\n" + body, &s);
  }
};

TEST_F(PushConfigTest, DefaultsAreValidAndDisabledReadsNothing) {
  EXPECT_EQ(check(""), "");
  PushSettings s;
  EXPECT_EQ(load("[module::PushNotification]\napns-key-file = /nonexistent\n", &s), "");
  EXPECT_FALSE(s.enabled);
}

TEST_F(PushConfigTest, NamesTheFileAndKeyAtFault) {
  std::string e = check("firebase-service-accounts = p1:/nonexistent/sa.json\n");
  EXPECT_NE(e.find("firebase-service-accounts"), std::string::npos) << e;
  EXPECT_NE(e.find("/nonexistent/sa.json"), std::string::npos) << e;

  const std::string no_key =
      tmp_file(R"({"client_email":"a@b","token_uri":"https://oauth2.googleapis.com/token"})");
  e = check("firebase-service-accounts = p1:" + no_key + "\n");
  EXPECT_NE(e.find(no_key + ": no private_key"), std::string::npos) << e;

  const std::string not_json = tmp_file("private_key=...");
  e = check("firebase-service-accounts = p1:" + not_json + "\n");
  EXPECT_NE(e.find("not a service-account JSON"), std::string::npos) << e;

  e = check("firebase-service-accounts = justafile.json\n");
  EXPECT_NE(e.find("PROJECT_ID:FILE"), std::string::npos) << e;

  e = check("apns-key-file = /nonexistent/AuthKey.p8\napns-key-id = K\napns-team-id = T\n");
  EXPECT_NE(e.find("apns-key-file"), std::string::npos) << e;
  EXPECT_NE(e.find("/nonexistent/AuthKey.p8"), std::string::npos) << e;

  e = check("apns-key-file = /x.p8\n");
  EXPECT_NE(e.find("apns-key-id"), std::string::npos) << e;

  e = check("apns-base-url = http://api.push.apple.com\n");
  EXPECT_NE(e.find("apns-base-url"), std::string::npos) << e;
  e = check("webhook-url = https://\n");
  EXPECT_NE(e.find("webhook-url"), std::string::npos) << e;
  e = check("ca-file = /nonexistent/ca.pem\n");
  EXPECT_NE(e.find("/nonexistent/ca.pem"), std::string::npos) << e;

  EVP_PKEY *rsa = EVP_RSA_gen(2048);
  const std::string rsa_file = tmp_file(pem_of(rsa));
  EVP_PKEY_free(rsa);
  e = check("apns-key-file = " + rsa_file + "\napns-key-id = K\napns-team-id = T\n");
  EXPECT_NE(e.find("not a P-256 key"), std::string::npos) << e;
  // The message names files, never what is in them.
  EXPECT_EQ(e.find("BEGIN"), std::string::npos);
  unlink(no_key.c_str());
  unlink(not_json.c_str());
  unlink(rsa_file.c_str());
}

}  // namespace
}  // namespace portier::push
