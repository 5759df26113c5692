/* Catch-up progress and the age limit. A zone is "catching up" while its windows are backfill
 * (poller_window: the cursor is far behind); the counts come from the poller one message at
 * a time and are handed to the zone when its poll commits. */
#include "bridge/catchup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

struct catchup_zone {
	char *id;
	bool active;
	int64_t started_mono, last_log_mono;
	int64_t windows, found, held;
};

bool catchup_take(struct catchup *c, bool backfill, int64_t occurred_ms, int64_t now,
                  int64_t max_age_ms)
{
	if (!backfill)
		return true;
	c->found++;
	if (max_age_ms > 0 && now - occurred_ms > max_age_ms) {
		c->held++;
		return false;
	}
	return true;
}

void catchup_drop(struct catchup *c)
{
	c->found = c->held = 0;
}

static struct catchup_zone *zone_get(struct catchup *c, const char *id)
{
	struct catchup_zone *nv;

	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->v[i].id, id) == 0)
			return &c->v[i];
	nv = realloc(c->v, (c->n + 1) * sizeof(*nv));
	if (nv == NULL)
		return NULL;
	c->v = nv;
	memset(&nv[c->n], 0, sizeof(nv[c->n]));
	if ((nv[c->n].id = strdup(id)) == NULL)
		return NULL;
	return &nv[c->n++];
}

void catchup_fmt_ms(int64_t ms, char *out, size_t outsz)
{
	long long s = (long long)((ms + 500) / 1000);

	if (s < 60)
		snprintf(out, outsz, "%llds", s);
	else if (s < 3600 && s % 60 == 0)
		snprintf(out, outsz, "%lldm", s / 60);
	else if (s < 3600)
		snprintf(out, outsz, "%lldm %llds", s / 60, s % 60);
	else if (s / 60 % 60 == 0)
		snprintf(out, outsz, "%lldh", s / 3600);
	else
		snprintf(out, outsz, "%lldh %lldm", s / 3600, s / 60 % 60);
}

void catchup_step(struct catchup *c, const char *zone_id, const char *zone_name, bool backfill,
                  int64_t to, int64_t now, int64_t window_ms, int64_t max_age_ms)
{
	struct catchup_zone *z = zone_get(c, zone_id);
	int64_t mono = util_mono_ms(), found = c->found, held = c->held;
	char a[32], b[32];

	catchup_drop(c);
	if (z == NULL)
		return;
	if (!backfill) {
		if (!z->active)
			return;
		z->active = false;
		catchup_fmt_ms(mono - z->started_mono, a, sizeof(a));
		if (z->held > 0) {
			catchup_fmt_ms(max_age_ms, b, sizeof(b));
			log_info(
			    "zone '%s': caught up in %s: %lld events, %lld of them older than %s "
			    "recorded but not delivered (poll.catchup_max_age)",
			    zone_name, a, (long long)z->found, (long long)z->held, b);
		} else {
			log_info("zone '%s': caught up in %s: %lld events", zone_name, a,
			         (long long)z->found);
		}
		return;
	}
	if (!z->active) {
		z->active = true;
		z->started_mono = mono;
		z->last_log_mono = 0;
		z->windows = z->found = z->held = 0;
		catchup_fmt_ms(now - to + window_ms, a, sizeof(a));
		if (max_age_ms > 0) {
			catchup_fmt_ms(max_age_ms, b, sizeof(b));
			log_info("zone '%s': catching up on about %s missed; events older than %s "
			         "are recorded, not delivered (poll.catchup_max_age)",
			         zone_name, a, b);
		} else {
			log_info("zone '%s': catching up on about %s missed; every event is "
			         "delivered (poll.catchup_max_age: 0)",
			         zone_name, a);
		}
	}
	z->windows++;
	z->found += found;
	z->held += held;
	if (z->last_log_mono != 0 && mono - z->last_log_mono < CATCHUP_LOG_EVERY_MS)
		return;
	z->last_log_mono = mono;
	int64_t left = window_ms > 0 ? (now - to + window_ms - 1) / window_ms : 0;
	if (left < 0)
		left = 0;
	catchup_fmt_ms((mono - z->started_mono) * left / z->windows, a, sizeof(a));
	log_info("zone '%s': catching up: %lld window%s left, %lld events so far (%lld held "
	         "back for age), about %s to go",
	         zone_name, (long long)left, left == 1 ? "" : "s", (long long)z->found,
	         (long long)z->held, a);
}

void catchup_release(struct catchup *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].id);
	free(c->v);
	memset(c, 0, sizeof(*c));
}
