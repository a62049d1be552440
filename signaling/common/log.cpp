#include "common/log.h"

#include <glib.h>
#include <sofia-sip/su_log.h>
#include <sys/time.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace portier::log {
namespace {

std::string g_program = "portier";
Output g_output = Output::Stderr;
Level g_level = Level::Message;

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
      sd_journal_send("MESSAGE=%s", text, "PRIORITY=%d", syslog_priority(level),
                      "SYSLOG_IDENTIFIER=%s", g_program.c_str(), nullptr);
      break;
  }
}

// sofia-sip's internal logs: useful when debugging, noise otherwise.
void sofia_logger(void *, char const *fmt, va_list ap) {
  if (!enabled(Level::Debug)) return;
  char buf[2048];
  vsnprintf(buf, sizeof buf, fmt, ap);
  size_t n = strlen(buf);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
  if (n) emit(Level::Debug, buf);
}

void glib_logger(const gchar *domain, GLogLevelFlags flags, const gchar *message, gpointer) {
  Level l = (flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) ? Level::Error
            : (flags & G_LOG_LEVEL_WARNING)                      ? Level::Warning
            : (flags & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO)) ? Level::Message
                                                                 : Level::Debug;
  if (enabled(l)) write(l, "%s%s%s", domain ? domain : "", domain ? ": " : "", message);
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

void init(const std::string &program, Output output, Level level) {
  g_program = program;
  g_output = output;
  g_level = level;
  if (output == Output::Syslog) openlog(g_program.c_str(), LOG_PID, LOG_DAEMON);
  g_log_set_default_handler(glib_logger, nullptr);
  su_log_redirect(nullptr, sofia_logger, nullptr);
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
  emit(level, buf);
}

}  // namespace portier::log
