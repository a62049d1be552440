// The users file, in Flexisip's text format:
//   version:1
//   alice@home.example clrtxt:secret ;
//   bob@home.example md5:<HA1> sha256:<HA1> ;
// Lines starting with '#' and blank lines are ignored. Anything after the ';'
// (Flexisip's phone alias) is ignored. A stored HA1 is only usable with the realm
// it was computed for, which Flexisip takes to be the user's domain.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "common/auth/digest.h"

namespace portier::auth {

class UsersFile {
 public:
  struct Entry {
    std::string clrtxt;      // empty when not given
    std::string md5_ha1;     // lower-case hex, empty when not given
    std::string sha256_ha1;  // lower-case hex, empty when not given
    size_t line = 0;         // where it is in the file, for the errors of other readers
    // The HA1s of clrtxt for the bare user name, by algorithm (MD5, SHA-256),
    // computed on first use: a hash fewer per authenticated request and per
    // identity proof. `realm` is the spelling they were computed with.
    struct Derived {
      std::string realm, ha1;
    };
    mutable Derived derived[2];
  };

  // Parses the file; on error returns false and sets *error to
  // "FILE:LINE: message" (the password itself is never part of the message).
  bool load(const std::string &path, std::string *error);
  bool load_from_string(std::string_view text, const std::string &name, std::string *error);

  // HA1 for user@domain under realm with algorithm a, or nullopt when the user is
  // unknown or has no usable secret for this algorithm/realm.
  // user is the digest username as the client sent it: a full AOR ("alice@home.example")
  // finds its entry by the part before '@' and is hashed whole, so only clrtxt serves it.
  // Fills the entry's Derived cache: one thread at a time.
  std::optional<std::string> ha1(std::string_view user, std::string_view domain,
                                 std::string_view realm, Algorithm a) const;
  bool has_user(std::string_view user, std::string_view domain) const;
  size_t size() const { return users_.size(); }
  // Every domain some user belongs to (lower-case): what "*" stands for in the
  // proxy's reg-domains and auth-domains. Walks every entry: for a load.
  std::unordered_set<std::string> domains() const;
  // Every entry by "user@domain" (domain lower-case), for readers other than the
  // SIP digest (the door's RTSP preview).
  const std::unordered_map<std::string, Entry> &entries() const { return users_; }

 private:
  std::unordered_map<std::string, Entry> users_;  // key: "user@domain", domain lower-case
};

}  // namespace portier::auth
