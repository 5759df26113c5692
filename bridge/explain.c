/* tether-bridge explain: runs a Tether events or lpr document through the normaliser and
 * the rules and prints, per resource, the message, every rule's verdict and each delivery
 * exactly as it would be sent. Nothing is published and no state is written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bridge/bridge.h"
#include "bridge/control.h"
#include "bridge/explain_io.h"
#include "lib/log.h"
#include "bridge/outbox.h"
#include "bridge/tether.h"
#include "bridge/webhook.h"
#include "config/yaml.h"
#include "rules/message_parse.h"
#include "rules/normalize.h"
#include "rules/phase.h"

#define ZONES_TIMEOUT_MS 3000

/* Zone names from a /zones document: a JSON object id -> name (new reference). */
static json_t *zone_names_from_doc(const json_t *doc)
{
	json_t *names = json_object();
	const json_t *data = json_object_get(doc, "data"), *z;
	size_t i;

	if (names == NULL || !json_is_array(data))
		return names;
	json_array_foreach(data, i, z)
	{
		const char *id = json_string_value(json_object_get(z, "id"));
		const char *name =
		    json_string_value(json_object_get(json_object_get(z, "attributes"), "name"));
		if (id && name)
			json_object_set_new(names, id, json_string(name));
	}
	return names;
}

static json_t *zone_names(const struct config *cfg, const char *zones_path)
{
	json_error_t jerr;

	if (zones_path) {
		json_t *doc = json_load_file(zones_path, 0, &jerr);
		if (doc == NULL) {
			if (jerr.line < 1) /* the file could not be read: no position */
				fprintf(stderr, "%s: %s\n", zones_path, jerr.text);
			else
				fprintf(stderr, "%s:%d:%d: %s\n", zones_path, jerr.line,
				        jerr.column, jerr.text);
			return NULL;
		}
		json_t *names = zone_names_from_doc(doc);
		json_decref(doc);
		return names;
	}
	/* else ask the API, briefly; without it the zone id stands in for the name */
	struct tether_opts o;
	bridge_tether_opts(cfg, &o);
	o.concurrency = 1;
	o.timeout_ms = ZONES_TIMEOUT_MS;
	char err[256] = "";
	json_t *names = NULL;
	struct tether *t = tether_new(&o, err, sizeof(err));
	if (t) {
		struct tether_req r = {.ep = TETHER_ZONES, .from_ms = -1, .to_ms = -1, .at_ms = -1};
		if (tether_run(t, &r, 1) == 0 && r.status == TETHER_OK)
			names = zone_names_from_doc(r.doc);
		else
			snprintf(err, sizeof(err), "%s", r.error[0] ? r.error : "request failed");
		tether_req_release(&r);
		tether_free(t);
	}
	if (names == NULL)
		fprintf(stderr,
		        "explain: zone names unavailable (GET /zones: %s); zone ids stand "
		        "in (use --zones ZONES.json)\n",
		        err);
	return names ? names : json_object();
}

/* Hides what config_dump hides: the URL's path and query, and the configured header values
 * (tokens). The signature stays: it proves nothing without the secret. 0/-1. */
static int redact_webhook(const struct cfg_webhook *cfg, json_t *w)
{
	const char *url = json_string_value(json_object_get(w, "url"));
	json_t *headers = json_object_get(w, "headers");
	struct buf b;
	int rc = 0;

	if (url != NULL) {
		buf_init(&b, 0);
		rc = config_url_redact(&b, url) < 0 || b.data == NULL ||
		             json_object_set_new(w, "url", json_string(b.data)) < 0
		         ? -1
		         : 0;
		buf_release(&b);
	}
	for (size_t i = 0; rc == 0 && headers != NULL && i < cfg->nheaders; i++) {
		if (json_object_set_new(headers, cfg->headers[i].name, json_string("***")) < 0)
			rc = -1;
	}
	return rc;
}

/* The perspectives `auto` and names resolve against (--perspectives FILE); NULL without one.
 * One explain per process, so the list is the command's, like its output. */
static struct control_perspectives *wall;

/* A call-up: {"rule", "target": "control.wall", "perspective" (as the rule says),
 * "switch_to" ({"id", "name"}, null when nothing fits, absent without --perspectives),
 * "hold", "max_delay" (ms)}. */
static json_t *perspective_json(const struct rules_delivery *d, const struct store_entry *e)
{
	json_t *out = json_pack("{s:s, s:s, s:s, s:I, s:I}", "rule", d->rule, "target", e->target,
	                        "perspective", d->target, "hold_ms", (json_int_t)d->hold_ms,
	                        "max_delay_ms", (json_int_t)d->max_delay_ms);
	const struct hold_perspective *hp;

	if (out == NULL || wall == NULL)
		return out;
	hp = hold_pick(wall->v, wall->n, d->target, d->msg.zone_id);
	json_object_set_new(out, "switch_to",
	                    hp ? json_pack("{s:s, s:s}", "id", hp->id, "name", hp->name)
	                       : json_null());
	return out;
}

static json_t *delivery_json(const struct config *cfg, const struct rules_delivery *d,
                             int64_t now_ms, bool show_secrets)
{
	struct store_entry e;
	json_t *out;

	if (outbox_entry_build(d, &e) < 0)
		return NULL;
	if (strcmp(d->target_kind, "perspective") == 0) {
		out = perspective_json(d, &e);
	} else if (strcmp(d->target_kind, "webhook") != 0) {
		/* mqtt, and homeassistant: a rule entity's event on the broker's target */
		out = json_pack("{s:s, s:s, s:s, s:i, s:b, s:s}", "rule", d->rule, "target",
		                e.target, "topic", e.topic_or_url, "qos", d->qos, "retain",
		                d->retain, "body", e.payload);
	} else {
		/* "rule" first, as on mqtt: {"rule", "target", "url", "headers", "body"} */
		const struct cfg_webhook *wc = config_webhook(cfg, d->target);
		json_t *w = webhook_explain(wc, &e, now_ms);
		out = w ? json_pack("{s:s}", "rule", d->rule) : NULL;
		if (out && ((!show_secrets && redact_webhook(wc, w) < 0) ||
		            json_object_update(out, w) < 0)) {
			json_decref(out);
			out = NULL;
		}
		json_decref(w);
	}
	store_entry_release(&e);
	return out;
}

/* Phases as the daemon decides them, from the earlier resources of the same input (seen:
 * "kind:source_id" -> {rev, flags, severity, complete, index}, what the daemon records).
 * Sets m->phase and returns NULL when the revision is delivered, else why the daemon would
 * send nothing for it. */
static const char *decide_phase(json_t *seen, struct message *m, size_t index, int64_t now_ms,
                                char *why, size_t whysz)
{
	char key[MSG_ID_MAX + 16];
	json_t *prev, *rec;
	struct phase_seen was, next;
	long long at = 0;

	snprintf(key, sizeof(key), "%s:%s", msg_kind_name(m->kind), m->source_id);
	prev = json_object_get(seen, key);
	if (prev) {
		memset(&was, 0, sizeof(was));
		snprintf(was.revision, sizeof(was.revision), "%s",
		         json_string_value(json_object_get(prev, "rev")));
		snprintf(was.severity, sizeof(was.severity), "%s",
		         json_string_value(json_object_get(prev, "severity")));
		was.flags = (uint64_t)json_integer_value(json_object_get(prev, "flags"));
		was.complete = json_is_true(json_object_get(prev, "complete"));
		at = (long long)json_integer_value(json_object_get(prev, "index"));
	}
	enum phase_verdict v = phase_decide(m, prev ? &was : NULL);
	phase_record(m, now_ms, &next);
	rec = json_pack("{s:s, s:I, s:s, s:b, s:I}", "rev", next.revision, "flags",
	                (json_int_t)next.flags, "severity", next.severity, "complete",
	                next.complete, "index", (json_int_t)index);
	if (rec)
		json_object_set_new(seen, key, rec);
	switch (v) {
	case PHASE_DELIVER:
		return NULL;
	case PHASE_SAME_REVISION:
		snprintf(why, whysz, "same revision as resource %lld", at);
		break;
	case PHASE_PLATE_REVISION:
		snprintf(why, whysz, "a later revision of the plate read of resource %lld", at);
		break;
	case PHASE_NO_CHANGE:
		snprintf(why, whysz,
		         "no change in flags, severity or completion since resource %lld", at);
		break;
	}
	return why;
}

static json_t *explain_one(const struct config *cfg, const struct rules *rules,
                           struct rules_state *st, struct rules_result *res, const json_t *resource,
                           size_t index, const json_t *names, json_t *seen, int64_t now_ms,
                           bool show_secrets, bool v1, bool *bad)
{
	struct message m;
	char err[256];
	const char *skip;
	const char *zone_id =
	    json_string_value(json_object_get(json_object_get(resource, "attributes"), "zone_id"));
	const char *zone_name = zone_id ? json_string_value(json_object_get(names, zone_id)) : NULL;
	json_t *line, *rl, *dl;

	/* v1: a message the bridge sent, evaluated again as it is (its phase was decided) */
	if (v1 ? message_from_json(resource, &m, err, sizeof(err)) < 0
	       : normalize_resource(resource, zone_name, cfg->tether.base_url, &m, err,
	                            sizeof(err)) < 0) {
		*bad = true;
		const char *id = json_string_value(json_object_get(resource, "id"));
		/* index: the resource's place in "data" (0-based), as the id may be missing */
		return json_pack("{s:I, s:s?, s:s}", "index", (json_int_t)index, "resource", id,
		                 "error", err);
	}
	message_set_id(&m);
	skip = v1 ? NULL : decide_phase(seen, &m, index, now_ms, err, sizeof(err));
	rules_result_reset(res);
	if (skip == NULL && rules_eval(rules, st, &m, now_ms, true, res) < 0)
		return NULL;
	line = json_object();
	rl = json_array();
	dl = json_array();
	if (line == NULL || rl == NULL || dl == NULL)
		goto fail;
	if (json_object_set_new(line, "message", message_to_json(&m)) < 0)
		goto fail;
	if (skip) /* the daemon would not deliver this revision: no rule is tried */
		json_object_set_new(line, "skipped", json_string(skip));
	for (size_t i = 0; i < res->nt; i++) {
		/* a reason is cut by bytes: without the broken tail of a cut character */
		const char *why = res->t[i].reason;
		json_t *r =
		    json_pack("{s:s, s:b, s:o}", "name", res->t[i].rule, "matched",
		              res->t[i].matched, "reason",
		              why[0] ? json_stringn(why, util_utf8_cut(why, SIZE_MAX, SIZE_MAX))
		                     : json_null());
		if (r == NULL || json_array_append_new(rl, r) < 0)
			goto fail;
	}
	/* rules after a delivering `stop` rule are not tried: say so rather than leave them out */
	if (res->nt > 0 && res->nt < rules_count(rules)) {
		const struct ynode *list = ynode_get(cfg->doc->root, "rules");
		const char *stopper = res->t[res->nt - 1].rule;
		for (size_t i = res->nt; list && list->type == YNODE_SEQ && i < list->n; i++) {
			const struct ynode *name = ynode_get(list->items[i], "name");
			char why[sizeof(res->t[0].reason)];
			snprintf(why, sizeof(why), "not tried: '%s' delivered with stop", stopper);
			json_t *r = json_pack("{s:s?, s:b, s:s}", "name", name ? name->value : NULL,
			                      "matched", false, "reason", why);
			if (r == NULL || json_array_append_new(rl, r) < 0)
				goto fail;
		}
	}
	for (size_t i = 0; i < res->nd; i++) {
		json_t *d = delivery_json(cfg, &res->d[i], now_ms, show_secrets);
		if (d == NULL || json_array_append_new(dl, d) < 0)
			goto fail;
	}
	json_object_set_new(line, "rules", rl);
	json_object_set_new(line, "deliveries", dl);
	return line;
fail:
	json_decref(line);
	json_decref(rl);
	json_decref(dl);
	return NULL;
}

/* --perspectives FILE: a saved /perspectives document into *out. 0, or -1 (said). */
static int load_perspectives(const char *path, struct control_perspectives *out)
{
	json_error_t jerr;
	json_t *doc = json_load_file(path, 0, &jerr);
	char err[256];
	int rc;

	if (doc == NULL) {
		fprintf(stderr, "%s:%d:%d: %s\n", path, jerr.line, jerr.column, jerr.text);
		return -1;
	}
	rc = control_perspectives_parse(doc, out, err, sizeof(err));
	if (rc < 0)
		fprintf(stderr, "%s: %s\n", path, err);
	json_decref(doc);
	return rc;
}

int explain_main(const char *config_path, const char *zones_path, const char *perspectives_path,
                 const char *input, int64_t now_ms, bool show_secrets, bool json)
{
	struct control_perspectives ps = {0};
	struct cfg_errors errs = {0};
	struct config *cfg;
	struct rules *rules;
	struct rules_state *st = NULL;
	struct rules_result res = {0};
	json_t *doc = NULL, *msgs = NULL, *names = NULL, *seen = NULL, *one = NULL, *data;
	bool bad = false;
	int rc = 1;

	log_init(LOG_LEVEL_WARN, false);
	if (bridge_load(config_path, &cfg, &rules, &errs) < 0) {
		cfg_errors_print(&errs, stderr);
		cfg_errors_release(&errs);
		return 1;
	}
	const char *input_name = strcmp(input, "-") == 0 ? "<stdin>" : input;
	if (explain_input_read(input, &doc, &msgs) < 0)
		goto out;
	if (perspectives_path != NULL) {
		if (load_perspectives(perspectives_path, &ps) < 0)
			goto out;
		wall = &ps;
	}
	/* v1 messages name their zones: the API is not asked */
	names = msgs ? json_object() : zone_names(cfg, zones_path);
	st = rules_state_new();
	seen = json_object();
	if (names == NULL || st == NULL || seen == NULL)
		goto out;
	/* when.modes: the initial mode (explain reads no state) */
	if (cfg->control.nmodes > 0)
		rules_state_set_mode(st, cfg->control.modes[0]);
	/* a JSON:API document, a bare array of resources, or one resource */
	data = msgs                                                  ? msgs
	       : json_is_object(doc) && json_object_get(doc, "data") ? json_object_get(doc, "data")
	                                                             : doc;
	if (json_is_object(data)) {
		/* one resource: a list of one (which holds a reference, freed at out) */
		one = json_array();
		if (one == NULL || json_array_append(one, data) < 0)
			goto out;
		data = one;
	}
	if (!json_is_array(data)) {
		fprintf(stderr, "%s: expected a Tether document with a \"data\" list\n",
		        input_name);
		goto out;
	}
	size_t i;
	json_t *resource;
	json_array_foreach(data, i, resource)
	{
		bool v1 = msgs && !json_object_get(resource, "error");
		json_t *line = msgs && !v1 ? json_incref(resource)
		                           : explain_one(cfg, rules, st, &res, resource, i, names,
		                                         seen, now_ms, show_secrets, v1, &bad);
		bad = bad || (msgs && !v1);
		char *text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER |
		                                         JSON_REAL_PRECISION(15))
		                  : NULL;
		if (text == NULL) {
			json_decref(line);
			fprintf(stderr, "explain: out of memory\n");
			goto out;
		}
		if (json)
			puts(text);
		else
			explain_print_text(stdout, line);
		json_decref(line);
		free(text);
	}
	rc = bad ? 1 : 0;
out:
	wall = NULL;
	control_perspectives_release(&ps);
	rules_result_release(&res);
	rules_state_free(st);
	json_decref(names);
	json_decref(seen);
	json_decref(one);
	json_decref(doc);
	json_decref(msgs);
	rules_free(rules);
	config_free(cfg);
	return rc;
}
