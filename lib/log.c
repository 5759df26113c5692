/* Logging: one line per record on stderr, text ("2026-11-26T04:52:34Z warn: ...") or JSON
 * ({"ts":...,"level":...,"msg":...}), with control characters escaped so that a string from
 * a peer cannot forge a record. Writes are single fputs calls, so lines from threads do not
 * interleave. */
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

/* Length of the valid UTF-8 sequence at s (1 to 4) with its code point in *cp, or 0 when
 * the bytes there are not one (stray continuation, overlong, surrogate, past U+10FFFF, cut). */
static size_t utf8_decode(const unsigned char *s, unsigned *cp)
{
	unsigned c = s[0], min;
	size_t n, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2, min = 0x80, c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, min = 0x800, c &= 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, min = 0x10000, c &= 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the terminating NUL */
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return n;
}

/* Writes s so that it cannot end or forge a record: in text mode control characters
 * (C0, DEL, C1) become \n \r \t or \xHH and a byte that is not UTF-8 becomes \xHH; in JSON
 * mode the string is escaped for a JSON string and invalid UTF-8 becomes U+FFFD, so the
 * line always parses. Messages carry API and webhook strings, which nobody here controls. */
static void put_escaped(FILE *f, const char *str, bool json)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned cp;
	size_t n;

	while (*s) {
		n = utf8_decode(s, &cp);
		if (n == 0) {
			if (json)
				fputs("\xef\xbf\xbd", f);
			else
				fprintf(f, "\\x%02x", *s);
			s++;
			continue;
		}
		if (cp == '\n')
			fputs("\\n", f);
		else if (cp == '\r')
			fputs("\\r", f);
		else if (cp == '\t')
			fputs("\\t", f);
		else if (json && (cp == '"' || cp == '\\'))
			fprintf(f, "\\%c", (int)cp);
		else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
			fprintf(f, json ? "\\u%04x" : "\\x%02x", cp);
		else
			fwrite(s, 1, n, f);
		s += n;
	}
}

/* A text-mode field value: bare, or quoted when a reader splitting on spaces and '=' would
 * cut it. */
static void put_text_value(FILE *f, const char *v)
{
	bool quote = v[0] == '\0' || strpbrk(v, " \"=") != NULL;

	if (!quote) {
		put_escaped(f, v, false);
		return;
	}
	fputc('"', f);
	for (const char *p = v;;) {
		const char *q = strchr(p, '"');
		char *part = q ? strndup(p, (size_t)(q - p)) : NULL;

		put_escaped(f, q ? (part ? part : "?") : p, false);
		free(part);
		if (q == NULL)
			break;
		fputs("\\\"", f);
		p = q + 1;
	}
	fputc('"', f);
}

static void put_fields(FILE *f, const struct log_field *fields)
{
	for (const struct log_field *x = fields; x && x->key; x++) {
		if (x->value == NULL)
			continue;
		if (cur_json) {
			fputs(",\"", f);
			put_escaped(f, x->key, true);
			fputs("\":\"", f);
			put_escaped(f, x->value, true);
			fputc('"', f);
		} else {
			fprintf(f, " %s=", x->key);
			put_text_value(f, x->value);
		}
	}
}

static void put_record(FILE *f, const char *ts, enum log_level level, const char *msg,
                       const char *suffix, const struct log_field *fields)
{
	if (cur_json)
		fprintf(f, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts, level_names[level]);
	else
		fprintf(f, "%s %s: ", ts, level_names[level]);
	put_escaped(f, msg, cur_json);
	if (suffix) {
		fputs(": ", f);
		put_escaped(f, suffix, cur_json);
	}
	if (cur_json)
		fputc('"', f);
	put_fields(f, fields);
	fputs(cur_json ? "}\n" : "\n", f);
}

static void vlog(enum log_level level, const char *suffix, const struct log_field *fields,
                 const char *fmt, va_list ap)
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
		/* no memory for the line: write it piecewise, holding stderr's lock */
		flockfile(stderr);
		put_record(stderr, ts, level, msg, suffix, fields);
		funlockfile(stderr);
		return;
	}
	put_record(mem, ts, level, msg, suffix, fields);
	if (fclose(mem) == 0)
		fputs(line, stderr);
	free(line);
}

#define LOGFN(name, level, with_errno)                                                             \
	void name(const char *fmt, ...)                                                            \
	{                                                                                          \
		int saved = errno;                                                                 \
		va_list ap;                                                                        \
		va_start(ap, fmt);                                                                 \
		vlog(level, with_errno ? strerror(saved) : NULL, NULL, fmt, ap);                   \
		va_end(ap);                                                                        \
		errno = saved;                                                                     \
	}

LOGFN(log_warn, LOG_LEVEL_WARN, 1)
LOGFN(log_warnx, LOG_LEVEL_WARN, 0)
LOGFN(log_info, LOG_LEVEL_INFO, 0)
LOGFN(log_debug, LOG_LEVEL_DEBUG, 0)
LOGFN(log_errorx, LOG_LEVEL_ERROR, 0)

void log_fields(enum log_level level, const struct log_field *fields, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog(level, NULL, fields, fmt, ap);
	va_end(ap);
	errno = saved;
}
