// Every connection the proxy accepts passes here first. sofia-sip's
// tport_accept() calls accept(2) each time a listening socket is readable and
// offers no hook between the two (connection_limits.h), so the proxy's
// executable defines accept() itself: the dynamic linker binds
// libsofia-sip-ua's call to it. Two things happen there:
// - Out of file descriptors (EMFILE), accept() fails, the connection stays
//   queued, the socket stays readable and the main loop calls sofia again at
//   once, for ever: the proxy spun at full CPU for as long as the flood held
//   its connections. The guard keeps one descriptor in reserve, takes the
//   waiting connection with it and closes it at once, so the queue drains.
// - A filter (TcpConnections: the per-source limit) may refuse a connection
//   before sofia ever sees it; it is closed at once.
// Nothing else in the proxy calls accept() (GLib and the control socket use
// accept4(), which the guard itself calls).
#pragma once

#include <sys/socket.h>

#include <cstddef>

namespace portier::proxy::accept_guard {

// Returns false when the connection must be refused.
using Filter = bool (*)(const sockaddr *peer, void *data);

// Opens the reserve descriptor (idempotent). False when none is left.
bool arm();
void set_filter(Filter filter, void *data);
// Connections closed at accept() since the last call, for want of descriptors
// and by the filter.
size_t take_refused_no_fd();
size_t take_refused_by_filter();
// Connections accept(2) returned since the last call, refused ones included.
size_t take_accepted();

}  // namespace portier::proxy::accept_guard
