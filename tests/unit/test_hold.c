/* Unit tests for rules/hold: who may take the wall from a hold, when a hold ends, and which
 * perspective `auto` picks for a zone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "rules/hold.h"

#define T0 1594305000000LL
#define MIN 60000LL

/* severity_order [info, low, medium, high, critical]: ranks 0..4, critical the top */
enum { INFO, LOW, MEDIUM, HIGH, CRITICAL };

static void test_no_hold_lets_any_callup_switch(void **state)
{
	struct hold h;

	(void)state;
	hold_start(&h, HOLD_NONE, -1, T0, 0);
	assert_false(hold_active(&h, T0));
	assert_true(hold_callup_allowed(&h, T0, INFO, false));
	assert_true(hold_callup_allowed(&h, T0, -1, false));
	assert_false(hold_ended(&h, T0 + 10 * MIN));
}

static void test_callup_hold_yields_to_equal_or_higher_severity(void **state)
{
	struct hold h;

	(void)state;
	hold_start(&h, HOLD_RULE, HIGH, T0, 2 * MIN);
	assert_true(hold_active(&h, T0 + MIN));
	assert_false(hold_callup_allowed(&h, T0 + MIN, MEDIUM, false));
	assert_false(hold_callup_allowed(&h, T0 + MIN, -1, false));
	assert_true(hold_callup_allowed(&h, T0 + MIN, HIGH, false));
	assert_true(hold_callup_allowed(&h, T0 + MIN, CRITICAL, true));
}

static void test_operator_hold_yields_only_to_the_top_severity(void **state)
{
	struct hold h;

	(void)state;
	hold_start(&h, HOLD_COMMAND, -1, T0, 5 * MIN);
	assert_false(hold_callup_allowed(&h, T0 + MIN, HIGH, false));
	assert_true(hold_callup_allowed(&h, T0 + MIN, CRITICAL, true));
}

static void test_a_hold_ends_at_its_deadline(void **state)
{
	struct hold h;

	(void)state;
	hold_start(&h, HOLD_RULE, HIGH, T0, 2 * MIN);
	assert_false(hold_ended(&h, T0 + 2 * MIN - 1));
	assert_true(hold_ended(&h, T0 + 2 * MIN));
	assert_false(hold_active(&h, T0 + 2 * MIN));
	/* once over, anything may switch again */
	assert_true(hold_callup_allowed(&h, T0 + 2 * MIN, INFO, false));
}

static void test_a_zero_hold_holds_nothing(void **state)
{
	struct hold h;

	(void)state;
	hold_start(&h, HOLD_RULE, HIGH, T0, 0);
	assert_int_equal(h.by, HOLD_NONE);
	assert_false(hold_ended(&h, T0 + MIN));
	assert_string_equal(hold_by_name(HOLD_COMMAND), "command");
	assert_string_equal(hold_by_name(HOLD_RULE), "rule");
}

static const char *const lobby_z[] = {"z1"};
static const char *const both_z[] = {"z1", "z2"};
static const char *const yard_z[] = {"z2"};
static const char *const alpha_z[] = {"z3"};
static const char *const beta_z[] = {"z3"};

static const struct hold_perspective wall[] = {
    {"p-all", "Overview", both_z, 2}, {"p-lobby", "Lobby", lobby_z, 1},
    {"p-yard", "Yard", yard_z, 1},    {"p-beta", "Beta", beta_z, 1},
    {"p-alpha", "Alpha", alpha_z, 1}, {"p-none", "Empty", NULL, 0},
};
#define NWALL (sizeof(wall) / sizeof(wall[0]))

static void test_auto_picks_the_perspective_with_fewest_zones(void **state)
{
	(void)state;
	assert_string_equal(hold_pick(wall, NWALL, "auto", "z1")->id, "p-lobby");
	assert_string_equal(hold_pick(wall, NWALL, "auto", "z2")->id, "p-yard");
}

static void test_auto_breaks_ties_by_name(void **state)
{
	(void)state;
	assert_string_equal(hold_pick(wall, NWALL, "auto", "z3")->name, "Alpha");
}

static void test_auto_without_a_perspective_for_the_zone_is_null(void **state)
{
	(void)state;
	assert_null(hold_pick(wall, NWALL, "auto", "z9"));
	assert_null(hold_pick(wall, NWALL, "auto", ""));
	assert_null(hold_pick(wall, 0, "auto", "z1"));
}

static void test_a_spec_is_an_id_or_else_a_name(void **state)
{
	(void)state;
	assert_string_equal(hold_pick(wall, NWALL, "p-yard", NULL)->name, "Yard");
	assert_string_equal(hold_pick(wall, NWALL, "Overview", NULL)->id, "p-all");
	assert_null(hold_pick(wall, NWALL, "Nowhere", NULL));
	assert_null(hold_pick(wall, NWALL, NULL, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_hold_lets_any_callup_switch),
	    cmocka_unit_test(test_callup_hold_yields_to_equal_or_higher_severity),
	    cmocka_unit_test(test_operator_hold_yields_only_to_the_top_severity),
	    cmocka_unit_test(test_a_hold_ends_at_its_deadline),
	    cmocka_unit_test(test_a_zero_hold_holds_nothing),
	    cmocka_unit_test(test_auto_picks_the_perspective_with_fewest_zones),
	    cmocka_unit_test(test_auto_breaks_ties_by_name),
	    cmocka_unit_test(test_auto_without_a_perspective_for_the_zone_is_null),
	    cmocka_unit_test(test_a_spec_is_an_id_or_else_a_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
