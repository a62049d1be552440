#include "door/rtsp_config.h"

#include <map>

#include "common/auth/users_file.h"
#include "common/tls_files.h"

namespace portier::door {

void add_rtsp_schema(config::Schema &s) {
  s.boolean("rtsp", "enabled", false,
            "serve the live camera over RTSP for installation and debugging (digest "
            "authentication against users-file, never without it)")
      .str("rtsp", "address", "127.0.0.1", "address the RTSP server listens on")
      .integer("rtsp", "port", 8554, 1, 65535, "RTSP port")
      .str("rtsp", "path", "/door", "RTSP mount point: rtsp://ADDRESS:PORT/PATH")
      .str("rtsp", "users-file", "",
           "who may watch: the proxy's users file format (version:1, then "
           "'user@domain clrtxt:PASSWORD ;' lines); the RTSP user name is the part before "
           "'@'. Needed when enabled")
      .str("rtsp", "tls-certificates-file", "",
           "PEM certificate (chain) of the preview: set with tls-certificates-private-key, "
           "it is served as rtsps:// only (empty: rtsp://, in the clear)")
      .str("rtsp", "tls-certificates-private-key", "",
           "PEM private key of tls-certificates-file, unencrypted");
}

namespace {

// The users who may watch. Only clear-text secrets serve: gst-rtsp-server computes
// the digest from the password itself and takes no stored HA1 but from a file of
// its own format.
std::string read_users(const config::Config &cfg, RtspSettings *out) {
  const std::string &path = out->users_file;
  const std::string key = cfg.where("rtsp", "users-file");
  auth::UsersFile users;
  std::string error;
  if (!users.load(path, &error)) return key + error;
  std::map<size_t, std::pair<std::string, const auth::UsersFile::Entry *>> by_line;
  for (const auto &[key, entry] : users.entries()) by_line[entry.line] = {key, &entry};
  std::map<std::string, size_t> first_line;
  for (const auto &[line, item] : by_line) {
    const std::string name = item.first.substr(0, item.first.find('@'));
    const std::string here = key + path + ":" + std::to_string(line) + ": ";
    if (item.second->clrtxt.empty())
      return here + name + " has no clrtxt: secret, which the RTSP preview's digest needs";
    const auto [it, inserted] = first_line.emplace(name, line);
    if (!inserted)
      return here + "the RTSP user " + name + " is already at line " + std::to_string(it->second) +
             " (the RTSP user name is the part before '@')";
    out->users.push_back({name, item.second->clrtxt});
  }
  if (out->users.empty()) return key + path + ": no user in it";
  return "";
}

}  // namespace

std::string parse_rtsp_settings(const config::Config &cfg, RtspSettings *out) {
  RtspSettings r;
  r.enabled = cfg.get_bool("rtsp", "enabled");
  r.address = cfg.get_string("rtsp", "address");
  r.port = static_cast<int>(cfg.get_int("rtsp", "port"));
  r.path = cfg.get_string("rtsp", "path");
  r.users_file = cfg.get_string("rtsp", "users-file");
  r.tls_certificate = cfg.get_string("rtsp", "tls-certificates-file");
  r.tls_private_key = cfg.get_string("rtsp", "tls-certificates-private-key");
  if (r.path.empty() || r.path[0] != '/') return cfg.where("rtsp", "path") + "must start with /";
  if (r.tls_certificate.empty() != r.tls_private_key.empty()) {
    const char *set =
        r.tls_certificate.empty() ? "tls-certificates-private-key" : "tls-certificates-file";
    return cfg.where("rtsp", set) +
           "needs its partner: tls-certificates-file and tls-certificates-private-key go together";
  }
  if (r.enabled) {
    if (r.users_file.empty())
      return cfg.where("rtsp", "enabled") +
             "the preview needs [rtsp] users-file: it is never served without credentials";
    if (std::string problem = read_users(cfg, &r); !problem.empty()) return problem;
    std::string error;
    if (r.tls() && !check_tls_key_pair(r.tls_certificate, r.tls_private_key, &error))
      return cfg.where("rtsp", "tls-certificates-file") + error;
  }
  *out = std::move(r);
  return "";
}

}  // namespace portier::door
