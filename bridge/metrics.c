/* Counters and gauges as atomics, rendered in the Prometheus text format, and the small
 * libmicrohttpd server for /metrics and /healthz. */
#include "bridge/metrics.h"
#include "bridge/tmetrics.h"

#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"

#define METRICS_MAX_CONNECTIONS 64
#define METRICS_MAX_CONNECTIONS_PER_IP 4 /* a scraper and a probe need one each */
#define METRICS_IDLE_TIMEOUT_S 5         /* a connection silent this long is closed */

/* Series of one metric sit next to each other, told apart by their label. */
struct metric_def {
	const char *name, *type, *help;
	const char *label; /* `reason="retained"`, or NULL */
};

#define CMD_REJ(r)                                                                                 \
	{                                                                                          \
		"tether_bridge_commands_rejected_total", "counter",                                \
		    "Control commands rejected, by reason.", "reason=\"" r "\""                    \
	}

static const struct metric_def defs[M_COUNT] = {
    [M_POLL_CYCLES] = {"tether_bridge_poll_cycles_total", "counter", "Poll cycles run.", NULL},
    [M_API_ERRORS] = {"tether_bridge_api_errors_total", "counter",
                      "Tether API requests that failed.", NULL},
    [M_API_RATE_LIMITED] = {"tether_bridge_api_rate_limited_total", "counter",
                            "Tether API answers with HTTP 429.", NULL},
    [M_BAD_RESOURCES] = {"tether_bridge_bad_resources_total", "counter",
                         "Resources skipped because their shape was wrong.", NULL},
    [M_WRONG_ZONE] = {"tether_bridge_wrong_zone_resources_total", "counter",
                      "Resources skipped because their zone_id is not the zone polled.", NULL},
    [M_UNCHANGED] = {"tether_bridge_unchanged_resources_total", "counter",
                     "Resources read again whose revision was handled before and is complete: "
                     "skipped without being normalised.",
                     NULL},
    [M_MESSAGES_EVENT] = {"tether_bridge_event_messages_total", "counter",
                          "Event messages (new, update, complete) produced.", NULL},
    [M_MESSAGES_PLATE] = {"tether_bridge_plate_messages_total", "counter",
                          "Plate messages produced.", NULL},
    [M_UNKNOWN_SEVERITY] = {"tether_bridge_unknown_severity_total", "counter",
                            "Messages whose severity is not in severity_order.", NULL},
    [M_QUEUED] = {"tether_bridge_outbox_queued_total", "counter",
                  "Outbox entries written (one per message and target).", NULL},
    [M_DELIVERED] = {"tether_bridge_delivered_total", "counter",
                     "Outbox entries acknowledged by their target.", NULL},
    [M_RETRIED] = {"tether_bridge_retries_total", "counter",
                   "Webhook deliveries deferred for a retry.", NULL},
    [M_DEAD] = {"tether_bridge_dead_letters_total", "counter",
                "Outbox entries moved to the dead letters.", NULL},
    [M_OUTBOX] = {"tether_bridge_outbox_entries", "gauge", "Outbox entries waiting.", NULL},
    [M_ZONES] = {"tether_bridge_zones", "gauge", "Zones polled.", NULL},
    [M_LAST_POLL_MS] = {"tether_bridge_last_poll_timestamp_seconds", "gauge",
                        "When a poll cycle last reached the API (Unix time).", NULL},
    [M_CMD_ACCEPTED] = {"tether_bridge_commands_accepted_total", "counter",
                        "Control commands accepted.", NULL},
    [M_CMD_REJ_RETAINED] = CMD_REJ("retained"),
    [M_CMD_REJ_TOO_LARGE] = CMD_REJ("too_large"),
    [M_CMD_REJ_UNKNOWN_COMMAND] = CMD_REJ("unknown_command"),
    [M_CMD_REJ_MALFORMED] = CMD_REJ("malformed"),
    [M_CMD_REJ_UNKNOWN_PERSPECTIVE] = CMD_REJ("unknown_perspective"),
    [M_CMD_REJ_UNKNOWN_MODE] = CMD_REJ("unknown_mode"),
    [M_SWITCHES] = {"tether_bridge_switches_total", "counter",
                    "Video wall switches (live_switch_preset) that succeeded.", NULL},
    [M_SWITCH_FAILURES] = {"tether_bridge_switch_failures_total", "counter",
                           "Video wall switches (live_switch_preset) that failed.", NULL},
    [M_CALLUPS_DROPPED] = {"tether_bridge_callups_dropped_total", "counter",
                           "Call-ups kept off the wall by a hold.", NULL},
};

static _Atomic int64_t values[M_COUNT];

void metrics_add(enum metric m, uint64_t n)
{
	atomic_fetch_add(&values[m], (int64_t)n);
}

void metrics_set(enum metric m, int64_t v)
{
	atomic_store(&values[m], v);
}

int64_t metrics_get(enum metric m)
{
	return atomic_load(&values[m]);
}

int metrics_render(struct buf *b)
{
	for (int i = 0; i < M_COUNT; i++) {
		int64_t v = metrics_get((enum metric)i);
		bool first = i == 0 || strcmp(defs[i - 1].name, defs[i].name) != 0;
		if (first && buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", defs[i].name,
		                        defs[i].help, defs[i].name, defs[i].type) < 0)
			return -1;
		if (defs[i].label != NULL) {
			if (buf_printf(b, "%s{%s} %lld\n", defs[i].name, defs[i].label,
			               (long long)v) < 0)
				return -1;
		} else if (i == M_LAST_POLL_MS) {
			if (buf_printf(b, "%s %.3f\n", defs[i].name, (double)v / 1000.0) < 0)
				return -1;
		} else if (buf_printf(b, "%s %lld\n", defs[i].name, (long long)v) < 0) {
			return -1;
		}
	}
	return tmetrics_render(b);
}

struct metrics_server {
	struct MHD_Daemon *d;
	int64_t stale_ms;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                             char *text)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result rc;

	if (r == NULL) {
		free(text);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", ctype);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **ctx)
{
	struct metrics_server *s = cls;
	(void)version;
	(void)data;
	(void)size;
	(void)ctx;

	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, 405, "text/plain", strdup("method not allowed\n"));
	if (strcmp(url, "/metrics") == 0) {
		struct buf b;
		buf_init(&b, 1 << 20);
		if (metrics_render(&b) < 0) {
			buf_release(&b);
			return reply(c, 500, "text/plain", strdup("out of memory\n"));
		}
		return reply(c, 200, "text/plain; version=0.0.4", buf_steal(&b));
	}
	if (strcmp(url, "/healthz") == 0) {
		int64_t last = metrics_get(M_LAST_POLL_MS), age = util_now_ms() - last;
		char *text = NULL;
		if (last > 0 && age <= s->stale_ms)
			return reply(c, 200, "text/plain", strdup("ok\n"));
		if (last == 0)
			text = strdup("starting: no poll has reached the API yet\n");
		else if (asprintf(&text, "stale: the last poll reached the API %llds ago\n",
		                  (long long)(age / 1000)) < 0)
			text = NULL;
		return reply(c, 503, "text/plain", text ? text : strdup("stale\n"));
	}
	return reply(c, 404, "text/plain", strdup("not found: try /metrics or /healthz\n"));
}

/* Splits "HOST:PORT" or "[IPV6]:PORT" into host and port. 0, or -1. */
static int split_listen(const char *listen, char *host, size_t hostsz, char *port, size_t portsz)
{
	const char *p, *colon;
	size_t hl;
	char *end;
	long n;

	if (listen[0] == '[') {
		if ((p = strchr(listen, ']')) == NULL || p[1] != ':')
			return -1;
		listen++;
		hl = (size_t)(p - listen);
		colon = p + 1;
	} else {
		if ((colon = strrchr(listen, ':')) == NULL)
			return -1;
		hl = (size_t)(colon - listen);
		if (memchr(listen, ':', hl) != NULL) /* a bare IPv6 address needs brackets */
			return -1;
	}
	if (hl == 0 || hl >= hostsz || strlen(colon + 1) >= portsz)
		return -1;
	n = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || n < 1 || n > 65535)
		return -1;
	memcpy(host, listen, hl);
	host[hl] = '\0';
	snprintf(port, portsz, "%ld", n);
	return 0;
}

/* libmicrohttpd's own messages ("Server reached connection limit. Closing inbound
 * connection.") go to our log at warn rather than raw to stderr, one line per
 * MHD_LOG_EVERY_MS at most with a count of the ones left out: a client opening connections
 * in a loop must not flood the log. Called from the server's thread. */
#define MHD_LOG_EVERY_MS 60000
static void mhd_log(void *arg, const char *fmt, va_list ap)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static int64_t last_ms;
	static unsigned long skipped;
	char text[256];
	int64_t now = util_mono_ms();
	size_t n;

	(void)arg;
	pthread_mutex_lock(&mu);
	if (last_ms != 0 && now - last_ms < MHD_LOG_EVERY_MS) {
		skipped++;
		pthread_mutex_unlock(&mu);
		return;
	}
	vsnprintf(text, sizeof(text), fmt, ap);
	n = strlen(text);
	while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
		text[--n] = '\0';
	if (skipped > 0)
		log_warnx("metrics: libmicrohttpd: %s (and %lu more messages in the last %ds)",
		          text, skipped, MHD_LOG_EVERY_MS / 1000);
	else
		log_warnx("metrics: libmicrohttpd: %s", text);
	skipped = 0;
	last_ms = now;
	pthread_mutex_unlock(&mu);
}

struct metrics_server *metrics_start(const char *listen, int64_t stale_ms, char *err, size_t errsz)
{
	struct metrics_server *s;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai;
	char host[256], port[8];
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	int gai;

	if (split_listen(listen, host, sizeof(host), port, sizeof(port)) < 0) {
		snprintf(err, errsz, "metrics: listen needs HOST:PORT or [IPV6]:PORT, not '%s'",
		         listen);
		return NULL;
	}
	/* a name binds the first address it resolves to (getaddrinfo's preferred order) */
	if ((gai = getaddrinfo(host, port, &hints, &ai)) != 0) {
		snprintf(err, errsz, "metrics: unable to resolve '%s': %s", host,
		         gai_strerror(gai));
		return NULL;
	}
	if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) {
		snprintf(err, errsz, "metrics: '%s' is neither IPv4 nor IPv6", host);
		freeaddrinfo(ai);
		return NULL;
	}
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(err, errsz, "out of memory");
		freeaddrinfo(ai);
		return NULL;
	}
	s->stale_ms = stale_ms;
	/* One address cannot hold every connection (a slowloris would starve /healthz for the
	 * probes of other addresses), and a connection that sends nothing is dropped. */
	s->d =
	    MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
	                     NULL, MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_CONNECTION_TIMEOUT,
	                     (unsigned)METRICS_IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
	                     (unsigned)METRICS_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	                     (unsigned)METRICS_MAX_CONNECTIONS_PER_IP, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (s->d == NULL) {
		snprintf(err, errsz, "metrics: unable to listen on %s", listen);
		free(s);
		return NULL;
	}
	return s;
}

void metrics_stop(struct metrics_server *s)
{
	if (s == NULL)
		return;
	MHD_stop_daemon(s->d);
	free(s);
}
