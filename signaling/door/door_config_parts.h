// portier-door's [actions], [access], [actuator], [button] and [events] sections:
// their schema, their checks (a bad value names file, line and key) and the typed
// settings. The door's config (account, call, media) adds these keys to its
// schema with add_door_parts_schema() and calls parse_door_parts() on the loaded
// config; then open_actuators() and open_button() reach the hardware.
//
//   [actions]
//   door = 735190                          # the [actuator] section's actuator
//   light = 5678 /usr/local/bin/light-on   # its own command
//   gate = 24680 gpio:gpiochip0:22         # its own GPIO line (pulse-ms, active-low as [actuator])
//   [access]
//   allow = sip:alice@home.example sip:bob@home.example
//   [actuator]
//   type = gpio
//   chip = gpiochip0
//   line = 17
//
// Codes are secrets: no error message here quotes a code.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"
#include "door/actions.h"
#include "door/actuator.h"
#include "door/button.h"
#include "door/event_log.h"

namespace portier::door {

struct ActuatorSpec {
  enum class Type { Log, Command, Gpio } type = Type::Log;
  GpioLineConfig gpio;
  std::chrono::milliseconds pulse_length{1500};
  std::vector<std::string> command;  // argv
  std::chrono::milliseconds command_timeout{10000};
  std::string where;  // "FILE:LINE: [section] key: ", prefixed to errors when opening
};

struct ActionSpec {
  std::string name;
  std::string code;
  bool own_actuator = false;  // false: the [actuator] section's
  ActuatorSpec actuator;      // when own_actuator
  std::string where;
};

struct ButtonSpec {
  enum class Type { None, Gpio, Evdev } type = Type::None;
  GpioButtonConfig gpio;
  std::string device;
  int key_code = 0;
  std::string where;
};

struct DoorParts {
  std::vector<ActionSpec> actions;  // by name
  AccessPolicy access;              // allow-list normalized
  ActuatorSpec actuator;            // [actuator]: for actions without their own
  ButtonSpec button;
  EventLogOptions events;

  // What ActionGate takes.
  std::vector<ActionCode> codes() const;
};

// Declares the five sections' keys, with defaults and help lines for --dump-default.
void add_door_parts_schema(config::Schema &schema);

// "" when the sections are valid (then *out is filled), else the first error as
// "FILE:LINE: [section] key: message".
std::string parse_door_parts(const config::Config &cfg, DoorParts *out);

// The actuators the actions use: one object per distinct target, so actions that
// share the [actuator] section share its GPIO line. by_action maps every action
// name. False with *error ("FILE:LINE: [section] key: GPIO chip 'x' not found").
struct DoorActuators {
  std::vector<std::unique_ptr<Actuator>> all;
  std::map<std::string, Actuator *> by_action;
};
bool open_actuators(const DoorParts &parts, DoorActuators *out, std::string *error);
std::unique_ptr<Actuator> open_actuator(const ActuatorSpec &spec, std::string *error);

// The configured button; nullptr with an empty *error for type none.
std::unique_ptr<Button> open_button(const ButtonSpec &spec, std::string *error);

}  // namespace portier::door
