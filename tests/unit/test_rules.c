/* Unit tests for rules/rules and rules/schedule: every matcher, cooldown, escalation, visits,
 * state save/load, deliveries and their templates, explain reasons, time zones, and the suite
 * tests/data/rules-invalid/<case>/{config.yaml,error}. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "lib/util.h"
#include "config/yaml.h"
#include "rules/normalize.h"
#include "rules/rules.h"

static const struct rules_target_def targets[] = {
    {.kind = "mqtt", .name = "home", .topic_prefix = "tether", .qos = 1, .retain = false},
    {.kind = "webhook", .name = "slack"},
};

struct fx {
	struct ydoc *doc;
	struct rules *r;
	struct rules_state *st;
	struct rules_result res;
};

static int64_t T(const char *iso)
{
	int64_t ms = 0;
	assert_int_equal(util_parse_time(iso, &ms, NULL), 0);
	return ms;
}

static uint64_t F(const char *name)
{
	int i = msg_flag_index(name);
	assert_true(i >= 0);
	return UINT64_C(1) << i;
}

/* Compiles yaml into f; fails the test on any error (printing them). */
static void fx_load(struct fx *f, const char *yaml)
{
	struct cfg_errors errs = {0};
	memset(f, 0, sizeof(*f));
	f->doc = ydoc_load_string(yaml, strlen(yaml), "t.yaml", &errs);
	assert_non_null(f->doc);
	f->r = rules_compile(f->doc->root, targets, 2, &errs);
	if (errs.n)
		cfg_errors_print(&errs, stderr);
	assert_int_equal(errs.n, 0);
	assert_non_null(f->r);
	f->st = rules_state_new();
	assert_non_null(f->st);
}

static void fx_free(struct fx *f)
{
	rules_result_release(&f->res);
	rules_state_free(f->st);
	rules_free(f->r);
	ydoc_free(f->doc);
}

/* The errors of compiling yaml, one "LINE:COL: text" per line, into out. */
static void compile_errors(const char *yaml, char *out, size_t outsz)
{
	struct cfg_errors errs = {0};
	struct ydoc *d = ydoc_load_string(yaml, strlen(yaml), "t.yaml", &errs);
	assert_non_null(d);
	assert_int_equal(errs.n, 0);
	struct rules *r = rules_compile(d->root, targets, 2, &errs);
	assert_null(r);
	out[0] = '\0';
	for (size_t i = 0; i < errs.n; i++) {
		size_t l = strlen(out);
		snprintf(out + l, outsz - l, "%d:%d: %s\n", errs.v[i].line, errs.v[i].column,
		         errs.v[i].text);
	}
	cfg_errors_release(&errs);
	ydoc_free(d);
}

static struct message event_msg(const char *zone, const char *severity, uint64_t flags,
                                const char *at)
{
	struct message m;
	memset(&m, 0, sizeof(m));
	m.kind = MSG_EVENT;
	m.phase = MSG_PHASE_NEW;
	snprintf(m.source_id, sizeof(m.source_id), "e1");
	snprintf(m.zone_id, sizeof(m.zone_id), "z1");
	snprintf(m.zone_name, sizeof(m.zone_name), "%s", zone);
	snprintf(m.location_id, sizeof(m.location_id), "loc1");
	snprintf(m.severity, sizeof(m.severity), "%s", severity);
	snprintf(m.occurred_at, sizeof(m.occurred_at), "%s", at);
	m.flags = flags;
	m.occurred_ms = T(at);
	m.ended_ms = -1;
	m.duration_s = -1;
	return m;
}

static struct message plate_msg(const char *plate, const char *country, const char *at)
{
	struct message m = event_msg("Gate", "", 0, at);
	m.kind = MSG_PLATE;
	snprintf(m.source_id, sizeof(m.source_id), "r-%s-%lld", plate, (long long)m.occurred_ms);
	snprintf(m.plate_number, sizeof(m.plate_number), "%s", plate);
	snprintf(m.plate_normalized, sizeof(m.plate_normalized), "%s", plate);
	snprintf(m.country, sizeof(m.country), "%s", country);
	return m;
}

/* Evaluates m at now (or at its own time when now is 0); returns the delivery count. */
static size_t run(struct fx *f, const struct message *m, int64_t now)
{
	rules_result_reset(&f->res);
	assert_int_equal(rules_eval(f->r, f->st, m, now ? now : m->occurred_ms, true, &f->res), 0);
	return f->res.nd;
}

/* Reason of the trace for rule name after the last run. */
static const char *reason(struct fx *f, const char *name)
{
	for (size_t i = 0; i < f->res.nt; i++)
		if (strcmp(f->res.t[i].rule, name) == 0)
			return f->res.t[i].reason;
	return "(not tried)";
}

#define AT "2026-11-26T12:00:00Z" /* a Thursday */
#define TO "to: [{mqtt: home}]"

static void test_kind_event_plate_any(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n"
	            "  - {name: ev, when: {kind: event}, " TO "}\n"
	            "  - {name: pl, when: {kind: plate}, " TO "}\n"
	            "  - {name: an, " TO "}\n");
	struct message e = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &e, 0), 2);
	assert_string_equal(f.res.d[0].rule, "ev");
	assert_string_equal(f.res.d[1].rule, "an");
	assert_string_equal(reason(&f, "pl"), "kind: plate");
	struct message p = plate_msg("AB12CDE", "GBR", AT);
	assert_int_equal(run(&f, &p, 0), 2);
	assert_string_equal(f.res.d[0].rule, "pl");
	assert_string_equal(reason(&f, "ev"), "kind: event");
	fx_free(&f);
}

static void test_phase_string_or_list(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n"
	            "  - {name: one, when: {phase: new}, " TO "}\n"
	            "  - {name: two, when: {phase: [update, complete]}, " TO "}\n");
	struct message m = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &m, 0), 1);
	assert_string_equal(reason(&f, "two"), "phase: new not in [update,complete]");
	m.phase = MSG_PHASE_UPDATE;
	assert_int_equal(run(&f, &m, 0), 1);
	assert_string_equal(f.res.d[0].rule, "two");
	assert_string_equal(reason(&f, "one"), "phase: update not in [new]");
	fx_free(&f);
}

static void test_zones_glob_on_name_or_exact_id(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n"
	            "  - {name: g, when: {zones: [\"Front*\", \"z9\"]}, " TO "}\n");
	struct message m = event_msg("Front Door", "high", 0, AT);
	assert_int_equal(run(&f, &m, 0), 1);
	m = event_msg("Back Door", "high", 0, AT);
	assert_int_equal(run(&f, &m, 0), 0);
	assert_string_equal(reason(&f, "g"), "zones: 'Back Door' matches none of [Front*,z9]");
	snprintf(m.zone_id, sizeof(m.zone_id), "z9");
	assert_int_equal(run(&f, &m, 0), 1);
	fx_free(&f);
}

static void test_locations(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: l, when: {locations: [loc2, loc3]}, " TO "}\n");
	struct message m = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &m, 0), 0);
	assert_string_equal(reason(&f, "l"), "locations: 'loc1' not in [loc2,loc3]");
	snprintf(m.location_id, sizeof(m.location_id), "loc3");
	assert_int_equal(run(&f, &m, 0), 1);
	fx_free(&f);
}

static void test_flags_any_all_none(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n"
	            "  - {name: any, when: {flags_any: [intrusion, tripwire]}, " TO "}\n"
	            "  - {name: all, when: {flags_all: [motion, face]}, " TO "}\n"
	            "  - {name: none, when: {flags_none: [video_loss]}, " TO "}\n");
	struct message m = event_msg("Front", "high", F("motion") | F("video_loss"), AT);
	assert_int_equal(run(&f, &m, 0), 0);
	assert_string_equal(reason(&f, "any"), "flags_any: none of intrusion,tripwire");
	assert_string_equal(reason(&f, "all"), "flags_all: missing face");
	assert_string_equal(reason(&f, "none"), "flags_none: has video_loss");
	m.flags = F("tripwire") | F("motion") | F("face");
	assert_int_equal(run(&f, &m, 0), 3);
	fx_free(&f);
}

static void test_severity_list(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: s, when: {severity: [high, critical]}, " TO "}\n");
	struct message m = event_msg("Front", "normal", 0, AT);
	assert_int_equal(run(&f, &m, 0), 0);
	assert_string_equal(reason(&f, "s"), "severity: normal not in [high,critical]");
	m = event_msg("Front", "critical", 0, AT);
	assert_int_equal(run(&f, &m, 0), 1);
	fx_free(&f);
}

static void test_min_severity_custom_order_and_unknown(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "severity_order: [info, warn, alarm]\n"
	            "rules:\n  - {name: s, when: {min_severity: warn}, " TO "}\n");
	struct message m = event_msg("Front", "info", 0, AT);
	assert_int_equal(run(&f, &m, 0), 0);
	assert_string_equal(reason(&f, "s"), "min_severity: info below warn");
	m = event_msg("Front", "alarm", 0, AT);
	assert_int_equal(run(&f, &m, 0), 1);
	m = event_msg("Front", "high", 0, AT); /* not in this order */
	assert_int_equal(run(&f, &m, 0), 0);
	assert_string_equal(reason(&f, "s"), "min_severity: 'high' not in severity_order");
	fx_free(&f);
}

static void test_min_severity_default_order(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: s, when: {min_severity: high}, " TO "}\n");
	struct message m = event_msg("Front", "normal", 0, AT);
	assert_int_equal(run(&f, &m, 0), 0);
	assert_string_equal(reason(&f, "s"), "min_severity: normal below high");
	m = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &m, 0), 1);
	fx_free(&f);
}

static void test_schedule_crosses_midnight_day_is_start_day(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: n, when: {schedule: {days: [fri], from: \"22:00\", to: "
	            "\"06:00\"}}, " TO "}\n");
	/* 2026-11-27 is a Friday */
	struct message m = event_msg("F", "high", 0, "2026-11-28T03:00:00Z"); /* Sat 03:00 */
	assert_int_equal(run(&f, &m, 0), 1);
	m = event_msg("F", "high", 0, "2026-11-27T22:00:00Z"); /* Fri 22:00 */
	assert_int_equal(run(&f, &m, 0), 1);
	m = event_msg("F", "high", 0, "2026-11-27T03:00:00Z"); /* Fri 03:00: Thursday's night */
	assert_int_equal(run(&f, &m, 0), 0);
	assert_string_equal(reason(&f, "n"), "schedule: Fri 03:00 UTC outside windows");
	m = event_msg("F", "high", 0, "2026-11-28T06:00:00Z"); /* Sat 06:00: end is exclusive */
	assert_int_equal(run(&f, &m, 0), 0);
	m = event_msg("F", "high", 0, "2026-11-28T22:30:00Z"); /* Sat 22:30 */
	assert_int_equal(run(&f, &m, 0), 0);
	fx_free(&f);
}

static void test_schedule_several_windows(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - name: w\n    when:\n      schedule:\n"
	            "        - {days: [sat, sun]}\n"
	            "        - {days: [mon, tue, wed, thu, fri], from: \"18:00\", to: \"24:00\"}\n"
	            "    " TO "\n");
	struct message m = event_msg("F", "high", 0, "2026-11-29T09:00:00Z"); /* Sun */
	assert_int_equal(run(&f, &m, 0), 1);
	m = event_msg("F", "high", 0, "2026-11-26T09:00:00Z"); /* Thu morning */
	assert_int_equal(run(&f, &m, 0), 0);
	m = event_msg("F", "high", 0, "2026-11-26T23:59:00Z"); /* Thu late */
	assert_int_equal(run(&f, &m, 0), 1);
	fx_free(&f);
}

static void test_schedule_timezone(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: ny, when: {schedule: {from: \"09:00\", to: \"17:00\", "
	            "timezone: America/New_York}}, " TO "}\n");
	/* 14:00 UTC is 09:00 EST in November */
	struct message m = event_msg("F", "high", 0, "2026-11-26T14:00:00Z");
	assert_int_equal(run(&f, &m, 0), 1);
	m = event_msg("F", "high", 0, "2026-11-26T13:59:00Z");
	assert_int_equal(run(&f, &m, 0), 0);
	assert_string_equal(reason(&f, "ny"),
	                    "schedule: Thu 08:59 America/New_York outside windows");
	/* in July (EDT) 13:00 UTC is already 09:00 */
	m = event_msg("F", "high", 0, "2026-07-09T13:00:00Z");
	assert_int_equal(run(&f, &m, 0), 1);
	fx_free(&f);
}

static void test_schedule_dst_change_days_london(void **state)
{
	(void)state;
	struct fx f;
	/* Saturday-night window across the spring change (2026-03-29 01:00 UTC) and the
	 * autumn change (2026-10-25 01:00 UTC). */
	fx_load(&f, "rules:\n  - {name: d, when: {schedule: {days: [sat], from: \"23:00\", to: "
	            "\"03:00\", timezone: Europe/London}}, " TO "}\n");
	struct message m = event_msg("F", "high", 0, "2026-03-29T00:59:00Z"); /* 00:59 GMT */
	assert_int_equal(run(&f, &m, 0), 1);
	m = event_msg("F", "high", 0, "2026-03-29T01:30:00Z"); /* 02:30 BST */
	assert_int_equal(run(&f, &m, 0), 1);
	m = event_msg("F", "high", 0, "2026-03-29T02:00:00Z"); /* 03:00 BST: over */
	assert_int_equal(run(&f, &m, 0), 0);
	assert_string_equal(reason(&f, "d"), "schedule: Sun 03:00 Europe/London outside windows");
	m = event_msg("F", "high", 0, "2026-10-24T22:00:00Z"); /* 23:00 BST Sat */
	assert_int_equal(run(&f, &m, 0), 1);
	m = event_msg("F", "high", 0, "2026-10-24T21:59:00Z"); /* 22:59 BST */
	assert_int_equal(run(&f, &m, 0), 0);
	m = event_msg("F", "high", 0, "2026-10-25T02:59:00Z"); /* 02:59 GMT: still inside */
	assert_int_equal(run(&f, &m, 0), 1);
	m = event_msg("F", "high", 0, "2026-10-25T03:00:00Z"); /* 03:00 GMT */
	assert_int_equal(run(&f, &m, 0), 0);
	fx_free(&f);
}

static void test_watchlists_match_and_fill_message(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "watchlists:\n"
	            "  stolen: {plates: [\"AB12CDE,red van,GBR\", \"XY99*\"], fuzzy: 1}\n"
	            "rules:\n  - {name: w, when: {watchlists: [stolen]}, to: [{mqtt: home, "
	            "topic: \"t/{{plate.watchlist}}/{{plate.label}}\"}]}\n");
	struct message m = plate_msg("AB12CDF", "GBR", AT); /* one edit away */
	assert_int_equal(run(&f, &m, 0), 1);
	assert_true(f.res.d[0].msg.watch_matched);
	assert_string_equal(f.res.d[0].msg.watchlist, "stolen");
	assert_string_equal(f.res.d[0].msg.watch_label, "red van");
	assert_int_equal(f.res.d[0].msg.watch_distance, 1);
	assert_string_equal(f.res.d[0].topic, "t/stolen/red van");
	m = plate_msg("XY99ZZZ", "", AT);
	assert_int_equal(run(&f, &m, 0), 1);
	m = plate_msg("QQ11QQQ", "GBR", AT);
	assert_int_equal(run(&f, &m, 0), 0);
	assert_string_equal(reason(&f, "w"), "watchlists: no match");
	assert_false(rules_watchlists_changed(f.r));
	fx_free(&f);
}

/* A name at the limit reaches the message whole (msg.watchlist used to hold 63 bytes). */
static void test_longest_names_are_not_cut(void **state)
{
	(void)state;
	struct fx f;
	char name[CFG_NAME_MAX + 1], yaml[1024];
	memset(name, 'w', CFG_NAME_MAX);
	name[CFG_NAME_MAX] = '\0';
	snprintf(yaml, sizeof(yaml),
	         "watchlists:\n  %s: {plates: [AB12CDE]}\n"
	         "rules:\n  - {name: %s, when: {watchlists: [%s]}, to: [{mqtt: home}]}\n",
	         name, name, name);
	fx_load(&f, yaml);
	struct message m = plate_msg("AB12CDE", "", AT);
	assert_int_equal(run(&f, &m, 0), 1);
	assert_string_equal(f.res.d[0].msg.watchlist, name);
	assert_string_equal(f.res.d[0].msg.rule, name);
	assert_string_equal(f.res.d[0].rule, name);
	fx_free(&f);
}

static void test_watchlist_file_relative_to_config_and_changed(void **state)
{
	(void)state;
	char dir[] = "/tmp/tb-rules-XXXXXX", cfg[256], list[256];
	struct cfg_errors errs = {0};
	assert_non_null(mkdtemp(dir));
	snprintf(cfg, sizeof(cfg), "%s/config.yaml", dir);
	snprintf(list, sizeof(list), "%s/stolen.txt", dir);
	FILE *fp = fopen(list, "w");
	assert_non_null(fp);
	fputs("# stolen\nAB12CDE,red van,GBR\n", fp);
	fclose(fp);
	fp = fopen(cfg, "w");
	assert_non_null(fp);
	fputs("watchlists:\n  stolen: {file: stolen.txt}\n"
	      "rules:\n  - {name: w, when: {watchlists: [stolen]}, " TO "}\n",
	      fp);
	fclose(fp);
	struct fx f;
	memset(&f, 0, sizeof(f));
	f.doc = ydoc_load(cfg, &errs);
	assert_non_null(f.doc);
	f.r = rules_compile(f.doc->root, targets, 2, &errs);
	assert_int_equal(errs.n, 0);
	f.st = rules_state_new();
	struct message m = plate_msg("AB12CDE", "GBR", AT);
	assert_int_equal(run(&f, &m, 0), 1);
	assert_string_equal(f.res.d[0].msg.watch_label, "red van");
	assert_false(rules_watchlists_changed(f.r));
	fp = fopen(list, "a");
	assert_non_null(fp);
	fputs("XY99ZZZ\n", fp);
	fclose(fp);
	assert_true(rules_watchlists_changed(f.r));
	fx_free(&f);
	unlink(list);
	unlink(cfg);
	rmdir(dir);
}

static void test_countries(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: c, when: {countries: [gbr]}, " TO "}\n");
	struct message m = plate_msg("AB12CDE", "FRA", AT);
	assert_int_equal(run(&f, &m, 0), 0);
	assert_string_equal(reason(&f, "c"), "countries: FRA not in [GBR]");
	m = plate_msg("AB12CDE", "GBR", AT);
	assert_int_equal(run(&f, &m, 0), 1);
	fx_free(&f);
}

static void test_plates_inline(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f,
	        "rules:\n  - {name: fam, when: {plates: [\"AB12 CDE\", \"J*N-*234\"]}, " TO "}\n");
	struct message m = plate_msg("JON5234", "", AT);
	assert_int_equal(run(&f, &m, 0), 1);
	assert_string_equal(f.res.d[0].msg.watchlist, "fam");
	assert_string_equal(f.res.d[0].msg.watch_entry, "J*N-*234");
	m = plate_msg("AB12CDE", "", AT);
	assert_int_equal(run(&f, &m, 0), 1);
	m = plate_msg("ZZ12CDE", "", AT);
	assert_int_equal(run(&f, &m, 0), 0);
	struct message e = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &e, 0), 0);
	assert_string_equal(reason(&f, "fam"), "kind: plate");
	fx_free(&f);
}

static void test_max_age(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: a, when: {max_age: 10m}, " TO "}\n");
	struct message m = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &m, T(AT) + 9 * 60000), 1);
	assert_int_equal(run(&f, &m, T(AT) + 25 * 60000), 0);
	assert_string_equal(reason(&f, "a"), "max_age: 25m old");
	fx_free(&f);
}

static void test_cooldown_per_zone_and_expiry(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: c, cooldown: 5m, " TO "}\n");
	int64_t t0 = T(AT);
	struct message m = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &m, t0), 1);
	snprintf(m.source_id, sizeof(m.source_id), "e2");
	assert_int_equal(run(&f, &m, t0 + 2 * 60000), 0);
	assert_string_equal(reason(&f, "c"), "cooldown: 3m left");
	struct message other = m; /* another zone has its own cooldown */
	snprintf(other.zone_id, sizeof(other.zone_id), "z2");
	assert_int_equal(run(&f, &other, t0 + 2 * 60000), 1);
	assert_int_equal(run(&f, &m, t0 + 5 * 60000), 1); /* expired */
	assert_int_equal(run(&f, &m, t0 + 6 * 60000), 0); /* counted from the last delivery */
	fx_free(&f);
}

static void test_cooldown_only_counts_matches(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: c, cooldown: 5m, when: {severity: [high]}, " TO "}\n");
	int64_t t0 = T(AT);
	struct message low = event_msg("Front", "low", 0, AT);
	assert_int_equal(run(&f, &low, t0), 0);
	struct message m = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &m, t0 + 1000), 1);
	fx_free(&f);
}

static void test_cooldown_key_template(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: c, cooldown: 10m, cooldown_key: \"{{location_id}}\", " TO
	            "}\n");
	int64_t t0 = T(AT);
	struct message m = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &m, t0), 1);
	struct message z2 = m; /* other zone, same location: same key */
	snprintf(z2.zone_id, sizeof(z2.zone_id), "z2");
	snprintf(z2.source_id, sizeof(z2.source_id), "e9");
	assert_int_equal(run(&f, &z2, t0 + 1000), 0);
	snprintf(z2.location_id, sizeof(z2.location_id), "loc2");
	assert_int_equal(run(&f, &z2, t0 + 2000), 1);
	fx_free(&f);
}

static void test_cooldown_passes_escalation_higher_severity(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: c, cooldown: 5m, " TO "}\n");
	int64_t t0 = T(AT);
	struct message m = event_msg("Front", "normal", 0, AT);
	assert_int_equal(run(&f, &m, t0), 1);
	m.phase = MSG_PHASE_UPDATE;
	assert_int_equal(run(&f, &m, t0 + 1000), 0); /* same severity */
	snprintf(m.severity, sizeof(m.severity), "high");
	assert_int_equal(run(&f, &m, t0 + 2000), 1);
	snprintf(m.severity, sizeof(m.severity), "medium");
	assert_int_equal(run(&f, &m, t0 + 3000), 0); /* lower than the last delivered */
	struct message other = event_msg("Front", "critical", 0, AT);
	snprintf(other.source_id, sizeof(other.source_id), "e2"); /* another event: no pass */
	assert_int_equal(run(&f, &other, t0 + 4000), 0);
	fx_free(&f);
}

static void test_cooldown_passes_escalation_new_flag(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: c, cooldown: 5m, " TO "}\n");
	int64_t t0 = T(AT);
	struct message m = event_msg("Front", "high", F("motion"), AT);
	assert_int_equal(run(&f, &m, t0), 1);
	assert_int_equal(run(&f, &m, t0 + 1000), 0);
	m.flags |= F("intrusion");
	assert_int_equal(run(&f, &m, t0 + 2000), 1);
	m.flags = F("intrusion"); /* nothing new */
	assert_int_equal(run(&f, &m, t0 + 3000), 0);
	fx_free(&f);
}

static void test_visit_one_alert_per_visit(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: v, visit: 10m, when: {kind: plate}, " TO "}\n");
	int64_t t0 = T(AT);
	struct message m = plate_msg("AB12CDE", "GBR", AT);
	assert_int_equal(run(&f, &m, 0), 1);
	for (int i = 1; i <= 5; i++) { /* a read every 8 minutes keeps the visit going */
		m.occurred_ms = t0 + i * 8 * 60000;
		assert_int_equal(run(&f, &m, 0), 0);
		assert_string_equal(reason(&f, "v"), "visit: same visit");
	}
	struct message other = m; /* another zone is another visit */
	snprintf(other.zone_id, sizeof(other.zone_id), "z2");
	assert_int_equal(run(&f, &other, 0), 1);
	m.occurred_ms = t0 + 40 * 60000 + 10 * 60000 + 1; /* gap longer than visit */
	assert_int_equal(run(&f, &m, 0), 1);
	fx_free(&f);
}

static void test_stop_ends_evaluation(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n"
	            "  - {name: a, when: {severity: [low]}, stop: true, " TO "}\n"
	            "  - {name: b, stop: true, " TO "}\n"
	            "  - {name: c, " TO "}\n");
	struct message m = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &m, 0), 1);
	assert_string_equal(f.res.d[0].rule, "b");
	assert_int_equal(f.res.nt, 2); /* c was not tried */
	assert_string_equal(reason(&f, "c"), "(not tried)");
	fx_free(&f);
}

static void test_multiple_rules_and_targets_deliver(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n"
	            "  - {name: a, to: [{mqtt: home}, {webhook: slack, text: \"{{rule}}: "
	            "{{zone.name}}\"}]}\n"
	            "  - {name: b, " TO "}\n");
	struct message m = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &m, 0), 3);
	assert_string_equal(f.res.d[0].target_kind, "mqtt");
	assert_string_equal(f.res.d[1].target_kind, "webhook");
	assert_string_equal(f.res.d[1].target, "slack");
	assert_null(f.res.d[1].topic);
	assert_string_equal(f.res.d[1].text, "a: Front");
	assert_string_equal(f.res.d[1].msg.rule, "a");
	assert_string_equal(f.res.d[2].msg.rule, "b");
	assert_string_equal(f.res.t[0].reason, "");
	assert_true(f.res.t[0].matched);
	fx_free(&f);
}

static void test_default_topic_qos_retain(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n"
	            "  - {name: a, to: [{mqtt: home}, {mqtt: home, qos: 2, retain: true}]}\n");
	struct message m = event_msg("Front Door", "high", 0, AT);
	assert_int_equal(run(&f, &m, 0), 2);
	assert_string_equal(f.res.d[0].topic, "tether/event/Front Door");
	assert_int_equal(f.res.d[0].qos, 1);
	assert_false(f.res.d[0].retain);
	assert_int_equal(f.res.d[1].qos, 2);
	assert_true(f.res.d[1].retain);
	struct message p = plate_msg("AB12CDE", "GBR", AT);
	assert_int_equal(run(&f, &p, 0), 2);
	assert_string_equal(f.res.d[0].topic, "tether/plate/Gate");
	fx_free(&f);
}

static void test_templates_escape_zone_in_topic_and_body(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n"
	            "  - name: t\n    to:\n"
	            "      - {mqtt: home, topic: \"alerts/{{zone.name}}\", body: '{\"z\": "
	            "\"{{zone.name}}\"}'}\n"
	            "      - {mqtt: home}\n");
	struct message m = event_msg("a/b+#\"c", "high", 0, AT);
	assert_int_equal(run(&f, &m, 0), 2);
	assert_string_equal(f.res.d[0].topic, "alerts/a_b__\"c");
	assert_string_equal(f.res.d[0].body, "{\"z\": \"a/b+#\\\"c\"}");
	assert_string_equal(f.res.d[1].topic, "tether/event/a_b__\"c");
	assert_null(f.res.d[1].body);
	fx_free(&f);
}

static void test_state_survives_reload(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: c, cooldown: 5m, " TO "}\n");
	int64_t t0 = T(AT);
	struct message m = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &m, t0), 1);
	struct fx g;
	fx_load(&g, "rules:\n  - {name: x, " TO "}\n  - {name: c, cooldown: 5m, " TO "}\n");
	rules_state_free(g.st);
	g.st = f.st; /* the new rules, the old memory */
	f.st = NULL;
	assert_int_equal(run(&g, &m, t0 + 1000), 1);
	assert_string_equal(g.res.d[0].rule, "x");
	assert_string_equal(reason(&g, "c"), "cooldown: 4m59s left");
	fx_free(&g);
	fx_free(&f);
}

static void test_state_prunes_expired_entries(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "rules:\n  - {name: c, cooldown: 1s, " TO "}\n");
	int64_t t0 = T(AT);
	struct message m = event_msg("Front", "high", 0, AT);
	for (int i = 0; i < 5000; i++) {
		snprintf(m.zone_id, sizeof(m.zone_id), "z%d", i);
		run(&f, &m, t0 + i * 10);
	}
	assert_true(rules_state_size(f.st) < 2100);
	fx_free(&f);
}

/* What rules_state_save handed out: the first SAVED_MAX entries, and how many in all. */
#define SAVED_MAX 8
struct saved {
	char key[SAVED_MAX][128];
	char value[SAVED_MAX][256];
	int64_t expires[SAVED_MAX];
	size_t n;
	int rc; /* what put returns */
};

static int save_put(void *arg, const char *key, const char *value, int64_t expires_ms)
{
	struct saved *sv = arg;

	if (sv->rc != 0)
		return sv->rc;
	if (sv->n < SAVED_MAX) {
		snprintf(sv->key[sv->n], sizeof(sv->key[0]), "%s", key);
		snprintf(sv->value[sv->n], sizeof(sv->value[0]), "%s", value);
		sv->expires[sv->n] = expires_ms;
	}
	sv->n++;
	return 0;
}

/* Saves f's state into sv (emptied first); returns the number of entries put. */
static size_t save(struct fx *f, struct saved *sv)
{
	memset(sv, 0, sizeof(*sv));
	assert_int_equal(rules_state_save(f->st, save_put, sv), 0);
	return sv->n;
}

/* A restart: f gets a fresh state and loads sv into it at now. */
static void restart(struct fx *f, const struct saved *sv, int64_t now)
{
	rules_state_free(f->st);
	f->st = rules_state_new();
	assert_non_null(f->st);
	for (size_t i = 0; i < sv->n && i < SAVED_MAX; i++)
		assert_int_equal(rules_state_load(f->st, sv->key[i], sv->value[i], now), 0);
}

static void test_state_save_load_keeps_cooldown_and_escalation(void **state)
{
	(void)state;
	struct fx f;
	struct saved sv;
	fx_load(&f, "rules:\n  - {name: c, cooldown: 5m, " TO "}\n");
	int64_t t0 = T(AT);
	struct message m = event_msg("Front", "normal", F("motion"), AT);
	assert_int_equal(run(&f, &m, t0), 1);
	assert_int_equal(save(&f, &sv), 1);
	assert_string_equal(sv.key[0], "C:c|z1");
	assert_int_equal(sv.expires[0], t0 + 5 * 60000);
	assert_non_null(strstr(sv.value[0], "\"source_id\":\"e1\""));
	restart(&f, &sv, t0 + 1000);
	assert_int_equal(rules_state_size(f.st), 1);
	struct message again = m; /* another event in the same zone: held back */
	snprintf(again.source_id, sizeof(again.source_id), "e2");
	assert_int_equal(run(&f, &again, t0 + 2 * 60000), 0);
	assert_string_equal(reason(&f, "c"), "cooldown: 3m left");
	m.phase = MSG_PHASE_UPDATE; /* the same event, nothing new: held back */
	assert_int_equal(run(&f, &m, t0 + 2 * 60000), 0);
	snprintf(m.severity, sizeof(m.severity), "high"); /* escalation passes */
	assert_int_equal(run(&f, &m, t0 + 3 * 60000), 1);
	m.flags |= F("intrusion"); /* and so does a new flag, after a second restart */
	assert_int_equal(save(&f, &sv), 1);
	restart(&f, &sv, t0 + 3 * 60000 + 1000);
	assert_int_equal(run(&f, &m, t0 + 4 * 60000), 1);
	fx_free(&f);
}

static void test_state_save_load_keeps_visit(void **state)
{
	(void)state;
	struct fx f;
	struct saved sv;
	fx_load(&f, "rules:\n  - {name: v, visit: 10m, when: {kind: plate}, " TO "}\n");
	int64_t t0 = T(AT);
	struct message m = plate_msg("AB12CDE", "GBR", AT);
	assert_int_equal(run(&f, &m, 0), 1);
	assert_int_equal(save(&f, &sv), 1);
	assert_string_equal(sv.key[0], "V:v|AB12CDE|z1");
	restart(&f, &sv, t0 + 1000);
	m.occurred_ms = t0 + 8 * 60000;
	assert_int_equal(run(&f, &m, 0), 0);
	assert_string_equal(reason(&f, "v"), "visit: same visit");
	assert_int_equal(save(&f, &sv), 1); /* the visit goes on: its last read moved */
	restart(&f, &sv, t0 + 9 * 60000);
	m.occurred_ms = t0 + 16 * 60000;
	assert_int_equal(run(&f, &m, 0), 0);
	m.occurred_ms = t0 + 27 * 60000; /* gap longer than visit: a new one */
	assert_int_equal(run(&f, &m, 0), 1);
	fx_free(&f);
}

/* Issue 13's soak, V1: reads 12 s and 18 s apart are one visit under `visit: 20s` even when
 * the third is evaluated 40 s after the second occurred, across a restart. */
static void test_visit_late_read_of_same_visit_does_not_alert_again(void **state)
{
	(void)state;
	struct fx f;
	struct saved sv;
	size_t alerts = 0;
	fx_load(&f, "rules:\n  - {name: v, visit: 20s, when: {kind: plate}, " TO "}\n");
	rules_state_set_late(f.st, 15 * 60000); /* the default poll lookback */
	int64_t t0 = T(AT);
	struct message m = plate_msg("SK70ABC", "GBR", AT);
	alerts += run(&f, &m, 0);
	m.occurred_ms = t0 + 12000;
	alerts += run(&f, &m, 0);
	save(&f, &sv);
	restart(&f, &sv, t0 + 12000 + 40000); /* the bridge was down, then catches up */
	rules_state_set_late(f.st, 15 * 60000);
	m.occurred_ms = t0 + 12000 + 18000;
	alerts += run(&f, &m, t0 + 12000 + 40000);
	assert_string_equal(reason(&f, "v"), "visit: same visit");
	assert_int_equal(alerts, 1);
	fx_free(&f);
}

/* The converse: 25 s after the previous read is a new visit, evaluated late or not. */
static void test_visit_late_read_after_gap_alerts_again(void **state)
{
	(void)state;
	struct fx f;
	struct saved sv;
	fx_load(&f, "rules:\n  - {name: v, visit: 20s, when: {kind: plate}, " TO "}\n");
	rules_state_set_late(f.st, 15 * 60000);
	int64_t t0 = T(AT);
	struct message m = plate_msg("SK70ABC", "GBR", AT);
	assert_int_equal(run(&f, &m, 0), 1);
	save(&f, &sv);
	restart(&f, &sv, t0 + 40000);
	rules_state_set_late(f.st, 15 * 60000);
	assert_int_equal(rules_state_size(f.st), 1); /* remembered, yet over */
	m.occurred_ms = t0 + 25000;
	assert_int_equal(run(&f, &m, t0 + 40000), 1);
	fx_free(&f);
}

static void test_state_load_skips_expired_and_unparsable(void **state)
{
	(void)state;
	struct fx f;
	struct saved sv;
	fx_load(&f, "rules:\n  - {name: c, cooldown: 5m, " TO "}\n");
	int64_t t0 = T(AT);
	struct message m = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &m, t0), 1);
	assert_int_equal(save(&f, &sv), 1);
	restart(&f, &sv, t0 + 5 * 60000); /* expired at load */
	assert_int_equal(rules_state_size(f.st), 0);
	snprintf(m.source_id, sizeof(m.source_id), "e2");
	assert_int_equal(run(&f, &m, t0 + 5 * 60000), 1);
	const char *bad[][2] = {
	    {"C:c|z1", "not json"},
	    {"C:c|z1", "{\"expires_ms\": 99999999999999}"}, /* no last_ms */
	    {"C:c|z1", "{\"last_ms\": \"1\", \"expires_ms\": 99999999999999}"},
	    {"X:c|z1", "{\"last_ms\": 1, \"expires_ms\": 99999999999999}"},
	    {"C:c", "{\"last_ms\": 1, \"expires_ms\": 99999999999999}"},
	    {"V:v|z1", "{\"last_ms\": 1, \"expires_ms\": 99999999999999}"},
	    {"C:c|z%1", "{\"last_ms\": 1, \"expires_ms\": 99999999999999}"},
	    {"C:c|z%00", "{\"last_ms\": 1, \"expires_ms\": 99999999999999}"},
	};
	rules_state_free(f.st);
	f.st = rules_state_new();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(rules_state_load(f.st, bad[i][0], bad[i][1], t0), 0);
	char *huge = malloc(200000); /* a key longer than any the state makes */
	assert_non_null(huge);
	memset(huge, 'z', 199999);
	memcpy(huge, "C:c|", 4);
	huge[199999] = '\0';
	assert_int_equal(rules_state_load(f.st, huge, bad[3][1], t0), 0);
	free(huge);
	assert_int_equal(rules_state_size(f.st), 0);
	fx_free(&f);
}

static void test_state_save_puts_only_changed_entries(void **state)
{
	(void)state;
	struct fx f;
	struct saved sv;
	fx_load(&f, "rules:\n  - {name: c, cooldown: 5m, " TO "}\n");
	int64_t t0 = T(AT);
	struct message m = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &m, t0), 1);
	struct message z2 = m;
	snprintf(z2.zone_id, sizeof(z2.zone_id), "z2");
	assert_int_equal(run(&f, &z2, t0), 1);
	assert_int_equal(save(&f, &sv), 2);
	assert_int_equal(save(&f, &sv), 0);
	assert_int_equal(run(&f, &m, t0 + 1000), 0); /* held back: nothing changed */
	assert_int_equal(save(&f, &sv), 0);
	assert_int_equal(run(&f, &m, t0 + 5 * 60000), 1);
	memset(&sv, 0, sizeof(sv));
	sv.rc = 5; /* a failed put keeps the marks for the next save */
	assert_int_equal(rules_state_save(f.st, save_put, &sv), 5);
	assert_int_equal(save(&f, &sv), 1);
	assert_string_equal(sv.key[0], "C:c|z1");
	rules_state_mark_all(f.st); /* the commit of that save failed: put everything again */
	assert_int_equal(save(&f, &sv), 2);
	assert_int_equal(save(&f, &sv), 0);
	fx_free(&f);
}

static void test_state_key_escapes_separator_and_percent(void **state)
{
	(void)state;
	struct fx f;
	struct saved sv;
	fx_load(&f, "rules:\n  - {name: \"c|1\", cooldown: 10m, cooldown_key: "
	            "\"{{location_id}}\", " TO "}\n");
	int64_t t0 = T(AT);
	struct message m = event_msg("Front", "high", 0, AT);
	snprintf(m.location_id, sizeof(m.location_id), "a|b%%c\x01");
	assert_int_equal(run(&f, &m, t0), 1);
	assert_int_equal(save(&f, &sv), 1);
	assert_string_equal(sv.key[0], "C:c%7C1|a%7Cb%25c%01");
	restart(&f, &sv, t0 + 1000);
	snprintf(m.source_id, sizeof(m.source_id), "e2");
	assert_int_equal(run(&f, &m, t0 + 2000), 0); /* the same key after the round trip */
	assert_string_equal(reason(&f, "c|1"), "cooldown: 9m58s left");
	fx_free(&f);
}

static void test_state_prune_keeps_changed_entries_to_save(void **state)
{
	(void)state;
	struct fx f;
	struct saved sv;
	fx_load(&f, "rules:\n  - {name: c, cooldown: 1s, " TO "}\n");
	int64_t t0 = T(AT);
	struct message m = event_msg("Front", "high", 0, AT);
	for (int i = 0; i < 5000; i++) {
		snprintf(m.zone_id, sizeof(m.zone_id), "z%d", i);
		run(&f, &m, t0 + i * 10);
	}
	assert_true(rules_state_size(f.st) < 2100); /* pruned on the way */
	assert_int_equal(save(&f, &sv), rules_state_size(f.st));
	fx_free(&f);
}

static void test_compile_errors_have_positions(void **state)
{
	(void)state;
	char out[2048];
	compile_errors("rules:\n  - name: a\n    when: {flags_any: [intrusoin]}\n"
	               "    to: [{mqtt: hom, topic: \"x/{{zone.nme}}\"}]\n",
	               out, sizeof(out));
	assert_string_equal(out, "3:24: unknown flag 'intrusoin' (did you mean 'intrusion'?)\n"
	                         "4:17: unknown mqtt broker 'hom' (did you mean 'home'?)\n");
	compile_errors("rules:\n  - name: a\n    to: [{mqtt: home, topic: \"x/{{zone.nme}}\"}]\n",
	               out, sizeof(out));
	assert_string_equal(
	    out, "3:35: 'topic': unknown field 'zone.nme' (did you mean 'zone.name'?)\n");
	/* every bad field of one template, in column order */
	compile_errors("rules:\n  - name: a\n    to: [{mqtt: home, topic: "
	               "\"{{zone.nme}}/+/{{}}/{{flgs}}\"}]\n",
	               out, sizeof(out));
	assert_string_equal(out,
	                    "3:33: 'topic': unknown field 'zone.nme' (did you mean 'zone.name'?)\n"
	                    "3:44: 'topic': '+' is an MQTT wildcard, not allowed in a topic\n"
	                    "3:46: 'topic': empty '{{ }}'\n"
	                    "3:53: 'topic': unknown field 'flgs' (did you mean 'flags'?)\n");
}

static void test_empty_config_has_no_rules(void **state)
{
	(void)state;
	struct fx f;
	fx_load(&f, "other: 1\n");
	assert_int_equal(rules_count(f.r), 0);
	struct message m = event_msg("Front", "high", 0, AT);
	assert_int_equal(run(&f, &m, 0), 0);
	fx_free(&f);
	struct cfg_errors errs = {0}; /* an empty document has no root */
	struct rules *r = rules_compile(NULL, targets, 2, &errs);
	assert_non_null(r);
	assert_int_equal(errs.n, 0);
	assert_int_equal(rules_count(r), 0);
	assert_false(rules_watchlists_changed(r));
	rules_free(r);
}

/* ---- data-driven: tests/data/rules-invalid ---------------------------------------- */

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	if (fp == NULL)
		return NULL;
	struct buf b;
	char chunk[4096];
	size_t got;
	buf_init(&b, 0);
	while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0)
		buf_append(&b, chunk, got);
	fclose(fp);
	char *s = buf_steal(&b);
	return s ? s : strdup("");
}

/* The order check prints errors in (cfg_errors_print): file first seen, line, column. */
static const struct cfg_errors *order_errs;

static int in_file_order(const void *pa, const void *pb)
{
	const struct cfg_error *x = &order_errs->v[*(const size_t *)pa];
	const struct cfg_error *y = &order_errs->v[*(const size_t *)pb];
	size_t fx = 0, fy = 0;
	while (strcmp(order_errs->v[fx].file, x->file) != 0)
		fx++;
	while (strcmp(order_errs->v[fy].file, y->file) != 0)
		fy++;
	if (fx != fy)
		return fx < fy ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->column != y->column)
		return x->column < y->column ? -1 : 1;
	return *(const size_t *)pa < *(const size_t *)pb ? -1 : 1;
}

/* Config-file errors as "LINE:COL: text"; errors in other files (watchlist files) as
 * "BASENAME:LINE:COL: text", ":COL" left out when 0; in the order check prints them. */
static char *format_errors(const struct cfg_errors *errs, const char *cfg)
{
	struct buf b;
	size_t order[256];
	assert_true(errs->n <= 256);
	for (size_t i = 0; i < errs->n; i++)
		order[i] = i;
	order_errs = errs;
	qsort(order, errs->n, sizeof(order[0]), in_file_order);
	buf_init(&b, 0);
	for (size_t k = 0; k < errs->n; k++) {
		const struct cfg_error *e = &errs->v[order[k]];
		if (e->file && strcmp(e->file, cfg) != 0) {
			const char *base = strrchr(e->file, '/');
			buf_printf(&b, "%s:", base ? base + 1 : e->file);
		}
		if (e->column)
			buf_printf(&b, "%d:%d: %s\n", e->line, e->column, e->text);
		else
			buf_printf(&b, "%d: %s\n", e->line, e->text);
	}
	char *s = buf_steal(&b);
	return s ? s : strdup("");
}

static void test_invalid_config_cases(void **state)
{
	(void)state;
	const char *dir = "tests/data/rules-invalid";
	DIR *d = opendir(dir);
	struct dirent *de;
	int cases = 0, failed = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		char cfg[512], errf[512];
		struct cfg_errors errs = {0};
		if (de->d_name[0] == '.')
			continue;
		snprintf(cfg, sizeof(cfg), "%s/%s/config.yaml", dir, de->d_name);
		snprintf(errf, sizeof(errf), "%s/%s/error", dir, de->d_name);
		char *want = slurp(errf);
		assert_non_null(want);
		struct ydoc *doc = ydoc_load(cfg, &errs);
		struct rules *r = NULL;
		if (doc && errs.n == 0)
			r = rules_compile(doc->root, targets, 2, &errs);
		char *got = format_errors(&errs, cfg);
		if (r != NULL || strcmp(got, want) != 0) {
			fprintf(stderr, "case %s:\n--- want\n%s--- got\n%s", de->d_name, want, got);
			failed++;
		}
		cases++;
		free(got);
		free(want);
		rules_free(r);
		ydoc_free(doc);
		cfg_errors_release(&errs);
	}
	closedir(d);
	assert_true(cases >= 22);
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kind_event_plate_any),
	    cmocka_unit_test(test_phase_string_or_list),
	    cmocka_unit_test(test_zones_glob_on_name_or_exact_id),
	    cmocka_unit_test(test_locations),
	    cmocka_unit_test(test_flags_any_all_none),
	    cmocka_unit_test(test_severity_list),
	    cmocka_unit_test(test_min_severity_custom_order_and_unknown),
	    cmocka_unit_test(test_min_severity_default_order),
	    cmocka_unit_test(test_schedule_crosses_midnight_day_is_start_day),
	    cmocka_unit_test(test_schedule_several_windows),
	    cmocka_unit_test(test_schedule_timezone),
	    cmocka_unit_test(test_schedule_dst_change_days_london),
	    cmocka_unit_test(test_watchlists_match_and_fill_message),
	    cmocka_unit_test(test_longest_names_are_not_cut),
	    cmocka_unit_test(test_watchlist_file_relative_to_config_and_changed),
	    cmocka_unit_test(test_countries),
	    cmocka_unit_test(test_plates_inline),
	    cmocka_unit_test(test_max_age),
	    cmocka_unit_test(test_cooldown_per_zone_and_expiry),
	    cmocka_unit_test(test_cooldown_only_counts_matches),
	    cmocka_unit_test(test_cooldown_key_template),
	    cmocka_unit_test(test_cooldown_passes_escalation_higher_severity),
	    cmocka_unit_test(test_cooldown_passes_escalation_new_flag),
	    cmocka_unit_test(test_visit_one_alert_per_visit),
	    cmocka_unit_test(test_stop_ends_evaluation),
	    cmocka_unit_test(test_multiple_rules_and_targets_deliver),
	    cmocka_unit_test(test_default_topic_qos_retain),
	    cmocka_unit_test(test_templates_escape_zone_in_topic_and_body),
	    cmocka_unit_test(test_state_survives_reload),
	    cmocka_unit_test(test_state_prunes_expired_entries),
	    cmocka_unit_test(test_state_save_load_keeps_cooldown_and_escalation),
	    cmocka_unit_test(test_state_save_load_keeps_visit),
	    cmocka_unit_test(test_visit_late_read_of_same_visit_does_not_alert_again),
	    cmocka_unit_test(test_visit_late_read_after_gap_alerts_again),
	    cmocka_unit_test(test_state_load_skips_expired_and_unparsable),
	    cmocka_unit_test(test_state_save_puts_only_changed_entries),
	    cmocka_unit_test(test_state_key_escapes_separator_and_percent),
	    cmocka_unit_test(test_state_prune_keeps_changed_entries_to_save),
	    cmocka_unit_test(test_compile_errors_have_positions),
	    cmocka_unit_test(test_empty_config_has_no_rules),
	    cmocka_unit_test(test_invalid_config_cases),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
