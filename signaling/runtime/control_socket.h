// The local control socket of a daemon: a UNIX stream socket, one command per
// line ("registrations", "calls", "ping" ...), one JSON reply per line. Runs on
// the GLib main loop, so handlers run on the same thread as SIP and need no locks.
#pragma once

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

  // Binds `path` (a stale socket file is replaced), mode 0660, and starts serving.
  bool open(const std::string &path, Handler handler, std::string *error);
  void close();

 private:
  struct Client;
  static int on_accept(int fd, unsigned condition, void *self);
  static int on_client(int fd, unsigned condition, void *client);
  void drop(Client *c);

  std::string path_;
  Handler handler_;
  int listen_fd_ = -1;
  unsigned listen_source_ = 0;
  Client *clients_ = nullptr;
};

}  // namespace portier
