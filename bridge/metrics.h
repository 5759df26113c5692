/* Process-wide counters and gauges, and the optional HTTP endpoint that serves them
 * (libmicrohttpd): GET /metrics in the Prometheus text format and GET /healthz. Counters
 * are atomics, so the poller and the delivery thread update them without locks. */
#ifndef TB_METRICS_H
#define TB_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

enum metric {
	M_POLL_CYCLES,      /* counter: poll cycles run */
	M_API_ERRORS,       /* counter: API requests that failed (any class) */
	M_API_RATE_LIMITED, /* counter: 429 answers */
	M_BAD_RESOURCES,    /* counter: resources the normaliser rejected */
	M_WRONG_ZONE,       /* counter: resources skipped for a zone_id not the polled zone */
	M_UNCHANGED,        /* counter: complete revisions read again, skipped unread */
	M_MESSAGES_EVENT,   /* counter: event messages (new, update, complete) */
	M_MESSAGES_PLATE,   /* counter: plate messages */
	M_UNKNOWN_SEVERITY, /* counter: messages whose severity is outside severity_order */
	M_QUEUED,           /* counter: outbox entries written */
	M_DELIVERED,        /* counter: entries acknowledged by their target */
	M_RETRIED,          /* counter: webhook deliveries deferred for a retry */
	M_DEAD,             /* counter: entries moved to the dead letters */
	M_OUTBOX,           /* gauge: entries waiting */
	M_ZONES,            /* gauge: zones polled */
	M_LAST_POLL_MS,     /* gauge: wall ms of the last cycle that reached the API */
	/* control plane: commands by outcome (one series per rejection reason) and switches */
	M_CMD_ACCEPTED,
	M_CMD_REJ_RETAINED,
	M_CMD_REJ_TOO_LARGE,
	M_CMD_REJ_UNKNOWN_COMMAND,
	M_CMD_REJ_MALFORMED,
	M_CMD_REJ_UNKNOWN_PERSPECTIVE,
	M_CMD_REJ_UNKNOWN_MODE,
	M_SWITCHES,        /* counter: live_switch_preset calls that succeeded */
	M_SWITCH_FAILURES, /* counter: live_switch_preset calls that failed */
	M_CALLUPS_DROPPED, /* counter: call-ups a hold kept off the wall */
	M_COUNT
};

void metrics_add(enum metric m, uint64_t n);
void metrics_set(enum metric m, int64_t v);
int64_t metrics_get(enum metric m);

/* The Prometheus text exposition of every metric, appended to b. 0, or -1 (b full). */
int metrics_render(struct buf *b);

struct metrics_server;
/* Listens on listen: "HOST:PORT" (HOST an IPv4 address or a name, which binds the first
 * address it resolves to) or "[IPV6]:PORT". At most 4 connections per client address, 64
 * in all; one silent for 5 s is closed. /healthz answers 200 while a poll cycle reached the
 * API within stale_ms, else 503. NULL + err. */
struct metrics_server *metrics_start(const char *listen, int64_t stale_ms, char *err, size_t errsz);
void metrics_stop(struct metrics_server *s); /* NULL is fine */

#endif
