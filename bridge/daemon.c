/* tether-bridge run: sets up logging, the state directory, the delivery loop (this thread,
 * which also takes the signals) and the poller thread, and reloads on SIGHUP or when a
 * watchlist file changes. A reload that fails leaves the running config in force. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bridge/bridge.h"
#include "bridge/control.h"
#include "bridge/deliver.h"
#include "lib/log.h"
#include "bridge/metrics.h"
#include "bridge/mqtt.h"
#include "bridge/outbox.h"
#include "bridge/poller.h"
#include "bridge/store.h"
#include "bridge/webhook.h"

#define STOP_GRACE_MS 4500          /* from the signal; the SPEC allows 5 s */
#define STOP_JOIN_MIN_MS 100        /* the poller's share when the brokers took the whole grace */
#define MMAP_THRESHOLD (256 * 1024) /* bytes: bigger blocks get their own mapping */
/* healthy while a poll reached the API within this many intervals, plus a grace */
#define HEALTHY_INTERVALS 3
#define HEALTHY_GRACE_MS 60000

struct daemon {
	const char *path;
	struct poller *poller;
	char *started_state_dir;
	int64_t stop_at; /* monotonic ms when the stop signal came */
	char **targets;  /* "mqtt.home", "webhook.slack": what delivery serves */
	size_t ntargets;
	struct control *ctl; /* the control plane, or NULL */
	struct listen *ls;   /* every broker, in the config's order (reloads add none) */
	size_t nls;
	_Atomic bool ha_any; /* some broker has discovery on (read by the control thread) */
	pthread_t loop;      /* the delivery loop's thread, the brokers' */
	struct deliver *dl;  /* for the brokers, from the loop's thread only */
};

/* What one broker listens to (its strings owned): Home Assistant's birth and refresh topics
 * when it has discovery (as the last config applied says: start or reload), the control
 * plane's <prefix>/cmd/# when it has commands (at start). The broker has one message callback
 * (libmosquitto has one), listen_message_cb, which routes by topic. */
struct listen {
	struct daemon *d;
	char *target;        /* "mqtt.home" */
	const char *name;    /* "home", inside target */
	bool ha;             /* homeassistant on */
	char *birth_topic;   /* ha: <discovery_prefix>/status */
	char *refresh_topic; /* ha: <topic_prefix>/cmd/refresh, the refresh button */
	char *cmd_prefix;    /* commands on: "<topic_prefix>/cmd/"; NULL when off */
	bool connected;      /* once: the first connection gets the start's configs */
	bool resubscribed;   /* a reload subscribed on the live connection: the next connect
	                        callback is its SUBACK, not a reconnection */
};

/* From the delivery thread, every message of the broker, routed by topic:
 * - <discovery_prefix>/status (ha): Home Assistant came online, resend every config; a
 *   retained `online` is a replay but still means Home Assistant is there;
 * - <prefix>/cmd/# (commands on): the control plane, refresh included: it answers on
 *   cmd/result and, once the command is taken, asks the Home Assistant side to re-read the
 *   zones (control_refresh_requested), so one press is one refresh of each;
 * - <prefix>/cmd/refresh (ha, commands off): the refresh button re-reads the zones; a
 *   retained press is ignored. */
static void listen_message_cb(void *arg, const struct mqtt_message *msg)
{
	struct listen *l = arg;

	if (l->ha && strcmp(msg->topic, l->birth_topic) == 0) {
		if (msg->len == 6 && memcmp(msg->payload, "online", 6) == 0) {
			log_info("%s: Home Assistant is online: sending discovery again",
			         l->target);
			poller_ha_request(l->d->poller, true);
		}
	} else if (l->cmd_prefix != NULL &&
	           strncmp(msg->topic, l->cmd_prefix, strlen(l->cmd_prefix)) == 0) {
		control_command_push(l->d->ctl, l->name, msg);
	} else if (l->ha && strcmp(msg->topic, l->refresh_topic) == 0 && !msg->retain) {
		log_info("%s: refresh requested on '%s'", l->target, l->refresh_topic);
		poller_ha_request(l->d->poller, false);
	}
}

/* From the control thread: a refresh command was taken. Home Assistant's zones are the
 * poller's, so it re-reads them itself (the control plane's own read is for the
 * perspectives' zone names: two threads, two API clients). */
static void control_refresh_requested(void *arg)
{
	struct daemon *d = arg;

	if (atomic_load(&d->ha_any) && d->poller != NULL)
		poller_ha_request(d->poller, false);
}

/* From the control thread: the perspectives changed; Home Assistant's live-view select
 * offers them (the poller syncs the configs again). */
static void control_perspectives_read(void *arg, const char *const *names, size_t n)
{
	struct daemon *d = arg;

	if (d->poller != NULL)
		poller_ha_perspectives(d->poller, names, n);
}

/* A broker with discovery reconnected: its retained configs may be gone (a broker
 * restarted without persistence), so they are sent again. The first connection needs
 * nothing more than the configs the start queues anyway, and the answer to a reload's new
 * subscription nothing more than the configs the reload queues. */
static void ha_connect_cb(void *arg, const char *target)
{
	struct daemon *d = arg;

	for (size_t i = 0; i < d->nls; i++) {
		struct listen *l = &d->ls[i];
		if (strcmp(l->target, target) != 0)
			continue;
		if (l->ha && l->connected && !l->resubscribed && d->poller)
			poller_ha_request(d->poller, true);
		l->connected = true;
		l->resubscribed = false;
	}
}

/* Whether s is one of the (possibly NULL) strings a and b. */
static bool one_of(const char *s, const char *a, const char *b)
{
	return (a != NULL && strcmp(s, a) == 0) || (b != NULL && strcmp(s, b) == 0);
}

/* Brings l's Home Assistant subscriptions to what m asks for: Home Assistant's birth topic
 * <discovery_prefix>/status when m has discovery, and its refresh button's
 * <topic_prefix>/cmd/refresh unless the control plane's cmd/# covers it; what is no longer
 * wanted is unsubscribed. From the loop's thread (or before it runs). 0, or -1 (logged; l
 * as it was). */
static int listen_apply(struct listen *l, struct mqtt *mq, const struct cfg_mqtt *m)
{
	char *birth = NULL, *refresh = NULL;
	const char *old_birth = l->ha ? l->birth_topic : NULL;
	const char *old_refresh = l->ha && l->cmd_prefix == NULL ? l->refresh_topic : NULL;
	bool added = false;

	if (m->ha.enabled) {
		if (asprintf(&birth, "%s/status", m->ha.discovery_prefix) < 0)
			birth = NULL;
		if (asprintf(&refresh, "%s/cmd/refresh", m->topic_prefix) < 0)
			refresh = NULL;
		if (birth == NULL || refresh == NULL) {
			log_errorx("out of memory");
			goto out_free;
		}
	}
	const char *new_refresh = l->cmd_prefix == NULL ? refresh : NULL;
	/* new filters first: a failure leaves the old ones in place */
	if (birth != NULL && !one_of(birth, old_birth, old_refresh)) {
		if (mqtt_subscribe(mq, birth) < 0)
			goto out_subscribe;
		added = true;
	}
	if (new_refresh != NULL && !one_of(new_refresh, old_birth, old_refresh)) {
		if (mqtt_subscribe(mq, new_refresh) < 0)
			goto out_subscribe;
		added = true;
	}
	if (old_birth != NULL && !one_of(old_birth, birth, new_refresh))
		mqtt_unsubscribe(mq, old_birth);
	if (old_refresh != NULL && !one_of(old_refresh, birth, new_refresh))
		mqtt_unsubscribe(mq, old_refresh);
	if (added && mqtt_connected(mq))
		l->resubscribed = true;
	if (m->ha.enabled != l->ha || (birth && l->birth_topic && strcmp(birth, l->birth_topic)))
		log_info("mqtt '%s': Home Assistant discovery %s%s%s", m->name,
		         m->ha.enabled ? "on, its birth message on '" : "off",
		         m->ha.enabled ? birth : "", m->ha.enabled ? "'" : "");
	l->ha = m->ha.enabled;
	free(l->birth_topic);
	free(l->refresh_topic);
	l->birth_topic = birth;
	l->refresh_topic = refresh;
	return 0;
out_subscribe:
	log_errorx("mqtt '%s': unable to subscribe to its Home Assistant topics", m->name);
out_free:
	free(birth);
	free(refresh);
	return -1;
}

/* The config being put in force: every broker's Home Assistant subscriptions follow it. */
static void listen_reload(struct daemon *d, const struct config *cfg)
{
	bool any = false;

	for (size_t i = 0; i < d->nls; i++) {
		const struct cfg_mqtt *m = config_mqtt(cfg, d->ls[i].name);
		struct mqtt *mq = deliver_mqtt(d->dl, d->ls[i].target);
		if (m == NULL || mq == NULL)
			continue; /* a broker the reload removed: nothing sends to it any more */
		listen_apply(&d->ls[i], mq, m);
		any = any || d->ls[i].ha;
	}
	atomic_store(&d->ha_any, any);
}

/* Subscribes every broker to what it listens to (see listen_message_cb), with the one
 * callback: the control plane's commands for those with commands on, and Home Assistant's
 * topics (listen_apply, again at each reload) for those with discovery. Call after
 * control_setup. 0/-1 (logged). */
static int listen_setup(struct daemon *d, struct deliver *dl, const struct config *cfg)
{
	d->dl = dl;
	d->loop = pthread_self();
	if ((d->ls = calloc(cfg->nmqtt + 1, sizeof(*d->ls))) == NULL)
		goto out_nomem;
	for (size_t i = 0; i < cfg->nmqtt; i++) {
		const struct cfg_mqtt *m = &cfg->mqtt[i];
		struct listen *l = &d->ls[d->nls++];
		struct mqtt *mq;
		bool commands = m->commands && d->ctl != NULL;
		l->d = d;
		if ((l->target = outbox_target("mqtt", m->name)) == NULL)
			goto out_nomem;
		l->name = l->target + strlen("mqtt.");
		if (commands && asprintf(&l->cmd_prefix, "%s/cmd/", m->topic_prefix) < 0) {
			l->cmd_prefix = NULL;
			goto out_nomem;
		}
		if ((mq = deliver_mqtt(dl, l->target)) == NULL)
			goto out_subscribe;
		if (commands) {
			/* cmd/# covers the refresh button too */
			char *filter;
			int rc;
			if (asprintf(&filter, "%s#", l->cmd_prefix) < 0)
				goto out_nomem;
			rc = mqtt_subscribe(mq, filter);
			if (rc == 0)
				log_info("mqtt '%s': taking commands on '%s'", m->name, filter);
			free(filter);
			if (rc < 0)
				goto out_subscribe;
		}
		if (listen_apply(l, mq, m) < 0)
			return -1;
		if (l->ha)
			atomic_store(&d->ha_any, true);
		mqtt_set_message_cb(mq, listen_message_cb, l);
	}
	deliver_set_connect_cb(dl, ha_connect_cb, d);
	if (d->ctl != NULL) {
		control_set_refresh_cb(d->ctl, control_refresh_requested, d);
		control_set_perspectives_cb(d->ctl, control_perspectives_read, d);
	}
	return 0;
out_subscribe:
	log_errorx("mqtt '%s': unable to subscribe to its commands or Home Assistant topics",
	           d->ls[d->nls - 1].name);
	return -1;
out_nomem:
	log_errorx("out of memory");
	return -1;
}

static bool serves(const struct daemon *d, const char *kind, const char *name)
{
	char *t = outbox_target(kind, name);
	bool found = false;

	for (size_t i = 0; t != NULL && i < d->ntargets && !found; i++)
		found = strcmp(d->targets[i], t) == 0;
	free(t);
	return found;
}

static int record_targets(struct daemon *d, const struct config *cfg)
{
	d->targets = calloc(cfg->nmqtt + cfg->nwebhooks + 1, sizeof(*d->targets));
	d->started_state_dir = strdup(cfg->state_dir);
	if (d->targets == NULL || d->started_state_dir == NULL)
		return -1;
	for (size_t i = 0; i < cfg->nmqtt; i++) {
		if ((d->targets[d->ntargets] = outbox_target("mqtt", cfg->mqtt[i].name)) == NULL)
			return -1;
		d->ntargets++;
	}
	for (size_t i = 0; i < cfg->nwebhooks; i++) {
		d->targets[d->ntargets] = outbox_target("webhook", cfg->webhooks[i].name);
		if (d->targets[d->ntargets] == NULL)
			return -1;
		d->ntargets++;
	}
	return 0;
}

static void daemon_release(struct daemon *d)
{
	for (size_t i = 0; i < d->ntargets; i++)
		free(d->targets[i]);
	free(d->targets);
	free(d->started_state_dir);
	for (size_t i = 0; i < d->nls; i++) {
		free(d->ls[i].target);
		free(d->ls[i].birth_topic);
		free(d->ls[i].refresh_topic);
		free(d->ls[i].cmd_prefix);
	}
	free(d->ls);
}

/* Delivery serves the targets it started with: a reload that adds one would queue messages
 * nothing sends (and fill max_outbox), so such a reload is refused. */
static size_t reload_conflicts(const struct daemon *d, const struct config *cfg)
{
	size_t bad = 0;

	for (size_t i = 0; i < cfg->nmqtt; i++) {
		if (!serves(d, "mqtt", cfg->mqtt[i].name)) {
			log_errorx("reload rejected: %s:%d:%d: mqtt broker '%s' is new; adding a "
			           "broker needs a restart",
			           cfg->file, cfg->mqtt[i].line, cfg->mqtt[i].column,
			           cfg->mqtt[i].name);
			bad++;
		}
	}
	for (size_t i = 0; i < cfg->nwebhooks; i++) {
		if (!serves(d, "webhook", cfg->webhooks[i].name)) {
			log_errorx(
			    "reload rejected: %s:%d:%d: webhook '%s' is new; adding a webhook "
			    "needs a restart",
			    cfg->file, cfg->webhooks[i].line, cfg->webhooks[i].column,
			    cfg->webhooks[i].name);
			bad++;
		}
	}
	if (strcmp(cfg->state_dir, d->started_state_dir) != 0) {
		log_errorx("reload rejected: state_dir changed to '%s'; that needs a restart",
		           cfg->state_dir);
		bad++;
	}
	return bad;
}

/* Builds a fresh config and rules and hands them to the poller; on any error logs every
 * problem and keeps the old ones. Called on SIGHUP and when a watchlist file changed. */
static void reload(void *arg)
{
	struct daemon *d = arg;
	struct cfg_errors errs = {0};
	struct config *cfg;
	struct rules *rules;

	if (bridge_load(d->path, &cfg, &rules, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_errorx("reload rejected: %s:%d:%d: %s", errs.v[i].file, errs.v[i].line,
			           errs.v[i].column, errs.v[i].text);
		log_warnx("reload rejected: %zu error%s, the running configuration stays", errs.n,
		          errs.n == 1 ? "" : "s");
		cfg_errors_release(&errs);
		return;
	}
	size_t bad = reload_conflicts(d, cfg);
	if (bad > 0) {
		log_warnx("reload rejected: %zu error%s, the running configuration stays", bad,
		          bad == 1 ? "" : "s");
		rules_free(rules);
		config_free(cfg);
		return;
	}
	log_info("reload: new configuration accepted (%zu rules); changed settings of existing "
	         "mqtt brokers and webhooks take effect at the next restart",
	         rules_count(rules));
	/* Home Assistant's subscriptions follow at once: the brokers are the loop's, so only
	 * there (SIGHUP); a watchlist reload, from the poller's thread, leaves them to the next
	 * SIGHUP. Before the swap: cfg is the poller's afterwards. */
	if (pthread_equal(pthread_self(), d->loop))
		listen_reload(d, cfg);
	poller_swap(d->poller, cfg, rules);
}

/* reload, told to systemd (Type=notify): a no-op when NOTIFY_SOCKET is not set. */
static void reload_notified(void *arg)
{
	sd_notify(0, "RELOADING=1");
	reload(arg);
	sd_notify(0, "READY=1");
}

/* The control plane, when the config has a control section or a commands broker (whose
 * <prefix>/cmd/# listen_setup subscribes). NULL + 0 when there is none; -1 on failure
 * (logged). */
static int control_setup(const struct config *cfg, const char *db, struct deliver *dl,
                         struct control **out)
{
	bool any = cfg->control.on;
	char err[512];

	*out = NULL;
	for (size_t i = 0; i < cfg->nmqtt; i++)
		any = any || cfg->mqtt[i].commands;
	if (!any)
		return 0;
	*out = control_new(cfg, db, (void (*)(void *))deliver_wakeup, dl, err, sizeof(err));
	if (*out == NULL) {
		log_errorx("control: %s", err);
		return -1;
	}
	return 0;
}

/* SIGTERM/SIGINT: the poller starts stopping while the delivery loop says goodbye. */
static void stop_requested(void *arg)
{
	struct daemon *d = arg;
	sd_notify(0, "STOPPING=1");
	d->stop_at = util_mono_ms();
	poller_request_stop(d->poller);
}

/* One daemon per state_dir: two would poll twice and send every alert twice. The flock on
 * state_dir/lock lasts as long as the returned descriptor (the process's life); the file
 * holds the owner's PID for the message. -1 (logged) when it is taken or cannot be made. */
/* The daemon's signals: SIGTERM and SIGINT stop, SIGHUP reloads, SIGPIPE is ignored (a peer
 * closing a socket is an error return, not a death). They are blocked in the calling thread,
 * before any other starts, so every thread inherits the mask and they arrive only through
 * the returned signalfd, which the delivery loop watches. The descriptor, or -1. */
static int signals_open(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* What to do when the state_dir cannot be written: the daemon cannot run without it. */
#define STATE_DIR_HINT                                                                             \
	"give the daemon's user write access to it, or set state_dir to a directory it can write"

static int state_dir_lock(const char *dir)
{
	char path[4200], pid[32] = "";
	int fd, n;

	snprintf(path, sizeof(path), "%s/lock", dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_errorx("unable to open '%s': %s; " STATE_DIR_HINT, path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			log_warn("unable to lock '%s'", path);
		} else {
			n = (int)pread(fd, pid, sizeof(pid) - 1, 0);
			pid[n > 0 ? strcspn(pid, "\n") : 0] = '\0';
			log_errorx("state_dir '%s' is in use by another tether-bridge (pid %s)",
			           dir, pid[0] ? pid : "unknown");
		}
		close(fd);
		return -1;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("unable to write the pid to '%s'", path); /* the lock itself holds */
	return fd;
}

static void log_start(const struct config *cfg, const struct rules *rules)
{
	log_info("tether-bridge %s starting: config '%s', state in '%s'", TB_VERSION, cfg->file,
	         cfg->state_dir);
	log_info("tether API %s, polling every %llds (lookback %llds) over %s",
	         cfg->tether.base_url, (long long)(cfg->poll.interval_ms / 1000),
	         (long long)(cfg->poll.lookback_ms / 1000),
	         cfg->poll.zones_all ? "all zones" : "the configured zones");
	for (size_t i = 0; i < cfg->nmqtt; i++)
		log_info("target mqtt.%s: %s (qos %d, prefix '%s')", cfg->mqtt[i].name,
		         cfg->mqtt[i].url, cfg->mqtt[i].qos, cfg->mqtt[i].topic_prefix);
	for (size_t i = 0; i < cfg->nwebhooks; i++)
		log_info("target webhook.%s: %s", cfg->webhooks[i].name,
		         config_webhook_format_name(cfg->webhooks[i].format));
	log_info("rules loaded: %zu", rules_count(rules));
}

int daemon_main(const char *path)
{
	struct cfg_errors errs = {0};
	struct config *cfg;
	struct rules *rules;
	struct deliver *dl = NULL;
	struct metrics_server *ms = NULL;
	struct control *ctl = NULL;
	struct daemon d = {.path = path};
	char err[512], *db = NULL;
	int rc = 1, lock_fd = -1, sigfd = -1;

	/* API answers (a window is up to megabytes) are allocated from their own mappings and
	 * unmapped when freed: glibc otherwise raises the threshold after the first such free
	 * and keeps later answers in the heap, where the daemon stays at its high-water mark */
	(void)mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD); /* 0 under a sanitizer's allocator */
	if (bridge_load(path, &cfg, &rules, &errs) < 0) {
		cfg_errors_print(&errs, stderr);
		cfg_errors_release(&errs);
		return 1;
	}
	log_init(cfg->log.level, cfg->log.json);
	log_start(cfg, rules);
	/* before any thread exists (libmicrohttpd's included): every thread inherits the mask
	 * and only the delivery loop, watching sigfd, sees SIGTERM, SIGINT and SIGHUP */
	if ((sigfd = signals_open()) < 0) {
		log_warn("unable to set up signal handling");
		goto out_free_cfg;
	}
	if (util_mkdirs(cfg->state_dir) < 0) {
		log_errorx("unable to create state_dir '%s': %s; " STATE_DIR_HINT, cfg->state_dir,
		           strerror(errno));
		goto out_free_cfg;
	}
	if ((lock_fd = state_dir_lock(cfg->state_dir)) < 0)
		goto out_free_cfg;
	if ((db = store_path(cfg->state_dir)) == NULL) {
		log_errorx("out of memory");
		goto out_free_cfg;
	}
	if (cfg->metrics.listen) {
		ms = metrics_start(cfg->metrics.listen,
		                   HEALTHY_INTERVALS * cfg->poll.interval_ms + HEALTHY_GRACE_MS,
		                   err, sizeof(err));
		if (ms == NULL) {
			log_errorx("%s", err);
			goto out_free_cfg;
		}
		log_info("metrics on http://%s/metrics and /healthz", cfg->metrics.listen);
	}
	if (mqtt_lib_init() < 0) {
		log_warnx("unable to initialise libmosquitto");
		goto out_free_cfg;
	}
	if (store_checkpoints_start(db, err, sizeof(err)) < 0)
		log_warnx("%s", err);
	dl = deliver_new(db, sigfd, err, sizeof(err));
	if (dl == NULL) {
		log_errorx("%s", err);
		goto out_lib;
	}
	for (size_t i = 0; i < cfg->nmqtt; i++) {
		const struct cfg_mqtt *m = &cfg->mqtt[i];
		struct mqtt_options o = {
		    .name = m->name,
		    .url = m->url,
		    .username = m->username,
		    .password = m->password,
		    .client_id = m->client_id,
		    .keepalive = (int)(m->keepalive_ms / 1000),
		    .topic_prefix = m->topic_prefix,
		    .ca_file = m->ca_file,
		    .cert_file = m->cert_file,
		    .key_file = m->key_file,
		    .insecure = m->insecure,
		    .mqtt311 = m->mqtt311,
		};
		char *target = outbox_target("mqtt", m->name);
		if (target == NULL || deliver_add_mqtt(dl, target, &o) < 0) {
			free(target);
			log_errorx("mqtt '%s': unable to set up the publisher", m->name);
			goto out_deliver;
		}
		free(target);
	}
	for (size_t i = 0; i < cfg->nwebhooks; i++) {
		struct webhook *w = webhook_new(&cfg->webhooks[i], cfg->delivery.max_retry_age_ms);
		if (w == NULL || deliver_add_webhook(dl, w) < 0) {
			webhook_free(w);
			log_errorx("webhook '%s': unable to set up the publisher",
			           cfg->webhooks[i].name);
			goto out_deliver;
		}
	}
	if (control_setup(cfg, db, dl, &ctl) < 0)
		goto out_deliver;
	d.ctl = ctl;
	if (record_targets(&d, cfg) < 0) {
		log_errorx("out of memory");
		goto out_deliver;
	}
	if (listen_setup(&d, dl, cfg) < 0)
		goto out_deliver;
	d.poller = poller_new(cfg, rules, (void (*)(void *))deliver_wakeup, dl, err, sizeof(err));
	if (d.poller == NULL) {
		log_errorx("%s", err);
		goto out_deliver;
	}
	cfg = NULL; /* the poller owns them now */
	rules = NULL;
	poller_set_reload_cb(d.poller, reload_notified, &d);
	deliver_set_stop_cb(dl, stop_requested, &d);
	deliver_set_reload_cb(dl, reload_notified, &d);
	if (poller_start(d.poller) < 0) {
		log_errorx("unable to start the poller thread");
		goto out_poller;
	}
	if (ctl != NULL && control_start(ctl) < 0) {
		log_errorx("unable to start the control thread");
		poller_stop_timed(d.poller, STOP_GRACE_MS);
		goto out_poller;
	}
	sd_notify(0, "READY=1"); /* the threads run; brokers and webhooks connect as they can */
	rc = deliver_run(dl) < 0 ? 1 : 0;
	/* the whole stop fits in STOP_GRACE_MS from the signal: the brokers' `offline` took
	 * some of it, the poller gets the rest */
	int64_t left = STOP_GRACE_MS - (util_mono_ms() - d.stop_at);
	if (control_stop_timed(ctl, left > STOP_JOIN_MIN_MS ? left : STOP_JOIN_MIN_MS) < 0) {
		/* a switch still running: its outbox entry stays, the next start decides */
		log_info("stopped (a video wall switch was still running)");
		metrics_stop(ms);
		fflush(NULL);
		_exit(rc);
	}
	left = STOP_GRACE_MS - (util_mono_ms() - d.stop_at);
	if (poller_stop_timed(d.poller, left > STOP_JOIN_MIN_MS ? left : STOP_JOIN_MIN_MS) < 0) {
		/* a request still running: its cycle has not committed, so leaving now loses
		 * nothing; the next start asks again. Nothing is freed: the poller thread may
		 * still call into the delivery loop (wakeup) and the API client. */
		log_info("stopped (an API request was still running)");
		metrics_stop(ms);
		/* the poller thread still uses the API client, the rules and d: leave without
		 * running exit handlers under it (the state database is consistent as it is) */
		fflush(NULL);
		_exit(rc);
	}
	log_info("stopped");
out_poller:
	poller_free(d.poller);
out_deliver:
	control_free(ctl);
	deliver_free(dl);
out_lib:
	store_checkpoints_stop();
	mqtt_lib_cleanup();
out_free_cfg:
	free(db);
	daemon_release(&d);
	metrics_stop(ms);
	rules_free(rules);
	config_free(cfg);
	if (lock_fd >= 0)
		close(lock_fd);
	if (sigfd >= 0)
		close(sigfd);
	return rc;
}
