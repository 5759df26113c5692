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

/* A structured field of a record: in JSON mode a key of the object (after ts, level and
 * msg, which are not to be used as keys), in text mode " key=value" after the message
 * (the value quoted when empty or holding a space, '"' or '='). A NULL value is left out. */
struct log_field {
	const char *key, *value;
};
/* Logs at level with the fields fields[0..] up to one whose key is NULL:
 *   log_fields(LOG_LEVEL_DEBUG, (struct log_field[]){{"msg_id", id}, {"target", t},
 *              {NULL, NULL}}, "delivered");  */
void log_fields(enum log_level level, const struct log_field *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
