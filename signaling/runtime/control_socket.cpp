#include "runtime/control_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/control_table.h"
#include "common/log.h"

namespace portier {

// One connected client: its fd, its registration with the root and the bytes
// of an unfinished line.
struct ControlSocket::Client {
  ControlSocket *owner;
  int fd;
  su_wait_t wait[1];
  int index;
  std::string buffer;
  Client *next;
};

// A client may not hold more than this without a newline (a stuck or hostile
// local process must not grow our memory).
static constexpr size_t kMaxLine = 4096;

ControlSocket::~ControlSocket() { close(); }

bool ControlSocket::open(su_root_t *root, const std::string &path, Handler handler,
                         std::string *error) {
  close();
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    *error = path + ": control socket path too long";
    return false;
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + strerror(errno);
    return false;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ::unlink(path.c_str());  // a socket left by a crashed run
  if (bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0 || listen(fd, 16) < 0) {
    *error = path + ": " + strerror(errno);
    ::close(fd);
    return false;
  }
  chmod(path.c_str(), 0660);
  path_ = path;
  handler_ = std::move(handler);
  listen_fd_ = fd;
  root_ = root;
  if (su_wait_create(listen_wait_, fd, SU_WAIT_ACCEPT) != 0 ||
      (listen_index_ = su_root_register(root, listen_wait_, on_accept, this, 0)) < 0) {
    *error = path + ": cannot watch the socket";
    close();
    return false;
  }
  return true;
}

void ControlSocket::close() {
  while (clients_) drop(clients_);
  if (listen_index_ >= 0) {
    su_root_deregister(root_, listen_index_);
    listen_index_ = -1;
  }
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    ::unlink(path_.c_str());
  }
}

int ControlSocket::on_accept(su_root_magic_t *, su_wait_t *, su_wakeup_arg_t *data) {
  auto *self = static_cast<ControlSocket *>(data);
  int cfd = accept4(self->listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (cfd < 0) return 0;
  auto *c = new Client{self, cfd, {}, -1, {}, self->clients_};
  if (su_wait_create(c->wait, cfd, SU_WAIT_IN | SU_WAIT_HUP | SU_WAIT_ERR) != 0 ||
      (c->index = su_root_register(self->root_, c->wait, on_client, c, 0)) < 0) {
    ::close(cfd);
    delete c;
    return 0;
  }
  self->clients_ = c;
  return 0;
}

int ControlSocket::on_client(su_root_magic_t *, su_wait_t *, su_wakeup_arg_t *data) {
  auto *c = static_cast<Client *>(data);
  if (!c->owner->serve(c)) c->owner->drop(c);
  return 0;
}

bool ControlSocket::serve(Client *c) {
  char buf[1024];
  ssize_t n = read(c->fd, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (n <= 0) return false;
  c->buffer.append(buf, static_cast<size_t>(n));
  size_t nl;
  while ((nl = c->buffer.find('\n')) != std::string::npos) {
    std::string line = c->buffer.substr(0, nl);
    c->buffer.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string reply;
    try {
      reply = handler_(line);
    } catch (const std::exception &e) {
      reply = control::error("internal error");
      PLOG_ERROR("control socket: command failed: %s", e.what());
    }
    reply += '\n';
    // Replies are small; a client that does not read them loses them.
    if (send(c->fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) break;
  }
  return c->buffer.size() <= kMaxLine;
}

void ControlSocket::drop(Client *c) {
  for (Client **p = &clients_; *p; p = &(*p)->next) {
    if (*p == c) {
      *p = c->next;
      break;
    }
  }
  if (c->index >= 0) su_root_deregister(root_, c->index);
  ::close(c->fd);
  delete c;
}

}  // namespace portier
