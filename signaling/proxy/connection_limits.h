// The proxy's accounting of the TCP/TLS connections it accepted, without SIP
// stack types: the glue (tcp_connections.h) shows it the open connections once
// a second and asks it about each connection being accepted, and it says
// which ones to close or refuse. Time is passed in, so tests drive it.
//
// What sofia-sip 1.12.11's tport does itself (read in libsofia-sip-ua/tport/
// tport.c and tport_type_tcp.c), and why this class exists beside it:
// - tport_accept() (and tport_tls_accept() for TLS) accepts every connection,
//   one per readable event of the listening socket, with no limit of any kind
//   and no hook for the stack. On EMFILE it reports the error and returns; the
//   listening socket stays readable and the main loop calls it again at once,
//   for ever (accept_guard.h).
// - TPTAG_IDLE(ms) closes a connection when nothing was received and nothing
//   sent for that long, but only when nobody holds a reference to it
//   (tp_refs == 0: no transaction, no tport_ref()). A CRLFCRLF keep-alive
//   counts as received data. Default: never.
// - TPTAG_TIMEOUT(ms) applies while a message is half read: when no byte came
//   for that long, the partial message is handed to nta marked as truncated;
//   nta answers 400 when it has a Via and shuts the connection for writing
//   (FIN), but sofia goes on reading it until the peer closes or the idle rule
//   comes (the glue closes such half-closed connections). It counts from the
//   last byte, not from the message's start: a peer that trickles a byte now
//   and then never meets it. Default: never. TLS connections have no such
//   timer at all (tport_type_tls.c sets no vtp_secondary_timer): only the
//   idle rule, and ours, apply to them, handshake included.
// - TPTAG_KEEPALIVE(ms) makes the proxy send CRLFCRLF pings itself, and
//   TPTAG_PINGPONG(ms) closes when the pong does not come (RFC 5626 §4.4.1);
//   we leave both off: the devices ping, and TPTAG_PONG2PING answers them.
// - TPTAG_QUEUESIZE is the listen() backlog and the per-connection send queue
//   (at most 1000), not a connection limit.
// - Parameters live on the primary transport and every connection shares
//   them: one idle time for all, nothing per connection.
// - tport_secondary() returns the root of a red-black tree of connections
//   (ordered by peer address) and tport_next() its successors: the public API
//   cannot list the connections left of the root. So the glue lists accepted
//   connections from the kernel's side (our sockets whose local address is a
//   listening address) and closes one with shutdown(2), which sofia sees as the
//   peer's hang-up and cleans up itself.
// So the per-source limit, the longer life of a connection that carries a
// registration (a tport reference held while the binding lives keeps sofia's
// idle rule off it) and a bound on connections that trickle bytes or send only
// keep-alives without ever registering are ours, here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace portier::proxy {

// One accepted connection as the glue sees it.
struct OpenConnection {
  std::string key;          // "peer-host:peer-port>local-port", unique while open
  std::string host;         // peer address, IPv6 without brackets
  bool registered = false;  // a live binding came over it (its flow, RFC 5626)
};

struct Closing {
  enum class Why { Idle, OverLimit, NoDescriptors };
  std::string key;
  std::string host;
  Why why;
};

class ConnectionLimits {
 public:
  struct Settings {
    size_t max_per_source = 64;  // open connections from one peer address
    int64_t idle_ms = 3600000;   // without a SIP request, when not registered
    // A new connection without a first complete request: a peer that
    // connects and dribbles (or sends nothing, or never ends its TLS
    // handshake) waits this long, not idle_ms.
    int64_t first_request_ms = 60000;
  };

  explicit ConnectionLimits(Settings settings) : settings_(settings) {}

  // A SIP request came over the connection: it is in use. Returns false when
  // the connection was not known yet.
  bool note_request(const std::string &key, int64_t now_ms);

  // Every open connection, now; returns those to close. Per
  // source, registered connections are kept whatever their number; of the
  // others the oldest are kept up to the limit and the newest closed, so a
  // flood costs the flooding host its own newest connections and leaves the
  // earlier ones alone. An unregistered connection without a request for
  // idle_ms is closed (keep-alives and trickled bytes do not count), and one
  // that has not completed its first request within first_request_ms.
  // Connections not listed are forgotten.
  // When more than max_accepted remain (the file descriptors left), the newest
  // unregistered ones go, whatever their source.
  std::vector<Closing> review(const std::vector<OpenConnection> &open, int64_t now_ms,
                              size_t max_accepted = SIZE_MAX);

  // A connection being accepted (before sofia sees it): false when its source
  // already holds max_per_source, counting from the last review.
  bool accept_from(const std::string &host);

  size_t tracked() const { return entries_.size(); }

 private:
  struct Entry {
    uint64_t seq = 0;          // order of first sight: lower is older
    int64_t last_request = 0;  // ms; first sight until a request comes
    bool requested = false;    // a request came
  };
  Entry &sight(const std::string &key, int64_t now_ms, bool *is_new);

  Settings settings_;
  std::map<std::string, Entry> entries_;
  uint64_t next_seq_ = 0;
  // Connections per source after the last review, plus those accepted since.
  std::map<std::string, size_t> open_by_host_;
};

}  // namespace portier::proxy
