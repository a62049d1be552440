#include "proxy/sip_body.h"

#include <sofia-sip/sip_header.h>
#include <strings.h>

namespace portier::proxy {

std::optional<std::string_view> sdp_body(const sip_t *sip) {
  if (!sip || !sip->sip_payload || !sip->sip_payload->pl_data || !sip->sip_content_type ||
      !sip->sip_content_type->c_type ||
      strcasecmp(sip->sip_content_type->c_type, "application/sdp") != 0)
    return std::nullopt;
  return std::string_view(sip->sip_payload->pl_data, sip->sip_payload->pl_len);
}

void replace_sdp(msg_t *msg, std::string_view sdp) {
  sip_t *sip = sip_object(msg);
  su_home_t *home = msg_home(msg);
  auto *pub = reinterpret_cast<msg_pub_t *>(sip);
  if (sip->sip_payload)
    msg_header_remove(msg, pub, reinterpret_cast<msg_header_t *>(sip->sip_payload));
  if (sip->sip_content_length)
    msg_header_remove(msg, pub, reinterpret_cast<msg_header_t *>(sip->sip_content_length));
  msg_header_insert(msg, pub,
                    reinterpret_cast<msg_header_t *>(
                        sip_payload_create(home, sdp.data(), static_cast<isize_t>(sdp.size()))));
  msg_header_insert(msg, pub,
                    reinterpret_cast<msg_header_t *>(
                        sip_content_length_create(home, static_cast<uint32_t>(sdp.size()))));
}

void remove_body(msg_t *msg) {
  sip_t *sip = sip_object(msg);
  auto *pub = reinterpret_cast<msg_pub_t *>(sip);
  for (msg_header_t *h : {reinterpret_cast<msg_header_t *>(sip->sip_payload),
                          reinterpret_cast<msg_header_t *>(sip->sip_content_type),
                          reinterpret_cast<msg_header_t *>(sip->sip_content_length)})
    if (h) msg_header_remove(msg, pub, h);
  msg_header_insert(msg, pub,
                    reinterpret_cast<msg_header_t *>(sip_content_length_create(msg_home(msg), 0)));
}

}  // namespace portier::proxy
