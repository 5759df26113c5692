/* The poller: a thread that discovers zones, fetches events and plate reads in windows
 * that overlap by `lookback`, turns new revisions into messages with their phase, runs the
 * rules, and commits the resulting outbox entries together with the zone's cursor. */
#ifndef TB_POLLER_H
#define TB_POLLER_H

#include <stddef.h>

#include "config/config.h"
#include "rules/rules.h"

struct poller;

/* Takes ownership of cfg and rules. wake(arg) is called after each commit that added
 * outbox entries. NULL with err on failure (state database, API client). */
struct poller *poller_new(struct config *cfg, struct rules *rules, void (*wake)(void *arg),
                          void *arg, char *err, size_t errsz);
int poller_start(struct poller *p); /* starts its threads (the poller, its fetch thread); 0/-1 */
/* Asks the thread to stop and joins it, waiting at most ms; -1 if the thread is still in an API
 * request (then do not free the poller: leave it to the process exit). */
int poller_stop_timed(struct poller *p, int64_t ms);
/* Thread-safe: asks the thread to stop after its current step, without waiting. */
void poller_request_stop(struct poller *p);
/* cb(arg) is called from the poller thread when a watchlist file changed on disk; it is
 * expected to build a new config and call poller_swap. */
void poller_set_reload_cb(struct poller *p, void (*cb)(void *arg), void *arg);
void poller_free(struct poller *p); /* after poller_stop */

/* Thread-safe: Home Assistant asked (its birth message, the refresh button): refresh the
 * zones now and, with resend, publish every discovery config again. */
void poller_ha_request(struct poller *p, bool resend);
/* Thread-safe: the control plane read these perspectives (names copied): Home Assistant's
 * live-view select offers them from the next sync, which comes at once (without a zone
 * read) when the zones are known. */
void poller_ha_perspectives(struct poller *p, const char *const *names, size_t n);

/* Thread-safe: the next cycle uses cfg and rules (ownership taken); the old ones are freed
 * by the poller. Cooldown and visit state carry over (keyed by rule name). */
void poller_swap(struct poller *p, struct config *cfg, struct rules *rules);

/* The pure parts of a cycle (no I/O, no clock; exported for tests as well). */

/* One request's window of one zone and kind: [from, to), and whether what it finds is backfill. */
struct poller_window {
	int64_t from, to;
	bool backfill;
};
/* The window after cursor (the end of the last window done; now when there is none yet):
 * [cursor - lookback, min(now, cursor + catchup_window)). After downtime (cursor more than
 * lookback and POLLER_BACKFILL_INTERVALS intervals behind) windows are bounded and what
 * they find is backfill. */
#define POLLER_BACKFILL_INTERVALS 3
void poller_window(const struct config *cfg, int64_t cursor, int64_t now,
                   struct poller_window *out);
/* Zones asked per API batch: about POLLER_REQS_PER_ZONE requests each keep `concurrency`
 * busy; at least 1. */
#define POLLER_REQS_PER_ZONE 3
size_t poller_zones_per_batch(int concurrency);

#endif
