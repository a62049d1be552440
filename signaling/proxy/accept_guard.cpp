#include "proxy/accept_guard.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

namespace portier::proxy::accept_guard {
namespace {

int g_reserve = -1;
Filter g_filter = nullptr;
void *g_filter_data = nullptr;
// sofia accepts on the main loop's thread only; atomics keep the counters sound
// if that ever changes.
std::atomic<size_t> g_no_fd{0};
std::atomic<size_t> g_by_filter{0};
std::atomic<size_t> g_accepted{0};

void reset_and_close(int fd) {
  // RST at once, and no TIME_WAIT left on our side for the refused.
  struct linger lg {
    1, 0
  };
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
}

}  // namespace

bool arm() {
  if (g_reserve < 0) g_reserve = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return g_reserve >= 0;
}

void set_filter(Filter filter, void *data) {
  g_filter = filter;
  g_filter_data = data;
}

size_t take_refused_no_fd() { return g_no_fd.exchange(0); }
size_t take_refused_by_filter() { return g_by_filter.exchange(0); }
size_t take_accepted() { return g_accepted.exchange(0); }

namespace {

int guarded_accept(int fd, sockaddr *addr, socklen_t *len) {
  sockaddr_storage peer{};
  socklen_t peer_len = sizeof peer;
  int s = accept4(fd, reinterpret_cast<sockaddr *>(&peer), &peer_len, 0);
  if (s < 0) {
    const int err = errno;
    if ((err == EMFILE || err == ENFILE) && g_reserve >= 0) {
      close(g_reserve);
      g_reserve = -1;
      const int t = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (t >= 0) reset_and_close(t), ++g_no_fd;
      arm();
    }
    errno = err;
    return -1;
  }
  ++g_accepted;
  if (g_filter && !g_filter(reinterpret_cast<sockaddr *>(&peer), g_filter_data)) {
    reset_and_close(s);
    ++g_by_filter;
    // An aborted connection, as accept(2) reports one a peer reset early:
    // sofia logs it and waits for the next.
    errno = ECONNABORTED;
    return -1;
  }
  if (addr && len) {
    const socklen_t n = *len < peer_len ? *len : peer_len;
    memcpy(addr, &peer, n);
    *len = peer_len;
  }
  return s;
}

}  // namespace
}  // namespace portier::proxy::accept_guard

// The definition the dynamic linker binds libsofia-sip-ua's accept() to (see
// accept_guard.h). Same signature as <sys/socket.h> declares.
extern "C" int accept(int fd, __SOCKADDR_ARG addr, socklen_t *__restrict len) {
  return portier::proxy::accept_guard::guarded_accept(fd, addr, len);
}
