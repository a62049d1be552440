// The commands a daemon's control socket answers, as one table per daemon:
// name, arguments, one line of help and the handler. The table splits the
// command line, refuses what it does not know with the list of what it does,
// and answers two commands of every daemon itself: "ping" ({"ok":true,
// "pong":true}: scripts wait for either key) and "help" (every row, so
// portierctl lists any daemon's commands without knowing them). Plain C++:
// the socket is ControlSocket's.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace portier::control {

struct Command {
  std::string name;  // "unban"
  std::string args;  // "ADDRESS|all", "on|off"; empty: the command takes none
  std::string help;  // "lift one ban, or every ban"
  // Gets the arguments (trimmed; "" when there are none); returns the JSON reply.
  std::function<std::string(const std::string &args)> run;
};

class Table {
 public:
  // `commands` in the order "help" lists them; ping and help follow.
  explicit Table(std::vector<Command> commands);
  Table(const Table &) = delete;  // help's row points at its table
  Table &operator=(const Table &) = delete;

  // One command line in, one JSON reply out.
  std::string dispatch(const std::string &line) const;
  // {"commands":[{"name":..,"args":..,"help":..},...]}, the reply to "help";
  // ping and help are in it too.
  std::string help_json() const;
  const std::vector<Command> &commands() const { return commands_; }

 private:
  std::vector<Command> commands_;
};

// The replies every daemon shares: {"result":TEXT} and {"error":TEXT}.
std::string result(const std::string &text);
std::string error(const std::string &text);

// "reload", as SIGHUP: `reload` runs the daemon's reload handlers
// (Daemon::reload) and returns "" or what failed; the reply is
// {"result":"reloaded"} or {"error":"reload failed, the old state is kept: ..."}.
Command reload_command(std::function<std::string()> reload);

}  // namespace portier::control
