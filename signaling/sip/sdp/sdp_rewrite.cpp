#include "sip/sdp/sdp_rewrite.h"

#include <arpa/inet.h>
#include <sofia-sip/sdp.h>
#include <sofia-sip/su_alloc.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/ascii.h"

namespace portier::sdp {

namespace {

// ---------------------------------------------------------------------------
// Small text helpers

bool istarts_with(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && ascii::iequals(s.substr(0, prefix.size()), prefix);
}

bool is_blank(char c) { return c == ' ' || c == '\t'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Error messages end up in logs: the network must not be able to put control
// characters or megabytes into them.
std::string printable(std::string_view s, size_t max = 60) {
  std::string out;
  for (char c : s.substr(0, max)) {
    auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u >= 0x7f) ? '?' : c;
  }
  if (s.size() > max) out += "...";
  return out;
}

bool fail(std::string *error, std::string message) {
  if (error) *error = std::move(message);
  return false;
}

// Parses all of `s` as a decimal number no larger than max.
bool parse_number(std::string_view s, unsigned long max, unsigned long *out) {
  if (s.empty() || s.size() > 10) return false;
  unsigned long v = 0;
  for (char c : s) {
    if (!is_digit(c)) return false;
    v = v * 10 + static_cast<unsigned long>(c - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

std::string_view skip_blanks(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  return s;
}

std::string_view next_word(std::string_view *s) {
  *s = skip_blanks(*s);
  size_t n = 0;
  while (n < s->size() && !is_blank((*s)[n])) ++n;
  std::string_view word = s->substr(0, n);
  s->remove_prefix(n);
  return word;
}

// ---------------------------------------------------------------------------
// Our own pass over the lines. sofia-sip's parser is lenient in ways that lose
// data without a word: it stops at a whitespace-only line, skips unknown or
// session-level lines inside a media description, drops media-level i=, and
// (in the Debian 1.12.11 build) turns every b= type other than CT into "AS",
// so b=TIAS:64000 would come out as 64 Mbit/s. This pass rejects what sofia
// would lose and remembers what it cannot keep, in the same line split as
// sofia (any run of CR and LF ends a line; leading blanks are skipped).

struct RawMedia {
  std::vector<std::string> bandwidth_types;  // b= types in order
  std::optional<std::string> information;    // i=
};

struct RawLines {
  std::vector<std::string> session_bandwidth_types;
  std::vector<RawMedia> media;
};

bool is_token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
         std::string_view("!#$%&'*+-.^_`{|}~").find(c) != std::string_view::npos;
}

// The Debian build of sofia-sip allocates format entries without end when a
// format of a non-RTP m= line starts with a character outside its token set
// ("m=audio 5000 X /", or a stray byte in the protocol): one line from a remote
// peer would exhaust the proxy's memory. RFC 4566 section 5.14 makes every field
// of m= a token (the protocol tokens joined by '/'), so anything else is refused
// before sofia-sip sees it.
bool is_media_line(std::string_view m_value) {
  auto all = [](std::string_view field, std::string_view extra) {
    if (field.empty()) return false;
    for (char c : field) {
      if (!is_token_char(c) && extra.find(c) == std::string_view::npos) return false;
    }
    return true;
  };
  std::string_view rest = m_value;
  std::string_view media = next_word(&rest), port = next_word(&rest), proto = next_word(&rest);
  if (!all(media, "") || !all(proto, "/")) return false;
  size_t slash = port.find('/');
  for (std::string_view p :
       {port.substr(0, slash), slash == std::string_view::npos ? "0" : port.substr(slash + 1)}) {
    if (p.empty() || p.find_first_not_of("0123456789") != std::string_view::npos) return false;
  }
  for (std::string_view fmt = next_word(&rest); !fmt.empty(); fmt = next_word(&rest)) {
    if (!all(fmt, "")) return false;
  }
  return true;
}

bool scan_lines(std::string_view text, RawLines *raw, std::string *error) {
  static constexpr std::string_view kSessionOnly = "vosueptrz";
  static constexpr std::string_view kAnywhere = "icbka";
  size_t line_number = 0;
  size_t blank_line = 0;  // a whitespace-only line, an error if more lines follow
  size_t session_c_lines = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end;
    if (pos < text.size() && text[pos] == '\r') ++pos;
    if (pos < text.size() && text[pos] == '\n') ++pos;
    ++line_number;
    if (line.empty()) continue;
    line = skip_blanks(line);
    if (line.empty()) {
      if (!blank_line) blank_line = line_number;
      continue;
    }
    if (blank_line) {
      return fail(error, "SDP line " + std::to_string(blank_line) +
                             ": blank line before the end (RFC 4566 section 5)");
    }
    auto where = [&] { return "SDP line " + std::to_string(line_number) + ": "; };
    if (line.size() < 2 || line[1] != '=') {
      return fail(error, where() + "not a <type>=<value> line: \"" + printable(line) + "\"");
    }
    const char type = line[0];
    const std::string_view value = line.substr(2);
    const bool in_media = !raw->media.empty();
    if (type == 'm') {
      if (!is_media_line(value)) {
        return fail(error, where() + "not \"m=<media> <port> <proto> <fmt> ...\" of tokens " +
                               "(RFC 4566 section 5.14): \"" + printable(line) + "\"");
      }
      raw->media.emplace_back();
    } else if (kAnywhere.find(type) != std::string_view::npos) {
      if (type == 'b') {
        std::string_view bwtype = skip_blanks(value);
        bwtype = bwtype.substr(0, bwtype.find(':'));
        auto &types = in_media ? raw->media.back().bandwidth_types : raw->session_bandwidth_types;
        types.emplace_back(bwtype);
      } else if (type == 'i' && in_media) {
        if (raw->media.back().information) {
          return fail(error, where() + "second i= line in one media description");
        }
        raw->media.back().information = std::string(skip_blanks(value));
      } else if (type == 'c' && !in_media && ++session_c_lines > 1) {
        return fail(error, where() + "second session-level c= line (RFC 4566 section 5.7)");
      }
    } else if (kSessionOnly.find(type) != std::string_view::npos) {
      if (in_media) {
        return fail(error,
                    where() + "\"" + std::string(1, type) +
                        "=\" is not allowed inside a media description (RFC 4566 section 5)");
      }
    } else {
      // RFC 4566 section 5: a parser must ignore a description with a type letter it
      // does not understand, so we refuse it rather than forward half of it.
      return fail(error, where() + "unknown line type \"" + printable(line.substr(0, 1)) +
                             "=\" (RFC 4566 section 5)");
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// One parsed SDP with everything allocated from one su_home, freed when it goes.

struct ParserFree {
  void operator()(sdp_parser_t *p) const { sdp_parser_free(p); }
};
struct PrinterFree {
  void operator()(sdp_printer_t *p) const { sdp_printer_free(p); }
};

const char *direction_name(std::string_view attribute) {
  for (const char *d : {"sendrecv", "sendonly", "recvonly", "inactive"}) {
    if (ascii::iequals(attribute, d)) return d;
  }
  return nullptr;
}

// The last direction attribute of the list wins, as in sofia-sip's own parser.
const char *direction_of(const sdp_attribute_t *a) {
  const char *found = nullptr;
  for (; a; a = a->a_next) {
    if (const char *d = direction_name(a->a_name)) found = d;
  }
  return found;
}

const sdp_attribute_t *find_attribute(const sdp_attribute_t *a, std::string_view name) {
  for (; a; a = a->a_next) {
    if (ascii::iequals(a->a_name, name)) return a;
  }
  return nullptr;
}

size_t count_attributes(const sdp_attribute_t *a, std::string_view name) {
  size_t n = 0;
  for (; a; a = a->a_next) n += ascii::iequals(a->a_name, name);
  return n;
}

// a=rtcp:<port> [IN IP4|IP6 <address>] (RFC 3605 section 2.1)
struct RtcpAttribute {
  uint16_t port = 0;
  std::string address;  // empty when not given
};

bool parse_rtcp_attribute(std::string_view value, RtcpAttribute *out) {
  std::string_view rest = value;
  unsigned long port = 0;
  if (!parse_number(next_word(&rest), 65535, &port) || port == 0) return false;
  out->port = static_cast<uint16_t>(port);
  rest = skip_blanks(rest);
  if (rest.empty()) return true;
  std::string_view nettype = next_word(&rest);
  std::string_view addrtype = next_word(&rest);
  std::string_view address = next_word(&rest);
  if (!ascii::iequals(nettype, "IN") ||
      !(ascii::iequals(addrtype, "IP4") || ascii::iequals(addrtype, "IP6")) || address.empty() ||
      !skip_blanks(rest).empty()) {
    return false;
  }
  out->address = std::string(address);
  return true;
}

// a=rtpmap:<pt> <encoding>/<clock rate>[/<parameters>] (RFC 4566 section 6)
bool parse_rtpmap_attribute(std::string_view value, Payload *out) {
  std::string_view rest = value;
  unsigned long pt = 0;
  if (!parse_number(next_word(&rest), 127, &pt)) return false;
  rest = skip_blanks(rest);
  size_t slash = rest.find('/');
  if (slash == 0 || slash == std::string_view::npos) return false;
  std::string_view encoding = rest.substr(0, slash);
  rest.remove_prefix(slash + 1);
  std::string_view rate = rest.substr(0, rest.find('/'));
  unsigned long clock_rate = 0;
  if (!parse_number(rate, UINT32_MAX, &clock_rate)) return false;
  out->pt = static_cast<int>(pt);
  out->encoding = std::string(encoding);
  out->clock_rate = static_cast<uint32_t>(clock_rate);
  return true;
}

bool is_rtp_protocol(std::string_view protocol) {
  for (size_t i = 0; i + 4 <= protocol.size(); ++i) {
    if (ascii::iequals(protocol.substr(i, 4), "RTP/")) return true;
  }
  return false;
}

}  // namespace

class Document {
 public:
  Document() { su_home_init(&home_); }
  ~Document() {
    parser_.reset();  // the parser lives inside home_: free it first
    su_home_deinit(&home_);
  }
  Document(const Document &) = delete;
  Document &operator=(const Document &) = delete;

  bool load(std::string_view text, std::string *error);

  su_home_t *home() { return &home_; }
  sdp_session_t *session() { return session_; }
  const std::vector<sdp_media_t *> &media() const { return media_; }
  const Session &summary() const { return summary_; }

 private:
  bool restore_lost_lines(const RawLines &raw, std::string *error);
  bool summarize_media(size_t index, sdp_media_t *m, Media *out, std::string *error);
  static bool payloads_from_rtpmaps(const sdp_media_t *m, std::vector<Payload> *out,
                                    std::string *error);
  static bool payloads_from_attributes(const sdp_media_t *m, std::vector<Payload> *out,
                                       std::string *error);

  su_home_t home_{};
  std::unique_ptr<sdp_parser_t, ParserFree> parser_;
  sdp_session_t *session_ = nullptr;
  std::vector<sdp_media_t *> media_;
  Session summary_;
};

bool Document::load(std::string_view text, std::string *error) {
  // sofia-sip copies the body as a C string: a NUL would cut it short unseen.
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return fail(error, "SDP: NUL byte at offset " + std::to_string(nul));
  }
  RawLines raw;
  if (!scan_lines(text, &raw, error)) return false;

  // Manual mode keeps direction attributes as written, where they were written,
  // instead of folding them into a mode that the printer re-invents.
  parser_.reset(
      sdp_parse(&home_, text.data(), static_cast<issize_t>(text.size()), sdp_f_mode_manual));
  session_ = sdp_session(parser_.get());
  if (!session_) {
    const char *why = sdp_parsing_error(parser_.get());
    return fail(error, "SDP: " + printable(why ? why : "cannot parse", 128));
  }
  // sofia-sip parses "o=... IN IP4 192.0.2.1/127" but then refuses to print it.
  const sdp_origin_t *o = session_->sdp_origin;
  const sdp_connection_t *oc = o ? o->o_address : nullptr;
  if (!oc || !oc->c_address || oc->c_mcast || oc->c_ttl || oc->c_groups > 1) {
    return fail(error, "SDP: o= has no plain address (RFC 4566 section 5.2)");
  }
  for (sdp_media_t *m = session_->sdp_media; m; m = m->m_next) media_.push_back(m);
  if (media_.size() != raw.media.size()) {
    return fail(error, "SDP: sofia-sip saw " + std::to_string(media_.size()) + " m= lines of " +
                           std::to_string(raw.media.size()));
  }
  if (!restore_lost_lines(raw, error)) return false;

  summary_.media.resize(media_.size());
  for (size_t i = 0; i < media_.size(); ++i) {
    if (!summarize_media(i, media_[i], &summary_.media[i], error)) return false;
  }
  return true;
}

bool Document::restore_lost_lines(const RawLines &raw, std::string *error) {
  auto restore_bandwidths = [&](sdp_bandwidth_t *b, const std::vector<std::string> &types) {
    size_t i = 0;
    for (; b && i < types.size(); b = b->b_next, ++i) {
      if (types[i] == "CT") {
        b->b_modifier = sdp_bw_ct;
      } else if (types[i] == "AS") {
        b->b_modifier = sdp_bw_as;
      } else {
        b->b_modifier = sdp_bw_x;
        b->b_modifier_name = su_strdup(&home_, types[i].c_str());
      }
    }
    return !b && i == types.size();
  };
  if (!restore_bandwidths(session_->sdp_bandwidths, raw.session_bandwidth_types)) {
    return fail(error, "SDP: session b= lines do not match what sofia-sip parsed");
  }
  for (size_t i = 0; i < media_.size(); ++i) {
    sdp_media_t *m = media_[i];
    if (!restore_bandwidths(m->m_bandwidths, raw.media[i].bandwidth_types)) {
      return fail(error, "SDP: b= lines of m= line " + std::to_string(i + 1) +
                             " do not match what sofia-sip parsed");
    }
    if (raw.media[i].information && !m->m_information) {
      m->m_information = su_strdup(&home_, raw.media[i].information->c_str());
    }
  }
  // sofia-sip prints "k=prompt" back as "k=prompt:"; an empty key is no key.
  auto fix_key = [](sdp_key_t *k) {
    if (k && k->k_material && !*k->k_material) k->k_material = nullptr;
  };
  fix_key(session_->sdp_key);
  for (sdp_media_t *m : media_) fix_key(m->m_key);
  return true;
}

bool Document::summarize_media(size_t index, sdp_media_t *m, Media *out, std::string *error) {
  const std::string where = "SDP m= line " + std::to_string(index + 1) + " (" +
                            printable(m->m_type_name ? m->m_type_name : "?") + "): ";
  out->type = m->m_type_name ? m->m_type_name : "";
  out->protocol = m->m_proto_name ? m->m_proto_name : "";
  if (m->m_port > 65535) {
    return fail(error, where + "port " + std::to_string(m->m_port) + " is out of range");
  }
  if (m->m_number_of_ports > 1) {
    // A relay gives one port pair per m= line: layered encodings cannot pass.
    return fail(
        error, where + "a port count (RFC 4566 section 5.14 \"<port>/<number>\") is not supported");
  }
  if (!m->m_rtpmaps && !m->m_format) {
    // sofia-sip would print an invented payload type for this line.
    return fail(error, where + "no media formats (RFC 4566 section 5.14)");
  }
  out->port = static_cast<uint16_t>(m->m_port);

  const sdp_connection_t *c = m->m_connections ? m->m_connections : session_->sdp_connection;
  out->address = c && c->c_address ? c->c_address : "";

  const char *direction = direction_of(m->m_attributes);
  if (!direction) direction = direction_of(session_->sdp_attributes);
  out->direction = direction ? direction : "sendrecv";

  out->rtcp_mux = find_attribute(m->m_attributes, "rtcp-mux") != nullptr;
  for (const sdp_attribute_t *a = m->m_attributes; a; a = a->a_next)
    if (ascii::iequals(a->a_name, "crypto")) out->crypto.emplace_back(a->a_value ? a->a_value : "");

  // RFC 8839 §5.4: media-level ICE credentials override session-level ones.
  auto value_of = [&](const char *name) -> std::string {
    const sdp_attribute_t *a = find_attribute(m->m_attributes, name);
    if (!a) a = find_attribute(session_->sdp_attributes, name);
    return a && a->a_value ? a->a_value : "";
  };
  out->ice_ufrag = value_of("ice-ufrag");
  out->ice_pwd = value_of("ice-pwd");
  out->ice = !out->ice_ufrag.empty() && !out->ice_pwd.empty() &&
             !find_attribute(session_->sdp_attributes, "ice-lite");

  if (count_attributes(m->m_attributes, "rtcp") > 1) {
    return fail(error, where + "more than one a=rtcp");
  }
  RtcpAttribute rtcp;
  if (const sdp_attribute_t *a = find_attribute(m->m_attributes, "rtcp")) {
    const char *value = a->a_value ? a->a_value : "";
    if (!parse_rtcp_attribute(value, &rtcp)) {
      return fail(error, where + "bad a=rtcp:" + printable(value) + " (RFC 3605 section 2.1)");
    }
  }
  out->rtcp_address = rtcp.address.empty() ? out->address : rtcp.address;
  if (out->port == 0) {
    out->rtcp_port = 0;
  } else if (rtcp.port) {
    out->rtcp_port = rtcp.port;
  } else if (out->port == 65535) {
    return fail(error, where + "port 65535 leaves no port + 1 for RTCP (RFC 3550 section 11)");
  } else {
    out->rtcp_port = static_cast<uint16_t>(out->port + 1);
  }

  if (m->m_rtpmaps) return payloads_from_rtpmaps(m, &out->payloads, error);
  if (is_rtp_protocol(out->protocol)) return payloads_from_attributes(m, &out->payloads, error);
  return true;
}

// RTP/AVP and RTP/SAVP: sofia-sip has matched a=rtpmap lines to the payload types.
bool Document::payloads_from_rtpmaps(const sdp_media_t *m, std::vector<Payload> *out,
                                     std::string *error) {
  for (const sdp_rtpmap_t *rm = m->m_rtpmaps; rm; rm = rm->rm_next) {
    if (!rm->rm_encoding || rm->rm_rate > UINT32_MAX) {
      return fail(error, "SDP: bad a=rtpmap for payload type " + std::to_string(rm->rm_pt));
    }
    out->push_back(
        {static_cast<int>(rm->rm_pt), rm->rm_encoding, static_cast<uint32_t>(rm->rm_rate)});
  }
  return true;
}

// Other RTP profiles (RTP/AVPF, RTP/SAVPF, UDP/TLS/RTP/SAVPF): sofia-sip keeps the
// format list as text and a=rtpmap as a plain attribute, so we match them here.
bool Document::payloads_from_attributes(const sdp_media_t *m, std::vector<Payload> *out,
                                        std::string *error) {
  for (const sdp_list_t *l = m->m_format; l; l = l->l_next) {
    const char *text = l->l_text ? l->l_text : "";
    unsigned long pt = 0;
    if (!parse_number(text, 127, &pt)) {
      return fail(error, "SDP: payload type \"" + printable(text) +
                             "\" is not a number from 0 to 127 (RFC 3551 section 6)");
    }
    Payload p;
    p.pt = static_cast<int>(pt);
    if (const sdp_rtpmap_t *known = sdp_rtpmap_well_known[pt]) {
      p.encoding = known->rm_encoding;
      p.clock_rate = static_cast<uint32_t>(known->rm_rate);
    }
    out->push_back(p);
  }
  for (const sdp_attribute_t *a = m->m_attributes; a; a = a->a_next) {
    if (!ascii::iequals(a->a_name, "rtpmap")) continue;
    const char *value = a->a_value ? a->a_value : "";
    Payload mapped;
    if (!parse_rtpmap_attribute(value, &mapped)) {
      return fail(error, "SDP: bad a=rtpmap:" + printable(value) + " (RFC 4566 section 6)");
    }
    // Like sofia-sip: a map for a type the m= line does not list means nothing,
    // and the last map of a type wins.
    for (Payload &p : *out) {
      if (p.pt == mapped.pt) p = mapped;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Rewriting

namespace {

bool is_ice_attribute(std::string_view name) {
  return istarts_with(name, "ice-") || ascii::iequals(name, "candidate") ||
         ascii::iequals(name, "remote-candidates") || ascii::iequals(name, "end-of-candidates");
}

bool is_removed_attribute(std::string_view name) {
  return is_ice_attribute(name) || ascii::iequals(name, "rtcp-mux") ||
         ascii::iequals(name, "rtcp-mux-only");  // rtcp-mux: added again where agreed
}

void remove_attributes(sdp_attribute_t **list, std::string_view name) {
  while (*list) {
    if (ascii::iequals((*list)->a_name, name)) {
      *list = (*list)->a_next;  // the home frees it
    } else {
      list = &(*list)->a_next;
    }
  }
}

bool append_attribute(su_home_t *home, sdp_attribute_t **list, const char *name,
                      const std::string *value) {
  auto *a = static_cast<sdp_attribute_t *>(su_salloc(home, sizeof(sdp_attribute_t)));
  if (!a) return false;
  a->a_name = name;
  if (value && !(a->a_value = su_strdup(home, value->c_str()))) return false;
  while (*list) list = &(*list)->a_next;
  *list = a;
  return true;
}

void remove_relay_incompatible_attributes(sdp_attribute_t **list) {
  while (*list) {
    if (is_removed_attribute((*list)->a_name)) {
      *list = (*list)->a_next;  // the home frees it
    } else {
      list = &(*list)->a_next;
    }
  }
}

sdp_addrtype_e address_type(const std::string &address) {
  unsigned char buf[sizeof(struct in6_addr)];
  if (inet_pton(AF_INET, address.c_str(), buf) == 1) return sdp_addr_ip4;
  if (inet_pton(AF_INET6, address.c_str(), buf) == 1) return sdp_addr_ip6;
  return sdp_addr_x;
}

bool point_connection(su_home_t *home, sdp_connection_t *c, const std::string &address) {
  c->c_nettype = sdp_net_in;
  c->c_addrtype = address_type(address);
  c->c_address = su_strdup(home, address.c_str());
  c->c_ttl = 0;  // the relay is unicast, whatever the peer offered
  c->c_mcast = 0;
  c->c_groups = 1;
  return c->c_address != nullptr;
}

struct CheckedEndpoint {
  std::string address;
  uint16_t rtp_port = 0;
  uint16_t rtcp_port = 0;
  bool rtcp_mux = false;
};

bool check_endpoint(size_t index, const RelayEndpoint &e, CheckedEndpoint *out,
                    std::string *error) {
  const std::string where = "relay endpoint " + std::to_string(index + 1) + ": ";
  if (address_type(e.address) == sdp_addr_x) {
    return fail(error, where + "\"" + printable(e.address) + "\" is not an IPv4 or IPv6 address");
  }
  if (e.rtcp_port == 0 && e.rtp_port == 65535) {
    return fail(error, where + "RTP port 65535 leaves no port + 1 for RTCP");
  }
  out->address = e.address;
  out->rtp_port = e.rtp_port;
  out->rtcp_port = e.rtcp_port ? e.rtcp_port : static_cast<uint16_t>(e.rtp_port + 1);
  out->rtcp_mux = e.rtcp_mux;
  return true;
}

const char *address_type_name(const std::string &address) {
  return address_type(address) == sdp_addr_ip6 ? "IP6" : "IP4";
}

// The name of an a=rtcp that point_rtcp added (told apart by its address),
// so that a later print of the same document can take it out again.
const char kAddedRtcp[] = "rtcp";

bool point_rtcp(su_home_t *home, sdp_media_t *m, const CheckedEndpoint &e) {
  for (sdp_attribute_t **at = &m->m_attributes; *at; at = &(*at)->a_next) {
    sdp_attribute_t *a = *at;
    if (!ascii::iequals(a->a_name, "rtcp")) continue;
    if (a->a_name == kAddedRtcp && e.rtcp_port == e.rtp_port + 1) {
      *at = a->a_next;  // the RFC 3550 default needs none
      return true;
    }
    RtcpAttribute old;
    parse_rtcp_attribute(a->a_value ? a->a_value : "", &old);  // checked by load()
    std::string value = std::to_string(e.rtcp_port);
    if (!old.address.empty()) {
      value += std::string(" IN ") + address_type_name(e.address) + " " + e.address;
    }
    a->a_value = su_strdup(home, value.c_str());
    return a->a_value != nullptr;
  }
  if (e.rtcp_port == e.rtp_port + 1) return true;  // the RFC 3550 default needs no a=rtcp
  auto *a = static_cast<sdp_attribute_t *>(su_salloc(home, sizeof(sdp_attribute_t)));
  if (!a) return false;
  a->a_name = kAddedRtcp;
  a->a_value = su_strdup(home, std::to_string(e.rtcp_port).c_str());
  sdp_attribute_t **tail = &m->m_attributes;
  while (*tail) tail = &(*tail)->a_next;
  *tail = a;
  return a->a_value != nullptr;
}

// The relay's ICE-lite attributes on one m= line (RFC 8839 §5.1, §5.4): its
// credentials and one host candidate per component at the relay's address.
// Priority per RFC 8445 §5.1.2.1: type preference 126 (host), local
// preference 65535, 256 - component.
bool add_ice_lite(su_home_t *home, sdp_media_t *m, const CheckedEndpoint &e,
                  const RelayEndpoint::Ice &ice) {
  auto candidate = [&](int component, uint16_t port) {
    const uint32_t priority = (126u << 24) | (65535u << 8) | (256u - component);
    return "1 " + std::to_string(component) + " UDP " + std::to_string(priority) + " " + e.address +
           " " + std::to_string(port) + " typ host";
  };
  const std::string c1 = candidate(1, e.rtp_port);
  if (!append_attribute(home, &m->m_attributes, "ice-ufrag", &ice.ufrag) ||
      !append_attribute(home, &m->m_attributes, "ice-pwd", &ice.pwd) ||
      !append_attribute(home, &m->m_attributes, "candidate", &c1))
    return false;
  if (!ice.rtcp_candidate) return true;
  const std::string c2 = candidate(2, e.rtcp_port);
  return append_attribute(home, &m->m_attributes, "candidate", &c2);
}

// The lines of an SDP body split as scan_lines() splits them, blanks dropped.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find_first_of("\r\n", pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = skip_blanks(text.substr(pos, end - pos));
    if (!line.empty()) lines.push_back(line);
    pos = text.find_first_not_of("\r\n", end);
    if (pos == std::string_view::npos) break;
  }
  return lines;
}

// "m=video 5004 RTP/AVP 96 97" -> "m=video 0 RTP/AVP 96 97" (RFC 3264 §6: a
// rejected stream keeps its formats).
std::string rejected_media_line(std::string_view m_line) {
  std::string_view rest = m_line.substr(2);
  std::string out = "m=" + std::string(next_word(&rest)) + " 0";
  next_word(&rest);  // the port
  for (std::string_view w = next_word(&rest); !w.empty(); w = next_word(&rest))
    out += " " + std::string(w);
  return out;
}

}  // namespace

std::optional<Session> parse(std::string_view text, std::string *error) {
  Document doc;
  if (!doc.load(text, error)) return std::nullopt;
  return doc.summary();
}

Rewriter::Rewriter() = default;
Rewriter::~Rewriter() = default;

bool Rewriter::load(std::string_view text, std::string *error) {
  doc_ = std::make_unique<Document>();
  relayed_.clear();
  if (doc_->load(text, error)) return true;
  doc_.reset();
  return false;
}

const Session &Rewriter::summary() const { return doc_->summary(); }

std::optional<std::string> rewrite(std::string_view text,
                                   const std::vector<RelayEndpoint> &endpoints,
                                   std::string *error) {
  Rewriter r;
  if (!r.load(text, error)) return std::nullopt;
  return r.print(endpoints, error);
}

std::optional<std::string> Rewriter::print(const std::vector<RelayEndpoint> &endpoints,
                                           std::string *error) {
  if (!doc_) {
    fail(error, "SDP: nothing loaded");
    return std::nullopt;
  }
  Document &doc = *doc_;
  const auto &media = doc.media();
  const auto &summary = doc.summary().media;
  if (endpoints.size() != media.size()) {
    fail(error, "SDP has " + std::to_string(media.size()) + " m= lines but " +
                    std::to_string(endpoints.size()) +
                    " relay endpoints were given (RFC 3264 section 6 keeps every m= line)");
    return std::nullopt;
  }
  // nullopt: the line is or becomes rejected, with port 0.
  std::vector<std::optional<CheckedEndpoint>> relay(media.size());
  for (size_t i = 0; i < media.size(); ++i) {
    if (summary[i].port == 0 || endpoints[i].rtp_port == 0) continue;
    relay[i].emplace();
    if (!check_endpoint(i, endpoints[i], &*relay[i], error)) return std::nullopt;
  }
  // A line rejected by a print keeps what an earlier print wrote into it:
  // every print relays the same lines (the branches differ in ports only).
  std::vector<bool> relayed(media.size());
  for (size_t i = 0; i < media.size(); ++i) relayed[i] = relay[i].has_value();
  if (!relayed_.empty() && relayed != relayed_) {
    fail(error, "SDP: this print relays other m= lines than the one before");
    return std::nullopt;
  }
  relayed_ = relayed;

  su_home_t *home = doc.home();
  sdp_session_t *session = doc.session();
  remove_relay_incompatible_attributes(&session->sdp_attributes);
  // RFC 8839 §5.3: a=ice-lite is a session-level attribute.
  for (size_t i = 0; i < media.size(); ++i)
    if (relay[i] && endpoints[i].ice) {
      if (!append_attribute(home, &session->sdp_attributes, "ice-lite", nullptr)) {
        fail(error, "SDP: out of memory");
        return std::nullopt;
      }
      break;
    }

  // The session c= takes the first live stream's relay address, so that in the
  // usual case (one relay address) no media needs a c= of its own.
  auto out_of_memory = [&] {
    fail(error, "SDP: out of memory");
    return std::nullopt;
  };
  sdp_connection_t *session_c = session->sdp_connection;
  for (const auto &r : relay) {
    if (r && session_c) {
      if (!point_connection(home, session_c, r->address)) return out_of_memory();
      break;
    }
  }

  for (size_t i = 0; i < media.size(); ++i) {
    sdp_media_t *m = media[i];
    remove_relay_incompatible_attributes(&m->m_attributes);
    if (endpoints[i].crypto) {
      remove_attributes(&m->m_attributes, "crypto");
      for (const std::string &value : *endpoints[i].crypto)
        if (!append_attribute(home, &m->m_attributes, "crypto", &value)) return out_of_memory();
    }
    if (!relay[i]) {
      // A stream the relay cannot carry is refused the way an answerer would
      // (RFC 3264 section 6), in an offer too (section 8.2); a rejected one stays
      // as it was written.
      m->m_port = 0;
      m->m_rejected = 1;
      continue;
    }
    const CheckedEndpoint &e = *relay[i];
    m->m_port = e.rtp_port;
    m->m_rejected = 0;  // an earlier print may have rejected it
    if (m->m_connections) {
      if (!point_connection(home, m->m_connections, e.address)) return out_of_memory();
      m->m_connections->c_next = nullptr;  // layered multicast addresses: one relay address
    } else if (!session_c || e.address != session_c->c_address) {
      auto *c = static_cast<sdp_connection_t *>(su_salloc(home, sizeof(sdp_connection_t)));
      if (!c || !point_connection(home, c, e.address)) return out_of_memory();
      m->m_connections = c;
    }
    if (!point_rtcp(home, m, e)) return out_of_memory();
    if (e.rtcp_mux && !append_attribute(home, &m->m_attributes, "rtcp-mux", nullptr))
      return out_of_memory();
    if (endpoints[i].ice && !add_ice_lite(home, m, e, *endpoints[i].ice)) return out_of_memory();
  }

  std::unique_ptr<sdp_printer_t, PrinterFree> printer(
      sdp_print(home, session, nullptr, 0, sdp_f_mode_manual));
  const char *message = sdp_message(printer.get());
  if (!message) {
    const char *why = sdp_printing_error(printer.get());
    fail(error, "SDP: cannot print: " + printable(why ? why : "unknown error", 128));
    return std::nullopt;
  }
  return std::string(message, sdp_message_size(printer.get()));
}

std::optional<std::string> restore_rejected_lines(std::string_view offer, std::string_view answer,
                                                  std::string *error) {
  auto offered = parse(offer, error);
  if (!offered) return std::nullopt;
  auto answered = parse(answer, error);
  if (!answered) return std::nullopt;
  return restore_rejected_lines(offer, *offered, answer, *answered, error);
}

std::optional<std::string> restore_rejected_lines(std::string_view offer, const Session &offered,
                                                  std::string_view answer, const Session &answered,
                                                  std::string *error) {
  const auto &om = offered.media;
  const auto &am = answered.media;
  if (am.size() == om.size()) {
    // Lines correspond by position: an accepted answer line of another media
    // type answers nothing of the offer, and the relay would connect it to
    // the offered stream's ports. A rejected one (port 0) is harmless.
    for (size_t i = 0; i < om.size(); ++i)
      if (am[i].port != 0 && !ascii::iequals(am[i].type, om[i].type)) {
        fail(error, "answer m= line " + std::to_string(i + 1) + " (" + printable(am[i].type) +
                        ") answers an m=" + printable(om[i].type) +
                        " line of the offer (RFC 3264 section 6)");
        return std::nullopt;
      }
    return std::string(answer);
  }
  if (am.size() > om.size()) {
    fail(error, "the answer has " + std::to_string(am.size()) + " m= lines, the offer " +
                    std::to_string(om.size()) + " (RFC 3264 section 6)");
    return std::nullopt;
  }

  // The answer as its session part and one block of lines per m= line.
  std::vector<std::string_view> offer_m_lines;
  for (std::string_view line : split_lines(offer))
    if (line.substr(0, 2) == "m=") offer_m_lines.push_back(line);
  std::string session_part;
  std::vector<std::string> blocks;
  for (std::string_view line : split_lines(answer)) {
    if (line.substr(0, 2) == "m=") blocks.emplace_back();
    (blocks.empty() ? session_part : blocks.back()) += std::string(line) + "\r\n";
  }
  if (offer_m_lines.size() != om.size() || blocks.size() != am.size()) {
    fail(error, "SDP: m= lines do not match what was parsed");
    return std::nullopt;
  }

  std::string out = session_part;
  size_t next = 0;  // the next answer line not yet placed
  for (size_t i = 0; i < om.size(); ++i) {
    if (next < am.size() && ascii::iequals(am[next].type, om[i].type)) {
      out += blocks[next++];
    } else {
      out += rejected_media_line(offer_m_lines[i]) + "\r\n";
    }
  }
  if (next != am.size()) {
    fail(error, "answer m= line " + std::to_string(next + 1) + " (" + printable(am[next].type) +
                    ") matches no line of the offer in order (RFC 3264 section 6)");
    return std::nullopt;
  }
  return out;
}

}  // namespace portier::sdp
