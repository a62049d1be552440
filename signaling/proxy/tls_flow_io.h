// RFC 5626 §4.4.1 keep-alives on a TLS connection sofia-sip made, which its
// tport cannot do itself: Debian's sofia-sip 1.12 has no keep-alive timer on
// TLS (tport_type_tls.c's vtables leave vtp_next_secondary_timer and
// vtp_secondary_timer NULL, so TPTAG_KEEPALIVE and TPTAG_PINGPONG do
// nothing there), and its ping writes "\r\n\r\n" with send() on the raw
// socket (tport_tcp_ping), which would break a TLS stream. So the proxy
// finds the connection's SSL itself (it defines SSL_set_bio and SSL_free for
// its executable, as tls/ defines SSL_CTX_new), writes the ping through it
// between two messages only (tport_queuelen zero: sofia keeps a message it
// could not finish in its queue; and never while OpenSSL waits to finish a
// write), and reads the kernel's count of
// bytes received (TCP_INFO) to see the pong or anything else come back.
#pragma once

#include <sys/socket.h>

#include <cstdint>

struct ssl_st;

namespace portier::proxy::flow_io {

struct Handle {
  int fd = -1;
  ssl_st *ssl = nullptr;
  explicit operator bool() const { return ssl != nullptr; }
};

// Starts tracking the SSL of each new connection; before, nothing is kept.
void enable();
// The newest TLS connection whose peer is `peer` (what sofia's
// tport_get_address says of the connection); empty when none is known.
Handle find(const sockaddr *peer, socklen_t len);
enum class PingResult { sent, skipped, failed };
// Writes CRLFCRLF through h's SSL when it is still the SSL of h's socket.
// `skipped`: OpenSSL still has a write to finish (SSL_want_write) or the
// socket has no room now; a ping then would break the stream, and the write
// under way is traffic anyway. The caller must also check that sofia has no
// message queued (tport_queuelen) first. `failed`: gone or not written.
PingResult ping(const Handle &h);
// Answer CRLFCRLF pings on every TLS connection with CRLF from now on (RFC
// 5626 §4.4.1; sofia-sip does so on TCP only): the cloud's side of a house's
// keep-alives, and of every phone's that keeps its TLS flow alive that way.
void enable_pongs();
// The bytes the kernel received on fd so far (TCP_INFO); 0 when unknown.
uint64_t bytes_received(int fd);

}  // namespace portier::proxy::flow_io
