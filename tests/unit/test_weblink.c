/* Unit tests for lib/weblink: the exact bytes of the links to the Tether web site. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "lib/weblink.h"

#define BASE "https://my.timeline.is"

static int64_t ms_of(const char *iso)
{
	int64_t ms;
	assert_int_equal(util_parse_time(iso, &ms, NULL), 0);
	return ms;
}

/* The one encoding of the time: UTC, seconds, every value URL-encoded. */
static void test_time_encoding_is_pinned(void **state)
{
	struct buf b;
	(void)state;

	buf_init(&b, 0);
	assert_int_equal(weblink_at(&b, BASE, "/events", ms_of("2020-06-12T16:03:09.019+01:00"),
	                            "5f06c1a541092788f683f3c7", NULL),
	                 0);
	assert_string_equal(b.data, BASE "/events?at=2020-06-12%2015%3A03%3A09"
	                                 "&zone=5f06c1a541092788f683f3c7");
	buf_release(&b);
}

static void test_recording_with_return_url(void **state)
{
	struct buf b;
	(void)state;

	buf_init(&b, 0);
	assert_int_equal(weblink_at(&b, BASE "//", "/recordings", ms_of("2018-07-09T19:00:00Z"),
	                            "5f06cfeb4109278f7ef8dac7", "http://host.some/return/url"),
	                 0);
	assert_string_equal(b.data, BASE "/recordings?at=2018-07-09%2019%3A00%3A00"
	                                 "&zone=5f06cfeb4109278f7ef8dac7"
	                                 "&return_url=http%3A%2F%2Fhost.some%2Freturn%2Furl");
	buf_release(&b);
}

static void test_missing_parameters_left_out(void **state)
{
	struct buf b;
	(void)state;

	buf_init(&b, 0);
	assert_int_equal(weblink_at(&b, BASE, "/events", -1, "z1", NULL), 0);
	assert_string_equal(b.data, BASE "/events?zone=z1");
	buf_release(&b);
}

static void test_events_period_in_docs_order(void **state)
{
	struct buf b;
	(void)state;

	buf_init(&b, 0);
	assert_int_equal(weblink_events_period(&b, BASE, "5f06cfe74109278f7ef8dab2", "2020-07-21",
	                                       "20:30", "21:00", "5f06cfeb4109278f7ef8dac7",
	                                       "http://host.some/return/url"),
	                 0);
	assert_string_equal(b.data, BASE
	                    "/events?events%5Bdate%5D=2020-07-21"
	                    "&events%5Bfrom_time%5D=20%3A30&events%5Bto_time%5D=21%3A00"
	                    "&return_url=http%3A%2F%2Fhost.some%2Freturn%2Furl"
	                    "&timeline_id=5f06cfe74109278f7ef8dab2&zone=5f06cfeb4109278f7ef8dac7");
	buf_release(&b);
}

static void test_over_cap_is_an_error(void **state)
{
	struct buf b;
	(void)state;

	buf_init(&b, 20);
	assert_int_equal(weblink_at(&b, BASE, "/events", 0, "z1", NULL), -1);
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_time_encoding_is_pinned),
	    cmocka_unit_test(test_recording_with_return_url),
	    cmocka_unit_test(test_missing_parameters_left_out),
	    cmocka_unit_test(test_events_period_in_docs_order),
	    cmocka_unit_test(test_over_cap_is_an_error),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
