// REGISTER at the SIP edge (RFC 3261 §10.3): authenticate, turn the request into
// a RegisterRequest for the LocationStore, answer with every current binding.
// A 200 goes out only once the journal holds the change ("a 200 means the
// binding survives a crash"): until then the request is parked (Wait).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "common/event_writer.h"
#include "proxy/chain/digest_auth.h"
#include "proxy/chain/processor.h"
#include "proxy/house_domains.h"
#include "proxy/local_names.h"
#include "proxy/location_persist.h"
#include "proxy/location_store.h"
#include "push/push_config.h"

namespace portier::proxy::chain {

// The push parameters of one Contact URI's parameters (RFC 8599 §4.1.1, or the
// legacy Linphone pn-type/app-id/pn-tok), and the URI parameters without them:
// the registrar stores the device token apart from the contact, so it stays
// out of logs, listings and the Request-URI of forwarded requests, and a
// device whose token changed refreshes its binding rather than adding one.
struct ContactPushParams {
  PushTarget push;
  bool rfc8599 = false;      // pn-provider was given (a legacy set is not)
  std::string other_params;  // the URI parameters that are not push ones
  std::string error;         // non-empty: a bad value (400)
};
ContactPushParams split_push_params(const char *url_params);

// The Feature-Caps header lines (CRLF between them) of a 200 to a REGISTER
// whose contacts asked for pushes through `providers`: one line per provider
// (RFC 8599 §5.4, §8.2; RFC 6809: "*;+sip.pns=..."); empty when none.
std::string push_feature_caps(const std::vector<std::string> &providers);

class Registrar : public Processor {
 public:
  // auth: null when authentication is off.
  Registrar(const LocalNames &names, LocationStore &locations, LocationPersister &persister,
            DigestAuth *auth, events::Writer *events = nullptr)
      : names_(names), locations_(locations), persister_(&persister), auth_(auth), events_(events) {}
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "registrar"; }

  // RFC 8599: which push providers the proxy can send to; null (the default)
  // while [module::PushNotification] is disabled, and then pn-* parameters are
  // ignored as by a registrar that does not know RFC 8599.
  void set_push(const push::PushSettings *push) { push_ = push; }
  // Whole-domain registrations (house_domains.h); null (the default): off.
  void set_house_domains(HouseDomains *house) { house_domains_ = house; }
  // Called for every binding a REGISTER added or refreshed (not removed), as
  // soon as the store holds it: a call ringing the AOR takes it as a late
  // branch (Router::on_registered).
  using OnRegistered = std::function<void(const std::string &aor, const Binding &binding)>;
  void set_on_registered(OnRegistered f) { on_registered_ = std::move(f); }

  // Sends the held 200s (or 500s, when the write failed) the journal now covers.
  void release_register_replies();
  // Forgets the replies still held (the proxy stops; they are never sent).
  void drop_held_replies() { held_replies_.clear(); }
  size_t held_replies() const { return held_replies_.size(); }

 private:
  Outcome handle_register(RequestContext &ctx);
  // A domain registration's proof: TLS, and a client certificate naming the
  // domain or its digest; false once it has answered (401/403).
  bool authorize_house(RequestContext &ctx);
  // The 200 to a REGISTER (contacts: its Contact value, may be empty): sent at
  // once when nothing is waiting for the disk, else held until the journal
  // holds every change made so far, this request's included.
  Outcome answer_register_ok(RequestContext &ctx, std::string contacts, std::string feature_caps);

  const LocalNames &names_;
  LocationStore &locations_;
  LocationPersister *persister_;
  DigestAuth *auth_;
  events::Writer *events_;  // registered / unregistered lines; null: none
  const push::PushSettings *push_ = nullptr;
  HouseDomains *house_domains_ = nullptr;
  OnRegistered on_registered_;
  struct HeldReply {
    ParkedRequest request;
    uint64_t seq;  // the journal write that must finish first
    std::string contacts;
    std::string feature_caps;
  };
  std::deque<HeldReply> held_replies_;  // in seq order
  uint64_t committed_seq_ = 0;          // the last journal write finished
};

}  // namespace portier::proxy::chain
