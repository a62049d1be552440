// Two system calls fewer per SIP datagram on sofia-sip's UDP transport.
//
// Why: sofia-sip 1.12 (tport_type_udp.c) asks the kernel three times for each
// datagram it reads and twice for each it sends:
// - in: ioctl(FIONREAD) through su_getmsgsize() to size the message buffer,
//   then recvmsg() through su_vrecv();
// - out: getsockopt(SO_ERROR) through su_soerror() to clear an error an ICMP
//   message may have left on the socket, then sendmsg() through su_vsend().
// A system call costs 1-1.5 us on a virtual machine, and an authenticated
// REGISTER is four datagrams: ~5 us of the ~55 it cost, the gap to Kamailio,
// which reads with one recvfrom() and writes with one sendto().
//
// How: libsofia-sip-ua calls those four helpers through its PLT, so the
// proxy's own definitions (udp_fastpath.cpp, exported from the executable)
// stand in for them. For the agent's UDP sockets only, and nothing else:
// - su_getmsgsize() reads the datagram itself (one recvmsg into a buffer kept
//   here) and returns its size; the su_vrecv() that sofia makes next copies it
//   out instead of reading again;
// - su_soerror() is skipped; instead a send that fails is tried once more, as
//   a failure of a UDP send can be an ICMP error left by an earlier datagram
//   to another host (the failed call clears it, Linux's sock_error()). A real
//   error fails twice and is reported as before. ICMP errors still reach
//   sofia through the error queue (IP_RECVERR), as before.
// Every other socket, and every other caller, goes to sofia's own functions.
//
// It is on only where it was checked: sofia-sip 1.12.11, whose transport
// calls the helpers in that order. Another version, a static link or
// PORTIER_UDP_FASTPATH=0 in the environment leaves sofia as it is, and
// `portierctl stats` says which ("udp_fastpath").
#pragma once

#include <sofia-sip/su.h>
#include <sofia-sip/tport.h>

#include <cstdint>
#include <string>

namespace portier::proxy::udp_fastpath {

// Takes over the agent's UDP transports (tports: nta_agent_tports()). Returns
// false, with the reason in status(), where the fast path stays off.
bool attach(tport_t *tports);
// Gives every socket back to sofia (before the agent is destroyed).
void detach();

// Why the fast path cannot work in this process, or "" when it can.
std::string unavailable();
// Takes over one UDP socket, as attach() does each of the agent's (and tests
// do theirs); false when unavailable() or when 32 are taken already.
bool take_socket(int fd);

struct Status {
  bool active = false;
  std::string why;         // when not active
  uint64_t datagrams = 0;  // read through the fast path
  uint64_t resends = 0;    // sends tried again after a failure
  unsigned sockets = 0;    // UDP sockets taken over
};
Status status();

}  // namespace portier::proxy::udp_fastpath
