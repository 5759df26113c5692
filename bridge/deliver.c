/* The delivery loop: drains the outbox to each target over one curl_multi_poll() that also
 * watches the MQTT sockets and a signalfd. Entries leave the outbox only when their target
 * acknowledged them; anything in flight when a connection drops is fetched again. */
#include "bridge/deliver.h"

#include <curl/curl.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <jansson.h>

#include "lib/log.h"
#include "bridge/metrics.h"
#include "bridge/tmetrics.h"
#include "bridge/store.h"
#include "bridge/webhook.h"
#include "lib/util.h"

#define FETCH_BATCH 200
#define MQTT_WINDOW 1000 /* entries handed to a broker and not yet acknowledged */
#define TICK_MS 1000
/* MQTT acknowledgements and webhook deliveries wait up to ACK_FLUSH_MS, or until
 * ACK_FLUSH_COUNT are waiting, for the transaction that deletes their entries: each commit
 * writes every page it touched, and a turn's few deletes touch the same index pages as the
 * next turn's */
#define ACK_FLUSH_MS 3
#define ACK_FLUSH_COUNT 4096
/* The poller holds the write lock for a chunk at a time: the commit is tried without
 * waiting for it (every ACK_RETRY_MS meanwhile, the loop going on), and waits only once the
 * oldest acknowledgement is ACK_WAIT_MS old. */
#define ACK_RETRY_MS 1
#define ACK_WAIT_MS 50
#define DONE_PER_READ 64                /* finished transfers read from curl before settling them */
#define POLL_FAIL_PAUSE_US (100 * 1000) /* after a failed curl_multi_poll, not to spin */
#define CORRELATION_MAX 1024            /* bytes of a command's correlation data echoed */

struct mtarget {
	struct deliver *d;
	char *target;
	struct mqtt *m;
	int64_t last_id;     /* highest entry id handed to the broker */
	int64_t resend_from; /* lowest lost id since the last turn, or 0 */
	bool subscribed;     /* mqtt_subscribed at the end of the last turn */
	char *extra;         /* the last entry extra read without correlation data, and what */
	int extra_qos;       /* it says: the entries of a rule share one, so it is parsed */
	bool extra_retain;   /* once, not once per publish */
};

struct deliver {
	struct store *store;
	CURLM *multi;
	int sigfd; /* the daemon's signalfd, borrowed */
	volatile int stop;
	_Atomic bool woken; /* the poller added entries */
	struct mtarget *mt;
	size_t nmt;
	struct webhook **wh;
	size_t nwh;
	int64_t *acks; /* MQTT acknowledged ids waiting for the next batch commit */
	size_t nacks, capacks;
	int64_t acks_since; /* monotonic ms of the oldest of them and of the webhooks' */
	bool acks_busy;     /* the last try found the write lock taken */
	bool ack_oom;
	void (*reload_cb)(void *arg);
	void *reload_arg;
	void (*stop_cb)(void *arg);
	void *stop_arg;
	void (*connect_cb)(void *arg, const char *target);
	void *connect_arg;
};

struct deliver *deliver_new(const char *db_path, int sigfd, char *err, size_t errsz)
{
	struct deliver *d = calloc(1, sizeof(*d));

	if (d == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	d->store = store_open(db_path, err, errsz);
	if (d->store == NULL)
		goto fail;
	d->multi = curl_multi_init();
	if (d->multi == NULL) {
		snprintf(err, errsz, "unable to create a curl multi handle");
		goto fail;
	}
	d->sigfd = sigfd;
	return d;
fail:
	deliver_free(d);
	return NULL;
}

void deliver_free(struct deliver *d)
{
	if (d == NULL)
		return;
	for (size_t i = 0; i < d->nmt; i++) {
		mqtt_free(d->mt[i].m);
		free(d->mt[i].target);
		free(d->mt[i].extra);
	}
	free(d->mt);
	for (size_t i = 0; i < d->nwh; i++) {
		if (d->multi)
			webhook_cancel_all(d->wh[i], d->multi);
		webhook_free(d->wh[i]);
	}
	free(d->wh);
	free(d->acks);
	if (d->multi)
		curl_multi_cleanup(d->multi);
	store_close(d->store);
	free(d);
}

struct mqtt *deliver_mqtt(struct deliver *d, const char *target)
{
	for (size_t i = 0; i < d->nmt; i++)
		if (strcmp(d->mt[i].target, target) == 0)
			return d->mt[i].m;
	return NULL;
}

void deliver_set_connect_cb(struct deliver *d, void (*cb)(void *arg, const char *target), void *arg)
{
	d->connect_cb = cb;
	d->connect_arg = arg;
}

/* Deliveries waiting for the commit that deletes their entries: MQTT and webhooks. */
static size_t pending_acks(const struct deliver *d)
{
	size_t n = d->nacks;
	for (size_t i = 0; i < d->nwh; i++)
		n += webhook_settled(d->wh[i]);
	return n;
}

static void on_ack(void *arg, uint64_t token)
{
	struct mtarget *t = arg;
	struct deliver *d = t->d;

	if (d->nacks == d->capacks) {
		size_t cap = d->capacks ? d->capacks * 2 : 1024;
		int64_t *v = realloc(d->acks, cap * sizeof(*v));
		if (v == NULL) {
			/* not recorded: the entry stays and is sent again (a duplicate, not a loss)
			 */
			d->ack_oom = true;
			return;
		}
		d->acks = v;
		d->capacks = cap;
	}
	if (pending_acks(d) == 0)
		d->acks_since = util_mono_ms();
	d->acks[d->nacks++] = (int64_t)token;
	metrics_add(M_DELIVERED, 1);
	tmetrics_add(TM_DELIVERIES, t->target, 1);
}

/* The broker refused the entry (MQTT 5 reason code): sending it again would be refused
 * again, so it becomes a dead letter at once, like a webhook's permanent failure. */
static void on_refused(void *arg, uint64_t token, const char *reason)
{
	struct mtarget *t = arg;
	struct deliver *d = t->d;

	log_warnx("%s: outbox entry %lld is a dead letter: %s", t->target, (long long)token,
	          reason);
	if (store_outbox_to_dlq(d->store, (int64_t)token, 0, reason) < 0)
		log_warnx("%s: unable to record the dead letter: %s", t->target,
		          store_errmsg(d->store));
	metrics_add(M_DEAD, 1);
	tmetrics_add(TM_FAILURES, t->target, 1);
	tmetrics_add(TM_DEAD, t->target, 1);
}

static void on_lost(void *arg, uint64_t token)
{
	struct mtarget *t = arg;
	if (t->resend_from == 0 || (int64_t)token < t->resend_from)
		t->resend_from = (int64_t)token;
}

int deliver_add_mqtt(struct deliver *d, const char *target, const struct mqtt_options *opt)
{
	struct mtarget *v = realloc(d->mt, (d->nmt + 1) * sizeof(*v));
	struct mtarget *t;

	if (v == NULL)
		return -1;
	d->mt = v;
	t = &d->mt[d->nmt];
	memset(t, 0, sizeof(*t));
	t->d = d;
	t->target = strdup(target);
	t->m = mqtt_new(opt);
	if (t->target == NULL || t->m == NULL) {
		free(t->target);
		mqtt_free(t->m);
		return -1;
	}
	d->nmt++;
	tmetrics_register(target, 1);
	return 0;
}

int deliver_add_webhook(struct deliver *d, struct webhook *w)
{
	struct webhook **v = realloc(d->wh, (d->nwh + 1) * sizeof(*v));
	if (v == NULL)
		return -1;
	d->wh = v;
	d->wh[d->nwh++] = w;
	return 0;
}

void deliver_wakeup(struct deliver *d)
{
	atomic_store(&d->woken, true);
	curl_multi_wakeup(d->multi);
}

void deliver_set_reload_cb(struct deliver *d, void (*cb)(void *arg), void *arg)
{
	d->reload_cb = cb;
	d->reload_arg = arg;
}

void deliver_set_stop_cb(struct deliver *d, void (*cb)(void *arg), void *arg)
{
	d->stop_cb = cb;
	d->stop_arg = arg;
}

/* Acknowledgements and webhook deliveries commit together, ACK_FLUSH_MS after the first of
 * them at most (force: now): a crash between a PUBACK or a 2xx and this commit only means
 * the entries are sent again, with the same message and delivery ids. */
static void flush_acks(struct deliver *d, bool force)
{
	size_t n = pending_acks(d);
	int64_t age = util_mono_ms() - d->acks_since;
	int rc;

	d->acks_busy = false;
	if (n == 0)
		return;
	if (!force && n < ACK_FLUSH_COUNT && age < ACK_FLUSH_MS)
		return;
	if (force || n >= ACK_FLUSH_COUNT || age >= ACK_WAIT_MS)
		rc = store_begin(d->store);
	else if ((rc = store_try_begin(d->store)) == 1)
		d->acks_busy = true;
	if (rc != 0)
		goto fail;
	for (size_t i = 0; i < d->nacks; i++) {
		if (store_outbox_ack(d->store, d->acks[i]) < 0) {
			store_rollback(d->store);
			goto fail;
		}
	}
	for (size_t i = 0; i < d->nwh; i++) {
		if (webhook_delete_settled(d->wh[i], d->store) < 0) {
			store_rollback(d->store);
			goto fail;
		}
	}
	if (store_commit(d->store) < 0)
		goto fail;
	d->nacks = 0;
	for (size_t i = 0; i < d->nwh; i++)
		webhook_settled_committed(d->wh[i]);
	return;
fail:
	if (!d->acks_busy)
		log_warnx("outbox: unable to record deliveries, will retry: %s",
		          store_errmsg(d->store));
}

/* qos, retain and, for a command's answer, its correlation data (hex in extra: corr gets
 * the bytes, *corr_len their number, 0 when none). An extra equal to t's last one without
 * correlation data is not parsed again. */
static int entry_qos_retain(struct mtarget *t, const struct store_entry *e, int *qos, bool *retain,
                            unsigned char *corr, size_t corrsz, size_t *corr_len)
{
	json_error_t jerr;
	json_t *x;
	const char *hex;

	*qos = 1;
	*retain = false;
	*corr_len = 0;
	if (e->extra == NULL)
		return 0;
	if (t->extra != NULL && strcmp(t->extra, e->extra) == 0) {
		*qos = t->extra_qos;
		*retain = t->extra_retain;
		return 0;
	}
	x = json_loads(e->extra, 0, &jerr);
	if (x == NULL)
		return -1;
	json_t *q = json_object_get(x, "qos");
	json_t *r = json_object_get(x, "retain");
	if (json_is_integer(q))
		*qos = (int)json_integer_value(q);
	if (json_is_boolean(r))
		*retain = json_is_true(r);
	hex = json_string_value(json_object_get(x, "correlation"));
	for (size_t i = 0; hex != NULL && hex[2 * i] && hex[2 * i + 1] && i < corrsz; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			break;
		corr[i] = (unsigned char)v;
		*corr_len = i + 1;
	}
	if (hex == NULL) {
		/* a failed strdup only means the next one is parsed too */
		free(t->extra);
		t->extra = strdup(e->extra);
		t->extra_qos = *qos;
		t->extra_retain = *retain;
	}
	json_decref(x);
	return 0;
}

/* Hands due entries to one broker, keeping at most MQTT_WINDOW unacknowledged. */
static void pump_mqtt(struct deliver *d, struct mtarget *t, int64_t now)
{
	struct store_entry *v = NULL;
	size_t n = 0, room;

	if (t->resend_from) {
		t->last_id = t->resend_from - 1;
		t->resend_from = 0;
	}
	if (!mqtt_connected(t->m))
		return;
	while ((room = MQTT_WINDOW - mqtt_inflight(t->m)) > 0 && room <= MQTT_WINDOW) {
		if (store_outbox_fetch_after(d->store, t->target, now, t->last_id,
		                             room < FETCH_BATCH ? room : FETCH_BATCH, &v, &n) < 0) {
			log_warnx("outbox: %s: %s", t->target, store_errmsg(d->store));
			return;
		}
		if (n == 0)
			return;
		for (size_t i = 0; i < n; i++) {
			const struct store_entry *e = &v[i];
			unsigned char corr[CORRELATION_MAX];
			size_t corr_len;
			int qos, rc;
			bool retain;

			if (entry_qos_retain(t, e, &qos, &retain, corr, sizeof(corr), &corr_len) <
			        0 ||
			    e->topic_or_url == NULL) {
				store_outbox_to_dlq(d->store, e->id, 0, "bad outbox entry");
				metrics_add(M_DEAD, 1);
				tmetrics_add(TM_DEAD, t->target, 1);
				t->last_id = e->id;
				continue;
			}
			if (corr_len > 0)
				rc = mqtt_publish_reply(t->m, e->topic_or_url, e->payload,
				                        e->payload_len, qos, corr, corr_len,
				                        (uint64_t)e->id);
			else
				rc = mqtt_publish(t->m, e->topic_or_url, e->payload, e->payload_len,
				                  qos, retain, (uint64_t)e->id);
			if (rc < 0) {
				if (errno == EINVAL || errno == EMSGSIZE) {
					/* this entry can never be published: keep it as a dead
					 * letter */
					log_fields(LOG_LEVEL_WARN,
					           (struct log_field[]){{"target", t->target},
					                                {"msg_id", e->msg_id},
					                                {NULL, NULL}},
					           "%s: message '%s' refused: %s", t->target,
					           e->msg_id, mqtt_last_error(t->m));
					store_outbox_to_dlq(d->store, e->id, 0,
					                    mqtt_last_error(t->m));
					metrics_add(M_DEAD, 1);
					tmetrics_add(TM_FAILURES, t->target, 1);
					tmetrics_add(TM_DEAD, t->target, 1);
					t->last_id = e->id;
					continue;
				}
				store_entries_free(v, n);
				return; /* not connected or full: try again next turn */
			}
			log_fields(LOG_LEVEL_DEBUG,
			           (struct log_field[]){{"target", t->target},
			                                {"msg_id", e->msg_id},
			                                {"zone_id", e->zone_id},
			                                {NULL, NULL}},
			           "%s: published %s on %s", t->target, e->msg_id, e->topic_or_url);
			t->last_id = e->id;
		}
		store_entries_free(v, n);
		v = NULL;
	}
}

static void handle_signals(struct deliver *d)
{
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_info("SIGHUP: reloading configuration");
			if (d->reload_cb)
				d->reload_cb(d->reload_arg);
		} else {
			log_info("%s: stopping", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
			d->stop = 1;
			if (d->stop_cb)
				d->stop_cb(d->stop_arg);
		}
	}
}

/* Settles every finished webhook transfer: deliveries wait for flush_acks, retries and
 * dead letters are written at once. */
static void finish_transfers(struct deliver *d)
{
	bool had_acks = pending_acks(d) > 0;
	struct {
		CURL *easy;
		CURLcode result;
	} done[DONE_PER_READ];
	int running = 0, left = 0;
	size_t n;
	CURLMsg *msg;

	curl_multi_perform(d->multi, &running);
	do {
		n = 0;
		while (n < sizeof(done) / sizeof(done[0]) &&
		       (msg = curl_multi_info_read(d->multi, &left)) != NULL) {
			if (msg->msg != CURLMSG_DONE)
				continue;
			done[n].easy = msg->easy_handle;
			done[n++].result = msg->data.result;
		}
		if (n == 0)
			break;
		for (size_t k = 0; k < n; k++) {
			for (size_t i = 0; i < d->nwh; i++) {
				if (webhook_done(d->wh[i], d->store, d->multi, done[k].easy,
				                 done[k].result, util_now_ms()))
					break;
			}
		}
	} while (left > 0);
	if (!had_acks && pending_acks(d) > 0)
		d->acks_since = util_mono_ms();
}

/* Starts what the webhooks can start and sends it at once, before the brokers' work of the
 * turn: a post waits for no publishing. */
static void pump_webhooks(struct deliver *d, bool news, int64_t wall)
{
	if (d->nwh == 0)
		return;
	for (size_t i = 0; i < d->nwh; i++) {
		if (news)
			webhook_mark_dirty(d->wh[i]);
		/* past SETTLED_MAX delivered entries it wants them deleted first */
		if (webhook_pump(d->wh[i], d->store, d->multi, wall)) {
			flush_acks(d, true);
			webhook_pump(d->wh[i], d->store, d->multi, wall);
		}
	}
	/* what finished meanwhile is settled too: a receiver on the same host often answers
	 * within this call, and no socket would wake the loop for it */
	finish_transfers(d);
}

int deliver_run(struct deliver *d)
{
	struct curl_waitfd *fds = calloc(d->nmt + 1, sizeof(*fds));

	if (fds == NULL)
		return -1;
	for (size_t i = 0; i < d->nmt; i++) {
		mqtt_set_ack_cb(d->mt[i].m, on_ack, &d->mt[i]);
		mqtt_set_refused_cb(d->mt[i].m, on_refused, &d->mt[i]);
		mqtt_set_lost_cb(d->mt[i].m, on_lost, &d->mt[i]);
		mqtt_start(d->mt[i].m);
	}
	while (!d->stop) {
		int64_t mono = util_mono_ms(), wall = util_now_ms();
		long timeout = TICK_MS;
		unsigned nfds = 0;
		int numfds = 0;

		/* a broker's lost entries are fetched again: none of them may be one that was
		 * acknowledged and is still in the outbox */
		bool resend = false;
		for (size_t i = 0; i < d->nmt; i++)
			resend |= d->mt[i].resend_from != 0;
		pump_webhooks(d, atomic_exchange(&d->woken, false), wall);
		flush_acks(d, resend);
		for (size_t i = 0; i < d->nmt; i++)
			pump_mqtt(d, &d->mt[i], wall);

		/* after the turn's work: its settlements and commit freed slots and zones, and
		 * a webhook that can start something again wants no wait at all */
		for (size_t i = 0; i < d->nwh; i++) {
			int64_t due = webhook_next_due_ms(d->wh[i], wall);
			if (due >= 0 && due - wall < timeout)
				timeout = due > wall ? (long)(due - wall) : 0;
		}
		if (pending_acks(d) > 0) {
			int64_t left = d->acks_since + ACK_FLUSH_MS - mono;
			if (d->acks_busy && left < ACK_RETRY_MS)
				left = ACK_RETRY_MS;
			if (left < timeout)
				timeout = left > 0 ? (long)left : 0;
		}
		fds[nfds].fd = d->sigfd;
		fds[nfds].events = CURL_WAIT_POLLIN;
		fds[nfds++].revents = 0;
		for (size_t i = 0; i < d->nmt; i++) {
			int fd = mqtt_fd(d->mt[i].m);
			int64_t to = mqtt_next_timeout_ms(d->mt[i].m, mono);
			if (to >= 0 && to < timeout)
				timeout = (long)to;
			if (fd < 0)
				continue;
			fds[nfds].fd = fd;
			fds[nfds].events = CURL_WAIT_POLLIN;
			if (mqtt_want_write(d->mt[i].m))
				fds[nfds].events |= CURL_WAIT_POLLOUT;
			fds[nfds++].revents = 0;
		}
		if (curl_multi_poll(d->multi, fds, nfds, (int)timeout, &numfds) != CURLM_OK) {
			log_warnx("delivery loop: curl_multi_poll failed");
			usleep(POLL_FAIL_PAUSE_US);
		}
		if (fds[0].revents)
			handle_signals(d);
		if (d->nwh > 0)
			finish_transfers(d);
		for (size_t i = 0; i < d->nmt; i++) {
			int fd = mqtt_fd(d->mt[i].m);
			bool r = false, w = false;
			for (unsigned k = 1; k < nfds; k++) {
				if (fds[k].fd == fd && fd >= 0) {
					r = fds[k].revents & (CURL_WAIT_POLLIN | CURL_WAIT_POLLPRI);
					w = fds[k].revents & CURL_WAIT_POLLOUT;
				}
			}
			mqtt_handle(d->mt[i].m, r, w);
			tmetrics_set(TM_CONNECTED, d->mt[i].target, mqtt_connected(d->mt[i].m));
			bool sub = mqtt_subscribed(d->mt[i].m);
			if (sub && !d->mt[i].subscribed && d->connect_cb)
				d->connect_cb(d->connect_arg, d->mt[i].target);
			d->mt[i].subscribed = sub;
		}
	}
	for (size_t i = 0; i < d->nmt; i++)
		mqtt_stop(d->mt[i].m);
	/* webhook requests still running are dropped; their entries stay in the outbox */
	for (size_t i = 0; i < d->nwh; i++)
		webhook_cancel_all(d->wh[i], d->multi);
	flush_acks(d, true);
	free(fds);
	return 0;
}
