// Where one call leg of portier-door or portier-monitor stands, and its SDP
// offer/answer bookkeeping, in plain C++: the INVITE we send (RFC 3261
// §13.2) or answer (§13.3), the re-INVITEs inside it (§14), how it ends
// (§15), and which offer each answer belongs to (RFC 3264). sip::Call
// (sip_call.h) feeds it what nua reports and sends what it decides; the unit
// tests feed it the same without a socket.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sip/sdp/offer_answer.h"

namespace portier::sip {

enum class CallState {
  Idle,      // no call yet
  Calling,   // our INVITE is on its way
  Ringing,   // an INVITE came in, 180 sent
  Early,     // an early answer: ours in a 183, or the callee's to our offer (RFC 3960)
  Answered,  // 200 sent (incoming) or received (outgoing)
  Ended,     // the last call is over
};
const char *call_state_name(CallState s);
// Calling, Ringing, Early or Answered.
bool in_call(CallState s);

// Why the other side or the network ended the call.
enum class CallEnd {
  bye,              // the peer's BYE (RFC 3261 §15.1.2)
  cancel,           // the caller's CANCEL of an INVITE we had not answered (§9.2)
  rejected,         // a final non-2xx to our INVITE (§13.2.2.3)
  unauthenticated,  // its 401/407 could not be answered (sip::Account::credentials)
  terminated,       // nua ended the dialog (a timeout, a transport error)
};

// Sets the media up as agreed; false, with *error, when it cannot.
using ApplyMedia = std::function<bool(const std::vector<sdp::Agreed> &, std::string *error)>;

class CallLeg {
 public:
  CallState state() const { return state_; }
  bool incoming() const { return incoming_; }

  // Our INVITE for a new call: the text of our offer `ours`, stamped with
  // the new session's o= id and first version (RFC 3264 §5). nullopt when a
  // call is on.
  std::optional<std::string> dial(sdp::LocalMedia ours, uint64_t session_id);
  // The offer our INVITE carries again, with credentials (RFC 3261 §22.2).
  std::string offer() const { return sdp::write_offer(offered_); }

  // What a response to our INVITE did (RFC 3261 §13.2.2).
  enum class Response {
    nothing,     // a 100, a 1xx without a usable answer, a repeated 18x or 2xx
    challenged,  // 401/407: answer it and send the INVITE again (§22.2)
    early,       // the first early answer was taken: Early
    answered,    // a 2xx: Answered
    rejected,    // a final non-2xx: Ended
  };
  // `answer`: the response's SDP ("" when it has none). A new answer to our
  // offer goes to `media` (RFC 3264 §5: an answer in an 18x, then in the 2xx;
  // not again an 18x that repeats the last one); an unusable one is ignored,
  // with *error saying why, and the call goes on.
  Response on_response(int status, std::string_view answer, const ApplyMedia &media,
                       std::string *error);
  // The challenged INVITE was sent again: nua's end of the first one is not
  // the call's (terminated()).
  void resent() { resent_ = true; }
  // Challenges answered for this call's INVITE (sip::Account::credentials).
  int *auth_tries() { return &auth_tries_; }

  // An INVITE for a new call: our answer to its offer (RFC 3264 §6), from
  // `ours` (its session's first version), set up by `media`. Early: we ring
  // with it (Ringing; early_answer_sent() once it went in a 183), else it is
  // the 200 (Answered). nullopt, with *error, when the offer cannot be
  // answered or the media not set up: nothing changes, the INVITE is the
  // device's to refuse. Also nullopt when a call is on.
  std::optional<std::string> accept(std::string_view offer, sdp::LocalMedia ours,
                                    uint64_t session_id, bool early, const ApplyMedia &media,
                                    std::string *error);
  void early_answer_sent();
  // The ringing call answered: the same offer answered again, now from
  // `ours` (sendrecv), as the session's next version (RFC 3264 §8), for the
  // 200. nullopt (*error) when it is not ringing here or the media fails.
  std::optional<std::string> answer(sdp::LocalMedia ours, const ApplyMedia &media,
                                    std::string *error);
  // A re-INVITE's offer inside the call (RFC 3261 §14.2): our answer from
  // `ours`, the session's next version. nullopt (*error): refuse it (488).
  std::optional<std::string> answer_reoffer(std::string_view offer, sdp::LocalMedia ours,
                                            const ApplyMedia &media, std::string *error);

  // How we end the call now (RFC 3261 §15): CANCEL our INVITE until it is
  // answered (§9.1), BYE once it is, and a final response to an INVITE that
  // rings here: 486, not 603, which would end every other device's ringing
  // too (§16.7 step 5).
  enum class Hangup { none, cancel, bye, decline };
  Hangup hangup();
  // The other side or the network ended it: true when that ended our call
  // (false: no call, or the challenged INVITE's own end, see resent()).
  bool ended(CallEnd why);

 private:
  void start(bool incoming, uint64_t session_id);
  sdp::LocalMedia stamp(sdp::LocalMedia ours) const;

  CallState state_ = CallState::Idle;
  bool incoming_ = false;
  int auth_tries_ = 0;
  bool resent_ = false;
  // Offer/answer: our o= line (RFC 3264 §5, §8), what we offered, what the
  // caller offered, and the last early answer to our offer.
  uint64_t session_id_ = 0, version_ = 0;
  sdp::LocalMedia offered_;
  std::string remote_offer_;
  std::string early_answer_;
};

}  // namespace portier::sip
