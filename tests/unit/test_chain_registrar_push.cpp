// The registrar and RFC 8599: pn-provider / pn-prid / pn-param (and the legacy
// Linphone pn-type / app-id / pn-tok) on a Contact URI are stored with the
// binding, journalled, kept out of the stored contact, and a provider the
// proxy cannot push to is refused with 555 (RFC 8599 §5.6.1.1).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "chain_test_util.h"
#include "proxy/chain/registrar.h"

namespace portier::proxy::chain {
namespace {

using testing::Request;
using testing::request_text;

class RegistrarPush : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/portier-regpush-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    persister_ = std::make_unique<LocationPersister>(dir_ + "/registrations");
    registrar_ = std::make_unique<Registrar>(names_, locations_, *persister_, nullptr);
    push_.enabled = true;
    ServiceAccount account;
    account.project_id = "door-app";
    push_.service_accounts.push_back(account);
    // Certificate auth: apns and apns.dev are served; no webhook.
    push_.apns_certificate_file = "/nonexistent/apns.pem";
    registrar_->set_push(&push_);
  }
  void TearDown() override {
    registrar_->drop_held_replies();
    persister_->drain();
    persister_.reset();
    std::filesystem::remove_all(dir_);
  }

  // A REGISTER of alice with one Contact (URI and header parameters as given);
  // its status (0 when the 200 is held for the journal) and the outcome.
  int register_contact(const std::string &contact, const std::string &call_id = "reg-1") {
    Request r(request_text("REGISTER", "sip:home.example",
                           "To: <sip:alice@home.example>\r\nContact: " + contact +
                               "\r\nCall-ID: " + call_id + "\r\n"));
    EXPECT_NE(r.msg, nullptr);
    const Outcome out = registrar_->process(r.ctx);
    if (out == Outcome::Wait) return 0;
    phrase_ = r.reply.phrase();
    return r.reply.status();
  }
  std::vector<Binding> bindings() const {
    auto it = locations_.records().find("sip:alice@home.example");
    return it == locations_.records().end() ? std::vector<Binding>{} : it->second;
  }

  using ServiceAccount = push::ServiceAccount;
  std::string dir_;
  LocalNames names_ = testing::test_names();
  LocationStore locations_;
  std::unique_ptr<LocationPersister> persister_;
  std::unique_ptr<Registrar> registrar_;
  push::PushSettings push_;
  std::string phrase_;
};

// RFC 8599 §4.1.1: the three parameters on the Contact URI. Stored with the
// binding, the contact itself without them (the device token stays out of
// listings and of the Request-URI of the calls), and journalled: a restart
// still knows how to wake the phone.
TEST_F(RegistrarPush, Rfc8599ParametersAreStoredApartFromTheContactAndJournalled) {
  EXPECT_EQ(register_contact("<sip:alice@192.0.2.10:5062;transport=tcp;pn-provider=fcm;"
                             "pn-prid=dQw4w9:APA91b-x_y;pn-param=door-app>;expires=600"),
            0);  // held until the journal has it
  std::vector<Binding> b = bindings();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].contact, "sip:alice@192.0.2.10:5062;transport=tcp");
  EXPECT_EQ(b[0].push.provider, "fcm");
  EXPECT_EQ(b[0].push.prid, "dQw4w9:APA91b-x_y");
  EXPECT_EQ(b[0].push.param, "door-app");

  persister_->drain();
  LocationStore loaded;
  std::string error;
  ASSERT_TRUE(LocationPersister(dir_ + "/registrations").load(loaded, 0, &error)) << error;
  ASSERT_EQ(loaded.binding_count(), 1u);
  EXPECT_TRUE(loaded.records().begin()->second[0].push == b[0].push);
}

// A token the app was given anew (FCM rotates them) refreshes the binding
// rather than adding a second one that would be pushed with the dead token;
// a refresh without parameters means the app stopped asking for pushes.
TEST_F(RegistrarPush, ANewTokenRefreshesTheBindingAndNoneClearsIt) {
  register_contact(
      "<sip:alice@192.0.2.10:5062;pn-provider=apns.dev;pn-prid=00aa11;"
      "pn-param=TEAM.org.example.door.voip>",
      "c1");
  register_contact(
      "<sip:alice@192.0.2.10:5062;pn-provider=apns.dev;pn-prid=22bb33;"
      "pn-param=TEAM.org.example.door.voip>",
      "c2");
  std::vector<Binding> b = bindings();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].push.prid, "22bb33");
  EXPECT_EQ(b[0].push.provider, "apns.dev");
  register_contact("<sip:alice@192.0.2.10:5062>", "c3");
  b = bindings();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_TRUE(b[0].push.empty());
}

// RFC 8599 §5.6.1.1: a provider the proxy cannot push to, or a contact that lacks
// what the provider needs, gets 555 and changes nothing.
TEST_F(RegistrarPush, AnUnservedProviderOrAMissingTokenIs555) {
  const char *const contacts[] = {
      // no webhook-url: nothing serves webpush
      "<sip:alice@192.0.2.10:5062;pn-provider=webpush;pn-prid=https://push.example/x>",
      // no service account for this project (RFC 8599 §11: pn-param is the project)
      "<sip:alice@192.0.2.10:5062;pn-provider=fcm;pn-prid=tok;pn-param=someone-else>",
      // no device token
      "<sip:alice@192.0.2.10:5062;pn-provider=fcm;pn-param=door-app>",
  };
  for (const char *contact : contacts) {
    SCOPED_TRACE(contact);
    EXPECT_EQ(register_contact(contact), 555);
    EXPECT_EQ(phrase_, "Push Notification Service Not Supported");
    EXPECT_TRUE(bindings().empty());
  }
  // Unregistering is never refused for its push parameters.
  EXPECT_EQ(register_contact("<sip:alice@192.0.2.10:5062;pn-provider=webpush;pn-prid=x>;expires=0"),
            200);
}

// The legacy Linphone parameters map as Flexisip maps them; an app that sends
// them knows no 555, so a type the proxy cannot serve registers without push.
TEST_F(RegistrarPush, LegacyLinphoneParametersMapOrRegisterWithoutPush) {
  register_contact("<sip:alice@192.0.2.10:5062;pn-type=firebase;app-id=door-app;pn-tok=tok-1>",
                   "c1");
  std::vector<Binding> b = bindings();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].contact, "sip:alice@192.0.2.10:5062");
  EXPECT_EQ(b[0].push.provider, "fcm");
  EXPECT_EQ(b[0].push.param, "door-app");
  EXPECT_EQ(b[0].push.prid, "tok-1");

  EXPECT_EQ(register_contact("<sip:alice@192.0.2.10:5062;pn-type=firebase;app-id=other-app;"
                             "pn-tok=tok-2>",
                             "c2"),
            0);
  b = bindings();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_TRUE(b[0].push.empty());
}

// Without [module::PushNotification] the proxy is a registrar that does not
// know RFC 8599: the parameters are ignored (no 555 for an app whose push is
// on by default), and the token is still not kept in the contact.
TEST_F(RegistrarPush, WithPushDisabledTheParametersAreIgnored) {
  registrar_->set_push(nullptr);
  EXPECT_EQ(register_contact("<sip:alice@192.0.2.10:5062;pn-provider=webpush;pn-prid=secret>"), 0);
  std::vector<Binding> b = bindings();
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].contact, "sip:alice@192.0.2.10:5062");
  EXPECT_TRUE(b[0].push.empty());
}

// Bad input from the network is a 400, never stored: a value with a control
// byte, a quote or a space (it would go into JSON and HTTP paths), and a
// token longer than any provider's. (A broken escape, "a%2", never gets here:
// sofia-sip refuses the Contact.)
TEST_F(RegistrarPush, BadParameterValuesAre400) {
  const std::string contacts[] = {
      "<sip:alice@192.0.2.10:5062;pn-provider=fcm;pn-prid=a%00b;pn-param=door-app>",
      "<sip:alice@192.0.2.10:5062;pn-provider=fcm;pn-prid=a%22b;pn-param=door-app>",
      "<sip:alice@192.0.2.10:5062;pn-provider=fcm;pn-prid=a%20b;pn-param=door-app>",
      "<sip:alice@192.0.2.10:5062;pn-provider=fcm;pn-prid=" + std::string(1100, 'a') +
          ";pn-param=door-app>",
  };
  for (const std::string &contact : contacts) {
    SCOPED_TRACE(contact.substr(0, 80));
    EXPECT_EQ(register_contact(contact), 400);
    EXPECT_EQ(phrase_.rfind("Bad pn-", 0), 0u) << phrase_;
    EXPECT_TRUE(bindings().empty());
  }
  // %HH escapes are decoded (RFC 3261 §19.1.2).
  register_contact("<sip:alice@192.0.2.10:5062;pn-provider=FCM;pn-prid=a%3Ab;pn-param=door-app>");
  ASSERT_EQ(bindings().size(), 1u);
  EXPECT_EQ(bindings()[0].push.prid, "a:b");
  EXPECT_EQ(bindings()[0].push.provider, "fcm");
}

// Fork-late: every binding a REGISTER adds or refreshes is handed on at once
// (a ringing call takes it as a branch); a removal or a refused REGISTER is not.
TEST_F(RegistrarPush, EveryWrittenBindingIsHandedOnForLateBranches) {
  std::vector<std::pair<std::string, Binding>> seen;
  registrar_->set_on_registered(
      [&](const std::string &aor, const Binding &b) { seen.emplace_back(aor, b); });
  register_contact(
      "<sip:alice@192.0.2.10:5062;pn-provider=fcm;pn-prid=t1;pn-param=door-app>"
      ";+sip.instance=\"<urn:uuid:1>\"",
      "c1");
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].first, "sip:alice@home.example");
  EXPECT_EQ(seen[0].second.contact, "sip:alice@192.0.2.10:5062");
  EXPECT_EQ(seen[0].second.instance, "<urn:uuid:1>");
  EXPECT_EQ(seen[0].second.push.prid, "t1");
  // The phone woke up elsewhere: the new address is handed on.
  register_contact(
      "<sip:alice@192.0.2.99:6000;pn-provider=fcm;pn-prid=t1;pn-param=door-app>"
      ";+sip.instance=\"<urn:uuid:1>\"",
      "c2");
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].second.contact, "sip:alice@192.0.2.99:6000");
  EXPECT_EQ(register_contact("<sip:alice@192.0.2.10:5062;pn-provider=webpush;pn-prid=x>"), 555);
  register_contact("<sip:alice@192.0.2.99:6000>;expires=0", "c3");
  EXPECT_EQ(seen.size(), 2u);
}

TEST(RegistrarPushParams, SplitKeepsTheOtherParametersInOrder) {
  ContactPushParams p = split_push_params(
      "transport=tcp;pn-provider=apns;pn-msg-str=IM_MSG;ob;PN-PRID=00ff;"
      "app-id=x;pn-param=T.b;maddr=192.0.2.1");
  EXPECT_TRUE(p.error.empty());
  EXPECT_TRUE(p.rfc8599);
  EXPECT_EQ(p.other_params, "transport=tcp;ob;maddr=192.0.2.1");
  EXPECT_EQ(p.push.provider, "apns");
  EXPECT_EQ(p.push.prid, "00ff");
  EXPECT_EQ(p.push.param, "T.b");
  EXPECT_TRUE(split_push_params(nullptr).push.empty());
  EXPECT_TRUE(split_push_params("transport=udp").push.empty());
}

// RFC 8599 §5.4: a separate Feature-Caps header field per type of PNS.
TEST(RegistrarPushParams, FeatureCapsNamesEachProviderInAHeaderOfItsOwn) {
  EXPECT_EQ(push_feature_caps({}), "");
  EXPECT_EQ(push_feature_caps({"fcm"}), "Feature-Caps: *;+sip.pns=\"fcm\"");
  EXPECT_EQ(push_feature_caps({"apns", "fcm"}),
            "Feature-Caps: *;+sip.pns=\"apns\"\r\nFeature-Caps: *;+sip.pns=\"fcm\"");
}

}  // namespace
}  // namespace portier::proxy::chain
