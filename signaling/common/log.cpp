#include "common/log.h"

#include <sys/time.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "common/ascii.h"

namespace portier::log {
namespace {

// Where the next "inline:" starts, in any case: RFC 5234 §2.3 makes the key
// method case-insensitive, and sdp::parse_crypto takes it so.
size_t find_key_method(std::string_view text, size_t from) {
  static constexpr std::string_view kMethod = "inline:";
  for (size_t i = text.find_first_of("iI", from); i != std::string_view::npos;
       i = text.find_first_of("iI", i + 1))
    if (ascii::istarts_with(text.substr(i), kMethod)) return i;
  return std::string_view::npos;
}

std::string g_program = "portier";
Output g_output = Output::Stderr;
Level g_level = Level::Message;
JournalWriter g_journal = nullptr;

const char *level_name(Level l) {
  switch (l) {
    case Level::Error:
      return "error";
    case Level::Warning:
      return "warning";
    case Level::Message:
      return "message";
    case Level::Debug:
      return "debug";
  }
  return "?";
}

int syslog_priority(Level l) {
  switch (l) {
    case Level::Error:
      return LOG_ERR;
    case Level::Warning:
      return LOG_WARNING;
    case Level::Message:
      return LOG_INFO;
    case Level::Debug:
      return LOG_DEBUG;
  }
  return LOG_INFO;
}

void emit(Level level, const char *text) {
  switch (g_output) {
    case Output::Stderr: {
      struct timeval tv;
      gettimeofday(&tv, nullptr);
      struct tm tm;
      gmtime_r(&tv.tv_sec, &tm);
      char ts[32];
      strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
      std::fprintf(stderr, "%s.%03ldZ %s[%d] %s: %s\n", ts, (long)(tv.tv_usec / 1000),
                   g_program.c_str(), (int)getpid(), level_name(level), text);
      break;
    }
    case Output::Syslog:
      syslog(syslog_priority(level), "%s", text);
      break;
    case Output::Journal:
      g_journal(syslog_priority(level), g_program, text);
      break;
  }
}

}  // namespace

bool parse_level(const std::string &name, Level *out) {
  if (name == "error") return *out = Level::Error, true;
  if (name == "warning") return *out = Level::Warning, true;
  if (name == "message" || name == "info") return *out = Level::Message, true;
  if (name == "debug") return *out = Level::Debug, true;
  return false;
}

bool parse_output(const std::string &name, Output *out) {
  if (name == "stderr") return *out = Output::Stderr, true;
  if (name == "syslog") return *out = Output::Syslog, true;
  if (name == "journal") return *out = Output::Journal, true;
  return false;
}

void configure(const std::string &program, Output output, Level level, JournalWriter journal) {
  g_program = program;
  g_output = output == Output::Journal && !journal ? Output::Stderr : output;
  g_level = level;
  g_journal = journal;
  if (g_output == Output::Syslog) openlog(g_program.c_str(), LOG_PID, LOG_DAEMON);
}

void set_level(Level level) { g_level = level; }

bool enabled(Level level) { return level <= g_level; }

void write(Level level, const char *fmt, ...) {
  if (!enabled(level)) return;
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (find_key_method(buf, 0) != std::string_view::npos) {
    emit(level, redact_sdes_keys(buf).c_str());
    return;
  }
  emit(level, buf);
}

std::string redact_sdes_keys(std::string_view text) {
  static constexpr std::string_view kMethod = "inline:";
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (;;) {
    const size_t found = find_key_method(text, pos);
    if (found == std::string_view::npos) break;
    out.append(text.substr(pos, found + kMethod.size() - pos));
    out += "...";
    pos = found + kMethod.size();
    // The key ends where the lifetime, MKI, next key or line does.
    while (pos < text.size() && !strchr(" \t\r\n|;\"", text[pos])) ++pos;
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace portier::log
