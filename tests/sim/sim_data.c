/* The simulator's data: zones, events, plate reads and recordings, kept per zone sorted by
 * start time so window queries are a binary search plus the matches; and the seeded random
 * generator (splitmix64) behind the backlog and the live stream. No I/O, no locking. */
#include "tests/sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const sim_flag_names[SIM_F_COUNT] = {
    "pir",
    "lpr",
    "motion",
    "video_loss",
    "video_blind",
    "video_defocus",
    "abnormal_audio",
    "loitering",
    "people_gathering",
    "fast_moving",
    "storage_failure",
    "storage_low_space",
    "temperature",
    "storage_not_exist",
    "alarm",
    "face",
    "tripwire",
    "intrusion",
    "parking",
    "car",
    "object_removal",
    "abandoned_object",
    "missing_object",
    "scene_change",
    "tma",
    "auto_register",
    "ip_conflict",
    "network_change",
};

const char *const sim_severities[5] = {"low", "normal", "medium", "high", "critical"};

static const char *const zone_names[] = {"Front Door", "Back Yard", "Car Park"};

uint64_t sim_rand(struct sim *s)
{
	uint64_t z = (s->rng += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

double sim_rand_unit(struct sim *s)
{
	return (double)(sim_rand(s) >> 11) / 9007199254740992.0;
}

/* Uniform in [lo, hi]. */
static int64_t rand_range(struct sim *s, int64_t lo, int64_t hi)
{
	if (hi <= lo)
		return lo;
	return lo + (int64_t)(sim_rand(s) % (uint64_t)(hi - lo + 1));
}

void sim_make_hex(struct sim *s, char *out, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t r = 0;
	for (size_t i = 0; i < n; i++) {
		if (i % 16 == 0)
			r = sim_rand(s);
		out[i] = hex[r & 15];
		r >>= 4;
	}
	out[n] = '\0';
}

/* Object-id shaped: 8 hex digits of seconds, then a counter and random bits. */
void sim_make_id(struct sim *s, int64_t ms, char out[SIM_ID_LEN + 1])
{
	char rnd[7];
	sim_make_hex(s, rnd, 6);
	snprintf(out, SIM_ID_LEN + 1, "%08x%s%010llx", (unsigned)(ms / 1000), rnd,
	         (unsigned long long)(++s->id_counter & 0xffffffffffULL));
}

/* The time part of the ids of zones, locations and the like: from the seed, not the clock,
 * so a seed always gives the same zone ids (configs for the demo can name them). */
static int64_t seed_ms(const struct sim *s)
{
	return (int64_t)(0x5f000000u + (unsigned)(s->opts.seed % 0xffffff)) * 1000;
}

static int grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	size_t ncap;
	void *p;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap * 2 : 16;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*arr, ncap * elem);
	if (p == NULL)
		return -1;
	*arr = p;
	*cap = ncap;
	return 0;
}

struct sim_zone *sim_zone_find(struct sim *s, const char *id)
{
	if (id == NULL)
		return NULL;
	for (size_t i = 0; i < s->nzones; i++)
		if (!s->zones[i]->deleted && strcmp(s->zones[i]->id, id) == 0)
			return s->zones[i];
	return NULL;
}

/* Recordings: a few one-minute clips per zone, ten minutes apart, ending at start-up. */
static int zone_add_recordings(struct sim *s, struct sim_zone *z, int64_t now)
{
	const int n = 5;
	z->recs = calloc(n, sizeof(*z->recs));
	if (z->recs == NULL)
		return -1;
	for (int i = 0; i < n; i++) {
		struct sim_recording *r = &z->recs[i];
		static const char b64[] =
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		r->zone = z;
		r->starts_at = (now / 1000) * 1000 - (int64_t)(n - i) * 600000 + 94;
		r->ends_at = r->starts_at + 60000;
		r->created_at = r->ends_at + 2002;
		r->serial = (int)(s->nzones * 10) + i + 1;
		r->flagged = sim_rand(s) % 4 == 0;
		sim_make_id(s, r->starts_at, r->id);
		sim_make_id(s, r->starts_at, r->event_id);
		for (int k = 0; k < 22; k++)
			r->token[k] = b64[sim_rand(s) & 63];
		r->token[22] = '\0';
	}
	z->nrecs = n;
	return 0;
}

struct sim_zone *sim_zone_add(struct sim *s, const char *name, const char *location_id)
{
	struct sim_zone *z;
	char fallback[32];
	int64_t now = util_now_ms();

	if (grow((void **)&s->zones, &s->capzones, s->nzones + 1, sizeof(*s->zones)) < 0)
		return NULL;
	z = calloc(1, sizeof(*z));
	if (z == NULL)
		return NULL;
	if (name == NULL) {
		/* "Front Door", "Back Yard", "Car Park", then "Camera 4", "Camera 5", ... */
		if (s->nzones < 3)
			snprintf(fallback, sizeof(fallback), "%s", zone_names[s->nzones]);
		else
			snprintf(fallback, sizeof(fallback), "Camera %zu", s->nzones + 1);
		name = fallback;
	}
	z->name = strdup(name);
	if (z->name == NULL) {
		free(z);
		return NULL;
	}
	sim_make_id(s, seed_ms(s), z->id);
	sim_make_id(s, seed_ms(s), z->agent_id);
	sim_make_id(s, seed_ms(s), z->camera_id);
	/* One timeline per location: reuse the one of a zone already there. */
	if (location_id != NULL && *location_id) {
		snprintf(z->location_id, sizeof(z->location_id), "%s", location_id);
		for (size_t i = 0; i < s->nzones; i++)
			if (strcmp(s->zones[i]->location_id, location_id) == 0)
				memcpy(z->timeline_id, s->zones[i]->timeline_id,
				       sizeof(z->timeline_id));
	} else {
		sim_make_id(s, seed_ms(s), z->location_id);
	}
	if (z->timeline_id[0] == '\0')
		sim_make_id(s, seed_ms(s), z->timeline_id);
	z->offset_min = s->nzones % 2 ? 60 : 0;
	if (zone_add_recordings(s, z, s->started_ms ? s->started_ms : now) < 0) {
		free(z->name);
		free(z);
		return NULL;
	}
	s->zones[s->nzones++] = z;
	return z;
}

static void zone_free(struct sim_zone *z)
{
	free(z->name);
	free(z->events);
	free(z->open);
	free(z->plates);
	free(z->recs);
	free(z);
}

size_t sim_zone_events_lower(const struct sim_zone *z, int64_t t)
{
	size_t lo = 0, hi = z->nevents;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->events[mid]->starts_at < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t sim_zone_plates_lower(const struct sim_zone *z, int64_t t)
{
	size_t lo = 0, hi = z->nplates;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->plates[mid]->starts_at < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool event_is_open(const struct sim_event *e)
{
	return !e->complete || e->ends_at < 0;
}

static int open_add(struct sim_zone *z, struct sim_event *e)
{
	if (grow((void **)&z->open, &z->capopen, z->nopen + 1, sizeof(*z->open)) < 0)
		return -1;
	z->open[z->nopen++] = e;
	return 0;
}

static void open_remove(struct sim_zone *z, struct sim_event *e)
{
	for (size_t i = 0; i < z->nopen; i++) {
		if (z->open[i] == e) {
			z->open[i] = z->open[--z->nopen];
			return;
		}
	}
}

void sim_event_touch(struct sim *s, struct sim_event *e, int64_t now)
{
	int64_t t = now;
	(void)s;
	if (t <= e->updated_at)
		t = e->updated_at + 1;
	e->updated_at = t;
}

void sim_event_set_end(struct sim *s, struct sim_event *e, bool complete, int64_t ends_at)
{
	bool was_open = event_is_open(e);
	struct sim_zone *z = e->zone;

	(void)s;
	e->complete = complete;
	e->ends_at = ends_at;
	if (was_open && !event_is_open(e))
		open_remove(z, e);
	else if (!was_open && event_is_open(e) && open_add(z, e) < 0)
		e->complete = true, e->ends_at = e->ends_at < 0 ? e->starts_at : e->ends_at;
	if (!event_is_open(e) && e->ends_at - e->starts_at > z->max_span)
		z->max_span = e->ends_at - e->starts_at;
}

struct sim_event *sim_event_add(struct sim *s, struct sim_zone *z, int64_t starts_at,
                                int64_t ends_at, int64_t created_at)
{
	struct sim_event *e;
	size_t pos;

	if (grow((void **)&s->events, &s->capevents, s->nevents + 1, sizeof(*s->events)) < 0 ||
	    grow((void **)&z->events, &z->capevents, z->nevents + 1, sizeof(*z->events)) < 0)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->zone = z;
	e->starts_at = starts_at;
	e->ends_at = -1;
	e->created_at = created_at;
	e->severity = 1;
	e->complete = false;
	sim_make_id(s, created_at, e->id);
	sim_make_hex(s, e->best_id, 25);
	if (open_add(z, e) < 0) {
		free(e);
		return NULL;
	}
	if (ends_at >= 0)
		sim_event_set_end(s, e, true, ends_at);
	sim_event_touch(s, e, created_at);
	/* Insert after every event with the same start, so the common append is O(1); the
	 * backlog appends and sorts once at the end. */
	pos = s->bulk ? z->nevents : sim_zone_events_lower(z, starts_at + 1);
	memmove(z->events + pos + 1, z->events + pos, (z->nevents - pos) * sizeof(*z->events));
	z->events[pos] = e;
	z->nevents++;
	s->events[s->nevents++] = e;
	return e;
}

struct sim_event *sim_event_find(struct sim *s, const char *id)
{
	for (size_t i = s->nevents; i-- > 0;)
		if (strcmp(s->events[i]->id, id) == 0)
			return s->events[i];
	return NULL;
}

struct sim_plate *sim_plate_add(struct sim *s, struct sim_zone *z, int64_t starts_at,
                                int64_t created_at)
{
	struct sim_plate *p;
	size_t pos;

	if (grow((void **)&s->plates, &s->capplates, s->nplates + 1, sizeof(*s->plates)) < 0 ||
	    grow((void **)&z->plates, &z->capplates, z->nplates + 1, sizeof(*z->plates)) < 0)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->zone = z;
	p->starts_at = starts_at;
	p->created_at = created_at;
	p->updated_at = created_at;
	sim_make_id(s, created_at, p->id);
	sim_make_id(s, starts_at, p->event_id);
	pos = s->bulk ? z->nplates : sim_zone_plates_lower(z, starts_at + 1);
	memmove(z->plates + pos + 1, z->plates + pos, (z->nplates - pos) * sizeof(*z->plates));
	z->plates[pos] = p;
	z->nplates++;
	s->plates[s->nplates++] = p;
	return p;
}

struct sim_recording *sim_recording_find(struct sim *s, const char *id)
{
	for (size_t i = 0; i < s->nzones; i++)
		for (size_t k = 0; k < s->zones[i]->nrecs; k++)
			if (!s->zones[i]->deleted && strcmp(s->zones[i]->recs[k].id, id) == 0)
				return &s->zones[i]->recs[k];
	return NULL;
}

int sim_parse_flag(const char *name)
{
	if (strncmp(name, "has_", 4) == 0)
		name += 4;
	for (int i = 0; i < SIM_F_COUNT; i++)
		if (strcmp(name, sim_flag_names[i]) == 0)
			return i;
	return -1;
}

int sim_parse_severity(const char *name)
{
	for (int i = 0; i < 5; i++)
		if (strcmp(name, sim_severities[i]) == 0)
			return i;
	return -1;
}

/* A realistic mix: mostly motion, some analytics, rarely a device fault. */
static void random_look(struct sim *s, struct sim_event *e)
{
	static const struct {
		enum sim_flag f;
		double p;
	} mix[] = {
	    {SIM_F_MOTION, 0.80},
	    {SIM_F_PIR, 0.06},
	    {SIM_F_INTRUSION, 0.08},
	    {SIM_F_TRIPWIRE, 0.05},
	    {SIM_F_FACE, 0.04},
	    {SIM_F_LPR, 0.03},
	    {SIM_F_CAR, 0.05},
	    {SIM_F_LOITERING, 0.03},
	    {SIM_F_PEOPLE_GATHERING, 0.01},
	    {SIM_F_FAST_MOVING, 0.01},
	    {SIM_F_ALARM, 0.02},
	    {SIM_F_PARKING, 0.01},
	    {SIM_F_ABANDONED_OBJECT, 0.005},
	    {SIM_F_OBJECT_REMOVAL, 0.005},
	    {SIM_F_SCENE_CHANGE, 0.005},
	    {SIM_F_VIDEO_LOSS, 0.004},
	    {SIM_F_VIDEO_BLIND, 0.003},
	    {SIM_F_VIDEO_DEFOCUS, 0.002},
	    {SIM_F_ABNORMAL_AUDIO, 0.003},
	    {SIM_F_STORAGE_LOW_SPACE, 0.001},
	    {SIM_F_STORAGE_FAILURE, 0.0005},
	    {SIM_F_TEMPERATURE, 0.001},
	    {SIM_F_NETWORK_CHANGE, 0.001},
	};
	double r;

	e->flags = 0;
	for (size_t i = 0; i < sizeof(mix) / sizeof(mix[0]); i++)
		if (sim_rand_unit(s) < mix[i].p)
			e->flags |= 1u << mix[i].f;
	if (e->flags == 0)
		e->flags = 1u << SIM_F_MOTION;
	e->motion = 0.0;
	if (e->flags & (1u << SIM_F_MOTION))
		e->motion = (double)rand_range(s, 5, 95) / 100.0;
	r = sim_rand_unit(s);
	e->severity = r < 0.10 ? 0 : r < 0.80 ? 1 : r < 0.90 ? 2 : r < 0.97 ? 3 : 4;
	e->flagged = sim_rand(s) % 10 == 0;
	e->items_count = (int)rand_range(s, 0, 3);
	e->filesize = (long)rand_range(s, 0, 4) * 262144;
}

static struct sim_zone *random_zone(struct sim *s)
{
	size_t live = 0, pick;
	for (size_t i = 0; i < s->nzones; i++)
		live += !s->zones[i]->deleted;
	if (live == 0)
		return NULL;
	pick = sim_rand(s) % live;
	for (size_t i = 0; i < s->nzones; i++)
		if (!s->zones[i]->deleted && pick-- == 0)
			return s->zones[i];
	return NULL;
}

void sim_random_event(struct sim *s, int64_t now, bool live)
{
	struct sim_zone *z = random_zone(s);
	struct sim_event *e;
	int64_t dur = rand_range(s, 3000, 90000), start;
	bool incomplete = false;

	if (z == NULL)
		return;
	if (!live) {
		start =
		    rand_range(s, s->started_ms - s->opts.backlog_span_ms, s->started_ms - 1000);
		if (start + dur > s->started_ms)
			dur = s->started_ms - start;
		int64_t created = start + dur + rand_range(s, 500, 5000);
		e = sim_event_add(s, z, start, start + dur,
		                  created < s->started_ms ? created : s->started_ms);
	} else {
		if (sim_rand_unit(s) * 100.0 < s->opts.late_pct)
			start = now - rand_range(s, 60000, 600000);
		else
			start = now - (dur = rand_range(s, 1000, 10000)); /* uploaded at its end */
		incomplete = sim_rand_unit(s) * 100.0 < s->opts.incomplete_pct;
		if (incomplete && start < now - 1000)
			start = now - rand_range(s, 0, 1000);
		e = sim_event_add(s, z, start, incomplete ? -1 : start + dur, now);
	}
	if (e == NULL)
		return;
	random_look(s, e);
	if (incomplete)
		e->complete_at = now + rand_range(s, 2000, 8000);
}

static char letter(struct sim *s)
{
	static const char l[] = "ABCDEFGHJKLMNPRSTUVWXYZ";
	return l[sim_rand(s) % (sizeof(l) - 1)];
}

static char digit(struct sim *s)
{
	return (char)('0' + sim_rand(s) % 10);
}

/* Plate numbers in each country's usual shape, as a reader reports them (no spaces). */
static void random_plate_number(struct sim *s, struct sim_plate *p)
{
	static const char *const countries[] = {"GBR", "GBR", "GBR", "TUR", "FRA",
	                                        "DEU", "NLD", "ESP", "POL", "IRL"};
	static const char *const shapes[] = {"LLDDLLL", "LLDDLLL", "LLDDLLL", "DDLLLDDD",
	                                     "LLDDDLL", "LLLDDDD", "DDLLLD",  "DDDDLLL",
	                                     "LLDDDDD", "DDDLDDDD"};
	size_t k = sim_rand(s) % (sizeof(countries) / sizeof(countries[0]));
	const char *shape = shapes[k];
	size_t i;

	snprintf(p->country, sizeof(p->country), "%s", countries[k]);
	for (i = 0; shape[i] && i + 1 < sizeof(p->plate_number); i++)
		p->plate_number[i] = shape[i] == 'L' ? letter(s) : digit(s);
	p->plate_number[i] = '\0';
}

void sim_random_plate(struct sim *s, int64_t now)
{
	struct sim_zone *z = random_zone(s);
	struct sim_plate *p;
	int64_t start;

	if (z == NULL)
		return;
	if (now == 0)
		start =
		    rand_range(s, s->started_ms - s->opts.backlog_span_ms, s->started_ms - 1000);
	else
		start = now - rand_range(s, 0, 2000);
	p = sim_plate_add(s, z, start, now ? now : start + rand_range(s, 500, 3000));
	if (p == NULL)
		return;
	random_plate_number(s, p);
	p->flagged = sim_rand(s) % 20 == 0;
	p->has_picture = sim_rand(s) % 2 == 0;
}

static void complete_due(struct sim *s, int64_t now)
{
	static const enum sim_flag extra[] = {SIM_F_INTRUSION, SIM_F_TRIPWIRE, SIM_F_FACE,
	                                      SIM_F_LOITERING, SIM_F_CAR};
	for (size_t i = 0; i < s->nzones; i++) {
		struct sim_zone *z = s->zones[i];
		for (size_t k = 0; k < z->nopen;) {
			struct sim_event *e = z->open[k];
			if (e->complete_at == 0 || e->complete_at > now) {
				k++;
				continue;
			}
			e->complete_at = 0;
			if (sim_rand(s) % 3 == 0)
				e->flags |= 1u << extra[sim_rand(s) % 5];
			sim_event_set_end(s, e, true, now); /* removes open[k] */
			sim_event_touch(s, e, now);
		}
	}
}

void sim_tick(struct sim *s, int64_t now)
{
	int64_t dt;

	if (s->last_tick == 0 || now < s->last_tick)
		s->last_tick = now;
	dt = now - s->last_tick;
	if (dt > 2000)
		dt = 2000; /* after a stall, do not flood */
	s->last_tick = now;
	s->ev_acc += s->opts.rate * (double)dt / 1000.0;
	s->plate_acc += s->opts.plate_rate * (double)dt / 1000.0;
	for (; s->ev_acc >= 1.0; s->ev_acc -= 1.0)
		sim_random_event(s, now, true);
	for (; s->plate_acc >= 1.0; s->plate_acc -= 1.0)
		sim_random_plate(s, now);
	complete_due(s, now);
}

static int cmp_event(const void *a, const void *b)
{
	const struct sim_event *x = *(const struct sim_event *const *)a;
	const struct sim_event *y = *(const struct sim_event *const *)b;
	return (x->starts_at > y->starts_at) - (x->starts_at < y->starts_at);
}

static int cmp_plate(const void *a, const void *b)
{
	const struct sim_plate *x = *(const struct sim_plate *const *)a;
	const struct sim_plate *y = *(const struct sim_plate *const *)b;
	return (x->starts_at > y->starts_at) - (x->starts_at < y->starts_at);
}

int sim_init(struct sim *s, const struct sim_opts *o)
{
	char locs[64][SIM_ID_LEN + 1];
	int nloc = o->locations < 1 ? 1 : o->locations > 64 ? 64 : o->locations;

	memset(s, 0, sizeof(*s));
	if (pthread_mutex_init(&s->lock, NULL) != 0)
		return -1;
	s->opts = *o;
	s->rng = o->seed;
	s->started_ms = util_now_ms();
	for (int i = 0; i < nloc; i++)
		sim_make_id(s, seed_ms(s), locs[i]);
	for (int i = 0; i < o->zones; i++)
		if (sim_zone_add(s, NULL, locs[i % nloc]) == NULL)
			return -1;
	for (int i = 0; i < 2; i++) {
		static const char *const names[] = {"Overview", "Entrances"};
		static const char *const layouts[] = {"layout_01", "layout_02"};
		struct sim_perspective *p = &s->persp[s->npersp++];
		sim_make_id(s, seed_ms(s), p->id);
		sim_make_id(s, seed_ms(s), p->user_id);
		memcpy(p->timeline_id, s->nzones ? s->zones[0]->timeline_id : locs[0],
		       sizeof(p->timeline_id));
		snprintf(p->name, sizeof(p->name), "%s", names[i]);
		snprintf(p->layout, sizeof(p->layout), "%s", layouts[i]);
	}
	/* The backlog is generated unsorted, then each zone is sorted once. */
	s->bulk = true;
	for (long i = 0; i < o->backlog; i++)
		sim_random_event(s, 0, false);
	for (long i = 0; i < o->backlog / 10; i++)
		sim_random_plate(s, 0);
	for (size_t i = 0; i < s->nzones; i++) {
		struct sim_zone *z = s->zones[i];
		if (z->nevents > 1)
			qsort(z->events, z->nevents, sizeof(*z->events), cmp_event);
		if (z->nplates > 1)
			qsort(z->plates, z->nplates, sizeof(*z->plates), cmp_plate);
	}
	s->bulk = false;
	s->last_tick = s->started_ms;
	return 0;
}

void sim_release(struct sim *s)
{
	for (size_t i = 0; i < s->nevents; i++)
		free(s->events[i]);
	free(s->events);
	for (size_t i = 0; i < s->nplates; i++)
		free(s->plates[i]);
	free(s->plates);
	for (size_t i = 0; i < s->nzones; i++)
		zone_free(s->zones[i]);
	free(s->zones);
	for (size_t i = 0; i < s->ntokens; i++)
		util_memzero(&s->tokens[i], sizeof(s->tokens[i]));
	free(s->tokens);
	for (size_t i = 0; i < s->ncodes; i++) {
		free(s->codes[i].redirect_uri);
		util_memzero(s->codes[i].code, sizeof(s->codes[i].code));
	}
	free(s->codes);
	free(s->faults);
	for (size_t i = 0; i < s->nreqs; i++) {
		free(s->reqs[i].path);
		free(s->reqs[i].query);
	}
	free(s->reqs);
	pthread_mutex_destroy(&s->lock);
	memset(s, 0, sizeof(*s));
}
