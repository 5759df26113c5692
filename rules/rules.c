/* Rule evaluation: a normalised message against the compiled rules, in order. The
 * conditions are pure and the first that fails is the reason; cooldown and visits are asked
 * of the state (rules_state.c); a match renders one delivery per target. */
#include <fnmatch.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rules_int.h"

/* ---- small helpers ---------------------------------------------------------------- */

static void *xgrow(void *p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return p;
	size_t ncap = *cap ? *cap * 2 : 8;
	while (ncap < need)
		ncap *= 2;
	void *np = realloc(p, ncap * elem);
	if (np == NULL)
		return NULL;
	*cap = ncap;
	return np;
}

void rules_fmt_duration(int64_t ms, char *out, size_t outsz)
{
	static const struct {
		int64_t ms;
		const char *u;
	} units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};

	if (ms < 1000) {
		snprintf(out, outsz, "%lldms", (long long)(ms < 0 ? 0 : ms));
		return;
	}
	for (size_t i = 0; i < 4; i++) {
		if (ms < units[i].ms)
			continue;
		int64_t a = ms / units[i].ms, rest = ms % units[i].ms;
		if (i < 3 && rest >= units[i + 1].ms)
			snprintf(out, outsz, "%lld%s%lld%s", (long long)a, units[i].u,
			         (long long)(rest / units[i + 1].ms), units[i + 1].u);
		else
			snprintf(out, outsz, "%lld%s", (long long)a, units[i].u);
		return;
	}
}

int rules_severity_rank(const struct rules *r, const char *severity)
{
	for (size_t i = 0; i < r->nsev; i++)
		if (strcmp(r->sev[i], severity) == 0)
			return (int)i;
	return -1;
}

/* ---- evaluation ------------------------------------------------------------------- */

void rules_say(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, REASON_MAX, fmt, ap); /* reasons are short; truncation is fine */
	va_end(ap);
}

static bool in_list(const struct strlist *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

static int first_flag(uint64_t mask)
{
	for (int i = 0; i < 64; i++)
		if (mask >> i & 1)
			return i;
	return 0;
}

static bool zone_matches(const struct rule *ru, const struct message *m)
{
	const char *zn = m->zone_name[0] ? m->zone_name : m->zone_id;
	size_t zlen = strlen(zn);

	for (size_t i = 0; i < ru->zones.n; i++) {
		const char *p = ru->zones.v[i];
		size_t pl = ru->zlen[i];
		if (strcmp(p, m->zone_id) == 0)
			return true;
		switch (ru->zkind[i]) {
		case Z_LITERAL:
			if (pl == zlen && memcmp(p, zn, pl) == 0)
				return true;
			break;
		case Z_PREFIX:
			if (zlen >= pl && memcmp(p, zn, pl) == 0)
				return true;
			break;
		case Z_SUFFIX:
			if (zlen >= pl && memcmp(p + 1, zn + zlen - pl, pl) == 0)
				return true;
			break;
		default:
			if (fnmatch(p, zn, 0) == 0)
				return true;
		}
	}
	return false;
}

/* The stateless conditions, cheap ones first: bit tests, then strings, then time, then
 * watchlists. The first one that fails is the reason. */
static bool match_conditions(const struct rules *r, const struct rule *ru, const struct message *m,
                             int64_t now_ms, int rank, struct watchlist_match *wm, bool *wmatched,
                             char *why)
{
	if (ru->kind >= 0 && (int)m->kind != ru->kind)
		FAIL("kind: %s", msg_kind_name((enum msg_kind)ru->kind));
	if (!(ru->phases >> m->phase & 1))
		FAIL("phase: %s not in [%s]", msg_phase_name(m->phase),
		     ru->phases_joined ? ru->phases_joined : "");
	if (ru->flags_any && !(m->flags & ru->flags_any))
		FAIL("flags_any: none of %s", ru->flags_any_joined ? ru->flags_any_joined : "");
	if ((m->flags & ru->flags_all) != ru->flags_all)
		FAIL("flags_all: missing %s",
		     msg_flag_names[first_flag(ru->flags_all & ~m->flags)]);
	if (m->flags & ru->flags_none)
		FAIL("flags_none: has %s", msg_flag_names[first_flag(m->flags & ru->flags_none)]);
	if (ru->severities.n && !in_list(&ru->severities, m->severity))
		FAIL("severity: %s not in [%s]", m->severity[0] ? m->severity : "none",
		     ru->severities.joined);
	if (ru->min_sev >= 0 && rank < ru->min_sev) {
		if (rank < 0)
			FAIL("min_severity: '%s' not in severity_order", m->severity);
		FAIL("min_severity: %s below %s", m->severity, r->sev[ru->min_sev]);
	}
	if (ru->locations.n && !in_list(&ru->locations, m->location_id))
		FAIL("locations: '%s' not in [%s]", m->location_id, ru->locations.joined);
	if (ru->zones.n && !zone_matches(ru, m))
		FAIL("zones: '%s' matches none of [%s]",
		     m->zone_name[0] ? m->zone_name : m->zone_id, ru->zones.joined);
	if (ru->nwin) {
		bool ok = false;
		for (size_t i = 0; i < ru->nwin && !ok; i++)
			ok = sched_window_holds(&ru->win[i], m->occurred_ms);
		if (!ok) {
			char when[80];
			if (why)
				sched_describe(ru->win[0].tz, m->occurred_ms, when, sizeof(when));
			FAIL("schedule: %s outside windows", when);
		}
	}
	if (ru->has_max_age && m->occurred_ms < now_ms - ru->max_age) {
		char age[32];
		if (why)
			rules_fmt_duration(now_ms - m->occurred_ms, age, sizeof(age));
		FAIL("max_age: %s old", age);
	}
	if (ru->countries.n && !in_list(&ru->countries, m->country))
		FAIL("countries: %s not in [%s]", m->country[0] ? m->country : "unknown",
		     ru->countries.joined);
	*wmatched = false;
	if (ru->nwl) {
		for (size_t i = 0; i < ru->nwl; i++) {
			struct watchlist_match cand;
			if (!watchlist_match(ru->wls[i],
			                     m->plate_normalized[0] ? m->plate_normalized
			                                            : m->plate_number,
			                     m->country, &cand))
				continue;
			if (!*wmatched || cand.distance < wm->distance) {
				*wm = cand;
				*wmatched = true;
			}
			if (cand.distance == 0)
				break;
		}
		if (!*wmatched)
			FAIL("watchlists: no match");
	}
	return true;
}

static char *render(const struct tmpl *t, const struct message *m, struct buf *scratch)
{
	buf_reset(scratch);
	if (tmpl_render(t, m, scratch) < 0)
		return NULL;
	return strdup(scratch->data ? scratch->data : "");
}

/* when.modes against the current arming mode. */
static bool match_mode(const struct rule *ru, const struct rules_state *st, char *why)
{
	if (ru->modes.n && !in_list(&ru->modes, rules_state_mode(st)))
		FAIL("modes: '%s' not in [%s]", rules_state_mode(st), ru->modes.joined);
	return true;
}

static int deliver(const struct rules *r, const struct rule *ru, struct rules_state *st,
                   const struct message *m, const struct watchlist_match *wm, bool wmatched,
                   struct rules_result *res)
{
	int rank = rules_severity_rank(r, m->severity);

	for (size_t i = 0; i < ru->nto; i++) {
		const struct rule_target *t = &ru->to[i];
		struct rules_delivery *d;
		void *nd = xgrow(res->d, &res->capd, res->nd + 1, sizeof(*res->d));
		if (nd == NULL)
			return -1;
		res->d = nd;
		d = &res->d[res->nd];
		memset(d, 0, offsetof(struct rules_delivery, msg));
		d->msg = *m;
		snprintf(d->msg.rule, sizeof(d->msg.rule), "%s", ru->name);
		if (wmatched) {
			d->msg.watch_matched = true;
			snprintf(d->msg.watchlist, sizeof(d->msg.watchlist), "%s", wm->watchlist);
			snprintf(d->msg.watch_entry, sizeof(d->msg.watch_entry), "%s", wm->entry);
			snprintf(d->msg.watch_label, sizeof(d->msg.watch_label), "%s",
			         wm->label ? wm->label : "");
			d->msg.watch_distance = wm->distance;
		}
		d->rule = ru->name;
		d->target_kind = t->kind;
		d->target = t->name;
		d->qos = t->qos;
		d->retain = t->retain;
		d->hold_ms = t->hold;
		d->max_delay_ms = t->max_delay;
		d->rank = rank;
		d->top = rank >= 0 && (size_t)rank == r->nsev - 1;
		res->nd++;
		if (t->prefix && (d->topic = strdup(t->prefix)) == NULL)
			return -1;
		if (t->mqtt) {
			const struct tmpl *tp = t->topic               ? t->topic
			                        : m->kind == MSG_PLATE ? t->topic_plate
			                                               : t->topic_event;
			if ((d->topic = render(tp, &d->msg, rules_state_scratch(st))) == NULL)
				return -1;
		}
		if (t->text &&
		    (d->text = render(t->text, &d->msg, rules_state_scratch(st))) == NULL)
			return -1;
		if (t->body &&
		    (d->body = render(t->body, &d->msg, rules_state_scratch(st))) == NULL)
			return -1;
	}
	return 0;
}

int rules_eval(const struct rules *r, struct rules_state *st, const struct message *msg,
               int64_t now_ms, bool trace, struct rules_result *res)
{
	char reason[REASON_MAX];
	int rank = rules_severity_rank(r, msg->severity);

	rules_state_prune_due(st, now_ms);
	for (size_t i = 0; i < r->n; i++) {
		const struct rule *ru = &r->v[i];
		struct watchlist_match wm = {0};
		bool wmatched = false;
		char *why = trace ? reason : NULL;

		reason[0] = '\0';
		bool ok = match_conditions(r, ru, msg, now_ms, rank, &wm, &wmatched, why) &&
		          match_mode(ru, st, why) &&
		          rules_state_pass(ru, st, msg, now_ms, rank, why);
		if (trace) {
			void *nt = xgrow(res->t, &res->capt, res->nt + 1, sizeof(*res->t));
			if (nt == NULL)
				return -1;
			res->t = nt;
			struct rules_trace *t = &res->t[res->nt++];
			t->rule = ru->name;
			t->matched = ok;
			memcpy(t->reason, reason, sizeof(t->reason));
		}
		if (!ok)
			continue;
		if (deliver(r, ru, st, msg, &wm, wmatched, res) < 0)
			return -1;
		if (ru->stop)
			break;
	}
	return 0;
}

void rules_result_reset(struct rules_result *res)
{
	for (size_t i = 0; i < res->nd; i++) {
		free(res->d[i].topic);
		free(res->d[i].text);
		free(res->d[i].body);
	}
	res->nd = 0;
	res->nt = 0;
}

void rules_result_release(struct rules_result *res)
{
	rules_result_reset(res);
	free(res->d);
	free(res->t);
	memset(res, 0, sizeof(*res));
}
