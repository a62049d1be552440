// The proxy's own inet_ntop, which every caller in the process binds to ahead
// of the C library's (the executable's symbols come first), sofia-sip among them.
//
// Why: sofia-sip prints the source address of every datagram it takes in twice
// (tport_deliver names the sender; nta's Via check compares it with the sent-by
// host for received=), and glibc prints an IPv4 address with one sprintf per
// byte: 1.7k instructions a call, 7k of an authenticated REGISTER's two
// requests. IPv4 is printed here, byte for byte what glibc prints; any other
// family goes to the C library's own.
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/sip_text.h"

extern "C" const char *inet_ntop(int af, const void *src, char *dst, socklen_t size) noexcept {
  if (af == AF_INET) {
    char text[portier::siptext::kIpv4TextSize];
    const size_t n = portier::siptext::ipv4_text(static_cast<const unsigned char *>(src), text);
    if (n >= size) {
      errno = ENOSPC;
      return nullptr;
    }
    return static_cast<const char *>(std::memcpy(dst, text, n + 1));
  }
  using Libc = const char *(*)(int, const void *, char *, socklen_t);
  static const Libc libc = reinterpret_cast<Libc>(dlsym(RTLD_NEXT, "inet_ntop"));
  if (!libc) {
    errno = EAFNOSUPPORT;
    return nullptr;
  }
  return libc(af, src, dst, size);
}
