#include "proxy/chain/reply.h"

#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_tagarg.h>

#include <cstring>

namespace portier::proxy {

sip_to_t *tagged_to(msg_t *request, const char *tag) {
  const sip_t *req = sip_object(request);
  if (!tag || !req || !req->sip_to || req->sip_to->a_tag) return nullptr;
  sip_to_t *to = sip_to_dup(msg_home(request), req->sip_to);
  if (to && sip_to_tag(msg_home(request), to, tag) < 0) to = nullptr;
  return to;
}

void Reply::send(int status, char const *phrase, tag_type_t tag, tag_value_t value, ...) {
  ta_list ta;
  ta_start(ta, tag, value);
  status_ = status;
  phrase_ = phrase ? phrase : "";
  if (!agent_) {
    headers_.clear();
    for (const tagi_t *t = ta_args(ta); t; t = tl_next(t)) {
      if (t->t_tag && t->t_tag->tt_class == sipstrtag_class && t->t_value)
        headers_.emplace_back(t->t_tag->tt_name, reinterpret_cast<const char *>(t->t_value));
    }
  } else if (irq_) {
    nta_incoming_treply(irq_, status, phrase, ta_tags(ta));
  } else if (request_) {
    sip_to_t *to = status > 100 ? tagged_to(request_, stateless_tag_) : nullptr;
    // nta_msg_treply takes the message: give it a reference of its own.
    nta_msg_treply(agent_, msg_ref_create(request_), status, phrase, TAG_IF(to, SIPTAG_TO(to)),
                   ta_tags(ta));
  }
  ta_end(ta);
}

std::string Reply::header(const char *tag_name) const {
  for (const auto &[name, value] : headers_)
    if (name == tag_name) return value;
  return "";
}

nta_incoming_t *Reply::irq() {
  if (irq_ || !sip_ || created_ || !agent_) return irq_;
  created_ = true;
  // nta takes a reference of its own: the caller keeps (and frees) its own, and
  // msg stays valid whether or not the transaction could be made.
  irq_ = nta_incoming_create(agent_, nullptr, msg_ref_create(request_), sip_, TAG_END());
  return irq_;
}

}  // namespace portier::proxy
