// portier-door's [rtsp] section: the preview's schema, its checks and its typed
// settings. The preview is never served without credentials: enabled, it needs a
// users file (the proxy's format, common/auth/users_file.h) with at least one
// user, and takes a TLS certificate and key for rtsps://.
//
//   [rtsp]
//   enabled = true
//   users-file = /etc/portier/rtsp-users.conf    # version:1, then lines such as
//                                                # installer@home.example clrtxt:PW ;
//   tls-certificates-file = /etc/portier/tls/door.crt
//   tls-certificates-private-key = /etc/portier/tls/door.key
//
// Passwords are secrets: no error message here quotes one.
#pragma once

#include <string>
#include <vector>

#include "common/config.h"

namespace portier::door {

struct RtspUser {
  std::string name;  // the RTSP user name: the entry's part before '@'
  std::string password;
};

struct RtspSettings {
  bool enabled = false;
  std::string address = "127.0.0.1";
  int port = 8554;
  std::string path = "/door";
  std::string users_file;
  std::vector<RtspUser> users;                   // read from users_file when enabled
  std::string tls_certificate, tls_private_key;  // both or neither

  bool tls() const { return !tls_certificate.empty(); }
};

void add_rtsp_schema(config::Schema &s);
// "" and *out filled, or the first problem: a config key's "FILE:LINE: [rtsp] key: ",
// or the users file's or a TLS file's own name (and line) first.
std::string parse_rtsp_settings(const config::Config &cfg, RtspSettings *out);

}  // namespace portier::door
