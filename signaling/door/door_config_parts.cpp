#include "door/door_config_parts.h"

#include <cstdlib>
#include <initializer_list>

namespace portier::door {
namespace {

using config::Type;

bool parse_unsigned(const std::string &text, unsigned max, unsigned *out) {
  if (text.empty() || text.size() > 9) return false;
  unsigned n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<unsigned>(c - '0');
  }
  if (n > max) return false;
  *out = n;
  return true;
}

// "gpio:CHIP:LINE"; the chip may itself hold ':' (a label), the line is last.
bool parse_gpio_target(const std::string &text, std::string *chip, unsigned *line) {
  if (text.compare(0, 5, "gpio:") != 0) return false;
  size_t colon = text.rfind(':');
  if (colon <= 5) return false;
  *chip = text.substr(5, colon - 5);
  return parse_unsigned(text.substr(colon + 1), 65535, line);
}

// For errors found when the hardware is opened: the first of `keys` that the
// file sets, so the message points at a line the user wrote.
std::string where_set(const config::Config &cfg, const char *section,
                      std::initializer_list<const char *> keys) {
  const char *chosen = *(keys.end() - 1);
  for (const char *k : keys)
    if (cfg.origin(section, k) != "default") {
      chosen = k;
      break;
    }
  return cfg.where(section, chosen);
}

}  // namespace

std::vector<ActionCode> DoorParts::codes() const {
  std::vector<ActionCode> out;
  for (const auto &a : actions) out.push_back({a.name, a.code});
  return out;
}

void add_door_parts_schema(config::Schema &s) {
  s.any_key("actions", Type::List, "door = 735190",
            "an action: NAME = CODE [ACTUATOR]. CODE: min-code-length (6) to 12 digits, typed as "
            "DTMF (ended early "
            "with #) or sent as a SIP MESSAGE. ACTUATOR: the [actuator] section when omitted, "
            "or log, gpio:CHIP:LINE, or an absolute program path with arguments");
  s.list("access", "allow", "",
         "SIP identities (sip:user@domain) whose calls may run actions; nobody when empty")
      .integer("access", "max-wrong-codes", 3, 1, 100,
               "wrong codes from one identity within wrong-code-window before it is locked out")
      .integer("access", "wrong-code-window", 300, 10, 86400,
               "seconds over which wrong codes are counted")
      .integer("access", "lockout", 60, 1, 86400,
               "seconds of an identity's first lock-out; each next one doubles (up to "
               "max-lockout) until a right code")
      .integer("access", "max-lockout", 3600, 1, 604800,
               "seconds an identity's growing lock-out reaches at most")
      .integer("access", "global-max-wrong-codes", 10, 1, 10000,
               "wrong codes from all identities within wrong-code-window before the alarm (event "
               "line, MESSAGE to [call] target) and a lock-out of every identity with a wrong code")
      .integer("access", "min-code-length", 6, 4, 12,
               "digits every code needs at least; 4 or 5 only by setting this (a short code falls "
               "to patient guessing)")
      .integer("access", "digit-timeout", 5, 1, 60,
               "seconds between two keys of one code; what was typed before a longer pause is "
               "dropped");
  s.str("actuator", "type", "log", "what an action does by default", {"gpio", "command", "log"})
      .str("actuator", "chip", "gpiochip0",
           "GPIO chip of the lock relay (type gpio): name, /dev path, number or label")
      .integer("actuator", "line", 17, 0, 65535, "GPIO line offset on that chip")
      .boolean("actuator", "active-low", false, "the relay switches on when the line is low")
      .integer("actuator", "pulse-ms", 1500, 50, 60000,
               "how long the line stays active for one action (GPIO actuators)")
      .list("actuator", "command", "",
            "program and arguments to run (type command): absolute path, no shell; the "
            "action's name is in $ACTION")
      .integer("actuator", "command-timeout", 10, 1, 3600,
               "seconds a command may run before it is killed");
  s.str("button", "type", "none", "the bell button; 'portierctl ring' works with any type",
        {"gpio", "evdev", "none"})
      .str("button", "chip", "gpiochip0", "GPIO chip of the button (type gpio)")
      .integer("button", "line", 27, 0, 65535, "GPIO line offset of the button")
      .str("button", "edge", "falling",
           "the edge that is a press: falling for a button to ground with a pull-up",
           {"falling", "rising"})
      .integer("button", "debounce-ms", 50, 0, 5000,
               "quiet time before an edge counts as a new press")
      .str("button", "device", "/dev/input/event0", "input device of the button (type evdev)")
      .str("button", "key", "KEY_ENTER", "its key: a KEY_... or BTN_... name, or a number");
  s.str("events", "dir", "/var/lib/portier/door",
        "directory of the event log (JSON lines) and the ring snapshots")
      .integer("events", "keep-rings", 100, 0, 1000000, "snapshots kept (0: none saved)")
      .integer("events", "keep-days", 30, 1, 3650, "days of event log kept")
      .integer("events", "keep-mb", 10, 1, 100000, "megabytes of event log kept");
}

std::string parse_door_parts(const config::Config &cfg, DoorParts *out) {
  DoorParts parts;

  // [actuator]
  ActuatorSpec &act = parts.actuator;
  const std::string type = cfg.get_string("actuator", "type");
  act.type = type == "gpio"      ? ActuatorSpec::Type::Gpio
             : type == "command" ? ActuatorSpec::Type::Command
                                 : ActuatorSpec::Type::Log;
  act.gpio.chip = cfg.get_string("actuator", "chip");
  act.gpio.line = static_cast<unsigned>(cfg.get_int("actuator", "line"));
  act.gpio.active_low = cfg.get_bool("actuator", "active-low");
  act.pulse_length = std::chrono::milliseconds(cfg.get_int("actuator", "pulse-ms"));
  act.command = cfg.get_list("actuator", "command");
  act.command_timeout = std::chrono::seconds(cfg.get_int("actuator", "command-timeout"));
  act.where = act.type == ActuatorSpec::Type::Command
                  ? where_set(cfg, "actuator", {"command", "type"})
                  : where_set(cfg, "actuator", {"chip", "line", "type"});
  if (act.type == ActuatorSpec::Type::Gpio && act.gpio.chip.empty())
    return cfg.where("actuator", "chip") + "a GPIO chip is needed for type gpio";
  if (act.type == ActuatorSpec::Type::Command) {
    std::string why = CommandActuator::check(act.command);
    // With no command set, the line to fix is the one that asked for a command.
    if (!why.empty()) return cfg.where("actuator", act.command.empty() ? "type" : "command") + why;
  }

  // [actions]
  const size_t min_length = static_cast<size_t>(cfg.get_int("access", "min-code-length"));
  for (const std::string &name : cfg.names_in("actions")) {
    ActionSpec a;
    a.name = name;
    a.where = cfg.where("actions", name);
    std::vector<std::string> items = cfg.get_list("actions", name);
    if (items.empty() || !is_valid_code(items[0]))
      return a.where + "the code must be " + std::to_string(kMinCodeLength) + " to " +
             std::to_string(kMaxCodeLength) + " digits 0-9, then an optional actuator";
    // The length is the config's promise, not the gate's: say which key allows less.
    if (items[0].size() < min_length)
      return a.where + "the code is shorter than " + std::to_string(min_length) +
             " digits ([access] min-code-length)";
    a.code = items[0];
    if (items.size() > 1) {
      const std::string &target = items[1];
      if (items.size() == 2 && target == "log") {
        a.own_actuator = true;
        a.actuator.type = ActuatorSpec::Type::Log;
      } else if (items.size() == 2 && target.compare(0, 5, "gpio:") == 0) {
        a.own_actuator = true;
        a.actuator = act;
        a.actuator.type = ActuatorSpec::Type::Gpio;
        if (!parse_gpio_target(target, &a.actuator.gpio.chip, &a.actuator.gpio.line))
          return a.where + "'" + target + "' is not gpio:CHIP:LINE";
      } else if (target[0] == '/') {
        a.own_actuator = true;
        a.actuator = act;
        a.actuator.type = ActuatorSpec::Type::Command;
        a.actuator.command.assign(items.begin() + 1, items.end());
        std::string why = CommandActuator::check(a.actuator.command);
        if (!why.empty()) return a.where + why;
      } else {
        return a.where + "'" + target +
               "' is not an actuator (log, gpio:CHIP:LINE or an absolute program path)";
      }
      a.actuator.where = a.where;
    }
    parts.actions.push_back(std::move(a));
  }
  size_t culprit = 0;
  std::string why = ActionGate::check_codes(parts.codes(), &culprit);
  if (!why.empty()) return parts.actions[culprit].where + why;
  // One GPIO line cannot be requested twice: two actuators on it would leave the
  // second failing with "busy" at start.
  auto same_line = [](const GpioLineConfig &x, const GpioLineConfig &y) {
    return x.chip == y.chip && x.line == y.line;
  };
  // The [actuator] line comes first, so the error points at the action's line.
  std::vector<const ActuatorSpec *> gpios;
  bool default_used = false;
  for (const auto &a : parts.actions) default_used = default_used || !a.own_actuator;
  if (default_used && act.type == ActuatorSpec::Type::Gpio) gpios.push_back(&act);
  for (const auto &a : parts.actions)
    if (a.own_actuator && a.actuator.type == ActuatorSpec::Type::Gpio) gpios.push_back(&a.actuator);
  for (size_t i = 0; i < gpios.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (same_line(gpios[i]->gpio, gpios[j]->gpio))
        return gpios[i]->where + "GPIO line " + std::to_string(gpios[i]->gpio.line) + " of '" +
               gpios[i]->gpio.chip + "' is already the actuator of another action";

  // [access]
  AccessPolicy &acc = parts.access;
  for (const auto &id : cfg.get_list("access", "allow")) {
    std::string n = normalize_identity(id);
    if (n.empty())
      return cfg.where("access", "allow") + "'" + id + "' is not a sip:user@domain identity";
    acc.allow.push_back(n);
  }
  acc.max_wrong_codes = static_cast<int>(cfg.get_int("access", "max-wrong-codes"));
  acc.wrong_code_window = std::chrono::seconds(cfg.get_int("access", "wrong-code-window"));
  acc.lockout = std::chrono::seconds(cfg.get_int("access", "lockout"));
  acc.max_lockout = std::chrono::seconds(cfg.get_int("access", "max-lockout"));
  acc.global_max_wrong_codes = static_cast<int>(cfg.get_int("access", "global-max-wrong-codes"));
  acc.digit_timeout = std::chrono::seconds(cfg.get_int("access", "digit-timeout"));

  // [button]
  ButtonSpec &b = parts.button;
  const std::string btype = cfg.get_string("button", "type");
  b.type = btype == "gpio"    ? ButtonSpec::Type::Gpio
           : btype == "evdev" ? ButtonSpec::Type::Evdev
                              : ButtonSpec::Type::None;
  b.gpio.chip = cfg.get_string("button", "chip");
  b.gpio.line = static_cast<unsigned>(cfg.get_int("button", "line"));
  b.gpio.edge = cfg.get_string("button", "edge") == "rising" ? GpioButtonConfig::Edge::Rising
                                                             : GpioButtonConfig::Edge::Falling;
  b.gpio.debounce = std::chrono::milliseconds(cfg.get_int("button", "debounce-ms"));
  b.device = cfg.get_string("button", "device");
  b.key_code = parse_key_code(cfg.get_string("button", "key"));
  b.where = b.type == ButtonSpec::Type::Evdev ? where_set(cfg, "button", {"device", "key", "type"})
                                              : where_set(cfg, "button", {"chip", "line", "type"});
  if (b.type == ButtonSpec::Type::Gpio) {
    if (b.gpio.chip.empty())
      return cfg.where("button", "chip") + "a GPIO chip is needed for type gpio";
    for (const ActuatorSpec *g : gpios)
      if (b.gpio.chip == g->gpio.chip && b.gpio.line == g->gpio.line)
        return cfg.where("button", "line") + "GPIO line " + std::to_string(b.gpio.line) + " of '" +
               b.gpio.chip + "' is the actuator's line";
  }
  if (b.type == ButtonSpec::Type::Evdev) {
    if (b.device.empty()) return cfg.where("button", "device") + "an input device is needed";
    if (b.key_code < 0)
      return cfg.where("button", "key") + "'" + cfg.get_string("button", "key") +
             "' is not a key (KEY_... or BTN_... name, or a number)";
  }

  // [events]
  EventLogOptions &ev = parts.events;
  ev.dir = cfg.get_string("events", "dir");
  if (ev.dir.empty() || ev.dir[0] != '/')
    return cfg.where("events", "dir") + "must be an absolute directory path";
  ev.keep_rings = static_cast<int>(cfg.get_int("events", "keep-rings"));
  ev.keep_days = static_cast<int>(cfg.get_int("events", "keep-days"));
  ev.keep_bytes = cfg.get_int("events", "keep-mb") * 1024 * 1024;

  *out = std::move(parts);
  return "";
}

std::unique_ptr<Actuator> open_actuator(const ActuatorSpec &spec, std::string *error) {
  switch (spec.type) {
    case ActuatorSpec::Type::Log:
      return std::make_unique<LogActuator>();
    case ActuatorSpec::Type::Command: {
      std::string why = CommandActuator::check(spec.command);
      if (!why.empty()) {
        *error = spec.where + why;
        return nullptr;
      }
      return std::make_unique<CommandActuator>(spec.command, spec.command_timeout);
    }
    case ActuatorSpec::Type::Gpio: {
      std::string why;
      auto a = GpioActuator::open(spec.gpio, spec.pulse_length, &why);
      if (!a) *error = spec.where + why;
      return a;
    }
  }
  return nullptr;
}

bool open_actuators(const DoorParts &parts, DoorActuators *out, std::string *error) {
  DoorActuators result;
  Actuator *shared = nullptr;
  for (const auto &a : parts.actions) {
    Actuator *target = nullptr;
    if (!a.own_actuator && shared) {
      target = shared;
    } else {
      auto made = open_actuator(a.own_actuator ? a.actuator : parts.actuator, error);
      if (!made) return false;
      target = made.get();
      if (!a.own_actuator) shared = target;
      result.all.push_back(std::move(made));
    }
    result.by_action[a.name] = target;
  }
  *out = std::move(result);
  return true;
}

std::unique_ptr<Button> open_button(const ButtonSpec &spec, std::string *error) {
  std::string why;
  std::unique_ptr<Button> b;
  switch (spec.type) {
    case ButtonSpec::Type::None:
      error->clear();
      return nullptr;
    case ButtonSpec::Type::Gpio:
      b = GpioButton::open(spec.gpio, &why);
      break;
    case ButtonSpec::Type::Evdev:
      b = EvdevButton::open(spec.device, spec.key_code, &why);
      break;
  }
  if (!b) *error = spec.where + why;
  return b;
}

}  // namespace portier::door
