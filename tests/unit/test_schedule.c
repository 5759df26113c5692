/* Unit tests for rules/schedule: TZif tables and POSIX footers (M, J and zero-based day
 * rules, southern hemisphere), weekly windows across midnight, time and day parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/util.h"
#include "rules/schedule.h"

static int64_t S(const char *iso) /* Unix seconds */
{
	int64_t ms = 0;
	assert_int_equal(util_parse_time(iso, &ms, NULL), 0);
	return ms / 1000;
}

static int64_t MS(const char *iso)
{
	return S(iso) * 1000;
}

static void test_tz_london_transitions_in_table(void **state)
{
	(void)state;
	char err[200];
	struct tz *tz = tz_load("Europe/London", NULL, err, sizeof(err));
	assert_non_null(tz);
	assert_string_equal(tz_name(tz), "Europe/London");
	assert_int_equal(tz_offset(tz, S("2026-03-29T00:59:59Z")), 0);
	assert_int_equal(tz_offset(tz, S("2026-03-29T01:00:00Z")), 3600);
	assert_int_equal(tz_offset(tz, S("2026-10-25T00:59:59Z")), 3600);
	assert_int_equal(tz_offset(tz, S("2026-10-25T01:00:00Z")), 0);
	assert_int_equal(tz_offset(tz, S("1971-06-01T00:00:00Z")),
	                 3600); /* British Standard Time */
	tz_free(tz);
}

static void test_tz_footer_after_table(void **state)
{
	(void)state;
	char err[200];
	struct tz *tz = tz_load("Europe/London", NULL, err, sizeof(err));
	assert_non_null(tz);
	/* GMT0BST,M3.5.0/1,M10.5.0; last Sunday of March 2090 is the 26th */
	assert_int_equal(tz_offset(tz, S("2090-03-26T00:59:59Z")), 0);
	assert_int_equal(tz_offset(tz, S("2090-03-26T01:00:00Z")), 3600);
	assert_int_equal(tz_offset(tz, S("2090-07-01T12:00:00Z")), 3600);
	assert_int_equal(tz_offset(tz, S("2090-12-01T12:00:00Z")), 0);
	tz_free(tz);
}

static void test_tz_southern_hemisphere(void **state)
{
	(void)state;
	char err[200];
	struct tz *tz = tz_load("Australia/Sydney", NULL, err, sizeof(err));
	assert_non_null(tz);
	assert_int_equal(tz_offset(tz, S("2026-01-15T00:00:00Z")), 11 * 3600);
	assert_int_equal(tz_offset(tz, S("2026-07-15T00:00:00Z")), 10 * 3600);
	assert_int_equal(tz_offset(tz, S("2090-01-15T00:00:00Z")), 11 * 3600);
	assert_int_equal(tz_offset(tz, S("2090-07-15T00:00:00Z")), 10 * 3600);
	tz_free(tz);
}

/* A TZif v2 file with no transitions, one type, and the given footer. */
static void write_tzif(const char *path, const char *footer)
{
	unsigned char hdr[44] = "TZif2";
	unsigned char body[10] = {0, 0, 0, 0, 0, 0, 'X', 'X', 'X', 0}; /* utoff 0, "XXX" */
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	memset(hdr + 5, 0, sizeof(hdr) - 5);
	hdr[4] = '2';
	hdr[20 + 4 * 4 + 3] = 1; /* typecnt */
	hdr[20 + 5 * 4 + 3] = 4; /* charcnt */
	for (int i = 0; i < 2; i++) {
		fwrite(hdr, 1, sizeof(hdr), f);
		fwrite(body, 1, sizeof(body), f);
	}
	fprintf(f, "\n%s\n", footer);
	fclose(f);
}

static void test_tz_footer_julian_rules(void **state)
{
	(void)state;
	char dir[] = "/tmp/tb-tz-XXXXXX", path[256], err[200];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/Test", dir);
	/* +2 standard, +3 summer from 1 March (J60, leap days never counted) 03:00 to the
	 * zero-based day 300 at 04:00 local summer time */
	write_tzif(path, "AAA-2BBB,J60/3,300/4");
	struct tz *tz = tz_load("Test", dir, err, sizeof(err));
	assert_non_null(tz);
	assert_int_equal(tz_offset(tz, S("2027-03-01T00:59:59Z")), 7200);
	assert_int_equal(tz_offset(tz, S("2027-03-01T01:00:00Z")), 10800);
	assert_int_equal(tz_offset(tz, S("2027-10-28T00:59:59Z")), 10800);
	assert_int_equal(tz_offset(tz, S("2027-10-28T01:00:00Z")), 7200);
	assert_int_equal(tz_offset(tz, S("2028-02-29T12:00:00Z")), 7200);
	assert_int_equal(tz_offset(tz, S("2028-03-01T01:00:00Z")), 10800);
	tz_free(tz);
	write_tzif(path, "<+0530>-5:30");
	tz = tz_load("Test", dir, err, sizeof(err));
	assert_non_null(tz);
	assert_int_equal(tz_offset(tz, S("2027-06-01T00:00:00Z")), 5 * 3600 + 1800);
	tz_free(tz);
	unlink(path);
	rmdir(dir);
}

static void test_tz_unknown_suggests_the_closest_zone(void **state)
{
	(void)state;
	char dir[] = "/tmp/tb-tz-XXXXXX", path[256], err[200];
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/Europe", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/Europe/London", dir);
	assert_non_null(f = fopen(path, "w"));
	fclose(f);
	assert_null(tz_load("Europe/Londn", dir, err, sizeof(err)));
	assert_string_equal(err,
	                    "unknown time zone 'Europe/Londn' (did you mean 'Europe/London'?)");
	assert_null(tz_load("europe/london", dir, err, sizeof(err)));
	assert_string_equal(err,
	                    "unknown time zone 'europe/london' (did you mean 'Europe/London'?)");
	assert_null(tz_load("utc", dir, err, sizeof(err)));
	assert_string_equal(err, "unknown time zone 'utc' (did you mean 'UTC'?)");
	assert_null(tz_load("Mars/Base", dir, err, sizeof(err)));
	assert_string_equal(err, "unknown time zone 'Mars/Base' (use an IANA name like "
	                         "'Europe/London', or 'UTC')");
	unlink(path);
	snprintf(path, sizeof(path), "%s/Europe", dir);
	rmdir(path);
	rmdir(dir);
}

static void test_tz_rejects_bad_names_and_files(void **state)
{
	(void)state;
	char dir[] = "/tmp/tb-tz-XXXXXX", path[256], err[200];
	assert_null(tz_load("../etc/passwd", NULL, err, sizeof(err)));
	assert_string_equal(err, "unknown time zone '../etc/passwd' (use an IANA name like "
	                         "'Europe/London', or 'UTC')");
	assert_null(tz_load("/etc/localtime", NULL, err, sizeof(err)));
	assert_null(tz_load("Europe/Lundon", NULL, err, sizeof(err)));
	assert_string_equal(err,
	                    "unknown time zone 'Europe/Lundon' (did you mean 'Europe/London'?)");
	assert_null(tz_load("Europe London", NULL, err, sizeof(err)));
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/Junk", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs("TZif2 but not really", f);
	fclose(f);
	assert_null(tz_load("Junk", dir, err, sizeof(err)));
	assert_non_null(strstr(err, "is not a valid TZif file"));
	unlink(path);
	rmdir(dir);
	struct tz *utc = tz_load("UTC", dir, err, sizeof(err)); /* built in */
	assert_non_null(utc);
	assert_int_equal(tz_offset(utc, 123456), 0);
	tz_free(utc);
}

static void test_window_same_day(void **state)
{
	(void)state;
	struct sched_window w = {.days = 1u << 3, .from_min = 9 * 60, .to_min = 17 * 60};
	assert_true(sched_window_holds(&w, MS("2026-11-26T09:00:00Z"))); /* Thu */
	assert_true(sched_window_holds(&w, MS("2026-11-26T16:59:59Z")));
	assert_false(sched_window_holds(&w, MS("2026-11-26T17:00:00Z")));
	assert_false(sched_window_holds(&w, MS("2026-11-26T08:59:00Z")));
	assert_false(sched_window_holds(&w, MS("2026-11-27T10:00:00Z"))); /* Fri */
}

static void test_window_across_midnight_belongs_to_start_day(void **state)
{
	(void)state;
	struct sched_window w = {.days = 1u << 6, .from_min = 22 * 60, .to_min = 6 * 60}; /* Sun */
	assert_true(sched_window_holds(&w, MS("2026-11-29T23:00:00Z")));  /* Sun night */
	assert_true(sched_window_holds(&w, MS("2026-11-30T05:59:00Z")));  /* Mon early */
	assert_false(sched_window_holds(&w, MS("2026-11-29T05:00:00Z"))); /* Sun early: Sat's */
	assert_false(sched_window_holds(&w, MS("2026-11-30T22:30:00Z"))); /* Mon night */
}

static void test_window_all_day_and_24h(void **state)
{
	(void)state;
	struct sched_window all = {.days = 0x7f, .from_min = 0, .to_min = 1440};
	struct sched_window eq = {.days = 1u << 0, .from_min = 12 * 60, .to_min = 12 * 60};
	assert_true(sched_window_holds(&all, MS("2026-11-26T00:00:00Z")));
	assert_true(sched_window_holds(&all, MS("2026-11-26T23:59:59Z")));
	/* from == to: 24 hours from Monday noon */
	assert_true(sched_window_holds(&eq, MS("2026-11-30T12:00:00Z")));
	assert_true(sched_window_holds(&eq, MS("2026-12-01T11:59:00Z")));
	assert_false(sched_window_holds(&eq, MS("2026-12-01T12:00:00Z")));
}

static void test_window_in_time_zone(void **state)
{
	(void)state;
	char err[200];
	struct tz *tz = tz_load("Asia/Tokyo", NULL, err, sizeof(err));
	assert_non_null(tz);
	struct sched_window w = {.days = 1u << 4, .from_min = 0, .to_min = 60, .tz = tz}; /* Fri */
	/* Friday 00:30 in Tokyo is Thursday 15:30 UTC */
	assert_true(sched_window_holds(&w, MS("2026-11-26T15:30:00Z")));
	assert_false(sched_window_holds(&w, MS("2026-11-27T00:30:00Z")));
	char out[80];
	sched_describe(tz, MS("2026-11-26T15:30:00Z"), out, sizeof(out));
	assert_string_equal(out, "Fri 00:30 Asia/Tokyo");
	sched_describe(NULL, MS("1969-12-31T23:59:00Z"), out, sizeof(out));
	assert_string_equal(out, "Wed 23:59 UTC");
	tz_free(tz);
}

static void test_parse_time_and_day(void **state)
{
	(void)state;
	int m = -1;
	assert_int_equal(sched_parse_hhmm("22:05", false, &m), 0);
	assert_int_equal(m, 22 * 60 + 5);
	assert_int_equal(sched_parse_hhmm("24:00", true, &m), 0);
	assert_int_equal(m, 1440);
	assert_int_equal(sched_parse_hhmm("24:00", false, &m), -1);
	assert_int_equal(sched_parse_hhmm("24:01", true, &m), -1);
	assert_int_equal(sched_parse_hhmm("25:00", true, &m), -1);
	assert_int_equal(sched_parse_hhmm("6:00", true, &m), -1);
	assert_int_equal(sched_parse_hhmm("06:60", true, &m), -1);
	assert_int_equal(sched_parse_day("mon"), 0);
	assert_int_equal(sched_parse_day("Sunday"), 6);
	assert_int_equal(sched_parse_day("tues"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_tz_london_transitions_in_table),
	    cmocka_unit_test(test_tz_footer_after_table),
	    cmocka_unit_test(test_tz_southern_hemisphere),
	    cmocka_unit_test(test_tz_footer_julian_rules),
	    cmocka_unit_test(test_tz_rejects_bad_names_and_files),
	    cmocka_unit_test(test_tz_unknown_suggests_the_closest_zone),
	    cmocka_unit_test(test_window_same_day),
	    cmocka_unit_test(test_window_across_midnight_belongs_to_start_day),
	    cmocka_unit_test(test_window_all_day_and_24h),
	    cmocka_unit_test(test_window_in_time_zone),
	    cmocka_unit_test(test_parse_time_and_day),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
