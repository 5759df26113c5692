/* Window splitting (see split.h): a few pure functions over struct win_split, so the
 * poller's cycle only asks and commits the pieces they give. */
#include "bridge/split.h"

bool split_apply(struct win_split *s, int64_t *from, int64_t *to, bool *backfill)
{
	if (s->to == 0) {
		if (s->span == 0 || *to - *from <= s->span)
			return true;
		/* a window wider than the span learnt: ask it in pieces from the start */
		s->from = *from;
		s->to = *to;
		s->backfill = *backfill;
	}
	*from = s->from;
	*to = s->span > 0 && s->to - s->from > s->span ? s->from + s->span : s->to;
	*backfill = s->backfill;
	return *to >= s->to;
}

int split_narrow(struct win_split *s, int64_t from, int64_t to, bool backfill)
{
	int64_t half = (to - from) / 2;

	if (half < SPLIT_MIN_MS)
		return -1;
	if (s->to == 0) {
		s->to = to;
		s->backfill = backfill;
	}
	s->from = from;
	s->span = half;
	return 0;
}

void split_done(struct win_split *s, int64_t from, int64_t to, size_t n, size_t max)
{
	bool sparse = max == 0 || n < max / 2;

	if (max > 0 && n > max && (to - from) / 2 >= SPLIT_MIN_MS) {
		s->span = (to - from) / 2;
		sparse = false;
	}
	if (s->to != 0) {
		s->from = to;
		if (s->from >= s->to)
			s->to = 0; /* the last piece: the cursor moved with it */
		if (sparse && s->span > 0)
			s->span *= 2;
	} else if (sparse) {
		s->span = 0; /* a whole window fits again */
	}
}

size_t split_body_cap(int max_events)
{
	return max_events > 0 ? (size_t)max_events * SPLIT_BYTES_PER_EVENT : 0;
}
