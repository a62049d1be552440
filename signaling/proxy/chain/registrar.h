// REGISTER at the SIP edge (RFC 3261 §10.3): authenticate, turn the request into
// a RegisterRequest for the LocationStore, answer with every current binding.
// A 200 goes out only once the journal holds the change ("a 200 means the
// binding survives a crash"): until then the request is parked (Wait).
#pragma once

#include <cstdint>
#include <deque>
#include <string>

#include "common/event_writer.h"
#include "proxy/chain/digest_auth.h"
#include "proxy/chain/processor.h"
#include "proxy/local_names.h"
#include "proxy/location_persist.h"
#include "proxy/location_store.h"

namespace portier::proxy::chain {

class Registrar : public Processor {
 public:
  // auth: null when authentication is off.
  Registrar(const LocalNames &names, LocationStore &locations, LocationPersister &persister,
            DigestAuth *auth, events::Writer *events = nullptr)
      : names_(names), locations_(locations), persister_(&persister), auth_(auth), events_(events) {}
  Outcome process(RequestContext &ctx) override;
  const char *name() const override { return "registrar"; }

  // Sends the held 200s (or 500s, when the write failed) the journal now covers.
  void release_register_replies();
  // Forgets the replies still held (the proxy stops; they are never sent).
  void drop_held_replies() { held_replies_.clear(); }
  size_t held_replies() const { return held_replies_.size(); }

 private:
  Outcome handle_register(RequestContext &ctx);
  // The 200 to a REGISTER (contacts: its Contact value, may be empty): sent at
  // once when nothing is waiting for the disk, else held until the journal
  // holds every change made so far, this request's included.
  Outcome answer_register_ok(RequestContext &ctx, std::string contacts);

  const LocalNames &names_;
  LocationStore &locations_;
  LocationPersister *persister_;
  DigestAuth *auth_;
  events::Writer *events_;  // registered / unregistered lines; null: none
  struct HeldReply {
    ParkedRequest request;
    uint64_t seq;  // the journal write that must finish first
    std::string contacts;
  };
  std::deque<HeldReply> held_replies_;  // in seq order
  uint64_t committed_seq_ = 0;          // the last journal write finished
};

}  // namespace portier::proxy::chain
