/* Unit tests for bridge/catchup: which messages a catch-up holds back, and the counts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "bridge/catchup.h"
#include "lib/log.h"

#define MIN_MS (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)

static void test_only_old_backfill_is_held(void **state)
{
	struct catchup c = {0};
	int64_t now = 1000 * HOUR_MS;
	(void)state;

	/* live messages are never held, whatever their age */
	assert_true(catchup_take(&c, false, now - 12 * HOUR_MS, now, HOUR_MS));
	assert_int_equal(c.found, 0);
	/* found by a catch-up: held when older than the limit */
	assert_true(catchup_take(&c, true, now - 59 * MIN_MS, now, HOUR_MS));
	assert_true(catchup_take(&c, true, now - HOUR_MS, now, HOUR_MS));
	assert_false(catchup_take(&c, true, now - HOUR_MS - 1, now, HOUR_MS));
	assert_false(catchup_take(&c, true, now - 12 * HOUR_MS, now, HOUR_MS));
	assert_int_equal(c.found, 4);
	assert_int_equal(c.held, 2);
	catchup_release(&c);
}

static void test_zero_max_age_delivers_all(void **state)
{
	struct catchup c = {0};
	int64_t now = 1000 * HOUR_MS;
	(void)state;

	assert_true(catchup_take(&c, true, now - 48 * HOUR_MS, now, 0));
	assert_int_equal(c.found, 1);
	assert_int_equal(c.held, 0);
	catchup_release(&c);
}

static void test_step_hands_counts_to_the_zone_and_drop_forgets(void **state)
{
	struct catchup c = {0};
	int64_t now = 1000 * HOUR_MS;
	(void)state;

	assert_false(catchup_take(&c, true, now - 2 * HOUR_MS, now, HOUR_MS));
	catchup_drop(&c); /* rolled back */
	assert_int_equal(c.found, 0);
	assert_int_equal(c.held, 0);
	assert_false(catchup_take(&c, true, now - 2 * HOUR_MS, now, HOUR_MS));
	catchup_step(&c, "z1", "Back door", true, now - 10 * HOUR_MS, now, HOUR_MS, HOUR_MS);
	assert_int_equal(c.found, 0); /* now the zone's */
	catchup_step(&c, "z1", "Back door", false, now, now, HOUR_MS, HOUR_MS);
	catchup_step(&c, "z2", "Gate", false, now, now, HOUR_MS, HOUR_MS); /* never behind */
	assert_int_equal(c.n, 2);
	catchup_release(&c);
	assert_int_equal(c.n, 0);
}

static void test_durations_read_well(void **state)
{
	char out[32];
	(void)state;
	catchup_fmt_ms(0, out, sizeof(out));
	assert_string_equal(out, "0s");
	catchup_fmt_ms(59400, out, sizeof(out));
	assert_string_equal(out, "59s");
	catchup_fmt_ms(150 * 1000, out, sizeof(out));
	assert_string_equal(out, "2m 30s");
	catchup_fmt_ms(12 * HOUR_MS + 5 * MIN_MS, out, sizeof(out));
	assert_string_equal(out, "12h 5m");
	catchup_fmt_ms(HOUR_MS, out, sizeof(out));
	assert_string_equal(out, "1h");
	catchup_fmt_ms(5 * MIN_MS, out, sizeof(out));
	assert_string_equal(out, "5m");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_only_old_backfill_is_held),
	    cmocka_unit_test(test_zero_max_age_delivers_all),
	    cmocka_unit_test(test_step_hands_counts_to_the_zone_and_drop_forgets),
	    cmocka_unit_test(test_durations_read_well),
	};
	log_init(LOG_LEVEL_ERROR, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
