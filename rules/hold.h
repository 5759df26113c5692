/* The video wall's pure decisions (no I/O, no clock): whether a switch may take the wall
 * from the hold it is under, when a hold ends, and which perspective `auto` means for a
 * zone. The control module keeps the state and does the switching. */
#ifndef TB_HOLD_H
#define TB_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Who put the wall where it is. */
enum hold_by {
	HOLD_NONE,    /* nobody holds it (the start, or back home) */
	HOLD_RULE,    /* a rule's call-up, for its `hold` */
	HOLD_COMMAND, /* an operator's switch, for control.manual_hold */
};

/* The wall's hold: by whom, until when (Unix ms), and for a call-up the rank of its
 * message's severity in severity_order (higher is more severe). */
struct hold {
	enum hold_by by;
	int rank;
	int64_t until_ms;
};

/* Whether a hold is in force at now_ms. */
bool hold_active(const struct hold *h, int64_t now_ms);

/* Whether a rule's call-up may switch the wall at now_ms, its message's severity at rank
 * (-1: not in severity_order) and top when that severity is the last of severity_order.
 * Without an active hold: yes. Under a call-up's hold: when rank is at least the holding
 * one's. Under an operator's hold: only when top. Operators' commands never ask: they
 * always switch. */
bool hold_callup_allowed(const struct hold *h, int64_t now_ms, int rank, bool top);

/* The hold a successful switch at now_ms starts: a call-up's for hold_ms (HOLD_NONE when
 * hold_ms is 0), an operator's for manual_ms, none for the return home. */
void hold_start(struct hold *h, enum hold_by by, int rank, int64_t now_ms, int64_t for_ms);

/* Whether the wall should go back home at now_ms: a hold was set and has run out. The
 * caller clears it (hold_start(h, HOLD_NONE, ...)) once home, or when there is no home. */
bool hold_ended(const struct hold *h, int64_t now_ms);

/* "rule", "command" or "none". */
const char *hold_by_name(enum hold_by by);

/* A perspective (a live-view preset); strings borrowed from its owner. */
struct hold_perspective {
	const char *id, *name;
	const char *const *zone_ids;
	size_t nzones;
};

/* The perspective spec names: "auto" picks the one whose zone_ids contain zone_id (fewest
 * zones first, then by name, then by id); otherwise spec is an id, or else a name. NULL
 * when none fits. */
const struct hold_perspective *hold_pick(const struct hold_perspective *v, size_t n,
                                         const char *spec, const char *zone_id);

#endif
