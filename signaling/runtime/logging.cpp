#include "runtime/logging.h"

#include <glib.h>
#include <sofia-sip/su_log.h>
#include <systemd/sd-journal.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace portier::log {
namespace {

void journal_writer(int priority, const std::string &program, const char *text) {
  sd_journal_send("MESSAGE=%s", text, "PRIORITY=%d", priority, "SYSLOG_IDENTIFIER=%s",
                  program.c_str(), nullptr);
}

// sofia-sip's internal logs: useful when debugging, noise otherwise.
void sofia_logger(void *, char const *fmt, va_list ap) {
  if (!enabled(Level::Debug)) return;
  char buf[2048];
  vsnprintf(buf, sizeof buf, fmt, ap);
  size_t n = strlen(buf);
  while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
  if (n) write(Level::Debug, "%s", buf);
}

void glib_logger(const gchar *domain, GLogLevelFlags flags, const gchar *message, gpointer) {
  Level l = (flags & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)) ? Level::Error
            : (flags & G_LOG_LEVEL_WARNING)                      ? Level::Warning
            : (flags & (G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO)) ? Level::Message
                                                                 : Level::Debug;
  if (enabled(l)) write(l, "%s%s%s", domain ? domain : "", domain ? ": " : "", message);
}

}  // namespace

void init(const std::string &program, Output output, Level level) {
  configure(program, output, level, journal_writer);
  g_log_set_default_handler(glib_logger, nullptr);
  su_log_redirect(nullptr, sofia_logger, nullptr);
}

}  // namespace portier::log
