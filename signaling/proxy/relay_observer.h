// The media relay as the router's call observer: the SIP side of MediaRelay.
// It takes the SDP out of the messages the router forwards, has the relay
// point it at the relay's ports, and puts it back; everything about ports,
// streams and branches stays in MediaRelay, everything about transactions in
// the router.
#pragma once

#include "proxy/call_observer.h"

namespace portier::proxy {

class MediaRelay;

class RelayObserver : public CallObserver {
 public:
  explicit RelayObserver(MediaRelay &relay) : relay_(relay) {}

  Verdict on_fork(const Call &call, msg_t *invite, bool *watching) override;
  Verdict on_branch_request(const Call &call, size_t branch, msg_t *request) override;
  ResponseVerdict on_branch_response(const Call &call, size_t branch, int status,
                                     msg_t *response) override;
  void on_branch_end(const Call &call, size_t branch) override;
  Verdict on_dialog_offer(const Call &call, bool from_caller, msg_t *request,
                          bool *watching) override;
  Verdict on_dialog_answer(const Call &call, bool offer_from_caller, msg_t *response) override;
  void on_dialog_ack(const Call &call, bool from_caller, msg_t *ack) override;
  void on_end(const Call &call, const char *why) override;

 private:
  MediaRelay &relay_;
};

}  // namespace portier::proxy
