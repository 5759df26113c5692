/* Small shared pieces: durations, timestamps as the Tether API writes them, a bounded
 * growable buffer and clocks. No I/O. Everything above config/ may use it. */
#ifndef TB_UTIL_H
#define TB_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "500ms", "10s", "5m", "2h", "1d" (a bare "0" too) -> milliseconds. 0, or -1 if invalid. */
int util_parse_duration(const char *s, int64_t *ms);

/* Parses "2020-06-12T16:03:09.019+01:00", "...Z", "2018-07-09 19:00:00", "2020-03-05 08:51:46.895
 * UTC", "2020-07-04 15:35:45 +0100". A time without zone is UTC. Sets *ms (Unix ms, UTC) and, when
 * offset_min is non-NULL, the offset east of UTC in minutes. 0, or -1 if invalid. */
int util_parse_time(const char *s, int64_t *ms, int *offset_min);

#define UTIL_TIME_MAX 96
/* "2020-06-12T16:03:09.019+01:00" (offset_min east of UTC; 0 gives "+00:00"). */
void util_format_iso(int64_t ms, int offset_min, char out[UTIL_TIME_MAX]);
/* "2020-06-12 15:03:09.019 UTC", the form the bridge sends to the API. */
void util_format_api(int64_t ms, char out[UTIL_TIME_MAX]);

int64_t util_now_ms(void);  /* wall clock, Unix ms */
int64_t util_mono_ms(void); /* monotonic clock, ms */

/* A growable byte buffer that refuses to grow past max (0: no cap). data is always
 * NUL-terminated when non-NULL. On failure the buffer keeps what it had. */
struct buf {
	char *data;
	size_t len, cap, max;
};
void buf_init(struct buf *b, size_t max);
int buf_append(struct buf *b, const void *p, size_t n); /* 0, or -1 (ENOMEM, or E2BIG past max) */
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
void buf_reset(struct buf *b);  /* len = 0, keeps memory */
char *buf_steal(struct buf *b); /* caller frees; buffer is emptied */
void buf_release(struct buf *b);

/* Percent-encodes s for a URL query value into b (RFC 3986 unreserved kept). */
int buf_urlencode(struct buf *b, const char *s);

/* Writes text to path through a temporary file and rename, so a reader never sees half of
 * it (port and ready files of the test tools; no fsync). 0, or -1 with errno. */
int util_write_file_replace(const char *path, const char *text);

/* Creates dir and its missing parents with mode 0700 (existing ones are left as they
 * are). 0, or -1 with errno. */
int util_mkdirs(const char *dir);

/* Copies src into out (outsz > 0 bytes), cut to fit, NUL-terminated: snprintf's "%s"
 * without the format parsing, for copies on the poller's path. */
void util_copy(char *out, size_t outsz, const char *src);
/* Overwrites n bytes with zeros in a way the compiler keeps (secrets before free). */
void util_memzero(void *p, size_t n);
/* The first bytes of p (len bytes) that fit out, printable: a byte outside printable ASCII
 * becomes '.'. For logs. */
void util_excerpt(char *out, size_t outsz, const char *p, size_t len);
/* Zeroes and frees a NUL-terminated secret; NULL is fine. */
void util_free_secret(char *s);

/* Length (1-4) of the valid UTF-8 sequence at s, or 0 when s does not start one (stray
 * continuation byte, overlong form, surrogate, above U+10FFFF, cut short); 1 for ASCII and
 * for the terminating NUL. As strict as jansson, so what passes here json_string takes. */
size_t util_utf8_seq(const char *s);
/* True when the n bytes at s (not NUL-terminated; NUL bytes are taken as characters) are
 * valid UTF-8 as util_utf8_seq reads it. */
bool util_utf8_valid(const char *s, size_t n);
/* Bytes of the longest prefix of s with at most max_bytes bytes and max_chars characters
 * that does not end inside a character (SIZE_MAX: no limit). A byte that starts no valid
 * sequence counts as one character; a sequence cut short by the end of s is dropped, so
 * a string an earlier byte cut broke gets its whole characters back. */
size_t util_utf8_cut(const char *s, size_t max_bytes, size_t max_chars);
/* A copy of s with every byte that starts no valid UTF-8 sequence replaced by U+FFFD:
 * text from a peer, before it goes into JSON. Caller frees; NULL on ENOMEM. */
char *util_utf8_clean(const char *s);

#endif
