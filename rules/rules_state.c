/* Cooldown and visit memory: a hash table keyed by rule name and cooldown key (or plate and
 * zone), separate from the compiled rules so that it survives a reload; entries changed by an
 * evaluation are saved as text for the state database and loaded back after a restart. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rules/rules_int.h"

/* ---- state ------------------------------------------------------------------------ */

struct st_entry {
	struct st_entry *next;
	struct st_entry *dirty_next; /* on rules_state.dirty while dirty */
	uint64_t hash;
	int64_t last_ms;    /* cooldown: last delivery (now); visit: last read (occurred) */
	int64_t expires_ms; /* for pruning only, in now_ms terms (visit: see late_ms) */
	int sev_rank;
	bool dirty; /* changed since the last rules_state_save */
	uint64_t flags;
	char source_id[MSG_SHORT_MAX];
	size_t keylen;
	char key[];
};

/* Keys are "C" rule US cooldown-key (cooldown) or "V" rule US plate US zone_id (visit), US
 * being \x1f. Entries changed by an evaluation are chained on dirty (no allocation) until
 * rules_state_save hands them out. */
struct rules_state {
	struct st_entry **b;
	size_t nb, n, prune_at;
	struct st_entry *dirty;
	struct buf key, scratch;
	char mode[64];   /* the arming mode when.modes matches; "" when none */
	int64_t late_ms; /* how late a read may be evaluated after it occurred */
};

void rules_state_set_late(struct rules_state *st, int64_t late_ms)
{
	st->late_ms = late_ms > 0 ? late_ms : 0;
}

void rules_state_set_mode(struct rules_state *st, const char *mode)
{
	snprintf(st->mode, sizeof(st->mode), "%s", mode ? mode : "");
}

const char *rules_state_mode(const struct rules_state *st)
{
	return st->mode;
}

struct rules_state *rules_state_new(void)
{
	struct rules_state *st = calloc(1, sizeof(*st));
	if (st == NULL)
		return NULL;
	st->nb = 256;
	st->b = calloc(st->nb, sizeof(*st->b));
	if (st->b == NULL) {
		free(st);
		return NULL;
	}
	st->prune_at = 1024;
	buf_init(&st->key, 1 << 16);
	buf_init(&st->scratch, 1 << 20);
	return st;
}

void rules_state_free(struct rules_state *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < st->nb; i++) {
		struct st_entry *e = st->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(st->b);
	buf_release(&st->key);
	buf_release(&st->scratch);
	free(st);
}

size_t rules_state_size(const struct rules_state *st)
{
	return st ? st->n : 0;
}

static uint64_t fnv(const char *p, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
	return h;
}

static struct st_entry *st_find(struct rules_state *st, uint64_t h)
{
	for (struct st_entry *e = st->b[h % st->nb]; e; e = e->next)
		if (e->hash == h && e->keylen == st->key.len &&
		    memcmp(e->key, st->key.data, e->keylen) == 0)
			return e;
	return NULL;
}

static void st_grow(struct rules_state *st)
{
	size_t nb = st->nb * 2;
	struct st_entry **b = calloc(nb, sizeof(*b));
	if (b == NULL)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < st->nb; i++) {
		struct st_entry *e = st->b[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = b[e->hash % nb];
			b[e->hash % nb] = e;
		}
	}
	free(st->b);
	st->b = b;
	st->nb = nb;
}

static struct st_entry *st_get(struct rules_state *st, uint64_t h)
{
	struct st_entry *e = st_find(st, h);
	if (e)
		return e;
	e = calloc(1, sizeof(*e) + st->key.len + 1);
	if (e == NULL)
		return NULL;
	e->hash = h;
	e->keylen = st->key.len;
	memcpy(e->key, st->key.data, st->key.len);
	e->next = st->b[h % st->nb];
	st->b[h % st->nb] = e;
	if (++st->n > st->nb)
		st_grow(st);
	return e;
}

static void st_touch(struct rules_state *st, struct st_entry *e)
{
	if (e->dirty)
		return;
	e->dirty = true;
	e->dirty_next = st->dirty;
	st->dirty = e;
}

/* Drops expired entries (the database forgets them by expiry too: no delete needed) and
 * chains the dirty survivors again. */
static void st_prune(struct rules_state *st, int64_t now_ms)
{
	st->dirty = NULL;
	for (size_t i = 0; i < st->nb; i++) {
		struct st_entry **pp = &st->b[i];
		while (*pp) {
			struct st_entry *e = *pp;
			if (e->expires_ms <= now_ms) {
				*pp = e->next;
				free(e);
				st->n--;
			} else {
				if (e->dirty) {
					e->dirty_next = st->dirty;
					st->dirty = e;
				}
				pp = &e->next;
			}
		}
	}
	st->prune_at = st->n * 2 > 1024 ? st->n * 2 : 1024;
}

/* ---- state: saving and loading ----------------------------------------------------- */

/* The saved key is the memory key made readable: kind letter, ':', then the key with US as
 * '|' and '%', '|' and control bytes as %XX ("C:door|z1", "V:gate|AB12CDE|z1"). */
static int key_encode(const struct st_entry *e, struct buf *out)
{
	static const char hex[] = "0123456789ABCDEF";
	char c[2] = {e->key[0], ':'};

	buf_reset(out);
	if (buf_append(out, c, 2) < 0)
		return -1;
	for (size_t i = 1; i < e->keylen; i++) {
		unsigned char ch = (unsigned char)e->key[i];
		char esc[3] = {'%', hex[ch >> 4], hex[ch & 15]};
		int rc;

		if (ch == 0x1f)
			rc = buf_append(out, "|", 1);
		else if (ch < 0x20 || ch == 0x7f || ch == '%' || ch == '|')
			rc = buf_append(out, esc, 3);
		else
			rc = buf_append(out, &e->key[i], 1);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

/* The memory key of a saved key into out: 0, 1 when malformed or longer than out takes, -1
 * on ENOMEM. */
static int key_decode(const char *s, struct buf *out)
{
	size_t seps = 0;

	if ((s[0] != 'C' && s[0] != 'V') || s[1] != ':')
		return 1;
	buf_reset(out);
	if (buf_append(out, s, 1) < 0)
		return errno == E2BIG ? 1 : -1;
	for (const char *p = s + 2; *p; p++) {
		char ch = *p;
		if (ch == '|') {
			ch = 0x1f;
			seps++;
		} else if (ch == '%') {
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
			if (lo < 0 || (hi == 0 && lo == 0))
				return 1;
			ch = (char)(hi << 4 | lo);
			p += 2;
		}
		if (buf_append(out, &ch, 1) < 0)
			return errno == E2BIG ? 1 : -1;
	}
	return seps >= (s[0] == 'C' ? 1u : 2u) ? 0 : 1;
}

/* {"last_ms":..,"expires_ms":..} for a visit; a cooldown adds what escalation compares:
 * "sev_rank", "flags" and "source_id". Caller frees; NULL on ENOMEM. */
static char *value_encode(const struct st_entry *e)
{
	json_t *v, *src;
	char *out = NULL;

	if (e->key[0] == 'V')
		v = json_pack("{s:I,s:I}", "last_ms", (json_int_t)e->last_ms, "expires_ms",
		              (json_int_t)e->expires_ms);
	else {
		src = json_string(e->source_id);
		if (src == NULL) /* not UTF-8: lose the escalation pass rather than the entry */
			src = json_string("");
		v = json_pack("{s:I,s:I,s:i,s:I,s:o}", "last_ms", (json_int_t)e->last_ms,
		              "expires_ms", (json_int_t)e->expires_ms, "sev_rank", e->sev_rank,
		              "flags", (json_int_t)e->flags, "source_id", src);
	}
	if (v != NULL)
		out = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	return out;
}

int rules_state_save(struct rules_state *st,
                     int (*put)(void *arg, const char *key, const char *value, int64_t expires_ms),
                     void *arg)
{
	struct buf key;
	int rc = 0;

	buf_init(&key, 0);
	for (struct st_entry *e = st->dirty; e && rc == 0; e = e->dirty_next) {
		char *value;

		if (key_encode(e, &key) < 0 || (value = value_encode(e)) == NULL) {
			rc = -1;
			break;
		}
		rc = put(arg, key.data, value, e->expires_ms);
		free(value);
	}
	buf_release(&key);
	if (rc != 0)
		return rc; /* all stay dirty: the caller rolls back and the next save puts them */
	for (struct st_entry *e = st->dirty, *next; e; e = next) {
		next = e->dirty_next;
		e->dirty = false;
		e->dirty_next = NULL;
	}
	st->dirty = NULL;
	return 0;
}

void rules_state_mark_all(struct rules_state *st)
{
	for (size_t i = 0; i < st->nb; i++)
		for (struct st_entry *e = st->b[i]; e; e = e->next)
			st_touch(st, e);
}

int rules_state_load(struct rules_state *st, const char *key, const char *value, int64_t now_ms)
{
	json_t *v;
	json_int_t last = 0, expires = 0, flags = 0;
	int rank = -1, rc;
	const char *src = "";
	struct st_entry *e;

	rc = key_decode(key, &st->key);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	v = json_loads(value, JSON_REJECT_DUPLICATES, NULL);
	if (v == NULL)
		return 0;
	if (json_unpack(v, "{s:I,s:I,s?i,s?I,s?s}", "last_ms", &last, "expires_ms", &expires,
	                "sev_rank", &rank, "flags", &flags, "source_id", &src) < 0 ||
	    expires <= now_ms) {
		json_decref(v);
		return 0;
	}
	e = st_get(st, fnv(st->key.data, st->key.len));
	if (e != NULL) {
		e->last_ms = last;
		e->expires_ms = expires;
		e->sev_rank = rank;
		e->flags = (uint64_t)flags;
		snprintf(e->source_id, sizeof(e->source_id), "%s", src);
	}
	json_decref(v);
	return e != NULL ? 0 : -1;
}

/* ---- state: the cooldown and visit decisions --------------------------------------- */

void rules_state_prune_due(struct rules_state *st, int64_t now_ms)
{
	if (st->n >= st->prune_at)
		st_prune(st, now_ms);
}

struct buf *rules_state_scratch(struct rules_state *st)
{
	return &st->scratch;
}

bool rules_state_pass(const struct rule *ru, struct rules_state *st, const struct message *m,
                      int64_t now_ms, int rank, char *why)
{
	struct st_entry *e;
	uint64_t h;

	if (ru->visit > 0 && m->kind == MSG_PLATE) {
		buf_reset(&st->key);
		if (buf_puts(&st->key, "V") < 0 || buf_puts(&st->key, ru->name) < 0 ||
		    buf_puts(&st->key, "\x1f") < 0 || buf_puts(&st->key, m->plate_normalized) < 0 ||
		    buf_puts(&st->key, "\x1f") < 0 || buf_puts(&st->key, m->zone_id) < 0)
			return true; /* no memory to remember: deliver rather than drop */
		h = fnv(st->key.data, st->key.len);
		e = st_get(st, h);
		if (e) {
			bool same = e->last_ms != 0 && m->occurred_ms - e->last_ms <= ru->visit;
			if (e->last_ms == 0 || m->occurred_ms > e->last_ms)
				e->last_ms = m->occurred_ms;
			/* A read of this visit occurs at most visit after the last one and may be
			 * evaluated up to late_ms after that: keep the entry until then, by the
			 * reads' clock, and never shorter than visit from now. */
			int64_t keep = e->last_ms + ru->visit + st->late_ms;
			e->expires_ms = keep > now_ms + ru->visit ? keep : now_ms + ru->visit;
			st_touch(st, e);
			if (same)
				FAIL("visit: same visit");
		}
	}
	if (ru->cooldown > 0) {
		buf_reset(&st->key);
		int rc = buf_puts(&st->key, "C");
		if (rc == 0)
			rc = buf_puts(&st->key, ru->name);
		if (rc == 0)
			rc = buf_puts(&st->key, "\x1f");
		if (rc == 0)
			rc = ru->cooldown_key ? tmpl_render(ru->cooldown_key, m, &st->key)
			                      : buf_puts(&st->key, m->zone_id);
		if (rc < 0)
			return true;
		h = fnv(st->key.data, st->key.len);
		e = st_find(st, h);
		if (e && now_ms - e->last_ms < ru->cooldown) {
			bool escalation =
			    strcmp(e->source_id, m->source_id) == 0 &&
			    ((rank >= 0 && rank > e->sev_rank) || (m->flags & ~e->flags));
			if (!escalation) {
				char left[32];
				if (why)
					rules_fmt_duration(e->last_ms + ru->cooldown - now_ms, left,
					                   sizeof(left));
				FAIL("cooldown: %s left", left);
			}
		}
		if (e == NULL)
			e = st_get(st, h);
		if (e) {
			e->last_ms = now_ms;
			e->expires_ms = now_ms + ru->cooldown;
			e->sev_rank = rank;
			e->flags = m->flags;
			snprintf(e->source_id, sizeof(e->source_id), "%s", m->source_id);
			st_touch(st, e);
		}
	}
	return true;
}
