/* Splitting a poll window in time when its answer is too big. The API has no pagination,
 * so a window holding more than poll.max_window_events resources (or more bytes than that
 * many may take) is asked again in smaller pieces, oldest first, and the piece size adapts
 * to the density seen. The state is in memory only: after a restart the window is asked
 * from its cursor again, which is safe (dedup) and only costs requests. */
#ifndef TB_SPLIT_H
#define TB_SPLIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPLIT_MIN_MS 1000          /* a window is not split below a second */
#define SPLIT_BYTES_PER_EVENT 4096 /* body cap per allowed resource (~1.5 KB is typical) */

/* One zone and kind. All zero: no split, no learnt span. */
struct win_split {
	int64_t from, to; /* the window being split ([from, to) left to ask), to 0 if none */
	int64_t span;     /* the piece size learnt, 0 when none is needed */
	bool backfill;    /* of the window split, kept for all its pieces */
};

/* Narrows the window [*from, *to) the cursor gives to the next piece to ask (and starts a
 * split when the learnt span is smaller than the window). Returns true when committing
 * this piece may move the cursor to *to (no split, or the last piece). */
bool split_apply(struct win_split *s, int64_t *from, int64_t *to, bool *backfill);

/* The answer for the piece [from, to) was too big: the next piece is half of it. 0, or -1
 * when it is already under SPLIT_MIN_MS (the caller treats the answer as a failure). */
int split_narrow(struct win_split *s, int64_t from, int64_t to, bool backfill);

/* The piece [from, to) was committed with n resources, max allowed: the split moves on,
 * the span grows again where the zone is sparse (n < max / 2) and shrinks to half the piece
 * where it held more than max (the next windows are asked smaller). */
void split_done(struct win_split *s, int64_t from, int64_t to, size_t n, size_t max);

/* The body cap for a window of at most max_events resources; 0 (no cap) when max is 0. */
size_t split_body_cap(int max_events);

#endif
