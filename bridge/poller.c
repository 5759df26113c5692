/* The poller thread. One cycle: refresh zones when due, plan the API requests (per zone: the
 * event window, the events open now, open events older than the window, the plate window)
 * and run them a few zones at a time, a fetch thread asking the next zones while this one
 * commits the last: per zone its messages with their dedup records a chunk at a time, then
 * its cursors, or, on any failure, nothing more, so the next cycle asks again. A crash can
 * repeat a message (same id), never lose one. */
#include "bridge/poller.h"
#include "bridge/control.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "lib/log.h"
#include "lib/retry.h"
#include "bridge/bridge.h"
#include "bridge/catchup.h"
#include "bridge/homeassistant.h"
#include "bridge/metrics.h"
#include "bridge/outbox.h"
#include "bridge/split.h"
#include "bridge/store.h"
#include "bridge/tether.h"
#include "bridge/tmetrics.h"
#include "rules/normalize.h"
#include "rules/phase.h"

#define ZONES_REFRESH_MS (10 * 60 * 1000)
#define MAX_FOLLOW_PER_ZONE 50 /* open events followed with ?at= per cycle */
#define SEEN_KEEP_MS (7 * 24 * 3600 * 1000LL)
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS (5 * 60 * 1000)
#define RATE_DEFAULT_MS 30000
#define WATCH_RELOAD_MIN_MS 60000
#define TRIM_AFTER 10000               /* outbox entries in one cycle */
#define TRIM_BATCH ((size_t)8 << 20)   /* bodies and documents of one batch, bytes */
#define PRUNE_EVERY_MS (3600 * 1000LL) /* dedup records and expired rule state */
#define NS_PER_MS 1000000LL
#define NS_PER_S 1000000000LL

struct zone {
	char *id, *name;
	int64_t backoff_ms;                   /* current backoff, 0 when healthy */
	int64_t next_try_ms;                  /* wall ms before which the zone is not polled */
	bool failing;                         /* for logging state changes once */
	int fail_status;                      /* enum tether_status of the streak's last failure */
	struct win_split ev_split, lpr_split; /* windows asked in pieces (split.h) */
	int64_t ev_polled, lpr_polled; /* the cycle that brought a window up to date, 0: behind */
};

/* What one zone asks in a cycle; indexes into the batch. */
struct zplan {
	int win_ev, at_now, win_lpr; /* -1 when not asked */
	int follow_first, nfollow;
	int64_t ev_from, ev_to, lpr_from, lpr_to;
	bool ev_backfill, lpr_backfill;
	bool ev_cursor, lpr_cursor; /* committing moves the cursor (not a split's middle piece) */
	size_t ev_count, lpr_count; /* resources the windows held */
	bool asked;
};

/* The fetch thread: runs the API requests of one batch at a time, so that the next batch is
 * on its way while the poller thread commits the last. The handoff: the poller thread sets
 * the job (api, reqs, n) and busy under mu; the fetch thread runs it (tether_run), then
 * clears busy. While busy, the job's requests and the tether handle are the fetch thread's
 * alone; everything else is the poller thread's. The poller thread waits for every job it
 * hands over before anything else uses the handle (a zones refresh, a reload's swap, the
 * end of a cycle), so two tether_run calls on one handle never overlap. tether_each_flat,
 * which the commits call meanwhile, builds nothing and only reads the handle. */
struct fetch {
	pthread_t thread;
	bool started, mu_ok, cv_ok;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* under mu */
	struct tether *api;      /* the poller's handle when the job was handed over */
	struct tether_req *reqs; /* the job not taken yet, or NULL */
	size_t n;
	bool busy; /* a job handed over is not answered yet */
	bool quit;
	int rc;           /* the last job's tether_run */
	int64_t answered; /* wall ms when its answers were in */
};

struct poller {
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	_Atomic bool stop;
	struct config *cfg, *next_cfg;
	struct rules *rules, *next_rules;
	struct rules_state *rstate;
	struct store *store;
	struct tether *api;
	void (*wake)(void *arg);
	void *wake_arg;
	void (*reload)(void *arg);
	void *reload_arg;
	int64_t watch_reload_ms;

	struct zone *zones;
	size_t nzones;
	int64_t zones_at;    /* wall ms of the last zones refresh, 0 never */
	int64_t pause_until; /* a 429 pauses every request until then */
	int64_t eval_ms;     /* wall ms of the zone commit: the clock of rules_eval */
	bool backpressure;
	bool zones_failing;
	uint64_t rng;

	struct tether_req *reqs;
	size_t nreqs, capreqs;
	struct zplan *plans;
	struct rules_result res;
	struct nres *chunk; /* CHUNK resources read, handled in one transaction */
	char *db_path;

	/* Home Assistant discovery: one state per broker that had it on during this run */
	struct ha **ha;
	size_t nha;
	_Atomic int ha_req;           /* HA_REQ_* bits from other threads */
	bool ha_force;                /* the next sync resends every config */
	struct ha_entries ha_pending; /* configs not due yet, in due order */
	char **persp;                 /* the perspectives' names for the select (this thread's) */
	size_t npersp;
	char **persp_new; /* under mu: handed over by poller_ha_perspectives, or NULL */
	size_t npersp_new;
	int64_t last_poll_ms; /* wall ms of the last committed poll, 0 none */

	struct catchup cu; /* catch-up progress and poll.catchup_max_age */

	struct fetch fetch;
};

#define HA_REQ_REFRESH 1
#define HA_REQ_RESEND 2
#define HA_REQ_SYNC 4 /* the perspectives changed: sync again, the zones as they are */

static int ha_setup(struct poller *p);

static struct tether *api_new(const struct config *cfg, char *err, size_t errsz)
{
	struct tether_opts o;

	bridge_tether_opts(cfg, &o);
	return tether_new(&o, err, errsz);
}

/* Cooldown and visit memory in the state database (rule_state), so a restart keeps it. */
static int rstate_load_cb(void *arg, const char *key, const char *value)
{
	return rules_state_load(arg, key, value, util_now_ms());
}

static int rstate_put_cb(void *arg, const char *key, const char *value, int64_t expires_ms)
{
	return store_rstate_put(arg, key, value, expires_ms);
}

static void reload_rstate(struct poller *p)
{
	struct rules_state *st = rules_state_new();

	if (st == NULL || store_rstate_each(p->store, util_now_ms(), rstate_load_cb, st) != 0) {
		/* keep the memory we have, marked for the next save */
		rules_state_free(st);
		rules_state_mark_all(p->rstate);
		return;
	}
	rules_state_free(p->rstate);
	p->rstate = st;
}

struct poller *poller_new(struct config *cfg, struct rules *rules, void (*wake)(void *arg),
                          void *arg, char *err, size_t errsz)
{
	struct poller *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->cfg = cfg;
	p->rules = rules;
	p->fetch.mu_ok = pthread_mutex_init(&p->fetch.mu, NULL) == 0;
	p->fetch.cv_ok = pthread_cond_init(&p->fetch.cv, NULL) == 0;
	if (!p->fetch.mu_ok || !p->fetch.cv_ok) {
		snprintf(err, errsz, "unable to set up the fetch thread's lock");
		goto fail;
	}
	p->wake = wake;
	p->wake_arg = arg;
	p->rng = (uint64_t)util_now_ms() * 2654435761u + 1;
	if ((p->db_path = store_path(cfg->state_dir)) == NULL) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	p->store = store_open(p->db_path, err, errsz);
	if (p->store == NULL)
		goto fail;
	p->api = api_new(cfg, err, errsz);
	if (p->api == NULL)
		goto fail;
	p->rstate = rules_state_new();
	if (p->rstate == NULL || ha_setup(p) < 0) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	/* A start is a connection: every config goes again (Home Assistant takes an unchanged
	 * one as a no-op; a broker that lost its retained messages while the bridge was
	 * stopped gets them back), and what the store remembers is deleted if gone. */
	p->ha_force = true;
	if (store_rstate_each(p->store, util_now_ms(), rstate_load_cb, p->rstate) != 0) {
		const char *why = store_errmsg(p->store);
		snprintf(err, errsz, "unable to load rule state from '%s': %s", p->db_path,
		         *why ? why : "out of memory");
		goto fail;
	}
	return p;
fail:
	p->cfg = NULL; /* the caller keeps what it gave when we fail */
	p->rules = NULL;
	poller_free(p);
	return NULL;
}

static int ha_restore_cb(void *arg, const char *topic, const char *payload)
{
	return ha_restore(arg, topic, payload) < 0 ? 1 : 0; /* 1: out of memory */
}

/* One ha state per broker with discovery on, or with configs an earlier run published
 * (restored from the store: the first sync deletes those no longer wanted, discovery turned
 * off included); a broker that turns it off keeps its state so that its configs are deleted
 * at the next sync. 0/-1. */
static int ha_setup(struct poller *p)
{
	for (size_t i = 0; i < p->cfg->nmqtt; i++) {
		const struct cfg_mqtt *m = &p->cfg->mqtt[i];
		bool have = false;
		char *target;
		struct ha *h;
		int rc;
		for (size_t j = 0; j < p->nha && !have; j++)
			have = strcmp(ha_broker(p->ha[j]), m->name) == 0;
		if (have)
			continue;
		if ((h = ha_new(m->name)) == NULL ||
		    (target = outbox_target("mqtt", m->name)) == NULL) {
			ha_free(h);
			return -1;
		}
		rc = store_ha_config_each(p->store, target, ha_restore_cb, h);
		free(target);
		if (rc != 0)
			log_warnx("homeassistant: unable to read the configs published before for "
			          "'%s': %s",
			          m->name, rc < 0 ? store_errmsg(p->store) : "out of memory");
		if (!m->ha.enabled && ha_published_count(h) == 0) {
			ha_free(h);
			continue;
		}
		struct ha **v = realloc(p->ha, (p->nha + 1) * sizeof(*v));
		if (v == NULL) {
			ha_free(h);
			return -1;
		}
		p->ha = v;
		v[p->nha++] = h;
	}
	return 0;
}

/* Puts e's entries in the outbox (inside the caller's transaction), and records each
 * discovery config in the store's published set, so a restart knows what the broker holds;
 * their number, or -1. */
static int ha_put(struct poller *p, struct ha_entries *e)
{
	for (size_t i = 0; i < e->n; i++) {
		const struct store_entry *x = &e->v[i];
		if (store_outbox_put(p->store, x) < 0)
			return -1;
		if (strcmp(x->zone_id, HA_ZONE_DISCOVERY) == 0 &&
		    store_ha_config_put(p->store, x->target, x->topic_or_url, x->payload) < 0)
			return -1;
	}
	return (int)e->n;
}

static int dlq_count_cb(void *arg, const struct store_entry *e, int status, const char *reason,
                        int64_t failed_ms)
{
	(void)e, (void)status, (void)reason, (void)failed_ms;
	(*(int64_t *)arg)++;
	return 0;
}

/* Queues e in one transaction and wakes the delivery; a failure is logged (what is lost is
 * sent again: configs at the next sync, states at their next change). */
static void ha_commit(struct poller *p, const char *what, struct ha_entries *e)
{
	int n = -1;

	if (e->n == 0)
		return;
	if (store_begin(p->store) == 0) {
		if ((n = ha_put(p, e)) < 0 || store_commit(p->store) < 0) {
			store_rollback(p->store);
			n = -1;
		}
	}
	if (n < 0)
		log_warnx("homeassistant: unable to queue %s: %s", what, store_errmsg(p->store));
	else if (p->wake)
		p->wake(p->wake_arg);
}

/* Queues the pending configs that are due at now. */
static void ha_flush(struct poller *p, int64_t now)
{
	struct ha_entries due = {0};
	size_t k = 0;

	while (k < p->ha_pending.n && p->ha_pending.v[k].next_attempt_ms <= now)
		k++;
	if (k == 0)
		return;
	due.v = p->ha_pending.v;
	due.n = k;
	for (size_t i = 0; i < k; i++)
		due.v[i].next_attempt_ms = 0;
	ha_commit(p, "discovery configs", &due);
	for (size_t i = 0; i < k; i++)
		store_entry_release(&due.v[i]);
	memmove(p->ha_pending.v, p->ha_pending.v + k,
	        (p->ha_pending.n - k) * sizeof(*p->ha_pending.v));
	p->ha_pending.n -= k;
}

/* After a zone refresh: the configs of the zones and rules as they are now. */
static void ha_refresh(struct poller *p, int64_t now)
{
	struct ha_entries e = {0};
	struct ha_zone *zs;
	bool ok = true;

	if (p->nha == 0)
		return;
	if ((zs = calloc(p->nzones ? p->nzones : 1, sizeof(*zs))) == NULL)
		return;
	for (size_t i = 0; i < p->nzones; i++)
		zs[i] = (struct ha_zone){.id = p->zones[i].id, .name = p->zones[i].name};
	for (size_t i = 0; i < p->nha && ok; i++)
		ok = ha_set_perspectives(p->ha[i], (const char *const *)p->persp, p->npersp) == 0 &&
		     ha_sync(p->ha[i], p->cfg, p->rules, zs, p->nzones, p->ha_force, now, &e) == 0;
	free(zs);
	if (ok && p->ha_force) {
		/* the broker may have lost the retained states too: they go now, in order with
		 * the state changes (configs are spread, states are not) */
		struct ha_entries st = {0};
		for (size_t i = 0; i < p->nha && ok; i++)
			ok = ha_states(p->ha[i], p->cfg, now, &st) == 0;
		ha_commit(p, "entity states", &st);
		ha_entries_release(&st);
	}
	if (!ok)
		log_warnx("homeassistant: out of memory building discovery configs");
	else
		p->ha_force = false;
	/* Configs wait here, not in the outbox, until they are due: the delivery sends what
	 * the outbox holds in id order and would not come back for an entry due later. */
	for (size_t i = 0; i < e.n; i++) {
		struct store_entry *x = ha_entries_add(&p->ha_pending);
		if (x == NULL) {
			store_entry_release(&e.v[i]);
			continue;
		}
		*x = e.v[i];
	}
	free(e.v);
	ha_flush(p, now);
}

/* Each cycle: pulses that ended, and the bridge's diagnostics. */
static void ha_cycle(struct poller *p, int64_t now)
{
	struct ha_entries e = {0};
	struct ha_status st = {.api_ok = !p->zones_failing && p->zones_at > 0,
	                       .dead_letters = 0,
	                       .last_poll_ms = p->last_poll_ms};

	if (p->nha == 0)
		return;
	st.outbox = store_outbox_count(p->store);
	if (store_dlq_list(p->store, NULL, 0, dlq_count_cb, &st.dead_letters) < 0)
		st.dead_letters = -1;
	for (size_t i = 0; i < p->nha; i++)
		if (ha_tick(p->ha[i], p->cfg, now, &e) < 0 ||
		    ha_status(p->ha[i], p->cfg, &st, &e) < 0)
			log_warnx("homeassistant: out of memory updating states");
	ha_commit(p, "entity states", &e);
	ha_entries_release(&e);
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void poller_ha_perspectives(struct poller *p, const char *const *names, size_t n)
{
	char **v = calloc(n + 1, sizeof(*v));

	for (size_t i = 0; v != NULL && i < n; i++) {
		if ((v[i] = strdup(names[i])) == NULL) {
			strv_free(v, i);
			v = NULL;
		}
	}
	if (v == NULL) {
		log_warnx("homeassistant: out of memory taking the perspectives");
		return;
	}
	pthread_mutex_lock(&p->mu);
	strv_free(p->persp_new, p->npersp_new);
	p->persp_new = v;
	p->npersp_new = n;
	atomic_fetch_or(&p->ha_req, HA_REQ_SYNC);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* Takes the perspectives poller_ha_perspectives handed over. */
static void take_perspectives(struct poller *p)
{
	pthread_mutex_lock(&p->mu);
	if (p->persp_new != NULL) {
		strv_free(p->persp, p->npersp);
		p->persp = p->persp_new;
		p->npersp = p->npersp_new;
		p->persp_new = NULL;
		p->npersp_new = 0;
	}
	pthread_mutex_unlock(&p->mu);
}

void poller_ha_request(struct poller *p, bool resend)
{
	atomic_fetch_or(&p->ha_req, HA_REQ_REFRESH | (resend ? HA_REQ_RESEND : 0));
	pthread_mutex_lock(&p->mu);
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void zones_release(struct poller *p)
{
	for (size_t i = 0; i < p->nzones; i++) {
		free(p->zones[i].id);
		free(p->zones[i].name);
	}
	free(p->zones);
	p->zones = NULL;
	p->nzones = 0;
}

static void fetch_stop(struct poller *p);

void poller_free(struct poller *p)
{
	if (p == NULL)
		return;
	fetch_stop(p);
	for (size_t i = 0; i < p->nreqs; i++)
		tether_req_release(&p->reqs[i]);
	free(p->reqs);
	free(p->plans);
	free(p->chunk);
	rules_result_release(&p->res);
	catchup_release(&p->cu);
	zones_release(p);
	for (size_t i = 0; i < p->nha; i++)
		ha_free(p->ha[i]);
	free(p->ha);
	ha_entries_release(&p->ha_pending);
	strv_free(p->persp, p->npersp);
	strv_free(p->persp_new, p->npersp_new);
	rules_state_free(p->rstate);
	tether_free(p->api);
	store_close(p->store);
	rules_free(p->rules);
	rules_free(p->next_rules);
	config_free(p->cfg);
	config_free(p->next_cfg);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	if (p->fetch.mu_ok)
		pthread_mutex_destroy(&p->fetch.mu);
	if (p->fetch.cv_ok)
		pthread_cond_destroy(&p->fetch.cv);
	free(p->db_path);
	free(p);
}

void poller_swap(struct poller *p, struct config *cfg, struct rules *rules)
{
	pthread_mutex_lock(&p->mu);
	config_free(p->next_cfg);
	rules_free(p->next_rules);
	p->next_cfg = cfg;
	p->next_rules = rules;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void take_swap(struct poller *p)
{
	struct config *cfg;
	struct rules *rules;

	pthread_mutex_lock(&p->mu);
	cfg = p->next_cfg;
	rules = p->next_rules;
	p->next_cfg = NULL;
	p->next_rules = NULL;
	pthread_mutex_unlock(&p->mu);
	if (cfg == NULL)
		return;
	char err[256];
	struct tether *api = api_new(cfg, err, sizeof(err));
	if (api == NULL) {
		log_warnx("reload: unable to set up the API client, keeping the old one: %s", err);
	} else {
		tether_free(p->api);
		p->api = api;
	}
	config_free(p->cfg);
	rules_free(p->rules);
	p->cfg = cfg;
	p->rules = rules;
	p->zones_at = 0; /* zone selection may have changed */
	if (ha_setup(p) < 0)
		log_warnx("homeassistant: out of memory setting up discovery");
	/* new credentials or settings: failing zones are tried at once, not after their old
	 * backoff (a 429's pause_until stays: the server asked for it) */
	for (size_t i = 0; i < p->nzones; i++) {
		p->zones[i].backoff_ms = 0;
		p->zones[i].next_try_ms = 0;
	}
	log_info("reload: %zu rules in force", rules_count(rules));
}

/* CLOCK_REALTIME ms from now, for the timed waits of pthreads. */
static void realtime_after(int64_t ms, struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	int64_t ns = ts->tv_nsec + ms % 1000 * NS_PER_MS;
	ts->tv_sec += ms / 1000 + ns / NS_PER_S;
	ts->tv_nsec = ns % NS_PER_S;
}

/* Sleeps until wall time `until` or a stop/swap; returns true when stopping. */
static bool wait_until(struct poller *p, int64_t until)
{
	bool stop;

	pthread_mutex_lock(&p->mu);
	while (!p->stop && p->next_cfg == NULL && atomic_load(&p->ha_req) == 0) {
		int64_t now = util_now_ms();
		struct timespec ts;
		if (now >= until)
			break;
		realtime_after(until - now, &ts);
		pthread_cond_timedwait(&p->cv, &p->mu, &ts);
	}
	stop = p->stop;
	pthread_mutex_unlock(&p->mu);
	return stop;
}

static bool zone_selected(const struct config *cfg, const char *id, const char *name)
{
	if (cfg->poll.zones_all)
		return true;
	for (size_t i = 0; i < cfg->poll.nzones; i++) {
		if (strcmp(cfg->poll.zones[i], id) == 0 || strcmp(cfg->poll.zones[i], name) == 0)
			return true;
	}
	return false;
}

static const struct zone *zone_find(const struct poller *p, const char *id)
{
	for (size_t i = 0; i < p->nzones; i++) {
		if (strcmp(p->zones[i].id, id) == 0)
			return &p->zones[i];
	}
	return NULL;
}

/* Credentials the API rejects (401/403 after the refresh, invalid_client, invalid_grant)
 * stop every poll until a person acts: logged at error, with the way out. */
static enum log_level api_level(const struct tether_req *r)
{
	return r->status == TETHER_E_AUTH ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN;
}

static const char *api_hint(const struct tether_req *r)
{
	if (r->status != TETHER_E_AUTH || strstr(r->error, "auth url") != NULL)
		return ""; /* a failed refresh already says what to do */
	return "; the API rejects the credentials: check tether.client_id and client_secret (or "
	       "access_token), or run 'tether-bridge auth url' to authorise again";
}

/* Refreshes the zone list; on failure keeps the old one. 0 when a list is usable. */
static int refresh_zones(struct poller *p, int64_t now)
{
	struct tether_req req = {.ep = TETHER_ZONES,
	                         .location_id = p->cfg->poll.location_id,
	                         .from_ms = -1,
	                         .to_ms = -1,
	                         .at_ms = -1};
	struct tether_zone *tz = NULL;
	struct zone *nz = NULL;
	size_t n = 0, k = 0;
	char err[256];

	if (tether_run(p->api, &req, 1) < 0 || req.status != TETHER_OK) {
		if (!p->zones_failing)
			log_fields(api_level(&req),
			           (struct log_field[]){{"status", tether_status_name(req.status)},
			                                {NULL, NULL}},
			           "zones: %s (%s)%s%s%s", req.error,
			           tether_status_name(req.status), req.excerpt[0] ? ": " : "",
			           req.excerpt, api_hint(&req));
		p->zones_failing = true;
		/* the first request of all: a daemon that never gets past it must show errors */
		metrics_add(M_API_ERRORS, 1);
		if (req.status == TETHER_E_RATE)
			metrics_add(M_API_RATE_LIMITED, 1);
		if (req.status == TETHER_E_RATE)
			/* the server's Retry-After when it sent one, else a guess */
			p->pause_until =
			    util_now_ms() +
			    (req.retry_after_ms >= 0 ? req.retry_after_ms : RATE_DEFAULT_MS);
		tether_req_release(&req);
		return p->nzones > 0 ? 0 : -1;
	}
	if (tether_zones_list(req.doc, &tz, &n, err, sizeof(err)) < 0) {
		log_warnx("zones: bad document: %s", err);
		tether_req_release(&req);
		return p->nzones > 0 ? 0 : -1;
	}
	nz = calloc(n ? n : 1, sizeof(*nz));
	if (nz == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		if (!zone_selected(p->cfg, tz[i].id, tz[i].name))
			continue;
		const struct zone *old = zone_find(p, tz[i].id);
		nz[k].id = strdup(tz[i].id);
		nz[k].name = strdup(tz[i].name);
		if (nz[k].id == NULL || nz[k].name == NULL) {
			free(nz[k].id);
			free(nz[k].name);
			goto oom;
		}
		if (old) {
			nz[k].backoff_ms = old->backoff_ms;
			nz[k].next_try_ms = old->next_try_ms;
			nz[k].failing = old->failing;
			nz[k].fail_status = old->fail_status;
			nz[k].ev_split = old->ev_split;
			nz[k].lpr_split = old->lpr_split;
		}
		k++;
	}
	if (p->zones_failing || p->zones_at == 0 || k != p->nzones)
		log_info("zones: polling %zu of %zu", k, n);
	p->zones_failing = false;
	if (!p->cfg->poll.zones_all) {
		for (size_t j = 0; j < p->cfg->poll.nzones; j++) {
			bool found = false;
			for (size_t i = 0; i < k && !found; i++)
				found = strcmp(nz[i].id, p->cfg->poll.zones[j]) == 0 ||
				        strcmp(nz[i].name, p->cfg->poll.zones[j]) == 0;
			if (!found && p->zones_at == 0)
				log_warnx("zones: '%s' is not a zone of this account",
				          p->cfg->poll.zones[j]);
		}
	}
	zones_release(p);
	p->zones = nz;
	p->nzones = k;
	p->zones_at = now;
	free(tz);
	tether_req_release(&req);
	return 0;
oom:
	for (size_t i = 0; i < k; i++) {
		free(nz[i].id);
		free(nz[i].name);
	}
	free(nz);
	free(tz);
	tether_req_release(&req);
	log_warnx("zones: out of memory");
	return p->nzones > 0 ? 0 : -1;
}

static struct tether_req *add_req(struct poller *p, enum tether_endpoint ep, const char *zone_id,
                                  int64_t from, int64_t to, int64_t at)
{
	if (p->nreqs == p->capreqs) {
		size_t cap = p->capreqs ? p->capreqs * 2 : 64;
		struct tether_req *v = realloc(p->reqs, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		p->reqs = v;
		p->capreqs = cap;
	}
	struct tether_req *r = &p->reqs[p->nreqs++];
	memset(r, 0, sizeof(*r));
	r->ep = ep;
	r->zone_id = zone_id;
	r->from_ms = from;
	r->to_ms = to;
	r->at_ms = at;
	/* resources are read one at a time at commit (tether_each_flat), no tree built */
	r->raw = ep == TETHER_EVENTS || ep == TETHER_EVENTS_AT || ep == TETHER_LPR;
	return r;
}

struct follow_ctx {
	struct poller *p;
	const char *zone_id;
	int64_t before, now;
	int count;
};

static int follow_cb(void *arg, const char *source_id, int64_t starts_ms)
{
	struct follow_ctx *c = arg;
	(void)source_id;
	if (starts_ms >= c->before)
		return 1; /* oldest first: the rest are inside the window */
	if (c->now - starts_ms > PHASE_OPEN_GIVE_UP_MS)
		return 0; /* open for over a day and gone from the API: no longer followed */
	if (c->count >= MAX_FOLLOW_PER_ZONE)
		return 1;
	if (add_req(c->p, TETHER_EVENTS_AT, c->zone_id, -1, -1, starts_ms) == NULL)
		return -1;
	c->count++;
	return 0;
}

void poller_window(const struct config *cfg, int64_t cursor, int64_t now, struct poller_window *out)
{
	out->from = cursor - cfg->poll.lookback_ms;
	out->to = cursor + cfg->poll.catchup_window_ms;
	if (out->to > now)
		out->to = now;
	out->backfill = now - cursor >
	                cfg->poll.lookback_ms + POLLER_BACKFILL_INTERVALS * cfg->poll.interval_ms;
}

size_t poller_zones_per_batch(int concurrency)
{
	int per = concurrency / POLLER_REQS_PER_ZONE;
	return per < 1 ? 1 : (size_t)per;
}

/* The window of one zone and kind from its cursor in the store. */
static int window(const struct poller *p, const char *zone_id, const char *kind, int64_t now,
                  int64_t *from, int64_t *to, bool *backfill)
{
	struct poller_window w;
	int64_t cur;

	int rc = store_cursor_get(p->store, zone_id, kind, &cur);
	if (rc < 0)
		return -1; /* unknown: better not to poll than to jump to now and skip a gap */
	poller_window(p->cfg, rc == 0 ? now : cur, now, &w);
	*from = w.from;
	*to = w.to;
	*backfill = w.backfill;
	return 0;
}

/* Whether a kind's window is asked in this cycle. A cycle repeated at once for the zones
 * still catching up or splitting does not ask again the windows already up to date: they
 * wait for their interval (each would read its whole lookback again). */
static bool kind_due(const struct config *c, const struct win_split *s, int64_t polled, int64_t now)
{
	return s->to != 0 || polled == 0 || now - polled >= c->poll.interval_ms / 2;
}

/* After a commit: the cycle's time when the window reached now, else 0 (behind: a middle
 * piece of a split, or a catch-up window). */
static int64_t kind_polled(const struct config *c, bool last_piece, int64_t to, int64_t now)
{
	/* the last piece ends where the split window ended, when the split began */
	return last_piece && to >= now - c->poll.interval_ms ? now : 0;
}

static int plan_cycle(struct poller *p, int64_t now)
{
	const struct config *c = p->cfg;
	struct zplan *plans = realloc(p->plans, (p->nzones ? p->nzones : 1) * sizeof(*plans));

	if (plans == NULL)
		return -1;
	p->plans = plans;
	for (size_t i = 0; i < p->nreqs; i++)
		tether_req_release(&p->reqs[i]);
	p->nreqs = 0;
	for (size_t i = 0; i < p->nzones; i++) {
		struct zone *z = &p->zones[i];
		struct zplan *pl = &plans[i];
		struct tether_req *r;
		int64_t from, to;

		memset(pl, 0, sizeof(*pl));
		pl->win_ev = pl->at_now = pl->win_lpr = -1;
		if (now < z->next_try_ms)
			continue;
		if (c->poll.events && kind_due(c, &z->ev_split, z->ev_polled, now)) {
			if (window(p, z->id, "event", now, &from, &to, &pl->ev_backfill) < 0)
				return -1;
			int64_t wfrom = from;
			pl->ev_cursor = split_apply(&z->ev_split, &from, &to, &pl->ev_backfill);
			pl->ev_from = from;
			pl->ev_to = to;
			pl->win_ev = (int)p->nreqs;
			if ((r = add_req(p, TETHER_EVENTS, z->id, from, to, -1)) == NULL)
				return -1;
			r->max_body = split_body_cap(c->poll.max_window_events);
			pl->follow_first = (int)p->nreqs;
			/* what is open now and the follow-ups go with the window's last piece:
			 * asked with every piece, they would be parsed again once per piece */
			if (pl->ev_cursor) {
				pl->at_now = (int)p->nreqs;
				if (add_req(p, TETHER_EVENTS_AT, z->id, -1, -1, now) == NULL)
					return -1;
				struct follow_ctx fc = {p, z->id, wfrom, now, 0};
				pl->follow_first = (int)p->nreqs;
				if (store_open_events(p->store, z->id, follow_cb, &fc) < 0)
					return -1;
			}
			pl->nfollow = (int)p->nreqs - pl->follow_first;
			pl->asked = true;
		}
		if (c->poll.plates && kind_due(c, &z->lpr_split, z->lpr_polled, now)) {
			if (window(p, z->id, "plate", now, &from, &to, &pl->lpr_backfill) < 0)
				return -1;
			pl->lpr_cursor = split_apply(&z->lpr_split, &from, &to, &pl->lpr_backfill);
			pl->lpr_from = from;
			pl->lpr_to = to;
			pl->win_lpr = (int)p->nreqs;
			if ((r = add_req(p, TETHER_LPR, z->id, from, to, -1)) == NULL)
				return -1;
			r->max_body = split_body_cap(c->poll.max_window_events);
			pl->asked = true;
		}
	}
	return 0;
}

static const char *ep_path(enum tether_endpoint ep)
{
	switch (ep) {
	case TETHER_LPR:
		return "/api/v3p/lpr";
	case TETHER_ZONES:
		return "/api/v3p/zones";
	default:
		return "/api/v3p/events";
	}
}

/* The zone's requests are contiguous in the batch: [*first, *last]. */
static void zone_reqs(const struct zplan *pl, int *first, int *last)
{
	*first = pl->win_ev >= 0 ? pl->win_ev : pl->win_lpr;
	*last = pl->win_lpr >= 0 ? pl->win_lpr : pl->follow_first + pl->nfollow - 1;
}

/* Looks at the zone's answers: true when all are usable. Otherwise logs (once per
 * failure streak), sets the zone's backoff, and a 429 pauses every request. */
static bool zone_answers_ok(struct poller *p, struct zone *z, const struct zplan *pl, int64_t now)
{
	const struct tether_req *bad = NULL;
	int first, last;

	zone_reqs(pl, &first, &last);
	for (int i = first; i >= 0 && i <= last; i++) {
		if (p->reqs[i].status != TETHER_OK) {
			bad = &p->reqs[i];
			break;
		}
	}
	if (bad == NULL) {
		if (z->failing)
			log_info("zone '%s': API answers again", z->name);
		z->failing = false;
		z->backoff_ms = 0;
		z->next_try_ms = 0;
		return true;
	}
	z->backoff_ms = retry_backoff_next(z->backoff_ms, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
	/* a server's Retry-After lengthens the wait (the client caps it at an hour) */
	int64_t wait = retry_delay_ms(retry_jitter_ms(z->backoff_ms, &p->rng), bad->retry_after_ms);
	if (bad->status == TETHER_E_PAYLOAD)
		wait =
		    p->cfg->poll.interval_ms; /* a bad document: skip this poll, ask at the next */
	z->next_try_ms = now + wait;
	if (bad->status == TETHER_E_RATE) {
		int64_t until =
		    now + (bad->retry_after_ms >= 0 ? bad->retry_after_ms : RATE_DEFAULT_MS);
		if (until > p->pause_until)
			p->pause_until = until;
	}
	/* once per failure streak, and again when the kind of failure changes (a 429
	 * after 5xx pauses everything, a user wants to see it) */
	if (!z->failing || bad->status == TETHER_E_PAYLOAD || (int)bad->status != z->fail_status) {
		/* most errors already name the path ("HTTP 500 from /api/v3p/events") */
		const char *path = ep_path(bad->ep);
		bool named = strstr(bad->error, path) != NULL;
		if (bad->status == TETHER_E_PAYLOAD)
			log_warnx("zone '%s': bad response%s%s, poll skipped: %s%s%s", z->name,
			          named ? "" : " from ", named ? "" : path, bad->error,
			          bad->excerpt[0] ? "; starts: " : "", bad->excerpt);
		else
			log_fields(api_level(bad),
			           (struct log_field[]){{"zone", z->name},
			                                {"status", tether_status_name(bad->status)},
			                                {NULL, NULL}},
			           "zone '%s': %s%s%s (%s), retrying in %.1fs%s", z->name,
			           bad->error, named ? "" : " from ", named ? "" : path,
			           tether_status_name(bad->status), (double)wait / 1000.0,
			           api_hint(bad));
	}
	z->failing = true;
	z->fail_status = (int)bad->status;
	return false;
}

/* Resources of one document skipped, logged once for the document (a hostile answer can
 * hold thousands). */
struct doc_skips {
	size_t bad, foreign;
	char bad_err[256], bad_start[81], foreign_zone[64];
};

/* Resources parsed before their chunk is handled in one transaction: the write lock the
 * delivery loop's acknowledgements wait for is held for the handling only, never for the
 * parsing, and for at most this many resources at a time. */
#define CHUNK 128

struct doc_ctx {
	struct poller *p;
	const struct zone *z;
	bool backfill;
	int64_t now;
	struct doc_skips sk;
	int total;                /* entries committed */
	struct nres *res;         /* CHUNK of them: p->chunk */
	const json_t *src[CHUNK]; /* a resource that came as a tree (borrowed), else NULL */
	const char *body;         /* the answer's text, for res[i].offset */
	size_t body_len;
	size_t n;
};

static void chunk_drop(struct doc_ctx *c)
{
	c->n = 0;
}

/* The first bytes of a resource, for the log: from the answer's text (res->offset) or, for a
 * resource that came as a tree (src), its compact JSON. */
static void resource_excerpt(const struct nres *res, const json_t *src, const char *body,
                             size_t body_len, char *out, size_t outsz)
{
	char *text;

	if (src == NULL && body != NULL && res->offset < body_len) {
		util_excerpt(out, outsz, body + res->offset, body_len - res->offset);
		return;
	}
	text = src != NULL ? json_dumps(src, JSON_COMPACT) : NULL;
	snprintf(out, outsz, "%s", text ? text : "?");
	free(text);
}

/* Handles c->res[idx] inside the chunk's transaction. Returns the number of outbox entries
 * added, or -1 on a store failure (the transaction is then rolled back). */
static int handle_resource(struct doc_ctx *c, size_t idx)
{
	struct poller *p = c->p;
	const struct zone *z = c->z;
	const struct nres *res = &c->res[idx];
	struct doc_skips *sk = &c->sk;
	bool backfill = c->backfill;
	int64_t now = c->now;
	struct message m;
	struct store_seen seen, put;
	struct phase_seen prev, next;
	enum phase_verdict verdict;
	char err[256];
	const char *kind, *key_id, *key_rev, *key_zone;
	enum msg_kind key_kind;
	int found = -2, added = 0; /* found: -2 until looked up */

	/* A revision of this zone handled before that can change no more (its record is
	 * complete) needs nothing, not even normalising: a poll reads its whole lookback again,
	 * so on a busy site most resources are these. */
	if (normalize_dedup_key(res, &key_kind, &key_id, &key_rev, &key_zone) &&
	    strcmp(key_zone, z->id) == 0) {
		found = store_seen_get(p->store, msg_kind_name(key_kind), key_id, &seen);
		if (found < 0)
			return -1;
		if (found == 1 && seen.complete && strcmp(seen.revision, key_rev) == 0) {
			metrics_add(M_UNCHANGED, 1);
			return 0;
		}
	}
	if (normalize_nres(res, z->name, p->cfg->tether.base_url, &m, err, sizeof(err)) < 0) {
		metrics_add(M_BAD_RESOURCES, 1);
		if (sk->bad++ == 0) {
			snprintf(sk->bad_err, sizeof(sk->bad_err), "%s", err);
			resource_excerpt(res, c->src[idx], c->body, c->body_len, sk->bad_start,
			                 sizeof(sk->bad_start));
		}
		return 0;
	}
	if (strcmp(m.zone_id, z->id) != 0) {
		/* asked for z, answered for another zone: its name, cursor and dedup record would
		 * all be z's, so it is not processed (its own zone's poll finds it) */
		metrics_add(M_WRONG_ZONE, 1);
		if (sk->foreign++ == 0)
			snprintf(sk->foreign_zone, sizeof(sk->foreign_zone), "%.60s", m.zone_id);
		return 0;
	}
	kind = msg_kind_name(m.kind);
	/* looked up above when the resource had a key of this zone: the message's own key
	 * (normalize_dedup_key's contract, checked by test_normalize and fuzz-normalize) */
	if (found == -2)
		found = store_seen_get(p->store, kind, m.source_id, &seen);
	if (found < 0)
		return -1;
	if (found == 1) {
		memset(&prev, 0, sizeof(prev));
		util_copy(prev.revision, sizeof(prev.revision), seen.revision);
		util_copy(prev.severity, sizeof(prev.severity), seen.severity);
		prev.flags = seen.flags;
		prev.complete = seen.complete;
	}
	m.backfill = backfill;
	verdict = phase_decide(&m, found == 1 ? &prev : NULL);
	phase_record(&m, now, &next);
	if (verdict == PHASE_DELIVER &&
	    !catchup_take(&p->cu, backfill, m.occurred_ms, now, p->cfg->poll.catchup_max_age_ms)) {
		/* too old for a catch-up to deliver: recorded below like the rest */
	} else if (verdict == PHASE_DELIVER) {
		message_set_id(&m);
		rules_result_reset(&p->res);
		if (rules_eval(p->rules, p->rstate, &m, p->eval_ms, false, &p->res) < 0) {
			log_warnx("rules: out of memory evaluating '%s'", m.id);
			return -1;
		}
		metrics_add(m.kind == MSG_EVENT ? M_MESSAGES_EVENT : M_MESSAGES_PLATE, 1);
		if (m.kind == MSG_EVENT && rules_severity_rank(p->rules, m.severity) < 0)
			metrics_add(M_UNKNOWN_SEVERITY, 1);
		for (size_t i = 0; i < p->res.nd; i++) {
			struct store_entry e;
			if (outbox_entry_build(&p->res.d[i], &e) < 0)
				return -1;
			int rc = store_outbox_put(p->store, &e);
			if (rc == 0 && log_enabled(LOG_LEVEL_DEBUG))
				log_fields(LOG_LEVEL_DEBUG,
				           (struct log_field[]){{"zone", z->name},
				                                {"rule", p->res.d[i].rule},
				                                {"target", e.target},
				                                {"msg_id", e.msg_id},
				                                {NULL, NULL}},
				           "queued %s for %s", e.msg_id, e.target);
			store_entry_release(&e);
			if (rc < 0)
				return -1;
			added++;
		}
		if (p->nha > 0) {
			struct ha_entries he = {0};
			int n = 0;
			for (size_t i = 0; i < p->nha && n >= 0; i++)
				n = ha_message(p->ha[i], p->cfg, p->rules, &m, now, &he);
			if (n >= 0)
				n = ha_put(p, &he);
			ha_entries_release(&he);
			if (n < 0)
				return -1;
			added += n;
		}
		log_debug("zone '%s': %s %s: %zu deliveries", z->name, m.id,
		          msg_phase_name(m.phase), p->res.nd);
	} else if (verdict == PHASE_SAME_REVISION && next.complete == prev.complete) {
		return 0; /* a duplicate: nothing changed (an open one past a day is closed) */
	}
	memset(&put, 0, sizeof(put));
	util_copy(put.revision, sizeof(put.revision), next.revision);
	util_copy(put.severity, sizeof(put.severity), next.severity);
	put.flags = next.flags;
	put.complete = next.complete;
	put.starts_ms = m.occurred_ms;
	if (store_seen_put(p->store, kind, m.source_id, z->id, &put) < 0)
		return -1;
	return added;
}

/* Handles the chunk in one transaction: its outbox entries, dedup records and rule state
 * commit together. The cursor moves later, in the zone's last transaction: a crash in
 * between asks the window again and the dedup records skip what was kept. -1 when the
 * store failed (the chunk is rolled back). */
static int chunk_commit(struct doc_ctx *c)
{
	struct poller *p = c->p;
	int added = 0, k;

	if (c->n == 0)
		return 0;
	if (store_begin(p->store) < 0)
		goto fail;
	for (size_t i = 0; i < c->n; i++) {
		if ((k = handle_resource(c, i)) < 0)
			goto fail_tx;
		added += k;
	}
	/* cooldowns and visits these messages started commit with them */
	if (rules_state_save(p->rstate, rstate_put_cb, p->store) != 0)
		goto fail_tx;
	if (store_commit(p->store) < 0)
		goto fail_tx;
	chunk_drop(c);
	c->total += added;
	return 0;
fail_tx:
	store_rollback(p->store);
	/* the cooldowns and visits of the chunk were rolled back with its messages: take the
	 * committed state again, or the poll done again would find its alerts cooling */
	reload_rstate(p);
fail:
	chunk_drop(c);
	return -1;
}

/* A resource of a parsed document (a tree). */
static int resource_cb(void *arg, const json_t *res)
{
	struct doc_ctx *c = arg;

	nres_from_json(res, &c->res[c->n]);
	c->src[c->n++] = res;
	return c->n == CHUNK ? chunk_commit(c) : 0;
}

/* A resource read from the answer's text by tether_each_flat, straight into the chunk. */
static void flat_begin(void *arg, bool object, size_t offset)
{
	struct doc_ctx *c = arg;

	nres_reset(&c->res[c->n], object);
	c->res[c->n].offset = offset;
	c->src[c->n] = NULL;
}

static int flat_slot(void *arg, int level, const char *name, size_t len)
{
	(void)arg;
	return nres_slot(level, name, len);
}

static void flat_value(void *arg, int level, int slot, const struct tether_value *v)
{
	static const enum nres_type types[] = {
	    [TV_NULL] = NRES_NULL,       [TV_FALSE] = NRES_FALSE, [TV_TRUE] = NRES_TRUE,
	    [TV_INTEGER] = NRES_INTEGER, [TV_REAL] = NRES_REAL,   [TV_STRING] = NRES_STRING,
	    [TV_OBJECT] = NRES_OBJECT,   [TV_ARRAY] = NRES_ARRAY,
	};
	struct doc_ctx *c = arg;

	(void)level; /* the slot numbers of the two levels differ */
	nres_set(&c->res[c->n], slot, types[v->type], v->i, v->d, v->s, v->len);
}

static int flat_end(void *arg)
{
	struct doc_ctx *c = arg;

	c->n++;
	return c->n == CHUNK ? chunk_commit(c) : 0;
}

static const struct tether_flat flat_ops = {flat_begin, flat_slot, flat_value, flat_end};

/* Handles one answer's resources, chunk by chunk. Returns the outbox entries added; -1 on
 * a store failure; -2 when the body is not a usable list (r is then failed as
 * TETHER_E_PAYLOAD; the chunks before the fault are kept, the cursor does not move).
 * *count gets the resources seen. */
static int handle_doc(struct poller *p, const struct zone *z, struct tether_req *r, bool backfill,
                      int64_t now, size_t *count)
{
	struct doc_ctx c = {.p = p, .z = z, .backfill = backfill, .now = now};
	char err[200];
	long n;

	*count = 0;
	if (p->chunk == NULL && (p->chunk = calloc(CHUNK, sizeof(*p->chunk))) == NULL) {
		log_warnx("zone '%s': out of memory", z->name);
		return -1;
	}
	c.res = p->chunk;
	if (r->body != NULL) {
		/* only what the normaliser reads is kept, and no tree is built */
		c.body = r->body;
		c.body_len = r->body_len;
		n = tether_each_flat(p->api, r, &flat_ops, &c, err, sizeof(err));
		if (n == -1)
			return -1;
		if (n < 0) {
			chunk_drop(&c);
			r->status = TETHER_E_PAYLOAD;
			snprintf(r->error, sizeof(r->error), "%s from %s", err, ep_path(r->ep));
			return -2;
		}
		*count = (size_t)n;
	} else {
		const json_t *data = r->doc ? json_object_get(r->doc, "data") : NULL;
		size_t i;
		const json_t *res;

		if (!json_is_array(data))
			return 0;
		json_array_foreach(data, i, res)
		{
			if (resource_cb(&c, res) < 0)
				return -1;
		}
		*count = json_array_size(data);
	}
	if (chunk_commit(&c) < 0)
		return -1;
	if (c.sk.bad)
		log_warnx("zone '%s': skipped %zu of %zu resources from %s: %s; first starts: %s",
		          z->name, c.sk.bad, *count, ep_path(r->ep), c.sk.bad_err, c.sk.bad_start);
	if (c.sk.foreign)
		log_warnx("zone '%s': skipped %zu of %zu resources from %s of another zone "
		          "(zone_id '%s')",
		          z->name, c.sk.foreign, *count, ep_path(r->ep), c.sk.foreign_zone);
	return c.total;
}

/* Where the zone's windows of this cycle end: the one further behind. */
static int64_t zone_to(const struct zplan *pl)
{
	if (pl->win_ev >= 0 && (pl->win_lpr < 0 || pl->ev_to < pl->lpr_to))
		return pl->ev_to;
	return pl->lpr_to;
}

/* Commits one zone's cycle: its messages and dedup records chunk by chunk, then both cursors
 * in a last transaction, so a cursor never moves past a message not committed. Returns the
 * entries added, -1 when the store failed, -2 when an answer turned out unusable (that
 * request is failed; the cursors stay). */
static int commit_zone(struct poller *p, struct zone *z, struct zplan *pl, int64_t now)
{
	int added = 0, n = 0;
	size_t cnt;

	if (pl->win_ev >= 0) {
		/* the window first, then what is open now, then the follow-ups */
		if ((n = handle_doc(p, z, &p->reqs[pl->win_ev], pl->ev_backfill, now,
		                    &pl->ev_count)) < 0)
			goto fail;
		added += n;
		if (pl->at_now >= 0) {
			if ((n = handle_doc(p, z, &p->reqs[pl->at_now], false, now, &cnt)) < 0)
				goto fail;
			added += n;
		}
		for (int i = 0; i < pl->nfollow; i++) {
			if ((n = handle_doc(p, z, &p->reqs[pl->follow_first + i], pl->ev_backfill,
			                    now, &cnt)) < 0)
				goto fail;
			added += n;
		}
	}
	if (pl->win_lpr >= 0) {
		if ((n = handle_doc(p, z, &p->reqs[pl->win_lpr], pl->lpr_backfill, now,
		                    &pl->lpr_count)) < 0)
			goto fail;
		added += n;
	}
	n = -1;
	if (store_begin(p->store) < 0)
		goto fail;
	if (pl->win_ev >= 0 && pl->ev_cursor &&
	    store_cursor_set(p->store, z->id, "event", pl->ev_to) < 0)
		goto fail_tx;
	if (pl->win_lpr >= 0 && pl->lpr_cursor &&
	    store_cursor_set(p->store, z->id, "plate", pl->lpr_to) < 0)
		goto fail_tx;
	if (store_commit(p->store) < 0)
		goto fail_tx;
	p->last_poll_ms = now;
	catchup_step(&p->cu, z->id, z->name, pl->ev_backfill || pl->lpr_backfill, zone_to(pl), now,
	             p->cfg->poll.catchup_window_ms, p->cfg->poll.catchup_max_age_ms);
	return added;
fail_tx:
	store_rollback(p->store);
fail:
	catchup_drop(&p->cu); /* this poll is done again: its resources are counted again */
	if (added > 0)
		metrics_add(M_QUEUED, (uint64_t)added); /* the chunks committed are queued */
	if (n == -2)
		return -2; /* the caller logs the bad answer as any other */
	log_warnx("zone '%s': unable to save this poll, it will be done again: %s", z->name,
	          store_errmsg(p->store));
	return -1;
}

struct tcounts {
	const char *targets[64];
	char *owned[64];
	int64_t n[64];
	size_t len;
};

static int tcount_one(void *arg, const char *target, int64_t n)
{
	struct tcounts *c = arg;

	if (c->len == sizeof(c->n) / sizeof(c->n[0]) || (c->owned[c->len] = strdup(target)) == NULL)
		return 1; /* the rest of the targets read 0 until the next cycle */
	c->targets[c->len] = c->owned[c->len];
	c->n[c->len++] = n;
	return 0;
}

/* The per-target outbox gauges, from one query. */
static void count_targets(struct poller *p)
{
	struct tcounts c = {.len = 0};

	if (store_outbox_count_each(p->store, tcount_one, &c) >= 0)
		tmetrics_set_all(TM_OUTBOX, c.targets, c.n, c.len);
	for (size_t i = 0; i < c.len; i++)
		free(c.owned[i]);
}

/* Polling pauses while the outbox holds max_outbox entries or more; true when paused. */
static bool outbox_full(struct poller *p)
{
	int64_t pending = store_outbox_count(p->store);

	metrics_set(M_OUTBOX, pending);
	count_targets(p);
	metrics_set(M_ZONES, (int64_t)p->nzones);
	if (pending >= p->cfg->delivery.max_outbox) {
		if (!p->backpressure)
			log_warnx("outbox full (%lld entries, max_outbox %lld): polling paused "
			          "until deliveries catch up",
			          (long long)pending, (long long)p->cfg->delivery.max_outbox);
		p->backpressure = true;
		return true;
	}
	if (p->backpressure)
		log_info("outbox below max_outbox again: polling resumed");
	p->backpressure = false;
	return false;
}

/* The next batch from zone a: up to per zones that ask something, [a, *b), whose requests
 * are [*lo, *hi] of the cycle's. false when no zone from a on asks anything. */
static bool next_batch(const struct poller *p, size_t a, size_t per, size_t *b, int *lo, int *hi)
{
	size_t asked = 0;
	int first, last;

	*lo = *hi = -1;
	for (*b = a; *b < p->nzones && asked < per; (*b)++) {
		if (!p->plans[*b].asked)
			continue;
		zone_reqs(&p->plans[*b], &first, &last);
		if (*lo < 0)
			*lo = first;
		*hi = last;
		asked++;
	}
	return *lo >= 0;
}

static void count_answers(const struct poller *p, int lo, int hi, int64_t answered)
{
	for (int k = lo; k <= hi; k++) {
		if (p->reqs[k].status == TETHER_OK) {
			metrics_set(M_LAST_POLL_MS, answered);
			continue;
		}
		if (p->reqs[k].http_status == 0 && p->reqs[k].status == TETHER_E_RATE)
			continue; /* held, not sent, after a 429 */
		metrics_add(M_API_ERRORS, 1);
		if (p->reqs[k].status == TETHER_E_RATE)
			metrics_add(M_API_RATE_LIMITED, 1);
	}
}

/* One window answer: true when it is too big and its piece of time was halved. */
static bool piece_too_big(const struct poller *p, struct win_split *s, const struct tether_req *r,
                          int64_t from, int64_t to, bool backfill)
{
	int max = p->cfg->poll.max_window_events;

	if (max <= 0 || !r->too_big)
		return false;
	return split_narrow(s, from, to, backfill) == 0;
}

/* True when a window's answer passed its body cap (poll.max_window_events resources of
 * SPLIT_BYTES_PER_EVENT): nothing of this zone is committed, the window is asked again in
 * smaller pieces. A piece that cannot be halved any more fails as too big. (A window under
 * the cap but over the count is handled: split_done narrows the next ones.) */
static bool window_too_big(struct poller *p, struct zone *z, const struct zplan *pl)
{
	bool ev = pl->win_ev >= 0 && piece_too_big(p, &z->ev_split, &p->reqs[pl->win_ev],
	                                           pl->ev_from, pl->ev_to, pl->ev_backfill);
	bool lpr = pl->win_lpr >= 0 && piece_too_big(p, &z->lpr_split, &p->reqs[pl->win_lpr],
	                                             pl->lpr_from, pl->lpr_to, pl->lpr_backfill);

	if (ev || lpr)
		log_debug("zone '%s': window over %zu bytes, asked again in smaller pieces",
		          z->name, split_body_cap(p->cfg->poll.max_window_events));
	return ev || lpr;
}

/* A pthread call on the fetch handoff's own mutex and condition variable fails only when
 * they are broken (EINVAL, EPERM, EDEADLK): the process stops there rather than risk two
 * requests on one handle at once. */
static void must(int rc, const char *what)
{
	if (rc != 0) {
		log_errorx("poll: unable to %s: %s", what, strerror(rc));
		abort();
	}
}

static void *fetch_main(void *arg)
{
	struct fetch *f = arg;

	must(pthread_mutex_lock(&f->mu), "lock the fetch handoff");
	for (;;) {
		while (!f->quit && f->reqs == NULL)
			must(pthread_cond_wait(&f->cv, &f->mu), "wait for a batch to fetch");
		if (f->reqs == NULL)
			break; /* quit: the poller thread waits for every job, none is pending */
		struct tether *api = f->api;
		struct tether_req *reqs = f->reqs;
		size_t n = f->n;
		f->reqs = NULL;
		must(pthread_mutex_unlock(&f->mu), "unlock the fetch handoff");
		int rc = tether_run(api, reqs, n);
		int64_t answered = util_now_ms();
		must(pthread_mutex_lock(&f->mu), "lock the fetch handoff");
		f->rc = rc;
		f->answered = answered;
		f->busy = false;
		must(pthread_cond_broadcast(&f->cv), "signal a fetched batch");
	}
	must(pthread_mutex_unlock(&f->mu), "unlock the fetch handoff");
	return NULL;
}

/* Hands the cycle's requests [lo, hi] to the fetch thread; the caller must fetch_wait
 * before it hands over another batch, uses the tether handle or changes p->reqs. */
static void fetch_start(struct poller *p, int lo, int hi)
{
	struct fetch *f = &p->fetch;

	must(pthread_mutex_lock(&f->mu), "lock the fetch handoff");
	f->api = p->api;
	f->reqs = p->reqs + lo;
	f->n = (size_t)(hi - lo + 1);
	f->busy = true;
	must(pthread_cond_broadcast(&f->cv), "hand over a batch to fetch");
	must(pthread_mutex_unlock(&f->mu), "unlock the fetch handoff");
}

/* Waits for the batch fetch_start handed over: tether_run's result, and in *answered the
 * wall ms when the answers were in (backoff and Retry-After count from then). */
static int fetch_wait(struct poller *p, int64_t *answered)
{
	struct fetch *f = &p->fetch;
	int rc;

	must(pthread_mutex_lock(&f->mu), "lock the fetch handoff");
	while (f->busy)
		must(pthread_cond_wait(&f->cv, &f->mu), "wait for a fetched batch");
	rc = f->rc;
	*answered = f->answered;
	must(pthread_mutex_unlock(&f->mu), "unlock the fetch handoff");
	return rc;
}

/* Ends the fetch thread, idle by then (the poller thread has ended: it waits for every
 * batch it hands over). */
static void fetch_stop(struct poller *p)
{
	struct fetch *f = &p->fetch;
	int rc;

	if (!f->started)
		return;
	must(pthread_mutex_lock(&f->mu), "lock the fetch handoff");
	f->quit = true;
	must(pthread_cond_broadcast(&f->cv), "stop the fetch thread");
	must(pthread_mutex_unlock(&f->mu), "unlock the fetch handoff");
	if ((rc = pthread_join(f->thread, NULL)) != 0)
		log_warnx("poll: unable to join the fetch thread: %s", strerror(rc));
	f->started = false;
}

/* True when an answer of [lo, hi] is a 429 or was held after one: the next batch waits
 * for the pause the zone's commit sets (zone_answers_ok). */
static bool rate_limited(const struct poller *p, int lo, int hi)
{
	for (int k = lo; k <= hi; k++) {
		if (p->reqs[k].status == TETHER_E_RATE)
			return true;
	}
	return false;
}

/* Commits each zone of [a, b) that got usable answers (its requests [lo, hi], answered at
 * `answered`). Adds the entries queued to *added; sets *behind when a zone is still
 * catching up. Frees the batch's answers. */
static void commit_batch(struct poller *p, size_t a, size_t b, int lo, int hi, int64_t answered,
                         int64_t now, int *added, bool *behind)
{
	for (size_t i = a; i < b; i++) {
		struct zone *z = &p->zones[i];
		struct zplan *pl = &p->plans[i];
		if (!pl->asked)
			continue;
		if (window_too_big(p, z, pl)) {
			*behind = true; /* the smaller piece is asked at once */
			continue;
		}
		if (!zone_answers_ok(p, z, pl, answered))
			continue;
		/* a cooldown counts from when its alert exists, not from the cycle's start: the
		 * requests before it may have taken seconds (timeouts, retries) */
		p->eval_ms = util_now_ms();
		int n = commit_zone(p, z, pl, now);
		if (n == -2) {
			zone_answers_ok(p, z, pl, answered); /* logs it, skips this poll */
			continue;
		}
		if (n < 0) {
			/* not saved: ask again after a pause, not in a tight loop */
			z->backoff_ms =
			    retry_backoff_next(z->backoff_ms, BACKOFF_MIN_MS, BACKOFF_MAX_MS);
			z->next_try_ms = answered + retry_jitter_ms(z->backoff_ms, &p->rng);
			continue;
		}
		if (pl->win_ev >= 0)
			split_done(&z->ev_split, pl->ev_from, pl->ev_to, pl->ev_count,
			           (size_t)p->cfg->poll.max_window_events);
		if (pl->win_lpr >= 0)
			split_done(&z->lpr_split, pl->lpr_from, pl->lpr_to, pl->lpr_count,
			           (size_t)p->cfg->poll.max_window_events);
		if (n > 0) {
			*added += n;
			metrics_add(M_QUEUED, (uint64_t)n);
			if (p->wake)
				p->wake(p->wake_arg); /* deliveries start at once */
		}
		if (pl->win_ev >= 0 &&
		    (z->ev_polled = kind_polled(p->cfg, pl->ev_cursor, pl->ev_to, now)) == 0)
			*behind = true;
		if (pl->win_lpr >= 0 &&
		    (z->lpr_polled = kind_polled(p->cfg, pl->lpr_cursor, pl->lpr_to, now)) == 0)
			*behind = true;
	}
	size_t docs = 0;
	for (int k = lo; k <= hi; k++) {
		docs += p->reqs[k].doc_memory + p->reqs[k].body_len;
		tether_req_recycle(p->api, &p->reqs[k]); /* the next batches' bodies */
	}
	/* a catch-up asks batch after batch: give the freed memory back now, or the heaps keep
	 * the high-water mark of every batch, fragmented (the bodies were allocated on the
	 * fetch thread: malloc_trim trims its arena too, as it fills with the next batch) */
	if (docs >= TRIM_BATCH)
		malloc_trim(0);
}

/* The cycle's zones go to the API a few at a time, batch k+1 being fetched while batch k
 * is committed, and each batch is freed once committed: the documents of a big catch-up are
 * never all in memory together, two batches' at most. Adds the entries queued to *added;
 * sets *behind when a zone is still catching up. p->reqs stays put meanwhile (no request
 * is added after plan_cycle). */
static void run_batches(struct poller *p, int64_t now, int *added, bool *behind)
{
	size_t per = poller_zones_per_batch(p->cfg->poll.concurrency), a = 0, b, nb;
	int lo, hi, nlo, nhi;

	if (!next_batch(p, 0, per, &b, &lo, &hi))
		return;
	fetch_start(p, lo, hi);
	for (;;) {
		int64_t answered;
		if (fetch_wait(p, &answered) < 0)
			log_warnx("poll: unable to run the API requests");
		count_answers(p, lo, hi, answered);
		bool more = next_batch(p, b, per, &nb, &nlo, &nhi);
		/* never after a 429: nothing goes out until the pause its commit sets ends */
		bool ahead = more && !rate_limited(p, lo, hi) && util_now_ms() >= p->pause_until;
		if (ahead)
			fetch_start(p, nlo, nhi);
		commit_batch(p, a, b, lo, hi, answered, now, added, behind);
		if (!more)
			return;
		/* a 429 in this cycle: the other zones wait for the next one */
		if (!ahead && util_now_ms() < p->pause_until)
			return;
		if (!ahead)
			fetch_start(p, nlo, nhi);
		a = b;
		b = nb;
		lo = nlo;
		hi = nhi;
	}
}

/* when.modes matches the mode in state.db, which commands and `tether-bridge mode` set. */
static void set_mode(struct poller *p)
{
	char mode[64];

	if (control_mode_read(p->store, p->cfg, mode, sizeof(mode)) < 0)
		log_warnx("poll: unable to read the mode: %s", store_errmsg(p->store));
	else
		rules_state_set_mode(p->rstate, mode);
}

/* One cycle; returns true when some zone is still catching up (poll again at once). */
static bool cycle(struct poller *p)
{
	int64_t now = util_now_ms();
	int added = 0;
	bool behind = false;

	if (p->zones_at == 0 || now - p->zones_at >= ZONES_REFRESH_MS) {
		int rc = refresh_zones(p, now);
		if (rc == 0)
			ha_refresh(p, now);
		if (rc < 0)
			return false;
	}
	if (outbox_full(p))
		return false;
	set_mode(p);
	/* a read may reach the bridge up to lookback late: visits are remembered that long */
	rules_state_set_late(p->rstate, p->cfg->poll.lookback_ms);
	if (plan_cycle(p, now) < 0) {
		log_warnx("poll: unable to plan this cycle: %s", store_errmsg(p->store));
		return false;
	}
	if (p->nreqs == 0)
		return false;
	metrics_add(M_POLL_CYCLES, 1);
	run_batches(p, now, &added, &behind);
	for (size_t i = 0; i < p->nreqs; i++)
		tether_req_release(&p->reqs[i]);
	p->nreqs = 0;
	tether_spare_release(p->api); /* bodies are kept within a cycle, not between */
	if (added > TRIM_AFTER)
		malloc_trim(0); /* hand the memory of a large catch-up back to the system */
	return behind;
}

static void *run(void *arg)
{
	struct poller *p = arg;
	int64_t last_prune = 0;

	while (!p->stop) {
		take_swap(p);
		int64_t start = util_now_ms();
		if (start < p->pause_until) {
			if (wait_until(p, p->pause_until))
				break;
			continue;
		}
		if (p->reload && rules_watchlists_changed(p->rules) &&
		    start - p->watch_reload_ms >= WATCH_RELOAD_MIN_MS) {
			struct rules *before = p->rules;
			log_info("a watchlist file changed: reloading");
			p->reload(p->reload_arg);
			take_swap(p);
			/* a rejected file is tried again once a minute, not every cycle */
			p->watch_reload_ms = p->rules == before ? start : 0;
		}
		int req = atomic_exchange(&p->ha_req, 0);
		if (req & HA_REQ_RESEND)
			p->ha_force = true;
		if (req & HA_REQ_SYNC)
			take_perspectives(p);
		if (req & (HA_REQ_REFRESH | HA_REQ_RESEND))
			p->zones_at = 0; /* refresh the zones now */
		else if ((req & HA_REQ_SYNC) && p->zones_at > 0)
			ha_refresh(p, util_now_ms()); /* the zones it has: no API read */
		bool behind = cycle(p);
		ha_cycle(p, util_now_ms());
		if (start - last_prune > PRUNE_EVERY_MS) {
			store_seen_prune(p->store, start - SEEN_KEEP_MS);
			store_rstate_prune(p->store, start);
			last_prune = start;
		}
		if (behind)
			continue;
		int64_t next = start + p->cfg->poll.interval_ms;
		for (size_t i = 0; i < p->nzones; i++) {
			if (p->zones[i].next_try_ms > start && p->zones[i].next_try_ms < next)
				next = p->zones[i].next_try_ms;
		}
		/* configs spread over a few seconds go out between polls */
		while (p->ha_pending.n > 0 && p->ha_pending.v[0].next_attempt_ms < next &&
		       atomic_load(&p->ha_req) == 0) {
			if (wait_until(p, p->ha_pending.v[0].next_attempt_ms))
				break;
			ha_flush(p, util_now_ms());
		}
		if (wait_until(p, next))
			break;
	}
	return NULL;
}

int poller_start(struct poller *p)
{
	if (pthread_create(&p->fetch.thread, NULL, fetch_main, &p->fetch) != 0)
		return -1;
	p->fetch.started = true;
	if (pthread_create(&p->thread, NULL, run, p) != 0) {
		fetch_stop(p);
		return -1;
	}
	p->started = true;
	return 0;
}

void poller_set_reload_cb(struct poller *p, void (*cb)(void *arg), void *arg)
{
	p->reload = cb;
	p->reload_arg = arg;
}

void poller_request_stop(struct poller *p)
{
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

int poller_stop_timed(struct poller *p, int64_t ms)
{
	struct timespec ts;

	if (!p->started)
		return 0;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
	realtime_after(ms, &ts);
	if (pthread_timedjoin_np(p->thread, NULL, &ts) != 0)
		return -1; /* in an API request: the fetch thread is left to the exit too */
	p->started = false;
	fetch_stop(p);
	return 0;
}
