#include "proxy/location_store.h"

#include <algorithm>
#include <array>
#include <climits>
#include <ctime>
#include <string_view>
#include <utility>

#include "common/ascii.h"

namespace portier::proxy {
namespace {

constexpr size_t kNone = static_cast<size_t>(-1);

void append_lower(std::string &out, std::string_view s) {
  for (char c : s) out += ascii::lower(c);
}

// RFC 3261 §19.1.4: the userinfo of a SIP URI compares case-sensitively, the
// scheme, host, port and parameters case-insensitively. Parameter order is not
// normalized: a UA re-registers the URI it registered before, byte for byte, so
// reordered parameters are not worth parsing every contact for.
bool same_contact_uri(std::string_view a, std::string_view b) {
  if (a == b) return true;
  size_t a_colon = a.find(':');
  size_t b_colon = b.find(':');
  if (a_colon == std::string_view::npos || b_colon == std::string_view::npos) return false;
  if (!ascii::iequals(a.substr(0, a_colon), b.substr(0, b_colon))) return false;
  a.remove_prefix(a_colon + 1);
  b.remove_prefix(b_colon + 1);
  size_t a_at = a.find('@');
  size_t b_at = b.find('@');
  if ((a_at == std::string_view::npos) != (b_at == std::string_view::npos)) return false;
  if (a_at != std::string_view::npos) {
    if (a.substr(0, a_at) != b.substr(0, b_at)) return false;
    a.remove_prefix(a_at + 1);
    b.remove_prefix(b_at + 1);
  }
  return ascii::iequals(a, b);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_xdigit(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
bool is_alnum(char c) { return is_digit(c) || (ascii::lower(c) >= 'a' && ascii::lower(c) <= 'z'); }

bool live(const Binding &b, int64_t now) { return b.expires_at > now; }

// §10.3 steps 5 and 7: within one Call-ID, a request whose CSeq is lower than
// the stored one is a late, reordered request and must not undo the newer state
// (500). One with the same CSeq is that very request again: portier answers
// REGISTER statelessly, so no transaction layer absorbs a UDP retransmission,
// and it is answered like a fetch, changing nothing.
enum class Order { Newer, Same, Older };
Order order_of(const Binding &b, const RegisterRequest &req) {
  if (b.call_id != req.call_id || b.cseq < req.cseq) return Order::Newer;
  return b.cseq == req.cseq ? Order::Same : Order::Older;
}

// §10.3 step 6.
int requested_expires(const ContactSpec &c, const RegisterRequest &req,
                      const LocationStore::Limits &limits) {
  if (c.expires) return *c.expires;
  if (req.expires_header) return *req.expires_header;
  return limits.default_expires;
}

// The binding a contact refers to: the device's +sip.instance names it even when
// its contact URI changed (RFC 5626: a device that rebooted or changed network
// replaces its old binding instead of adding a second one that rings nowhere),
// otherwise the same contact URI (RFC 3261 §10.3 step 7).
size_t find_binding(const std::vector<Binding> &bindings, const ContactSpec &c, int64_t now) {
  if (!c.instance.empty()) {
    for (size_t i = 0; i < bindings.size(); ++i) {
      // URNs compare case-insensitively (RFC 8141 §3), so do the UUIDs in them.
      if (live(bindings[i], now) && ascii::iequals(bindings[i].instance, c.instance)) return i;
    }
  }
  // A flow is its instance alone (RFC 5626 §6): two in-house proxies of one
  // domain both write <sips:HOUSE;transport=tls>.
  if (c.by_instance_only && !c.instance.empty()) return kNone;
  for (size_t i = 0; i < bindings.size(); ++i) {
    if (live(bindings[i], now) && same_contact_uri(bindings[i].contact, c.uri)) return i;
  }
  return kNone;
}

size_t remove_dead(std::vector<Binding> &bindings, int64_t now) {
  auto dead = std::remove_if(bindings.begin(), bindings.end(),
                             [now](const Binding &b) { return !live(b, now); });
  size_t removed = static_cast<size_t>(bindings.end() - dead);
  bindings.erase(dead, bindings.end());
  return removed;
}

// Highest q first, then most recent registration (the back of the stored vector)
// first. An insertion sort: an AOR has a handful of bindings, and it is stable
// and allocation-free, unlike std::stable_sort.
std::vector<Binding> live_sorted(const std::vector<Binding> &bindings, int64_t now) {
  std::vector<Binding> out;
  out.reserve(bindings.size());
  for (auto it = bindings.rbegin(); it != bindings.rend(); ++it) {
    if (!live(*it, now)) continue;
    out.push_back(*it);
    for (size_t j = out.size() - 1; j > 0 && out[j - 1].q_milli < out[j].q_milli; --j) {
      std::swap(out[j - 1], out[j]);
    }
  }
  return out;
}

RegisterOutcome reject(int status, const char *phrase) {
  RegisterOutcome out;
  out.status = status;
  out.phrase = phrase;
  return out;
}

std::string domain_key(const std::string &aor) {
  std::string key;
  append_lower(key, aor_domain(aor));
  return key;
}

}  // namespace

RegisterOutcome LocationStore::apply(const RegisterRequest &req) {
  const int64_t now = req.now;
  auto it = records_.find(req.aor);
  const bool known = it != records_.end();
  const size_t before = known ? it->second.size() : 0;

  if (req.wildcard) {
    // §10.3 step 5: "*" must stand alone and come with Expires: 0.
    if (!req.contacts.empty() || !req.expires_header || *req.expires_header != 0) {
      return reject(400, "Invalid wildcard Contact");
    }
    RegisterOutcome out;
    out.phrase = "OK";
    out.bindings_before = before;
    if (!known) return out;
    for (const Binding &b : it->second) {
      if (!live(b, now)) continue;
      const Order order = order_of(b, req);
      if (order == Order::Older) return reject(500, "Out of order");
      if (order == Order::Same) {
        out.bindings = live_sorted(it->second, now);
        return out;
      }
    }
    erase_record(it);
    ++generation_;
    return out;
  }

  RegisterOutcome out;
  out.phrase = "OK";
  out.bindings_before = before;
  if (req.contacts.empty()) {
    // A fetch (§10.3 step 8 with no Contact): report, change nothing.
    if (known) out.bindings = live_sorted(it->second, now);
    return out;
  }

  // Validate the whole request before touching anything: §10.3 step 7 commits
  // the updates only if every one of them succeeds.
  bool adds = false;
  for (const ContactSpec &c : req.contacts) {
    int expires = requested_expires(c, req, limits_);
    if (expires < 0) return reject(400, "Invalid expires");
    // The state file's loader refuses q outside 0..1 (RFC 3261 §20.10).
    if (c.q_milli && (*c.q_milli < 0 || *c.q_milli > 1000)) return reject(400, "Invalid q");
    if (expires > 0 && expires < limits_.min_expires) {
      RegisterOutcome brief = reject(423, "Interval Too Brief");
      brief.min_expires = limits_.min_expires;
      return brief;
    }
    adds = adds || expires > 0;
  }
  if (known) {
    bool retransmission = false;
    for (const ContactSpec &c : req.contacts) {
      size_t i = find_binding(it->second, c, now);
      if (i == kNone) continue;
      const Order order = order_of(it->second[i], req);
      if (order == Order::Older) return reject(500, "Out of order");
      retransmission = retransmission || order == Order::Same;
    }
    if (retransmission) {
      out.bindings = live_sorted(it->second, now);
      return out;
    }
  } else if (!adds) {
    return out;  // only removals of bindings that do not exist
  } else {
    it = records_.emplace(req.aor, std::vector<Binding>{}).first;
    index_add(req.aor);
  }

  std::vector<Binding> &bindings = it->second;
  bool changed = remove_dead(bindings, now) > 0;
  // Bindings written by this request sit at the back, `touched` of them, so the
  // max_contacts_per_aor rule below can spare them.
  size_t touched = 0;
  for (const ContactSpec &c : req.contacts) {
    int expires = std::min(requested_expires(c, req, limits_), limits_.max_expires);
    size_t i = find_binding(bindings, c, now);
    const bool in_tail = i != kNone && i >= bindings.size() - touched;
    if (expires == 0) {
      if (i == kNone) continue;
      bindings.erase(bindings.begin() + static_cast<ptrdiff_t>(i));
      if (in_tail) --touched;
      changed = true;
      continue;
    }
    if (i == kNone) {
      bindings.emplace_back();
      ++touched;
    } else if (!in_tail) {
      // A refresh is a registration too: move it to the back, the most recent end.
      std::rotate(bindings.begin() + static_cast<ptrdiff_t>(i),
                  bindings.begin() + static_cast<ptrdiff_t>(i) + 1, bindings.end());
      ++touched;
      i = bindings.size() - 1;
    }
    Binding &b = i == kNone ? bindings.back() : bindings[i];
    b.contact = c.uri;
    b.instance = c.instance;
    b.call_id = req.call_id;
    b.cseq = req.cseq;
    b.q_milli = c.q_milli.value_or(1000);
    b.expires_at = now + expires;
    b.user_agent = req.user_agent;
    b.received = req.received;
    // A refresh without push parameters means the app no longer wants pushes
    // (RFC 8599 §4.1.1: a UA that wants pushes puts them in its REGISTER;
    // §4.1.2: one that no longer does leaves pn-prid out).
    b.push = c.push;
    changed = true;
  }

  // Too many devices on one AOR: the binding closest to expiring is the one most
  // likely to be stale (a device that stopped refreshing), and among equals the
  // least recently registered. Bindings this request wrote go last, so a device
  // that registers is never answered with a 200 that leaves it out.
  const size_t max = limits_.max_contacts_per_aor;
  while (max != 0 && bindings.size() > max) {
    size_t untouched = bindings.size() - touched;
    size_t end = untouched != 0 ? untouched : bindings.size();
    size_t victim = 0;
    for (size_t i = 1; i < end; ++i) {
      if (bindings[i].expires_at < bindings[victim].expires_at) victim = i;
    }
    bindings.erase(bindings.begin() + static_cast<ptrdiff_t>(victim));
    if (untouched == 0) --touched;
    changed = true;
  }

  if (bindings.empty()) {
    erase_record(it);
  } else {
    out.bindings = live_sorted(bindings, now);
    out.record = &bindings;
  }
  if (changed) ++generation_;
  return out;
}

std::vector<Binding> LocationStore::lookup(const std::string &aor, int64_t now) const {
  auto it = records_.find(aor);
  if (it == records_.end()) return {};
  return live_sorted(it->second, now);
}

std::vector<std::string> LocationStore::aors_in_domain(const std::string &domain,
                                                       int64_t now) const {
  std::string key;
  append_lower(key, domain);
  std::vector<std::string> out;
  auto idx = domain_index_.find(key);
  if (idx == domain_index_.end()) return out;
  for (const std::string &aor : idx->second) {
    auto it = records_.find(aor);
    if (it == records_.end()) continue;
    const std::vector<Binding> &bindings = it->second;
    if (std::any_of(bindings.begin(), bindings.end(),
                    [now](const Binding &b) { return live(b, now); })) {
      out.push_back(aor);
    }
  }
  return out;
}

size_t LocationStore::purge_expired(int64_t now, size_t max_aors) {
  size_t removed = 0;
  // Each AOR at most once per call, even when the walk wraps around.
  size_t left = std::min(max_aors, records_.size());
  auto it = records_.lower_bound(purge_from_);
  for (; left > 0 && !records_.empty(); --left) {
    if (it == records_.end()) it = records_.begin();
    removed += remove_dead(it->second, now);
    if (it->second.empty()) {
      auto next = std::next(it);
      erase_record(it);
      it = next;
    } else {
      ++it;
    }
  }
  purge_from_ = it == records_.end() ? std::string() : it->first;
  if (removed != 0) ++generation_;
  return removed;
}

bool LocationStore::remove_aor(const std::string &aor) {
  auto it = records_.find(aor);
  if (it == records_.end()) return false;
  erase_record(it);
  ++generation_;
  return true;
}

const std::vector<Binding> *LocationStore::drop_push(const std::string &aor,
                                                     const std::string &contact,
                                                     const PushTarget &push) {
  auto it = records_.find(aor);
  if (it == records_.end()) return nullptr;
  for (Binding &b : it->second) {
    // The device may have registered a new token since the push left: that
    // one stays.
    if (b.contact == contact && b.push == push && !push.empty()) {
      b.push = {};
      ++generation_;
      return &it->second;
    }
  }
  return nullptr;
}

void LocationStore::restore(std::map<std::string, std::vector<Binding>> records) {
  records_ = std::move(records);
  domain_index_.clear();
  for (auto it = records_.begin(); it != records_.end();) {
    // An AOR without bindings would linger forever: nothing expires it.
    if (it->second.empty()) {
      it = records_.erase(it);
    } else {
      index_add(it->first);
      ++it;
    }
  }
  ++generation_;
}

size_t LocationStore::binding_count() const {
  size_t n = 0;
  for (const auto &[aor, bindings] : records_) n += bindings.size();
  return n;
}

void LocationStore::erase_record(Records::iterator it) {
  index_remove(it->first);
  records_.erase(it);
}

void LocationStore::index_add(const std::string &aor) {
  domain_index_[domain_key(aor)].insert(aor);
}

void LocationStore::index_remove(const std::string &aor) {
  auto idx = domain_index_.find(domain_key(aor));
  if (idx == domain_index_.end()) return;
  idx->second.erase(aor);
  if (idx->second.empty()) domain_index_.erase(idx);
}

std::optional<int> parse_qvalue(std::string_view s) {
  if (s.empty() || (s[0] != '0' && s[0] != '1')) return std::nullopt;
  const int whole = s[0] - '0';
  if (s.size() == 1) return whole * 1000;
  if (s[1] != '.' || s.size() > 5) return std::nullopt;
  int milli = 0;
  int scale = 100;
  for (size_t i = 2; i < s.size(); ++i, scale /= 10) {
    if (!is_digit(s[i])) return std::nullopt;
    milli += (s[i] - '0') * scale;
  }
  if (whole == 1 && milli != 0) return std::nullopt;
  return whole * 1000 + milli;
}

std::optional<int> parse_delta_seconds(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    // Saturate instead of wrapping: 2^32 must not become 0, a removal.
    if (v <= INT_MAX) v = v * 10 + (c - '0');
  }
  return static_cast<int>(std::min<int64_t>(v, INT_MAX));
}

bool is_valid_contact_uri(std::string_view uri) {
  size_t colon = uri.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view scheme = uri.substr(0, colon);
  if (!ascii::iequals(scheme, "sip") && !ascii::iequals(scheme, "sips")) return false;
  std::string_view rest = uri.substr(colon + 1);
  size_t at = rest.rfind('@');
  std::string_view host = at == std::string_view::npos ? rest : rest.substr(at + 1);
  if (host.empty() || host[0] == ':' || host[0] == ';' || host[0] == '?') return false;
  // One load per character (a Contact per REGISTER): letters, digits and these.
  static const auto kAllowed = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = is_alnum(static_cast<char>(c));
    for (char c : std::string_view("-_.!~*'();/?:@&=+$,[]"))
      t[static_cast<unsigned char>(c)] = true;
    return t;
  }();
  for (size_t i = 0; i < rest.size(); ++i) {
    const char c = rest[i];
    if (c == '%') {
      if (i + 2 >= rest.size() || !is_xdigit(rest[i + 1]) || !is_xdigit(rest[i + 2])) return false;
      i += 2;
      continue;
    }
    if (!kAllowed[static_cast<unsigned char>(c)]) return false;
  }
  return true;
}

std::string aor_domain(const std::string &aor) {
  // Neither a host nor an escaped user part contains a raw '@', so the last one
  // separates them; an AOR without user part ("sip:home.example") is all domain.
  size_t at = aor.rfind('@');
  if (at != std::string::npos) return aor.substr(at + 1);
  size_t colon = aor.find(':');
  return colon == std::string::npos ? aor : aor.substr(colon + 1);
}

}  // namespace portier::proxy
