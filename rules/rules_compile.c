/* Rule compilation: the `rules`, `watchlists` and `severity_order` sections of a config tree
 * into struct rules, every problem reported with its position and compiling going on past
 * it, so one `check` lists them all. */
#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "lib/suggest.h"
#include "rules/rules_int.h"

static const char *const default_order[] = {"low", "normal", "medium", "high", "critical"};

/* ---- small helpers ---------------------------------------------------------------- */

static void strlist_release(struct strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	free(l->joined);
	memset(l, 0, sizeof(*l));
}

static char *join(char *const *v, size_t n)
{
	struct buf b;
	buf_init(&b, 0);
	for (size_t i = 0; i < n; i++)
		if ((i && buf_puts(&b, ",") < 0) || buf_puts(&b, v[i]) < 0)
			break;
	char *s = buf_steal(&b);
	return s ? s : strdup("");
}

/* Column of the template text inside its scalar: quoted scalars start one further. */
static int text_col(const struct ynode *n)
{
	return n->column + (n->plain ? 0 : 1);
}

struct tmpl_report {
	const struct ynode *n;
	const char *key;
	struct cfg_errors *errs;
};

static void tmpl_report_one(void *arg, int col, const char *text)
{
	struct tmpl_report *rep = arg;
	cfg_errors_add(rep->errs, rep->n->file, rep->n->line,
	               text_col(rep->n) + (col > 0 ? col - 1 : 0), "'%s': %s", rep->key, text);
}

static struct tmpl *compile_tmpl(const struct ynode *n, const char *key, enum tmpl_ctx ctx,
                                 struct cfg_errors *errs)
{
	char err[200] = "";
	int col = 0;
	struct tmpl *t;

	if (n->type != YNODE_SCALAR) {
		ynode_error(errs, n, "'%s': expected a template string", key);
		return NULL;
	}
	t = tmpl_compile(n->value, ctx, err, sizeof(err), &col);
	if (t == NULL) {
		/* every bad field, not only the one tmpl_compile stopped at */
		struct tmpl_report rep = {n, key, errs};
		if (tmpl_check(n->value, ctx, tmpl_report_one, &rep) == 0)
			cfg_errors_add(errs, n->file, n->line,
			               text_col(n) + (col > 0 ? col - 1 : 0), "'%s': %s", key, err);
	}
	return t;
}

/* A list of scalars, a single scalar standing for a one-item list. */
struct items {
	struct ynode *const *v;
	size_t n;
	struct ynode *one;
};

static bool get_items(const struct ynode *n, const char *key, struct items *it,
                      struct cfg_errors *errs)
{
	it->one = (struct ynode *)n;
	if (n->type == YNODE_SCALAR) {
		it->v = &it->one;
		it->n = 1;
		return true;
	}
	if (n->type != YNODE_SEQ) {
		ynode_error(errs, n, "'%s': expected a list", key);
		return false;
	}
	if (n->n == 0) {
		ynode_error(errs, n, "'%s': empty list (leave the key out to match any)", key);
		return false;
	}
	for (size_t i = 0; i < n->n; i++) {
		if (n->items[i]->type != YNODE_SCALAR) {
			ynode_error(errs, n->items[i], "'%s': expected a list of single values",
			            key);
			return false;
		}
	}
	it->v = n->items;
	it->n = n->n;
	return true;
}

static int strlist_from(struct strlist *l, const struct items *it)
{
	l->v = calloc(it->n, sizeof(*l->v));
	if (l->v == NULL)
		return -1;
	for (size_t i = 0; i < it->n; i++) {
		if ((l->v[i] = strdup(it->v[i]->value)) == NULL)
			return -1;
		l->n++;
	}
	l->joined = join(l->v, l->n);
	return l->joined ? 0 : -1;
}

/* NULL if p is a valid fnmatch pattern, else what is wrong with it. */
static const char *glob_problem(const char *p)
{
	for (; *p; p++) {
		if (*p == '\\') {
			if (p[1] == '\0')
				return "trailing backslash";
			p++;
		} else if (*p == '[') {
			const char *q = p + 1;
			if (*q == '!' || *q == '^')
				q++;
			if (*q == ']')
				q++;
			while (*q && *q != ']') {
				if (q[0] == '[' && (q[1] == ':' || q[1] == '.' || q[1] == '=')) {
					const char *e = strstr(q + 2, q[1] == ':'   ? ":]"
					                              : q[1] == '.' ? ".]"
					                                            : "=]");
					if (e == NULL)
						return "unbalanced '['";
					q = e + 2;
					continue;
				}
				q++;
			}
			if (*q == '\0')
				return "unbalanced '['";
			p = q;
		}
	}
	return NULL;
}

/* The longest cooldown, visit or max_age: a year, like delivery.max_retry_age. Without a
 * cap, "106751991167d" parsed and now_ms + cooldown overflowed. */
#define RULE_DURATION_MAX (365LL * 86400000)

/* An optional duration of map[key], at most RULE_DURATION_MAX. 1 read, 0 absent, -1 bad
 * (reported). */
static int read_duration(const struct ynode *m, const char *key, int64_t *out,
                         struct cfg_errors *errs)
{
	int64_t v;
	int rc = ynode_duration(m, key, false, &v, errs);

	if (rc != 1)
		return rc;
	if (v > RULE_DURATION_MAX) {
		const struct ynode *n = ynode_get(m, key);
		ynode_error(errs, n, "'%s': must be at most 365d, found '%s'", key, n->value);
		return -1;
	}
	*out = v;
	return 1;
}

static void nomem(struct cfg_errors *errs, const struct ynode *n)
{
	ynode_error(errs, n, "out of memory");
}

/* ---- compile: severity_order and watchlists --------------------------------------- */

static int compile_order(struct rules *r, const struct ynode *root, struct cfg_errors *errs)
{
	const struct ynode *n = ynode_get(root, "severity_order");
	struct items it;

	if (n == NULL) {
		r->sev = calloc(5, sizeof(*r->sev));
		if (r->sev == NULL)
			return -1;
		for (size_t i = 0; i < 5; i++)
			if ((r->sev[r->nsev++] = strdup(default_order[i])) == NULL)
				return -1;
		return 0;
	}
	if (!get_items(n, "severity_order", &it, errs))
		return 0;
	r->sev = calloc(it.n, sizeof(*r->sev));
	if (r->sev == NULL)
		return -1;
	for (size_t i = 0; i < it.n; i++) {
		if (rules_severity_rank(r, it.v[i]->value) >= 0) {
			ynode_error(errs, it.v[i], "severity_order: '%s' is listed twice",
			            it.v[i]->value);
			continue;
		}
		if ((r->sev[r->nsev++] = strdup(it.v[i]->value)) == NULL)
			return -1;
	}
	return 0;
}

static void move_wl_errors(struct cfg_errors *we, const struct ynode *at, const char *wl,
                           struct cfg_errors *errs)
{
	for (size_t i = 0; i < we->n; i++) {
		const struct cfg_error *e = &we->v[i];
		if (e->line == 0)
			ynode_error(errs, at, "watchlist '%s': %s", wl, e->text);
		else
			cfg_errors_add(errs, e->file, e->line, e->column, "%s", e->text);
	}
	if (we->nomem)
		errs->nomem = true;
	cfg_errors_release(we);
}

/* Resolves a watchlist path against the config file's directory. Caller frees. */
static char *resolve_path(const char *cfgfile, const char *path)
{
	char *dup, *dir, *out = NULL;

	if (path[0] == '/' || cfgfile == NULL)
		return strdup(path);
	dup = strdup(cfgfile);
	if (dup == NULL)
		return NULL;
	dir = dirname(dup);
	if (asprintf(&out, "%s/%s", dir, path) < 0)
		out = NULL;
	free(dup);
	return out;
}

static int add_inline(struct watchlist *wl, const struct ynode *list, const char *name,
                      struct cfg_errors *errs)
{
	struct cfg_errors we = {0};
	struct items it;

	if (!get_items(list, "plates", &it, errs))
		return 0;
	for (size_t i = 0; i < it.n; i++)
		watchlist_add(wl, it.v[i]->value, it.v[i]->file, it.v[i]->line, text_col(it.v[i]),
		              &we);
	move_wl_errors(&we, list, name, errs);
	return 0;
}

static int compile_watchlists(struct rules *r, const struct ynode *root, struct cfg_errors *errs)
{
	static const char *const keys[] = {"file", "plates", "fuzzy", NULL};
	const struct ynode *sec = ynode_get(root, "watchlists");

	r->wls = watchlist_set_new();
	if (r->wls == NULL)
		return -1;
	if (sec == NULL || ynode_is_null(sec))
		return 0;
	if (!ynode_expect(sec, YNODE_MAP, "watchlists", errs))
		return 0;
	for (size_t i = 0; i < sec->n; i++) {
		const char *name = sec->keys[i]->value;
		const struct ynode *m = sec->items[i], *fn, *pn;
		const char *file = NULL;
		int64_t fuzzy = 0;
		struct watchlist *wl;

		if (strlen(name) > CFG_NAME_MAX) {
			ynode_error(errs, sec->keys[i],
			            "watchlist name '%s' is longer than %d bytes", name,
			            CFG_NAME_MAX);
			continue;
		}
		if (!ynode_expect(m, YNODE_MAP, name, errs) ||
		    ynode_check_keys(m, keys, name, errs))
			continue;
		if (ynode_int(m, "fuzzy", false, 0, WATCHLIST_FUZZY_MAX, &fuzzy, errs) < 0)
			continue;
		fn = ynode_get(m, "file");
		pn = ynode_get(m, "plates");
		if (fn == NULL && pn == NULL) {
			ynode_error(errs, m, "watchlist '%s' needs 'file' or 'plates'", name);
			continue;
		}
		if (fn && ynode_str(m, "file", false, &file, errs) < 0)
			continue;
		wl = watchlist_new(name, (int)fuzzy);
		if (wl == NULL)
			return -1;
		if (pn)
			add_inline(wl, pn, name, errs);
		if (file) {
			struct cfg_errors we = {0};
			char *path = resolve_path(root->file, file);
			if (path == NULL) {
				watchlist_free(wl);
				return -1;
			}
			watchlist_load_file(wl, path, &we);
			move_wl_errors(&we, fn, name, errs);
			free(path);
		}
		if (watchlist_build(wl) < 0) {
			watchlist_free(wl);
			return -1;
		}
		if (watchlist_set_add(r->wls, wl) < 0) {
			if (errno != EEXIST)
				return -1;
			ynode_error(errs, sec->keys[i], "duplicate watchlist '%s'", name);
		}
	}
	return 0;
}

/* ---- compile: one rule ------------------------------------------------------------ */

static const struct tz *get_tz(struct rules *r, const struct ynode *n, struct cfg_errors *errs)
{
	char err[200];
	struct tz *tz, **ntzs;

	for (size_t i = 0; i < r->ntz; i++)
		if (strcmp(tz_name(r->tzs[i]), n->value) == 0)
			return r->tzs[i];
	tz = tz_load(n->value, NULL, err, sizeof(err));
	if (tz == NULL) {
		ynode_error(errs, n, "%s", err);
		return NULL;
	}
	ntzs = realloc(r->tzs, (r->ntz + 1) * sizeof(*ntzs));
	if (ntzs == NULL) {
		tz_free(tz);
		nomem(errs, n);
		return NULL;
	}
	r->tzs = ntzs;
	r->tzs[r->ntz++] = tz;
	return tz;
}

static void compile_window(struct rules *r, struct sched_window *w, const struct ynode *m,
                           struct cfg_errors *errs)
{
	static const char *const keys[] = {"days", "from", "to", "timezone", NULL};
	const struct ynode *n;
	struct items it;

	w->days = 0x7f;
	w->from_min = 0;
	w->to_min = 1440;
	w->tz = NULL;
	if (!ynode_expect(m, YNODE_MAP, "schedule", errs) ||
	    ynode_check_keys(m, keys, "schedule", errs))
		return;
	if ((n = ynode_get(m, "days")) && get_items(n, "days", &it, errs)) {
		w->days = 0;
		for (size_t i = 0; i < it.n; i++) {
			int d = sched_parse_day(it.v[i]->value);
			if (d < 0)
				ynode_error(
				    errs, it.v[i],
				    "unknown day '%s' (use mon, tue, wed, thu, fri, sat, sun)",
				    it.v[i]->value);
			else
				w->days |= (uint8_t)(1u << d);
		}
	}
	for (int k = 0; k < 2; k++) {
		const char *key = k == 0 ? "from" : "to";
		const char *s;
		int *dst = k == 0 ? &w->from_min : &w->to_min;
		if (ynode_str(m, key, false, &s, errs) == 1 && sched_parse_hhmm(s, k == 1, dst) < 0)
			ynode_error(errs, ynode_get(m, key), "'%s': bad time '%s' (use HH:MM, %s)",
			            key, s, k == 0 ? "00:00 to 23:59" : "00:00 to 24:00");
	}
	if ((n = ynode_get(m, "timezone")) != NULL) {
		if (n->type != YNODE_SCALAR)
			ynode_error(errs, n, "'timezone': expected a single value");
		else
			w->tz = get_tz(r, n, errs);
	}
}

static void compile_schedule(struct rules *r, struct rule *ru, const struct ynode *n,
                             struct cfg_errors *errs)
{
	size_t cnt = n->type == YNODE_SEQ ? n->n : 1;

	if (n->type == YNODE_SEQ && n->n == 0) {
		ynode_error(errs, n, "'schedule': empty list");
		return;
	}
	ru->win = calloc(cnt, sizeof(*ru->win));
	if (ru->win == NULL) {
		nomem(errs, n);
		return;
	}
	ru->nwin = cnt;
	for (size_t i = 0; i < cnt; i++)
		compile_window(r, &ru->win[i], n->type == YNODE_SEQ ? n->items[i] : n, errs);
}

/* "motion, intrusion, ...": every flag name, for an error that has no close one. */
static const char *flag_list(void)
{
	static char list[1024];
	size_t o = 0;

	if (list[0] != '\0')
		return list;
	for (size_t i = 0; i < msg_flag_count && o < sizeof(list); i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%s", i ? ", " : "",
		                      msg_flag_names[i]);
	return list;
}

static uint64_t compile_flags(const struct ynode *n, const char *key, char **joined,
                              struct cfg_errors *errs)
{
	struct items it;
	uint64_t mask = 0;

	if (!get_items(n, key, &it, errs))
		return 0;
	for (size_t i = 0; i < it.n; i++) {
		const char *f = it.v[i]->value;
		int idx = msg_flag_index(f);
		if (idx >= 0) {
			mask |= UINT64_C(1) << idx;
			continue;
		}
		if (strncmp(f, "has_", 4) == 0 && msg_flag_index(f + 4) >= 0) {
			ynode_error(errs, it.v[i],
			            "unknown flag '%s' (write it without has_: '%s')", f, f + 4);
			continue;
		}
		const char *best = suggest_pick(f, msg_flag_names, msg_flag_count);
		if (best)
			ynode_error(errs, it.v[i], "unknown flag '%s' (did you mean '%s'?)", f,
			            best);
		else
			ynode_error(errs, it.v[i], "unknown flag '%s' (flags: %s)", f, flag_list());
	}
	if (joined) {
		struct buf b;
		buf_init(&b, 0);
		for (size_t i = 0; i < it.n; i++)
			buf_printf(&b, "%s%s", i ? "," : "", it.v[i]->value);
		*joined = buf_steal(&b);
	}
	return mask;
}

/* `kind` and `phase`: which messages. */
static void compile_when_kind(struct rule *ru, const struct ynode *w, struct cfg_errors *errs)
{
	const struct ynode *n;
	struct items it;
	const char *s;

	if (ynode_str(w, "kind", false, &s, errs) == 1) {
		if (strcmp(s, "event") == 0)
			ru->kind = MSG_EVENT;
		else if (strcmp(s, "plate") == 0)
			ru->kind = MSG_PLATE;
		else if (strcmp(s, "any") != 0)
			ynode_error(errs, ynode_get(w, "kind"),
			            "'kind': expected event, plate or any, found '%s'", s);
	}
	if ((n = ynode_get(w, "phase")) && get_items(n, "phase", &it, errs)) {
		ru->phases = 0;
		struct buf b;
		buf_init(&b, 0);
		for (size_t i = 0; i < it.n; i++) {
			const char *p = it.v[i]->value;
			int ph = strcmp(p, "new") == 0        ? MSG_PHASE_NEW
			         : strcmp(p, "update") == 0   ? MSG_PHASE_UPDATE
			         : strcmp(p, "complete") == 0 ? MSG_PHASE_COMPLETE
			                                      : -1;
			if (ph < 0)
				ynode_error(errs, it.v[i],
				            "unknown phase '%s' (use new, update, complete)", p);
			else
				ru->phases |= 1u << ph;
			buf_printf(&b, "%s%s", i ? "," : "", p);
		}
		ru->phases_joined = buf_steal(&b);
	}
}

/* `zones` (each pattern classified so that most skip fnmatch) and `locations`: where. -1
 * when out of memory (reported). */
static int compile_when_place(struct rule *ru, const struct ynode *w, struct cfg_errors *errs)
{
	const struct ynode *n;
	struct items it;

	if ((n = ynode_get(w, "zones")) && get_items(n, "zones", &it, errs)) {
		for (size_t i = 0; i < it.n; i++) {
			const char *why = glob_problem(it.v[i]->value);
			if (it.v[i]->value[0] == '\0')
				why = "empty pattern";
			if (why)
				ynode_error(errs, it.v[i], "zones: bad pattern '%s': %s",
				            it.v[i]->value, why);
		}
		if (strlist_from(&ru->zones, &it) < 0 || (ru->zkind = calloc(it.n, 1)) == NULL ||
		    (ru->zlen = calloc(it.n, sizeof(*ru->zlen))) == NULL) {
			nomem(errs, n);
			return -1;
		}
		for (size_t i = 0; i < ru->zones.n; i++) {
			const char *p = ru->zones.v[i];
			size_t len = strlen(p);
			size_t meta = strcspn(p, "*?[\\");
			ru->zkind[i] = Z_GLOB;
			ru->zlen[i] = len;
			if (meta == len) {
				ru->zkind[i] = Z_LITERAL;
			} else if (meta == len - 1 && p[meta] == '*') {
				ru->zkind[i] = Z_PREFIX;
				ru->zlen[i] = len - 1;
			} else if (meta == 0 && p[0] == '*' && strcspn(p + 1, "*?[\\") == len - 1) {
				ru->zkind[i] = Z_SUFFIX;
				ru->zlen[i] = len - 1;
			}
		}
	}
	if ((n = ynode_get(w, "locations")) && get_items(n, "locations", &it, errs))
		if (strlist_from(&ru->locations, &it) < 0)
			nomem(errs, n);
	return 0;
}

/* `flags_any`, `flags_all`, `flags_none`, `severity` and `min_severity`: what the message
 * says about itself. */
static void compile_when_flags(struct rules *r, struct rule *ru, const struct ynode *w,
                               struct cfg_errors *errs)
{
	const struct ynode *n;
	struct items it;
	const char *s;

	if ((n = ynode_get(w, "flags_any")))
		ru->flags_any = compile_flags(n, "flags_any", &ru->flags_any_joined, errs);
	if ((n = ynode_get(w, "flags_all")))
		ru->flags_all = compile_flags(n, "flags_all", NULL, errs);
	if ((n = ynode_get(w, "flags_none")))
		ru->flags_none = compile_flags(n, "flags_none", NULL, errs);
	if ((n = ynode_get(w, "severity")) && get_items(n, "severity", &it, errs))
		if (strlist_from(&ru->severities, &it) < 0)
			nomem(errs, n);
	if (ynode_str(w, "min_severity", false, &s, errs) == 1) {
		ru->min_sev = rules_severity_rank(r, s);
		if (ru->min_sev < 0) {
			char *order = join(r->sev, r->nsev);
			ynode_error(errs, ynode_get(w, "min_severity"),
			            "min_severity '%s' is not in severity_order [%s]", s,
			            order ? order : "");
			free(order);
		}
	}
}

/* `countries`, `watchlists` and `plates`: plate reads only, so they make the rule a plate
 * rule. -1 when out of memory (reported). */
/* "unknown watchlist 'stolne' (did you mean 'stolen'?)", the names the section map
 * declares being the candidates. */
static void unknown_name(struct cfg_errors *errs, const struct ynode *at, const char *what,
                         const struct ynode *sec)
{
	const char *near = NULL;
	int bestd = SUGGEST_FAR;

	for (size_t i = 0; sec != NULL && sec->type == YNODE_MAP && i < sec->n; i++) {
		int d = suggest_distance(at->value, sec->keys[i]->value, false);
		if (d < bestd && suggest_close(at->value, d)) {
			bestd = d;
			near = sec->keys[i]->value;
		}
	}
	if (near != NULL)
		ynode_error(errs, at, "unknown %s '%s' (did you mean '%s'?)", what, at->value,
		            near);
	else
		ynode_error(errs, at, "unknown %s '%s'", what, at->value);
}

static int compile_when_plates(struct rules *r, struct rule *ru, const struct ynode *root,
                               const struct ynode *w, struct cfg_errors *errs)
{
	const struct ynode *n;
	struct items it;

	if ((n = ynode_get(w, "countries")) && get_items(n, "countries", &it, errs)) {
		for (size_t i = 0; i < it.n; i++) {
			char *c = it.v[i]->value;
			bool ok = strlen(c) == 3;
			for (size_t j = 0; ok && j < 3; j++)
				ok = isalpha((unsigned char)c[j]);
			if (!ok)
				ynode_error(errs, it.v[i],
				            "countries: '%s' is not an ISO 3166 alpha-3 code", c);
		}
		if (strlist_from(&ru->countries, &it) < 0)
			nomem(errs, n);
		for (size_t i = 0; i < ru->countries.n; i++)
			for (char *c = ru->countries.v[i]; *c; c++)
				*c = (char)toupper((unsigned char)*c);
		for (char *c = ru->countries.joined; c && *c; c++)
			*c = (char)toupper((unsigned char)*c);
	}
	const struct ynode *sec = ynode_get(root, "watchlists");
	if ((n = ynode_get(w, "watchlists")) && get_items(n, "watchlists", &it, errs)) {
		ru->wls = calloc(it.n + 1, sizeof(*ru->wls));
		if (ru->wls == NULL) {
			nomem(errs, n);
			return -1;
		}
		for (size_t i = 0; i < it.n; i++) {
			struct watchlist *wl = watchlist_set_get(r->wls, it.v[i]->value);
			if (wl == NULL && ynode_get(sec, it.v[i]->value) != NULL)
				continue; /* declared but broken: already reported */
			if (wl == NULL)
				unknown_name(errs, it.v[i], "watchlist", sec);
			else
				ru->wls[ru->nwl++] = wl;
		}
	}
	if ((n = ynode_get(w, "plates"))) {
		struct watchlist **nw = realloc(ru->wls, (ru->nwl + 1) * sizeof(*nw));
		if (nw == NULL) {
			nomem(errs, n);
			return -1;
		}
		ru->wls = nw;
		ru->inline_wl = watchlist_new(ru->name ? ru->name : "plates", 0);
		if (ru->inline_wl == NULL) {
			nomem(errs, n);
			return -1;
		}
		add_inline(ru->inline_wl, n, ru->name ? ru->name : "plates", errs);
		if (watchlist_build(ru->inline_wl) < 0)
			nomem(errs, n);
		ru->wls[ru->nwl++] = ru->inline_wl;
	}
	if (ynode_get(w, "watchlists") || ynode_get(w, "plates") || ynode_get(w, "countries")) {
		const struct ynode *k = ynode_get(w, "kind");
		if (ru->kind == MSG_EVENT)
			ynode_error(errs, k,
			            "kind: event cannot use watchlists, plates or countries");
		ru->kind = MSG_PLATE;
	}
	return 0;
}

/* when.modes: names of control.modes, which must be there. */
static void compile_when_modes(struct rule *ru, const struct ynode *root, const struct ynode *w,
                               struct cfg_errors *errs)
{
	const struct ynode *n = ynode_get(w, "modes");
	const struct ynode *known = ynode_get(ynode_get(root, "control"), "modes");
	struct items it;

	if (n == NULL || !get_items(n, "modes", &it, errs))
		return;
	if (known == NULL || known->type != YNODE_SEQ) {
		ynode_error(errs, ynode_key_of(w, n), "'modes' needs control.modes");
	} else {
		for (size_t i = 0; i < it.n; i++) {
			bool found = false;
			for (size_t j = 0; j < known->n; j++)
				found =
				    found || (known->items[j]->type == YNODE_SCALAR &&
				              strcmp(known->items[j]->value, it.v[i]->value) == 0);
			if (!found)
				ynode_error(errs, it.v[i],
				            "modes: unknown mode '%s' (not in control.modes)",
				            it.v[i]->value);
		}
	}
	if (strlist_from(&ru->modes, &it) < 0)
		nomem(errs, n);
}

/* A rule's `when`, group by group in the order errors are reported; out of memory stops
 * at the group it happened in. */
static void compile_when(struct rules *r, struct rule *ru, const struct ynode *root,
                         const struct ynode *w, struct cfg_errors *errs)
{
	static const char *const keys[] = {"kind",         "phase",     "zones",      "locations",
	                                   "flags_any",    "flags_all", "flags_none", "severity",
	                                   "min_severity", "schedule",  "watchlists", "countries",
	                                   "plates",       "max_age",   "modes",      NULL};
	const struct ynode *n;

	if (!ynode_expect(w, YNODE_MAP, "when", errs))
		return;
	ynode_check_keys(w, keys, "when", errs);
	compile_when_modes(ru, root, w, errs);
	compile_when_kind(ru, w, errs);
	if (compile_when_place(ru, w, errs) < 0)
		return;
	compile_when_flags(r, ru, w, errs);
	if ((n = ynode_get(w, "schedule")))
		compile_schedule(r, ru, n, errs);
	if (compile_when_plates(r, ru, root, w, errs) < 0)
		return;
	if (read_duration(w, "max_age", &ru->max_age, errs) == 1)
		ru->has_max_age = true;
}

static const struct rules_target_def *find_target(const struct rules_target_def *t, size_t n,
                                                  const char *kind, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].kind, kind) == 0 && strcmp(t[i].name, name) == 0)
			return &t[i];
	return NULL;
}

/* "unknown webhook 'slak' (did you mean 'slack'?)", or the configured names when none is
 * close, or that there are none. */
static void unknown_target(struct cfg_errors *errs, const struct ynode *at, const char *kind,
                           const char *name, const struct rules_target_def *defs, size_t ndefs)
{
	const char *what = strcmp(kind, "mqtt") == 0 ? "mqtt broker" : "webhook";
	const char *near = NULL;
	int bestd = SUGGEST_FAR;
	struct buf list;

	buf_init(&list, 4096);
	for (size_t i = 0; i < ndefs; i++) {
		if (strcmp(defs[i].kind, kind) != 0)
			continue;
		int d = suggest_distance(name, defs[i].name, false);
		if (d < bestd && suggest_close(name, d)) {
			bestd = d;
			near = defs[i].name;
		}
		buf_printf(&list, "%s'%s'", list.len ? ", " : "", defs[i].name);
	}
	if (near != NULL)
		ynode_error(errs, at, "unknown %s '%s' (did you mean '%s'?)", what, name, near);
	else if (list.len > 0)
		ynode_error(errs, at, "unknown %s '%s' (configured: %s)", what, name, list.data);
	else
		ynode_error(errs, at, "unknown %s '%s' (none is configured)", what, name);
	buf_release(&list);
}

#define ONE_KIND "a target names exactly one of 'mqtt', 'webhook', 'homeassistant' or 'perspective'"

/* `- perspective: auto|NAME|ID` with hold and max_delay: a call-up on the video wall. */
static void compile_perspective(struct rule_target *rt, const struct ynode *root,
                                const struct ynode *m, struct cfg_errors *errs)
{
	static const char *const only[] = {"topic", "qos", "retain", "text", "body"};
	const struct ynode *n;
	const char *name;

	rt->kind = "perspective";
	rt->perspective = true;
	rt->max_delay = RULES_MAX_DELAY_DEFAULT_MS;
	if (ynode_get(root, "control") == NULL)
		ynode_error(errs, ynode_key_of(m, ynode_get(m, "perspective")),
		            "a perspective target needs a 'control' section");
	for (size_t i = 0; i < sizeof(only) / sizeof(only[0]); i++)
		if ((n = ynode_get(m, only[i])))
			ynode_error(errs, ynode_key_of(m, n),
			            "'%s' does not apply to perspective targets", only[i]);
	if (ynode_get(m, "mqtt") || ynode_get(m, "webhook") || ynode_get(m, "homeassistant"))
		ynode_error(errs, m, ONE_KIND);
	if (ynode_str(m, "perspective", true, &name, errs) != 1)
		return;
	if (name[0] == '\0')
		ynode_error(errs, ynode_get(m, "perspective"),
		            "'perspective': expected auto, a perspective name or id");
	if ((rt->name = strdup(name)) == NULL)
		nomem(errs, m);
	read_duration(m, "hold", &rt->hold, errs);
	if (read_duration(m, "max_delay", &rt->max_delay, errs) == 1 && rt->max_delay <= 0)
		ynode_error(errs, ynode_get(m, "max_delay"), "'max_delay': must be more than 0s");
}

static void compile_target(struct rule_target *rt, const struct ynode *root, const struct ynode *m,
                           const struct rules_target_def *defs, size_t ndefs,
                           struct cfg_errors *errs)
{
	static const char *const keys[] = {"mqtt",        "webhook", "homeassistant", "topic",
	                                   "qos",         "retain",  "text",          "body",
	                                   "perspective", "hold",    "max_delay",     NULL};
	const struct ynode *mq, *wh, *ha, *n;
	const struct rules_target_def *def;
	const char *name;
	int64_t qos;

	if (!ynode_expect(m, YNODE_MAP, "to", errs))
		return;
	ynode_check_keys(m, keys, "to", errs);
	if (ynode_get(m, "perspective") != NULL) {
		compile_perspective(rt, root, m, errs);
		return;
	}
	for (size_t i = 0; i < 2; i++) {
		const char *k = i == 0 ? "hold" : "max_delay";
		if ((n = ynode_get(m, k)))
			ynode_error(errs, ynode_key_of(m, n),
			            "'%s' applies to perspective targets only", k);
	}
	mq = ynode_get(m, "mqtt");
	wh = ynode_get(m, "webhook");
	ha = ynode_get(m, "homeassistant");
	if ((mq != NULL) + (wh != NULL) + (ha != NULL) != 1) {
		ynode_error(errs, m, ONE_KIND);
		return;
	}
	rt->mqtt = mq != NULL;
	rt->kind = rt->mqtt ? "mqtt" : wh ? "webhook" : "homeassistant";
	if (ynode_str(m, rt->kind, true, &name, errs) != 1)
		return;
	def = find_target(defs, ndefs, rt->kind, name);
	if (def == NULL) {
		if (ha)
			ynode_error(
			    errs, ha, "unknown mqtt broker '%s'%s", name,
			    find_target(defs, ndefs, "mqtt", name)
			        ? " with homeassistant enabled (add 'homeassistant: true' to it)"
			        : "");
		else
			unknown_target(errs, rt->mqtt ? mq : wh, rt->kind, name, defs, ndefs);
		return;
	}
	if ((rt->name = strdup(name)) == NULL) {
		nomem(errs, m);
		return;
	}
	if (ha) {
		/* the entity's topics are Home Assistant's contract, not the user's */
		static const char *const none[] = {"topic", "qos", "retain", "text", "body"};
		for (size_t i = 0; i < 5; i++)
			if ((n = ynode_get(m, none[i])))
				ynode_error(errs, ynode_key_of(m, n),
				            "'%s' does not apply to homeassistant targets",
				            none[i]);
		rt->qos = def->qos;
		rt->prefix = def->topic_prefix ? strdup(def->topic_prefix) : NULL;
		return;
	}
	if (!rt->mqtt) {
		static const char *const mq_only[] = {"topic", "qos", "retain"};
		for (size_t i = 0; i < 3; i++)
			if ((n = ynode_get(m, mq_only[i])))
				ynode_error(errs, ynode_key_of(m, n),
				            "'%s' applies to mqtt targets only", mq_only[i]);
	} else {
		if ((n = ynode_get(m, "text")))
			ynode_error(errs, ynode_key_of(m, n),
			            "'text' applies to webhook targets only");
		const char *prefix = def->topic_prefix && def->topic_prefix[0]
		                         ? def->topic_prefix
		                         : CFG_MQTT_TOPIC_PREFIX;
		rt->qos = def->qos;
		rt->retain = def->retain;
		if (ynode_int(m, "qos", false, 0, 2, &qos, errs) == 1)
			rt->qos = (int)qos;
		ynode_bool(m, "retain", false, &rt->retain, errs);
		if ((n = ynode_get(m, "topic"))) {
			rt->topic = compile_tmpl(n, "topic", TMPL_TOPIC, errs);
		} else {
			char err[200] = "out of memory", *ev = NULL, *pl = NULL;
			int col;
			/* built, not printed into a fixed buffer: a long prefix is never cut */
			if (asprintf(&ev, "%s/event/{{zone.name}}", prefix) < 0)
				ev = NULL;
			if (asprintf(&pl, "%s/plate/{{zone.name}}", prefix) < 0)
				pl = NULL;
			if (ev != NULL && pl != NULL) {
				rt->topic_event =
				    tmpl_compile(ev, TMPL_TOPIC, err, sizeof(err), &col);
				rt->topic_plate =
				    tmpl_compile(pl, TMPL_TOPIC, err, sizeof(err), &col);
			}
			if (rt->topic_event == NULL || rt->topic_plate == NULL)
				ynode_error(errs, m, "default topic '%s': %s", pl ? pl : prefix,
				            err);
			free(ev);
			free(pl);
		}
	}
	if ((n = ynode_get(m, "text")) && !rt->mqtt)
		rt->text = compile_tmpl(n, "text", def->slack ? TMPL_SLACK : TMPL_TEXT, errs);
	if ((n = ynode_get(m, "body")))
		rt->body = compile_tmpl(n, "body", TMPL_JSON, errs);
}

static void compile_rule(struct rules *r, struct rule *ru, const struct ynode *root,
                         const struct ynode *m, const struct rules_target_def *defs, size_t ndefs,
                         struct cfg_errors *errs)
{
	static const char *const keys[] = {"name",  "when", "cooldown", "cooldown_key",
	                                   "visit", "to",   "stop",     NULL};
	const struct ynode *n;
	const char *name;

	ru->kind = -1;
	ru->phases = 7;
	ru->min_sev = -1;
	if (!ynode_expect(m, YNODE_MAP, "rules", errs))
		return;
	ynode_check_keys(m, keys, "rule", errs);
	if (ynode_str(m, "name", true, &name, errs) == 1) {
		if (name[0] == '\0')
			ynode_error(errs, ynode_get(m, "name"), "'name': must not be empty");
		else if (strlen(name) > CFG_NAME_MAX)
			ynode_error(errs, ynode_get(m, "name"), "'name': longer than %d bytes",
			            CFG_NAME_MAX);
		for (size_t i = 0; r->v && i < r->n; i++) {
			if (r->v[i].name && strcmp(r->v[i].name, name) == 0) {
				ynode_error(errs, ynode_get(m, "name"), "duplicate rule name '%s'",
				            name);
				break;
			}
		}
		if ((ru->name = strdup(name)) == NULL)
			nomem(errs, m);
	}
	if ((n = ynode_get(m, "when")) && !ynode_is_null(n))
		compile_when(r, ru, root, n, errs);
	read_duration(m, "cooldown", &ru->cooldown, errs);
	if ((n = ynode_get(m, "cooldown_key"))) {
		ru->cooldown_key = compile_tmpl(n, "cooldown_key", TMPL_TEXT, errs);
		if (ynode_get(m, "cooldown") == NULL)
			ynode_error(errs, ynode_key_of(m, n), "'cooldown_key' needs 'cooldown'");
	}
	if (read_duration(m, "visit", &ru->visit, errs) == 1 && ru->kind == MSG_EVENT)
		ynode_error(errs, ynode_key_of(m, ynode_get(m, "visit")),
		            "'visit' applies to plate rules only (kind: plate)");
	ynode_bool(m, "stop", false, &ru->stop, errs);
	n = ynode_get(m, "to");
	if (n == NULL) {
		ynode_error(errs, m, "missing required key 'to'");
	} else if (n->type == YNODE_MAP) {
		/* a single target written without the list */
		ru->to = calloc(1, sizeof(*ru->to));
		if (ru->to == NULL) {
			nomem(errs, n);
			return;
		}
		ru->nto = 1;
		compile_target(&ru->to[0], root, n, defs, ndefs, errs);
	} else if (n->type != YNODE_SEQ || n->n == 0) {
		ynode_error(errs, n, "'to': expected a non-empty list of targets");
	} else {
		ru->to = calloc(n->n, sizeof(*ru->to));
		if (ru->to == NULL) {
			nomem(errs, n);
			return;
		}
		ru->nto = n->n;
		for (size_t i = 0; i < n->n; i++)
			compile_target(&ru->to[i], root, n->items[i], defs, ndefs, errs);
	}
}

static void rule_release(struct rule *ru)
{
	free(ru->name);
	free(ru->phases_joined);
	strlist_release(&ru->zones);
	free(ru->zkind);
	free(ru->zlen);
	strlist_release(&ru->locations);
	strlist_release(&ru->severities);
	strlist_release(&ru->countries);
	strlist_release(&ru->modes);
	free(ru->flags_any_joined);
	free(ru->win);
	free(ru->wls);
	watchlist_free(ru->inline_wl);
	tmpl_free(ru->cooldown_key);
	for (size_t i = 0; i < ru->nto; i++) {
		struct rule_target *t = &ru->to[i];
		free(t->name);
		free(t->prefix);
		tmpl_free(t->topic);
		tmpl_free(t->topic_event);
		tmpl_free(t->topic_plate);
		tmpl_free(t->text);
		tmpl_free(t->body);
	}
	free(ru->to);
}

void rules_free(struct rules *r)
{
	if (r == NULL)
		return;
	for (size_t i = 0; i < r->n; i++)
		rule_release(&r->v[i]);
	free(r->v);
	for (size_t i = 0; i < r->nsev; i++)
		free(r->sev[i]);
	free(r->sev);
	watchlist_set_free(r->wls);
	for (size_t i = 0; i < r->ntz; i++)
		tz_free(r->tzs[i]);
	free(r->tzs);
	free(r);
}

struct rules *rules_compile(const struct ynode *root, const struct rules_target_def *targets,
                            size_t ntargets, struct cfg_errors *errs)
{
	struct rules *r;
	const struct ynode *list;
	size_t before = errs->n;

	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto out_nomem;
	if (compile_order(r, root, errs) < 0 || compile_watchlists(r, root, errs) < 0)
		goto out_nomem;
	list = ynode_get(root, "rules");
	if (list && !ynode_is_null(list) && ynode_expect(list, YNODE_SEQ, "rules", errs)) {
		r->v = calloc(list->n ? list->n : 1, sizeof(*r->v));
		if (r->v == NULL)
			goto out_nomem;
		for (size_t i = 0; i < list->n; i++) {
			compile_rule(r, &r->v[i], root, list->items[i], targets, ntargets, errs);
			r->n++;
		}
	}
	if (cfg_errors_since(errs, before))
		goto out_free;
	return r;
out_nomem:
	ynode_error(errs, root, "out of memory compiling rules");
out_free:
	rules_free(r);
	return NULL;
}

size_t rules_count(const struct rules *r)
{
	return r ? r->n : 0;
}

const char *rules_name_with_target(const struct rules *r, size_t i, const char *kind,
                                   const char *target)
{
	if (r == NULL || i >= r->n)
		return NULL;
	for (size_t j = 0; j < r->v[i].nto; j++)
		if (strcmp(r->v[i].to[j].kind, kind) == 0 &&
		    strcmp(r->v[i].to[j].name, target) == 0)
			return r->v[i].name;
	return NULL;
}

bool rules_watchlists_changed(const struct rules *r)
{
	return r && r->wls && watchlist_set_changed(r->wls);
}
