/* The control plane's thread: operators' commands from MQTT, call-ups from the control.wall
 * outbox queue, one live_switch_preset a second for the whole wall, the hold, the arming
 * mode, and the retained state topics (queued in the outbox for the brokers to send). */
#include "bridge/control.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge/bridge.h"
#include "bridge/metrics.h"
#include "bridge/outbox.h"
#include "bridge/tether.h"
#include "lib/log.h"
#include "lib/util.h"

#define TICK_MS 200                 /* commands wake the thread; call-ups wait a tick */
#define REFRESH_MS (10 * 60 * 1000) /* perspectives and zones, like the poller's zones */
#define CALLUP_BATCH 50
#define STATE_ZONE "control" /* the outbox ordering domain of state and results */

/* A broker with commands: true. */
struct cmd_broker {
	char *name, *prefix, *target;
};

/* A command as it arrived, queued for the thread. */
struct command {
	struct command *next;
	char *broker, *topic, *payload, *response_topic;
	size_t len;
	unsigned char *corr;
	size_t corr_len;
	bool retain, too_large;
};

/* Where a command's result goes. */
struct reply {
	int broker;
	char *command; /* the last topic level */
	json_t *request_id;
	char *response_topic;
	unsigned char *corr;
	size_t corr_len;
};

/* The switch waiting for its turn (latest wins). by HOLD_NONE: the return home. */
struct pending {
	bool set;
	char *id, *name, *rule;
	enum hold_by by;
	int rank;
	int64_t hold_ms;
	int64_t entry_id, created_ms, max_delay_ms; /* a call-up's outbox entry; 0: none */
	struct reply *reply;                        /* an operator's command; NULL: none */
	int tries;
	int64_t not_before; /* monotonic ms */
};

struct control {
	char **modes;
	size_t nmodes;
	char *home;
	int64_t manual_hold_ms;
	struct cmd_broker *brokers;
	size_t nbrokers;
	struct store *store;
	struct tether *api;
	void (*wake)(void *arg);
	void *wake_arg;

	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct command *q, **q_tail;
	bool stop;
	atomic_bool finished;

	struct control_perspectives persp;
	char *persp_state;             /* the last published <prefix>/perspectives */
	int64_t refreshed;             /* monotonic ms; 0: never */
	void (*refresh_cb)(void *arg); /* after a refresh command; see control_set_refresh_cb */
	void *refresh_arg;
	void (*persp_cb)(void *arg, const char *const *names, size_t n); /* see control.h */
	void *persp_arg;
	char mode[64];
	struct hold hold;
	char wall_id[128], wall_name[256], wall_by[160];
	int64_t wall_at; /* 0: no switch yet */
	struct pending pend;
	int64_t last_switch; /* monotonic ms of the last attempt */
	int64_t last_taken;  /* highest control.wall entry id taken */
	bool queued;         /* outbox entries queued this turn: wake the delivery loop */
};

/* ---- perspectives ----------------------------------------------------------------- */

int control_perspectives_parse(json_t *doc, struct control_perspectives *out, char *err,
                               size_t errsz)
{
	json_t *data = json_object_get(doc, "data"), *res;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!json_is_array(data)) {
		snprintf(err, errsz, "data: expected a list");
		return -1;
	}
	out->v = calloc(json_array_size(data) + 1, sizeof(*out->v));
	out->layouts = calloc(json_array_size(data) + 1, sizeof(*out->layouts));
	if (out->v == NULL || out->layouts == NULL)
		goto out_nomem;
	out->doc = json_incref(doc);
	json_array_foreach(data, i, res)
	{
		json_t *a = json_object_get(res, "attributes");
		json_t *zs = json_object_get(a, "zone_ids");
		struct hold_perspective *p = &out->v[out->n];
		const char **ids;

		if (!json_is_string(json_object_get(res, "id"))) {
			snprintf(err, errsz, "data[%zu].id: expected a string", i);
			goto out_fail;
		}
		p->id = json_string_value(json_object_get(res, "id"));
		p->name = json_is_string(json_object_get(a, "name"))
		              ? json_string_value(json_object_get(a, "name"))
		              : p->id;
		out->layouts[out->n] =
		    (char *)(json_is_string(json_object_get(a, "layout"))
		                 ? json_string_value(json_object_get(a, "layout"))
		                 : "");
		ids = calloc(json_array_size(zs) + 1, sizeof(*ids));
		if (ids == NULL)
			goto out_nomem;
		for (size_t k = 0; k < json_array_size(zs); k++)
			if (json_is_string(json_array_get(zs, k)))
				ids[p->nzones++] = json_string_value(json_array_get(zs, k));
		p->zone_ids = ids;
		out->n++;
	}
	return 0;
out_nomem:
	snprintf(err, errsz, "out of memory");
out_fail:
	control_perspectives_release(out);
	return -1;
}

void control_perspectives_release(struct control_perspectives *p)
{
	for (size_t i = 0; p->v != NULL && i < p->n; i++)
		free((void *)p->v[i].zone_ids);
	free(p->v);
	free(p->layouts); /* the strings are the document's */
	json_decref(p->doc);
	memset(p, 0, sizeof(*p));
}

/* ---- mode --------------------------------------------------------------------------- */

static bool mode_known(char *const *modes, size_t n, const char *m)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(modes[i], m) == 0)
			return true;
	return false;
}

static int mode_read(struct store *s, char *const *modes, size_t nmodes, char *out, size_t n)
{
	char v[128];
	int rc;

	snprintf(out, n, "%s", nmodes > 0 ? modes[0] : "");
	if (nmodes == 0)
		return 0;
	rc = store_control_get(s, "mode", v, sizeof(v));
	if (rc < 0)
		return -1;
	if (rc == 1 && mode_known(modes, nmodes, v))
		snprintf(out, n, "%s", v);
	return 0;
}

int control_mode_read(struct store *s, const struct config *cfg, char *out, size_t n)
{
	return mode_read(s, cfg->control.modes, cfg->control.nmodes, out, n);
}

/* ---- publishing (through the outbox) ---------------------------------------------- */

static void rfc3339(int64_t ms, char *out, size_t n)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, n, "1970-01-01T00:00:00Z");
}

static json_t *time_or_null(int64_t ms)
{
	char t[40];

	if (ms <= 0)
		return json_null();
	rfc3339(ms, t, sizeof(t));
	return json_string(t);
}

/* Queues payload for one broker (or every one when broker < 0) at <prefix>/<suffix>, or at
 * topic when it is not NULL; corr goes as correlation data (hex in extra). */
static void publish(struct control *c, int broker, const char *suffix, const char *topic,
                    const char *payload, bool retain, const unsigned char *corr, size_t corr_len)
{
	for (size_t i = 0; i < c->nbrokers; i++) {
		struct store_entry e = {0};
		json_t *extra;
		char *hex = NULL, *t = NULL;

		if (broker >= 0 && (size_t)broker != i)
			continue;
		if (topic != NULL)
			t = strdup(topic);
		else if (asprintf(&t, "%s/%s", c->brokers[i].prefix, suffix) < 0)
			t = NULL;
		extra = json_pack("{s:i, s:b}", "qos", 1, "retain", retain);
		if (corr != NULL && corr_len > 0 && (hex = malloc(corr_len * 2 + 1)) != NULL) {
			for (size_t k = 0; k < corr_len; k++)
				snprintf(hex + 2 * k, 3, "%02x", corr[k]);
			json_object_set_new(extra, "correlation", json_string(hex));
		}
		e.target = c->brokers[i].target;
		e.zone_id = STATE_ZONE;
		e.msg_id = (char *)(suffix != NULL ? suffix : "reply");
		e.topic_or_url = t;
		e.payload = (char *)payload;
		e.extra = extra ? json_dumps(extra, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
		if (t == NULL || e.extra == NULL || (corr != NULL && hex == NULL))
			log_warnx("control: unable to queue '%s' for mqtt '%s': out of memory",
			          suffix ? suffix : "reply", c->brokers[i].name);
		else if (store_outbox_put(c->store, &e) < 0)
			log_warnx("control: unable to queue '%s' for mqtt '%s': %s",
			          suffix ? suffix : "reply", c->brokers[i].name,
			          store_errmsg(c->store));
		else
			c->queued = true;
		free(e.extra);
		json_decref(extra);
		free(hex);
		free(t);
	}
}

static void publish_json(struct control *c, int broker, const char *suffix, json_t *o, bool retain)
{
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	if (s == NULL) {
		log_warnx("control: unable to encode '%s': out of memory", suffix);
		return;
	}
	publish(c, broker, suffix, NULL, s, retain, NULL, 0);
	free(s);
}

static void publish_mode(struct control *c)
{
	if (c->nmodes > 0)
		publish(c, -1, "mode", NULL, c->mode, true, NULL, 0);
}

static void publish_wall(struct control *c)
{
	json_t *o;

	if (c->wall_at == 0)
		return;
	o = json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", c->wall_id, "name", c->wall_name, "by",
	              c->wall_by, "at", time_or_null(c->wall_at), "hold_until",
	              time_or_null(hold_active(&c->hold, util_now_ms()) ? c->hold.until_ms : 0));
	publish_json(c, -1, "perspective", o, true);
	json_decref(o);
}

/* ---- the wall's state in state.db ------------------------------------------------- */

static void wall_save(struct control *c)
{
	json_t *o =
	    json_pack("{s:s, s:s, s:s, s:I, s:i, s:i, s:I}", "id", c->wall_id, "name", c->wall_name,
	              "by", c->wall_by, "at_ms", (json_int_t)c->wall_at, "hold_by", (int)c->hold.by,
	              "hold_rank", c->hold.rank, "hold_until_ms", (json_int_t)c->hold.until_ms);
	char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;

	if (s == NULL || store_control_put(c->store, "wall", s) < 0)
		log_warnx("control: unable to save the wall's hold: %s",
		          s ? store_errmsg(c->store) : "out of memory");
	free(s);
	json_decref(o);
}

static const char *str_or_empty(const json_t *v)
{
	return json_is_string(v) ? json_string_value(v) : "";
}

static void wall_load(struct control *c)
{
	char v[1024];
	json_t *o;
	int by;

	hold_start(&c->hold, HOLD_NONE, -1, 0, 0);
	if (store_control_get(c->store, "wall", v, sizeof(v)) != 1)
		return;
	o = json_loads(v, 0, NULL);
	if (o == NULL)
		return;
	snprintf(c->wall_id, sizeof(c->wall_id), "%s", str_or_empty(json_object_get(o, "id")));
	snprintf(c->wall_name, sizeof(c->wall_name), "%s",
	         str_or_empty(json_object_get(o, "name")));
	snprintf(c->wall_by, sizeof(c->wall_by), "%s", str_or_empty(json_object_get(o, "by")));
	c->wall_at = json_integer_value(json_object_get(o, "at_ms"));
	by = (int)json_integer_value(json_object_get(o, "hold_by"));
	if (by == HOLD_RULE || by == HOLD_COMMAND) {
		c->hold.by = (enum hold_by)by;
		c->hold.rank = (int)json_integer_value(json_object_get(o, "hold_rank"));
		c->hold.until_ms = json_integer_value(json_object_get(o, "hold_until_ms"));
	}
	json_decref(o);
}

/* ---- results ------------------------------------------------------------------------ */

static void reply_free(struct reply *r)
{
	if (r == NULL)
		return;
	free(r->command);
	json_decref(r->request_id);
	free(r->response_topic);
	free(r->corr);
	free(r);
}

/* The one answer of a command on <prefix>/cmd/result, and on its MQTT 5 response topic
 * when it gave one with correlation data. Frees r. */
static void answer(struct control *c, struct reply *r, bool ok, const char *error)
{
	json_t *o;
	char *s;

	o = json_pack("{s:s, s:b, s:o, s:O, s:o}", "command", r->command, "ok", ok, "error",
	              error ? json_string(error) : json_null(), "request_id",
	              r->request_id ? r->request_id : json_null(), "at",
	              time_or_null(util_now_ms()));
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	if (s != NULL) {
		publish(c, r->broker, "cmd/result", NULL, s, false, NULL, 0);
		if (r->response_topic != NULL && r->corr != NULL)
			publish(c, r->broker, NULL, r->response_topic, s, false, r->corr,
			        r->corr_len);
	} else {
		log_warnx("control: unable to encode a command result: out of memory");
	}
	free(s);
	json_decref(o);
	reply_free(r);
}

/* ---- switching ---------------------------------------------------------------------- */

static void pending_clear(struct pending *p)
{
	free(p->id);
	free(p->name);
	free(p->rule);
	reply_free(p->reply);
	memset(p, 0, sizeof(*p));
}

static void entry_dead(struct control *c, int64_t id, const char *reason)
{
	log_warnx("%s: outbox entry %lld is a dead letter: %s", OUTBOX_WALL, (long long)id, reason);
	if (store_outbox_to_dlq(c->store, id, 0, reason) < 0)
		log_warnx("%s: unable to record the dead letter: %s", OUTBOX_WALL,
		          store_errmsg(c->store));
	metrics_add(M_DEAD, 1);
}

static void entry_done(struct control *c, int64_t id)
{
	if (store_outbox_ack(c->store, id) < 0)
		log_warnx("%s: unable to remove entry %lld: %s", OUTBOX_WALL, (long long)id,
		          store_errmsg(c->store));
}

/* Makes p the switch to do next; the one it replaces is answered or dropped. */
static void queue_switch(struct control *c, struct pending *p)
{
	if (c->pend.set) {
		log_info("wall: switch to '%s' superseded by one to '%s'", c->pend.name, p->name);
		if (c->pend.reply != NULL) {
			answer(c, c->pend.reply, false, "superseded by a later switch");
			c->pend.reply = NULL;
		}
		if (c->pend.entry_id > 0)
			entry_done(c, c->pend.entry_id);
		pending_clear(&c->pend);
	}
	c->pend = *p;
	c->pend.set = true;
}

static int set_pending(struct pending *p, const struct hold_perspective *hp, enum hold_by by,
                       const char *rule)
{
	memset(p, 0, sizeof(*p));
	p->id = strdup(hp->id);
	p->name = strdup(hp->name);
	p->rule = rule ? strdup(rule) : NULL;
	p->by = by;
	p->rank = -1;
	if (p->id == NULL || p->name == NULL || (rule && p->rule == NULL)) {
		pending_clear(p);
		return -1;
	}
	return 0;
}

/* The switch's turn: at most one attempt a second for the whole wall. */
static void run_switch(struct control *c)
{
	struct pending *p = &c->pend;
	struct tether_req req = {.ep = TETHER_LIVE_SWITCH, .from_ms = -1, .to_ms = -1, .at_ms = -1};
	int64_t mono = util_mono_ms(), now = util_now_ms(), for_ms;
	char why[400];

	if (!p->set || mono < p->not_before || mono - c->last_switch < CONTROL_SWITCH_GAP_MS)
		return;
	if (p->entry_id > 0 && now - p->created_ms > p->max_delay_ms) {
		snprintf(why, sizeof(why), "stale: not sent within max_delay of %llds",
		         (long long)(p->max_delay_ms / 1000));
		entry_dead(c, p->entry_id, why);
		pending_clear(p);
		return;
	}
	req.id = p->id;
	c->last_switch = mono;
	if (tether_run(c->api, &req, 1) < 0 || req.status != TETHER_OK) {
		metrics_add(M_SWITCH_FAILURES, 1);
		snprintf(why, sizeof(why), "live_switch_preset failed: %s (%s)", req.error,
		         tether_status_name(req.status));
		tether_req_release(&req);
		if (++p->tries < CONTROL_SWITCH_TRIES) {
			log_debug("wall: %s, trying again", why);
			p->not_before = mono + (int64_t)p->tries * CONTROL_SWITCH_GAP_MS;
			return;
		}
		log_warnx("wall: unable to switch to '%s': %s", p->name, why);
		if (p->reply != NULL) {
			answer(c, p->reply, false, why);
			p->reply = NULL;
		}
		if (p->entry_id > 0)
			entry_dead(c, p->entry_id, why);
		pending_clear(p);
		return;
	}
	tether_req_release(&req);
	metrics_add(M_SWITCHES, 1);
	for_ms = p->by == HOLD_COMMAND ? c->manual_hold_ms : p->by == HOLD_RULE ? p->hold_ms : 0;
	hold_start(&c->hold, p->by, p->rank, now, for_ms);
	snprintf(c->wall_id, sizeof(c->wall_id), "%s", p->id);
	snprintf(c->wall_name, sizeof(c->wall_name), "%s", p->name);
	if (p->by == HOLD_RULE)
		snprintf(c->wall_by, sizeof(c->wall_by), "rule:%s", p->rule ? p->rule : "");
	else
		snprintf(c->wall_by, sizeof(c->wall_by), "%s",
		         p->by == HOLD_COMMAND ? "command" : "home");
	c->wall_at = now;
	wall_save(c);
	log_info("wall: switched to '%s' (%s)%s", p->name, c->wall_by,
	         hold_active(&c->hold, now) ? ", holding" : "");
	publish_wall(c);
	if (p->reply != NULL) {
		answer(c, p->reply, true, NULL);
		p->reply = NULL;
	}
	if (p->entry_id > 0)
		entry_done(c, p->entry_id);
	pending_clear(p);
}

/* A hold that ran out with nothing newer: back home, when there is one. */
static void check_hold(struct control *c)
{
	int64_t now = util_now_ms();
	const struct hold_perspective *hp;
	struct pending p;

	if (c->pend.set || !hold_ended(&c->hold, now))
		return;
	log_info("wall: the %s's hold is over", hold_by_name(c->hold.by));
	hold_start(&c->hold, HOLD_NONE, -1, now, 0);
	wall_save(c);
	if (c->home == NULL) {
		publish_wall(c);
		return;
	}
	hp = hold_pick(c->persp.v, c->persp.n, c->home, NULL);
	if (hp == NULL) {
		log_warnx("wall: home_perspective '%s' is not a perspective", c->home);
		publish_wall(c);
		return;
	}
	if (set_pending(&p, hp, HOLD_NONE, NULL) == 0)
		queue_switch(c, &p);
}

/* The due call-ups of the control.wall queue, in order. */
static void take_callups(struct control *c)
{
	struct store_entry *v = NULL;
	size_t n = 0;
	int64_t now = util_now_ms();
	char why[400];

	if (store_outbox_fetch_after(c->store, OUTBOX_WALL, now, c->last_taken, CALLUP_BATCH, &v,
	                             &n) < 0) {
		log_warnx("%s: %s", OUTBOX_WALL, store_errmsg(c->store));
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct store_entry *e = &v[i];
		json_t *x = e->extra ? json_loads(e->extra, 0, NULL) : NULL;
		const char *spec = json_string_value(json_object_get(x, "perspective"));
		const char *rule = json_string_value(json_object_get(x, "rule"));
		int64_t max_delay = json_integer_value(json_object_get(x, "max_delay_ms"));
		int rank = (int)json_integer_value(json_object_get(x, "rank"));
		bool top = json_is_true(json_object_get(x, "top"));
		const struct hold_perspective *hp;
		struct hold virt = c->hold;
		struct pending p;

		c->last_taken = e->id;
		if (spec == NULL) {
			entry_dead(c, e->id, "bad outbox entry");
			goto next;
		}
		if (max_delay <= 0)
			max_delay = RULES_MAX_DELAY_DEFAULT_MS;
		if (now - e->created_ms > max_delay) {
			snprintf(why, sizeof(why),
			         "stale: not sent within max_delay of %llds (queued %llds ago)",
			         (long long)(max_delay / 1000),
			         (long long)((now - e->created_ms) / 1000));
			entry_dead(c, e->id, why);
			goto next;
		}
		hp = hold_pick(c->persp.v, c->persp.n, spec, e->zone_id);
		if (hp == NULL) {
			if (strcmp(spec, "auto") == 0)
				snprintf(why, sizeof(why),
				         "no perspective shows zone '%s' (perspective: auto)",
				         e->zone_id);
			else
				snprintf(why, sizeof(why), "unknown perspective '%s'", spec);
			entry_dead(c, e->id, why);
			goto next;
		}
		/* a switch waiting for its turn holds like the one it will be */
		if (c->pend.set && c->pend.by != HOLD_NONE) {
			virt.by = c->pend.by;
			virt.rank = c->pend.rank;
			virt.until_ms = INT64_MAX;
			if (c->pend.by == HOLD_RULE && c->pend.hold_ms == 0)
				virt = c->hold;
		}
		if (!hold_callup_allowed(&c->hold, now, rank, top) ||
		    !hold_callup_allowed(&virt, now, rank, top)) {
			log_info("wall: call-up of '%s' by rule '%s' dropped: the wall is held by "
			         "a %s",
			         hp->name, rule ? rule : "?",
			         hold_by_name(c->pend.set ? c->pend.by : c->hold.by));
			metrics_add(M_CALLUPS_DROPPED, 1);
			entry_done(c, e->id);
			goto next;
		}
		if (set_pending(&p, hp, HOLD_RULE, rule) < 0) {
			log_warnx("%s: out of memory", OUTBOX_WALL);
			goto next;
		}
		p.rank = rank;
		p.hold_ms = json_integer_value(json_object_get(x, "hold_ms"));
		p.entry_id = e->id;
		p.created_ms = e->created_ms;
		p.max_delay_ms = max_delay;
		queue_switch(c, &p);
	next:
		json_decref(x);
	}
	store_entries_free(v, n);
}

/* ---- perspectives refresh --------------------------------------------------------- */

/* Hands the perspectives' names to the perspectives callback, if any. */
static void perspectives_tell(struct control *c)
{
	const char **names;

	if (c->persp_cb == NULL)
		return;
	if ((names = calloc(c->persp.n + 1, sizeof(*names))) == NULL) {
		log_warnx("control: out of memory handing on the perspectives");
		return;
	}
	for (size_t i = 0; i < c->persp.n; i++)
		names[i] = c->persp.v[i].name;
	c->persp_cb(c->persp_arg, names, c->persp.n);
	free(names);
}

/* Re-reads perspectives and zones; publishes <prefix>/perspectives when they changed.
 * 0, or -1 with err (the old list stays). */
static int refresh(struct control *c, char *err, size_t errsz)
{
	struct tether_req req[2] = {
	    {.ep = TETHER_PERSPECTIVES, .from_ms = -1, .to_ms = -1, .at_ms = -1},
	    {.ep = TETHER_ZONES, .from_ms = -1, .to_ms = -1, .at_ms = -1},
	};
	struct control_perspectives np;
	struct tether_zone *tz = NULL;
	size_t nz = 0;
	json_t *list = NULL;
	char *s = NULL;
	int rc = -1;

	c->refreshed = util_mono_ms();
	if (tether_run(c->api, req, 2) < 0 || req[0].status != TETHER_OK) {
		snprintf(err, errsz, "perspectives: %s (%s)", req[0].error,
		         tether_status_name(req[0].status));
		goto out;
	}
	if (control_perspectives_parse(req[0].doc, &np, err, errsz) < 0)
		goto out;
	if (req[1].status == TETHER_OK)
		tether_zones_list(req[1].doc, &tz, &nz, err, errsz);
	list = json_array();
	for (size_t i = 0; list != NULL && i < np.n; i++) {
		json_t *ids = json_array(), *names = json_array();
		for (size_t k = 0; k < np.v[i].nzones; k++) {
			const char *id = np.v[i].zone_ids[k], *name = NULL;
			for (size_t z = 0; z < nz && name == NULL; z++)
				if (strcmp(tz[z].id, id) == 0)
					name = tz[z].name;
			json_array_append_new(ids, json_string(id));
			if (name != NULL)
				json_array_append_new(names, json_string(name));
		}
		json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:o, s:o}", "id", np.v[i].id,
		                                      "name", np.v[i].name, "layout", np.layouts[i],
		                                      "zone_ids", ids, "zones", names));
	}
	s = list ? json_dumps(list, JSON_COMPACT) : NULL;
	if (s == NULL) {
		snprintf(err, errsz, "out of memory");
		control_perspectives_release(&np);
		goto out;
	}
	control_perspectives_release(&c->persp);
	c->persp = np;
	if (c->persp_state == NULL || strcmp(c->persp_state, s) != 0) {
		log_info("perspectives: %zu", np.n);
		publish(c, -1, "perspectives", NULL, s, true, NULL, 0);
		perspectives_tell(c);
		free(c->persp_state);
		c->persp_state = s;
		s = NULL;
	}
	rc = 0;
out:
	free(s);
	free(tz);
	json_decref(list);
	tether_req_release(&req[0]);
	tether_req_release(&req[1]);
	return rc;
}

/* ---- commands ----------------------------------------------------------------------- */

static void command_free(struct command *cmd)
{
	free(cmd->broker);
	free(cmd->topic);
	free(cmd->payload);
	free(cmd->response_topic);
	free(cmd->corr);
	free(cmd);
}

void control_set_refresh_cb(struct control *c, void (*cb)(void *arg), void *arg)
{
	c->refresh_cb = cb;
	c->refresh_arg = arg;
}

void control_set_perspectives_cb(struct control *c,
                                 void (*cb)(void *arg, const char *const *names, size_t n),
                                 void *arg)
{
	c->persp_cb = cb;
	c->persp_arg = arg;
}

void control_command_push(struct control *c, const char *broker, const struct mqtt_message *msg)
{
	struct command *cmd = calloc(1, sizeof(*cmd));

	if (cmd == NULL)
		goto out_nomem;
	cmd->broker = strdup(broker);
	cmd->topic = strdup(msg->topic);
	cmd->retain = msg->retain;
	cmd->too_large = msg->len > CONTROL_MAX_PAYLOAD;
	cmd->len = cmd->too_large ? 0 : msg->len;
	cmd->payload = malloc(cmd->len + 1);
	if (cmd->payload != NULL) {
		memcpy(cmd->payload, msg->payload, cmd->len);
		cmd->payload[cmd->len] = '\0';
	}
	if (msg->response_topic != NULL && msg->correlation != NULL) {
		cmd->response_topic = strdup(msg->response_topic);
		cmd->corr = malloc(msg->correlation_len + 1);
		if (cmd->corr != NULL)
			memcpy(cmd->corr, msg->correlation, msg->correlation_len);
		cmd->corr_len = msg->correlation_len;
		if (cmd->response_topic == NULL || cmd->corr == NULL)
			goto out_free;
	}
	if (cmd->broker == NULL || cmd->topic == NULL || cmd->payload == NULL)
		goto out_free;
	pthread_mutex_lock(&c->mu);
	*c->q_tail = cmd;
	c->q_tail = &cmd->next;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return;
out_free:
	command_free(cmd);
out_nomem:
	log_warnx("control: command on '%s' dropped: out of memory", msg->topic);
}

static void reject(struct control *c, struct reply *r, enum metric m, const char *broker,
                   const char *why)
{
	log_warnx("command '%s' on mqtt '%s' rejected: %s", r->command, broker, why);
	metrics_add(m, 1);
	answer(c, r, false, why);
}

int control_command_arg(const char *payload, const char *key, json_t **request_id, char **arg,
                        char *why, size_t whysz)
{
	json_error_t jerr;
	json_t *j, *v;
	size_t len;

	*arg = NULL;
	*request_id = NULL;
	while (*payload == ' ' || *payload == '\t' || *payload == '\n' || *payload == '\r')
		payload++;
	len = strlen(payload);
	while (len > 0 && (payload[len - 1] == ' ' || payload[len - 1] == '\n' ||
	                   payload[len - 1] == '\r' || payload[len - 1] == '\t'))
		len--;
	if (len == 0)
		return 0;
	if (payload[0] != '{' && payload[0] != '"') {
		if (key == NULL) {
			snprintf(why, whysz,
			         "malformed payload: expected nothing or a JSON object");
			return -1;
		}
		*arg = strndup(payload, len);
		return *arg ? 0 : -1;
	}
	j = json_loadb(payload, len, JSON_DECODE_ANY, &jerr);
	if (j == NULL) {
		/* jansson quotes the payload near the error, bytes and all: the reason goes into
		 * a JSON answer, so it must be UTF-8, and is not cut inside a character */
		char *text = util_utf8_clean(jerr.text);
		snprintf(why, whysz, "malformed JSON: %s", text ? text : "unreadable");
		free(text);
		why[util_utf8_cut(why, SIZE_MAX, SIZE_MAX)] = '\0';
		return -1;
	}
	if (json_is_string(j) && key != NULL) {
		if ((*arg = strdup(json_string_value(j))) == NULL)
			goto out_nomem;
	} else if (json_is_object(j)) {
		if ((v = json_object_get(j, "request_id")) != NULL && !json_is_null(v))
			*request_id = json_incref(v);
		v = key ? json_object_get(j, key) : NULL;
		if (v != NULL && !json_is_string(v)) {
			snprintf(why, whysz, "malformed JSON: '%s' must be a string", key);
			json_decref(j);
			return -1;
		}
		if (v != NULL && (*arg = strdup(json_string_value(v))) == NULL)
			goto out_nomem;
	} else {
		snprintf(why, whysz, "malformed JSON: expected %s",
		         key ? "a string or an object" : "an object");
		json_decref(j);
		return -1;
	}
	json_decref(j);
	return 0;
out_nomem:
	snprintf(why, whysz, "out of memory");
	json_decref(j);
	json_decref(*request_id);
	*request_id = NULL;
	return -1;
}

static void handle_command(struct control *c, struct command *cmd)
{
	struct reply *r;
	const char *name;
	char why[400], *arg = NULL, list[256] = "";
	int b = -1;
	size_t plen;

	for (size_t i = 0; i < c->nbrokers && b < 0; i++)
		if (strcmp(c->brokers[i].name, cmd->broker) == 0)
			b = (int)i;
	if (b < 0)
		return;
	plen = strlen(c->brokers[b].prefix);
	if (strncmp(cmd->topic, c->brokers[b].prefix, plen) != 0 ||
	    strncmp(cmd->topic + plen, "/cmd/", 5) != 0)
		return;
	name = cmd->topic + plen + 5;
	if (strcmp(name, "result") == 0)
		return; /* our own answers come back through cmd/# */
	if (cmd->retain && cmd->len == 0 && !cmd->too_large)
		return; /* the deletion of a retained message: nothing was asked */
	r = calloc(1, sizeof(*r));
	if (r == NULL || (r->command = strdup(name)) == NULL) {
		free(r);
		log_warnx("control: command '%s' dropped: out of memory", cmd->topic);
		return;
	}
	r->broker = b;
	if (cmd->response_topic != NULL) {
		r->response_topic = cmd->response_topic;
		r->corr = cmd->corr;
		r->corr_len = cmd->corr_len;
		cmd->response_topic = NULL;
		cmd->corr = NULL;
	}
	if (cmd->retain) {
		reject(c, r, M_CMD_REJ_RETAINED, cmd->broker,
		       "retained command not executed (a broker restart would replay it)");
		return;
	}
	if (cmd->too_large) {
		snprintf(why, sizeof(why), "payload over %d bytes", CONTROL_MAX_PAYLOAD);
		reject(c, r, M_CMD_REJ_TOO_LARGE, cmd->broker, why);
		return;
	}
	if (strcmp(name, "perspective") != 0 && strcmp(name, "mode") != 0 &&
	    strcmp(name, "refresh") != 0) {
		snprintf(why, sizeof(why), "unknown command '%s' (perspective, mode or refresh)",
		         name);
		reject(c, r, M_CMD_REJ_UNKNOWN_COMMAND, cmd->broker, why);
		return;
	}
	if (strlen(cmd->payload) != cmd->len) {
		reject(c, r, M_CMD_REJ_MALFORMED, cmd->broker, "malformed payload: a NUL byte");
		return;
	}
	if (control_command_arg(cmd->payload, strcmp(name, "refresh") == 0 ? NULL : name,
	                        &r->request_id, &arg, why, sizeof(why)) < 0) {
		reject(c, r, M_CMD_REJ_MALFORMED, cmd->broker, why);
		return;
	}
	if (strcmp(name, "refresh") == 0) {
		metrics_add(M_CMD_ACCEPTED, 1);
		log_info("command refresh on mqtt '%s'", cmd->broker);
		if (c->refresh_cb != NULL)
			c->refresh_cb(c->refresh_arg);
		if (refresh(c, why, sizeof(why)) < 0)
			answer(c, r, false, why);
		else
			answer(c, r, true, NULL);
	} else if (arg == NULL) {
		snprintf(why, sizeof(why), "malformed payload: no %s given", name);
		reject(c, r, M_CMD_REJ_MALFORMED, cmd->broker, why);
	} else if (strcmp(name, "mode") == 0) {
		if (!mode_known(c->modes, c->nmodes, arg)) {
			for (size_t i = 0; i < c->nmodes; i++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
				         i ? ", " : "", c->modes[i]);
			snprintf(why, sizeof(why), "unknown mode '%.100s' (modes: %s)", arg,
			         c->nmodes ? list : "none configured");
			reject(c, r, M_CMD_REJ_UNKNOWN_MODE, cmd->broker, why);
		} else if (store_control_put(c->store, "mode", arg) < 0) {
			snprintf(why, sizeof(why), "unable to save the mode: %s",
			         store_errmsg(c->store));
			log_warnx("command mode on mqtt '%s': %s", cmd->broker, why);
			answer(c, r, false, why);
		} else {
			metrics_add(M_CMD_ACCEPTED, 1);
			log_info("mode: '%s' by command on mqtt '%s'", arg, cmd->broker);
			snprintf(c->mode, sizeof(c->mode), "%s", arg);
			publish_mode(c);
			answer(c, r, true, NULL);
		}
	} else {
		const struct hold_perspective *hp =
		    strcmp(arg, "auto") == 0 ? NULL : hold_pick(c->persp.v, c->persp.n, arg, NULL);
		struct pending p;

		if (hp == NULL) {
			snprintf(why, sizeof(why), "unknown perspective '%.200s'", arg);
			reject(c, r, M_CMD_REJ_UNKNOWN_PERSPECTIVE, cmd->broker, why);
		} else if (set_pending(&p, hp, HOLD_COMMAND, NULL) < 0) {
			answer(c, r, false, "out of memory");
		} else {
			metrics_add(M_CMD_ACCEPTED, 1);
			log_info("command perspective '%s' on mqtt '%s'", hp->name, cmd->broker);
			p.reply = r;
			queue_switch(c, &p);
		}
	}
	free(arg);
}

/* ---- the thread --------------------------------------------------------------------- */

static void watch_mode(struct control *c)
{
	char m[64];

	if (c->nmodes == 0 || mode_read(c->store, c->modes, c->nmodes, m, sizeof(m)) < 0)
		return;
	if (strcmp(m, c->mode) != 0) {
		log_info("mode: '%s' (changed in the state database)", m);
		snprintf(c->mode, sizeof(c->mode), "%s", m);
		publish_mode(c);
	}
}

static void *run(void *arg)
{
	struct control *c = arg;
	char err[300];

	if (mode_read(c->store, c->modes, c->nmodes, c->mode, sizeof(c->mode)) < 0)
		log_warnx("control: unable to read the mode: %s", store_errmsg(c->store));
	wall_load(c);
	if (refresh(c, err, sizeof(err)) < 0)
		log_warnx("control: %s", err);
	publish_mode(c);
	publish_wall(c);
	for (;;) {
		struct command *q;
		struct timespec ts;

		pthread_mutex_lock(&c->mu);
		if (c->stop) {
			pthread_mutex_unlock(&c->mu);
			break;
		}
		q = c->q;
		c->q = NULL;
		c->q_tail = &c->q;
		pthread_mutex_unlock(&c->mu);
		while (q != NULL) {
			struct command *next = q->next;
			handle_command(c, q);
			command_free(q);
			q = next;
		}
		if (util_mono_ms() - c->refreshed >= REFRESH_MS && refresh(c, err, sizeof(err)) < 0)
			log_warnx("control: %s", err);
		watch_mode(c);
		take_callups(c);
		check_hold(c);
		run_switch(c);
		if (c->queued && c->wake != NULL)
			c->wake(c->wake_arg);
		c->queued = false;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&c->mu);
		if (!c->stop && c->q == NULL)
			pthread_cond_timedwait(&c->cv, &c->mu, &ts);
		pthread_mutex_unlock(&c->mu);
	}
	atomic_store(&c->finished, true);
	return NULL;
}

struct control *control_new(const struct config *cfg, const char *db_path, void (*wake)(void *arg),
                            void *arg, char *err, size_t errsz)
{
	struct control *c = calloc(1, sizeof(*c));
	struct tether_opts o;
	bool ok = true;

	if (c == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	c->q_tail = &c->q;
	c->wake = wake;
	c->wake_arg = arg;
	c->last_switch = util_mono_ms() - CONTROL_SWITCH_GAP_MS;
	c->manual_hold_ms = cfg->control.manual_hold_ms;
	c->home = cfg->control.home_perspective ? strdup(cfg->control.home_perspective) : NULL;
	c->modes = calloc(cfg->control.nmodes + 1, sizeof(*c->modes));
	c->brokers = calloc(cfg->nmqtt + 1, sizeof(*c->brokers));
	if (c->modes == NULL || c->brokers == NULL || (cfg->control.home_perspective && !c->home))
		ok = false;
	for (size_t i = 0; ok && i < cfg->control.nmodes; i++)
		ok = (c->modes[c->nmodes++] = strdup(cfg->control.modes[i])) != NULL;
	for (size_t i = 0; ok && i < cfg->nmqtt; i++) {
		struct cmd_broker *b;
		if (!cfg->mqtt[i].commands)
			continue;
		b = &c->brokers[c->nbrokers++];
		b->name = strdup(cfg->mqtt[i].name);
		b->prefix = strdup(cfg->mqtt[i].topic_prefix);
		b->target = outbox_target("mqtt", cfg->mqtt[i].name);
		ok = b->name && b->prefix && b->target;
	}
	if (!ok) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	c->store = store_open(db_path, err, errsz);
	if (c->store == NULL)
		goto fail;
	bridge_tether_opts(cfg, &o);
	o.concurrency = 2;
	c->api = tether_new(&o, err, errsz);
	if (c->api == NULL)
		goto fail;
	return c;
fail:
	control_free(c);
	return NULL;
}

int control_start(struct control *c)
{
	if (pthread_create(&c->thread, NULL, run, c) != 0)
		return -1;
	c->started = true;
	return 0;
}

int control_stop_timed(struct control *c, int64_t ms)
{
	int64_t end = util_mono_ms() + ms;

	if (c == NULL || !c->started)
		return 0;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	while (!atomic_load(&c->finished) && util_mono_ms() < end) {
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (!atomic_load(&c->finished))
		return -1;
	pthread_join(c->thread, NULL);
	c->started = false;
	return 0;
}

void control_free(struct control *c)
{
	struct command *q;

	if (c == NULL)
		return;
	while ((q = c->q) != NULL) {
		c->q = q->next;
		command_free(q);
	}
	pending_clear(&c->pend);
	control_perspectives_release(&c->persp);
	free(c->persp_state);
	for (size_t i = 0; i < c->nmodes; i++)
		free(c->modes[i]);
	free(c->modes);
	for (size_t i = 0; i < c->nbrokers; i++) {
		free(c->brokers[i].name);
		free(c->brokers[i].prefix);
		free(c->brokers[i].target);
	}
	free(c->brokers);
	free(c->home);
	tether_free(c->api);
	store_close(c->store);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

/* ---- the CLI ------------------------------------------------------------------------ */

/* GET /perspectives into *out. 0, or -1 (said on stderr). */
static int cli_perspectives(struct tether *api, struct control_perspectives *out)
{
	struct tether_req req = {
	    .ep = TETHER_PERSPECTIVES, .from_ms = -1, .to_ms = -1, .at_ms = -1};
	char err[300];

	if (tether_run(api, &req, 1) < 0 || req.status != TETHER_OK) {
		fprintf(stderr, "perspectives: %s (%s)\n", req.error,
		        tether_status_name(req.status));
		tether_req_release(&req);
		return -1;
	}
	if (control_perspectives_parse(req.doc, out, err, sizeof(err)) < 0) {
		fprintf(stderr, "perspectives: %s\n", err);
		tether_req_release(&req);
		return -1;
	}
	tether_req_release(&req);
	return 0;
}

static int cli_mode(struct config *cfg, int argc, char **argv)
{
	struct store *s;
	char err[512], mode[64], *db;
	int rc = 1;

	if (cfg->control.nmodes == 0) {
		fprintf(stderr, "%s: mode needs control.modes\n", cfg->file);
		return 1;
	}
	if (argc == 1 && !config_mode_valid(cfg, argv[0])) {
		fprintf(stderr, "unknown mode '%s' (modes:", argv[0]);
		for (size_t i = 0; i < cfg->control.nmodes; i++)
			fprintf(stderr, " %s", cfg->control.modes[i]);
		fprintf(stderr, ")\n");
		return 1;
	}
	if (util_mkdirs(cfg->state_dir) < 0) {
		fprintf(stderr, "unable to create state_dir '%s': %s\n", cfg->state_dir,
		        strerror(errno));
		return 1;
	}
	if ((db = store_path(cfg->state_dir)) == NULL) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	s = store_open(db, err, sizeof(err));
	free(db);
	if (s == NULL) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (argc == 0) {
		if (control_mode_read(s, cfg, mode, sizeof(mode)) < 0)
			fprintf(stderr, "unable to read the mode: %s\n", store_errmsg(s));
		else
			rc = printf("%s\n", mode) < 0;
	} else if (store_control_put(s, "mode", argv[0]) < 0) {
		fprintf(stderr, "unable to save the mode: %s\n", store_errmsg(s));
	} else {
		printf("mode: %s\n", argv[0]);
		rc = 0;
	}
	store_close(s);
	return rc;
}

int control_cli(const char *path, const char *command, int argc, char **argv)
{
	struct cfg_errors errs = {0};
	struct config *cfg = config_load(path, &errs);
	struct control_perspectives ps = {0};
	struct tether_opts o;
	struct tether *api = NULL;
	char err[512];
	int rc = 1;

	log_init(LOG_LEVEL_WARN, false);
	if (cfg == NULL) {
		cfg_errors_print(&errs, stderr);
		cfg_errors_release(&errs);
		return 1;
	}
	cfg_errors_release(&errs);
	if (strcmp(command, "mode") == 0) {
		rc = cli_mode(cfg, argc, argv);
		goto out_free_cfg;
	}
	bridge_tether_opts(cfg, &o);
	o.concurrency = 1;
	if ((api = tether_new(&o, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		goto out_free_cfg;
	}
	if (cli_perspectives(api, &ps) < 0)
		goto out_free_api;
	if (strcmp(command, "perspectives") == 0) {
		for (size_t i = 0; i < ps.n; i++) {
			printf("%s\t%s\t%s\t", ps.v[i].id, ps.v[i].name, ps.layouts[i]);
			for (size_t k = 0; k < ps.v[i].nzones; k++)
				printf("%s%s", k ? "," : "", ps.v[i].zone_ids[k]);
			printf("\n");
		}
		rc = 0;
	} else {
		const struct hold_perspective *hp =
		    strcmp(argv[0], "auto") == 0 ? NULL : hold_pick(ps.v, ps.n, argv[0], NULL);
		struct tether_req req = {
		    .ep = TETHER_LIVE_SWITCH, .from_ms = -1, .to_ms = -1, .at_ms = -1};
		if (hp == NULL) {
			fprintf(stderr, "unknown perspective '%s'\n", argv[0]);
			goto out_release;
		}
		req.id = hp->id;
		if (tether_run(api, &req, 1) < 0 || req.status != TETHER_OK) {
			fprintf(stderr, "switch to '%s': %s (%s)\n", hp->name, req.error,
			        tether_status_name(req.status));
		} else {
			printf("switched to '%s' (%s)\n", hp->name, hp->id);
			rc = 0;
		}
		tether_req_release(&req);
	}
out_release:
	control_perspectives_release(&ps);
out_free_api:
	tether_free(api);
out_free_cfg:
	config_free(cfg);
	return rc;
}
