/* Fuzz target: the text-to-time parsers (util_parse_time, util_parse_duration,
 * retry_after_parse) on the whole input, with the round trips that are defined: a parsed
 * time formats (util_format_iso, and as an HTTP date for Retry-After) and parses back to
 * the same instant; a parsed duration written in ms parses back; Retry-After is -1 or in
 * [0, cap] and delay-seconds are exactly min(n s, cap). */
#include <inttypes.h>
#include <string.h>
#include <time.h>

#include "lib/retry.h"
#include "lib/util.h"
#include "tests/fuzz/fuzz.h"

#define NOW_MS INT64_C(1700000000123) /* 2023-11-14T22:13:20.123Z: fixed, so runs repeat */
#define CAP_MS (INT64_C(24) * 3600 * 1000)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static void check_time(const char *s)
{
	int64_t ms, ms2;
	int off, off2;
	char iso[UTIL_TIME_MAX], http[64];
	struct tm tm;
	time_t t;

	if (util_parse_time(s, &ms, &off) < 0)
		return;
	FUZZ_CHECK(off > -24 * 60 && off < 24 * 60, "'%s': offset %d", s, off);
	util_format_iso(ms, off, iso);
	/* the local year is the one written, but a leap second or a day past the month's end
	 * may carry it past 9999: then the text form is not defined */
	if (strlen(iso) == 29 && iso[0] != '-') {
		FUZZ_CHECK(util_parse_time(iso, &ms2, &off2) == 0, "'%s' -> '%s' does not parse", s,
		           iso);
		FUZZ_CHECK(ms2 == ms && off2 == off,
		           "'%s' -> '%s': %" PRId64 "/%d != %" PRId64 "/%d", s, iso, ms, off, ms2,
		           off2);
	}
	/* the same instant as an IMF-fixdate Retry-After, from a fixed now */
	t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	if (t >= 0 && t < INT64_C(253402300800) && gmtime_r(&t, &tm) &&
	    strftime(http, sizeof(http), "%a, %d %b %Y %H:%M:%S GMT", &tm) > 0) {
		int64_t want, got = retry_after_parse(http, NOW_MS, CAP_MS);
		int64_t ahead = (int64_t)t - NOW_MS / 1000;
		if (ahead <= 0)
			want = 0;
		else if (ahead > CAP_MS / 1000)
			want = CAP_MS;
		else
			want = (int64_t)t * 1000 - NOW_MS;
		FUZZ_CHECK(got == want, "Retry-After '%s' (from '%s'): %" PRId64 " != %" PRId64,
		           http, s, got, want);
	}
}

static void check_duration(const char *s)
{
	int64_t ms, ms2;
	char text[32];

	if (util_parse_duration(s, &ms) < 0)
		return;
	FUZZ_CHECK(ms >= 0, "'%s': %" PRId64, s, ms);
	snprintf(text, sizeof(text), "%" PRId64 "ms", ms);
	FUZZ_CHECK(util_parse_duration(text, &ms2) == 0 && ms2 == ms, "'%s' -> '%s' -> %" PRId64, s,
	           text, ms2);
}

static void check_retry_after(const char *s)
{
	int64_t caps[] = {0, 999, 1000, CAP_MS, INT64_MAX};

	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++) {
		int64_t got = retry_after_parse(s, NOW_MS, caps[i]);
		FUZZ_CHECK(got == -1 || (got >= 0 && got <= caps[i]),
		           "'%s' cap %" PRId64 ": %" PRId64, s, caps[i], got);
		/* delay-seconds (blanks around allowed): exactly n s, or the cap */
		const char *p = s + strspn(s, " \t");
		size_t nd = strspn(p, "0123456789"), end = nd;
		while (p[end] == ' ' || p[end] == '\t' || p[end] == '\r' || p[end] == '\n' ||
		       p[end] == '\v' || p[end] == '\f')
			end++;
		if (nd > 0 && nd < 19 && p[end] == '\0' && strlen(p) < 64) {
			int64_t n = strtoll(p, NULL, 10);
			int64_t want = n > caps[i] / 1000 ? caps[i] : n * 1000;
			FUZZ_CHECK(got == want, "'%s' cap %" PRId64 ": %" PRId64 " != %" PRId64, s,
			           caps[i], got, want);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_cstr(data, size);

	if (s == NULL)
		return 0;
	check_time(s);
	check_duration(s);
	check_retry_after(s);
	free(s);
	return 0;
}
