/* Unit tests for rules/message_parse: a v1 message read back gives the same message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "rules/message_parse.h"

/* docs/message.md's examples, with the rule the bridge set */
static const char event_v1[] =
    "{\"schema\":\"tether-bridge/"
    "v1\",\"id\":\"event:5f06c1a541092788f683f3d1:2020-07-04T15:35:50.100+01:00\",\"kind\":"
    "\"event\",\"phase\":\"new\",\"source_id\":\"5f06c1a541092788f683f3d1\",\"occurred_at\":\"2020-"
    "07-04T15:35:45.000+01:00\",\"ended_at\":null,\"duration_s\":null,\"complete\":false,"
    "\"severity\":\"normal\",\"flags\":[\"motion\"],\"motion\":0.35,\"zone\":{\"id\":"
    "\"5f06c1a541092788f683f3c7\",\"name\":\"Back "
    "door\"},\"location_id\":\"5f06c1a441092788f683f3c6\",\"timeline_id\":"
    "\"5f06c1a441092788f683f3ba\",\"links\":{\"web\":\"https://my.timeline.is/"
    "events?at=2020-07-04%2014%3A35%3A45&zone=5f06c1a541092788f683f3c7\",\"recording_web\":\"https:"
    "//my.timeline.is/"
    "recordings?at=2020-07-04%2014%3A35%3A45&zone=5f06c1a541092788f683f3c7\"},\"backfill\":false,"
    "\"rule\":\"intrusion-at-night\"}";
static const char plate_v1[] =
    "{\"schema\":\"tether-bridge/"
    "v1\",\"id\":\"plate:5f06d0ca4109279015140bf4:2020-07-09T09:09:46.896+01:00\",\"kind\":"
    "\"plate\",\"phase\":\"new\",\"source_id\":\"5f06d0ca4109279015140bf4\",\"occurred_at\":\"2020-"
    "03-05T08:51:46.895+00:00\",\"ended_at\":null,\"duration_s\":null,\"complete\":true,\"flags\":["
    "],\"zone\":{\"id\":\"5f06d0ca4109279015140bed\",\"name\":\"5f06d0ca4109279015140bed\"},"
    "\"location_id\":\"5f06d0ca4109279015140be9\",\"timeline_id\":\"5f06d0ca4109279015140be7\","
    "\"plate\":{\"number\":\"SV05OSL4\",\"normalized\":\"SV05OSL4\",\"country\":\"TUR\"},\"event_"
    "id\":\"5f06d0ca4109279015140bef\",\"links\":{\"web\":\"https://my.timeline.is/"
    "events?at=2020-03-05%2008%3A51%3A46&zone=5f06d0ca4109279015140bed\",\"recording_web\":\"https:"
    "//my.timeline.is/"
    "recordings?at=2020-03-05%2008%3A51%3A46&zone=5f06d0ca4109279015140bed\"},\"backfill\":false,"
    "\"rule\":null}";

/* text parsed, read back and written again equals text with "rule" null (the rules set it
 * again) and the watchlist match left out */
static void round_trip(const char *text)
{
	json_error_t jerr;
	json_t *in = json_loads(text, 0, &jerr), *out;
	struct message m;
	char err[256];

	assert_non_null(in);
	assert_int_equal(message_from_json(in, &m, err, sizeof(err)), 0);
	json_object_set_new(in, "rule", json_null());
	json_t *plate = json_object_get(in, "plate");
	if (plate) {
		json_object_del(plate, "watchlist");
		json_object_del(plate, "label");
		json_object_del(plate, "distance");
	}
	out = message_to_json(&m);
	assert_non_null(out);
	if (!json_equal(in, out)) {
		char *a = json_dumps(in, MSG_DUMP_FLAGS), *b = json_dumps(out, MSG_DUMP_FLAGS);
		fail_msg("differs:\n%s\n%s", a, b);
	}
	json_decref(in);
	json_decref(out);
}

static void test_event_reads_back_the_same(void **state)
{
	(void)state;
	round_trip(event_v1);
}

static void test_plate_reads_back_the_same(void **state)
{
	(void)state;
	round_trip(plate_v1);
}

static void expect_error(const char *key, json_t *value, const char *want)
{
	json_t *o = json_loads(event_v1, 0, NULL);
	struct message m;
	char err[256] = "";

	assert_non_null(o);
	json_object_set_new(o, key, value);
	assert_int_equal(message_from_json(o, &m, err, sizeof(err)), -1);
	if (strstr(err, want) == NULL)
		fail_msg("'%s' does not say '%s'", err, want);
	json_decref(o);
}

static void test_bad_fields_are_named(void **state)
{
	(void)state;
	expect_error("schema", json_string("other/v2"), "schema");
	expect_error("occurred_at", json_string("yesterday"), "occurred_at");
	expect_error("flags", json_pack("[s]", "nope"), "unknown flag 'nope'");
	expect_error("kind", json_string("zone"), "kind");
	expect_error("phase", json_string("later"), "phase");
	expect_error("id", json_string("event:other:2020"), "id");
	expect_error("zone", json_string("Back door"), "zone");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_event_reads_back_the_same),
	    cmocka_unit_test(test_plate_reads_back_the_same),
	    cmocka_unit_test(test_bad_fields_are_named),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
