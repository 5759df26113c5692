/* lib/retry: backoff steps, jitter bounds and Retry-After parsing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lib/retry.h"

#define WEEK_MS (7 * 24 * 3600 * 1000LL)

static void test_backoff_doubles_up_to_the_cap(void **state)
{
	(void)state;
	assert_int_equal(retry_backoff_ms(0, 1000, 300000), 1000);
	assert_int_equal(retry_backoff_ms(3, 1000, 300000), 8000);
	assert_int_equal(retry_backoff_ms(1000000, 1000, 300000), 300000);
	assert_int_equal(retry_backoff_next(0, 1000, 300000), 1000);
	assert_int_equal(retry_backoff_next(1000, 1000, 300000), 2000);
	assert_int_equal(retry_backoff_next(200000, 1000, 300000), 300000);
	assert_int_equal(retry_backoff_next(INT64_MAX, 1000, 300000), 300000);
}

static void test_jitter_stays_between_half_and_all(void **state)
{
	uint64_t rng = 42;
	(void)state;
	for (int i = 0; i < 10000; i++) {
		int64_t d = retry_jitter_ms(8000, &rng);
		assert_true(d >= 4000 && d <= 8000);
	}
	assert_int_equal(retry_jitter_ms(1, &rng), 1);
}

static void test_retry_after_seconds_and_date(void **state)
{
	(void)state;
	assert_int_equal(retry_after_parse("3", 0, WEEK_MS), 3000);
	assert_int_equal(retry_after_parse("  3 \r\n", 0, WEEK_MS), 3000);
	/* Thu, 01 Jan 1970 00:01:40 GMT = 100 s */
	assert_int_equal(retry_after_parse("Thu, 01 Jan 1970 00:01:40 GMT", 40000, WEEK_MS), 60000);
	assert_int_equal(retry_after_parse("Thu, 01 Jan 1970 00:01:40 GMT", 200000, WEEK_MS), 0);
	assert_int_equal(retry_after_parse("soon", 0, WEEK_MS), -1);
	assert_int_equal(retry_after_parse("", 0, WEEK_MS), -1);
	assert_int_equal(retry_after_parse(NULL, 0, WEEK_MS), -1);
}

/* Clamped before any multiplication: these overflowed int64 in the API client (UBSan). */
static void test_retry_after_is_clamped_without_overflow(void **state)
{
	(void)state;
	assert_int_equal(retry_after_parse("999999999999", 0, WEEK_MS), WEEK_MS);
	assert_int_equal(retry_after_parse("9223372036854775807", 0, WEEK_MS), WEEK_MS);
	assert_int_equal(retry_after_parse("99999999999999999999999999", 0, WEEK_MS), WEEK_MS);
	assert_int_equal(retry_after_parse("Fri, 31 Dec 9999 23:59:59 GMT", 0, WEEK_MS), WEEK_MS);
	assert_int_equal(retry_after_parse("Fri, 31 Dec 9999 23:59:59 GMT", 0, 3600000), 3600000);
}

/* Retry-After lengthens the backoff and never shortens it ("0" gave a retry storm). */
static void test_retry_after_only_lengthens(void **state)
{
	(void)state;
	assert_int_equal(retry_delay_ms(4000, 0), 4000);
	assert_int_equal(retry_delay_ms(4000, -1), 4000);
	assert_int_equal(retry_delay_ms(4000, 60000), 60000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_backoff_doubles_up_to_the_cap),
	    cmocka_unit_test(test_jitter_stays_between_half_and_all),
	    cmocka_unit_test(test_retry_after_seconds_and_date),
	    cmocka_unit_test(test_retry_after_is_clamped_without_overflow),
	    cmocka_unit_test(test_retry_after_only_lengthens),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
