/* Fuzz target: the path of one Tether document through the bridge, as the poller and
 * `explain` take it: normalise every resource of an events or lpr document, evaluate a
 * fixed rule set (compiled once from normalize_config below), render the templates and
 * build each delivery as it would be sent. Properties, not only crashes: every MQTT topic
 * is one libmosquitto publishes (mosquitto_pub_topic_check2, mosquitto_validate_utf8, not a
 * '$' system topic), every JSON payload and body parses back, texts and reasons are UTF-8,
 * and the cooldown/visit state saves, loads and saves again unchanged.
 * Zone names come from the document's JSON:API "included" zones ({"type": "zones", "id",
 * "attributes": {"name"}}); FUZZ_SKIP=topic,reason (comma-separated) skips a property while
 * a known bug in it is being fixed. */
#include <inttypes.h>

#include <jansson.h>
#include <mosquitto.h>

#include "bridge/bridge.h"
#include "bridge/outbox.h"
#include "bridge/webhook.h"
#include "tests/fuzz/fuzz_saved.h"

#define NOW_MS INT64_C(1594285200000) /* 2020-07-09T09:00:00Z, next to the seeds */
#define MAX_RESOURCES 64

/* Every template path in a topic, a JSON body and a text; every webhook format; cooldown,
 * escalation, visits, watchlists and a schedule. */
static const char normalize_config[] =
    "tether: {base_url: \"http://127.0.0.1:9\", insecure: true, access_token: x}\n"
    "state_dir: /tmp/tb-fuzz-unused\n"
    "mqtt:\n"
    "  home: {url: \"mqtt://127.0.0.1:9\", topic_prefix: site/1}\n"
    "webhooks:\n"
    "  json: {url: \"http://127.0.0.1:9/json\", secret: "
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}\n"
    "  slack: {url: \"http://127.0.0.1:9/slack\", format: slack}\n"
    "  discord: {url: \"http://127.0.0.1:9/discord\", format: discord}\n"
    "  teams: {url: \"http://127.0.0.1:9/teams\", format: teams}\n"
    "  ce: {url: \"http://127.0.0.1:9/ce\", format: cloudevents}\n"
    "watchlists:\n"
    "  stolen: {file: plates.txt, fuzzy: 2}\n"
    "  fleet: {plates: [\"KX*,pool car\", \"/^WK[0-9]{2}/,regex fleet,GBR\"]}\n"
    "rules:\n"
    "  - name: defaults\n"
    "    to: [{mqtt: home}, {webhook: json}, {webhook: slack}, {webhook: discord},\n"
    "         {webhook: teams}, {webhook: ce}]\n"
    "  - name: first-level\n"
    "    to: [{mqtt: home, topic: \"{{zone.name}}/{{plate.number}}\"}]\n"
    "  - name: every-path\n"
    "    to:\n"
    "      - mqtt: home\n"
    "        topic: \"t/{{schema}}/{{id}}/{{kind}}/{{phase}}/{{source_id}}/{{occurred_at}}/"
    "{{ended_at}}/{{duration_s}}/{{complete}}/{{severity}}/{{flags}}/{{motion}}/{{zone.id}}/"
    "{{zone.name}}/{{location_id}}/{{timeline_id}}/{{plate.number}}/{{plate.normalized}}/"
    "{{plate.country}}/{{plate.watchlist}}/{{plate.label}}/{{plate.distance}}/{{event_id}}/"
    "{{links.web}}/{{links.recording_web}}/{{backfill}}/{{rule}}\"\n"
    "        body: '{\"schema\": \"{{schema}}\", \"id\": \"{{id}}\", \"kind\": \"{{kind}}\", "
    "\"phase\": \"{{phase}}\", \"source\": \"{{source_id}}\", \"at\": \"{{occurred_at}}\", "
    "\"end\": \"{{ended_at}}\", \"d\": \"{{duration_s}}\", \"c\": \"{{complete}}\", "
    "\"sev\": \"{{severity}}\", \"flags\": \"{{flags}}\", \"motion\": \"{{motion}}\", "
    "\"zone\": \"{{zone.id}} {{zone.name}}\", \"loc\": \"{{location_id}}\", "
    "\"tl\": \"{{timeline_id}}\", \"plate\": \"{{plate.number}} {{plate.normalized}} "
    "{{plate.country}} {{plate.watchlist}} {{plate.label}} {{plate.distance}}\", "
    "\"ev\": \"{{event_id}}\", \"web\": \"{{links.web}} {{links.recording_web}}\", "
    "\"b\": \"{{backfill}}\", \"rule\": \"{{rule}}\"}'\n"
    "      - webhook: slack\n"
    "        text: \"{{severity}} {{flags}} in {{zone.name}} ({{plate.number}} "
    "{{plate.label}}) at {{occurred_at}} <{{links.web}}>\"\n"
    "      - webhook: discord\n"
    "        text: \"{{zone.name}} {{plate.label}} {{motion}} {{duration_s}}\"\n"
    "      - webhook: teams\n"
    "        text: \"{{zone.name}} {{plate.watchlist}}\"\n"
    "      - webhook: json\n"
    "        body: '{\"z\": \"{{zone.name}}\", \"l\": \"{{plate.label}}\"}'\n"
    "  - name: watched\n"
    "    when: {kind: plate, watchlists: [stolen, fleet]}\n"
    "    visit: 10m\n"
    "    to: [{mqtt: home, topic: \"w/{{plate.watchlist}}/{{plate.label}}\"}]\n"
    "  - name: escalate\n"
    "    when: {kind: event, min_severity: medium, phase: [new, update],\n"
    "           schedule: {days: [mon, fri, sat], from: \"22:00\", to: \"06:00\",\n"
    "                      timezone: Europe/London}}\n"
    "    cooldown: 5m\n"
    "    cooldown_key: \"{{location_id}}/{{zone.name}}\"\n"
    "    to: [{webhook: ce}]\n"
    "  - name: door\n"
    "    when: {kind: event, flags_any: [motion, pir, face]}\n"
    "    cooldown: 2m\n"
    "    stop: true\n"
    "    to: [{mqtt: home}]\n";
static const char normalize_plates[] = "AB12CDE,red van,GBR\nJ*N*234,\xc3\xa9t\xc3\xa9\n"
                                       "/^K[0-9]{2}ABC$/,re,FRA\nXY34ZZZ,label \xff bytes\n";

static struct config *cfg;
static struct rules *rules;
static bool skip_topic, skip_reason;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct cfg_errors errs = {0};
	const char *skip = getenv("FUZZ_SKIP");
	const char *path;

	(void)argc;
	(void)argv;
	log_init(LOG_LEVEL_ERROR, false);
	mosquitto_lib_init();
	skip_topic = skip && strstr(skip, "topic");
	skip_reason = skip && strstr(skip, "reason");
	fuzz_write_file("plates.txt", normalize_plates, sizeof(normalize_plates) - 1);
	path = fuzz_write_file("config.yaml", normalize_config, sizeof(normalize_config) - 1);
	if (bridge_load(path, &cfg, &rules, &errs) < 0) {
		cfg_errors_print(&errs, stderr);
		abort();
	}
	return 0;
}

/* Valid UTF-8 as jansson sees it (the strictness every JSON writer here applies). */
static bool is_utf8(const char *s)
{
	json_t *j = json_string(s);
	json_decref(j);
	return j != NULL;
}

static void check_json(const char *what, const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &jerr);
	FUZZ_CHECK(j != NULL, "%s does not parse back (%s): %s", what, jerr.text, text);
	json_decref(j);
}

static void check_topic(const char *topic)
{
	if (skip_topic)
		return;
	size_t len = strlen(topic);
	FUZZ_CHECK(mosquitto_pub_topic_check2(topic, len) == MOSQ_ERR_SUCCESS,
	           "libmosquitto refuses topic '%s'", topic);
	FUZZ_CHECK(len <= 65535 && mosquitto_validate_utf8(topic, (int)len) == MOSQ_ERR_SUCCESS,
	           "topic not MQTT UTF-8: '%s'", topic);
	FUZZ_CHECK(topic[0] != '$', "a system topic: '%s'", topic);
}

static void check_delivery(const struct rules_delivery *d)
{
	struct store_entry e;

	if (d->text)
		FUZZ_CHECK(is_utf8(d->text), "rule %s: text not UTF-8", d->rule);
	FUZZ_CHECK(outbox_entry_build(d, &e) == 0, "rule %s: no outbox entry", d->rule);
	check_json("the message", e.payload);
	check_json("the entry's extra", e.extra);
	if (strcmp(d->target_kind, "mqtt") == 0) {
		FUZZ_CHECK(d->topic != NULL, "rule %s: mqtt without a topic", d->rule);
		check_topic(d->topic);
		if (d->body)
			check_json("an mqtt body", d->body);
	} else {
		char *url = NULL, *body = NULL, err[256] = "";
		json_t *headers = NULL;
		const struct cfg_webhook *w = config_webhook(cfg, d->target);
		FUZZ_CHECK(w != NULL, "unknown webhook %s", d->target);
		FUZZ_CHECK(webhook_request(w, &e, NOW_MS / 1000, &url, &body, &headers, err,
		                           sizeof(err)) == 0,
		           "rule %s, webhook %s: %s", d->rule, d->target, err);
		check_json("a webhook body", body);
		free(url);
		free(body);
		json_decref(headers);
	}
	store_entry_release(&e);
}

/* ---- state round trip ---- */

static void check_state(struct rules_state *st, int64_t now_ms)
{
	struct rules_state *again = rules_state_new();
	struct fuzz_saved a = {0}, b = {0};

	if (again == NULL)
		return;
	fuzz_saved_all(st, &a);
	for (size_t i = 0; i < a.n; i++) {
		char *copy = strdup(a.v[i]), *v, *x;
		if (copy == NULL)
			break;
		v = strchr(copy, '\t');
		x = strrchr(copy, '\t');
		*v++ = '\0';
		*x = '\0';
		FUZZ_CHECK(rules_state_load(again, copy, v, now_ms) == 0, "state load failed");
		free(copy);
	}
	fuzz_saved_all(again, &b);
	/* entries that expire by now_ms are rightly dropped on load: compare only live ones */
	size_t j = 0;
	for (size_t i = 0; i < a.n; i++) {
		int64_t exp = strtoll(strrchr(a.v[i], '\t') + 1, NULL, 10);
		if (exp <= now_ms)
			continue;
		FUZZ_CHECK(j < b.n && strcmp(a.v[i], b.v[j]) == 0, "state '%s' reloads as '%s'",
		           a.v[i], j < b.n ? b.v[j] : "nothing");
		j++;
	}
	FUZZ_CHECK(j == b.n, "state gained %zu entries on reload", b.n - j);
	fuzz_saved_release(&a);
	fuzz_saved_release(&b);
	rules_state_free(again);
}

/* ---- one document ---- */

static const char *zone_name(const json_t *doc, const json_t *resource)
{
	const char *zone_id =
	    json_string_value(json_object_get(json_object_get(resource, "attributes"), "zone_id"));
	const json_t *z;
	size_t i;

	if (zone_id == NULL)
		return NULL;
	json_array_foreach(json_object_get(doc, "included"), i, z)
	{
		const char *id = json_string_value(json_object_get(z, "id"));
		if (id && strcmp(id, zone_id) == 0)
			return json_string_value(
			    json_object_get(json_object_get(z, "attributes"), "name"));
	}
	return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = json_loadb((const char *)data, size, 0, NULL), *list, *resource;
	struct rules_state *st = rules_state_new();
	struct rules_result res = {0};
	int64_t now = NOW_MS;
	size_t i;

	if (doc == NULL || st == NULL)
		goto out;
	list = json_object_get(doc, "data");
	json_array_foreach(list, i, resource)
	{
		struct message m;
		struct nres nr;
		char err[256], *dump;
		enum msg_kind kind = MSG_EVENT;
		const char *key_id = NULL, *key_rev = NULL, *key_zone = NULL;
		bool key;

		if (i >= MAX_RESOURCES)
			break;
		nres_from_json(resource, &nr);
		key = normalize_dedup_key(&nr, &kind, &key_id, &key_rev, &key_zone);
		if (normalize_resource(resource, zone_name(doc, resource), cfg->tether.base_url, &m,
		                       err, sizeof(err)) < 0) {
			FUZZ_CHECK(err[0] != '\0' && is_utf8(err), "resource %zu: bad error text",
			           i);
			continue;
		}
		/* the poller skips a revision it handled by this key: it must be the message's */
		FUZZ_CHECK(key && kind == m.kind && strcmp(key_id, m.source_id) == 0 &&
		               strcmp(key_rev, m.revision) == 0 && strcmp(key_zone, m.zone_id) == 0,
		           "resource %zu: the dedup key is not the message's", i);
		message_set_id(&m);
		m.phase = (enum msg_phase)(i % 3); /* the poller's decision: every one */
		m.backfill = i % 4 == 3;
		dump = message_dump(&m);
		FUZZ_CHECK(dump != NULL, "resource %zu: message_dump failed", i);
		check_json("message_dump", dump);
		free(dump);
		rules_result_reset(&res);
		now += 61 * 1000; /* cooldowns both hold and expire over a document */
		FUZZ_CHECK(rules_eval(rules, st, &m, now, true, &res) == 0, "rules_eval failed");
		for (size_t t = 0; t < res.nt; t++)
			FUZZ_CHECK(skip_reason || is_utf8(res.t[t].reason),
			           "rule %s: reason not UTF-8: '%s'", res.t[t].rule,
			           res.t[t].reason);
		for (size_t d = 0; d < res.nd; d++)
			check_delivery(&res.d[d]);
	}
	check_state(st, now);
out:
	rules_result_release(&res);
	rules_state_free(st);
	json_decref(doc);
	return 0;
}
