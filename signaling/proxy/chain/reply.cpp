#include "proxy/chain/reply.h"

#include <sofia-sip/nta_stateless.h>
#include <sofia-sip/nta_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_tag.h>
#include <sofia-sip/su_tagarg.h>

#include <cstring>

#include "sip/sip_message.h"

namespace portier::proxy {

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
    sipmsg::reply_stateless(agent_, request_, status, phrase, stateless_tag_,
                            TAG_IF(transport_, NTATAG_TPORT(transport_)), ta_tags(ta));
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
