#include "common/control_table.h"

#include "common/json.h"

namespace portier::control {
namespace {

std::string trim(const std::string &s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

}  // namespace

std::string result(const std::string &text) { return json::object_of("result", text); }
std::string error(const std::string &text) { return json::object_of("error", text); }

Command reload_command(std::function<std::string()> reload) {
  return {"reload", "", "load the TLS certificates, keys and CA files again (as SIGHUP does)",
          [reload = std::move(reload)](const std::string &) {
            const std::string failed = reload();
            return failed.empty() ? result("reloaded")
                                  : error("reload failed, the old state is kept: " + failed);
          }};
}

Table::Table(std::vector<Command> commands) : commands_(std::move(commands)) {
  commands_.push_back({"ping", "", "is the daemon alive", [](const std::string &) {
                         return json::Writer()
                             .begin_object()
                             .field("ok", true)
                             .field("pong", true)
                             .end_object()
                             .take();
                       }});
  commands_.push_back(
      {"help", "", "these commands", [this](const std::string &) { return help_json(); }});
}

std::string Table::dispatch(const std::string &line) const {
  const std::string command = trim(line);
  const size_t sp = command.find_first_of(" \t");
  const std::string name = command.substr(0, sp);
  const std::string args = sp == std::string::npos ? "" : trim(command.substr(sp));
  for (const Command &c : commands_) {
    if (c.name != name) continue;
    if (c.args.empty() && !args.empty()) return error("'" + name + "' takes no arguments");
    return c.run(args);
  }
  std::string known;
  for (const Command &c : commands_) known += (known.empty() ? "" : ", ") + c.name;
  return error("unknown command '" + name + "' (" + known + ")");
}

std::string Table::help_json() const {
  json::Writer w;
  w.begin_object().key("commands").begin_array();
  for (const Command &c : commands_)
    w.begin_object().field("name", c.name).field("args", c.args).field("help", c.help).end_object();
  return w.end_array().end_object().take();
}

}  // namespace portier::control
