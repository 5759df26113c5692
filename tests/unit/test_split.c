/* Unit tests for bridge/split: a poll window too big for one answer is asked in pieces of
 * time, oldest first, and the piece size follows the density seen. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "bridge/split.h"

#define MIN 60000LL

static void test_no_split_leaves_window_and_moves_cursor(void **state)
{
	(void)state;
	struct win_split s = {0};
	int64_t from = 0, to = 120 * MIN;
	bool backfill = false;

	assert_true(split_apply(&s, &from, &to, &backfill));
	assert_int_equal(from, 0);
	assert_int_equal(to, 120 * MIN);
}

static void test_too_big_answer_halves_and_asks_oldest_half_first(void **state)
{
	(void)state;
	struct win_split s = {0};
	int64_t from = 0, to = 120 * MIN;
	bool backfill = true;

	assert_int_equal(split_narrow(&s, 0, 120 * MIN, true), 0);
	/* the next cycle's window from the cursor is the same one (the cursor did not move) */
	backfill = false;
	assert_false(split_apply(&s, &from, &to, &backfill));
	assert_int_equal(from, 0);
	assert_int_equal(to, 60 * MIN);
	assert_true(backfill); /* every piece keeps the split window's backfill */
}

static void test_pieces_cover_the_window_and_only_the_last_moves_cursor(void **state)
{
	(void)state;
	struct win_split s = {0};
	int64_t from, to, covered = 0;
	bool backfill = false, last = false;
	int pieces = 0;

	split_narrow(&s, 0, 120 * MIN, false);
	split_narrow(&s, 0, 60 * MIN, false); /* still too big: 30 min pieces */
	while (!last && pieces < 100) {
		from = 0;
		to = 120 * MIN;
		last = split_apply(&s, &from, &to, &backfill);
		assert_int_equal(from, covered); /* no gap, no overlap */
		covered = to;
		split_done(&s, from, to, 600, 1000); /* dense: the span stays */
		pieces++;
	}
	assert_int_equal(pieces, 4);
	assert_int_equal(covered, 120 * MIN);
	assert_int_equal(s.to, 0); /* the split is over */
}

static void test_sparse_pieces_grow_the_span(void **state)
{
	(void)state;
	struct win_split s = {0};
	int64_t from = 0, to = 120 * MIN;
	bool backfill = false;

	split_narrow(&s, 0, 120 * MIN, false);
	split_narrow(&s, 0, 60 * MIN, false);
	split_apply(&s, &from, &to, &backfill); /* [0, 30) */
	split_done(&s, from, to, 10, 1000);     /* sparse: next piece 60 min */
	from = 0;
	to = 120 * MIN;
	assert_false(split_apply(&s, &from, &to, &backfill));
	assert_int_equal(from, 30 * MIN);
	assert_int_equal(to, 90 * MIN);
	split_done(&s, from, to, 10, 1000); /* 120 min pieces from now on */
	from = 0;
	to = 120 * MIN;
	assert_true(split_apply(&s, &from, &to, &backfill));
	assert_int_equal(from, 90 * MIN);
	assert_int_equal(to, 120 * MIN); /* capped at the window's end */
}

static void test_learnt_span_splits_the_next_wide_window(void **state)
{
	(void)state;
	struct win_split s = {0};
	int64_t from, to;
	bool backfill = false;

	split_narrow(&s, 0, 20 * MIN, false); /* span 10 min */
	for (int i = 0; i < 2; i++) {
		from = 0;
		to = 20 * MIN;
		split_apply(&s, &from, &to, &backfill);
		split_done(&s, from, to, 900, 1000);
	}
	assert_int_equal(s.to, 0);
	from = 100 * MIN;
	to = 140 * MIN; /* a catch-up wider than the span learnt */
	assert_false(split_apply(&s, &from, &to, &backfill));
	assert_int_equal(from, 100 * MIN);
	assert_int_equal(to, 110 * MIN);
}

static void test_whole_sparse_window_forgets_the_span(void **state)
{
	(void)state;
	struct win_split s = {.span = 10 * MIN};
	int64_t from = 0, to = 5 * MIN;
	bool backfill = false;

	assert_true(split_apply(&s, &from, &to, &backfill));
	split_done(&s, from, to, 3, 1000);
	assert_int_equal(s.span, 0);
}

static void test_window_under_a_second_is_not_split(void **state)
{
	(void)state;
	struct win_split s = {0};

	assert_int_equal(split_narrow(&s, 0, SPLIT_MIN_MS + 1, false), -1);
	assert_int_equal(s.to, 0);
	assert_int_equal(split_narrow(&s, 0, 2 * SPLIT_MIN_MS, false), 0);
}

static void test_body_cap_follows_max_events(void **state)
{
	(void)state;
	assert_int_equal(split_body_cap(0), 0);
	assert_int_equal(split_body_cap(1000), 1000 * SPLIT_BYTES_PER_EVENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_split_leaves_window_and_moves_cursor),
	    cmocka_unit_test(test_too_big_answer_halves_and_asks_oldest_half_first),
	    cmocka_unit_test(test_pieces_cover_the_window_and_only_the_last_moves_cursor),
	    cmocka_unit_test(test_sparse_pieces_grow_the_span),
	    cmocka_unit_test(test_learnt_span_splits_the_next_wide_window),
	    cmocka_unit_test(test_whole_sparse_window_forgets_the_span),
	    cmocka_unit_test(test_window_under_a_second_is_not_split),
	    cmocka_unit_test(test_body_cap_follows_max_events),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
