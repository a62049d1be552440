// portierctl: talks to a portier daemon's control socket.
//   portierctl [--socket PATH] COMMAND [ARGS...]
// Sends the command as one line and prints the JSON reply. The commands are the
// daemon's own (its control::Table); "help" asks the daemon for them. Exit
// status: 0 on a reply without "error", 1 on an error reply, 2 when the daemon
// can't be reached.
#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

static const char kDefaultSocket[] = "/run/portier/proxy.sock";

static void usage() {
  std::fprintf(stderr,
               "usage: portierctl [--socket PATH] [--timeout SECONDS] COMMAND [ARGS...]\n"
               "COMMAND is one of the daemon's: 'portierctl --socket PATH help' lists them\n"
               "(portier-proxy: registrations, calls, relay, stats, bans, unban ADDRESS|all;\n"
               "portier-door: ring, hangup, status, events; portier-monitor: status, answer,\n"
               "hangup, ..., see its help). Every daemon answers ping and help.\n"
               "default socket: %s\n",
               kDefaultSocket);
}

int main(int argc, char **argv) {
  std::string path = kDefaultSocket;
  int timeout_ms = 5000;
  int i = 1;
  for (; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--socket") && i + 1 < argc) {
      path = argv[++i];
    } else if (!std::strcmp(argv[i], "--timeout") && i + 1 < argc) {
      timeout_ms = std::atoi(argv[++i]) * 1000;
    } else if (!std::strcmp(argv[i], "--help") || !std::strcmp(argv[i], "-h")) {
      usage();
      return 0;
    } else {
      break;
    }
  }
  if (i >= argc) {
    usage();
    return 2;
  }
  std::string command;
  for (; i < argc; ++i) command += (command.empty() ? "" : " ") + std::string(argv[i]);
  command += '\n';

  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path) {
    std::fprintf(stderr, "portierctl: socket path too long\n");
    return 2;
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0) {
    std::fprintf(stderr, "portierctl: cannot reach %s: %s\n", path.c_str(), strerror(errno));
    return 2;
  }
  if (write(fd, command.data(), command.size()) != static_cast<ssize_t>(command.size())) {
    std::fprintf(stderr, "portierctl: write: %s\n", strerror(errno));
    return 2;
  }
  std::string reply;
  char buf[4096];
  while (reply.find('\n') == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) {
      std::fprintf(stderr, "portierctl: no reply from %s\n", path.c_str());
      return 2;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  if (reply.empty()) {
    std::fprintf(stderr, "portierctl: connection closed without a reply\n");
    return 2;
  }
  std::fputs(reply.c_str(), stdout);
  return reply.compare(0, 9, "{\"error\":") == 0 ? 1 : 0;
}
