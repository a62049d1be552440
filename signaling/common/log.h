// One logger for every portier program: stderr, syslog or the systemd journal,
// with levels. Plain C++: the journal writer and the routing of GLib's and
// sofia-sip's own logs are the runtime layer's (runtime/logging.h). Callers never pass secrets
// (passwords, HA1, nonce keys): log lines name users and addresses only.
#pragma once

#include <string>
#include <string_view>

namespace portier::log {

enum class Level { Error = 0, Warning = 1, Message = 2, Debug = 3 };
enum class Output { Stderr, Syslog, Journal };

bool parse_level(const std::string &name, Level *out);
bool parse_output(const std::string &name, Output *out);

// Writes one line to the systemd journal with a syslog priority.
using JournalWriter = void (*)(int priority, const std::string &program, const char *text);

// Sets up the sink. Output::Journal without a writer writes to stderr.
void configure(const std::string &program, Output output, Level level,
               JournalWriter journal = nullptr);
void set_level(Level level);
bool enabled(Level level);

// Every line goes through redact_sdes_keys() first: an SDP body that reaches a
// log (sofia-sip's debug dumps, an error quoting a line) shows no SRTP key.
void write(Level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// `text` with the key of every "inline:" key parameter (RFC 4568 §6.1, an
// a=crypto line's key and salt; the method in any case) replaced by "...".
std::string redact_sdes_keys(std::string_view text);

}  // namespace portier::log

#define PLOG_ERROR(...) ::portier::log::write(::portier::log::Level::Error, __VA_ARGS__)
#define PLOG_WARN(...) ::portier::log::write(::portier::log::Level::Warning, __VA_ARGS__)
#define PLOG_INFO(...) ::portier::log::write(::portier::log::Level::Message, __VA_ARGS__)
#define PLOG_DEBUG(...)                                                 \
  do {                                                                  \
    if (::portier::log::enabled(::portier::log::Level::Debug))          \
      ::portier::log::write(::portier::log::Level::Debug, __VA_ARGS__); \
  } while (0)
