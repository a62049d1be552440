#include "door/dtmf.h"

#include "common/ascii.h"

namespace portier::door {

char dtmf_key(uint8_t event) {
  static const char kKeys[] = "0123456789*#ABCD";
  return event < 16 ? kKeys[event] : '\0';
}

bool parse_telephone_events(const uint8_t *payload, size_t size, std::vector<TelephoneEvent> *out,
                            std::string *reason) {
  out->clear();
  if (size == 0 || payload == nullptr) {
    *reason = "empty telephone-event payload";
    return false;
  }
  if (size % 4 != 0) {
    *reason = "telephone-event payload of " + std::to_string(size) + " bytes, not a multiple of 4";
    return false;
  }
  for (size_t i = 0; i < size; i += 4) {
    TelephoneEvent e;
    e.event = payload[i];
    e.end = (payload[i + 1] & 0x80) != 0;
    // The R bit (0x40) is reserved: senders set it to 0 and receivers ignore it.
    e.volume = payload[i + 1] & 0x3f;
    e.duration = static_cast<uint16_t>(payload[i + 2] << 8 | payload[i + 3]);
    out->push_back(e);
  }
  return true;
}

bool DtmfDeduplicator::recent(uint32_t start) const {
  for (size_t i = 0; i < recent_count_; ++i)
    if (recent_[i] == start) return true;
  return false;
}

void DtmfDeduplicator::remember(uint32_t start) {
  recent_[recent_next_] = start;
  recent_next_ = (recent_next_ + 1) % kRecent;
  if (recent_count_ < kRecent) ++recent_count_;
}

void DtmfDeduplicator::reset() { *this = DtmfDeduplicator(); }

DtmfDeduplicator::Result DtmfDeduplicator::feed(uint32_t timestamp, uint16_t seq, bool marker,
                                                const uint8_t *payload, size_t size) {
  Result r;
  std::vector<TelephoneEvent> events;
  if (!parse_telephone_events(payload, size, &events, &r.reason)) return r;

  // Sequence numbers order the packets (RFC 3550 §5.1). A jump back by more than
  // plausible reordering is a restarted sender (RFC 3550 A.1 reasons the same way),
  // not a late packet, so start over instead of dropping its events for good.
  constexpr int kMaxMisorder = 100;
  const int16_t ahead = static_cast<int16_t>(seq - highest_seq_);
  if (started_ && ahead < -kMaxMisorder) reset();
  const bool late = started_ && ahead <= 0;
  if (!late) highest_seq_ = seq;
  started_ = true;

  // §2.5.1.5: blocks before the last are finished events; each starts where the one
  // before it ended, the first at the packet's timestamp.
  uint32_t start = timestamp;
  for (size_t i = 0; i < events.size(); ++i) {
    const TelephoneEvent &e = events[i];
    const bool current = i + 1 == events.size();
    if (recent(start)) {
      // An update, an end packet or a retransmission of a press already handed on.
      if (start == last_segment_start_ && e.end) last_ended_ = true;
    } else if (!late) {
      // §2.5.1.3/§2.5.2.3: when the duration field would overflow, a long event goes
      // on as a new segment whose timestamp follows the previous segment's, without
      // the marker bit and with the same event code. That is the same press.
      const uint32_t gap = start - last_segment_start_;
      const bool continuation = !marker && current && !last_ended_ && e.event == last_event_ &&
                                gap > 0 && gap <= 0x10000u;
      if (!continuation && dtmf_key(e.event)) r.keys += dtmf_key(e.event);
      remember(start);
      last_event_ = e.event;
      last_segment_start_ = start;
      last_ended_ = e.end;
    }
    // A late packet whose event is unknown belongs to a press that came before one
    // already handed on; handing it on now would reorder a code's digits.
    start += e.duration;
  }
  return r;
}

namespace {

std::string_view trim(std::string_view s) {
  const char *ws = " \t\r\n";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

bool parse_small_int(std::string_view v, int max, int *out) {
  if (v.empty() || v.size() > 6) return false;
  int n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  if (n > max) return false;
  *out = n;
  return true;
}

char signal_key(std::string_view v) {
  if (v.size() == 1) {
    char c = v[0];
    if ((c >= '0' && c <= '9') || c == '*' || c == '#') return c;
    if (c >= 'a' && c <= 'd') return static_cast<char>(c - 'a' + 'A');
    if (c >= 'A' && c <= 'D') return c;
    return 0;
  }
  int n;
  if (!parse_small_int(v, 15, &n)) return 0;
  return dtmf_key(static_cast<uint8_t>(n));
}

}  // namespace

std::optional<DtmfRelay> parse_dtmf_relay(std::string_view body, std::string *reason) {
  DtmfRelay out;
  bool have_signal = false;
  size_t line_no = 0;
  while (!body.empty()) {
    size_t nl = body.find('\n');
    std::string_view line = trim(body.substr(0, nl));
    body = nl == std::string_view::npos ? std::string_view() : body.substr(nl + 1);
    ++line_no;
    if (line.empty()) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      *reason = "dtmf-relay line " + std::to_string(line_no) + " is not 'Key=Value'";
      return std::nullopt;
    }
    std::string_view key = trim(line.substr(0, eq));
    std::string_view value = trim(line.substr(eq + 1));
    if (ascii::iequals(key, "Signal")) {
      if (have_signal) {
        *reason = "dtmf-relay body has more than one Signal";
        return std::nullopt;
      }
      out.key = signal_key(value);
      if (!out.key) {
        *reason = "dtmf-relay Signal is not one of 0-9 * # A-D";
        return std::nullopt;
      }
      have_signal = true;
    } else if (ascii::iequals(key, "Duration")) {
      int ms;
      if (!parse_small_int(value, 600000, &ms)) {
        *reason = "dtmf-relay Duration is not a number of milliseconds";
        return std::nullopt;
      }
      out.duration_ms = ms;
    }
    // Other keys (some phones add Volume=...) carry nothing the door needs.
  }
  if (!have_signal) {
    *reason = "dtmf-relay body has no Signal";
    return std::nullopt;
  }
  return out;
}

}  // namespace portier::door
