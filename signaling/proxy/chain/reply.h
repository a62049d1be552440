// Where the answer to a request goes: the thin sofia-sip edge every processor of
// the request chain answers through.
#pragma once

#include <string>
#include <utility>
#include <vector>

// sofia-sip through proxy/sofia.h, which sets the proxy's magic types.
#include "proxy/sofia.h"
// After it: tport_t.
#include <sofia-sip/tport.h>

namespace portier::proxy {

// Where the answer to a request goes: its server transaction when it has one,
// or straight back by its Via (RFC 3261 §18.2.2). Every request starts without
// one: a challenge, a refusal or an answer of the proxy's own goes out
// statelessly, so a flood of unauthenticated INVITEs keeps no state for 32 s
// (timer H) per request. Only forwarding needs a transaction: irq() creates it
// then, when the Reply was given the parsed request (`sip`); REGISTER, ACK and
// CANCEL never get one.
//
// A Reply without an agent sends nothing and keeps what would have been sent
// (status(), phrase(), header()): the request chain's decisions are tested that
// way, without a socket.
class Reply {
 public:
  // created: irq was made for this request and is ours to hand back (see created()).
  Reply(nta_agent_t *agent, nta_incoming_t *irq, msg_t *request, sip_t *sip = nullptr,
        bool created = false)
      : agent_(agent), irq_(irq), request_(request), sip_(sip), created_(created) {}
  void send(int status, char const *phrase, tag_type_t tag, tag_value_t value, ...);
  // The server transaction, created on first use (nullptr when none may be, or
  // when nta cannot create it).
  nta_incoming_t *irq();
  // The transaction irq() created, if any (the caller hands it back to nta when
  // the router did not keep it).
  nta_incoming_t *created() const { return created_ ? irq_ : nullptr; }
  // The created transaction is someone else's to hand back now (a parked request's).
  void hand_over() { created_ = false; }
  // The To tag of the answers sent without a transaction (one per run: RFC 3261
  // §8.2.7 wants the same tag for a retransmitted request), so that the ACK of a
  // stateless 407 is known for ours and absorbed, not forwarded.
  void set_stateless_tag(const char *tag) { stateless_tag_ = tag; }
  const char *stateless_tag() const { return stateless_tag_; }
  nta_agent_t *agent() const { return agent_; }
  // The transport a stateless answer leaves by (null: nta finds it, see
  // ParkedRequest::transport_).
  void set_transport(tport_t *tp) { transport_ = tp; }
  // Whether irq() may create a transaction.
  bool may_keep() const { return sip_ != nullptr; }

  // The last answer sent (0: none yet).
  int status() const { return status_; }
  const std::string &phrase() const { return phrase_; }
  // A string header of the last answer as given to send (SIPTAG_*_STR) by its
  // tag name ("unsupported_str"); recorded only without an agent.
  std::string header(const char *tag_name) const;

 private:
  nta_agent_t *agent_;
  nta_incoming_t *irq_;
  msg_t *request_;
  sip_t *sip_;
  bool created_ = false;
  const char *stateless_tag_ = nullptr;
  tport_t *transport_ = nullptr;
  int status_ = 0;
  std::string phrase_;
  std::vector<std::pair<std::string, std::string>> headers_;
};

}  // namespace portier::proxy
