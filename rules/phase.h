/* The phase of a new revision: what the daemon remembers of the last revision of each
 * event or plate read, and whether the next one is a message (new, update, complete) or
 * nothing. Pure: the poller and `explain` call the same code, so explain predicts the daemon. */
#ifndef TB_PHASE_H
#define TB_PHASE_H

#include <stdbool.h>
#include <stdint.h>

#include "rules/normalize.h"

/* An event open this long is no longer followed: it is recorded as complete. */
#define PHASE_OPEN_GIVE_UP_MS (24 * 3600 * 1000LL)

/* What is remembered of the last revision of one source (kept in the state database). */
struct phase_seen {
	char revision[MSG_TIME_MAX];
	char severity[MSG_SHORT_MAX];
	uint64_t flags;
	bool complete;
};

enum phase_verdict {
	PHASE_DELIVER,        /* a message: m->phase is set */
	PHASE_SAME_REVISION,  /* the revision was seen already */
	PHASE_PLATE_REVISION, /* a later revision of a plate read: a plate read is one message */
	PHASE_NO_CHANGE,      /* no change in flags, severity or completion */
};

/* The verdict on revision m against prev, the last revision recorded for its source (NULL:
 * none, then m is new). Sets m->phase when the verdict is PHASE_DELIVER. */
enum phase_verdict phase_decide(struct message *m, const struct phase_seen *prev);

/* What is recorded once m was handled at now_ms: its revision, flags and severity, and
 * complete for a plate read, a complete event, or an event open for PHASE_OPEN_GIVE_UP_MS. */
void phase_record(const struct message *m, int64_t now_ms, struct phase_seen *out);

#endif
