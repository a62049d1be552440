// The registrar's location service (RFC 3261 §10.3), without SIP stack types:
// the sofia-sip glue turns a REGISTER into a RegisterRequest and writes the
// outcome back. Time is passed in (unix seconds), so tests drive expiry.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/sip_address.h"

namespace portier::proxy {

// RFC 8599 §4.1.1 (pn-provider, pn-prid, pn-param), as the Contact URI carried
// them or as the legacy Linphone parameters map to them. Empty provider: the
// binding is not reached by push.
struct PushTarget {
  std::string provider;
  std::string prid;
  std::string param;
  bool empty() const { return provider.empty(); }
  bool operator==(const PushTarget &o) const {
    return provider == o.provider && prid == o.prid && param == o.param;
  }
};

struct Binding {
  std::string contact;   // contact URI as registered, e.g. "sip:alice@127.0.0.1:5070"
  std::string instance;  // +sip.instance value ("<urn:uuid:...>"), empty when absent
  std::string call_id;
  uint32_t cseq = 0;
  int q_milli = 1000;      // q-value * 1000 (q=0.5 -> 500); 1000 when absent
  int64_t expires_at = 0;  // unix seconds
  std::string user_agent;
  std::string received;  // where the REGISTER came from, "udp:127.0.0.1:5070"
  PushTarget push;       // how to wake the device; empty when it cannot be woken
};

struct ContactSpec {
  std::string uri;             // the contact URI (no angle brackets, no header params)
  std::string instance;        // +sip.instance, empty when absent
  std::optional<int> expires;  // ;expires= parameter
  std::optional<int> q_milli;  // ;q= parameter, already * 1000
  PushTarget push;             // RFC 8599 parameters the registrar accepted
  // A domain registration's flow (house_domains.h): with an instance, the
  // same contact URI under another instance is another binding.
  bool by_instance_only = false;
};

struct RegisterRequest {
  std::string aor;                    // normalized address of record: "sip:user@domain"
  bool wildcard = false;              // Contact: *
  std::vector<ContactSpec> contacts;  // empty + !wildcard: a fetch of the bindings
  std::optional<int> expires_header;  // Expires: header
  std::string call_id;
  uint32_t cseq = 0;
  std::string user_agent;
  std::string received;
  int64_t now = 0;
};

struct RegisterOutcome {
  int status = 200;               // 200, 400 (bad wildcard), 423, 500 (out-of-order CSeq)
  std::string phrase;             // reason phrase for non-200
  int min_expires = 0;            // for 423: the Min-Expires value to send
  std::vector<Binding> bindings;  // every current binding of the AOR, for the 200's Contact
  size_t bindings_before = 0;     // the AOR's bindings before the request, expired ones included
  // When the request changed the store (generation() moved): the AOR's record as
  // now stored, in registration order, for the journal; null when it was removed.
  // Valid until the store changes again.
  const std::vector<Binding> *record = nullptr;
};

class LocationStore {
 public:
  struct Limits {
    int min_expires = 60;              // shorter non-zero expiries get 423 (RFC 3261 §10.3 step 6)
    int max_expires = 3600;            // longer ones are cut to this
    int default_expires = 3600;        // when neither ;expires nor Expires is given
    size_t max_contacts_per_aor = 32;  // beyond this, the binding that expires soonest
                                       // goes (see apply()); 0: no limit
  };

  LocationStore() = default;
  explicit LocationStore(Limits limits) : limits_(limits) {}

  // RFC 3261 §10.3 steps 5-8: wildcard removal, per-contact add/refresh/remove,
  // a binding with the same +sip.instance (or the same contact URI) is replaced,
  // CSeq ordering within one Call-ID. All or nothing: a 400/423/500 changes nothing.
  // When an AOR would exceed max_contacts_per_aor, the binding that expires soonest
  // goes, preferring bindings this request did not touch.
  RegisterOutcome apply(const RegisterRequest &req);

  // The live bindings of an AOR, highest q first, then most recent first.
  std::vector<Binding> lookup(const std::string &aor, int64_t now) const;
  // Every AOR with at least one live binding whose domain is `domain`.
  std::vector<std::string> aors_in_domain(const std::string &domain, int64_t now) const;
  // Removes bindings whose time has come from at most `max_aors` AORs, resuming
  // where the previous call stopped; returns how many bindings were removed.
  // Expired bindings are already invisible to every reader (they check
  // expires_at), so the sweep only frees memory and may be spread over several
  // calls: a registrar of a million AORs must not hold the SIP loop for a walk
  // over all of them each second.
  size_t purge_expired(int64_t now, size_t max_aors = SIZE_MAX);
  size_t aor_count() const { return records_.size(); }
  // Removes every binding of an AOR (its user or domain is no longer served);
  // false when it had none.
  bool remove_aor(const std::string &aor);

  // The provider refused the device token `push` (RFC 8599 leaves it to the
  // PNS; FCM 404/410, APNs 410...): the binding at `contact` keeps working
  // without push. Returns the AOR's record for the journal, null when no
  // binding had that token (it registered another meanwhile).
  const std::vector<Binding> *drop_push(const std::string &aor, const std::string &contact,
                                        const PushTarget &push);

  // Every record, for the control socket and persistence.
  const std::map<std::string, std::vector<Binding>> &records() const { return records_; }
  // Replaces everything (used when loading the state file). Counts as a change.
  void restore(std::map<std::string, std::vector<Binding>> records);
  size_t binding_count() const;

  // Incremented on every change; the persister writes when it moved.
  uint64_t generation() const { return generation_; }

  const Limits &limits() const { return limits_; }

 private:
  using Records = std::map<std::string, std::vector<Binding>>;

  void erase_record(Records::iterator it);
  void index_add(const std::string &aor);
  void index_remove(const std::string &aor);

  Limits limits_;
  // Each AOR's bindings in registration order: a refreshed binding moves to the
  // back, so the back is the most recent registration. This order is the
  // "most recent first" of lookup() and survives persistence without a timestamp.
  Records records_;
  // Domain (lower-case) -> its AORs, so a group call does not scan every AOR of
  // every domain. Holds exactly the keys of records_.
  std::unordered_map<std::string, std::set<std::string>> domain_index_;
  uint64_t generation_ = 0;
  // The first AOR the next purge_expired() looks at (a key, not an iterator:
  // the AOR may be gone by then).
  std::string purge_from_;
};

// The AOR key form (scheme "sip:", user as given, host lower-case, no port or
// parameters): common/sip_address.h.
using portier::normalize_aor;

// REGISTER input, checked before it reaches the store (RFC 3261 §10.3 steps 6
// and 7 store only what is well-formed; a stored value the loader refuses
// would otherwise outlive a restart):
// RFC 3261 §25.1 qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ),
// as q * 1000; nullopt for anything else (q=2, q=-1, q=abc, q=0.5000).
std::optional<int> parse_qvalue(std::string_view s);
// RFC 3261 §25.1 delta-seconds = 1*DIGIT. A value too large for an int is
// INT_MAX (the store shortens it to max-expires, §10.3 step 6); nullopt for
// anything that is not digits (expires=abc, a date, an empty value).
std::optional<int> parse_delta_seconds(std::string_view s);
// A Contact URI the registrar stores and later sends requests to: sip: or
// sips:, a host part, and only the characters RFC 3261 §25.1 allows in a
// SIP-URI (unreserved, reserved, %HH escapes); no raw binary, space or quote.
bool is_valid_contact_uri(std::string_view uri);
// The domain of a normalized AOR ("sip:a@home.example" -> "home.example").
std::string aor_domain(const std::string &aor);

}  // namespace portier::proxy
