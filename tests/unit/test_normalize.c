/* Unit tests for rules/normalize: the documented examples against expected messages
 * (tests/data/normalize/<case>/{input.json,expected.jsonl[,zone_name]}), field errors,
 * durations, flags, links, and random mutations of the examples that must never crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <cmocka.h>

#include "lib/util.h"
#include "lib/weblink.h"
#include "rules/normalize.h"
#include "rules/template.h"

#define DATA_DIR "tests/data/normalize"
#define BASE "https://my.timeline.is"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		assert_int_equal(buf_append(&b, chunk, n), 0);
	fclose(f);
	return buf_steal(&b);
}

static json_t *load_json(const char *path)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	if (j == NULL)
		fail_msg("%s:%d: %s", path, je.line, je.text);
	return j;
}

/* The first resource of a case's input (caller decrefs). */
static json_t *example(const char *name, size_t i)
{
	char path[256];
	snprintf(path, sizeof(path), DATA_DIR "/%s/input.json", name);
	json_t *doc = load_json(path);
	json_t *r = json_deep_copy(json_array_get(json_object_get(doc, "data"), i));
	json_decref(doc);
	assert_non_null(r);
	return r;
}

static json_t *attrs(json_t *r)
{
	return json_object_get(r, "attributes");
}

static void norm_ok(const json_t *r, const char *zone_name, struct message *m)
{
	char err[256] = "";
	int rc = normalize_resource(r, zone_name, BASE, m, err, sizeof(err));
	if (rc != 0)
		fail_msg("normalize_resource: %s", err);
}

static void norm_err(const json_t *r, const char *want)
{
	struct message m;
	char err[256] = "";
	assert_int_equal(normalize_resource(r, NULL, BASE, &m, err, sizeof(err)), -1);
	assert_string_equal(err, want);
}

/* Every folder under tests/data/normalize: each resource of input.json gives the line of
 * expected.jsonl at the same index, as the same JSON and as the same text (key order). */
static void test_examples_match_expected_messages(void **state)
{
	(void)state;
	DIR *d = opendir(DATA_DIR);
	struct dirent *de;
	int cases = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char path[512], *zone, *expected, *line, *save = NULL;
		json_t *doc, *data;
		size_t i = 0;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), DATA_DIR "/%s/input.json", de->d_name);
		doc = load_json(path);
		data = json_object_get(doc, "data");
		assert_true(json_is_array(data));
		snprintf(path, sizeof(path), DATA_DIR "/%s/zone_name", de->d_name);
		zone = slurp(path);
		snprintf(path, sizeof(path), DATA_DIR "/%s/expected.jsonl", de->d_name);
		expected = slurp(path);
		assert_non_null(expected);
		for (line = strtok_r(expected, "\n", &save); line != NULL;
		     line = strtok_r(NULL, "\n", &save), i++) {
			struct message m;
			json_t *want = json_loads(line, 0, NULL), *got;
			char *text;

			assert_non_null(want);
			assert_true(i < json_array_size(data));
			norm_ok(json_array_get(data, i), zone, &m);
			got = message_to_json(&m);
			text = message_dump(&m);
			if (!json_equal(want, got))
				fail_msg("%s[%zu]:\n got  %s\n want %s", de->d_name, i, text, line);
			assert_string_equal(text, line);
			free(text);
			json_decref(got);
			json_decref(want);
		}
		assert_int_equal(i, json_array_size(data));
		free(expected);
		free(zone);
		json_decref(doc);
		cases++;
	}
	closedir(d);
	assert_true(cases >= 4);
}

static void test_id_is_kind_source_and_revision(void **state)
{
	(void)state;
	struct message m;
	json_t *r = example("events-period", 0);
	norm_ok(r, NULL, &m);
	assert_string_equal(m.id, "event:5f06c1a541092788f683f3c8:2020-07-09T08:05:09.036+01:00");
	assert_string_equal(m.revision, "2020-07-09T08:05:09.036+01:00");
	json_decref(r);
	r = example("lpr", 1);
	norm_ok(r, NULL, &m);
	assert_string_equal(m.id, "plate:5f06d0ca4109279015140bf2:2020-07-09T09:09:46.890+01:00");
	/* same revision, same id; a new revision, a new id */
	struct message again;
	norm_ok(r, NULL, &again);
	assert_string_equal(again.id, m.id);
	json_object_set_new(attrs(r), "updated_at", json_string("2020-07-09T09:10:00.000+01:00"));
	norm_ok(r, NULL, &again);
	assert_string_not_equal(again.id, m.id);
	json_decref(r);
}

static void test_flag_names_follow_the_api_doc(void **state)
{
	(void)state;
	assert_int_equal(msg_flag_count, 28);
	assert_string_equal(msg_flag_names[0], "pir");
	assert_string_equal(msg_flag_names[2], "motion");
	assert_string_equal(msg_flag_names[27], "network_change");
	assert_int_equal(msg_flag_index("intrusion"), 17);
	assert_int_equal(msg_flag_index("tma"), 24);
	assert_int_equal(msg_flag_index("has_intrusion"), -1);
	assert_int_equal(msg_flag_index("nope"), -1);
	assert_int_equal(msg_flag_index(NULL), -1);
	for (size_t i = 0; i < msg_flag_count; i++)
		assert_int_equal(msg_flag_index(msg_flag_names[i]), (int)i);
}

static void test_each_has_field_sets_its_own_flag(void **state)
{
	(void)state;
	char key[64];
	for (size_t i = 0; i < msg_flag_count; i++) {
		struct message m;
		json_t *r = example("events-period", 0);
		for (size_t j = 0; j < msg_flag_count; j++) {
			snprintf(key, sizeof(key), "has_%s", msg_flag_names[j]);
			json_object_set_new(attrs(r), key, json_boolean(i == j));
		}
		norm_ok(r, NULL, &m);
		assert_true(m.flags == UINT64_C(1) << i);
		json_decref(r);
	}
}

static void test_dump_of_equal_messages_is_equal_and_of_changed_one_changes(void **state)
{
	(void)state;
	struct message m;
	json_t *r = example("events-period", 0);
	norm_ok(r, NULL, &m);
	message_set_id(&m);
	char *a = message_dump(&m), *b = message_dump(&m);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b); /* each caller owns its copy */
	assert_string_equal(a, b);
	snprintf(m.rule, sizeof(m.rule), "other-rule");
	char *c = message_dump(&m);
	assert_non_null(strstr(c, "\"rule\":\"other-rule\""));
	assert_null(strstr(a, "other-rule"));
	free(a);
	free(b);
	free(c);
	json_decref(r);
}

static void test_flags_come_from_true_has_fields(void **state)
{
	(void)state;
	struct message m;
	json_t *r = example("events-period", 0);
	json_object_set_new(attrs(r), "has_pir", json_true());
	json_object_set_new(attrs(r), "has_tripwire", json_true());
	json_object_set_new(attrs(r), "has_unknown_future_flag", json_true());
	json_object_set_new(attrs(r), "has_other_future_flag", json_string("yes"));
	norm_ok(r, NULL, &m);
	assert_true(m.flags == ((UINT64_C(1) << 0) | (UINT64_C(1) << 16)));
	json_t *j = message_to_json(&m);
	char *flags = json_dumps(json_object_get(j, "flags"), JSON_COMPACT);
	assert_string_equal(flags, "[\"pir\",\"tripwire\"]");
	free(flags);
	json_decref(j);
	json_decref(r);
}

static void test_duration_from_field_then_times_then_unknown(void **state)
{
	(void)state;
	struct message m;
	json_t *r = example("events-period", 0);

	json_object_set_new(attrs(r), "duration", json_integer(7));
	norm_ok(r, NULL, &m);
	assert_int_equal(m.duration_s, 7);
	json_object_set_new(attrs(r), "duration", json_real(9.75));
	norm_ok(r, NULL, &m);
	assert_int_equal(m.duration_s, 9);
	/* no usable duration: ends_at - starts_at (42 minutes) */
	json_object_set_new(attrs(r), "duration", json_string("2520"));
	norm_ok(r, NULL, &m);
	assert_int_equal(m.duration_s, 2520);
	json_object_del(attrs(r), "duration");
	json_object_set_new(attrs(r), "ends_at", json_string("2020-06-12T15:04:10.019Z"));
	norm_ok(r, NULL, &m);
	assert_int_equal(m.duration_s, 61);
	assert_string_equal(m.ended_at, "2020-06-12T15:04:10.019Z");
	/* open event: unknown */
	json_object_set_new(attrs(r), "ends_at", json_null());
	norm_ok(r, NULL, &m);
	assert_int_equal(m.duration_s, -1);
	assert_int_equal(m.ended_ms, -1);
	assert_string_equal(m.ended_at, "");
	json_object_set_new(attrs(r), "ends_at", json_string(""));
	norm_ok(r, NULL, &m);
	assert_int_equal(m.duration_s, -1);
	char *text = message_dump(&m);
	assert_non_null(strstr(text, "\"ended_at\":null,\"duration_s\":null,"));
	free(text);
	json_decref(r);
}

static void test_times_kept_as_sent_and_parsed(void **state)
{
	(void)state;
	struct message m;
	json_t *r = example("events-at", 0);
	norm_ok(r, NULL, &m);
	assert_string_equal(m.occurred_at, "2020-06-12T16:03:09.019+01:00");
	assert_true(m.occurred_ms == INT64_C(1591974189019));
	assert_true(m.ended_ms == INT64_C(1591976709019));
	json_decref(r);
}

static void test_links_use_utc_time_and_zone(void **state)
{
	(void)state;
	struct message m;
	char err[128];
	json_t *r = example("events-period", 0);

	assert_int_equal(
	    normalize_resource(r, NULL, "https://my.timeline.is/", &m, err, sizeof(err)), 0);
	assert_string_equal(m.link_web, "https://my.timeline.is/events?at=2020-06-12%2015%3A03%3A09"
	                                "&zone=5f06c1a541092788f683f3c7");
	assert_string_equal(m.link_recording,
	                    "https://my.timeline.is/recordings?at=2020-06-12%2015%3A03%3A09"
	                    "&zone=5f06c1a541092788f683f3c7");
	/* no base: no links, and null in JSON */
	assert_int_equal(normalize_resource(r, NULL, NULL, &m, err, sizeof(err)), 0);
	assert_string_equal(m.link_web, "");
	char *text = message_dump(&m);
	assert_non_null(strstr(text, "\"links\":{\"web\":null,\"recording_web\":null}"));
	free(text);
	/* a base that cannot fit is an error, not a cut link */
	char big[600];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(normalize_resource(r, NULL, big, &m, err, sizeof(err)), -1);
	assert_string_equal(err, "links: base_url too long");
	json_decref(r);
}

/* The recording link, made from the web link, is the one weblink_at writes for that page,
 * for odd bases too, and a base that fits the web link but not the recording one fails. */
static void test_recording_link_is_weblinks_own(void **state)
{
	static const char *const bases[] = {"https://x", "https://x//", "https://x/a?b=/events",
	                                    "/", "https://x/events"};
	char base[600], err[128];
	struct message m;
	json_t *r = example("events-period", 0);
	(void)state;

	for (size_t i = 0; i < sizeof(bases) / sizeof(bases[0]) + 40; i++) {
		struct buf want;
		int rc;

		if (i < sizeof(bases) / sizeof(bases[0])) {
			snprintf(base, sizeof(base), "%s", bases[i]);
		} else { /* lengths around where the links stop fitting */
			size_t len = 420 + i;
			memset(base, 'a', len);
			base[len] = '\0';
		}
		buf_init(&want, sizeof(m.link_recording) - 1);
		rc = normalize_resource(r, NULL, base, &m, err, sizeof(err));
		if (weblink_at(&want, base, "/recordings", m.occurred_ms, m.zone_id, NULL) < 0) {
			assert_int_equal(rc, -1);
			assert_string_equal(err, "links: base_url too long");
		} else {
			assert_int_equal(rc, 0);
			assert_string_equal(m.link_recording, want.data);
		}
		buf_release(&want);
	}
	json_decref(r);
}

static void test_plate_is_normalised(void **state)
{
	(void)state;
	struct message m;
	json_t *r = example("lpr", 0);
	json_object_set_new(attrs(r), "plate_number", json_string("ab-12 cdé_9"));
	json_object_set_new(attrs(r), "country", json_null());
	json_object_del(attrs(r), "event_id");
	norm_ok(r, NULL, &m);
	assert_string_equal(m.plate_number, "ab-12 cdé_9");
	assert_string_equal(m.plate_normalized, "AB12CD9");
	assert_string_equal(m.country, "");
	assert_string_equal(m.event_id, "");
	assert_true(m.complete);
	assert_string_equal(m.severity, "");
	char *text = message_dump(&m);
	assert_non_null(strstr(text, "\"country\":null},\"event_id\":null,"));
	assert_null(strstr(text, "severity"));
	assert_null(strstr(text, "motion"));
	free(text);
	json_decref(r);
}

static void test_zone_name_stands_in_and_is_cut_at_a_character(void **state)
{
	(void)state;
	struct message m;
	char name[1024] = "";
	json_t *r = example("events-period", 0);

	norm_ok(r, "", &m);
	assert_string_equal(m.zone_name, "5f06c1a541092788f683f3c7");
	norm_ok(r, "Front gate", &m);
	assert_string_equal(m.zone_name, "Front gate");
	for (int i = 0; i < 300; i++)
		strcat(name, "\xc3\xa9"); /* é: 600 bytes */
	norm_ok(r, name, &m);
	assert_int_equal(strlen(m.zone_name), 254);
	norm_ok(r, "bad \xff byte", &m);
	assert_string_equal(m.zone_name, "bad \xEF\xBF\xBD byte");
	json_decref(r);
}

static void test_watch_rule_and_phase_in_json(void **state)
{
	(void)state;
	struct message m;
	json_t *r = example("lpr", 0);
	norm_ok(r, "Gate", &m);
	m.watch_matched = true;
	strcpy(m.watchlist, "stolen");
	strcpy(m.watch_label, "");
	m.watch_distance = 1;
	m.backfill = true;
	strcpy(m.rule, "watched-plate");
	char *text = message_dump(&m);
	assert_non_null(strstr(text, "\"plate\":{\"number\":\"SV05OSL4\","
	                             "\"normalized\":\"SV05OSL4\","
	                             "\"country\":\"TUR\",\"watchlist\":\"stolen\",\"label\":null,"
	                             "\"distance\":1}"));
	assert_non_null(strstr(text, "\"backfill\":true,\"rule\":\"watched-plate\"}"));
	free(text);
	/* a label read from a file that is not UTF-8 still gives a message */
	strcpy(m.watch_label, "van \xfe");
	text = message_dump(&m);
	assert_non_null(text);
	assert_non_null(strstr(text, "\"label\":\"van \xEF\xBF\xBD\""));
	free(text);
	json_decref(r);

	r = example("events-period", 0);
	norm_ok(r, NULL, &m);
	m.phase = MSG_PHASE_COMPLETE;
	text = message_dump(&m);
	assert_non_null(strstr(text, "\"kind\":\"event\",\"phase\":\"complete\","));
	assert_null(strstr(text, "\"plate\""));
	free(text);
	assert_string_equal(msg_phase_name(MSG_PHASE_UPDATE), "update");
	assert_string_equal(msg_kind_name(MSG_PLATE), "plate");
	json_decref(r);
}

static void test_motion_real_is_short_in_text(void **state)
{
	(void)state;
	struct message m;
	json_t *r = example("events-period", 0);
	json_object_set_new(attrs(r), "motion", json_real(0.35));
	norm_ok(r, NULL, &m);
	char *text = message_dump(&m);
	assert_non_null(strstr(text, "\"motion\":0.35,"));
	free(text);
	json_object_set_new(attrs(r), "motion", json_integer(1));
	norm_ok(r, NULL, &m);
	text = message_dump(&m);
	assert_non_null(strstr(text, "\"motion\":1.0,"));
	free(text);
	json_decref(r);
}

/* Sets attributes.key to v (stolen) on a fresh copy of an example and checks the error. */
static void attr_err(const char *name, const char *key, json_t *v, const char *want)
{
	json_t *r = example(name, 0);
	if (v == NULL)
		json_object_del(attrs(r), key);
	else
		json_object_set_new(attrs(r), key, v);
	norm_err(r, want);
	json_decref(r);
}

static void test_missing_and_mistyped_fields_are_named(void **state)
{
	(void)state;
	char big[300];
	memset(big, 'z', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';

	attr_err("events-period", "starts_at", NULL, "attributes.starts_at: missing");
	attr_err("events-period", "starts_at", json_null(),
	         "attributes.starts_at: expected a string");
	attr_err("events-period", "starts_at", json_string("yesterday"),
	         "attributes.starts_at: bad time 'yesterday'");
	attr_err("events-period", "starts_at", json_string("2020-13-12T16:03:09Z"),
	         "attributes.starts_at: bad time '2020-13-12T16:03:09Z'");
	attr_err("events-period", "updated_at", json_integer(5),
	         "attributes.updated_at: expected a string");
	attr_err("events-period", "updated_at", NULL, "attributes.updated_at: missing");
	attr_err("events-period", "updated_at", json_string(""), "attributes.updated_at: empty");
	attr_err("events-period", "zone_id", NULL, "attributes.zone_id: missing");
	attr_err("events-period", "zone_id", json_string(big), "attributes.zone_id: too long");
	attr_err("events-period", "zone_id", json_stringn("a\0b", 3),
	         "attributes.zone_id: contains a NUL character");
	attr_err("events-period", "has_face", json_string("yes"),
	         "attributes.has_face: expected true or false");
	attr_err("events-period", "has_network_change", json_null(),
	         "attributes.has_network_change: expected true or false");
	attr_err("events-period", "complete", json_integer(1),
	         "attributes.complete: expected true or false");
	attr_err("events-period", "ends_at", json_string("soon"),
	         "attributes.ends_at: bad time 'soon'");
	attr_err("events-period", "ends_at", json_false(), "attributes.ends_at: expected a string");
	attr_err("events-period", "severity", json_array(),
	         "attributes.severity: expected a string");
	attr_err("events-period", "motion", json_string("0.5"),
	         "attributes.motion: expected a number");
	attr_err("events-period", "location_id", json_integer(3),
	         "attributes.location_id: expected a string");
	attr_err("events-period", "timeline_id", json_string(big),
	         "attributes.timeline_id: too long");
	attr_err("lpr", "plate_number", NULL, "attributes.plate_number: missing");
	attr_err("lpr", "plate_number", json_integer(1234),
	         "attributes.plate_number: expected a string");
	attr_err("lpr", "country", json_string("ABCDEFGHIJKLMNOPQRSTUVWXYZ"),
	         "attributes.country: too long");
	attr_err("lpr", "event_id", json_object(), "attributes.event_id: expected a string");
}

static void test_odd_resources_are_rejected(void **state)
{
	(void)state;
	json_t *r;
	char huge[100000];
	char err[8] = "";
	struct message m;

	r = json_string("x");
	norm_err(r, "resource: expected an object");
	json_decref(r);
	r = json_array();
	norm_err(r, "resource: expected an object");
	json_decref(r);
	norm_err(NULL, "resource: expected an object");

	r = example("events-period", 0);
	json_object_set_new(r, "type", json_string("zones"));
	norm_err(r, "type: unsupported 'zones'");
	/* the quoted value stays one short, printable line */
	json_object_set_new(r, "type", json_string("zo\nnes\xc3\xa9"));
	norm_err(r, "type: unsupported 'zo?nes\xc3\xa9'");
	memset(huge, 'x', 60);
	huge[60] = '\0';
	json_object_set_new(r, "type", json_string(huge));
	norm_err(r, "type: unsupported 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...'");
	json_object_set_new(r, "type", json_integer(1));
	norm_err(r, "type: expected a string");
	json_object_del(r, "type");
	norm_err(r, "type: missing");
	json_decref(r);

	r = example("events-period", 0);
	json_object_set_new(r, "attributes", json_array());
	norm_err(r, "attributes: expected an object");
	json_object_del(r, "attributes");
	norm_err(r, "attributes: missing");
	json_decref(r);

	r = example("events-period", 0);
	json_object_del(r, "id");
	norm_err(r, "id: missing");
	json_object_set_new(r, "id", json_string(""));
	norm_err(r, "id: empty");
	json_object_set_new(r, "id", json_real(1.5));
	norm_err(r, "id: expected a string");
	memset(huge, 'q', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	json_object_set_new(r, "id", json_string(huge));
	norm_err(r, "id: too long");
	/* a small error buffer is truncated, not overrun */
	assert_int_equal(normalize_resource(r, NULL, BASE, &m, err, sizeof(err)), -1);
	assert_string_equal(err, "id: too");
	json_decref(r);
}

/* --- random mutations ------------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static json_t *random_value(void)
{
	static const char *const strs[] = {
	    "",
	    "x",
	    "events",
	    "lprs",
	    "2020-06-12T16:03:09.019+01:00",
	    "2020-13-01T00:00:00Z",
	    "9999-12-31T23:59:59+23:59",
	    "0000-01-01 00:00",
	    "2020-02-30 25:61:61",
	    "1970-01-01T00:00:00.999999999999Z",
	    "2520",
	    "true",
	    "null",
	    "\xe2\x82\xac/+#",
	    "\t\n\r\x01",
	    "5f06c1a541092788f683f3c7",
	};
	char big[5000];

	switch (rnd(14)) {
	case 0:
		return json_null();
	case 1:
		return json_true();
	case 2:
		return json_false();
	case 3:
		return json_integer(rnd(3) == 0 ? INT64_MAX : rnd(2) ? INT64_MIN : -1);
	case 4:
		return json_real(rnd(2) ? 1e300 : -0.0);
	case 5:
		memset(big, 'A' + (int)rnd(26), sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		return json_string(big);
	case 6:
		return json_stringn("ab\0cd", 5);
	case 7:
		return json_array();
	case 8:
		return json_pack("{s:i}", "a", 1);
	case 9:
		return json_pack("[i,s]", 1, "2");
	case 10:
		return json_integer((json_int_t)rnd(100000));
	default:
		return json_string(strs[rnd(sizeof(strs) / sizeof(strs[0]))]);
	}
}

static const char *const keys[] = {
    "id",         "type",        "attributes",    "starts_at",    "ends_at",
    "updated_at", "zone_id",     "complete",      "severity",     "duration",
    "motion",     "location_id", "timeline_id",   "plate_number", "country",
    "event_id",   "has_motion",  "has_intrusion", "has_pir",      "has_network_change",
    "has_x",
};

static void mutate(json_t *r)
{
	int n = 1 + (int)rnd(4);
	for (int i = 0; i < n; i++) {
		json_t *target = r, *a = json_object_get(r, "attributes");
		const char *key = keys[rnd(sizeof(keys) / sizeof(keys[0]))];
		if (json_is_object(a) && rnd(4) != 0)
			target = a;
		if (!json_is_object(target))
			return;
		if (rnd(4) == 0)
			json_object_del(target, key);
		else
			json_object_set_new(target, key, random_value());
	}
}

/* A normalised message must always dump, parse back and render in every context. */
static void exercise(const struct message *m, struct tmpl *const tpl[3])
{
	char *text = message_dump(m);
	json_t *back;
	struct buf b;

	assert_non_null(text);
	back = json_loads(text, 0, NULL);
	assert_non_null(back);
	json_decref(back);
	free(text);
	buf_init(&b, 0);
	for (int c = 0; c < 3; c++)
		assert_int_equal(tmpl_render(tpl[c], m, &b), 0);
	buf_release(&b);
}

/* normalize_dedup_key of a tree: the strings are borrowed from the last call's copy. */
static bool dedup_key(const json_t *r, enum msg_kind *kind, const char **id, const char **rev,
                      const char **zone)
{
	static struct nres n;

	nres_from_json(r, &n);
	return normalize_dedup_key(&n, kind, id, rev, zone);
}

/* A resource that normalises has a dedup key, and it is the message's own: kind,
 * source_id, revision, zone id (the poller skips a revision it handled by that key). */
static void key_agrees(const json_t *r)
{
	struct message m;
	char err[256];
	enum msg_kind kind = MSG_EVENT;
	const char *id = NULL, *rev = NULL, *zone = NULL;
	bool key = dedup_key(r, &kind, &id, &rev, &zone);

	if (normalize_resource(r, NULL, BASE, &m, err, sizeof(err)) != 0)
		return;
	if (!key || kind != m.kind || strcmp(id, m.source_id) != 0 ||
	    strcmp(rev, m.revision) != 0 || strcmp(zone, m.zone_id) != 0) {
		char *text = json_dumps(r, JSON_COMPACT);
		fail_msg("dedup key %s differs from the message on %.300s",
		         key ? "read" : "refused", text ? text : "?");
	}
}

static void check_one(const json_t *r, struct tmpl *const tpl[3], int *ok)
{
	struct message m;
	char err[256] = "";
	key_agrees(r);
	if (normalize_resource(r, rnd(2) ? "Zone \xff" : NULL, rnd(8) ? BASE : NULL, &m, err,
	                       sizeof(err)) == 0) {
		exercise(&m, tpl);
		(*ok)++;
	} else {
		assert_true(err[0] != '\0');
	}
}

/* What normalize_dedup_key refuses, leaving the resource to the normaliser: anything that
 * would not be copied as it is into the message's fields. */
static void test_dedup_key_refuses_what_would_not_be_copied_as_is(void **state)
{
	(void)state;
	static const char *const cases[][3] = {
	    /* member, in attributes ("1") or the resource, JSON value */
	    {"type", "", "\"zones\""},
	    {"type", "", "null"},
	    {"id", "", "7"},
	    {"id", "", "\"\""},
	    {"id", "", "\"a\\u0000b\""},
	    {"id", "", "\"0123456789012345678901234567890123456789012345678901234567890123\""},
	    {"updated_at", "1", "null"},
	    {"updated_at", "1", "\"2020-06-12T16:03:09.019+01:00 and then a long tail\""},
	    {"zone_id", "1", "\"\""},
	    {"zone_id", "1", "[]"},
	    {"attributes", "", "[]"},
	};
	enum msg_kind kind;
	const char *id, *rev, *zone;
	json_t *r = example("events-period", 0);

	assert_true(dedup_key(r, &kind, &id, &rev, &zone));
	assert_int_equal(kind, MSG_EVENT);
	key_agrees(r);
	json_decref(r);
	r = example("lpr", 0);
	assert_true(dedup_key(r, &kind, &id, &rev, &zone));
	assert_int_equal(kind, MSG_PLATE);
	key_agrees(r);
	json_decref(r);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *v = json_loads(cases[i][2], JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		r = example("events-period", 0);
		assert_non_null(v);
		json_object_set_new(cases[i][1][0] ? attrs(r) : r, cases[i][0], v);
		if (dedup_key(r, &kind, &id, &rev, &zone))
			fail_msg("a dedup key with %s = %s", cases[i][0], cases[i][2]);
		json_decref(r);
	}
	r = example("events-period", 0);
	json_object_del(attrs(r), "zone_id");
	assert_false(dedup_key(r, &kind, &id, &rev, &zone));
	json_decref(r);
}

static void test_random_mutations_never_crash(void **state)
{
	(void)state;
	static const char *const names[] = {"events-period", "lpr", "events-open"};
	static const char all[] =
	    "{{schema}}{{id}}{{kind}}{{phase}}{{source_id}}{{occurred_at}}{{ended_at}}"
	    "{{duration_s}}{{complete}}{{severity}}{{flags}}{{motion}}{{zone.id}}{{zone.name}}"
	    "{{location_id}}{{timeline_id}}{{plate.number}}{{plate.normalized}}"
	    "{{plate.country}}{{plate.watchlist}}{{plate.label}}{{plate.distance}}{{event_id}}"
	    "{{links.web}}{{links.recording_web}}{{backfill}}{{rule}}";
	struct tmpl *tpl[3];
	int ok = 0;
	char err[128];
	int col;

	for (int c = 0; c < 3; c++) {
		tpl[c] = tmpl_compile(all, (enum tmpl_ctx)c, err, sizeof(err), &col);
		assert_non_null(tpl[c]);
	}
	/* structural mutations */
	for (int i = 0; i < 2000; i++) {
		json_t *r = example(names[rnd(3)], 0);
		if (rnd(50) == 0) {
			json_decref(r);
			r = random_value();
		} else {
			mutate(r);
		}
		check_one(r, tpl, &ok);
		json_decref(r);
	}
	/* byte mutations of the documents' text */
	for (int i = 0; i < 2000; i++) {
		char path[256], *text;
		json_t *doc, *data;
		size_t len;

		snprintf(path, sizeof(path), DATA_DIR "/%s/input.json", names[rnd(3)]);
		text = slurp(path);
		len = strlen(text);
		for (int k = 1 + (int)rnd(3); k > 0; k--)
			text[rnd((uint32_t)len)] = "\"{}[],:0a-\\ \x01\xc3"[rnd(14)];
		doc = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		free(text);
		if (doc == NULL)
			continue;
		data = json_object_get(doc, "data");
		if (json_is_array(data))
			for (size_t j = 0; j < json_array_size(data); j++)
				check_one(json_array_get(data, j), tpl, &ok);
		else
			check_one(doc, tpl, &ok);
		json_decref(doc);
	}
	for (int c = 0; c < 3; c++)
		tmpl_free(tpl[c]);
	assert_true(ok > 100); /* the mutations leave many resources valid */
}

/* --- what the normaliser reads (normalize_reads_member / _attribute) ----------------- */

/* A copy of r holding only the members the read set keeps, as tether_each builds it with
 * the normaliser's filter (new reference). */
static json_t *read_members_only(const json_t *r)
{
	json_t *c = json_deep_copy(r), *a, *v;
	const char *k;
	void *tmp;

	assert_non_null(c);
	if (!json_is_object(c))
		return c;
	json_object_foreach_safe(c, tmp, k, v)
	{
		if (!normalize_reads_member(k, strlen(k)))
			json_object_del(c, k);
	}
	a = json_object_get(c, "attributes");
	if (json_is_object(a))
		json_object_foreach_safe(a, tmp, k, v)
		{
			if (!normalize_reads_attribute(k, strlen(k)))
				json_object_del(a, k);
		}
	return c;
}

/* normalize_resource gives the same of r and of its read members: the same message bytes
 * (it zeroes the struct first, padding included) or the same error text. */
static void same_when_read_only(const json_t *r)
{
	json_t *kept = read_members_only(r);
	struct message full, part;
	char e1[256] = "", e2[256] = "";
	int rc1, rc2;

	memset(&full, 0xa5, sizeof(full));
	memset(&part, 0x5a, sizeof(part));
	rc1 = normalize_resource(r, "Zone", BASE, &full, e1, sizeof(e1));
	rc2 = normalize_resource(kept, "Zone", BASE, &part, e2, sizeof(e2));
	json_decref(kept);
	if (rc1 != rc2 || strcmp(e1, e2) != 0 ||
	    (rc1 == 0 && memcmp(&full, &part, sizeof(full)) != 0)) {
		char *text = json_dumps(r, JSON_COMPACT);
		fail_msg("read set differs on %.300s: %d '%s' vs %d '%s'", text ? text : "?", rc1,
		         e1, rc2, e2);
	}
}

/* Every sample resource: events (all 47 attributes of the API example), open events,
 * plates (new reference). */
static json_t *read_set_samples(void)
{
	static const char *const files[] = {
	    DATA_DIR "/events-at/input.json",      DATA_DIR "/events-open/input.json",
	    DATA_DIR "/events-period/input.json",  DATA_DIR "/lpr/input.json",
	    "tests/data/api-examples/events.json", "tests/data/api-examples/events_at.json",
	    "tests/data/api-examples/lpr.json",
	};
	json_t *all = json_array();

	assert_non_null(all);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		json_t *doc = load_json(files[i]);
		assert_int_equal(json_array_extend(all, json_object_get(doc, "data")), 0);
		json_decref(doc);
	}
	assert_true(json_array_size(all) >= 9);
	return all;
}

static void test_read_set_names_what_is_read(void **state)
{
	(void)state;
	char key[64];

	assert_true(normalize_reads_member("id", 2));
	assert_true(normalize_reads_member("type", 4));
	assert_true(normalize_reads_member("attributes", 10));
	assert_false(normalize_reads_member("relationships", 13));
	assert_false(normalize_reads_member("links", 5));
	assert_false(normalize_reads_member("idx", 2 + 1));
	assert_false(normalize_reads_member("", 0));
	for (size_t i = 0; i < msg_flag_count; i++) {
		snprintf(key, sizeof(key), "has_%s", msg_flag_names[i]);
		assert_true(normalize_reads_attribute(key, strlen(key)));
	}
	assert_true(normalize_reads_attribute("starts_at", 9));
	assert_true(normalize_reads_attribute("plate_number", 12));
	/* unknown has_* keys are ignored, so not read; nor are names only close to one */
	assert_false(normalize_reads_attribute("has_x", 5));
	assert_false(normalize_reads_attribute("has_person", 10));
	assert_false(normalize_reads_attribute("created_at", 10));
	assert_false(normalize_reads_attribute("zone_id\0", 8));
	assert_false(normalize_reads_attribute("zone_i", 6));
	assert_false(normalize_reads_attribute("", 0));
	assert_false(normalize_reads_attribute("x", 1));
	/* equal to a name read in its length, last two bytes and middle one (its hash) */
	assert_false(normalize_reads_attribute("xyze_id", 7)); /* zone_id */
	assert_false(normalize_reads_attribute("abc_xma", 7)); /* has_tma */
	memset(key, 'a', sizeof(key));
	assert_false(normalize_reads_attribute(key, sizeof(key)));
}

static void test_read_set_is_complete_on_every_sample(void **state)
{
	(void)state;
	json_t *all = read_set_samples(), *r;
	size_t i;

	json_array_foreach(all, i, r)
	{
		same_when_read_only(r);
	}
	json_decref(all);
}

/* Each member of each sample (and every name the normaliser could read: the has_* keys,
 * the mutation keys) set to a value of every type, or removed: a name read but not in the
 * set changes the result of the whole resource only, and fails here. */
static void test_read_set_is_complete_with_each_member_mutated_or_removed(void **state)
{
	(void)state;
	json_t *all = read_set_samples(), *r, *v;
	const char *k;
	size_t i;
	char big[300];

	memset(big, '7', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	json_t *values = json_pack("[n,b,b,i,i,f,f,s,s,s,s,s,s,[],{},[s],{s:s}]", 1, 0,
	                           (json_int_t)0, (json_int_t)-1, 1.5, 1e300, "", "x", "events",
	                           "lprs", "2020-06-12T16:03:09.019+01:00", big, "a", "id", "x");
	assert_non_null(values);
	json_array_foreach(all, i, r)
	{
		json_t *names = json_array();
		size_t j, m;
		json_t *name;

		/* the names to try: the sample's, the mutation keys, every has_* key */
		json_object_foreach(r, k, v)
		{
			json_array_append_new(names, json_pack("[b,s]", 0, k));
		}
		json_object_foreach(json_object_get(r, "attributes"), k, v)
		{
			json_array_append_new(names, json_pack("[b,s]", 1, k));
		}
		for (j = 0; j < sizeof(keys) / sizeof(keys[0]); j++) {
			json_array_append_new(names, json_pack("[b,s]", 0, keys[j]));
			json_array_append_new(names, json_pack("[b,s]", 1, keys[j]));
		}
		for (j = 0; j < msg_flag_count; j++)
			json_array_append_new(names,
			                      json_pack("[b,s+]", 1, "has_", msg_flag_names[j]));
		json_array_foreach(names, j, name)
		{
			bool in_attrs = json_is_true(json_array_get(name, 0));
			const char *key = json_string_value(json_array_get(name, 1));

			for (m = 0; m <= json_array_size(values); m++) {
				json_t *c = json_deep_copy(r);
				json_t *target = in_attrs ? json_object_get(c, "attributes") : c;
				if (m == json_array_size(values))
					json_object_del(target, key);
				else
					json_object_set(target, key, json_array_get(values, m));
				same_when_read_only(c);
				json_decref(c);
			}
		}
		json_decref(names);
	}
	/* and the random mutations of the other tests, several at a time */
	for (int n = 0; n < 3000; n++) {
		json_t *c =
		    json_deep_copy(json_array_get(all, rnd((uint32_t)json_array_size(all))));
		mutate(c);
		same_when_read_only(c);
		json_decref(c);
	}
	json_decref(values);
	json_decref(all);
}

/* starts_at set to sent gives occurred_at want (and the same instant) */
static void time_written(json_t *r, const char *sent, const char *want)
{
	struct message m;
	json_object_set_new(attrs(r), "starts_at", json_string(sent));
	norm_ok(r, NULL, &m);
	assert_string_equal(m.occurred_at, want);
	int64_t a, b;
	assert_int_equal(util_parse_time(sent, &a, NULL), 0);
	assert_int_equal(util_parse_time(m.occurred_at, &b, NULL), 0);
	assert_true(a == b);
}

static void test_times_are_written_as_rfc3339(void **state)
{
	(void)state;
	struct message m;
	json_t *r = example("events-at", 0);

	/* other forms the API uses: rewritten, keeping the offset it gave */
	time_written(r, "2020-07-04 15:35:45 +0100", "2020-07-04T15:35:45.000+01:00");
	time_written(r, "2020-03-05 08:51:46.895 UTC", "2020-03-05T08:51:46.895+00:00");
	time_written(r, "2020-07-04T15:35+01:00", "2020-07-04T15:35:00.000+01:00");
	time_written(r, "2018-07-09 19:00:00", "2018-07-09T19:00:00.000+00:00");
	time_written(r, "2020-07-04t15:35:45z", "2020-07-04T15:35:45.000+00:00");
	time_written(r, "2020-07-04T15:35:45-0530", "2020-07-04T15:35:45.000-05:30");
	time_written(r, "2020-02-31T10:00:00Z", "2020-03-02T10:00:00.000+00:00");
	/* RFC 3339 already: kept as sent, precision and all */
	time_written(r, "2020-06-12T15:04:10Z", "2020-06-12T15:04:10Z");
	time_written(r, "2020-06-12T16:03:09.019123+01:00", "2020-06-12T16:03:09.019123+01:00");
	/* ends_at too; the revision (updated_at) stays exactly as sent, it is part of the id */
	json_object_set_new(attrs(r), "ends_at", json_string("2020-06-12 16:45:09 +0100"));
	json_object_set_new(attrs(r), "updated_at", json_string("2020-07-09 08:05:09 +0100"));
	norm_ok(r, NULL, &m);
	assert_string_equal(m.ended_at, "2020-06-12T16:45:09.000+01:00");
	assert_string_equal(m.revision, "2020-07-09 08:05:09 +0100");
	assert_string_equal(m.id, "event:5f06c1a541092788f683f3c8:2020-07-09 08:05:09 +0100");
	json_decref(r);
}

static void test_open_event_duration_is_null_whatever_the_api_sends(void **state)
{
	(void)state;
	struct message m;
	json_t *r = example("events-period", 0);

	json_object_set_new(attrs(r), "ends_at", json_null());
	json_object_set_new(attrs(r), "duration", json_integer(0));
	norm_ok(r, NULL, &m);
	assert_int_equal(m.duration_s, -1);
	char *text = message_dump(&m);
	assert_non_null(strstr(text, "\"ended_at\":null,\"duration_s\":null,"));
	free(text);
	json_object_del(attrs(r), "ends_at");
	json_object_set_new(attrs(r), "duration", json_integer(12));
	norm_ok(r, NULL, &m);
	assert_int_equal(m.duration_s, -1);
	json_decref(r);
}

static void test_motion_out_of_range_is_rejected_and_the_rest_parses_back(void **state)
{
	(void)state;
	struct message m;
	json_t *r = example("events-period", 0);
	const double ok[] = {0.0, 0.35, 1.0, 100.0, 1e15, -1e15, 5e-324, 0.1 + 0.2};

	json_object_set_new(attrs(r), "motion", json_real(DBL_MAX));
	norm_err(r, "attributes.motion: out of range");
	json_object_set_new(attrs(r), "motion", json_real(-1.7976931348623e308));
	norm_err(r, "attributes.motion: out of range");
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		json_object_set_new(attrs(r), "motion", json_real(ok[i]));
		norm_ok(r, NULL, &m);
		char *text = message_dump(&m);
		json_error_t je;
		json_t *back = json_loads(text, 0, &je);
		if (back == NULL)
			fail_msg("motion %g: %s does not parse back: %s", ok[i], text, je.text);
		json_decref(back);
		free(text);
	}
	json_decref(r);
}

/* --- message_dump against the tree it replaced ---
 * message_dump writes the text without a jansson tree; json_dumps(message_to_json(m))
 * is the reference, and every text must be the same bytes. */

/* The string fields of a message, with their sizes. */
static const struct {
	const char *name;
	size_t off, size;
} str_fields[] = {
#define STR_FIELD(f)                                                                               \
	{                                                                                          \
#f, offsetof(struct message, f), sizeof(((struct message *)0)->f)                  \
	}
    STR_FIELD(id),
    STR_FIELD(source_id),
    STR_FIELD(revision),
    STR_FIELD(occurred_at),
    STR_FIELD(ended_at),
    STR_FIELD(severity),
    STR_FIELD(zone_id),
    STR_FIELD(zone_name),
    STR_FIELD(location_id),
    STR_FIELD(timeline_id),
    STR_FIELD(plate_number),
    STR_FIELD(plate_normalized),
    STR_FIELD(country),
    STR_FIELD(event_id),
    STR_FIELD(watchlist),
    STR_FIELD(watch_entry),
    STR_FIELD(watch_label),
    STR_FIELD(link_web),
    STR_FIELD(link_recording),
    STR_FIELD(rule),
#undef STR_FIELD
};
#define N_STR_FIELDS (sizeof(str_fields) / sizeof(str_fields[0]))

/* Copies s into field i, cut to fit (at a byte: the cut may break a character). */
static void set_field(struct message *m, size_t i, const char *s)
{
	char *dst = (char *)m + str_fields[i].off;
	size_t n = strlen(s);

	if (n >= str_fields[i].size)
		n = str_fields[i].size - 1;
	memcpy(dst, s, n);
	dst[n] = '\0';
}

static size_t dumps_compared;

/* message_dump(m) is json_dumps(message_to_json(m), MSG_DUMP_FLAGS), twice (the second
 * time from the thread's cache). */
static void assert_dump_is_the_tree(const struct message *m, const char *what)
{
	json_t *o = message_to_json(m);
	char *want, *got, *again;

	assert_non_null(o);
	want = json_dumps(o, MSG_DUMP_FLAGS);
	json_decref(o);
	assert_non_null(want);
	got = message_dump(m);
	if (got == NULL || strcmp(got, want) != 0)
		fail_msg("%s:\n got  %s\n want %s", what, got ? got : "(null)", want);
	again = message_dump(m);
	assert_non_null(again);
	assert_string_equal(again, want);
	dumps_compared++;
	free(want);
	free(got);
	free(again);
}

/* The four examples, normalised (events-at, events-open, events-period, lpr). */
static void example_messages(struct message out[4])
{
	static const char *const names[] = {"events-at", "events-open", "events-period", "lpr"};

	for (size_t i = 0; i < 4; i++) {
		json_t *r = example(names[i], 0);
		memset(&out[i], 0, sizeof(out[i]));
		norm_ok(r, i % 2 ? "Back door" : NULL, &out[i]);
		json_decref(r);
	}
}

static void test_dump_is_the_tree_for_every_kind_phase_and_optional_field(void **state)
{
	(void)state;
	struct message ex[4], m;
	char what[128];

	example_messages(ex);
	for (size_t e = 0; e < 4; e++)
		for (int kind = 0; kind < 2; kind++)
			for (int phase = 0; phase < 3; phase++)
				for (unsigned bits = 0; bits < 32; bits++) {
					m = ex[e];
					m.kind = kind ? MSG_PLATE : MSG_EVENT;
					m.phase = (enum msg_phase)phase;
					m.watch_matched = bits & 1;
					m.backfill = bits & 2;
					m.complete = bits & 4;
					m.flags = bits & 8 ? ~UINT64_C(0) : 0;
					m.duration_s = bits & 16 ? INT64_MAX : -1;
					m.watch_distance = bits & 16 ? -7 : 2;
					strcpy(m.watchlist, "stolen");
					strcpy(m.rule, bits & 2 ? "watched" : "");
					snprintf(what, sizeof(what),
					         "example %zu kind %d phase %d bits %u", e, kind,
					         phase, bits);
					assert_dump_is_the_tree(&m, what);
					/* each optional string empty, then all of them */
					for (size_t f = 0; f < N_STR_FIELDS; f++) {
						struct message one = m;
						set_field(&one, f, "");
						snprintf(what, sizeof(what),
						         "example %zu: %s empty", e,
						         str_fields[f].name);
						assert_dump_is_the_tree(&one, what);
						set_field(&m, f, "");
					}
					assert_dump_is_the_tree(&m, "every string empty");
				}
}

static void test_dump_is_the_tree_for_every_real(void **state)
{
	(void)state;
	struct message ex[4], m;
	const double reals[] = {0.0,
	                        -0.0,
	                        0.35,
	                        1.0,
	                        -1.0,
	                        100.0,
	                        0.1 + 0.2,
	                        1e15,
	                        -1e15,
	                        1e16,
	                        1e20,
	                        1e21,
	                        1e-4,
	                        1e-5,
	                        1.5e-7,
	                        5e-324,
	                        2.2250738585072014e-308,
	                        DBL_MAX,
	                        -DBL_MAX,
	                        123456789012345.6,
	                        0.000123456789012345,
	                        1e100,
	                        NAN,
	                        INFINITY,
	                        -INFINITY};
	char what[64];

	example_messages(ex);
	m = ex[2];
	for (size_t i = 0; i < sizeof(reals) / sizeof(reals[0]); i++) {
		m.motion = reals[i];
		snprintf(what, sizeof(what), "motion %.17g", reals[i]);
		assert_dump_is_the_tree(&m, what);
	}
	/* every power of ten and its neighbours, where %g changes form */
	for (int p = -330; p <= 310; p++) {
		double v = pow(10, p);
		const double near[] = {v, nextafter(v, 0), nextafter(v, INFINITY), -v, v * 9.99999};
		for (size_t i = 0; i < sizeof(near) / sizeof(near[0]); i++) {
			m.motion = near[i];
			snprintf(what, sizeof(what), "motion %.17g", near[i]);
			assert_dump_is_the_tree(&m, what);
		}
	}
}

/* Strings a field may hold that are escaped or replaced: every control byte, quotes,
 * '/', DEL, U+2028/2029, characters of each length, bytes that are not UTF-8 (stray
 * continuation, overlong, surrogate, above U+10FFFF, cut short, 0xF5-0xFF). */
static const char *const hostile[] = {
    "\"",
    "\\",
    "/",
    "\\/\"",
    "\x7f",
    "\xe2\x80\xa8",
    "\xe2\x80\xa9",
    "\xc3\xa9",
    "\xe2\x82\xac",
    "\xf0\x9f\x98\x80",
    "\xf4\x8f\xbf\xbf",
    "\x80",
    "\xbf",
    "\xc0\x80",
    "\xc1\xbf",
    "\xe0\x80\x80",
    "\xed\xa0\x80",
    "\xed\xbf\xbf",
    "\xf0\x80\x80\x80",
    "\xf4\x90\x80\x80",
    "\xf5\x80\x80\x80",
    "\xfe",
    "\xff",
    "\xe2\x82",
    "\xf0\x9f\x98",
    "\xc3",
    "a\xc3",
    "\xef\xbf\xbd",
    "\xef\xbf\xbf",
    "null",
    "<\\u0000>",
    "</script>",
    "\t\n\r\b\f",
};

static void test_dump_is_the_tree_for_hostile_strings(void **state)
{
	(void)state;
	struct message ex[4], m;
	char s[8], what[128];

	example_messages(ex);
	for (size_t e = 2; e < 4; e++) {
		for (size_t f = 0; f < N_STR_FIELDS; f++) {
			m = ex[e];
			m.watch_matched = true;
			for (int c = 1; c < 0x20; c++) {
				snprintf(s, sizeof(s), "a%cb", c);
				set_field(&m, f, s);
				snprintf(what, sizeof(what), "%s: control byte 0x%02x",
				         str_fields[f].name, c);
				assert_dump_is_the_tree(&m, what);
			}
			for (size_t h = 0; h < sizeof(hostile) / sizeof(hostile[0]); h++) {
				set_field(&m, f, hostile[h]);
				snprintf(what, sizeof(what), "%s: hostile %zu", str_fields[f].name,
				         h);
				assert_dump_is_the_tree(&m, what);
			}
		}
	}
}

/* Every field at its longest: plain, escaped (a text twice as long), 3-byte characters
 * cut mid-character, and bytes that are not UTF-8 (each becomes 3 bytes, past the bounded
 * copy that replaces them). */
static void test_dump_is_the_tree_for_fields_at_their_longest(void **state)
{
	(void)state;
	struct message ex[4], m;
	static const char *const fills[] = {"x",    "\"",          "\x01", "\xe2\x82\xac",
	                                    "\xff", "\xc3\xa9\x80"};
	char big[1024], what[128];

	example_messages(ex);
	for (size_t e = 2; e < 4; e++)
		for (size_t k = 0; k < sizeof(fills) / sizeof(fills[0]); k++) {
			size_t n = strlen(fills[k]);
			big[0] = '\0';
			for (size_t o = 0; o + n < sizeof(big); o += n)
				strcat(big, fills[k]);
			m = ex[e];
			m.watch_matched = true;
			for (size_t f = 0; f < N_STR_FIELDS; f++)
				set_field(&m, f, big);
			snprintf(what, sizeof(what), "example %zu, every field full of fill %zu", e,
			         k);
			assert_dump_is_the_tree(&m, what);
		}
}

/* Random bytes in every field, drawn mostly from the awkward ones. */
static void test_dump_is_the_tree_for_random_messages(void **state)
{
	(void)state;
	static const char alphabet[] = "a/\\\"\x01\x1f\x7f\x80\xbf\xc3\xa9\xe2\x80\xa8\xed\xa0"
	                               "\xf0\x9f\x98\xf4\x90\xff ";
	struct message ex[4], m;
	char s[600], what[64];
	unsigned seed = 12345;

	example_messages(ex);
	for (int i = 0; i < 3000; i++) {
		m = ex[i % 4];
		m.kind = rand_r(&seed) % 2 ? MSG_PLATE : MSG_EVENT;
		m.phase = (enum msg_phase)(rand_r(&seed) % 3);
		m.watch_matched = rand_r(&seed) % 2;
		m.flags = (uint64_t)rand_r(&seed) << 32 | (uint64_t)rand_r(&seed);
		m.motion = (double)rand_r(&seed) / (double)(rand_r(&seed) + 1) *
		           pow(10, rand_r(&seed) % 40 - 20);
		for (size_t f = 0; f < N_STR_FIELDS; f++) {
			size_t n =
			    (size_t)rand_r(&seed) % (rand_r(&seed) % 8 ? 24 : (int)sizeof(s));
			for (size_t j = 0; j < n; j++)
				s[j] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
			s[n] = '\0';
			set_field(&m, f, s);
		}
		snprintf(what, sizeof(what), "random message %d", i);
		assert_dump_is_the_tree(&m, what);
	}
	print_message("%zu texts compared with the tree's\n", dumps_compared);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_examples_match_expected_messages),
	    cmocka_unit_test(test_id_is_kind_source_and_revision),
	    cmocka_unit_test(test_flag_names_follow_the_api_doc),
	    cmocka_unit_test(test_each_has_field_sets_its_own_flag),
	    cmocka_unit_test(test_dump_of_equal_messages_is_equal_and_of_changed_one_changes),
	    cmocka_unit_test(test_flags_come_from_true_has_fields),
	    cmocka_unit_test(test_duration_from_field_then_times_then_unknown),
	    cmocka_unit_test(test_times_kept_as_sent_and_parsed),
	    cmocka_unit_test(test_links_use_utc_time_and_zone),
	    cmocka_unit_test(test_recording_link_is_weblinks_own),
	    cmocka_unit_test(test_plate_is_normalised),
	    cmocka_unit_test(test_zone_name_stands_in_and_is_cut_at_a_character),
	    cmocka_unit_test(test_watch_rule_and_phase_in_json),
	    cmocka_unit_test(test_motion_real_is_short_in_text),
	    cmocka_unit_test(test_missing_and_mistyped_fields_are_named),
	    cmocka_unit_test(test_odd_resources_are_rejected),
	    cmocka_unit_test(test_dedup_key_refuses_what_would_not_be_copied_as_is),
	    cmocka_unit_test(test_random_mutations_never_crash),
	    cmocka_unit_test(test_times_are_written_as_rfc3339),
	    cmocka_unit_test(test_open_event_duration_is_null_whatever_the_api_sends),
	    cmocka_unit_test(test_motion_out_of_range_is_rejected_and_the_rest_parses_back),
	    cmocka_unit_test(test_read_set_names_what_is_read),
	    cmocka_unit_test(test_read_set_is_complete_on_every_sample),
	    cmocka_unit_test(test_read_set_is_complete_with_each_member_mutated_or_removed),
	    cmocka_unit_test(test_dump_is_the_tree_for_every_kind_phase_and_optional_field),
	    cmocka_unit_test(test_dump_is_the_tree_for_every_real),
	    cmocka_unit_test(test_dump_is_the_tree_for_hostile_strings),
	    cmocka_unit_test(test_dump_is_the_tree_for_fields_at_their_longest),
	    cmocka_unit_test(test_dump_is_the_tree_for_random_messages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
