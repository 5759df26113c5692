/* Unit tests for bridge/tmetrics: per-target series with a target label. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bridge/tmetrics.h"

static char *render(void)
{
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(tmetrics_render(&b), 0);
	return buf_steal(&b);
}

static int reset(void **state)
{
	(void)state;
	tmetrics_reset();
	return 0;
}

static void test_registered_targets_start_at_zero(void **state)
{
	(void)state;
	tmetrics_register("webhook.slack", 0);
	tmetrics_register("mqtt.home", 1);
	char *t = render();
	assert_non_null(
	    strstr(t, "\ntether_bridge_deliveries_total{target=\"webhook.slack\"} 0\n"));
	assert_non_null(strstr(t, "\ntether_bridge_deliveries_total{target=\"mqtt.home\"} 0\n"));
	assert_non_null(strstr(t, "\ntether_bridge_broker_connected{target=\"mqtt.home\"} 0\n"));
	/* a webhook has no broker */
	assert_null(strstr(t, "tether_bridge_broker_connected{target=\"webhook.slack\"}"));
	assert_non_null(strstr(t, "# TYPE tether_bridge_deliveries_total counter\n"));
	assert_non_null(strstr(t, "# TYPE tether_bridge_target_outbox_entries gauge\n"));
	free(t);
}

static void test_counters_add_per_target(void **state)
{
	(void)state;
	tmetrics_add(TM_DELIVERIES, "webhook.a", 2);
	tmetrics_add(TM_DELIVERIES, "webhook.a", 1);
	tmetrics_add(TM_DELIVERIES, "webhook.b", 5);
	tmetrics_add(TM_FAILURES, "webhook.b", 1);
	tmetrics_add(TM_DEAD, "webhook.b", 1);
	assert_int_equal(tmetrics_get(TM_DELIVERIES, "webhook.a"), 3);
	assert_int_equal(tmetrics_get(TM_DELIVERIES, "webhook.b"), 5);
	assert_int_equal(tmetrics_get(TM_DEAD, "webhook.a"), 0);
	char *t = render();
	assert_non_null(strstr(t, "\ntether_bridge_deliveries_total{target=\"webhook.a\"} 3\n"));
	assert_non_null(
	    strstr(t, "\ntether_bridge_delivery_failures_total{target=\"webhook.b\"} 1\n"));
	assert_non_null(
	    strstr(t, "\ntether_bridge_target_dead_letters_total{target=\"webhook.b\"} 1\n"));
	free(t);
}

static void test_set_all_zeroes_targets_not_named(void **state)
{
	(void)state;
	const char *t1[] = {"mqtt.a", "webhook.b"};
	const int64_t v1[] = {4, 7};
	const char *t2[] = {"webhook.b"};
	const int64_t v2[] = {2};
	tmetrics_set_all(TM_OUTBOX, t1, v1, 2);
	assert_int_equal(tmetrics_get(TM_OUTBOX, "mqtt.a"), 4);
	tmetrics_set_all(TM_OUTBOX, t2, v2, 1);
	assert_int_equal(tmetrics_get(TM_OUTBOX, "mqtt.a"), 0);
	assert_int_equal(tmetrics_get(TM_OUTBOX, "webhook.b"), 2);
}

static void test_connected_gauge_follows_the_broker(void **state)
{
	(void)state;
	tmetrics_register("mqtt.home", 1);
	tmetrics_set(TM_CONNECTED, "mqtt.home", 1);
	char *t = render();
	assert_non_null(strstr(t, "\ntether_bridge_broker_connected{target=\"mqtt.home\"} 1\n"));
	free(t);
	tmetrics_set(TM_CONNECTED, "mqtt.home", 0);
	assert_int_equal(tmetrics_get(TM_CONNECTED, "mqtt.home"), 0);
}

static void test_label_value_is_escaped(void **state)
{
	(void)state;
	tmetrics_add(TM_DELIVERIES, "webhook.a\"b\\c", 1);
	char *t = render();
	assert_non_null(strstr(t, "{target=\"webhook.a\\\"b\\\\c\"} 1\n"));
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_registered_targets_start_at_zero, reset),
	    cmocka_unit_test_setup(test_counters_add_per_target, reset),
	    cmocka_unit_test_setup(test_set_all_zeroes_targets_not_named, reset),
	    cmocka_unit_test_setup(test_connected_gauge_follows_the_broker, reset),
	    cmocka_unit_test_setup(test_label_value_is_escaped, reset),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	tmetrics_reset();
	return rc;
}
