/* Per-target metrics: deliveries, failures, dead letters and outbox entries of each target
 * ("mqtt.home", "webhook.slack"), and whether each broker is connected, rendered as
 * Prometheus series with a target label. Safe from any thread. */
#ifndef TB_TMETRICS_H
#define TB_TMETRICS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

enum tmetric {
	TM_DELIVERIES, /* counter: entries acknowledged by the target */
	TM_FAILURES,   /* counter: attempts that failed (a retry or a dead letter follows) */
	TM_DEAD,       /* counter: entries moved to the dead letters */
	TM_OUTBOX,     /* gauge: entries waiting for the target */
	TM_CONNECTED,  /* gauge: 1 while the broker is connected, else 0 (MQTT targets only) */
	TM_COUNT
};

/* Makes target's series appear with 0 before anything happens (so an alert on a rate has a
 * series to read); with broker, its TM_CONNECTED gauge too. */
void tmetrics_register(const char *target, int broker);
void tmetrics_add(enum tmetric m, const char *target, uint64_t n);
void tmetrics_set(enum tmetric m, const char *target, int64_t v);
/* Sets gauge m of the n targets to v[i] and of every other target to 0, in one step: a
 * scrape never sees a half-updated set. */
void tmetrics_set_all(enum tmetric m, const char *const *targets, const int64_t *v, size_t n);
int64_t tmetrics_get(enum tmetric m, const char *target); /* 0 for an unknown target */
/* Every labelled series, appended to b in the Prometheus text format. 0, or -1 (b full). */
int tmetrics_render(struct buf *b);
/* Forgets every target (tests). */
void tmetrics_reset(void);

#endif
