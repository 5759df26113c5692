/* Logging: one line per record on stderr, text ("2026-11-26T04:52:34Z warn: ...") or JSON
 * ({"ts":...,"level":...,"msg":...}). Writes are single fprintf calls, so lines from
 * threads do not interleave. */
#include "lib/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static enum log_level cur_level = LOG_LEVEL_INFO;
static bool cur_json;

static const char *level_names[] = {"error", "warn", "info", "debug"};

void log_init(enum log_level level, bool json)
{
	cur_level = level;
	cur_json = json;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	if (strcmp(name, "warning") == 0) {
		*out = LOG_LEVEL_WARN;
		return 0;
	}
	return -1;
}

bool log_enabled(enum log_level level)
{
	return level <= cur_level;
}

static void json_escape(FILE *f, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
}

static void vlog(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
	char msg[2048], ts[64];
	struct timespec now;
	struct tm tm;
	char *line = NULL;
	size_t len = 0;
	FILE *mem;

	if (!log_enabled(level))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         now.tv_nsec / 1000000);
	mem = open_memstream(&line, &len);
	if (mem == NULL) {
		fprintf(stderr, "%s %s: %s%s%s\n", ts, level_names[level], msg, suffix ? ": " : "",
		        suffix ? suffix : "");
		return;
	}
	if (cur_json) {
		fprintf(mem, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level_names[level]);
		json_escape(mem, msg);
		if (suffix) {
			fputs(": ", mem);
			json_escape(mem, suffix);
		}
		fputs("\"}\n", mem);
	} else {
		fprintf(mem, "%s %s: %s%s%s\n", ts, level_names[level], msg, suffix ? ": " : "",
		        suffix ? suffix : "");
	}
	fclose(mem);
	fputs(line, stderr);
	free(line);
}

#define LOGFN(name, level, with_errno)                                                             \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		int saved = errno;                                                                 \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		vlog(level, with_errno ? strerror(saved) : NULL, fmt, ap);                         \
		va_end(ap);                                                                        \
		errno = saved;                                                                     \
	}

LOGFN(log_warn, LOG_LEVEL_WARN, 1)
LOGFN(log_warnx, LOG_LEVEL_WARN, 0)
LOGFN(log_info, LOG_LEVEL_INFO, 0)
LOGFN(log_debug, LOG_LEVEL_DEBUG, 0)
LOGFN(log_errorx, LOG_LEVEL_ERROR, 0)

void fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, strerror(saved), fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vlog(LOG_LEVEL_ERROR, NULL, fmt, ap);
	va_end(ap);
	exit(1);
}
