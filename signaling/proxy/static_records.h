// Static records (Flexisip's format): each line maps an alias to a list of AORs,
//   <sip:door-group@home.example> <sip:mon1@home.example>,<sip:mon2@home.example>
// '#' comments and blank lines are ignored. A cloud proxy serving one domain per
// house writes one line for all of them:
//   <sip:door-group@*> <sip:mon1@*>,<sip:mon2@*>
// is door-group in every served domain, ringing that domain's mon1 and mon2.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace portier::proxy {

class StaticRecords {
 public:
  // false with "FILE:LINE: message" in *error on a malformed line.
  bool load(const std::string &path, std::string *error);
  bool load_from_string(std::string_view text, const std::string &name, std::string *error);
  // Targets of an alias (normalized AORs, never empty), nullptr when the alias is
  // unknown. `aor` must be normalized (normalize_aor).
  const std::vector<std::string> *find(const std::string &aor) const;
  // The targets of a sip:USER@* alias in `domain` (lower-case; the caller
  // checked it is served) into *out; false when there is no such alias.
  bool find_in_domain(std::string_view user, std::string_view domain,
                      std::vector<std::string> *out) const;
  size_t size() const { return map_.size(); }

 private:
  std::map<std::string, std::vector<std::string>> map_;
};

}  // namespace portier::proxy
