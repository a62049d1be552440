// The relay's side of ICE-lite (RFC 8445 §2.5): it gathers nothing and sends
// no checks; it answers the Binding requests a full agent (the phone, always
// controlling against a lite agent, §6.1.1) sends to the relay's host
// candidates, and takes the pair the phone nominates (§7.3.1.5). The check's
// MESSAGE-INTEGRITY, keyed with the ice-pwd only the signalling carried, is
// what lets a packet move a leg's media: the secure latch.
//
// A small STUN codec (RFC 5389/8489, short-term credentials only) of our own
// rather than libnice's: the relay's I/O threads read batches with
// recvmmsg() into pool buffers and answer in place, and need a pure function
// from (request bytes, credentials, source) to (verdict, response bytes) with
// no agent, no GLib main loop and no allocation per packet. HMAC-SHA1 is
// OpenSSL's (the relay links libcrypto for SRTP already).
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace portier::proxy::ice {

// One leg's credentials (RFC 8445 §5.3): ours, sent in the SDP to the device,
// and the device's ufrag from its SDP.
struct Credentials {
  std::string local_ufrag;
  std::string local_pwd;
  std::string remote_ufrag;  // empty: any (the device's SDP had none we could read)

  // Fresh random ones: 8 ice-chars of ufrag (RFC 8445 §5.3: at least 24 bits
  // of randomness), 24 of password (at least 128 bits; 6 bits a char);
  // nullopt when the system has no random bytes.
  static std::optional<Credentials> generate();
};

// RFC 7983 §7: a datagram whose first byte is 0..3 is STUN (RTP and RTCP are
// 128..191).
inline bool is_stun(const uint8_t *data, size_t size) { return size > 0 && data[0] < 4; }

enum class Verdict {
  Success,       // a valid check: answered with a success response
  BadRequest,    // 400 (RFC 5389 §10.1.2: no USERNAME or MESSAGE-INTEGRITY; no PRIORITY)
  Unauthorized,  // 401 (an unknown USERNAME, a wrong MESSAGE-INTEGRITY)
  UnknownAttribute,  // 420 (a comprehension-required attribute we do not know, §7.3.1)
  Dropped,  // no answer: not STUN, malformed, a bad FINGERPRINT (RFC 5389 §7.3), not a
            // Binding request (indications are keep-alives, RFC 8445 §11)
};

struct Answer {
  Verdict verdict = Verdict::Dropped;
  bool use_candidate = false;  // a Success that nominates the pair (RFC 8445 §7.3.1.5)
  // A Success from a peer that says it is the controlled agent (ICE-CONTROLLED).
  // Against a lite agent the full one must control (RFC 8445 §6.1.1), but
  // liblinphone 5.1 as the answerer stays controlled whatever the offer
  // says: it then never nominates, and its valid checks are all the relay
  // will get (the relay, lite, cannot nominate either).
  bool peer_controlled = false;
  size_t size = 0;             // the response's bytes in the caller's buffer; 0 for Dropped
};

// The largest response answer() writes.
constexpr size_t kMaxResponse = 128;

// Checks the Binding request `req` (a whole datagram) that came from `from`
// against `creds` and writes the response into `out` (kMaxResponse bytes):
// a success carries XOR-MAPPED-ADDRESS (the source as the relay saw it),
// MESSAGE-INTEGRITY (our ice-pwd) and FINGERPRINT; an error carries
// ERROR-CODE (and UNKNOWN-ATTRIBUTES for 420) and FINGERPRINT, never
// MESSAGE-INTEGRITY (its key was not proven). Never reads past `size`.
Answer answer(const uint8_t *req, size_t size, const Credentials &creds,
              const sockaddr_storage &from, socklen_t from_len, uint8_t *out);

// Test helpers (the unit tests' phone): a Binding request as a full
// controlling agent sends it (RFC 8445 §7.2.2), and a response's
// XOR-MAPPED-ADDRESS / ERROR-CODE, checked with `pwd` when it is not empty.
struct Request {
  std::string username;  // "theirs:ours" as the sender writes it
  std::string pwd;       // the receiver's ice-pwd: the MESSAGE-INTEGRITY key
  bool use_candidate = false;
  bool controlled = false;  // ICE-CONTROLLED instead of ICE-CONTROLLING
  bool integrity = true;
  bool fingerprint = true;
  bool priority = true;
  uint16_t extra_attribute = 0;  // not 0: an empty attribute of this type before MI
  uint8_t transaction[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
};
std::string build_request(const Request &r);
// `msg` (a STUN message without FINGERPRINT) with one appended.
std::string add_fingerprint(const std::string &msg);
struct Parsed {
  uint16_t type = 0;      // 0x0101 success, 0x0111 error
  int error_code = 0;     // 400, 401, 420
  std::string mapped;     // "127.0.0.1:4000" from XOR-MAPPED-ADDRESS
  bool integrity_ok = false;
  bool fingerprint_ok = false;
  bool has_integrity = false;
  uint8_t transaction[12] = {};
};
std::optional<Parsed> parse_response(const uint8_t *data, size_t size, const std::string &pwd);

}  // namespace portier::proxy::ice
