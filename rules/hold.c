/* The video wall's hold and priority rules and the choice of `auto`'s perspective, as pure
 * functions over a struct hold and a list of perspectives. */
#include "rules/hold.h"

#include <string.h>

bool hold_active(const struct hold *h, int64_t now_ms)
{
	return h->by != HOLD_NONE && now_ms < h->until_ms;
}

bool hold_callup_allowed(const struct hold *h, int64_t now_ms, int rank, bool top)
{
	if (!hold_active(h, now_ms))
		return true;
	if (h->by == HOLD_COMMAND)
		return top;
	return rank >= h->rank;
}

void hold_start(struct hold *h, enum hold_by by, int rank, int64_t now_ms, int64_t for_ms)
{
	if (by == HOLD_NONE || for_ms <= 0) {
		*h = (struct hold){.by = HOLD_NONE, .rank = -1};
		return;
	}
	*h = (struct hold){.by = by, .rank = rank, .until_ms = now_ms + for_ms};
}

bool hold_ended(const struct hold *h, int64_t now_ms)
{
	return h->by != HOLD_NONE && now_ms >= h->until_ms;
}

const char *hold_by_name(enum hold_by by)
{
	switch (by) {
	case HOLD_RULE:
		return "rule";
	case HOLD_COMMAND:
		return "command";
	case HOLD_NONE:
		break;
	}
	return "none";
}

static bool has_zone(const struct hold_perspective *p, const char *zone_id)
{
	for (size_t i = 0; i < p->nzones; i++)
		if (p->zone_ids[i] != NULL && strcmp(p->zone_ids[i], zone_id) == 0)
			return true;
	return false;
}

/* Whether a is a better `auto` choice than b: fewer zones, then name, then id. */
static bool better(const struct hold_perspective *a, const struct hold_perspective *b)
{
	int c;

	if (a->nzones != b->nzones)
		return a->nzones < b->nzones;
	c = strcmp(a->name ? a->name : "", b->name ? b->name : "");
	if (c != 0)
		return c < 0;
	return strcmp(a->id ? a->id : "", b->id ? b->id : "") < 0;
}

const struct hold_perspective *hold_pick(const struct hold_perspective *v, size_t n,
                                         const char *spec, const char *zone_id)
{
	const struct hold_perspective *best = NULL;

	if (spec == NULL)
		return NULL;
	if (strcmp(spec, "auto") == 0) {
		if (zone_id == NULL || zone_id[0] == '\0')
			return NULL;
		for (size_t i = 0; i < n; i++)
			if (has_zone(&v[i], zone_id) && (best == NULL || better(&v[i], best)))
				best = &v[i];
		return best;
	}
	for (size_t i = 0; i < n; i++)
		if (v[i].id != NULL && strcmp(v[i].id, spec) == 0)
			return &v[i];
	for (size_t i = 0; i < n; i++)
		if (v[i].name != NULL && strcmp(v[i].name, spec) == 0)
			return &v[i];
	return NULL;
}
