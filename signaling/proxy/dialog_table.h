// The dialogs this proxy record-routed (RFC 3261 §12), and who may send requests
// inside each: the proxy forwards a to-tagged request only when it names a dialog
// recorded here (Call-ID and both tags) and comes from one of that dialog's two
// parties. Without this, a Route naming us made the proxy an open relay, and a
// stranger knowing a Call-ID could re-INVITE or BYE someone else's call.
// Plain C++ (no sofia-sip), unit-tested: the in-dialog check of the proxy.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/auth/hmac.h"

namespace portier::proxy {

class DialogTable {
 public:
  struct Dialog {
    std::string call_id;
    std::string caller_tag;  // From tag of the dialog-forming request
    std::string callee_tag;  // To tag of the 18x/2xx that formed the dialog
    // Where each party's requests may come from (IP literals, no brackets): the
    // caller's as its request came in; the callee's as its response came from,
    // and the host the branch was sent to.
    std::vector<std::string> caller_hosts, callee_hosts;
    // Hosts each party named in its Contact (its remote target, §12.1), where
    // the other party's requests may go besides the hosts above.
    std::vector<std::string> caller_targets, callee_targets;
    // The identities the proxy vouched for when the dialog formed (empty: none
    // known), re-asserted on the requests each party sends (RFC 3325 §9.1).
    std::string caller_aor, callee_aor;
    // The inter-domain flow each party is reached through (chain::Target::
    // flow_domain: a house's flow at the cloud, the cloud's at the house);
    // empty: none, requests to it follow the Route set and Request-URI.
    std::string caller_flow, callee_flow;
    std::string from, to;    // the dialog-forming request's URIs, for the calls list
    bool invite = true;      // an INVITE dialog (a call), not a SUBSCRIBE one
    bool confirmed = false;  // a 2xx formed it; else early (a 18x with a To tag, §12.1)
    int64_t since = 0;       // when recorded (early) or confirmed
  };

  enum class Side { Caller, Callee };
  struct Match {
    enum Verdict { NoDialog, NotAParty, Ok } verdict = NoDialog;
    Side side = Side::Caller;  // who sent the request (when Ok)
    const Dialog *dialog = nullptr;
  };

  // A 18x with a To tag (early) or a 2xx (confirmed) went up to the caller. Records
  // the dialog, or adds the hosts to it and confirms it; returns it.
  const Dialog &record(const Dialog &d);
  // A request inside a dialog: From and To tags as the request carries them
  // (caller -> callee: From = caller's tag; callee -> caller: the other way round).
  Match match(const std::string &call_id, const std::string &from_tag, const std::string &to_tag,
              const std::string &source_host) const;
  // Whether a request from `sender` may go to `ruri_host`: a host of the other
  // party. A party of a dialog cannot make us relay to anywhere else.
  static bool may_target(const Dialog &d, Side sender, const std::string &ruri_host);
  // A target refresh (§12.2.2: re-INVITE, UPDATE with a Contact) from `sender`:
  // the other party's requests may go to `host` from now on.
  void add_target(const Dialog &d, Side sender, const std::string &host);
  // A response (2xx retransmission) for the caller: From = caller's tag, To = callee's,
  // sent by the callee.
  bool matches_response(const std::string &call_id, const std::string &from_tag,
                        const std::string &to_tag, const std::string &source_host) const;
  // Ends one dialog (its BYE). True when it was there.
  bool remove(const std::string &call_id, const std::string &caller_tag,
              const std::string &callee_tag);
  // The dialog-forming transaction is over: the early dialogs no 2xx confirmed end
  // with it (§12.3 via §13.2.2.4/§16.7).
  void drop_early(const std::string &call_id, const std::string &caller_tag);
  // Whether a confirmed INVITE dialog with this Call-ID is still up (the relay is
  // per Call-ID: it is freed when the last one ends).
  bool has_confirmed_call(const std::string &call_id) const;
  // Forgets confirmed dialogs older than max_confirmed_s (phones unplugged
  // mid-call never send BYE) and early ones older than max_early_s.
  size_t expire(int64_t now, int64_t max_confirmed_s, int64_t max_early_s);

  size_t size() const { return dialogs_.size(); }
  template <typename F>
  void for_each(F f) const {
    for (const auto &[key, d] : dialogs_) f(d);
  }

 private:
  using Key = std::tuple<std::string, std::string, std::string>;  // Call-ID, caller, callee tag
  std::map<Key, Dialog> dialogs_;
};

// The HMAC that marks our Record-Route entries (param "sig"): only a route set we
// issued brings a request through us, so a Route naming us found elsewhere (or
// written by hand) is refused. It covers what identifies the dialog when the
// Record-Route is written: the Call-ID and the caller's From tag.
class RouteSigner {
 public:
  // key: the proxy's secret; the signing key is derived from it with its own label,
  // so it never doubles as the nonce key.
  explicit RouteSigner(const std::string &key);
  // Not thread-safe (the memo below): the main loop's thread only.
  std::string sign(std::string_view call_id, std::string_view caller_tag) const;
  bool verify(std::string_view sig, std::string_view call_id, std::string_view caller_tag) const;

 private:
  // One dialog's signature is wanted again and again: once per branch of its
  // INVITE, then for its ACK and every later request. Direct-mapped by Call-ID:
  // a miss costs one HMAC, as without the memo, and a flood of forged dialogs
  // only evicts entries.
  struct Memo {
    std::string call_id, caller_tag, sig;
  };
  static constexpr size_t kMemoSlots = 64;
  auth::HmacSha256 key_;
  mutable std::array<Memo, kMemoSlots> memo_;
};

}  // namespace portier::proxy
