// One TLS record per SIP message on sofia-sip's TLS transports.
//
// Why: sofia-sip 1.12's tport_tls_send() writes a message with one SSL_write()
// per piece of its iovec: the code that copies the pieces into one buffer
// first is compiled out (`#if 0` around the buffer's allocation in
// tport_type_tls.c, in the 2011 tree Debian ships and in FreeSWITCH's fork
// alike). A message's pieces are its header fragments where they lie: a
// response copied from the request's Via, From, To, Call-ID and CSeq, a
// forwarded request with the headers the proxy added, lie in 6-10 places. So
// each message went out as ~9 TLS records and ~9 write() system calls
// (strace: 17,290 writes for 1,000 REGISTERs, 2,000 responses), each record
// with its own AEAD set-up, header and tag: about 66,000 instructions per
// SSL_write of a REGISTER's answer, and ~200 bytes of overhead on the wire.
//
// How: tport calls msg_iovec() through its PLT to collect the pieces, so the
// executable's own msg_iovec() (one_record.cpp) stands in: it asks sofia's, and
// when a message bound for a stream transport (TCP or TLS: msg_addrinfo's
// socket type) comes in more than one piece, copies the pieces into one
// buffer of the message's own home and points every fragment into it, so the
// fragments are contiguous and sofia's own merge makes them one piece (this
// call and every later one, e.g. a retransmission over TCP). A fragment that
// changes afterwards is printed anew by sofia and the message is joined again
// on its next send. UDP messages are left as they are: sendmsg() takes the
// pieces in one call anyway.
#pragma once

#include <cstdint>

namespace portier::tls {

struct OneRecordStats {
  bool active = false;  // sofia's msg_iovec calls reach ours
  uint64_t joined = 0;  // messages made one piece
  uint64_t pieces = 0;  // the pieces they had
};
// Also what links the interposer into a daemon that makes TLS transports.
OneRecordStats one_record_stats();

}  // namespace portier::tls
