#include "sip/call_leg.h"

namespace portier::sip {

const char *call_state_name(CallState s) {
  switch (s) {
    case CallState::Idle:
      return "idle";
    case CallState::Calling:
      return "calling";
    case CallState::Ringing:
      return "ringing";
    case CallState::Early:
      return "early";
    case CallState::Answered:
      return "answered";
    case CallState::Ended:
      return "ended";
  }
  return "?";
}

bool in_call(CallState s) {
  return s == CallState::Calling || s == CallState::Ringing || s == CallState::Early ||
         s == CallState::Answered;
}

void CallLeg::start(bool incoming, uint64_t session_id) {
  incoming_ = incoming;
  auth_tries_ = 0;
  resent_ = false;
  session_id_ = session_id;
  version_ = 0;
  offered_ = {};
  remote_offer_.clear();
  early_answer_.clear();
}

// Every offer or answer of ours in the session is a new version of the same
// session (RFC 3264 §8).
sdp::LocalMedia CallLeg::stamp(sdp::LocalMedia ours) const {
  ours.session_id = session_id_;
  ours.version = version_;
  return ours;
}

std::optional<std::string> CallLeg::dial(sdp::LocalMedia ours, uint64_t session_id) {
  if (in_call(state_)) return std::nullopt;
  start(false, session_id);
  ++version_;
  offered_ = stamp(std::move(ours));
  state_ = CallState::Calling;
  return sdp::write_offer(offered_);
}

CallLeg::Response CallLeg::on_response(int status, std::string_view answer, const ApplyMedia &media,
                                       std::string *error) {
  // Once answered, a 2xx is another branch's or a repeat: the first one made
  // the call (and proved who answered it).
  if (incoming_ || (state_ != CallState::Calling && state_ != CallState::Early))
    return Response::nothing;
  if (status == 401 || status == 407) return Response::challenged;
  if (status < 101) return Response::nothing;
  if (status >= 300) {
    state_ = CallState::Ended;
    return Response::rejected;
  }
  const bool final = status >= 200;
  bool taken = false;
  if (!answer.empty()) {
    if (!final && answer == early_answer_) {
      taken = true;
    } else if (auto agreed = sdp::apply_answer(offered_, answer, error)) {
      taken = media(*agreed, error);
      if (taken && !final) early_answer_ = answer;
    }
  }
  if (final) {
    state_ = CallState::Answered;
    return Response::answered;
  }
  if (taken && state_ == CallState::Calling) {
    state_ = CallState::Early;
    return Response::early;
  }
  return Response::nothing;
}

std::optional<std::string> CallLeg::accept(std::string_view offer, sdp::LocalMedia ours,
                                           uint64_t session_id, bool early, const ApplyMedia &media,
                                           std::string *error) {
  if (in_call(state_)) {
    *error = "busy";
    return std::nullopt;
  }
  ours.session_id = session_id;
  ours.version = 1;
  auto ans = sdp::answer_offer(offer, ours, error);
  if (!ans || !media(ans->streams, error)) return std::nullopt;
  start(true, session_id);
  version_ = 1;
  remote_offer_ = std::string(offer);
  state_ = early ? CallState::Ringing : CallState::Answered;
  return std::move(ans->sdp);
}

void CallLeg::early_answer_sent() {
  if (incoming_ && state_ == CallState::Ringing) state_ = CallState::Early;
}

std::optional<std::string> CallLeg::answer(sdp::LocalMedia ours, const ApplyMedia &media,
                                           std::string *error) {
  if (!incoming_ || (state_ != CallState::Ringing && state_ != CallState::Early)) {
    *error = std::string("nothing to answer (") + call_state_name(state_) + ")";
    return std::nullopt;
  }
  ++version_;
  auto ans = sdp::answer_offer(remote_offer_, stamp(std::move(ours)), error);
  if (!ans || !media(ans->streams, error)) return std::nullopt;
  state_ = CallState::Answered;
  return std::move(ans->sdp);
}

std::optional<std::string> CallLeg::answer_reoffer(std::string_view offer, sdp::LocalMedia ours,
                                                   const ApplyMedia &media, std::string *error) {
  if (!in_call(state_)) {
    *error = "no call";
    return std::nullopt;
  }
  ++version_;
  auto ans = sdp::answer_offer(offer, stamp(std::move(ours)), error);
  if (!ans || !media(ans->streams, error)) return std::nullopt;
  return std::move(ans->sdp);
}

CallLeg::Hangup CallLeg::hangup() {
  Hangup how = Hangup::none;
  switch (state_) {
    case CallState::Calling:
      how = Hangup::cancel;
      break;
    case CallState::Ringing:
    case CallState::Early:
      how = incoming_ ? Hangup::decline : Hangup::cancel;
      break;
    case CallState::Answered:
      how = Hangup::bye;
      break;
    case CallState::Idle:
    case CallState::Ended:
      return Hangup::none;
  }
  state_ = CallState::Ended;
  return how;
}

bool CallLeg::ended(CallEnd why) {
  if (why == CallEnd::terminated && resent_) {
    resent_ = false;
    return false;
  }
  if (!in_call(state_)) return false;
  state_ = CallState::Ended;
  return true;
}

}  // namespace portier::sip
