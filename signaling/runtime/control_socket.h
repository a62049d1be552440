// The local control socket of a daemon: a UNIX stream socket, one command per
// line ("registrations", "calls", "ping" ...), one JSON reply per line. Its fds
// are watched by the daemon's sofia-sip root, so handlers run on the same
// thread as SIP (whichever loop drives the root) and need no locks.
#pragma once

#include <sofia-sip/su_wait.h>

#include <functional>
#include <string>

namespace portier {

class ControlSocket {
 public:
  // Gets the command line (without newline); returns the JSON reply (one line).
  using Handler = std::function<std::string(const std::string &command)>;

  ControlSocket() = default;
  ~ControlSocket();
  ControlSocket(const ControlSocket &) = delete;
  ControlSocket &operator=(const ControlSocket &) = delete;

  // Binds `path` (a stale socket file is replaced), mode 0660, and starts serving
  // on `root`.
  bool open(su_root_t *root, const std::string &path, Handler handler, std::string *error);
  void close();

 private:
  struct Client;
  static int on_accept(su_root_magic_t *, su_wait_t *w, su_wakeup_arg_t *self);
  static int on_client(su_root_magic_t *, su_wait_t *w, su_wakeup_arg_t *client);
  // Reads what the client sent and answers each complete line; false when the
  // client is gone or misbehaves and must be dropped.
  bool serve(Client *c);
  void drop(Client *c);

  su_root_t *root_ = nullptr;
  std::string path_;
  Handler handler_;
  int listen_fd_ = -1;
  su_wait_t listen_wait_[1] = {};
  int listen_index_ = -1;
  Client *clients_ = nullptr;
};

}  // namespace portier
