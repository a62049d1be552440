#include "proxy/dialog_table.h"

#include <openssl/crypto.h>
#include <strings.h>

#include <algorithm>

namespace portier::proxy {
namespace {

bool has_host(const std::vector<std::string> &hosts, const std::string &h) {
  // Host names are case-insensitive (RFC 3261 §19.1.4); IP literals are written one way.
  return !h.empty() && std::any_of(hosts.begin(), hosts.end(), [&](const std::string &x) {
    return strcasecmp(x.c_str(), h.c_str()) == 0;
  });
}

void add_hosts(std::vector<std::string> *to, const std::vector<std::string> &from) {
  for (const auto &h : from)
    if (!h.empty() && !has_host(*to, h)) to->push_back(h);
}

}  // namespace

const DialogTable::Dialog &DialogTable::record(const Dialog &d) {
  auto [it, fresh] = dialogs_.try_emplace(Key{d.call_id, d.caller_tag, d.callee_tag}, d);
  Dialog &have = it->second;
  if (!fresh) {
    add_hosts(&have.caller_hosts, d.caller_hosts);
    add_hosts(&have.callee_hosts, d.callee_hosts);
    add_hosts(&have.caller_targets, d.caller_targets);
    add_hosts(&have.callee_targets, d.callee_targets);
    if (have.callee_aor.empty()) have.callee_aor = d.callee_aor;
    if (d.confirmed && !have.confirmed) {
      have.confirmed = true;
      have.since = d.since;
    }
  }
  return have;
}

DialogTable::Match DialogTable::match(const std::string &call_id, const std::string &from_tag,
                                      const std::string &to_tag,
                                      const std::string &source_host) const {
  Match m;
  auto from_caller = dialogs_.find(Key{call_id, from_tag, to_tag});
  auto from_callee = dialogs_.find(Key{call_id, to_tag, from_tag});
  // Both found only when the two tags are equal: the source decides.
  if (from_caller != dialogs_.end() && has_host(from_caller->second.caller_hosts, source_host)) {
    m.verdict = Match::Ok;
    m.side = Side::Caller;
    m.dialog = &from_caller->second;
  } else if (from_callee != dialogs_.end() &&
             has_host(from_callee->second.callee_hosts, source_host)) {
    m.verdict = Match::Ok;
    m.side = Side::Callee;
    m.dialog = &from_callee->second;
  } else if (from_caller != dialogs_.end() || from_callee != dialogs_.end()) {
    m.verdict = Match::NotAParty;
  }
  return m;
}

bool DialogTable::may_target(const Dialog &d, Side sender, const std::string &ruri_host) {
  const bool to_callee = sender == Side::Caller;
  return has_host(to_callee ? d.callee_hosts : d.caller_hosts, ruri_host) ||
         has_host(to_callee ? d.callee_targets : d.caller_targets, ruri_host);
}

void DialogTable::add_target(const Dialog &d, Side sender, const std::string &host) {
  auto it = dialogs_.find(Key{d.call_id, d.caller_tag, d.callee_tag});
  if (it == dialogs_.end()) return;
  add_hosts(sender == Side::Caller ? &it->second.caller_targets : &it->second.callee_targets,
            {host});
}

bool DialogTable::matches_response(const std::string &call_id, const std::string &from_tag,
                                   const std::string &to_tag,
                                   const std::string &source_host) const {
  auto it = dialogs_.find(Key{call_id, from_tag, to_tag});
  return it != dialogs_.end() && it->second.confirmed &&
         has_host(it->second.callee_hosts, source_host);
}

bool DialogTable::remove(const std::string &call_id, const std::string &caller_tag,
                         const std::string &callee_tag) {
  return dialogs_.erase(Key{call_id, caller_tag, callee_tag}) > 0;
}

void DialogTable::drop_early(const std::string &call_id, const std::string &caller_tag) {
  for (auto it = dialogs_.lower_bound(Key{call_id, caller_tag, ""});
       it != dialogs_.end() && std::get<0>(it->first) == call_id &&
       std::get<1>(it->first) == caller_tag;)
    it = it->second.confirmed ? std::next(it) : dialogs_.erase(it);
}

bool DialogTable::has_confirmed_call(const std::string &call_id) const {
  for (auto it = dialogs_.lower_bound(Key{call_id, "", ""});
       it != dialogs_.end() && std::get<0>(it->first) == call_id; ++it)
    if (it->second.confirmed && it->second.invite) return true;
  return false;
}

size_t DialogTable::expire(int64_t now, int64_t max_confirmed_s, int64_t max_early_s) {
  size_t gone = 0;
  for (auto it = dialogs_.begin(); it != dialogs_.end();) {
    const int64_t max_age = it->second.confirmed ? max_confirmed_s : max_early_s;
    if (now - it->second.since > max_age) {
      it = dialogs_.erase(it);
      ++gone;
    } else {
      ++it;
    }
  }
  return gone;
}

RouteSigner::RouteSigner(const std::string &key)
    : key_(auth::HmacSha256(key).mac({"portier record-route signature v1"})) {}

std::string RouteSigner::sign(std::string_view call_id, std::string_view caller_tag) const {
  Memo &m = memo_[std::hash<std::string_view>()(call_id) % kMemoSlots];
  if (m.call_id == call_id && m.caller_tag == caller_tag && !m.sig.empty()) return m.sig;
  // Length-prefixed, so no two (Call-ID, tag) pairs give the same input.
  const std::string length = std::to_string(call_id.size());
  unsigned char mac[auth::HmacSha256::kSize];
  key_.mac({length, ":", call_id, caller_tag}, mac);
  // 128 bits: plenty against guessing, short on the wire.
  std::string sig = auth::to_hex(std::string_view(reinterpret_cast<const char *>(mac), 16));
  m.sig.clear();  // no slot ever pairs a signature with another dialog's key
  m.call_id.assign(call_id);
  m.caller_tag.assign(caller_tag);
  m.sig = sig;
  return sig;
}

bool RouteSigner::verify(std::string_view sig, std::string_view call_id,
                         std::string_view caller_tag) const {
  const std::string want = sign(call_id, caller_tag);
  return sig.size() == want.size() && CRYPTO_memcmp(sig.data(), want.data(), want.size()) == 0;
}

}  // namespace portier::proxy
