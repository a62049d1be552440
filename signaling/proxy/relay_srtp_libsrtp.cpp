// libsrtp2 for the tests whose peers use it (the relay does not: see
// relay_srtp.cpp); built into portier_srtp_oracle, which only tests link.
#include <srtp2/srtp.h>

#include <mutex>

#include "proxy/relay_srtp.h"

namespace portier::proxy {

bool SrtpContext::init_library(std::string *error) {
  static std::once_flag once;
  static srtp_err_status_t status = srtp_err_status_ok;
  std::call_once(once, [] { status = srtp_init(); });
  if (status == srtp_err_status_ok) return true;
  *error = "libsrtp2 did not start (error " + std::to_string(status) + ")";
  return false;
}

}  // namespace portier::proxy
