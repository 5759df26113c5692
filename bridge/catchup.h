/* Catch-up after downtime, made visible and safe: per zone, from its first backfill window
 * to the first that is not, the events found and those held back for their age
 * (poll.catchup_max_age), with progress lines at info and one summary line per zone. The
 * poller calls it; it keeps no database state (a restart starts the count again). */
#ifndef TB_CATCHUP_H
#define TB_CATCHUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct catchup_zone;

/* Zero-initialise; catchup_release frees. */
struct catchup {
	struct catchup_zone *v;
	size_t n;
	int64_t found, held; /* counted since the last catchup_step or catchup_drop */
};

/* Counts one message a poll found, to deliver (phase says so). backfill: found by a
 * catch-up window. Returns false when it is held back: backfill and older than max_age_ms
 * at now (0: no limit). A held message is still recorded by the caller (dedup record,
 * cursor), only not delivered. */
bool catchup_take(struct catchup *c, bool backfill, int64_t occurred_ms, int64_t now,
                  int64_t max_age_ms);

/* After one zone's poll was committed: to is where its windows now end (the earliest of
 * events and plates), backfill whether they were catch-up windows. Logs the start of a
 * catch-up, its progress (windows left, events so far, an estimate of the time left; at
 * most every CATCHUP_LOG_EVERY_MS), and its end with what was held back. Attributes the
 * counts since the last call to the zone. Allocation failures only lose the log lines. */
#define CATCHUP_LOG_EVERY_MS 10000
void catchup_step(struct catchup *c, const char *zone_id, const char *zone_name, bool backfill,
                  int64_t to, int64_t now, int64_t window_ms, int64_t max_age_ms);
/* Forgets the counts since the last step: that poll was rolled back and will be done again. */
void catchup_drop(struct catchup *c);
void catchup_release(struct catchup *c);

/* "45s", "2m 30s", "5m", "12h 5m", "1h": rounded to seconds, hours shown with minutes;
 * exported for tests. */
void catchup_fmt_ms(int64_t ms, char *out, size_t outsz);

#endif
