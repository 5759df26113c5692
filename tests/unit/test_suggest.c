/* Unit tests for lib/suggest: the edit distance and which names check offers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "lib/suggest.h"

static void test_distance_counts_each_edit_once(void **state)
{
	(void)state;
	assert_int_equal(suggest_distance("", "", false), 0);
	assert_int_equal(suggest_distance("qos", "qos", false), 0);
	assert_int_equal(suggest_distance("qso", "qos", false), 1); /* a swap */
	assert_int_equal(suggest_distance("acess_token", "access_token", false), 1);
	assert_int_equal(suggest_distance("intrusoin", "intrusion", false), 1);
	assert_int_equal(suggest_distance("ab", "ba", false), 1);
	assert_int_equal(suggest_distance("abc", "ca", false), 3);
	assert_int_equal(suggest_distance("kitten", "sitting", false), 3);
	assert_int_equal(suggest_distance("", "abc", false), 3);
	/* no OCR look-alikes: 0 and O are as different as any two letters */
	assert_int_equal(suggest_distance("B0B", "BOB", false), 1);
}

static void test_distance_without_case(void **state)
{
	(void)state;
	assert_int_equal(suggest_distance("europe/london", "Europe/London", false), 2);
	assert_int_equal(suggest_distance("europe/london", "Europe/London", true), 0);
}

static void test_long_names_are_far(void **state)
{
	char big[300];
	(void)state;
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = 'a';
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(suggest_distance(big, "a", false), SUGGEST_FAR);
}

static void test_pick_the_closest_close_name(void **state)
{
	static const char *const keys[] = {"url",          "qos",      "retain",
	                                   "topic_prefix", "username", NULL};
	(void)state;
	assert_string_equal(suggest_pick("qso", keys, SIZE_MAX), "qos");
	assert_string_equal(suggest_pick("usrname", keys, SIZE_MAX), "username");
	assert_string_equal(suggest_pick("topic_prefx", keys, 5), "topic_prefix");
	assert_null(suggest_pick("password", keys, SIZE_MAX)); /* nothing close */
	assert_null(suggest_pick("url", keys, SIZE_MAX));      /* the same name is no hint */
	assert_null(suggest_pick("x", keys, SIZE_MAX));        /* never the whole word */
	assert_null(suggest_pick("qso", keys, 1));             /* only the first n */
	assert_null(suggest_pick("qxx", keys, SIZE_MAX));      /* 2 edits in 3 letters */
}

static void test_close_grows_with_the_word(void **state)
{
	(void)state;
	assert_true(suggest_close("qso", 1));
	assert_false(suggest_close("qso", 2));
	assert_true(suggest_close("usrname", 2));
	assert_false(suggest_close("usrname", 3));
	assert_true(suggest_close("Europe/Londn", 3));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_distance_counts_each_edit_once),
	    cmocka_unit_test(test_distance_without_case),
	    cmocka_unit_test(test_long_names_are_far),
	    cmocka_unit_test(test_pick_the_closest_close_name),
	    cmocka_unit_test(test_close_grows_with_the_word),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
