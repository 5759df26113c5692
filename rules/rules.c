/* Rule compilation (YAML tree -> struct rule, every error with its position) and evaluation
 * (first failing condition as the reason, cooldown with escalation, plate visits). Matching
 * is pure; the only mutable state is struct rules_state, keyed by rule name, which saves its
 * changed entries as text for the state database and loads them back. */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <libgen.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "lib/util.h"
#include "rules/rules.h"
#include "rules/schedule.h"
#include "rules/template.h"
#include "rules/watchlist.h"

#define REASON_MAX sizeof(((struct rules_trace *)0)->reason)

struct strlist {
	char **v;
	size_t n;
	char *joined; /* "a,b,c" for reasons */
};

struct rule_target {
	const char *kind; /* static "mqtt" | "webhook" */
	bool mqtt;
	char *name;
	struct tmpl *topic;                     /* explicit topic, or NULL */
	struct tmpl *topic_event, *topic_plate; /* the default topics */
	int qos;
	bool retain;
	struct tmpl *text, *body;
};

struct rule {
	char *name;
	int kind;        /* -1 any, else enum msg_kind */
	unsigned phases; /* bit per enum msg_phase */
	char *phases_joined;
	struct strlist zones, locations, severities, countries;
	unsigned char *zkind; /* per zone pattern: enum zkind */
	size_t *zlen;         /* literal part's length */
	uint64_t flags_any, flags_all, flags_none;
	char *flags_any_joined;
	int min_sev; /* rank in severity_order, -1 when unset */
	struct sched_window *win;
	size_t nwin;
	struct watchlist **wls; /* borrowed from rules.wls, plus inline_wl last */
	size_t nwl;
	struct watchlist *inline_wl; /* owned: the rule's `plates` */
	bool has_max_age;
	int64_t max_age;
	int64_t cooldown; /* 0: none */
	struct tmpl *cooldown_key;
	int64_t visit; /* 0: none */
	struct rule_target *to;
	size_t nto;
	bool stop;
};

struct rules {
	struct rule *v;
	size_t n;
	char **sev;
	size_t nsev;
	struct watchlist_set *wls;
	struct tz **tzs;
	size_t ntz;
};

/* Most zone patterns are a name, "Prefix*" or "*suffix": those skip fnmatch. */
enum zkind { Z_LITERAL, Z_PREFIX, Z_SUFFIX, Z_GLOB };

static const char *const default_order[] = {"low", "normal", "medium", "high", "critical"};

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

/* "250ms", "45s", "3m", "2m30s", "1h5m", "2d". */
static void fmt_dur(int64_t ms, char *out, size_t outsz)
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

static int edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[64];

	if (la >= 63 || lb >= 63)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int diag = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int up = row[j];
			int best = diag + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* Column of the template text inside its scalar: quoted scalars start one further. */
static int text_col(const struct ynode *n)
{
	return n->column + (n->plain ? 0 : 1);
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
	if (t == NULL)
		cfg_errors_add(errs, n->file, n->line, text_col(n) + (col > 0 ? col - 1 : 0),
		               "'%s': %s", key, err);
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

static int sev_rank(const struct rules *r, const char *s)
{
	for (size_t i = 0; i < r->nsev; i++)
		if (strcmp(r->sev[i], s) == 0)
			return (int)i;
	return -1;
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

int rules_severity_rank(const struct rules *r, const char *severity)
{
	return sev_rank(r, severity);
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
		if (sev_rank(r, it.v[i]->value) >= 0) {
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
		const char *best = NULL;
		int bestd = 3;
		for (size_t j = 0; j < msg_flag_count; j++) {
			int d = edit_distance(f, msg_flag_names[j]);
			if (d < bestd) {
				bestd = d;
				best = msg_flag_names[j];
			}
		}
		if (best)
			ynode_error(errs, it.v[i], "unknown flag '%s' (did you mean '%s'?)", f,
			            best);
		else
			ynode_error(errs, it.v[i], "unknown flag '%s'", f);
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

static void compile_when(struct rules *r, struct rule *ru, const struct ynode *root,
                         const struct ynode *w, struct cfg_errors *errs)
{
	static const char *const keys[] = {"kind",         "phase",     "zones",      "locations",
	                                   "flags_any",    "flags_all", "flags_none", "severity",
	                                   "min_severity", "schedule",  "watchlists", "countries",
	                                   "plates",       "max_age",   NULL};
	const struct ynode *n;
	struct items it;
	const char *s;

	if (!ynode_expect(w, YNODE_MAP, "when", errs))
		return;
	ynode_check_keys(w, keys, "when", errs);
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
			return;
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
		ru->min_sev = sev_rank(r, s);
		if (ru->min_sev < 0) {
			char *order = join(r->sev, r->nsev);
			ynode_error(errs, ynode_get(w, "min_severity"),
			            "min_severity '%s' is not in severity_order [%s]", s,
			            order ? order : "");
			free(order);
		}
	}
	if ((n = ynode_get(w, "schedule")))
		compile_schedule(r, ru, n, errs);
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
			return;
		}
		for (size_t i = 0; i < it.n; i++) {
			struct watchlist *wl = watchlist_set_get(r->wls, it.v[i]->value);
			if (wl == NULL && ynode_get(sec, it.v[i]->value) != NULL)
				continue; /* declared but broken: already reported */
			if (wl == NULL)
				ynode_error(errs, it.v[i], "unknown watchlist '%s'",
				            it.v[i]->value);
			else
				ru->wls[ru->nwl++] = wl;
		}
	}
	if ((n = ynode_get(w, "plates"))) {
		struct watchlist **nw = realloc(ru->wls, (ru->nwl + 1) * sizeof(*nw));
		if (nw == NULL) {
			nomem(errs, n);
			return;
		}
		ru->wls = nw;
		ru->inline_wl = watchlist_new(ru->name ? ru->name : "plates", 0);
		if (ru->inline_wl == NULL) {
			nomem(errs, n);
			return;
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

static void compile_target(struct rule_target *rt, const struct ynode *m,
                           const struct rules_target_def *defs, size_t ndefs,
                           struct cfg_errors *errs)
{
	static const char *const keys[] = {"mqtt",   "webhook", "topic", "qos",
	                                   "retain", "text",    "body",  NULL};
	const struct ynode *mq, *wh, *n;
	const struct rules_target_def *def;
	const char *name;
	int64_t qos;

	if (!ynode_expect(m, YNODE_MAP, "to", errs))
		return;
	ynode_check_keys(m, keys, "to", errs);
	mq = ynode_get(m, "mqtt");
	wh = ynode_get(m, "webhook");
	if ((mq == NULL) == (wh == NULL)) {
		ynode_error(errs, m, "a target names exactly one of 'mqtt' or 'webhook'");
		return;
	}
	rt->mqtt = mq != NULL;
	rt->kind = rt->mqtt ? "mqtt" : "webhook";
	if (ynode_str(m, rt->kind, true, &name, errs) != 1)
		return;
	def = find_target(defs, ndefs, rt->kind, name);
	if (def == NULL) {
		ynode_error(errs, rt->mqtt ? mq : wh, "unknown %s '%s'",
		            rt->mqtt ? "mqtt broker" : "webhook", name);
		return;
	}
	if ((rt->name = strdup(name)) == NULL) {
		nomem(errs, m);
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
		const char *prefix =
		    def->topic_prefix && def->topic_prefix[0] ? def->topic_prefix : "tether";
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
		compile_target(&ru->to[0], n, defs, ndefs, errs);
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
			compile_target(&ru->to[i], n->items[i], defs, ndefs, errs);
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
	free(ru->flags_any_joined);
	free(ru->win);
	free(ru->wls);
	watchlist_free(ru->inline_wl);
	tmpl_free(ru->cooldown_key);
	for (size_t i = 0; i < ru->nto; i++) {
		struct rule_target *t = &ru->to[i];
		free(t->name);
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

bool rules_watchlists_changed(const struct rules *r)
{
	return r && r->wls && watchlist_set_changed(r->wls);
}

/* ---- state ------------------------------------------------------------------------ */

struct st_entry {
	struct st_entry *next;
	struct st_entry *dirty_next; /* on rules_state.dirty while dirty */
	uint64_t hash;
	int64_t last_ms;    /* cooldown: last delivery (now); visit: last read (occurred) */
	int64_t expires_ms; /* for pruning only, in now_ms terms */
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
};

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

/* ---- evaluation ------------------------------------------------------------------- */

__attribute__((format(printf, 2, 3))) static void say(char *why, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, REASON_MAX, fmt, ap); /* reasons are short; truncation is fine */
	va_end(ap);
}

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		if (why)                                                                           \
			say(why, __VA_ARGS__);                                                     \
		return false;                                                                      \
	} while (0)

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
			fmt_dur(now_ms - m->occurred_ms, age, sizeof(age));
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

/* Visit and cooldown; updates st. False (with why) when the message is held back. */
static bool pass_state(const struct rule *ru, struct rules_state *st, const struct message *m,
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
			e->expires_ms = now_ms + ru->visit;
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
					fmt_dur(e->last_ms + ru->cooldown - now_ms, left,
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

static char *render(const struct tmpl *t, const struct message *m, struct buf *scratch)
{
	buf_reset(scratch);
	if (tmpl_render(t, m, scratch) < 0)
		return NULL;
	return strdup(scratch->data ? scratch->data : "");
}

static int deliver(const struct rule *ru, struct rules_state *st, const struct message *m,
                   const struct watchlist_match *wm, bool wmatched, struct rules_result *res)
{
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
		res->nd++;
		if (t->mqtt) {
			const struct tmpl *tp = t->topic               ? t->topic
			                        : m->kind == MSG_PLATE ? t->topic_plate
			                                               : t->topic_event;
			if ((d->topic = render(tp, &d->msg, &st->scratch)) == NULL)
				return -1;
		}
		if (t->text && (d->text = render(t->text, &d->msg, &st->scratch)) == NULL)
			return -1;
		if (t->body && (d->body = render(t->body, &d->msg, &st->scratch)) == NULL)
			return -1;
	}
	return 0;
}

int rules_eval(const struct rules *r, struct rules_state *st, const struct message *msg,
               int64_t now_ms, bool trace, struct rules_result *res)
{
	char reason[REASON_MAX];
	int rank = sev_rank(r, msg->severity);

	if (st->n >= st->prune_at)
		st_prune(st, now_ms);
	for (size_t i = 0; i < r->n; i++) {
		const struct rule *ru = &r->v[i];
		struct watchlist_match wm = {0};
		bool wmatched = false;
		char *why = trace ? reason : NULL;

		reason[0] = '\0';
		bool ok = match_conditions(r, ru, msg, now_ms, rank, &wm, &wmatched, why) &&
		          pass_state(ru, st, msg, now_ms, rank, why);
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
		if (deliver(ru, st, msg, &wm, wmatched, res) < 0)
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
