/* Logging for the daemon and the CLI: text or JSON lines on stderr, with levels.
 * log_warn adds strerror(errno); the x variants do not. Messages are lower case,
 * say what failed first, and never contain secrets. */
#ifndef TB_LOG_H
#define TB_LOG_H

#include <stdbool.h>

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

/* level: "error", "warn", "info", "debug"; json: one JSON object per line. A record is
 * always one line: control characters in messages are escaped (text) or the line is valid
 * JSON with invalid UTF-8 replaced (json). */
void log_init(enum log_level level, bool json);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int log_level_parse(const char *name, enum log_level *out);
bool log_enabled(enum log_level level);

void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
