/* Unit tests for bridge/homeassistant: which discovery configs a sync sends (new, changed,
 * deleted, all when forced, nothing when nothing changed), the ids, the bridge state and a
 * rule entity's event entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <jansson.h>

#include "bridge/bridge.h"
#include "bridge/homeassistant.h"
#include "bridge/outbox.h"

#define T0 1594305000000LL
#define BRIDGE_CONFIGS 5
#define ZONE_CONFIGS 5 /* Detection + 4 default binary sensors */

/* nrules 1 or 2; 3: one rule, and the control plane on the broker (commands, control) */
static const char *cfg_text(int nrules)
{
	if (nrules == 3)
		return "tether: {base_url: \"http://127.0.0.1:9\", insecure: true, access_token: "
		       "x}\n"
		       "state_dir: /tmp/tb-unit-unused\n"
		       "mqtt:\n  home: {url: \"mqtt://127.0.0.1:9\", topic_prefix: tb, "
		       "client_id: tb-unit, homeassistant: true, commands: true}\n"
		       "control: {modes: [home, away]}\n"
		       "rules:\n"
		       "  - {name: a rule, to: [{homeassistant: home}]}\n";
	return nrules == 2
	           ? "tether: {base_url: \"http://127.0.0.1:9\", insecure: true, access_token: x}\n"
	             "state_dir: /tmp/tb-unit-unused\n"
	             "mqtt:\n  home: {url: \"mqtt://127.0.0.1:9\", topic_prefix: tb, "
	             "client_id: tb-unit, homeassistant: true}\n"
	             "rules:\n"
	             "  - {name: a rule, to: [{homeassistant: home}]}\n"
	             "  - {name: other, to: [{homeassistant: home}]}\n"
	           : "tether: {base_url: \"http://127.0.0.1:9\", insecure: true, access_token: x}\n"
	             "state_dir: /tmp/tb-unit-unused\n"
	             "mqtt:\n  home: {url: \"mqtt://127.0.0.1:9\", topic_prefix: tb, "
	             "client_id: tb-unit, homeassistant: true}\n"
	             "rules:\n"
	             "  - {name: a rule, to: [{homeassistant: home}]}\n";
}

struct fx {
	struct config *cfg;
	struct rules *rules;
	struct ha *h;
	struct ha_entries e;
};

static void load(struct fx *f, int nrules)
{
	char path[] = "/tmp/tb-unit-ha-XXXXXX";
	int fd = mkstemp(path);
	struct cfg_errors errs = {0};
	const char *t = cfg_text(nrules);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, t, strlen(t)), (ssize_t)strlen(t));
	close(fd);
	rules_free(f->rules);
	config_free(f->cfg);
	assert_int_equal(bridge_load(path, &f->cfg, &f->rules, &errs), 0);
	unlink(path);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	load(f, 2);
	f->h = ha_new("home");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	ha_entries_release(&f->e);
	ha_free(f->h);
	rules_free(f->rules);
	config_free(f->cfg);
	free(f);
	return 0;
}

static const struct ha_zone zones2[] = {{"z1", "Front"}, {"z2", "Back"}};

static size_t count_empty(const struct ha_entries *e)
{
	size_t n = 0;
	for (size_t i = 0; i < e->n; i++)
		n += e->v[i].payload[0] == '\0';
	return n;
}

static void test_first_sync_sends_every_config_retained(void **state)
{
	struct fx *f = *state;
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 2, false, T0, &f->e), 0);
	assert_int_equal(f->e.n, BRIDGE_CONFIGS + 2 * ZONE_CONFIGS + 2);
	for (size_t i = 0; i < f->e.n; i++) {
		assert_string_equal(f->e.v[i].target, "mqtt.home");
		assert_non_null(strstr(f->e.v[i].extra, "\"retain\":true"));
		assert_int_equal(strncmp(f->e.v[i].topic_or_url, "homeassistant/", 14), 0);
		assert_true(f->e.v[i].next_attempt_ms >= T0);
		assert_true(f->e.v[i].next_attempt_ms <= T0 + HA_SPREAD_MS);
	}
}

static void test_sync_without_change_sends_nothing(void **state)
{
	struct fx *f = *state;
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 2, false, T0, &f->e), 0);
	ha_entries_release(&f->e);
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 2, false, T0 + 1, &f->e), 0);
	assert_int_equal(f->e.n, 0);
}

static void test_forced_sync_sends_everything_again(void **state)
{
	struct fx *f = *state;
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 2, false, T0, &f->e), 0);
	size_t n = f->e.n;
	ha_entries_release(&f->e);
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 2, true, T0 + 1, &f->e), 0);
	assert_int_equal(f->e.n, n);
}

static void test_rename_resends_that_zone_with_the_same_unique_ids(void **state)
{
	struct fx *f = *state;
	const struct ha_zone renamed[] = {{"z1", "Front gate"}, {"z2", "Back"}};
	char uid[200] = "";
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 2, false, T0, &f->e), 0);
	for (size_t i = 0; i < f->e.n; i++)
		if (strstr(f->e.v[i].topic_or_url, "zone_z1_detection")) {
			json_t *c = json_loads(f->e.v[i].payload, 0, NULL);
			snprintf(uid, sizeof(uid), "%s",
			         json_string_value(json_object_get(c, "unique_id")));
			json_decref(c);
		}
	ha_entries_release(&f->e);
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, renamed, 2, false, T0 + 1, &f->e), 0);
	assert_int_equal(f->e.n, ZONE_CONFIGS);
	for (size_t i = 0; i < f->e.n; i++) {
		json_t *c = json_loads(f->e.v[i].payload, 0, NULL);
		assert_non_null(strstr(f->e.v[i].topic_or_url, "zone_z1_"));
		assert_string_equal(
		    json_string_value(json_object_get(json_object_get(c, "device"), "name")),
		    "Front gate");
		if (strstr(f->e.v[i].topic_or_url, "zone_z1_detection"))
			assert_string_equal(json_string_value(json_object_get(c, "unique_id")),
			                    uid);
		json_decref(c);
	}
}

static void test_removed_zone_and_rule_get_empty_configs(void **state)
{
	struct fx *f = *state;
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 2, false, T0, &f->e), 0);
	ha_entries_release(&f->e);
	load(f, 1);
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 1, false, T0 + 1, &f->e), 0);
	assert_int_equal(f->e.n, ZONE_CONFIGS + 1);
	assert_int_equal(count_empty(&f->e), ZONE_CONFIGS + 1);
	for (size_t i = 0; i < f->e.n; i++)
		assert_non_null(strstr(f->e.v[i].extra, "\"retain\":true"));
}

/* The config on topic, or NULL. */
static const char *config_on(const struct ha_entries *e, const char *topic)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->v[i].topic_or_url, topic) == 0)
			return e->v[i].payload;
	return NULL;
}

/* A new state for "home" that holds e's configs as a restart restores them. */
static struct ha *restored(const struct ha_entries *e)
{
	struct ha *h = ha_new("home");
	assert_non_null(h);
	for (size_t i = 0; i < e->n; i++)
		assert_int_equal(ha_restore(h, e->v[i].topic_or_url, e->v[i].payload), 0);
	assert_int_equal(ha_published_count(h), e->n);
	return h;
}

/* A restart: what the last run published comes back from the store; the first sync deletes
 * the zone and rule that went while the bridge was stopped and sends nothing else. */
static void test_restored_configs_of_gone_zone_and_rule_are_deleted_nothing_else(void **state)
{
	struct fx *f = *state;
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 2, false, T0, &f->e), 0);
	struct ha *h = restored(&f->e);
	ha_entries_release(&f->e);
	load(f, 1);
	assert_int_equal(ha_sync(h, f->cfg, f->rules, zones2, 1, false, T0 + 1, &f->e), 0);
	assert_int_equal(f->e.n, ZONE_CONFIGS + 1);
	assert_int_equal(count_empty(&f->e), ZONE_CONFIGS + 1);
	for (size_t i = 0; i < f->e.n; i++)
		assert_true(strstr(f->e.v[i].topic_or_url, "zone_z2_") != NULL ||
		            strstr(f->e.v[i].topic_or_url, "rule_other") != NULL);
	ha_entries_release(&f->e);
	assert_int_equal(ha_sync(h, f->cfg, f->rules, zones2, 1, false, T0 + 2, &f->e), 0);
	assert_int_equal(f->e.n, 0);
	ha_free(h);
}

/* Plate entities come with a zone's first plate read, which a restart does not repeat: a
 * restored Last plate config keeps them (updated, not deleted). */
static void test_restored_plate_config_keeps_the_zone_plate_entities(void **state)
{
	struct fx *f = *state;
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 2, false, T0, &f->e), 0);
	struct ha *h = restored(&f->e);
	assert_int_equal(
	    ha_restore(h, "homeassistant/sensor/tb-unit/zone_z1_last_plate/config", "{\"old\":1}"),
	    0);
	assert_int_equal(
	    ha_restore(h, "homeassistant/event/tb-unit/zone_z1_plate/config", "{\"old\":1}"), 0);
	ha_entries_release(&f->e);
	assert_int_equal(ha_sync(h, f->cfg, f->rules, zones2, 2, false, T0 + 1, &f->e), 0);
	assert_int_equal(f->e.n, 2);
	assert_int_equal(count_empty(&f->e), 0);
	const char *c = config_on(&f->e, "homeassistant/sensor/tb-unit/zone_z1_last_plate/config");
	assert_non_null(c);
	assert_non_null(strstr(c, "\"unique_id\":\"tb-unit_zone_z1_last_plate\""));
	ha_free(h);
}

static void test_control_plane_brings_mode_and_perspective_selects(void **state)
{
	struct fx *f = *state;
	const char *const persp[] = {"Overview", "Entrances"};
	const char *c;

	load(f, 3);
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 2, false, T0, &f->e), 0);
	/* the mode select at once; no perspective select before any perspective is known */
	assert_int_equal(f->e.n, BRIDGE_CONFIGS + 2 * ZONE_CONFIGS + 1 + 1);
	c = config_on(&f->e, "homeassistant/select/tb-unit/mode/config");
	assert_non_null(c);
	assert_non_null(strstr(c, "\"command_topic\":\"tb/cmd/mode\""));
	assert_non_null(strstr(c, "\"state_topic\":\"tb/mode\""));
	assert_non_null(strstr(c, "\"options\":[\"home\",\"away\"]"));
	assert_null(config_on(&f->e, "homeassistant/select/tb-unit/perspective/config"));
	ha_entries_release(&f->e);

	assert_int_equal(ha_set_perspectives(f->h, persp, 2), 0);
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 2, false, T0 + 1, &f->e), 0);
	assert_int_equal(f->e.n, 1);
	c = config_on(&f->e, "homeassistant/select/tb-unit/perspective/config");
	assert_non_null(c);
	assert_non_null(strstr(c, "\"command_topic\":\"tb/cmd/perspective\""));
	assert_non_null(strstr(c, "\"state_topic\":\"tb/perspective\""));
	assert_non_null(strstr(c, "\"value_template\":\"{{ value_json.name }}\""));
	assert_non_null(strstr(c, "\"options\":[\"Overview\",\"Entrances\"]"));
	ha_entries_release(&f->e);

	/* no perspectives any more: the select is deleted */
	assert_int_equal(ha_set_perspectives(f->h, NULL, 0), 0);
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 2, false, T0 + 2, &f->e), 0);
	assert_int_equal(f->e.n, 1);
	assert_string_equal(config_on(&f->e, "homeassistant/select/tb-unit/perspective/config"),
	                    "");
}

static void test_no_selects_without_commands(void **state)
{
	struct fx *f = *state;
	const char *const persp[] = {"Overview"};

	assert_int_equal(ha_set_perspectives(f->h, persp, 1), 0);
	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 2, false, T0, &f->e), 0);
	for (size_t i = 0; i < f->e.n; i++)
		assert_null(strstr(f->e.v[i].topic_or_url, "/select/"));
}

static void test_object_id_keeps_safe_names_and_hashes_others(void **state)
{
	char *a = ha_object_id("tb-e2e_1"), *b = ha_object_id("a rule"),
	     *c = ha_object_id("a_rule");
	(void)state;
	assert_string_equal(a, "tb-e2e_1");
	assert_int_equal(strncmp(b, "a_rule_", 7), 0);
	assert_int_equal(strlen(b), 15);
	assert_string_not_equal(b, c);
	free(a);
	free(b);
	free(c);
}

static void test_bridge_state_is_sent_only_when_it_changes(void **state)
{
	struct fx *f = *state;
	struct ha_status st = {.api_ok = true, .outbox = 3, .dead_letters = 0, .last_poll_ms = T0};
	assert_int_equal(ha_status(f->h, f->cfg, &st, &f->e), 0);
	assert_int_equal(f->e.n, 1);
	assert_string_equal(f->e.v[0].topic_or_url, "tb/ha/bridge");
	assert_string_equal(f->e.v[0].payload, "{\"api\":\"ON\",\"outbox\":3,\"dead_letters\":0,"
	                                       "\"last_poll\":\"2020-07-09T14:30:00.000+00:00\"}");
	assert_int_equal(ha_status(f->h, f->cfg, &st, &f->e), 0);
	assert_int_equal(f->e.n, 1);
	st.api_ok = false;
	assert_int_equal(ha_status(f->h, f->cfg, &st, &f->e), 0);
	assert_int_equal(f->e.n, 2);
}

/* An open event with motion in zone z1. */
static void motion_event(struct message *m, bool complete)
{
	memset(m, 0, sizeof(*m));
	m->kind = MSG_EVENT;
	snprintf(m->id, sizeof(m->id), "event:e1:%d", complete);
	snprintf(m->source_id, sizeof(m->source_id), "e1");
	snprintf(m->zone_id, sizeof(m->zone_id), "z1");
	snprintf(m->zone_name, sizeof(m->zone_name), "Front");
	m->flags = 1ULL << msg_flag_index("motion");
	m->complete = complete;
}

/* After a reconnection a broker may have lost the retained states: ha_states gives each
 * sensor that was ever sent its state as it is now, retained and due at once, and nothing
 * for the sensors never sent. */
static void test_states_again_are_the_sent_sensors_as_they_are_now(void **state)
{
	struct fx *f = *state;
	struct message m;

	assert_int_equal(ha_sync(f->h, f->cfg, f->rules, zones2, 2, false, T0, &f->e), 0);
	ha_entries_release(&f->e);
	assert_int_equal(ha_states(f->h, f->cfg, T0, &f->e), 0);
	assert_int_equal(f->e.n, 0);
	motion_event(&m, false);
	assert_int_equal(ha_message(f->h, f->cfg, f->rules, &m, T0, &f->e), 0);
	assert_non_null(config_on(&f->e, "tb/ha/zone/z1/motion"));
	ha_entries_release(&f->e);
	assert_int_equal(ha_states(f->h, f->cfg, T0 + 1, &f->e), 0);
	assert_int_equal(f->e.n, 1);
	assert_string_equal(f->e.v[0].topic_or_url, "tb/ha/zone/z1/motion");
	assert_string_equal(f->e.v[0].payload, "ON");
	assert_non_null(strstr(f->e.v[0].extra, "\"retain\":true"));
	assert_int_equal(f->e.v[0].next_attempt_ms, 0);
	ha_entries_release(&f->e);
	motion_event(&m, true);
	assert_int_equal(ha_message(f->h, f->cfg, f->rules, &m, T0 + 2, &f->e), 0);
	ha_entries_release(&f->e);
	assert_int_equal(ha_states(f->h, f->cfg, T0 + 3, &f->e), 0);
	assert_int_equal(f->e.n, 1);
	assert_string_equal(f->e.v[0].payload, "OFF");
}

static void test_rule_delivery_is_a_fired_event_not_retained(void **state)
{
	struct fx *f = *state;
	struct rules_result res = {0};
	struct rules_state *st = rules_state_new();
	struct message m;
	struct store_entry e;

	memset(&m, 0, sizeof(m));
	m.kind = MSG_EVENT;
	snprintf(m.id, sizeof(m.id), "event:e1:r1");
	snprintf(m.source_id, sizeof(m.source_id), "e1");
	snprintf(m.zone_id, sizeof(m.zone_id), "z1");
	snprintf(m.zone_name, sizeof(m.zone_name), "Front");
	assert_int_equal(rules_eval(f->rules, st, &m, T0, false, &res), 0);
	assert_int_equal(res.nd, 2);
	assert_int_equal(outbox_entry_build(&res.d[0], &e), 0);
	assert_string_equal(e.target, "mqtt.home");
	assert_int_equal(strncmp(e.topic_or_url, "tb/ha/rule/a_rule_", 18), 0);
	assert_non_null(strstr(e.extra, "\"retain\":false"));
	json_t *p = json_loads(e.payload, 0, NULL);
	assert_string_equal(json_string_value(json_object_get(p, "event_type")), "fired");
	assert_string_equal(json_string_value(json_object_get(p, "rule")), "a rule");
	json_decref(p);
	store_entry_release(&e);
	rules_result_release(&res);
	rules_state_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_first_sync_sends_every_config_retained, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_sync_without_change_sends_nothing, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_forced_sync_sends_everything_again, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rename_resends_that_zone_with_the_same_unique_ids,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_removed_zone_and_rule_get_empty_configs, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(
	        test_restored_configs_of_gone_zone_and_rule_are_deleted_nothing_else, setup,
	        teardown),
	    cmocka_unit_test_setup_teardown(
	        test_restored_plate_config_keeps_the_zone_plate_entities, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_control_plane_brings_mode_and_perspective_selects,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_selects_without_commands, setup, teardown),
	    cmocka_unit_test(test_object_id_keeps_safe_names_and_hashes_others),
	    cmocka_unit_test_setup_teardown(test_bridge_state_is_sent_only_when_it_changes, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_states_again_are_the_sent_sensors_as_they_are_now,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rule_delivery_is_a_fired_event_not_retained, setup,
	                                    teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
