/* MQTT publisher over libmosquitto, driven by the caller's poll loop: non-blocking connect,
 * reconnect with jittered backoff, the availability topic (last will `offline`, retained
 * `online`), and a caller's token handed back on ack, refusal or loss for every message. */
#include "bridge/mqtt.h"

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>

#include "config/config.h"
#include "lib/log.h"
#include "lib/retry.h"
#include "lib/util.h"

/*
 * Sessions are clean, and each connection attempt gets a fresh libmosquitto client. The
 * durable copy of every message is the caller's outbox: when a connection drops, every
 * unacknowledged token is reported lost and the caller publishes it again, in outbox order.
 * A persistent session (or reusing the client, which resends its own queue on reconnect)
 * would keep a second copy of the same state in the broker and in libmosquitto, and send
 * each lost message twice more. Subscriptions are made again on every connection; a message
 * published to them while the bridge was away is missed, which suits what they carry
 * (commands: one sent to a bridge that is down is better refused by silence than run late).
 *
 * MQTT 5 by default, for one reason: its PUBACK and PUBREC carry a reason code, so a publish
 * the broker refuses (ACL, quota, payload format) is told apart from a delivered one. With
 * clean start and no session expiry, an MQTT 5 session lives exactly as long as a 3.1.1
 * clean session. The only other MQTT 5 features used are a received message's response topic
 * and correlation data, and correlation data on a reply.
 */

enum mqtt_state {
	MQTT_IDLE,       /* not started, or stopped */
	MQTT_CONNECTING, /* socket open, waiting for CONNACK */
	MQTT_UP,         /* CONNACK accepted */
	MQTT_WAITING,    /* between attempts: deadline_ms is the next one */
};

struct pending {
	uint64_t token;
	int mid;
	bool acked;
};

/* A message the broker has answered, waiting for its callback: reason is the MQTT 5 reason
 * code of its acknowledgement (0 under 3.1.1 and for QoS 0). */
struct settled {
	uint64_t token;
	int reason;
};

/* A topic filter subscribed on every connection; mid is its SUBSCRIBE's on this one, or -1
 * once the SUBACK came (or before the connection). */
struct sub_filter {
	char *filter;
	int mid;
};

struct mqtt {
	char *name, *host, *username, *password, *client_id, *status_topic;
	char *ca_file, *cert_file, *key_file;
	int port, keepalive;
	bool tls, insecure, v5;
	unsigned max_inflight;

	struct mosquitto *mosq;
	enum mqtt_state state;
	bool dropped;        /* the connection ended inside a libmosquitto call */
	int64_t deadline_ms; /* CONNECTING: give up; WAITING: try again */
	int64_t backoff_ms;
	uint64_t rng;

	/* Messages handed to libmosquitto in publish order (a ring; q_cap a power of two);
	 * acked entries leave from the head, so acks that come in order cost O(1). */
	struct pending *q;
	size_t q_head, q_len, q_cap;
	size_t inflight; /* entries not acked */

	/* libmosquitto writes QoS 0 messages (and reports them sent) inside mosquitto_publish;
	 * those acks wait here for mqtt_handle, so callbacks never run inside mqtt_publish. */
	struct settled *deferred;
	size_t n_deferred, cap_deferred;
	bool in_publish;
	const int *publish_mid;
	bool publish_acked;
	int publish_reason;

	int online_mid;  /* this connection's `online`, or -1 */
	int offline_mid; /* the clean stop's `offline`, or -1 */
	bool offline_acked;

	void (*ack_cb)(void *arg, uint64_t token);
	void *ack_arg;
	void (*refused_cb)(void *arg, uint64_t token, const char *reason);
	void *refused_arg;
	void (*lost_cb)(void *arg, uint64_t token);
	void *lost_arg;
	void (*message_cb)(void *arg, const struct mqtt_message *msg);
	void *message_arg;

	struct sub_filter *subs;
	size_t n_subs;

	char reason[256]; /* why the current attempt or connection ended */
	char logged[256]; /* the last failure logged at warn level, so retries do not repeat it */
	char liblog[256]; /* libmosquitto's last error log line (TLS details) */
	char err[256];
};

/* MQTT 5 CONNACK reason code (mqtt_protocol.h is not included: its MQTT_MAX_PAYLOAD is not
 * ours) */
#define RC_UNSUPPORTED_PROTOCOL_VERSION 0x84
/* MQTT 5 property identifiers (the same header's MQTT_PROP_*) */
#define PROP_RESPONSE_TOPIC 8
#define PROP_CORRELATION_DATA 9
#define SUBSCRIBE_QOS 1
#define SUB_OPT_RETAIN_AS_PUBLISHED 0x08 /* MQTT 5 subscription option */

static int lib_refs;

/* snprintf that may cut: every text here is a bounded message, and a cut one is fine. */
__attribute__((format(printf, 3, 4))) static void textf(char *out, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, n, fmt, ap);
	va_end(ap);
}

int mqtt_lib_init(void)
{
	if (lib_refs++ > 0)
		return 0;
	if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS) {
		lib_refs = 0;
		log_warnx("mqtt: cannot initialise libmosquitto");
		return -1;
	}
	return 0;
}

void mqtt_lib_cleanup(void)
{
	if (lib_refs > 0 && --lib_refs == 0)
		mosquitto_lib_cleanup();
}

/* libmosquitto's texts are capitalised sentences ("Connection Refused: not authorised.");
 * the log wants "not authorised". */
static void tidy_text(const char *s, char *out, size_t n)
{
	const char *colon = strstr(s, ": ");
	size_t len;

	if (strncmp(s, "Connection Refused", 18) == 0 && colon != NULL)
		s = colon + 2;
	textf(out, n, "%s", s);
	len = strlen(out);
	while (len > 0 && (out[len - 1] == '.' || out[len - 1] == '\n'))
		out[--len] = '\0';
	if (len > 1 && isupper((unsigned char)out[0]) && !isupper((unsigned char)out[1]))
		out[0] = (char)tolower((unsigned char)out[0]);
}

static void mosq_text(struct mqtt *m, int rc, int saved_errno, char *out, size_t n)
{
	char tmp[200];

	if (rc == MOSQ_ERR_ERRNO)
		tidy_text(strerror(saved_errno), tmp, sizeof(tmp));
	else if (rc == MOSQ_ERR_CONN_LOST)
		textf(tmp, sizeof(tmp), "closed by the broker or the network");
	else if (rc == MOSQ_ERR_KEEPALIVE)
		textf(tmp, sizeof(tmp), "no answer from the broker within the keepalive");
	else
		tidy_text(mosquitto_strerror(rc), tmp, sizeof(tmp));
	if (rc == MOSQ_ERR_TLS && m->liblog[0] != '\0')
		textf(out, n, "%s: %s", tmp, m->liblog);
	else
		textf(out, n, "%s", tmp);
}

/* Text for an MQTT 5 reason code: "not authorized". */
static void reason_text(int code, char *out, size_t n)
{
	tidy_text(mosquitto_reason_string(code), out, n);
}

bool mqtt_refused(int reason_code, char *why, size_t n)
{
	char text[120];

	if (reason_code < 0x80)
		return false;
	reason_text(reason_code, text, sizeof(text));
	textf(why, n, "refused by the broker: %s (0x%02x)", text, (unsigned)reason_code);
	return true;
}

int mqtt_url_parse(const char *url, char *host, size_t hostlen, int *port, bool *tls)
{
	const char *p, *end;
	size_t len;
	char *num_end;
	long v;

	if (hostlen > 0)
		host[0] = '\0';
	if (url == NULL || hostlen == 0)
		return -1;
	if (strncmp(url, "mqtt://", 7) == 0) {
		*tls = false;
		*port = MQTT_DEFAULT_PORT;
		p = url + 7;
	} else if (strncmp(url, "mqtts://", 8) == 0) {
		*tls = true;
		*port = MQTT_DEFAULT_TLS_PORT;
		p = url + 8;
	} else {
		return -1;
	}
	if (*p == '[') {
		end = strchr(p, ']');
		if (end == NULL)
			return -1;
		p++;
		len = (size_t)(end - p);
		end++;
	} else {
		end = p + strcspn(p, ":/");
		len = (size_t)(end - p);
	}
	if (len == 0 || len >= hostlen)
		return -1;
	memcpy(host, p, len);
	host[len] = '\0';
	if (*end == ':') {
		errno = 0;
		v = strtol(end + 1, &num_end, 10);
		if (errno != 0 || num_end == end + 1 || v < 1 || v > 65535)
			goto bad;
		*port = (int)v;
		end = num_end;
	}
	if (*end == '/')
		end++;
	if (*end != '\0')
		goto bad;
	return 0;
bad:
	host[0] = '\0';
	return -1;
}

/* Ring of pending messages. */

static struct pending *q_at(struct mqtt *m, size_t i)
{
	return &m->q[(m->q_head + i) & (m->q_cap - 1)];
}

/* Makes room for one more entry, so the push after a successful publish cannot fail. */
static int q_reserve(struct mqtt *m)
{
	struct pending *nq;
	size_t ncap;

	if (m->q_len < m->q_cap)
		return 0;
	ncap = m->q_cap ? m->q_cap * 2 : 64;
	nq = malloc(ncap * sizeof(*nq));
	if (nq == NULL)
		return -1;
	for (size_t i = 0; i < m->q_len; i++)
		nq[i] = *q_at(m, i);
	free(m->q);
	m->q = nq;
	m->q_cap = ncap;
	m->q_head = 0;
	return 0;
}

static void q_push(struct mqtt *m, uint64_t token, int mid)
{
	*q_at(m, m->q_len) = (struct pending){.token = token, .mid = mid};
	m->q_len++;
	m->inflight++;
}

/* Marks the entry with this mid acked. true and *token when it was one of ours. */
static bool q_ack(struct mqtt *m, int mid, uint64_t *token)
{
	struct pending *p;

	for (size_t i = 0; i < m->q_len; i++) {
		p = q_at(m, i);
		if (p->acked || p->mid != mid)
			continue;
		p->acked = true;
		*token = p->token;
		m->inflight--;
		while (m->q_len > 0 && q_at(m, 0)->acked) {
			m->q_head = (m->q_head + 1) & (m->q_cap - 1);
			m->q_len--;
		}
		return true;
	}
	return false;
}

/* Hands an answered message to the ack or the refused callback. */
static void settle(struct mqtt *m, uint64_t token, int reason)
{
	char why[200];

	if (mqtt_refused(reason, why, sizeof(why))) {
		log_debug("mqtt '%s': message %llu %s", m->name, (unsigned long long)token, why);
		if (m->refused_cb != NULL)
			m->refused_cb(m->refused_arg, token, why);
	} else if (m->ack_cb != NULL) {
		m->ack_cb(m->ack_arg, token);
	}
}

static void defer_settle(struct mqtt *m, uint64_t token, int reason)
{
	struct settled *nd;
	size_t ncap;

	if (m->n_deferred == m->cap_deferred) {
		ncap = m->cap_deferred ? m->cap_deferred * 2 : 16;
		nd = realloc(m->deferred, ncap * sizeof(*nd));
		if (nd == NULL) {
			/* Out of memory: an early callback beats a lost answer. */
			settle(m, token, reason);
			return;
		}
		m->deferred = nd;
		m->cap_deferred = ncap;
	}
	m->deferred[m->n_deferred++] = (struct settled){.token = token, .reason = reason};
}

static void deliver_settle(struct mqtt *m, uint64_t token, int reason)
{
	if (m->in_publish)
		defer_settle(m, token, reason);
	else
		settle(m, token, reason);
}

/* The callbacks may publish, so the list is taken out first. */
static void flush_deferred(struct mqtt *m)
{
	struct settled *list = m->deferred;
	size_t n = m->n_deferred;

	if (n == 0)
		return;
	m->deferred = NULL;
	m->n_deferred = m->cap_deferred = 0;
	for (size_t i = 0; i < n; i++)
		settle(m, list[i].token, list[i].reason);
	free(list);
}

/* Reports every unacked token lost, in publish order; the ring is taken out first since
 * the callback may call back into this module. */
static void lose_all(struct mqtt *m)
{
	struct pending *q = m->q;
	size_t head = m->q_head, len = m->q_len, cap = m->q_cap;

	m->q = NULL;
	m->q_head = m->q_len = m->q_cap = 0;
	m->inflight = 0;
	for (size_t i = 0; i < len; i++) {
		struct pending *p = &q[(head + i) & (cap - 1)];
		if (!p->acked && m->lost_cb != NULL)
			m->lost_cb(m->lost_arg, p->token);
	}
	free(q);
}

/* libmosquitto callbacks: they only record; mqtt_handle acts once the library call returns
 * (a client cannot be destroyed from inside its own callback). */

/* Sends the SUBSCRIBE for one filter on the current connection; a failure is logged and
 * left to the next connection (the filter was checked when it was added). */
static void subscribe_one(struct mqtt *m, struct sub_filter *f)
{
	char text[200];
	int rc;

	f->mid = -1;
	if (m->mosq == NULL)
		return;
	/* under MQTT 5 a message published with retain keeps the flag when it is forwarded
	 * live too, so the caller can refuse a retained command the moment it is sent */
	rc = mosquitto_subscribe_v5(m->mosq, &f->mid, f->filter, SUBSCRIBE_QOS,
	                            m->v5 ? SUB_OPT_RETAIN_AS_PUBLISHED : 0, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		f->mid = -1;
		mosq_text(m, rc, errno, text, sizeof(text));
		log_warnx("mqtt '%s': unable to subscribe to '%s': %s", m->name, f->filter, text);
	}
}

/* A SUBACK: one granted QoS per filter, 0x80 and up a refusal (an ACL). */
static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *granted)
{
	struct mqtt *m = obj;

	(void)mosq;
	for (size_t i = 0; i < m->n_subs; i++) {
		if (m->subs[i].mid != mid)
			continue;
		m->subs[i].mid = -1;
		if (n > 0 && granted[0] >= 0x80)
			log_warnx("mqtt '%s': subscription to '%s' refused by the broker (0x%02x)",
			          m->name, m->subs[i].filter, (unsigned)granted[0]);
		else
			log_debug("mqtt '%s': subscribed to '%s'", m->name, m->subs[i].filter);
	}
}

/* A message on a subscription: handed to the caller with its MQTT 5 properties read. */
static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
	struct mqtt *m = obj;
	struct mqtt_message out = {0};
	char *response_topic = NULL;
	void *corr = NULL;
	uint16_t corr_len = 0;

	(void)mosq;
	if (m->message_cb == NULL || msg == NULL || msg->topic == NULL)
		return;
	if (props != NULL) {
		mosquitto_property_read_string(props, PROP_RESPONSE_TOPIC, &response_topic, false);
		mosquitto_property_read_binary(props, PROP_CORRELATION_DATA, &corr, &corr_len,
		                               false);
	}
	out.topic = msg->topic;
	out.payload = msg->payload != NULL ? msg->payload : "";
	out.len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
	out.retain = msg->retain;
	out.response_topic = response_topic;
	out.correlation = corr;
	out.correlation_len = corr != NULL ? corr_len : 0;
	m->message_cb(m->message_arg, &out);
	free(response_topic);
	free(corr);
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct mqtt *m = obj;
	char text[200];
	int prc;

	if (rc != 0) {
		/* MQTT 5 CONNACKs carry reason codes, 3.1.1 ones the older return codes */
		if (m->v5)
			reason_text(rc, text, sizeof(text));
		else
			tidy_text(mosquitto_connack_string(rc), text, sizeof(text));
		textf(m->reason, sizeof(m->reason), "connection refused: %s%s", text,
		      m->v5 && rc == RC_UNSUPPORTED_PROTOCOL_VERSION
		          ? " (a broker without MQTT 5 needs protocol: 3.1.1)"
		          : "");
		m->dropped = true;
		return;
	}
	m->state = MQTT_UP;
	m->backoff_ms = 0;
	m->logged[0] = '\0';
	m->err[0] = '\0';
	log_info("mqtt '%s': connected to %s:%d", m->name, m->host, m->port);
	prc = mosquitto_publish(mosq, &m->online_mid, m->status_topic, 6, "online", 1, true);
	if (prc != MOSQ_ERR_SUCCESS) {
		mosq_text(m, prc, errno, text, sizeof(text));
		log_warnx("mqtt '%s': cannot publish 'online' to '%s': %s", m->name,
		          m->status_topic, text);
	}
	for (size_t i = 0; i < m->n_subs; i++)
		subscribe_one(m, &m->subs[i]);
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
	struct mqtt *m = obj;
	int saved = errno;

	(void)mosq;
	if (m->reason[0] == '\0') {
		char text[120];

		if (rc == 0) {
			textf(m->reason, sizeof(m->reason), "disconnected");
		} else if (m->v5 && rc >= 0x80) {
			/* an MQTT 5 DISCONNECT from the broker: its reason code, not a MOSQ_ERR */
			reason_text(rc, text, sizeof(text));
			textf(m->reason, sizeof(m->reason), "disconnected by the broker: %s", text);
		} else {
			mosq_text(m, rc, saved, m->reason, sizeof(m->reason));
		}
	}
	m->dropped = true;
}

/* Every answered publish, with the reason code of its PUBACK / PUBREC / PUBCOMP (0 under
 * 3.1.1); libmosquitto has already forgotten the message, refused or not. */
static void on_publish(struct mosquitto *mosq, void *obj, int mid, int reason,
                       const mosquitto_property *props)
{
	struct mqtt *m = obj;
	uint64_t token;
	char why[200];

	(void)mosq;
	(void)props;
	if (mid == m->online_mid || mid == m->offline_mid) {
		if (mqtt_refused(reason, why, sizeof(why)))
			log_warnx("mqtt '%s': '%s' to '%s' %s", m->name,
			          mid == m->online_mid ? "online" : "offline", m->status_topic,
			          why);
		if (mid == m->online_mid)
			m->online_mid = -1;
		else
			m->offline_acked = true;
		return;
	}
	if (m->in_publish && m->publish_mid != NULL && mid == *m->publish_mid) {
		m->publish_acked = true;
		m->publish_reason = reason;
		return;
	}
	if (q_ack(m, mid, &token))
		deliver_settle(m, token, reason);
}

static void on_log(struct mosquitto *mosq, void *obj, int level, const char *str)
{
	struct mqtt *m = obj;

	(void)mosq;
	if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
		tidy_text(str, m->liblog, sizeof(m->liblog));
	if (log_enabled(LOG_LEVEL_DEBUG))
		log_debug("mqtt '%s': libmosquitto: %s", m->name, str);
}

/* A configured client, not connected; NULL with the reason in err. */
static struct mosquitto *make_client(struct mqtt *m, char *err, size_t errlen)
{
	struct mosquitto *mosq;
	const char *what;
	char text[200];
	int rc;

	errno = 0;
	mosq = mosquitto_new(m->client_id, true, m);
	if (mosq == NULL) {
		textf(err, errlen, "cannot create client: %s",
		      errno == EINVAL ? "invalid client_id" : strerror(errno ? errno : ENOMEM));
		return NULL;
	}
	what = "protocol version";
	rc = mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION,
	                          m->v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	what = "last will";
	rc = mosquitto_will_set(mosq, m->status_topic, 7, "offline", 1, true);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	if (m->username != NULL) {
		what = "username";
		rc = mosquitto_username_pw_set(mosq, m->username, m->password);
		if (rc != MOSQ_ERR_SUCCESS)
			goto fail;
	}
	what = "max_inflight";
	rc = mosquitto_max_inflight_messages_set(mosq, m->max_inflight);
	if (rc != MOSQ_ERR_SUCCESS)
		goto fail;
	if (m->tls) {
		what = "tls files";
		if (m->ca_file != NULL) {
			rc = mosquitto_tls_set(mosq, m->ca_file, NULL, m->cert_file, m->key_file,
			                       NULL);
		} else {
			mosquitto_int_option(mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
			rc = mosquitto_tls_set(mosq, NULL, "/etc/ssl/certs", m->cert_file,
			                       m->key_file, NULL);
		}
		if (rc != MOSQ_ERR_SUCCESS)
			goto fail;
		what = "insecure";
		rc = mosquitto_tls_insecure_set(mosq, m->insecure);
		if (rc != MOSQ_ERR_SUCCESS)
			goto fail;
	}
	mosquitto_connect_callback_set(mosq, on_connect);
	mosquitto_disconnect_callback_set(mosq, on_disconnect);
	mosquitto_publish_v5_callback_set(mosq, on_publish);
	mosquitto_subscribe_callback_set(mosq, on_subscribe);
	mosquitto_message_v5_callback_set(mosq, on_message);
	mosquitto_log_callback_set(mosq, on_log);
	return mosq;
fail:
	mosq_text(m, rc, errno, text, sizeof(text));
	textf(err, errlen, "cannot set %s: %s", what, text);
	mosquitto_destroy(mosq);
	return NULL;
}

static char *dup_or_null(const char *s, bool *ok)
{
	char *d;

	if (s == NULL || s[0] == '\0')
		return NULL;
	d = strdup(s);
	if (d == NULL)
		*ok = false;
	return d;
}

static int check_file(const struct mqtt *m, const char *key, const char *path)
{
	if (path == NULL || access(path, R_OK) == 0)
		return 0;
	log_warn("mqtt '%s': cannot read %s '%s'", m->name, key, path);
	return -1;
}

struct mqtt *mqtt_new(const struct mqtt_options *opt)
{
	struct mqtt *m;
	struct mosquitto *probe;
	char host[256], err[300];
	const char *prefix;
	bool ok = true;

	if (opt == NULL || opt->name == NULL || opt->url == NULL) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		log_warn("mqtt '%s'", opt->name);
		return NULL;
	}
	m->online_mid = m->offline_mid = -1;
	m->v5 = !opt->mqtt311;
	m->name = strdup(opt->name);
	if (m->name == NULL)
		goto oom;
	if (strchr(opt->url, '@') != NULL) {
		/* Not echoed: it may hold a password. */
		log_warnx("mqtt '%s': invalid url: credentials go in username and password",
		          m->name);
		goto fail;
	}
	if (mqtt_url_parse(opt->url, host, sizeof(host), &m->port, &m->tls) < 0) {
		log_warnx("mqtt '%s': invalid url '%s' (expected mqtt://host[:port] or "
		          "mqtts://host[:port])",
		          m->name, opt->url);
		goto fail;
	}
	prefix = opt->topic_prefix != NULL && opt->topic_prefix[0] != '\0' ? opt->topic_prefix
	                                                                   : CFG_MQTT_TOPIC_PREFIX;
	m->host = strdup(host);
	m->username = dup_or_null(opt->username, &ok);
	m->password = dup_or_null(opt->password, &ok); /* "" (an unset ${VAR:-}) is none */
	m->client_id = dup_or_null(opt->client_id, &ok);
	m->ca_file = dup_or_null(opt->ca_file, &ok);
	m->cert_file = dup_or_null(opt->cert_file, &ok);
	m->key_file = dup_or_null(opt->key_file, &ok);
	if (asprintf(&m->status_topic, "%s/bridge/status", prefix) < 0)
		m->status_topic = NULL;
	if (!ok || m->host == NULL || m->status_topic == NULL)
		goto oom;
	m->keepalive = opt->keepalive > 0 ? opt->keepalive : MQTT_KEEPALIVE_DEFAULT;
	if (m->keepalive < MQTT_KEEPALIVE_MIN || m->keepalive > 65535) {
		log_warnx("mqtt '%s': keepalive %ds out of range (%ds to 65535s)", m->name,
		          m->keepalive, MQTT_KEEPALIVE_MIN);
		goto fail;
	}
	m->max_inflight = opt->max_inflight > 0 ? opt->max_inflight : MQTT_MAX_INFLIGHT_DEFAULT;
	m->insecure = opt->insecure;
	m->rng = (uint64_t)util_mono_ms() * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)m;
	if (m->rng == 0)
		m->rng = 1;
	if (mosquitto_pub_topic_check(m->status_topic) != MOSQ_ERR_SUCCESS) {
		log_warnx("mqtt '%s': invalid topic_prefix '%s'", m->name, prefix);
		goto fail;
	}
	if (m->password != NULL && m->username == NULL) {
		log_warnx("mqtt '%s': password given without username", m->name);
		goto fail;
	}
	if ((m->cert_file == NULL) != (m->key_file == NULL)) {
		log_warnx("mqtt '%s': cert_file and key_file go together", m->name);
		goto fail;
	}
	if (m->tls && (check_file(m, "ca_file", m->ca_file) < 0 ||
	               check_file(m, "cert_file", m->cert_file) < 0 ||
	               check_file(m, "key_file", m->key_file) < 0))
		goto fail;
	/* Settle configuration errors now rather than on every reconnect. */
	probe = make_client(m, err, sizeof(err));
	if (probe == NULL) {
		log_warnx("mqtt '%s': %s", m->name, err);
		goto fail;
	}
	mosquitto_destroy(probe);
	return m;
oom:
	log_warnx("mqtt '%s': out of memory", opt->name);
fail:
	mqtt_free(m);
	return NULL;
}

static void drop_client(struct mqtt *m)
{
	if (m->mosq != NULL) {
		mosquitto_destroy(m->mosq);
		m->mosq = NULL;
	}
	m->dropped = false;
	m->online_mid = m->offline_mid = -1;
	for (size_t i = 0; i < m->n_subs; i++)
		m->subs[i].mid = -1;
}

void mqtt_free(struct mqtt *m)
{
	if (m == NULL)
		return;
	drop_client(m);
	free(m->q);
	free(m->deferred);
	for (size_t i = 0; i < m->n_subs; i++)
		free(m->subs[i].filter);
	free(m->subs);
	free(m->name);
	free(m->host);
	free(m->username);
	util_free_secret(m->password);
	free(m->client_id);
	free(m->status_topic);
	free(m->ca_file);
	free(m->cert_file);
	free(m->key_file);
	util_memzero(m, sizeof(*m));
	free(m);
}

void mqtt_set_ack_cb(struct mqtt *m, void (*cb)(void *arg, uint64_t token), void *arg)
{
	m->ack_cb = cb;
	m->ack_arg = arg;
}

void mqtt_set_refused_cb(struct mqtt *m, void (*cb)(void *arg, uint64_t token, const char *reason),
                         void *arg)
{
	m->refused_cb = cb;
	m->refused_arg = arg;
}

void mqtt_set_lost_cb(struct mqtt *m, void (*cb)(void *arg, uint64_t token), void *arg)
{
	m->lost_cb = cb;
	m->lost_arg = arg;
}

void mqtt_set_message_cb(struct mqtt *m, void (*cb)(void *arg, const struct mqtt_message *msg),
                         void *arg)
{
	m->message_cb = cb;
	m->message_arg = arg;
}

int mqtt_subscribe(struct mqtt *m, const char *filter)
{
	struct sub_filter *ns;
	char *copy;

	if (filter == NULL || filter[0] == '\0' ||
	    mosquitto_sub_topic_check(filter) != MOSQ_ERR_SUCCESS ||
	    mosquitto_validate_utf8(filter, (int)strlen(filter)) != MOSQ_ERR_SUCCESS) {
		textf(m->err, sizeof(m->err), "invalid topic filter '%s'",
		      filter ? filter : "(null)");
		errno = EINVAL;
		return -1;
	}
	for (size_t i = 0; i < m->n_subs; i++)
		if (strcmp(m->subs[i].filter, filter) == 0)
			return 0;
	copy = strdup(filter);
	if (copy == NULL)
		goto out_of_memory;
	ns = realloc(m->subs, (m->n_subs + 1) * sizeof(*ns));
	if (ns == NULL)
		goto out_free_copy;
	m->subs = ns;
	m->subs[m->n_subs] = (struct sub_filter){.filter = copy, .mid = -1};
	m->n_subs++;
	if (mqtt_connected(m))
		subscribe_one(m, &m->subs[m->n_subs - 1]);
	return 0;
out_free_copy:
	free(copy);
out_of_memory:
	textf(m->err, sizeof(m->err), "out of memory");
	errno = ENOMEM;
	return -1;
}

int mqtt_unsubscribe(struct mqtt *m, const char *filter)
{
	char text[200];
	int rc;

	for (size_t i = 0; i < m->n_subs; i++) {
		if (strcmp(m->subs[i].filter, filter) != 0)
			continue;
		if (mqtt_connected(m)) {
			rc = mosquitto_unsubscribe(m->mosq, NULL, filter);
			if (rc != MOSQ_ERR_SUCCESS) {
				/* gone at the next connection anyway: it is not made again */
				mosq_text(m, rc, errno, text, sizeof(text));
				log_warnx("mqtt '%s': unable to unsubscribe from '%s': %s", m->name,
				          filter, text);
			}
		}
		free(m->subs[i].filter);
		memmove(&m->subs[i], &m->subs[i + 1], (m->n_subs - i - 1) * sizeof(*m->subs));
		m->n_subs--;
		return 0;
	}
	return 0;
}

bool mqtt_subscribed(const struct mqtt *m)
{
	if (!mqtt_connected(m))
		return false;
	for (size_t i = 0; i < m->n_subs; i++)
		if (m->subs[i].mid != -1)
			return false;
	return true;
}

/* The connection attempt or connection has ended: log the state change, hand back the
 * unacked tokens and schedule the next attempt. */
static void connection_ended(struct mqtt *m)
{
	const char *reason = m->reason[0] != '\0' ? m->reason : "connection lost";
	bool was_up = m->state == MQTT_UP;
	int64_t delay;

	drop_client(m);
	/* the step grows after each failure; jitter spreads bridges restarted together */
	m->backoff_ms = retry_backoff_next(m->backoff_ms, MQTT_BACKOFF_MIN_MS, MQTT_BACKOFF_MAX_MS);
	delay = retry_jitter_ms(m->backoff_ms, &m->rng);
	m->state = MQTT_WAITING;
	m->deadline_ms = util_mono_ms() + delay;
	if (was_up) {
		log_warnx("mqtt '%s': connection to %s:%d lost: %s, reconnecting", m->name, m->host,
		          m->port, reason);
		textf(m->logged, sizeof(m->logged), "%s", reason);
	} else if (strcmp(reason, m->logged) != 0) {
		log_warnx("mqtt '%s': cannot connect to %s:%d: %s, retrying with backoff", m->name,
		          m->host, m->port, reason);
		textf(m->logged, sizeof(m->logged), "%s", reason);
	} else {
		log_debug("mqtt '%s': cannot connect to %s:%d: %s, retrying in %lldms", m->name,
		          m->host, m->port, reason, (long long)delay);
	}
	textf(m->err, sizeof(m->err), "%s", reason);
	m->reason[0] = '\0';
	m->liblog[0] = '\0';
	flush_deferred(m);
	lose_all(m);
}

static void attempt(struct mqtt *m)
{
	int rc;

	m->reason[0] = '\0';
	m->liblog[0] = '\0';
	m->state = MQTT_CONNECTING;
	m->mosq = make_client(m, m->reason, sizeof(m->reason));
	if (m->mosq == NULL)
		goto failed;
	errno = 0;
	rc = mosquitto_connect_async(m->mosq, m->host, m->port, m->keepalive);
	if (rc != MOSQ_ERR_SUCCESS) {
		if (rc == MOSQ_ERR_EAI)
			textf(m->reason, sizeof(m->reason), "cannot resolve '%s'", m->host);
		else
			mosq_text(m, rc, errno, m->reason, sizeof(m->reason));
		goto failed;
	}
	m->deadline_ms = util_mono_ms() + MQTT_CONNECT_TIMEOUT_MS;
	return;
failed:
	connection_ended(m);
}

int mqtt_start(struct mqtt *m)
{
	if (m->state != MQTT_IDLE)
		return -1;
	m->backoff_ms = 0;
	m->logged[0] = '\0';
	attempt(m);
	return 0;
}

int mqtt_fd(const struct mqtt *m)
{
	return m->mosq != NULL ? mosquitto_socket(m->mosq) : -1;
}

bool mqtt_want_write(const struct mqtt *m)
{
	return m->mosq != NULL && mosquitto_want_write(m->mosq);
}

/* libmosquitto counts keepalive in whole seconds; a second between housekeeping calls keeps
 * pings on time without waking more than that. */
#define HOUSEKEEPING_MS 1000

int64_t mqtt_next_timeout_ms(const struct mqtt *m, int64_t now_ms)
{
	int64_t left;

	if (m->n_deferred > 0 || m->dropped)
		return 0;
	switch (m->state) {
	case MQTT_IDLE:
		return -1;
	case MQTT_WAITING:
		return m->deadline_ms > now_ms ? m->deadline_ms - now_ms : 0;
	case MQTT_CONNECTING:
		left = m->deadline_ms > now_ms ? m->deadline_ms - now_ms : 0;
		return left < HOUSEKEEPING_MS ? left : HOUSEKEEPING_MS;
	case MQTT_UP:
		return HOUSEKEEPING_MS;
	}
	return -1;
}

/* One turn of libmosquitto's loop; sets m->dropped when the connection ended. */
static void run_client(struct mqtt *m, bool readable, bool writable)
{
	int rc, saved;

	if (readable && !m->dropped) {
		errno = 0;
		rc = mosquitto_loop_read(m->mosq, 1);
		saved = errno;
		if (rc != MOSQ_ERR_SUCCESS && !m->dropped) {
			mosq_text(m, rc, saved, m->reason, sizeof(m->reason));
			m->dropped = true;
		}
	}
	if (writable && !m->dropped && mosquitto_want_write(m->mosq)) {
		errno = 0;
		rc = mosquitto_loop_write(m->mosq, 1);
		saved = errno;
		if (rc != MOSQ_ERR_SUCCESS && !m->dropped) {
			mosq_text(m, rc, saved, m->reason, sizeof(m->reason));
			m->dropped = true;
		}
	}
	if (!m->dropped) {
		rc = mosquitto_loop_misc(m->mosq);
		if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN && !m->dropped) {
			mosq_text(m, rc, 0, m->reason, sizeof(m->reason));
			m->dropped = true;
		}
	}
	if (!m->dropped && m->state == MQTT_CONNECTING && util_mono_ms() >= m->deadline_ms) {
		textf(m->reason, sizeof(m->reason), "no CONNACK within %ds",
		      MQTT_CONNECT_TIMEOUT_MS / 1000);
		m->dropped = true;
	}
}

void mqtt_handle(struct mqtt *m, bool readable, bool writable)
{
	flush_deferred(m);
	if (m->dropped) {
		connection_ended(m);
		return;
	}
	if (m->state == MQTT_WAITING && util_mono_ms() >= m->deadline_ms) {
		attempt(m);
		return;
	}
	if (m->mosq == NULL)
		return;
	run_client(m, readable, writable);
	if (m->dropped)
		connection_ended(m);
}

void mqtt_stop(struct mqtt *m)
{
	int64_t end;
	int rc, fd;
	struct pollfd pfd;

	flush_deferred(m);
	if (m->state == MQTT_UP && !m->dropped) {
		m->offline_acked = false;
		rc = mosquitto_publish(m->mosq, &m->offline_mid, m->status_topic, 7, "offline", 1,
		                       true);
		if (rc != MOSQ_ERR_SUCCESS)
			m->dropped = true;
		end = util_mono_ms() + MQTT_STOP_WAIT_MS;
		while (!m->dropped && !m->offline_acked && util_mono_ms() < end) {
			fd = mosquitto_socket(m->mosq);
			if (fd < 0)
				break;
			pfd = (struct pollfd){.fd = fd, .events = POLLIN};
			if (mosquitto_want_write(m->mosq))
				pfd.events |= POLLOUT;
			rc = poll(&pfd, 1,
			          (int)(end - util_mono_ms() > 0 ? end - util_mono_ms() : 0));
			if (rc < 0 && errno != EINTR)
				break;
			run_client(m, rc > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR)),
			           rc > 0 && (pfd.revents & POLLOUT));
		}
		if (!m->offline_acked)
			log_warnx("mqtt '%s': 'offline' not acknowledged before disconnecting",
			          m->name);
		if (!m->dropped) {
			/* DISCONNECT is written at once when the socket takes it. */
			mosquitto_disconnect(m->mosq);
			if (mosquitto_want_write(m->mosq))
				mosquitto_loop_write(m->mosq, 1);
		}
		log_info("mqtt '%s': disconnected from %s:%d", m->name, m->host, m->port);
	}
	drop_client(m);
	m->state = MQTT_IDLE;
	m->reason[0] = '\0';
	flush_deferred(m);
	lose_all(m);
}

/* mqtt_publish and mqtt_publish_reply: corr_len bytes of correlation data go with the message
 * under MQTT 5 when corr is not NULL. */
static int publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                   bool retain, const void *corr, size_t corr_len, uint64_t token)
{
	mosquitto_property *props = NULL;
	int rc, mid = 0, saved;
	char text[200];

	if (m->state != MQTT_UP || m->dropped || m->mosq == NULL) {
		textf(m->err, sizeof(m->err), "not connected");
		errno = ENOTCONN;
		return -1;
	}
	if (topic == NULL || mosquitto_pub_topic_check(topic) != MOSQ_ERR_SUCCESS ||
	    mosquitto_validate_utf8(topic, (int)strlen(topic)) != MOSQ_ERR_SUCCESS) {
		textf(m->err, sizeof(m->err), "invalid topic '%s'", topic ? topic : "(null)");
		errno = EINVAL;
		return -1;
	}
	if (qos < 0 || qos > 2) {
		textf(m->err, sizeof(m->err), "invalid qos %d", qos);
		errno = EINVAL;
		return -1;
	}
	if (len > MQTT_MAX_PAYLOAD || len + strlen(topic) > MQTT_MAX_PAYLOAD) {
		textf(m->err, sizeof(m->err), "payload of %zu bytes too large", len);
		errno = EMSGSIZE;
		return -1;
	}
	if (m->q_len >= MQTT_MAX_TRACKED) {
		textf(m->err, sizeof(m->err), "%zu messages already in flight", m->q_len);
		errno = ENOBUFS;
		return -1;
	}
	if (corr != NULL && corr_len > UINT16_MAX) {
		textf(m->err, sizeof(m->err), "correlation data of %zu bytes too large", corr_len);
		errno = EMSGSIZE;
		return -1;
	}
	if (q_reserve(m) < 0) {
		textf(m->err, sizeof(m->err), "out of memory");
		errno = ENOMEM;
		return -1;
	}
	if (m->v5 && corr != NULL &&
	    mosquitto_property_add_binary(&props, PROP_CORRELATION_DATA, corr,
	                                  (uint16_t)corr_len) != MOSQ_ERR_SUCCESS) {
		textf(m->err, sizeof(m->err), "out of memory");
		errno = ENOMEM;
		return -1;
	}
	m->in_publish = true;
	m->publish_mid = &mid;
	m->publish_acked = false;
	m->publish_reason = 0;
	errno = 0;
	rc = mosquitto_publish_v5(m->mosq, &mid, topic, (int)len, payload, qos, retain, props);
	saved = errno;
	mosquitto_property_free_all(&props);
	m->in_publish = false;
	m->publish_mid = NULL;
	if (rc != MOSQ_ERR_SUCCESS) {
		mosq_text(m, rc, saved, text, sizeof(text));
		textf(m->err, sizeof(m->err), "cannot publish to '%s': %s", topic, text);
		if (rc == MOSQ_ERR_NOMEM) {
			errno = ENOMEM;
		} else if (rc == MOSQ_ERR_PAYLOAD_SIZE || rc == MOSQ_ERR_OVERSIZE_PACKET) {
			errno = EMSGSIZE;
		} else if (rc == MOSQ_ERR_INVAL || rc == MOSQ_ERR_MALFORMED_UTF8 ||
		           rc == MOSQ_ERR_QOS_NOT_SUPPORTED) {
			/* the last: an MQTT 5 broker's CONNACK said its maximum QoS is lower */
			errno = EINVAL;
		} else {
			/* The connection is gone (or broken): treat it as a drop, and since the
			 * client is destroyed before anything else runs, this message is never
			 * sent behind the caller's back. */
			if (m->reason[0] == '\0')
				textf(m->reason, sizeof(m->reason), "%s", text);
			m->dropped = true;
			errno = rc == MOSQ_ERR_NO_CONN || rc == MOSQ_ERR_CONN_LOST ? ENOTCONN : EIO;
		}
		return -1;
	}
	if (m->publish_acked)
		defer_settle(m, token, m->publish_reason);
	else
		q_push(m, token, mid);
	return 0;
}

int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                 bool retain, uint64_t token)
{
	return publish(m, topic, payload, len, qos, retain, NULL, 0, token);
}

int mqtt_publish_reply(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                       const void *corr, size_t corr_len, uint64_t token)
{
	return publish(m, topic, payload, len, qos, false, corr, corr_len, token);
}

bool mqtt_connected(const struct mqtt *m)
{
	return m->state == MQTT_UP && !m->dropped;
}

size_t mqtt_inflight(const struct mqtt *m)
{
	return m->inflight;
}

const char *mqtt_last_error(const struct mqtt *m)
{
	return m->err;
}
