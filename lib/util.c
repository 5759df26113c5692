/* Durations, API timestamps, the bounded buffer and clocks shared by every module. */
#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int util_parse_duration(const char *s, int64_t *ms)
{
	char *end;
	long long n;
	int64_t mult;

	if (s == NULL || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (errno != 0 || n < 0)
		return -1;
	if (strcmp(end, "ms") == 0)
		mult = 1;
	else if (strcmp(end, "s") == 0)
		mult = 1000;
	else if (strcmp(end, "m") == 0)
		mult = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		mult = 3600 * 1000;
	else if (strcmp(end, "d") == 0)
		mult = 86400 * 1000;
	else if (*end == '\0' && n == 0)
		mult = 0;
	else
		return -1;
	if (mult != 0 && n > INT64_MAX / mult)
		return -1;
	*ms = n * mult;
	return 0;
}

static int digits(const char **p, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

/* Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

int util_parse_time(const char *s, int64_t *ms, int *offset_min)
{
	int Y, M, D, h, m, sec = 0, frac = 0, off = 0;
	const char *p = s;

	if (s == NULL)
		return -1;
	if (digits(&p, 4, &Y) || *p++ != '-' || digits(&p, 2, &M) || *p++ != '-' ||
	    digits(&p, 2, &D))
		return -1;
	if (*p != 'T' && *p != ' ' && *p != 't')
		return -1;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &m))
		return -1;
	if (*p == ':') {
		p++;
		if (digits(&p, 2, &sec))
			return -1;
		if (*p == '.' || *p == ',') {
			int scale = 100, n = 0;
			p++;
			if (!isdigit((unsigned char)*p))
				return -1;
			while (isdigit((unsigned char)*p)) {
				if (n++ < 3) {
					frac += (*p - '0') * scale;
					scale /= 10;
				}
				p++;
			}
		}
	}
	if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60)
		return -1;
	while (*p == ' ')
		p++;
	if (*p == '\0' || strcmp(p, "Z") == 0 || strcmp(p, "z") == 0 || strcmp(p, "UTC") == 0) {
		off = 0;
	} else if (*p == '+' || *p == '-') {
		int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
		if (digits(&p, 2, &oh))
			return -1;
		if (*p == ':')
			p++;
		if (*p != '\0' && digits(&p, 2, &om))
			return -1;
		if (*p != '\0' || oh > 23 || om > 59)
			return -1;
		off = sign * (oh * 60 + om);
	} else {
		return -1;
	}
	int64_t days = days_from_civil(Y, M, D);
	int64_t secs = days * 86400 + h * 3600 + m * 60 + sec - (int64_t)off * 60;
	*ms = secs * 1000 + frac;
	if (offset_min)
		*offset_min = off;
	return 0;
}

static void split(int64_t ms, struct tm *tm, int *millis)
{
	int64_t secs = ms / 1000;
	int r = (int)(ms % 1000);
	if (r < 0) {
		r += 1000;
		secs--;
	}
	time_t t = (time_t)secs;
	gmtime_r(&t, tm);
	*millis = r;
}

/* Writes v as exactly n decimal digits (0 <= v < 10^n) at p; returns p + n. The time
 * formats below are written by hand: snprintf was 4.5 k instructions a call, and a polled
 * event formats three or four times (callgrind, docs/internals/performance.md). */
static char *put_digits(char *p, int v, int n)
{
	for (int i = n - 1; i >= 0; i--, v /= 10)
		p[i] = (char)('0' + v % 10);
	return p + n;
}

/* "YYYY-MM-DD?hh:mm:ss.mmm" at out with sep between date and time; returns its end. Years
 * outside 0..9999 (not a time the API sends) are written with snprintf as before. */
static char *put_datetime(char *out, int64_t ms, char sep)
{
	struct tm tm;
	int millis, year;
	char *p = out;

	split(ms, &tm, &millis);
	year = tm.tm_year + 1900;
	if (year < 0 || year > 9999)
		return out + snprintf(out, UTIL_TIME_MAX, "%04d-%02d-%02d%c%02d:%02d:%02d.%03d",
		                      year, tm.tm_mon + 1, tm.tm_mday, sep, tm.tm_hour, tm.tm_min,
		                      tm.tm_sec, millis);
	p = put_digits(p, year, 4);
	*p++ = '-';
	p = put_digits(p, tm.tm_mon + 1, 2);
	*p++ = '-';
	p = put_digits(p, tm.tm_mday, 2);
	*p++ = sep;
	p = put_digits(p, tm.tm_hour, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_min, 2);
	*p++ = ':';
	p = put_digits(p, tm.tm_sec, 2);
	*p++ = '.';
	return put_digits(p, millis, 3);
}

void util_format_iso(int64_t ms, int offset_min, char out[UTIL_TIME_MAX])
{
	int a = offset_min < 0 ? -offset_min : offset_min;
	char *p = put_datetime(out, ms + (int64_t)offset_min * 60000, 'T');

	if (a / 60 > 99) { /* not an offset util_parse_time gives */
		snprintf(p, UTIL_TIME_MAX - (size_t)(p - out), "%c%02d:%02d",
		         offset_min < 0 ? '-' : '+', a / 60, a % 60);
		return;
	}
	*p++ = offset_min < 0 ? '-' : '+';
	p = put_digits(p, a / 60, 2);
	*p++ = ':';
	p = put_digits(p, a % 60, 2);
	*p = '\0';
}

void util_format_api(int64_t ms, char out[UTIL_TIME_MAX])
{
	char *p = put_datetime(out, ms, ' ');

	memcpy(p, " UTC", 5);
}

int64_t util_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t util_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void buf_init(struct buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
}

static int reserve(struct buf *b, size_t extra)
{
	size_t need, cap;
	char *p;

	if (extra > SIZE_MAX - b->len - 1) {
		errno = ENOMEM;
		return -1;
	}
	need = b->len + extra + 1;
	if (b->max && need > b->max + 1) {
		errno = E2BIG;
		return -1;
	}
	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (b->max && cap > b->max + 1)
		cap = b->max + 1;
	p = realloc(b->data, cap);
	if (p == NULL)
		return -1;
	b->data = p;
	b->cap = cap;
	return 0;
}

int buf_append(struct buf *b, const void *p, size_t n)
{
	if (reserve(b, n) < 0)
		return -1;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

int buf_vprintf(struct buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0 || reserve(b, (size_t)n) < 0)
		return -1;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;
	va_start(ap, fmt);
	rc = buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

void buf_reset(struct buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

char *buf_steal(struct buf *b)
{
	char *p = b->data;
	if (p == NULL)
		p = strdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void buf_release(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

int buf_urlencode(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char enc[3];
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
			if (buf_append(b, s, 1) < 0)
				return -1;
			continue;
		}
		enc[0] = '%';
		enc[1] = hex[c >> 4];
		enc[2] = hex[c & 15];
		if (buf_append(b, enc, 3) < 0)
			return -1;
	}
	return 0;
}

void util_copy(char *out, size_t outsz, const char *src)
{
	size_t n = strnlen(src, outsz - 1);

	memcpy(out, src, n);
	out[n] = '\0';
}

void util_excerpt(char *out, size_t outsz, const char *p, size_t len)
{
	size_t i, n = len < outsz - 1 ? len : outsz - 1;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		out[i] = c >= 0x20 && c < 0x7f ? (char)c : '.';
	}
	out[n] = '\0';
}

void util_memzero(void *p, size_t n)
{
	volatile unsigned char *v = p;
	while (n--)
		*v++ = 0;
}

void util_free_secret(char *s)
{
	if (s == NULL)
		return;
	util_memzero(s, strlen(s));
	free(s);
}

int util_mkdirs(const char *dir)
{
	char tmp[4096];
	size_t len = strlen(dir);

	if (len == 0 || len >= sizeof(tmp)) {
		errno = len ? ENAMETOOLONG : ENOENT;
		return -1;
	}
	memcpy(tmp, dir, len + 1);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

int util_write_file_replace(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	if (fputs(text, f) < 0) {
		fclose(f);
		unlink(tmp);
		return -1;
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

size_t util_utf8_seq(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char c = p[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0; /* also stops at the NUL */
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool util_utf8_valid(const char *s, size_t n)
{
	size_t o = 0;

	while (o < n) {
		char tail[5] = {0};
		size_t k;

		if ((unsigned char)s[o] < 0x80) {
			o++;
			continue;
		}
		if (n - o >= 4) {
			k = util_utf8_seq(s + o);
		} else {
			/* near the end: a copy ended by NUL bytes, which no sequence continues with
			 */
			memcpy(tail, s + o, n - o);
			k = util_utf8_seq(tail);
		}
		if (k == 0)
			return false;
		o += k;
	}
	return true;
}

/* True when s is a lead byte followed only by continuation bytes up to the end of the
 * string, fewer than the lead byte announces: a character some byte cut broke. */
static bool utf8_cut_short(const char *s)
{
	unsigned char c = (unsigned char)s[0];
	size_t want = c >= 0xf0 && c <= 0xf4 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
	size_t i = 1;

	if (want == 0 || c > 0xf4)
		return false;
	while (i < want && ((unsigned char)s[i] & 0xc0) == 0x80)
		i++;
	return i < want && s[i] == '\0';
}

size_t util_utf8_cut(const char *s, size_t max_bytes, size_t max_chars)
{
	size_t o = 0, chars = 0;

	while (s[o] != '\0' && chars < max_chars) {
		size_t n = util_utf8_seq(s + o);
		if (n == 0) {
			if (utf8_cut_short(s + o))
				break;
			n = 1;
		}
		if (n > max_bytes - o)
			break;
		o += n;
		chars++;
	}
	return o;
}

char *util_utf8_clean(const char *s)
{
	struct buf b;
	int rc = 0;

	buf_init(&b, 0);
	while (*s != '\0' && rc == 0) {
		size_t n = util_utf8_seq(s);
		rc = n ? buf_append(&b, s, n) : buf_puts(&b, "\xEF\xBF\xBD");
		s += n ? n : 1;
	}
	if (rc < 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_steal(&b);
}
