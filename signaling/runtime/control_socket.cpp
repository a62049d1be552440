#include "runtime/control_socket.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "common/control_table.h"
#include "common/log.h"

namespace portier {

// One connected client: its fd, its GLib watch and the bytes of an unfinished line.
struct ControlSocket::Client {
  ControlSocket *owner;
  int fd;
  guint source;
  std::string buffer;
  Client *next;
};

// A client may not hold more than this without a newline (a stuck or hostile
// local process must not grow our memory).
static constexpr size_t kMaxLine = 4096;

ControlSocket::~ControlSocket() { close(); }

bool ControlSocket::open(const std::string &path, Handler handler, std::string *error) {
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
  listen_source_ = g_unix_fd_add(fd, G_IO_IN, reinterpret_cast<GUnixFDSourceFunc>(on_accept), this);
  return true;
}

void ControlSocket::close() {
  while (clients_) drop(clients_);
  if (listen_source_) g_source_remove(listen_source_), listen_source_ = 0;
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    listen_fd_ = -1;
    ::unlink(path_.c_str());
  }
}

int ControlSocket::on_accept(int fd, unsigned, void *data) {
  auto *self = static_cast<ControlSocket *>(data);
  int cfd = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (cfd < 0) return G_SOURCE_CONTINUE;
  auto *c = new Client{self, cfd, 0, {}, self->clients_};
  self->clients_ = c;
  c->source = g_unix_fd_add(cfd, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP | G_IO_ERR),
                            reinterpret_cast<GUnixFDSourceFunc>(on_client), c);
  return G_SOURCE_CONTINUE;
}

int ControlSocket::on_client(int fd, unsigned, void *data) {
  auto *c = static_cast<Client *>(data);
  ControlSocket *self = c->owner;
  char buf[1024];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return G_SOURCE_CONTINUE;
  if (n <= 0) {
    c->source = 0;  // returning REMOVE destroys the source
    self->drop(c);
    return G_SOURCE_REMOVE;
  }
  c->buffer.append(buf, static_cast<size_t>(n));
  size_t nl;
  while ((nl = c->buffer.find('\n')) != std::string::npos) {
    std::string line = c->buffer.substr(0, nl);
    c->buffer.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::string reply;
    try {
      reply = self->handler_(line);
    } catch (const std::exception &e) {
      reply = control::error("internal error");
      PLOG_ERROR("control socket: command failed: %s", e.what());
    }
    reply += '\n';
    // Replies are small; a client that does not read them loses them.
    if (send(fd, reply.data(), reply.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) break;
  }
  if (c->buffer.size() > kMaxLine) {
    c->source = 0;
    self->drop(c);
    return G_SOURCE_REMOVE;
  }
  return G_SOURCE_CONTINUE;
}

void ControlSocket::drop(Client *c) {
  for (Client **p = &clients_; *p; p = &(*p)->next) {
    if (*p == c) {
      *p = c->next;
      break;
    }
  }
  if (c->source) g_source_remove(c->source);
  ::close(c->fd);
  delete c;
}

}  // namespace portier
