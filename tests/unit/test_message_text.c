/* Unit tests for message_dump when memory runs out: every allocation of a call fails in
 * turn, and the call gives NULL or the whole text, never a cut one; the thread's generator
 * and buffer are whole again for the next call. malloc, calloc and realloc are interposed
 * for this program (the real ones found with RTLD_NEXT). The texts themselves are compared
 * with the jansson tree's in test_normalize. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <cmocka.h>

#include "rules/normalize.h"

#include "tests/unit/alloc_fail.h"

/* valgrind brings its own allocator, which bypasses the replacement: nothing to sweep */
static void skip_under_valgrind(void)
{
	const char *preload = getenv("LD_PRELOAD");
	if (preload != NULL && strstr(preload, "vgpreload") != NULL)
		skip();
}

static void message_fill(struct message *m, size_t name_len)
{
	memset(m, 0, sizeof(*m));
	m->kind = MSG_PLATE;
	m->phase = MSG_PHASE_UPDATE;
	strcpy(m->source_id, "5f06c1a541092788f683f3c8");
	strcpy(m->revision, "2020-07-09T08:05:09.036+01:00");
	strcpy(m->occurred_at, "2020-06-12T16:03:09.019+01:00");
	strcpy(m->zone_id, "5f06c1a541092788f683f3c7");
	memset(m->zone_name, 'z', name_len < sizeof(m->zone_name) ? name_len : 0);
	strcpy(m->plate_number, "SV05 OSL4");
	strcpy(m->plate_normalized, "SV05OSL4");
	m->watch_matched = true;
	strcpy(m->watchlist, "stolen");
	strcpy(m->watch_label, "van \xfe"); /* not UTF-8: the replacement path too */
	memset(m->link_web, '/', 400);
	m->duration_s = -1;
	m->ended_ms = -1;
	message_set_id(m);
}

/* The reference text, from the tree (caller frees). */
static char *tree_text(const struct message *m)
{
	json_t *o = message_to_json(m);
	char *s = o ? json_dumps(o, MSG_DUMP_FLAGS) : NULL;
	json_decref(o);
	return s;
}

struct sweep {
	long k; /* the allocation to fail */
	const struct message *small, *big;
	const char *want_small, *want_big;
	bool warm;  /* the thread dumps small before the failure is armed */
	bool again; /* then dumps big a second time (from the cache) under the failure */
	bool failed, got_null, got_right, after_right;
};

/* In a thread of its own, so the thread's generator and buffer start anew each time. */
static void *sweep_thread(void *arg)
{
	struct sweep *s = arg;
	char *t = NULL;

	if (s->warm)
		free(message_dump(s->small));
	if (s->again)
		free(message_dump(s->big));
	alloc_count = 0;
	alloc_failed = false;
	fail_at = s->k;
	t = message_dump(s->big);
	fail_at = -1;
	s->failed = alloc_failed;
	s->got_null = t == NULL;
	s->got_right = t != NULL && strcmp(t, s->want_big) == 0;
	free(t);
	/* whatever failed, the thread's next texts are whole */
	t = message_dump(s->small);
	s->after_right = t != NULL && strcmp(t, s->want_small) == 0;
	free(t);
	t = message_dump(s->big);
	s->after_right = s->after_right && t != NULL && strcmp(t, s->want_big) == 0;
	free(t);
	return NULL;
}

/* Fails allocation 0, 1, ... of one message_dump until a call needs no more; returns how
 * many were failed. */
static long sweep(bool warm, bool again)
{
	struct message small, big;
	char *want_small, *want_big;
	long k;

	message_fill(&small, 4);
	message_fill(&big, 250);
	want_small = tree_text(&small);
	want_big = tree_text(&big);
	assert_non_null(want_small);
	assert_non_null(want_big);
	for (k = 0;; k++) {
		struct sweep s = {.k = k,
		                  .small = &small,
		                  .big = &big,
		                  .want_small = want_small,
		                  .want_big = want_big,
		                  .warm = warm,
		                  .again = again};
		pthread_t th;
		assert_int_equal(pthread_create(&th, NULL, sweep_thread, &s), 0);
		assert_int_equal(pthread_join(th, NULL), 0);
		if (s.failed && !s.got_null)
			fail_msg("allocation %ld failed and a text came back", k);
		if (!s.got_null && !s.got_right)
			fail_msg("allocation %ld: the text is not the tree's", k);
		if (!s.after_right)
			fail_msg("allocation %ld failed: the thread's next texts are wrong", k);
		if (!s.failed)
			break;
	}
	free(want_small);
	free(want_big);
	print_message("%ld allocations failed in turn\n", k);
	return k;
}

static void test_first_dump_of_a_thread_fails_whole_when_memory_runs_out(void **state)
{
	(void)state;
	skip_under_valgrind();
	/* the thread's context, the generator, the buffer, the result */
	assert_true(sweep(false, false) >= 3);
}

static void test_growing_the_buffer_fails_whole_when_memory_runs_out(void **state)
{
	(void)state;
	skip_under_valgrind();
	/* the buffer, grown for a small text, grows again; then the result */
	assert_true(sweep(true, false) >= 2);
}

static void test_cached_text_copy_fails_whole_when_memory_runs_out(void **state)
{
	(void)state;
	skip_under_valgrind();
	assert_true(sweep(true, true) >= 1); /* the copy of the cached text */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_dump_of_a_thread_fails_whole_when_memory_runs_out),
	    cmocka_unit_test(test_growing_the_buffer_fails_whole_when_memory_runs_out),
	    cmocka_unit_test(test_cached_text_copy_fails_whole_when_memory_runs_out),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
