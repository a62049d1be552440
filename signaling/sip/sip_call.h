// The one call leg portier-door and portier-monitor each carry, on nua,
// beside their sip::Account: the call's nua handle and its end (handed to
// the account, which destroys it once nua is done with it), the INVITE we
// send and its challenges (answered through the account, one counter per
// call), the INVITE we answer, re-INVITEs through the proxy, CANCEL, BYE,
// and who and where the other side is (Call-ID, its identity, its Contact).
// Where the call stands and which SDP answers which offer is the plain
// CallLeg (call_leg.h). The device keeps its policy: whom it answers, what
// its media is, what a call's end means to it (Hooks).
#pragma once

#include <sofia-sip/nua.h>

#include <functional>
#include <optional>
#include <string>

#include "sip/call_leg.h"
#include "sip/sip_account.h"

namespace portier::sip {

class Call {
 public:
  // How the call ended, when the other side or the network ended it.
  struct Ended {
    CallEnd why;
    CallState was;               // where the call stood
    int status = 0;              // rejected: the final response
    std::string phrase;          // ... and its reason phrase
    const sip_t *sip = nullptr;  // the BYE, the CANCEL, the response (may be null)
  };
  struct Hooks {
    // Our streams for an offer or an answer; `early` while an incoming call
    // rings (we only listen then). nullopt: no media (a re-INVITE without
    // media gets 200 without SDP).
    std::function<std::optional<sdp::LocalMedia>(bool early)> local;
    // Sets the media up as an offer/answer agreed.
    ApplyMedia media;
    // Our INVITE's first early answer was taken (`status`: the 18x's).
    std::function<void(int status)> early;
    // Our INVITE was answered: the 2xx, to tell who answered
    // (Account::proven_identity).
    std::function<void(const sip_t *sip)> answered;
    // The call is over (the handle is already released): the device's
    // clean-up. Not called when the device hangs up itself (hangup()).
    std::function<void(const Ended &)> ended;
  };

  Call(Account &account, const char *agent, Hooks hooks);
  Call(const Call &) = delete;
  Call &operator=(const Call &) = delete;

  CallState state() const { return leg_.state(); }
  bool incoming() const { return leg_.incoming(); }
  // The last call's Call-ID (an outgoing call's once the first response came).
  const std::string &call_id() const { return call_id_; }
  // The other side: the address we called, or the caller's proven identity.
  const std::string &remote() const { return remote_; }
  // Where our requests inside the call go: the peer's Contact (RFC 3261
  // §12.2.1.1), else its address.
  const std::string &remote_target() const {
    return remote_target_.empty() ? remote_ : remote_target_;
  }
  // The call's handle, for requests the device sends inside it (INFO);
  // null between calls.
  nua_handle_t *handle() const { return nh_; }
  bool owns(nua_handle_t *nh) const { return nh && nh == nh_; }

  // Calls `target` (RFC 3261 §13.2.1) with our offer (Hooks::local). False,
  // with *error, when a call is on or we have no media.
  bool dial(const std::string &target, std::string *error);
  // A new call's INVITE that the device's policy admits, from `who` (its
  // proven identity): its offer answered (Hooks::local, Hooks::media), in a
  // 180 and a 183 (early) or in the 200. False, with *error, when it cannot
  // be: the INVITE is still the device's to refuse (refuse()).
  bool accept(nua_handle_t *nh, const sip_t *sip, const std::string &who, bool early,
              std::string *error);
  // The call that rings here (early) answered with 200. False (*error) when
  // there is none or the media fails.
  bool answer(std::string *error);
  // An INVITE without an SDP offer is refused here (488): its offer would be
  // ours, in the 200 (RFC 3264 §4), and the devices that call a door or a
  // monitor offer. True when it was.
  bool refuse_offerless(nua_handle_t *nh, const sip_t *sip);
  // An INVITE we do not take: the final response (with a Warning when
  // `warning` is not empty), and its handle disposed of.
  void refuse(nua_handle_t *nh, int status, const char *phrase, const std::string &warning = "");
  // Ends the call from our side: CANCEL, BYE or 486 (CallLeg::hangup). The
  // device then does its own clean-up; Hooks::ended is not called.
  CallLeg::Hangup hangup();

  // A nua event of this call: true when it was (the device sees the rest,
  // INFO inside the call too).
  bool handle(nua_event_t event, int status, const char *phrase, nua_handle_t *nh, const sip_t *sip,
              tagi_t *tags);

 private:
  void on_response(int status, const char *phrase, const sip_t *sip);
  void on_reinvite(const sip_t *sip);
  void end(CallEnd why, CallState was, int status, const char *phrase, const sip_t *sip);
  void release();
  ApplyMedia media() const;

  // Our Contact in the call: the account's dialog contact (no push token),
  // else nua's (Account::dialog_contact).
  const std::string &contact() const { return account_.dialog_contact(); }
  Account &account_;
  const char *agent_;  // "door": log prefix and Warning agent
  Hooks hooks_;
  CallLeg leg_;
  nua_handle_t *nh_ = nullptr;
  std::string call_id_;
  std::string remote_;
  std::string remote_target_;
};

}  // namespace portier::sip
