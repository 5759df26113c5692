/* Unit tests for rules/phase: the verdict on a new revision against the recorded one, and
 * what is recorded, which the poller and explain share. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "rules/phase.h"

#define T0 1594305000000LL /* 2020-07-09T14:30:00Z */

static struct message event(const char *rev, uint64_t flags, const char *sev, bool complete)
{
	struct message m;

	memset(&m, 0, sizeof(m));
	m.kind = MSG_EVENT;
	m.phase = MSG_PHASE_NEW;
	snprintf(m.source_id, sizeof(m.source_id), "ev1");
	snprintf(m.revision, sizeof(m.revision), "%s", rev);
	snprintf(m.severity, sizeof(m.severity), "%s", sev);
	m.flags = flags;
	m.complete = complete;
	m.occurred_ms = T0;
	return m;
}

static struct phase_seen recorded(const struct message *m)
{
	struct phase_seen s;
	phase_record(m, T0, &s);
	return s;
}

static void test_first_revision_is_new(void **state)
{
	(void)state;
	struct message m = event("r1", 1, "normal", false);
	assert_int_equal(phase_decide(&m, NULL), PHASE_DELIVER);
	assert_int_equal(m.phase, MSG_PHASE_NEW);
}

static void test_same_revision_is_nothing(void **state)
{
	(void)state;
	struct message a = event("r1", 1, "normal", false), b = a;
	struct phase_seen s = recorded(&a);
	assert_int_equal(phase_decide(&b, &s), PHASE_SAME_REVISION);
}

static void test_completion_is_complete(void **state)
{
	(void)state;
	struct message a = event("r1", 1, "normal", false), b = event("r2", 1, "normal", true);
	struct phase_seen s = recorded(&a);
	assert_int_equal(phase_decide(&b, &s), PHASE_DELIVER);
	assert_int_equal(b.phase, MSG_PHASE_COMPLETE);
}

static void test_flags_or_severity_change_is_update(void **state)
{
	(void)state;
	struct message a = event("r1", 1, "normal", false);
	struct message b = event("r2", 3, "normal", false), c = event("r3", 1, "high", false);
	struct phase_seen s = recorded(&a);
	assert_int_equal(phase_decide(&b, &s), PHASE_DELIVER);
	assert_int_equal(b.phase, MSG_PHASE_UPDATE);
	assert_int_equal(phase_decide(&c, &s), PHASE_DELIVER);
	assert_int_equal(c.phase, MSG_PHASE_UPDATE);
}

static void test_growing_end_time_is_nothing(void **state)
{
	(void)state;
	struct message a = event("r1", 1, "normal", false), b = event("r2", 1, "normal", false);
	struct phase_seen s = recorded(&a);
	b.ended_ms = T0 + 5000;
	assert_int_equal(phase_decide(&b, &s), PHASE_NO_CHANGE);
}

static void test_change_after_completion_is_update(void **state)
{
	(void)state;
	struct message a = event("r1", 1, "normal", true), b = event("r2", 1, "high", true);
	struct phase_seen s = recorded(&a);
	assert_int_equal(phase_decide(&b, &s), PHASE_DELIVER);
	assert_int_equal(b.phase, MSG_PHASE_UPDATE);
}

static void test_later_plate_revision_is_nothing(void **state)
{
	(void)state;
	struct message a = event("r1", 0, "", true), b = event("r2", 0, "", true);
	a.kind = b.kind = MSG_PLATE;
	struct phase_seen s = recorded(&a);
	assert_true(s.complete);
	assert_int_equal(phase_decide(&b, &s), PHASE_PLATE_REVISION);
}

/* A long severity is compared whole: the record keeps all of it. */
static void test_long_severity_recorded_whole(void **state)
{
	(void)state;
	const char *sev = "a-severity-name-longer-than-thirty-two-bytes";
	struct message a = event("r1", 1, sev, false), b = event("r2", 1, sev, false);
	struct phase_seen s = recorded(&a);
	assert_string_equal(s.severity, sev);
	assert_int_equal(phase_decide(&b, &s), PHASE_NO_CHANGE);
}

static void test_open_event_given_up_after_a_day(void **state)
{
	(void)state;
	struct message a = event("r1", 1, "normal", false);
	struct phase_seen s;

	phase_record(&a, T0 + PHASE_OPEN_GIVE_UP_MS, &s);
	assert_false(s.complete);
	phase_record(&a, T0 + PHASE_OPEN_GIVE_UP_MS + 1, &s);
	assert_true(s.complete);
	/* given up: its completion later is no news */
	struct message b = event("r2", 1, "normal", true);
	assert_int_equal(phase_decide(&b, &s), PHASE_NO_CHANGE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_first_revision_is_new),
	    cmocka_unit_test(test_same_revision_is_nothing),
	    cmocka_unit_test(test_completion_is_complete),
	    cmocka_unit_test(test_flags_or_severity_change_is_update),
	    cmocka_unit_test(test_growing_end_time_is_nothing),
	    cmocka_unit_test(test_change_after_completion_is_update),
	    cmocka_unit_test(test_later_plate_revision_is_nothing),
	    cmocka_unit_test(test_long_severity_recorded_whole),
	    cmocka_unit_test(test_open_event_given_up_after_a_day),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
