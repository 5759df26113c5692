/* Unit tests for bridge/ha_sensor: when a Home Assistant binary sensor turns on and off as
 * events with its flag open, complete, or arrive already complete. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bridge/ha_sensor.h"

#define T0 1594305000000LL
#define DELAY 30000

static enum ha_sensor_change ev(struct ha_sensor *s, const char *id, bool flag, bool complete,
                                int64_t now)
{
	enum ha_sensor_change c = (enum ha_sensor_change) - 1;
	assert_int_equal(ha_sensor_event(s, id, flag, complete, now, DELAY, &c), 0);
	return c;
}

static void test_open_event_turns_on_and_its_completion_off(void **state)
{
	struct ha_sensor s = {0};
	(void)state;
	assert_int_equal(ev(&s, "e1", true, false, T0), HA_SENSOR_ON);
	assert_int_equal(ev(&s, "e1", true, false, T0 + 5000), HA_SENSOR_SAME);
	assert_int_equal(ev(&s, "e1", true, true, T0 + 9000), HA_SENSOR_OFF);
	assert_false(s.on);
	ha_sensor_release(&s);
}

static void test_stays_on_until_the_last_open_event_completes(void **state)
{
	struct ha_sensor s = {0};
	(void)state;
	assert_int_equal(ev(&s, "e1", true, false, T0), HA_SENSOR_ON);
	assert_int_equal(ev(&s, "e2", true, false, T0 + 1000), HA_SENSOR_SAME);
	assert_int_equal(ev(&s, "e1", true, true, T0 + 2000), HA_SENSOR_SAME);
	assert_int_equal(ev(&s, "e2", true, true, T0 + 3000), HA_SENSOR_OFF);
	ha_sensor_release(&s);
}

static void test_complete_on_arrival_pulses_for_off_delay(void **state)
{
	struct ha_sensor s = {0};
	(void)state;
	assert_int_equal(ev(&s, "e1", true, true, T0), HA_SENSOR_ON);
	assert_int_equal(ha_sensor_tick(&s, T0 + DELAY - 1), HA_SENSOR_SAME);
	assert_int_equal(ha_sensor_tick(&s, T0 + DELAY), HA_SENSOR_OFF);
	assert_int_equal(ha_sensor_tick(&s, T0 + DELAY + 1), HA_SENSOR_SAME);
	ha_sensor_release(&s);
}

static void test_pulse_never_turns_an_open_event_off(void **state)
{
	struct ha_sensor s = {0};
	(void)state;
	assert_int_equal(ev(&s, "e1", true, true, T0), HA_SENSOR_ON);
	assert_int_equal(ev(&s, "e2", true, false, T0 + 1000), HA_SENSOR_SAME);
	assert_int_equal(ha_sensor_tick(&s, T0 + DELAY + 5000), HA_SENSOR_SAME);
	assert_true(s.on);
	assert_int_equal(ev(&s, "e2", true, true, T0 + DELAY + 6000), HA_SENSOR_OFF);
	ha_sensor_release(&s);
}

static void test_open_event_completing_does_not_pulse(void **state)
{
	struct ha_sensor s = {0};
	(void)state;
	ev(&s, "e1", true, false, T0);
	assert_int_equal(ev(&s, "e1", true, true, T0 + 1000), HA_SENSOR_OFF);
	assert_int_equal(s.off_at, 0);
	ha_sensor_release(&s);
}

static void test_event_losing_the_flag_releases_it(void **state)
{
	struct ha_sensor s = {0};
	(void)state;
	ev(&s, "e1", true, false, T0);
	assert_int_equal(ev(&s, "e1", false, false, T0 + 1000), HA_SENSOR_OFF);
	ha_sensor_release(&s);
}

static void test_event_without_the_flag_changes_nothing(void **state)
{
	struct ha_sensor s = {0};
	(void)state;
	assert_int_equal(ev(&s, "e1", false, false, T0), HA_SENSOR_SAME);
	assert_int_equal(ev(&s, "e1", false, true, T0 + 1), HA_SENSOR_SAME);
	assert_false(s.on);
	ha_sensor_release(&s);
}

static void test_second_pulse_extends_the_first(void **state)
{
	struct ha_sensor s = {0};
	(void)state;
	ev(&s, "e1", true, true, T0);
	assert_int_equal(ev(&s, "e2", true, true, T0 + 20000), HA_SENSOR_SAME);
	assert_int_equal(ha_sensor_tick(&s, T0 + DELAY), HA_SENSOR_SAME);
	assert_int_equal(ha_sensor_tick(&s, T0 + 20000 + DELAY), HA_SENSOR_OFF);
	ha_sensor_release(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_open_event_turns_on_and_its_completion_off),
	    cmocka_unit_test(test_stays_on_until_the_last_open_event_completes),
	    cmocka_unit_test(test_complete_on_arrival_pulses_for_off_delay),
	    cmocka_unit_test(test_pulse_never_turns_an_open_event_off),
	    cmocka_unit_test(test_open_event_completing_does_not_pulse),
	    cmocka_unit_test(test_event_losing_the_flag_releases_it),
	    cmocka_unit_test(test_event_without_the_flag_changes_nothing),
	    cmocka_unit_test(test_second_pulse_extends_the_first),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
