#include "tls/one_record.h"

#include <dlfcn.h>
#include <sofia-sip/msg.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/su_alloc.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>

namespace portier::tls {
namespace {

using MsgIovec = isize_t (*)(msg_t *, msg_iovec_t[], isize_t);

MsgIovec real_msg_iovec() {
  static const MsgIovec real = reinterpret_cast<MsgIovec>(dlsym(RTLD_NEXT, "msg_iovec"));
  return real;
}

// Counted from sofia's threads (nua runs its own): relaxed atomics.
std::atomic<bool> g_called{false};
std::atomic<uint64_t> g_joined{0};
std::atomic<uint64_t> g_pieces{0};

bool for_a_stream(msg_t *msg) {
  const su_addrinfo_t *ai = msg_addrinfo(msg);
  return ai && ai->ai_socktype == SOCK_STREAM;
}

// Copies the fragments into one block of the message's home and points them
// into it; false (nothing changed) when a fragment has no text yet or the
// block cannot be had.
bool join(msg_t *msg, size_t total) {
  msg_header_t **head = msg_chain_head(msg);
  if (!head || total == 0) return false;
  char *block = static_cast<char *>(su_alloc(msg_home(msg), total));
  if (!block) return false;
  size_t at = 0;
  for (msg_header_t *h = *head; h; h = h->sh_succ) {
    if (!h->sh_data || at + h->sh_len > total) {
      su_free(msg_home(msg), block);
      return false;
    }
    at += h->sh_len;
  }
  at = 0;
  for (msg_header_t *h = *head; h; h = h->sh_succ) {
    // Pieces of one source already in order (a header line's values) stay in
    // order here too: each fragment takes the next h_len bytes.
    memcpy(block + at, h->sh_data, h->sh_len);
    h->sh_data = block + at;
    at += h->sh_len;
  }
  return at == total;
}

}  // namespace

OneRecordStats one_record_stats() {
  return {g_called.load(std::memory_order_relaxed), g_joined.load(std::memory_order_relaxed),
          g_pieces.load(std::memory_order_relaxed)};
}

}  // namespace portier::tls

using namespace portier::tls;

// The executable's definition, which sofia's tport binds to (one_record.h).
extern "C" __attribute__((visibility("default"))) isize_t msg_iovec(msg_t *msg, msg_iovec_t vec[],
                                                                    isize_t veclen) {
  MsgIovec real = real_msg_iovec();
  if (!real) return 0;  // sofia not loaded: nothing calls this then
  g_called.store(true, std::memory_order_relaxed);
  isize_t n = real(msg, vec, veclen);
  if (n <= 1 || !vec || n > veclen || !msg || !for_a_stream(msg)) return n;
  size_t total = 0;
  for (isize_t i = 0; i < n; ++i) total += vec[i].mv_len;
  if (!join(msg, total)) return n;
  g_joined.fetch_add(1, std::memory_order_relaxed);
  g_pieces.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
  return real(msg, vec, veclen);
}
