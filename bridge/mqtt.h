/* MQTT client: one struct mqtt per configured broker, driven by the caller's event loop
 * (no thread), with reconnect backoff, the availability topic, per-message acks and
 * subscriptions. What to publish, in which order, and what to resend after a drop is the
 * caller's (the outbox). */
#ifndef TB_MQTT_H
#define TB_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sessions are clean and nothing is kept across connections: when one drops, every
 * unacknowledged message is handed back through the lost callback and the caller (whose
 * outbox holds the durable copy) publishes it again. A persistent session would only keep a
 * second copy of that state in the broker and resend it behind the caller's back.
 * Callbacks may call mqtt_publish, never mqtt_stop or mqtt_free.
 *
 * MQTT 5 is spoken unless the options ask for 3.1.1: only MQTT 5 acknowledgements carry a
 * reason code, so only then can a broker say it refused a publish (an ACL denial, a quota).
 * Under 3.1.1 mosquitto acknowledges a denied QoS 1/2 publish like a delivered one, and the
 * refusal cannot be seen here. */

/* Filled by the caller from the config; mqtt_new copies every string. */
struct mqtt_options {
	const char *name;         /* for logs: "mqtt 'home': ..."; required */
	const char *url;          /* mqtt://host[:1883] or mqtts://host[:8883]; required */
	const char *username;     /* NULL: none */
	const char *password;     /* secret: never logged, zeroed before free */
	const char *client_id;    /* NULL: the broker picks one */
	int keepalive;            /* seconds, 5 to 65535; 0: 30 */
	const char *topic_prefix; /* availability at <prefix>/bridge/status; NULL: "tether" */
	const char *ca_file;      /* mqtts: NULL uses the system's CAs */
	const char *cert_file;    /* mqtts client certificate, with key_file */
	const char *key_file;
	bool insecure;         /* mqtts: do not check the broker's host name */
	unsigned max_inflight; /* QoS 1/2 messages unacknowledged on the wire; 0: 100 */
	bool mqtt311;          /* speak MQTT 3.1.1 (refusals look delivered), not MQTT 5 */
};

#define MQTT_DEFAULT_PORT 1883
#define MQTT_DEFAULT_TLS_PORT 8883
#define MQTT_KEEPALIVE_DEFAULT 30
#define MQTT_KEEPALIVE_MIN 5 /* libmosquitto refuses less */
#define MQTT_MAX_INFLIGHT_DEFAULT 100
#define MQTT_MAX_TRACKED 60000      /* unacknowledged messages per broker before ENOBUFS */
#define MQTT_MAX_PAYLOAD 268435000u /* MQTT's remaining-length limit, less the header */
#define MQTT_STOP_WAIT_MS 2000      /* mqtt_stop waits this long for `offline` to be acked */
#define MQTT_CONNECT_TIMEOUT_MS 10000
#define MQTT_BACKOFF_MIN_MS 1000
#define MQTT_BACKOFF_MAX_MS 60000

/* Once per process, before any mqtt_new / after the last mqtt_free. 0, or -1. */
int mqtt_lib_init(void);
void mqtt_lib_cleanup(void);

/* Splits an mqtt:// or mqtts:// URL ("[::1]" IPv6 form too) into host, port (default 1883 or
 * 8883) and tls. 0, or -1 when the URL is not one (host left empty). */
int mqtt_url_parse(const char *url, char *host, size_t hostlen, int *port, bool *tls);

/* Checks the options (URL, TLS files) and returns a new idle publisher, or NULL with the
 * reason logged. Caller frees with mqtt_free. Nothing is sent before mqtt_start. */
struct mqtt *mqtt_new(const struct mqtt_options *opt);
/* Drops the connection without the clean `offline` (call mqtt_stop first for that); no
 * callbacks are called. NULL is fine. */
void mqtt_free(struct mqtt *m);

/* cb(arg, token) when a message is delivered: QoS 0 once written to the socket, QoS 1 on
 * PUBACK, QoS 2 on PUBCOMP. Called from mqtt_handle (or mqtt_stop), never from mqtt_publish. */
void mqtt_set_ack_cb(struct mqtt *m, void (*cb)(void *arg, uint64_t token), void *arg);
/* cb(arg, token, reason) when the broker refuses a message: its PUBACK (QoS 1) or PUBREC
 * (QoS 2) carries an MQTT 5 reason code of 0x80 or more. Sending it again would be refused
 * again: the caller keeps it aside (a dead letter). reason is mqtt_refused's text, borrowed
 * for the call. Called like the ack callback; without one, refusals are dropped. */
void mqtt_set_refused_cb(struct mqtt *m, void (*cb)(void *arg, uint64_t token, const char *reason),
                         void *arg);
/* cb(arg, token) for every message not acknowledged when the connection drops or mqtt_stop
 * ends it, in publish order: the caller keeps it and publishes it again after a reconnect
 * (at least once: the broker may have had it). Each token gets exactly one ack, one refused
 * or one lost. */
void mqtt_set_lost_cb(struct mqtt *m, void (*cb)(void *arg, uint64_t token), void *arg);

/* A message received on a subscription; every pointer is borrowed for the callback. */
struct mqtt_message {
	const char *topic;
	const void *payload; /* not NUL-terminated; never NULL ("" when empty) */
	size_t len;
	bool retain; /* published retained: a replay, or (MQTT 5 only) a retained publish
	                forwarded live; under 3.1.1 only replays carry it */
	const char *response_topic; /* MQTT 5 only; NULL when none */
	const void *correlation;    /* MQTT 5 correlation data; NULL when none */
	size_t correlation_len;
};

/* cb(arg, msg) for every message received on a subscription, from mqtt_handle. The callback
 * may publish (mqtt_publish, mqtt_publish_reply), never mqtt_stop or mqtt_free. */
void mqtt_set_message_cb(struct mqtt *m, void (*cb)(void *arg, const struct mqtt_message *msg),
                         void *arg);
/* Adds a topic filter ("+" and "#" allowed), subscribed with QoS 1 now when connected and
 * again on every connection after a drop (sessions are clean: what is published while the
 * connection is down is missed). Adding a filter twice is one subscription. 0, or -1 with
 * errno EINVAL (invalid filter) or ENOMEM. */
int mqtt_subscribe(struct mqtt *m, const char *filter);
/* Removes a filter mqtt_subscribe added: unsubscribed now when connected (a failure is
 * logged), and not made again on later connections. Messages the broker sent before it
 * took the UNSUBSCRIBE may still reach the callback. A filter not subscribed is fine.
 * Always 0. */
int mqtt_unsubscribe(struct mqtt *m, const char *filter);
/* Connected, and the broker has answered every subscription's SUBSCRIBE on this connection
 * (granted or refused: a refusal is logged). */
bool mqtt_subscribed(const struct mqtt *m);

/* Whether an MQTT 5 PUBACK / PUBREC reason code refuses the message (0x80 and up; 0x10 "no
 * matching subscribers" is a success). When it does, why gets "refused by the broker: not
 * authorized (0x87)" (libmosquitto's text for the code). */
bool mqtt_refused(int reason_code, char *why, size_t n);

/* Begins a non-blocking connect (the host name lookup itself blocks: use addresses or a
 * local resolver); failures are retried with backoff from mqtt_handle. 0, or -1 if running. */
int mqtt_start(struct mqtt *m);
/* Publishes `offline` (retained, QoS 1), drives the connection itself until the broker has
 * acked it (at most MQTT_STOP_WAIT_MS), then disconnects cleanly. Unacked tokens get the
 * lost callback. mqtt_start may be called again afterwards. */
void mqtt_stop(struct mqtt *m);

/* Event loop hooks. The descriptor changes across reconnects: ask again on each turn.
 * mqtt_fd: the socket, or -1 (then only the timeout matters). Poll for reading always and
 * for writing when mqtt_want_write. now_ms is util_mono_ms(); the timeout is -1 (none) or
 * the milliseconds until mqtt_handle must be called even without I/O (0: right away). */
int mqtt_fd(const struct mqtt *m);
bool mqtt_want_write(const struct mqtt *m);
int64_t mqtt_next_timeout_ms(const struct mqtt *m, int64_t now_ms);
void mqtt_handle(struct mqtt *m, bool readable, bool writable);

/* Hands a message to the connection; token comes back through the ack or lost callback.
 * Order is kept on one connection. 0, or -1 with errno: ENOTCONN (not connected), EINVAL
 * (bad topic or qos), EMSGSIZE (payload too large), ENOBUFS (MQTT_MAX_TRACKED reached),
 * ENOMEM, EIO; mqtt_last_error then says why. topic and payload are copied. */
int mqtt_publish(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                 bool retain, uint64_t token);

/* mqtt_publish of an answer to a request (not retained): under MQTT 5, corr_len bytes of
 * correlation data (the request's, corr not NULL) go with it; under 3.1.1 they cannot and the
 * message goes without. Same returns as mqtt_publish, and EMSGSIZE for correlation data over
 * 65,535 bytes. */
int mqtt_publish_reply(struct mqtt *m, const char *topic, const void *payload, size_t len, int qos,
                       const void *corr, size_t corr_len, uint64_t token);

bool mqtt_connected(const struct mqtt *m);
size_t mqtt_inflight(const struct mqtt *m); /* published, neither acked nor lost yet */
/* The last publish or connection error ("connection refused: not authorized"), or "".
 * Borrowed; valid until the next call on m. */
const char *mqtt_last_error(const struct mqtt *m);

#endif
