/* Unit tests for lib/util: cutting UTF-8 text by bytes or characters at character
 * boundaries, cleaning text from peers before it goes into JSON, and the time formats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "lib/util.h"

#define EURO "\xE2\x82\xAC" /* 3 bytes, 1 character */

static void test_utf8_cut_by_bytes_stops_before_a_character(void **state)
{
	(void)state;
	assert_int_equal(util_utf8_cut("ab" EURO "c", 2, SIZE_MAX), 2);
	assert_int_equal(util_utf8_cut("ab" EURO "c", 3, SIZE_MAX), 2);
	assert_int_equal(util_utf8_cut("ab" EURO "c", 4, SIZE_MAX), 2);
	assert_int_equal(util_utf8_cut("ab" EURO "c", 5, SIZE_MAX), 5);
	assert_int_equal(util_utf8_cut("ab" EURO "c", 100, SIZE_MAX), 6);
}

static void test_utf8_cut_by_characters(void **state)
{
	(void)state;
	assert_int_equal(util_utf8_cut(EURO EURO EURO, SIZE_MAX, 2), 6);
	assert_int_equal(util_utf8_cut(EURO EURO EURO, SIZE_MAX, 0), 0);
	assert_int_equal(util_utf8_cut("a" EURO "b", 4, 3), 4);
}

static void test_utf8_cut_drops_a_character_cut_short(void **state)
{
	(void)state;
	/* what a byte cut (snprintf) left: the broken tail goes, the rest stays */
	assert_int_equal(util_utf8_cut("ab\xE2\x82", SIZE_MAX, SIZE_MAX), 2);
	assert_int_equal(util_utf8_cut("ab\xF0\x9F", SIZE_MAX, SIZE_MAX), 2);
	/* a stray byte is one character, kept: cleaning is util_utf8_clean's job */
	assert_int_equal(util_utf8_cut("a\xFFz", SIZE_MAX, SIZE_MAX), 3);
	assert_int_equal(util_utf8_cut("a\x82z", SIZE_MAX, SIZE_MAX), 3);
}

static void test_utf8_clean_replaces_bytes_that_are_not_utf8(void **state)
{
	(void)state;
	char *s = util_utf8_clean("a\xFF" EURO "\xE2\x82");
	assert_string_equal(s, "a\xEF\xBF\xBD" EURO "\xEF\xBF\xBD\xEF\xBF\xBD");
	free(s);
	s = util_utf8_clean("");
	assert_string_equal(s, "");
	free(s);
}

/* A bounded check: a sequence cut by the end of the bytes is not valid, even when more
 * bytes follow in memory; a NUL byte is a character like another. */
static void test_utf8_valid_checks_exactly_the_bytes_given(void **state)
{
	static const char s[] = "a" EURO "\xF0\x9F\x98\x80";
	(void)state;

	assert_true(util_utf8_valid(s, 0));
	assert_true(util_utf8_valid(s, strlen(s)));
	assert_true(util_utf8_valid(s, 4));  /* "a" and the euro sign */
	assert_false(util_utf8_valid(s, 3)); /* the euro sign cut */
	assert_false(util_utf8_valid(s, 7)); /* the emoji cut: its last byte follows */
	assert_true(util_utf8_valid("a\0b", 3));
	assert_false(util_utf8_valid("\xC0\xAF", 2));         /* overlong '/' */
	assert_false(util_utf8_valid("\xED\xA0\x80", 3));     /* a surrogate */
	assert_false(util_utf8_valid("\xF4\x90\x80\x80", 4)); /* above U+10FFFF */
	assert_false(util_utf8_valid("ab\x82", 3));
}

static void test_copy_cuts_to_fit_and_terminates(void **state)
{
	char out[5];

	(void)state;
	memset(out, 'x', sizeof(out));
	util_copy(out, sizeof(out), "abc");
	assert_string_equal(out, "abc");
	util_copy(out, sizeof(out), "abcdefgh");
	assert_string_equal(out, "abcd");
	util_copy(out, sizeof(out), "");
	assert_string_equal(out, "");
	util_copy(out, 1, "abc");
	assert_string_equal(out, "");
}

static void test_format_iso_writes_the_offset_given(void **state)
{
	char out[UTIL_TIME_MAX];

	(void)state;
	util_format_iso(1591977789019LL, 60, out); /* 2020-06-12 16:03:09.019 UTC */
	assert_string_equal(out, "2020-06-12T17:03:09.019+01:00");
	util_format_iso(1591977789019LL, -330, out);
	assert_string_equal(out, "2020-06-12T10:33:09.019-05:30");
	util_format_iso(0, 0, out);
	assert_string_equal(out, "1970-01-01T00:00:00.000+00:00");
	util_format_iso(-1, 0, out); /* before 1970: the milliseconds count forwards */
	assert_string_equal(out, "1969-12-31T23:59:59.999+00:00");
	util_format_iso(253402300800000LL, 0, out); /* year 10000: wider, as snprintf wrote it */
	assert_string_equal(out, "10000-01-01T00:00:00.000+00:00");
}

static void test_format_api_writes_utc(void **state)
{
	char out[UTIL_TIME_MAX];

	(void)state;
	util_format_api(1591977789019LL, out);
	assert_string_equal(out, "2020-06-12 16:03:09.019 UTC");
	util_format_api(946684799000LL, out);
	assert_string_equal(out, "1999-12-31 23:59:59.000 UTC");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_copy_cuts_to_fit_and_terminates),
	    cmocka_unit_test(test_utf8_cut_by_bytes_stops_before_a_character),
	    cmocka_unit_test(test_utf8_cut_by_characters),
	    cmocka_unit_test(test_utf8_cut_drops_a_character_cut_short),
	    cmocka_unit_test(test_utf8_clean_replaces_bytes_that_are_not_utf8),
	    cmocka_unit_test(test_utf8_valid_checks_exactly_the_bytes_given),
	    cmocka_unit_test(test_format_iso_writes_the_offset_given),
	    cmocka_unit_test(test_format_api_writes_utc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
