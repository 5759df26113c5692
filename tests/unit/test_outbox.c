/* Unit tests for bridge/outbox: target names and the entry one rule's delivery becomes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bridge/outbox.h"

static void delivery(struct rules_delivery *d, const char *kind, const char *target)
{
	memset(d, 0, sizeof(*d));
	d->rule = "r1";
	d->target_kind = kind;
	d->target = target;
	d->msg.kind = MSG_EVENT;
	snprintf(d->msg.id, sizeof(d->msg.id), "event:e1:rev1");
	snprintf(d->msg.zone_id, sizeof(d->msg.zone_id), "z1");
	snprintf(d->msg.source_id, sizeof(d->msg.source_id), "e1");
	d->msg.duration_s = -1;
	d->msg.ended_ms = -1;
}

static void test_target_names_kind_and_name(void **state)
{
	(void)state;
	char *t = outbox_target("webhook", "slack");
	assert_string_equal(t, "webhook.slack");
	free(t);
	t = outbox_target("mqtt", "home");
	assert_string_equal(t, "mqtt.home");
	free(t);
}

static void test_mqtt_entry_has_topic_and_options(void **state)
{
	(void)state;
	struct rules_delivery d;
	struct store_entry e;
	char topic[] = "tether/events/z1";

	delivery(&d, "mqtt", "home");
	d.topic = topic;
	d.qos = 1;
	d.retain = true;
	assert_int_equal(outbox_entry_build(&d, &e), 0);
	assert_string_equal(e.target, "mqtt.home");
	assert_string_equal(e.zone_id, "z1");
	assert_string_equal(e.msg_id, "event:e1:rev1");
	assert_string_equal(e.topic_or_url, "tether/events/z1");
	assert_string_equal(e.extra, "{\"qos\":1,\"retain\":true}");
	assert_non_null(strstr(e.payload, "\"id\":\"event:e1:rev1\""));
	assert_int_equal(e.payload_len, strlen(e.payload));
	store_entry_release(&e);
}

static void test_mqtt_body_replaces_message(void **state)
{
	(void)state;
	struct rules_delivery d;
	struct store_entry e;
	char topic[] = "t", body[] = "{\"x\":1}";

	delivery(&d, "mqtt", "home");
	d.topic = topic;
	d.body = body;
	assert_int_equal(outbox_entry_build(&d, &e), 0);
	assert_string_equal(e.payload, "{\"x\":1}");
	store_entry_release(&e);
}

/* The URL carries tokens: the entry names the webhook and nothing more. */
static void test_webhook_entry_holds_no_url(void **state)
{
	(void)state;
	struct rules_delivery d;
	struct store_entry e;
	char text[] = "hello", body[] = "{}";

	delivery(&d, "webhook", "slack");
	d.text = text;
	d.body = body;
	assert_int_equal(outbox_entry_build(&d, &e), 0);
	assert_string_equal(e.target, "webhook.slack");
	assert_null(e.topic_or_url);
	assert_string_equal(e.extra, "{\"body\":\"{}\",\"text\":\"hello\"}");
	assert_non_null(strstr(e.payload, "\"schema\":\"tether-bridge/v1\""));
	store_entry_release(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_target_names_kind_and_name),
	    cmocka_unit_test(test_mqtt_entry_has_topic_and_options),
	    cmocka_unit_test(test_mqtt_body_replaces_message),
	    cmocka_unit_test(test_webhook_entry_holds_no_url),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
