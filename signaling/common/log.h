// One logger for every portier program: stderr, syslog or the systemd journal,
// with levels. Callers never pass secrets (passwords, HA1, nonce keys): log lines
// name users and addresses only.
#pragma once

#include <string>

namespace portier::log {

enum class Level { Error = 0, Warning = 1, Message = 2, Debug = 3 };
enum class Output { Stderr, Syslog, Journal };

bool parse_level(const std::string &name, Level *out);
bool parse_output(const std::string &name, Output *out);

// Sets up the sink; also routes GLib's and sofia-sip's own log output through it
// (sofia-sip at debug level only).
void init(const std::string &program, Output output, Level level);
void set_level(Level level);
bool enabled(Level level);

void write(Level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

}  // namespace portier::log

#define PLOG_ERROR(...) ::portier::log::write(::portier::log::Level::Error, __VA_ARGS__)
#define PLOG_WARN(...) ::portier::log::write(::portier::log::Level::Warning, __VA_ARGS__)
#define PLOG_INFO(...) ::portier::log::write(::portier::log::Level::Message, __VA_ARGS__)
#define PLOG_DEBUG(...)                                                 \
  do {                                                                  \
    if (::portier::log::enabled(::portier::log::Level::Debug))          \
      ::portier::log::write(::portier::log::Level::Debug, __VA_ARGS__); \
  } while (0)
