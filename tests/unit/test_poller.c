/* Unit tests for the pure parts of a poll cycle in bridge/poller: the window each request
 * asks for, when what it finds is backfill, and how many zones go to the API at once.
 * The phase of what is found is tested in test_phase.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bridge/poller.h"

#define MIN (60 * 1000LL)
#define NOW (1594305000000LL) /* 2020-07-09T14:30:00Z */

static struct config poll_config(void)
{
	struct config c;

	memset(&c, 0, sizeof(c));
	c.poll.interval_ms = 1 * MIN;
	c.poll.lookback_ms = 5 * MIN;
	c.poll.catchup_window_ms = 60 * MIN;
	return c;
}

/* A first poll (no cursor: cursor = now) looks back `lookback` and ends now. */
static void test_first_window_looks_back(void **state)
{
	(void)state;
	struct config c = poll_config();
	struct poller_window w;

	poller_window(&c, NOW, NOW, &w);
	assert_int_equal(w.from, NOW - 5 * MIN);
	assert_int_equal(w.to, NOW);
	assert_false(w.backfill);
}

/* Windows overlap by lookback, so a late revision of the window before is seen again. */
static void test_window_overlaps_the_last_by_lookback(void **state)
{
	(void)state;
	struct config c = poll_config();
	struct poller_window w;

	poller_window(&c, NOW - 1 * MIN, NOW, &w);
	assert_int_equal(w.from, NOW - 6 * MIN);
	assert_int_equal(w.to, NOW);
	assert_false(w.backfill);
}

/* After downtime the window is bounded by catchup_window and finds backfill. */
static void test_window_after_downtime_is_bounded_backfill(void **state)
{
	(void)state;
	struct config c = poll_config();
	struct poller_window w;
	int64_t cursor = NOW - 5 * 60 * MIN;

	poller_window(&c, cursor, NOW, &w);
	assert_int_equal(w.from, cursor - 5 * MIN);
	assert_int_equal(w.to, cursor + 60 * MIN);
	assert_true(w.backfill);
}

/* Backfill starts only past lookback plus POLLER_BACKFILL_INTERVALS intervals. */
static void test_backfill_threshold(void **state)
{
	(void)state;
	struct config c = poll_config();
	struct poller_window w;
	int64_t edge = 5 * MIN + POLLER_BACKFILL_INTERVALS * 1 * MIN;

	poller_window(&c, NOW - edge, NOW, &w);
	assert_false(w.backfill);
	poller_window(&c, NOW - edge - 1, NOW, &w);
	assert_true(w.backfill);
}

static void test_zones_per_batch(void **state)
{
	(void)state;
	assert_int_equal(poller_zones_per_batch(1), 1);
	assert_int_equal(poller_zones_per_batch(2), 1);
	assert_int_equal(poller_zones_per_batch(8), 2);
	assert_int_equal(poller_zones_per_batch(9), 3);
	assert_int_equal(poller_zones_per_batch(0), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_window_looks_back),
	    cmocka_unit_test(test_window_overlaps_the_last_by_lookback),
	    cmocka_unit_test(test_window_after_downtime_is_bounded_backfill),
	    cmocka_unit_test(test_backfill_threshold),
	    cmocka_unit_test(test_zones_per_batch),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
