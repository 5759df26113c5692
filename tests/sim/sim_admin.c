/* The /_sim/ admin API the tests drive the simulator with (no auth, JSON in and out):
 * inject and change events, plates and zones, arm faults, read the request log and stats,
 * generate random data and switch the ambiguous readings at run time. */
#include "tests/sim/sim.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQLOG_MAX 100000

static void admin_error(struct http_reply *r, int status, const char *msg)
{
	struct buf b;
	buf_init(&b, 0);
	if (buf_puts(&b, "{\"error\":") < 0 || sim_json_str(&b, msg) < 0 || buf_puts(&b, "}") < 0) {
		buf_release(&b);
		sim_reply_str(r, 500, "{\"error\":\"out of memory\"}");
		return;
	}
	sim_reply_json(r, status, &b);
}

/* Reads an optional time member: 1 when present and set, 0 when absent, 2 when null,
 * -1 when invalid. */
static int get_time(json_t *o, const char *key, int64_t *ms)
{
	json_t *v = json_object_get(o, key);
	if (v == NULL)
		return 0;
	if (json_is_null(v))
		return 2;
	if (json_is_integer(v)) {
		*ms = json_integer_value(v);
		return 1;
	}
	if (!json_is_string(v) || util_parse_time(json_string_value(v), ms, NULL) < 0)
		return -1;
	return 1;
}

static void reply_resource(struct sim *s, struct http_reply *r, int status,
                           const struct sim_event *e, const struct sim_plate *p)
{
	struct buf b;
	int rc;

	buf_init(&b, 0);
	rc = buf_puts(&b, "{\"data\":");
	rc |= e ? sim_render_event(s, &b, e, util_now_ms()) : sim_render_plate(&b, p);
	rc |= buf_puts(&b, ",\"jsonapi\":{\"version\":\"1.0\"}}");
	if (rc) {
		buf_release(&b);
		admin_error(r, 500, "out of memory");
		return;
	}
	sim_reply_json(r, status, &b);
}

/* Applies severity, flags, motion, flagged, items_count; -1 with a message on bad input. */
static int apply_look(struct sim_event *e, json_t *o, const char **err)
{
	json_t *v;
	size_t i;

	if ((v = json_object_get(o, "severity")) != NULL) {
		int sev = json_is_string(v) ? sim_parse_severity(json_string_value(v)) : -1;
		if (sev < 0)
			return *err = "severity: low, normal, medium, high or critical", -1;
		e->severity = sev;
	}
	if ((v = json_object_get(o, "flags")) != NULL) {
		json_t *f;
		uint32_t flags = 0;
		if (!json_is_array(v))
			return *err = "flags: an array of flag names", -1;
		json_array_foreach(v, i, f)
		{
			int k = json_is_string(f) ? sim_parse_flag(json_string_value(f)) : -1;
			if (k < 0)
				return *err = "flags: unknown flag name", -1;
			flags |= 1u << k;
		}
		e->flags = flags;
	}
	if ((v = json_object_get(o, "motion")) != NULL) {
		if (!json_is_number(v))
			return *err = "motion: a number", -1;
		e->motion = json_number_value(v);
	}
	if ((v = json_object_get(o, "flagged")) != NULL) {
		if (!json_is_boolean(v))
			return *err = "flagged: a boolean", -1;
		e->flagged = json_is_true(v);
	}
	if ((v = json_object_get(o, "items_count")) != NULL) {
		if (!json_is_integer(v))
			return *err = "items_count: an integer", -1;
		e->items_count = (int)json_integer_value(v);
	}
	return 0;
}

static void post_event(struct sim *s, json_t *o, struct http_reply *r)
{
	struct sim_zone *z = sim_zone_find(s, json_string_value(json_object_get(o, "zone_id")));
	json_t *jc = json_object_get(o, "complete");
	int64_t now = util_now_ms(), start = now, end = -1, created = now;
	bool complete = jc ? json_is_true(jc) : true;
	const char *err = NULL;
	struct sim_event *e, tmp;
	int rs, re, rcr;

	if (json_object_get(o, "zone_id") == NULL) {
		admin_error(r, 400, "zone_id is required");
		return;
	}
	if (z == NULL) {
		admin_error(r, 404, "unknown zone_id");
		return;
	}
	if (jc && !json_is_boolean(jc)) {
		admin_error(r, 400, "complete: a boolean");
		return;
	}
	rs = get_time(o, "starts_at", &start);
	re = get_time(o, "ends_at", &end);
	rcr = get_time(o, "created_at", &created);
	if (rs < 0 || rs == 2 || re < 0 || rcr < 0 || rcr == 2) {
		admin_error(r, 400, "starts_at, ends_at, created_at: ISO 8601 times");
		return;
	}
	if (re == 0)
		end = complete ? start : -1;
	else if (re == 2)
		end = -1;
	memset(&tmp, 0, sizeof(tmp));
	tmp.severity = 1;
	tmp.flags = 1u << SIM_F_MOTION;
	if (apply_look(&tmp, o, &err) < 0) {
		admin_error(r, 400, err);
		return;
	}
	e = sim_event_add(s, z, start, -1, created);
	if (e == NULL) {
		admin_error(r, 500, "out of memory");
		return;
	}
	e->severity = tmp.severity;
	e->flags = tmp.flags;
	e->motion = tmp.motion;
	e->flagged = tmp.flagged;
	e->items_count = tmp.items_count;
	sim_event_set_end(s, e, complete, end);
	reply_resource(s, r, 201, e, NULL);
}

static void patch_event(struct sim *s, const char *id, json_t *o, struct http_reply *r)
{
	struct sim_event *e = sim_event_find(s, id), tmp;
	json_t *jc = json_object_get(o, "complete");
	int64_t now = util_now_ms(), end = 0;
	const char *err = NULL;
	bool complete;
	int re;

	if (e == NULL) {
		admin_error(r, 404, "unknown event id");
		return;
	}
	if (jc && !json_is_boolean(jc)) {
		admin_error(r, 400, "complete: a boolean");
		return;
	}
	re = get_time(o, "ends_at", &end);
	if (re < 0) {
		admin_error(r, 400, "ends_at: an ISO 8601 time or null");
		return;
	}
	tmp = *e;
	if (apply_look(&tmp, o, &err) < 0) {
		admin_error(r, 400, err);
		return;
	}
	complete = jc ? json_is_true(jc) : e->complete;
	if (re == 0)
		end = complete && e->ends_at < 0 ? (now > e->starts_at ? now : e->starts_at)
		                                 : e->ends_at;
	else if (re == 2)
		end = -1;
	e->severity = tmp.severity;
	e->flags = tmp.flags;
	e->motion = tmp.motion;
	e->flagged = tmp.flagged;
	e->items_count = tmp.items_count;
	e->complete_at = 0;
	sim_event_set_end(s, e, complete, end);
	sim_event_touch(s, e, now);
	reply_resource(s, r, 200, e, NULL);
}

static void post_lpr(struct sim *s, json_t *o, struct http_reply *r)
{
	struct sim_zone *z = sim_zone_find(s, json_string_value(json_object_get(o, "zone_id")));
	const char *num = json_string_value(json_object_get(o, "plate_number"));
	const char *country = json_string_value(json_object_get(o, "country"));
	const char *event_id = json_string_value(json_object_get(o, "event_id"));
	int64_t now = util_now_ms(), start = now, created = now;
	struct sim_plate *p;
	int rs, rcr;

	if (json_object_get(o, "zone_id") == NULL || num == NULL) {
		admin_error(r, 400, "zone_id and plate_number are required");
		return;
	}
	if (z == NULL) {
		admin_error(r, 404, "unknown zone_id");
		return;
	}
	rs = get_time(o, "starts_at", &start);
	rcr = get_time(o, "created_at", &created);
	if (rs < 0 || rs == 2 || rcr < 0 || rcr == 2) {
		admin_error(r, 400, "starts_at, created_at: ISO 8601 times");
		return;
	}
	p = sim_plate_add(s, z, start, created);
	if (p == NULL) {
		admin_error(r, 500, "out of memory");
		return;
	}
	snprintf(p->plate_number, sizeof(p->plate_number), "%s", num);
	snprintf(p->country, sizeof(p->country), "%s", country ? country : "GBR");
	if (event_id != NULL)
		snprintf(p->event_id, sizeof(p->event_id), "%s", event_id);
	p->flagged = json_is_true(json_object_get(o, "flagged"));
	p->has_picture = json_is_true(json_object_get(o, "has_picture"));
	reply_resource(s, r, 201, NULL, p);
}

static int zone_meta(struct buf *b, const struct sim_zone *z)
{
	int rc = buf_printf(b, "{\"id\":\"%s\",\"name\":", z->id);
	rc |= sim_json_str(b, z->name);
	rc |= buf_printf(
	    b, ",\"location_id\":\"%s\",\"timeline_id\":\"%s\",\"utc_offset_minutes\":%d}",
	    z->location_id, z->timeline_id, z->offset_min);
	return rc ? -1 : 0;
}

static void zones_admin(struct sim *s, const char *method, const char *id, json_t *o,
                        struct http_reply *r)
{
	struct buf b;
	int rc = 0;

	buf_init(&b, 0);
	if (strcmp(method, "GET") == 0 && id == NULL) {
		bool first = true;
		rc |= buf_puts(&b, "{\"zones\":[");
		for (size_t i = 0; i < s->nzones; i++) {
			if (s->zones[i]->deleted)
				continue;
			rc |= buf_puts(&b, first ? "" : ",");
			rc |= zone_meta(&b, s->zones[i]);
			first = false;
		}
		rc |= buf_puts(&b, "]}");
		goto out;
	}
	if (strcmp(method, "POST") == 0 && id == NULL) {
		json_t *name = json_object_get(o, "name"), *loc = json_object_get(o, "location_id");
		struct sim_zone *z;
		if ((name && !json_is_string(name)) || (loc && !json_is_string(loc))) {
			admin_error(r, 400, "name, location_id: strings");
			return;
		}
		z = sim_zone_add(s, json_string_value(name), json_string_value(loc));
		if (z == NULL) {
			admin_error(r, 500, "out of memory");
			return;
		}
		rc |= buf_puts(&b, "{\"data\":");
		rc |= sim_render_zone(&b, z);
		rc |= buf_puts(&b, ",\"meta\":");
		rc |= zone_meta(&b, z);
		rc |= buf_puts(&b, "}");
		if (rc)
			goto out;
		sim_reply_json(r, 201, &b);
		return;
	}
	if (strcmp(method, "PATCH") == 0 && id != NULL) {
		/* a rename: the bridge must keep the zone's identity under its new name */
		struct sim_zone *z = sim_zone_find(s, id);
		json_t *name = json_object_get(o, "name");
		char *dup;
		if (z == NULL) {
			admin_error(r, 404, "unknown zone id");
			return;
		}
		if (!json_is_string(name) || json_string_length(name) == 0) {
			admin_error(r, 400, "name: a non-empty string");
			return;
		}
		if ((dup = strdup(json_string_value(name))) == NULL) {
			admin_error(r, 500, "out of memory");
			return;
		}
		free(z->name);
		z->name = dup;
		rc |= zone_meta(&b, z);
		goto out;
	}
	if (strcmp(method, "DELETE") == 0 && id != NULL) {
		struct sim_zone *z = sim_zone_find(s, id);
		if (z == NULL) {
			admin_error(r, 404, "unknown zone id");
			return;
		}
		z->deleted = true;
		r->status = 204;
		return;
	}
	{
		admin_error(r, 405, "method not allowed");
		return;
	}
out:
	if (rc) {
		buf_release(&b);
		{
			admin_error(r, 500, "out of memory");
			return;
		}
	}
	sim_reply_json(r, 200, &b);
}

static void post_fault(struct sim *s, json_t *o, struct http_reply *r)
{
	static const char *const bodies[] = {NULL,   "malformed", "truncated", "wrong-shape",
	                                     "huge", "cut",       "many",      "rezone"};
	json_t *v;
	struct sim_fault f;
	char out[64];

	memset(&f, 0, sizeof(f));
	f.count = 1;
	snprintf(f.path, sizeof(f.path), "/api/v3p");
	if ((v = json_object_get(o, "count")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			admin_error(r, 400, "count: a non-negative integer");
			return;
		}
		f.count = (long)json_integer_value(v);
	}
	if ((v = json_object_get(o, "body")) != NULL && !json_is_null(v)) {
		for (size_t i = 1; i < sizeof(bodies) / sizeof(bodies[0]); i++)
			if (json_is_string(v) && strcmp(json_string_value(v), bodies[i]) == 0)
				f.body = (enum sim_body_fault)i;
		if (f.body == SIM_BODY_NONE) {
			admin_error(r, 400,
			            "body: malformed, truncated, wrong-shape, huge, cut, many, "
			            "rezone or null");
			return;
		}
	}
	f.resources = 30000;
	if ((v = json_object_get(o, "resources")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 10000000) {
			admin_error(r, 400, "resources: an integer from 0 to 10000000");
			return;
		}
		f.resources = (long)json_integer_value(v);
	}
	if ((v = json_object_get(o, "zone_id")) != NULL) {
		if (!json_is_string(v) || json_string_length(v) >= sizeof(f.zone_id)) {
			admin_error(r, 400, "zone_id: a string");
			return;
		}
		snprintf(f.zone_id, sizeof(f.zone_id), "%s", json_string_value(v));
	}
	if (f.body == SIM_BODY_REZONE && f.zone_id[0] == '\0') {
		admin_error(r, 400, "body rezone needs zone_id");
		return;
	}
	if ((v = json_object_get(o, "delay_ms")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0) {
			admin_error(r, 400, "delay_ms: a non-negative integer");
			return;
		}
		f.delay_ms = (long)json_integer_value(v);
	}
	if ((v = json_object_get(o, "status")) != NULL && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 100 ||
		    json_integer_value(v) > 599) {
			admin_error(r, 400, "status: an HTTP status");
			return;
		}
		f.status = (int)json_integer_value(v);
	} else if (f.body == SIM_BODY_NONE && f.delay_ms == 0) {
		f.status = 500;
	}
	if ((v = json_object_get(o, "retry_after")) != NULL && !json_is_null(v)) {
		if (json_is_string(v))
			snprintf(f.retry_after, sizeof(f.retry_after), "%s", json_string_value(v));
		else if (json_is_integer(v))
			snprintf(f.retry_after, sizeof(f.retry_after), "%lld",
			         (long long)json_integer_value(v));
		else {
			admin_error(r, 400, "retry_after: a string or an integer");
			return;
		}
	}
	if ((v = json_object_get(o, "path")) != NULL) {
		if (!json_is_string(v)) {
			admin_error(r, 400, "path: a string");
			return;
		}
		snprintf(f.path, sizeof(f.path), "%s", json_string_value(v));
	}
	if (json_is_true(json_object_get(o, "revoke_tokens")))
		sim_oauth_revoke_all(s, json_is_true(json_object_get(o, "revoke_static")));
	if (f.count > 0) {
		if (s->nfaults == s->capfaults) {
			size_t ncap = s->capfaults ? s->capfaults * 2 : 8;
			struct sim_fault *p = realloc(s->faults, ncap * sizeof(*p));
			if (p == NULL) {
				admin_error(r, 500, "out of memory");
				return;
			}
			s->faults = p;
			s->capfaults = ncap;
		}
		s->faults[s->nfaults++] = f;
	}
	snprintf(out, sizeof(out), "{\"faults\":%zu}", s->nfaults);
	sim_reply_str(r, 201, out);
}

bool sim_fault_take(struct sim *s, const char *path, struct sim_fault *out)
{
	for (size_t i = 0; i < s->nfaults; i++) {
		struct sim_fault *f = &s->faults[i];
		if (strncmp(path, f->path, strlen(f->path)) != 0)
			continue;
		*out = *f;
		if (--f->count <= 0) {
			memmove(f, f + 1, (s->nfaults - i - 1) * sizeof(*f));
			s->nfaults--;
		}
		return true;
	}
	return false;
}

void sim_reqlog_add(struct sim *s, const char *method, const char *path, const char *query,
                    const char *auth, int status)
{
	struct sim_reqlog *q;

	s->requests_total++;
	if (s->nreqs >= REQLOG_MAX) {
		/* Keep the newest half: the log is for tests, not an archive. */
		size_t drop = s->nreqs / 2;
		for (size_t i = 0; i < drop; i++) {
			free(s->reqs[i].path);
			free(s->reqs[i].query);
		}
		memmove(s->reqs, s->reqs + drop, (s->nreqs - drop) * sizeof(*s->reqs));
		s->nreqs -= drop;
	}
	if (s->nreqs == s->capreqs) {
		size_t ncap = s->capreqs ? s->capreqs * 2 : 64;
		struct sim_reqlog *p = realloc(s->reqs, ncap * sizeof(*p));
		if (p == NULL)
			return;
		s->reqs = p;
		s->capreqs = ncap;
	}
	q = &s->reqs[s->nreqs];
	snprintf(q->method, sizeof(q->method), "%s", method);
	q->path = strdup(path);
	q->query = strdup(query ? query : "");
	if (q->path == NULL || q->query == NULL) {
		free(q->path);
		free(q->query);
		return;
	}
	q->auth = auth;
	q->status = status;
	q->at = util_now_ms();
	s->nreqs++;
}

static void get_requests(struct sim *s, struct http_reply *r)
{
	struct buf b;
	int rc;

	buf_init(&b, 0);
	rc = buf_puts(&b, "{\"requests\":[");
	for (size_t i = 0; i < s->nreqs && rc == 0; i++) {
		const struct sim_reqlog *q = &s->reqs[i];
		char at[UTIL_TIME_MAX];
		util_format_iso(q->at, 0, at);
		rc |= buf_printf(&b, "%s{\"method\":\"%s\",\"path\":", i ? "," : "", q->method);
		rc |= sim_json_str(&b, q->path);
		rc |= buf_puts(&b, ",\"query\":");
		rc |= sim_json_str(&b, q->query);
		rc |= buf_printf(&b, ",\"auth\":\"%s\",\"status\":%d,\"at\":\"%s\"}", q->auth,
		                 q->status, at);
	}
	rc |= buf_puts(&b, "]}");
	if (rc) {
		buf_release(&b);
		{
			admin_error(r, 500, "out of memory");
			return;
		}
	}
	sim_reply_json(r, 200, &b);
}

static void get_stats(struct sim *s, struct http_reply *r)
{
	size_t zones = 0, open = 0;
	char out[512];

	for (size_t i = 0; i < s->nzones; i++) {
		zones += !s->zones[i]->deleted;
		open += s->zones[i]->nopen;
	}
	snprintf(out, sizeof(out),
	         "{\"events\":%zu,\"open_events\":%zu,\"plates\":%zu,"
	         "\"zones\":%zu,\"requests\":%llu,\"tokens\":%zu,\"faults\":%zu}",
	         s->nevents, open, s->nplates, zones, s->requests_total, s->ntokens, s->nfaults);
	sim_reply_str(r, 200, out);
}

static void post_generate(struct sim *s, json_t *o, struct http_reply *r)
{
	json_t *je = json_object_get(o, "events"), *jp = json_object_get(o, "plates");
	long long ne = je ? json_integer_value(je) : 0, np = jp ? json_integer_value(jp) : 0;
	int64_t now = util_now_ms();
	char out[128];

	if ((je && !json_is_integer(je)) || (jp && !json_is_integer(jp)) || ne < 0 || np < 0 ||
	    ne > 10000000 || np > 10000000) {
		admin_error(r, 400, "events, plates: non-negative integers");
		return;
	}
	for (long long i = 0; i < ne; i++)
		sim_random_event(s, now, true);
	for (long long i = 0; i < np; i++)
		sim_random_plate(s, now);
	snprintf(out, sizeof(out), "{\"events\":%lld,\"plates\":%lld}", ne, np);
	sim_reply_str(r, 200, out);
}

static void config_admin(struct sim *s, json_t *o, bool set, struct http_reply *r)
{
	static const char *const ends[] = {"null", "start", "now"};
	const char *tb = json_string_value(json_object_get(o, "to_bounds"));
	const char *oe = json_string_value(json_object_get(o, "open_ends_at"));
	json_t *v;
	char out[256];

	if (set) {
		if (tb && strcmp(tb, "start") != 0 && strcmp(tb, "end") != 0) {
			admin_error(r, 400, "to_bounds: start or end");
			return;
		}
		if (oe && strcmp(oe, "null") != 0 && strcmp(oe, "start") != 0 &&
		    strcmp(oe, "now") != 0) {
			admin_error(r, 400, "open_ends_at: null, start or now");
			return;
		}
		if (tb)
			s->opts.to_bounds = strcmp(tb, "end") == 0 ? SIM_TO_END : SIM_TO_START;
		if (oe)
			s->opts.open_ends_at = strcmp(oe, "now") == 0     ? SIM_OPEN_NOW
			                       : strcmp(oe, "start") == 0 ? SIM_OPEN_START
			                                                  : SIM_OPEN_NULL;
		if ((v = json_object_get(o, "rate")) && json_is_number(v))
			s->opts.rate = json_number_value(v);
		if ((v = json_object_get(o, "plate_rate")) && json_is_number(v))
			s->opts.plate_rate = json_number_value(v);
		if ((v = json_object_get(o, "incomplete")) && json_is_number(v))
			s->opts.incomplete_pct = json_number_value(v);
		if ((v = json_object_get(o, "late")) && json_is_number(v))
			s->opts.late_pct = json_number_value(v);
	}
	snprintf(out, sizeof(out),
	         "{\"to_bounds\":\"%s\",\"open_ends_at\":\"%s\",\"rate\":%g,"
	         "\"plate_rate\":%g,\"incomplete\":%g,\"late\":%g,\"token_ttl\":%ld}",
	         s->opts.to_bounds == SIM_TO_END ? "end" : "start", ends[s->opts.open_ends_at],
	         s->opts.rate, s->opts.plate_rate, s->opts.incomplete_pct, s->opts.late_pct,
	         s->opts.token_ttl);
	sim_reply_str(r, 200, out);
}

void sim_admin_handle(struct sim *s, const char *method, const char *path, const char *body,
                      size_t len, struct http_reply *r)
{
	json_t *o = NULL;
	json_error_t jerr;
	bool get = strcmp(method, "GET") == 0, del = strcmp(method, "DELETE") == 0;
	bool post = strcmp(method, "POST") == 0, patch = strcmp(method, "PATCH") == 0;
	bool put = strcmp(method, "PUT") == 0;

	if ((post || patch || put) && len > 0) {
		o = json_loadb(body, len, 0, &jerr);
		if (o == NULL || !json_is_object(o)) {
			json_decref(o);
			{
				admin_error(r, 400, "body: a JSON object");
				return;
			}
		}
	}
	if (o == NULL)
		o = json_object();
	if (o == NULL) {
		admin_error(r, 500, "out of memory");
		return;
	}

	if (strcmp(path, "/events") == 0 && post)
		post_event(s, o, r);
	else if (strncmp(path, "/events/", 8) == 0 && patch)
		patch_event(s, path + 8, o, r);
	else if (strcmp(path, "/lprs") == 0 && post)
		post_lpr(s, o, r);
	else if (strcmp(path, "/zones") == 0)
		zones_admin(s, method, NULL, o, r);
	else if (strncmp(path, "/zones/", 7) == 0)
		zones_admin(s, method, path + 7, o, r);
	else if (strcmp(path, "/faults") == 0 && post)
		post_fault(s, o, r);
	else if (strcmp(path, "/faults") == 0 && del) {
		s->nfaults = 0;
		r->status = 204;
	} else if (strcmp(path, "/requests") == 0 && get)
		get_requests(s, r);
	else if (strcmp(path, "/requests") == 0 && del) {
		for (size_t i = 0; i < s->nreqs; i++) {
			free(s->reqs[i].path);
			free(s->reqs[i].query);
		}
		s->nreqs = 0;
		r->status = 204;
	} else if (strcmp(path, "/stats") == 0 && get)
		get_stats(s, r);
	else if (strcmp(path, "/generate") == 0 && post)
		post_generate(s, o, r);
	else if (strcmp(path, "/config") == 0 && (get || put || post))
		config_admin(s, o, !get, r);
	else
		admin_error(r, 404, "no such admin endpoint");
	json_decref(o);
}
