/* Plate watchlists: parsing entries and files, and an index that answers fuzzy lookups in
 * microseconds on 100,000-entry lists. Plates are indexed by a canonical form where each
 * OCR look-alike group is one character, so look-alike substitutions become exact; fuzzy
 * N then uses a symmetric-delete neighbourhood (every entry and its deletions up to N). */
#include "rules/watchlist.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_FILE_ERRORS 100

enum entry_kind { ENTRY_PLATE, ENTRY_GLOB, ENTRY_REGEX };

struct entry {
	char *written;   /* plate field as written; label follows its NUL in one allocation */
	char *label;     /* NULL or inside written's allocation */
	char country[4]; /* "" when none */
	unsigned char kind;
	unsigned char len;                 /* of key */
	char key[WATCHLIST_PLATE_MAX + 1]; /* canonical (plate) or normalised (glob) */
	regex_t *re;
};

/* One (index key, entry) pair. The table is a multimap: an entry filed under several keys,
 * or several entries under one key, each take a slot, found by probing on from the key's
 * home slot to the next empty one. Keys are known only by a 32-bit hash: keys that collide
 * only add candidates, and every candidate is verified with the real distance anyway. */
struct slot {
	uint32_t hash; /* 0: empty slot (hashes are never 0) */
	uint32_t entry;
};

#define NONE UINT32_MAX
#define BATCH 64 /* keys hashed, prefetched, then probed together: misses overlap */

struct wfile {
	char *path;
	bool ok; /* stat worked: st is what was loaded (or refused) */
	struct stat st;
};

struct watchlist {
	char *name;
	int fuzzy;
	struct entry *v;
	size_t n, cap;
	struct wfile *files;
	size_t nfiles;
	bool built;
	uint32_t *patterns; /* entry indexes of globs and regexes, in order */
	size_t npatterns;
	struct slot *slots;
	uint32_t nslots;
};

struct watchlist_set {
	struct watchlist **v;
	size_t n;
};

/* ---- normalisation and distance ---- */

static char upper(char c)
{
	return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

static bool is_alnum(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* One representative per OCR look-alike group; other characters are themselves. */
static char canon(char c)
{
	switch (upper(c)) {
	case 'O':
	case 'D':
	case 'Q':
		return '0';
	case 'I':
	case 'L':
		return '1';
	case 'Z':
		return '2';
	case 'S':
		return '5';
	case 'B':
		return '8';
	case 'G':
		return '6';
	default:
		return upper(c);
	}
}

size_t plate_normalize(const char *in, char *out, size_t outsz, bool keep_wild)
{
	size_t n = 0;

	for (; *in != '\0'; in++) {
		char c = *in;

		if (!is_alnum(c) && !(keep_wild && (c == '*' || c == '?')))
			continue;
		/* a run of stars is one star */
		if (c == '*' && n > 0 && n < outsz && out[n - 1] == '*')
			continue;
		if (n + 1 < outsz)
			out[n] = upper(c);
		n++;
	}
	if (outsz > 0)
		out[n < outsz ? n : outsz - 1] = '\0';
	return n;
}

/* For different strings: is one substitution, insertion or deletion enough? (Linear; the
 * fuzzy 1 case of distance_canon.) */
static bool one_edit(const char *a, int la, const char *b, int lb)
{
	int i = 0;

	if (la < lb)
		return one_edit(b, lb, a, la);
	if (la - lb > 1)
		return false;
	while (i < lb && a[i] == b[i])
		i++;
	if (la == lb)
		return memcmp(a + i + 1, b + i + 1, (size_t)(la - i - 1)) == 0;
	return memcmp(a + i + 1, b + i, (size_t)(lb - i)) == 0;
}

/* Plain Levenshtein on already canonical strings, banded by max with an early exit. */
static int distance_canon(const char *a, int la, const char *b, int lb, int max)
{
	int prev[WATCHLIST_PLATE_MAX + 1], cur[WATCHLIST_PLATE_MAX + 1];
	int i, j;

	if (la - lb > max || lb - la > max)
		return max + 1;
	if (la == lb && memcmp(a, b, (size_t)la) == 0)
		return 0;
	if (max <= 1)
		return one_edit(a, la, b, lb) ? 1 : max + 1;
	for (j = 0; j <= lb; j++)
		prev[j] = j;
	for (i = 1; i <= la; i++) {
		int rowmin;

		cur[0] = i;
		rowmin = i;
		for (j = 1; j <= lb; j++) {
			int d = prev[j - 1] + (a[i - 1] != b[j - 1]);

			if (prev[j] + 1 < d)
				d = prev[j] + 1;
			if (cur[j - 1] + 1 < d)
				d = cur[j - 1] + 1;
			cur[j] = d;
			if (d < rowmin)
				rowmin = d;
		}
		if (rowmin > max)
			return max + 1;
		memcpy(prev, cur, (size_t)(lb + 1) * sizeof(int));
	}
	return prev[lb] > max ? max + 1 : prev[lb];
}

int plate_distance(const char *a, const char *b, int max)
{
	char ca[WATCHLIST_PLATE_MAX + 1], cb[WATCHLIST_PLATE_MAX + 1];
	size_t la = strlen(a), lb = strlen(b), i;

	if (max < 0)
		max = 0;
	if (la > WATCHLIST_PLATE_MAX || lb > WATCHLIST_PLATE_MAX)
		return max + 1;
	for (i = 0; i < la; i++)
		ca[i] = canon(a[i]);
	for (i = 0; i < lb; i++)
		cb[i] = canon(b[i]);
	return distance_canon(ca, (int)la, cb, (int)lb, max);
}

/* * matches any run (also empty), ? one character; exact characters otherwise. */
static bool glob_match(const char *p, const char *s)
{
	const char *star = NULL, *retry = NULL;

	while (*s != '\0') {
		if (*p == '?' || (*p != '*' && *p == *s)) {
			p++;
			s++;
		} else if (*p == '*') {
			star = p++;
			retry = s;
		} else if (star != NULL) {
			p = star + 1;
			s = ++retry;
		} else {
			return false;
		}
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

/* ---- lifecycle ---- */

struct watchlist *watchlist_new(const char *name, int fuzzy)
{
	struct watchlist *wl;

	if (name == NULL || fuzzy < 0 || fuzzy > WATCHLIST_FUZZY_MAX) {
		errno = EINVAL;
		return NULL;
	}
	wl = calloc(1, sizeof(*wl));
	if (wl == NULL)
		return NULL;
	wl->name = strdup(name);
	if (wl->name == NULL) {
		free(wl);
		return NULL;
	}
	wl->fuzzy = fuzzy;
	return wl;
}

static void index_release(struct watchlist *wl)
{
	free(wl->patterns);
	free(wl->slots);
	wl->patterns = NULL;
	wl->npatterns = 0;
	wl->slots = NULL;
	wl->nslots = 0;
	wl->built = false;
}

void watchlist_free(struct watchlist *wl)
{
	size_t i;

	if (wl == NULL)
		return;
	index_release(wl);
	for (i = 0; i < wl->n; i++) {
		free(wl->v[i].written);
		if (wl->v[i].re != NULL) {
			regfree(wl->v[i].re);
			free(wl->v[i].re);
		}
	}
	free(wl->v);
	for (i = 0; i < wl->nfiles; i++)
		free(wl->files[i].path);
	free(wl->files);
	free(wl->name);
	free(wl);
}

const char *watchlist_name(const struct watchlist *wl)
{
	return wl->name;
}

size_t watchlist_size(const struct watchlist *wl)
{
	return wl->n;
}

/* ---- regex limits ---- */

/* A conservative reading of a POSIX extended regex, done before regcomp to bound what
 * regcomp will build: regcomp copies a repeated atom once per count ({1,100} nested three
 * deep is a million copies: seconds and a gigabyte). Anything this scanner does not
 * understand is refused, naming why, rather than passed on. */
struct re_scan {
	const char *p, *end;
	const char *why; /* set on refusal */
	char whybuf[64];
};

static long re_alt(struct re_scan *s, long *nest);

/* [p, end) holds "[...]" from its '['; moves past the closing ']'. */
static int re_bracket(struct re_scan *s)
{
	const char *p = s->p + 1;

	if (p < s->end && *p == '^')
		p++;
	if (p < s->end && *p == ']')
		p++; /* a leading ']' is a member */
	while (p < s->end && *p != ']') {
		if (*p == '[' && p + 1 < s->end && (p[1] == ':' || p[1] == '=' || p[1] == '.')) {
			char close = p[1];

			for (p += 2; p + 1 < s->end && !(p[0] == close && p[1] == ']'); p++)
				;
			if (p + 1 >= s->end) {
				p = s->end;
				break;
			}
			p += 2;
			continue;
		}
		p++;
	}
	if (p >= s->end) {
		s->why = "unmatched '['";
		return -1;
	}
	s->p = p + 1;
	return 0;
}

/* Reads up to two digits' worth of a bound into *v (more digits give a value above the
 * limit); false when there is no digit. */
static bool re_number(struct re_scan *s, long *v)
{
	const char *start = s->p;

	*v = 0;
	while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		if (*v <= WATCHLIST_PLATE_MAX)
			*v = *v * 10 + (*s->p - '0');
		s->p++;
	}
	return s->p > start;
}

/* "{m}", "{m,}", "{,n}" or "{m,n}" from its '{': how many copies regcomp makes, or -1. */
static long re_interval(struct re_scan *s)
{
	long m = 0, n = -1;
	bool has_m, has_n = false;

	s->p++;
	has_m = re_number(s, &m);
	if (s->p < s->end && *s->p == ',') {
		s->p++;
		has_n = re_number(s, &n);
		if (!has_n)
			n = -1;
	} else {
		n = m;
		has_n = has_m;
	}
	if (s->p >= s->end || *s->p != '}' || (!has_m && !has_n)) {
		s->why = "bad repeat count: want {m}, {m,}, {,n} or {m,n}";
		return -1;
	}
	s->p++;
	if (m > WATCHLIST_PLATE_MAX || n > WATCHLIST_PLATE_MAX) {
		snprintf(s->whybuf, sizeof(s->whybuf), "repeat count above %d",
		         WATCHLIST_PLATE_MAX);
		s->why = s->whybuf;
		return -1;
	}
	if (n >= 0 && m > n) {
		s->why = "repeat count {m,n} with m above n";
		return -1;
	}
	if (n < 0)
		return m + 1; /* {m,} is m copies and a star */
	return n > 0 ? n : 1;
}

/* One atom and the repetitions after it: its expanded size; *nest gets the largest product
 * of repeat counts inside it. -1 on refusal. */
static long re_piece(struct re_scan *s, long *nest)
{
	long size = 1, copies;

	*nest = 1;
	switch (*s->p) {
	case '(':
		s->p++;
		size = re_alt(s, nest);
		if (size < 0)
			return -1;
		if (s->p >= s->end) {
			s->why = "unmatched '('";
			return -1;
		}
		s->p++;
		size++;
		break;
	case '[':
		if (re_bracket(s) < 0)
			return -1;
		break;
	case '\\':
		if (s->p + 1 >= s->end) {
			s->why = "trailing backslash";
			return -1;
		}
		if (s->p[1] >= '1' && s->p[1] <= '9') {
			s->why = "back-references are not supported";
			return -1;
		}
		s->p += 2;
		break;
	case '*':
	case '+':
	case '?':
	case '{':
		snprintf(s->whybuf, sizeof(s->whybuf), "'%c' has nothing to repeat", *s->p);
		s->why = s->whybuf;
		return -1;
	default:
		s->p++;
	}
	while (s->p < s->end && strchr("*+?{", *s->p) != NULL) {
		if (*s->p == '{') {
			copies = re_interval(s);
			if (copies < 0)
				return -1;
		} else {
			copies = *s->p == '+' ? 2 : 1; /* a+ is a a* */
			s->p++;
		}
		*nest *= copies;
		size *= copies;
		if (*nest > WATCHLIST_REGEX_NEST_MAX) {
			snprintf(s->whybuf, sizeof(s->whybuf),
			         "nested repeat counts multiply to more than %d",
			         WATCHLIST_REGEX_NEST_MAX);
			s->why = s->whybuf;
			return -1;
		}
		if (size > WATCHLIST_REGEX_SIZE_MAX)
			break; /* the caller refuses it */
	}
	return size;
}

/* Alternatives up to an unmatched ')' or the end: the sum of their sizes. */
static long re_alt(struct re_scan *s, long *nest)
{
	long size = 0, n, inner;

	*nest = 1;
	while (s->p < s->end && *s->p != ')') {
		if (*s->p == '|') {
			s->p++;
			continue;
		}
		n = re_piece(s, &inner);
		if (n < 0)
			return -1;
		if (inner > *nest)
			*nest = inner;
		size += n;
		if (size > WATCHLIST_REGEX_SIZE_MAX) {
			snprintf(s->whybuf, sizeof(s->whybuf), "expands to more than %d elements",
			         WATCHLIST_REGEX_SIZE_MAX);
			s->why = s->whybuf;
			return -1;
		}
	}
	return size;
}

/* NULL when re (len bytes, between the slashes) is within the limits, else why not. The
 * reason lives in *s. */
static const char *regex_refusal(struct re_scan *s, const char *re, size_t len)
{
	long nest;

	s->p = re;
	s->end = re + len;
	s->why = NULL;
	if (re_alt(s, &nest) < 0)
		return s->why;
	if (s->p < s->end)
		return "unmatched ')'";
	return NULL;
}

/* ---- parsing ---- */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* A field of an entry: [b, e), surrounding whitespace trimmed by trim(). */
struct field {
	const char *b, *e;
};

static void trim(struct field *f)
{
	while (f->b < f->e && is_space(*f->b))
		f->b++;
	while (f->e > f->b && is_space(f->e[-1]))
		f->e--;
}

/* Parses one "PLATE[,label[,country]]" entry and appends it. in_file: error columns are
 * 1-based offsets in text (a file line); else every error gets the caller's col. */
static int parse_entry(struct watchlist *wl, const char *text, const char *file, int line, int col,
                       bool in_file, struct cfg_errors *errs)
{
	struct field plate, label = {NULL, NULL}, country = {NULL, NULL};
	const char *p, *end = text + strlen(text), *rest;
	struct entry e;
	size_t wlen, llen, n;
	char buf[WATCHLIST_PLATE_MAX * 4 + 64];
	char *tmp;
	int rc;

#define COL(ptr) (in_file ? (int)((ptr)-text) + 1 : col)
	memset(&e, 0, sizeof(e));
	plate.b = text;
	plate.e = end;
	trim(&plate);
	if (plate.b < plate.e && *plate.b == '/') {
		/* A regex runs to the next '/', so it may hold commas ({2,3}). */
		p = memchr(plate.b + 1, '/', (size_t)(plate.e - plate.b - 1));
		if (p == NULL) {
			cfg_errors_add(errs, file, line, COL(plate.b), "unterminated regex '%.*s'",
			               (int)(plate.e - plate.b), plate.b);
			return -1;
		}
		rest = p + 1;
		plate.e = rest;
		while (rest < end && is_space(*rest))
			rest++;
		if (rest < end && *rest != ',') {
			cfg_errors_add(errs, file, line, COL(rest),
			               "unexpected text after regex '%.*s'",
			               (int)(plate.e - plate.b), plate.b);
			return -1;
		}
		e.kind = ENTRY_REGEX;
	} else {
		rest = memchr(text, ',', (size_t)(end - text));
		if (rest == NULL)
			rest = end;
		plate.b = text;
		plate.e = rest;
		trim(&plate);
	}
	/* rest is end or the comma after the plate field */
	if (rest < end) {
		label.b = rest + 1;
		label.e = memchr(label.b, ',', (size_t)(end - label.b));
		if (label.e == NULL)
			label.e = end;
		if (label.e < end) {
			country.b = label.e + 1;
			country.e = memchr(country.b, ',', (size_t)(end - country.b));
			if (country.e != NULL) {
				cfg_errors_add(errs, file, line, COL(country.e),
				               "too many fields (want PLATE[,label[,country]])");
				return -1;
			}
			country.e = end;
			trim(&country);
		}
		trim(&label);
	}

	if (plate.b == plate.e) {
		cfg_errors_add(errs, file, line, COL(plate.b), "empty plate");
		return -1;
	}
	if (e.kind == ENTRY_REGEX) {
		int flags = REG_EXTENDED | REG_NOSUB | REG_ICASE;
		size_t rlen = (size_t)(plate.e - plate.b) - 2;
		struct re_scan scan;
		const char *why;

		if (rlen == 0) {
			cfg_errors_add(errs, file, line, COL(plate.b), "empty regex '//'");
			return -1;
		}
		if (rlen > WATCHLIST_REGEX_MAX) {
			cfg_errors_add(errs, file, line, COL(plate.b),
			               "regex '%.*s' is longer than %d bytes",
			               (int)(plate.e - plate.b), plate.b, WATCHLIST_REGEX_MAX);
			return -1;
		}
		why = regex_refusal(&scan, plate.b + 1, rlen);
		if (why != NULL) {
			cfg_errors_add(errs, file, line, COL(plate.b), "bad regex '%.*s': %s",
			               (int)(plate.e - plate.b), plate.b, why);
			return -1;
		}
		tmp = strndup(plate.b + 1, rlen);
		e.re = malloc(sizeof(*e.re));
		if (tmp == NULL || e.re == NULL) {
			free(tmp);
			free(e.re);
			cfg_errors_add(errs, file, line, COL(plate.b), "out of memory");
			return -1;
		}
		rc = regcomp(e.re, tmp, flags);
		free(tmp);
		if (rc != 0) {
			regerror(rc, e.re, buf, sizeof(buf));
			free(e.re);
			cfg_errors_add(errs, file, line, COL(plate.b), "bad regex '%.*s': %s",
			               (int)(plate.e - plate.b), plate.b, buf);
			return -1;
		}
	} else {
		tmp = strndup(plate.b, (size_t)(plate.e - plate.b));
		if (tmp == NULL) {
			cfg_errors_add(errs, file, line, COL(plate.b), "out of memory");
			return -1;
		}
		n = plate_normalize(tmp, e.key, sizeof(e.key), true);
		e.kind = strpbrk(e.key, "*?") != NULL ? ENTRY_GLOB : ENTRY_PLATE;
		if (n == 0)
			cfg_errors_add(errs, file, line, COL(plate.b),
			               "plate '%s' has no letters or digits", tmp);
		else if (n > WATCHLIST_PLATE_MAX)
			cfg_errors_add(errs, file, line, COL(plate.b),
			               "plate '%s' is longer than %d characters", tmp,
			               WATCHLIST_PLATE_MAX);
		free(tmp);
		if (n == 0 || n > WATCHLIST_PLATE_MAX)
			return -1;
		e.len = (unsigned char)n;
		if (e.kind == ENTRY_PLATE)
			for (n = 0; n < e.len; n++)
				e.key[n] = canon(e.key[n]);
	}

	if (country.b != NULL && country.b < country.e) {
		bool ok = country.e - country.b == 3;

		for (p = country.b; ok && p < country.e; p++)
			ok = (upper(*p) >= 'A' && upper(*p) <= 'Z');
		if (!ok) {
			cfg_errors_add(errs, file, line, COL(country.b),
			               "bad country '%.*s' (want ISO 3166 alpha-3, like GBR)",
			               (int)(country.e - country.b), country.b);
			goto out_free_re;
		}
		for (n = 0; n < 3; n++)
			e.country[n] = upper(country.b[n]);
	}
#undef COL

	wlen = (size_t)(plate.e - plate.b);
	llen = label.b != NULL ? (size_t)(label.e - label.b) : 0;
	e.written = malloc(wlen + 1 + llen + 1);
	if (e.written == NULL)
		goto out_oom;
	memcpy(e.written, plate.b, wlen);
	e.written[wlen] = '\0';
	if (llen > 0) {
		e.label = e.written + wlen + 1;
		memcpy(e.label, label.b, llen);
		e.label[llen] = '\0';
	}
	if (wl->n == wl->cap) {
		size_t cap = wl->cap ? wl->cap * 2 : 64;
		struct entry *v = realloc(wl->v, cap * sizeof(*v));

		if (v == NULL)
			goto out_free_written;
		wl->v = v;
		wl->cap = cap;
	}
	if (wl->n >= UINT32_MAX - 1)
		goto out_free_written;
	wl->v[wl->n++] = e;
	index_release(wl);
	return 0;

out_free_written:
	free(e.written);
out_oom:
	cfg_errors_add(errs, file, line, col, "out of memory");
out_free_re:
	if (e.re != NULL) {
		regfree(e.re);
		free(e.re);
	}
	return -1;
}

int watchlist_add(struct watchlist *wl, const char *entry_line, const char *src_file, int line,
                  int col, struct cfg_errors *errs)
{
	if (wl == NULL || entry_line == NULL) {
		errno = EINVAL;
		return -1;
	}
	if (strlen(entry_line) > WATCHLIST_LINE_MAX) {
		cfg_errors_add(errs, src_file, line, col, "entry longer than %d bytes",
		               WATCHLIST_LINE_MAX);
		return -1;
	}
	return parse_entry(wl, entry_line, src_file, line, col, false, errs);
}

static int remember_file(struct watchlist *wl, const char *path, bool ok, const struct stat *st)
{
	struct wfile *v = realloc(wl->files, (wl->nfiles + 1) * sizeof(*v));

	if (v == NULL)
		return -1;
	wl->files = v;
	v[wl->nfiles].path = strdup(path);
	if (v[wl->nfiles].path == NULL)
		return -1;
	v[wl->nfiles].ok = ok;
	if (ok)
		v[wl->nfiles].st = *st;
	wl->nfiles++;
	return 0;
}

/* Reads one line of f into buf without its newline, keeping at most bufsz - 1 bytes
 * (NUL-terminated) and skipping the rest; *len is the line's full length and *total counts
 * every byte read. False at the end of the file with nothing read. */
static bool read_line(FILE *f, char *buf, size_t bufsz, size_t *len, long *total)
{
	size_t n = 0;
	int c;

	while ((c = getc_unlocked(f)) != EOF) {
		(*total)++;
		if (c == '\n')
			break;
		if (n + 1 < bufsz)
			buf[n] = (char)c;
		n++;
	}
	buf[n < bufsz ? n : bufsz - 1] = '\0';
	*len = n;
	return c != EOF || n > 0;
}

/* Opens path for reading without blocking (a FIFO with no writer would otherwise hold the
 * poller) and accepts it only when it is a regular file within WATCHLIST_FILE_MAX. NULL
 * with the problem appended to errs; *st is filled whenever fstat worked (*stat_ok). */
static FILE *open_list(const char *path, struct stat *st, bool *stat_ok, struct cfg_errors *errs)
{
	FILE *f;
	int fd;

	*stat_ok = false;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, st) != 0) {
		cfg_errors_add(errs, path, 0, 0, "unable to open '%s': %s", path, strerror(errno));
		goto out_close;
	}
	*stat_ok = true;
	if (!S_ISREG(st->st_mode)) {
		cfg_errors_add(errs, path, 0, 0, "'%s' is not a regular file", path);
		goto out_close;
	}
	if (st->st_size > WATCHLIST_FILE_MAX) {
		cfg_errors_add(errs, path, 0, 0, "'%s' is larger than %ld MiB", path,
		               WATCHLIST_FILE_MAX / (1024 * 1024));
		goto out_close;
	}
	f = fdopen(fd, "r"); /* O_NONBLOCK has no effect on a regular file's reads */
	if (f == NULL) {
		cfg_errors_add(errs, path, 0, 0, "unable to open '%s': %s", path, strerror(errno));
		goto out_close;
	}
	return f;

out_close:
	if (fd >= 0)
		close(fd);
	return NULL;
}

int watchlist_load_file(struct watchlist *wl, const char *path, struct cfg_errors *errs)
{
	size_t before = errs != NULL ? errs->n : 0, len;
	char linebuf[WATCHLIST_LINE_MAX + 1];
	unsigned nerr = 0;
	struct stat st;
	long total = 0;
	bool stat_ok;
	int lineno = 0, rc = 0;
	FILE *f;

	if (wl == NULL || path == NULL) {
		errno = EINVAL;
		return -1;
	}
	f = open_list(path, &st, &stat_ok, errs);
	/* a refused file is remembered as it is, so that only a change to it retries the
	 * load; a file that could not be opened is retried once it appears */
	if (remember_file(wl, path, stat_ok, &st) != 0) {
		cfg_errors_add(errs, path, 0, 0, "out of memory");
		rc = -1;
	}
	if (f == NULL || rc != 0) {
		if (f != NULL)
			fclose(f);
		return -1;
	}
	while (read_line(f, linebuf, sizeof(linebuf), &len, &total)) {
		const char *start = linebuf, *p;
		struct cfg_errors one = {0}, *target = errs;

		lineno++;
		if (total > WATCHLIST_FILE_MAX) {
			/* it grew past the cap while being read */
			cfg_errors_add(errs, path, 0, 0, "'%s' is larger than %ld MiB", path,
			               WATCHLIST_FILE_MAX / (1024 * 1024));
			rc = -1;
			break;
		}
		if (lineno == 1 && len >= 3 && strncmp(start, "\xef\xbb\xbf", 3) == 0) {
			start += 3; /* a UTF-8 byte order mark is not part of the entry */
			len -= 3;
		}
		/* past the cap, errors are only counted */
		if (nerr >= MAX_FILE_ERRORS)
			target = &one;
		if (len > WATCHLIST_LINE_MAX) {
			cfg_errors_add(target, path, lineno, 0, "line longer than %d bytes",
			               WATCHLIST_LINE_MAX);
			cfg_errors_release(&one);
			nerr++;
			rc = -1;
			continue;
		}
		p = start;
		while (is_space(*p))
			p++;
		if (*p == '\0' || *p == '#')
			continue;
		if (strlen(start) != len) {
			cfg_errors_add(target, path, lineno, 0, "NUL byte in line");
			cfg_errors_release(&one);
			nerr++;
			rc = -1;
			continue;
		}
		if (parse_entry(wl, start, path, lineno, 0, true, target) != 0) {
			nerr++;
			rc = -1;
		}
		cfg_errors_release(&one);
	}
	if (ferror(f)) {
		cfg_errors_add(errs, path, 0, 0, "unable to read '%s': %s", path, strerror(errno));
		rc = -1;
	}
	if (nerr > MAX_FILE_ERRORS)
		cfg_errors_add(errs, path, 0, 0, "%s: %u more errors not shown", path,
		               nerr - MAX_FILE_ERRORS);
	fclose(f);
	if (rc != 0 && errs != NULL && !cfg_errors_since(errs, before))
		cfg_errors_add(errs, path, 0, 0, "%s: errors (out of memory reporting them)", path);
	return rc;
}

bool watchlist_file_changed(const struct watchlist *wl)
{
	struct stat st;
	size_t i;

	for (i = 0; i < wl->nfiles; i++) {
		const struct wfile *f = &wl->files[i];

		if (stat(f->path, &st) != 0) {
			if (f->ok)
				return true;
			continue;
		}
		if (!f->ok || st.st_ino != f->st.st_ino || st.st_dev != f->st.st_dev ||
		    st.st_size != f->st.st_size || st.st_mtim.tv_sec != f->st.st_mtim.tv_sec ||
		    st.st_mtim.tv_nsec != f->st.st_mtim.tv_nsec)
			return true;
	}
	return false;
}

/* ---- index ---- */

static uint32_t fnv1a(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	/* FNV alone clusters on short, similar keys; mix the bits (murmur3 fmix) */
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h != 0 ? h : 1;
}

/* Copies s without the nd positions in dels (ascending) into out; returns the length. */
static size_t delete_at(const char *s, size_t len, const unsigned char *dels, int nd, char *out)
{
	size_t i, n = 0;
	int d = 0;

	for (i = 0; i < len; i++) {
		if (d < nd && dels[d] == i) {
			d++;
			continue;
		}
		out[n++] = s[i];
	}
	out[n] = '\0';
	return n;
}

/* Hashes of a batch of keys waiting to be probed (or inserted) once their slots are
 * prefetched: a fuzzy lookup touches one random slot per deletion, and overlapping those
 * cache misses is most of its speed on a large list. */
struct batch {
	uint32_t hash[BATCH];
	int n;
};

/* Calls fn for s itself (nd == 0) and then for the strings made by deleting up to max
 * positions (ascending; inside a run of equal characters only the run's first free
 * position is deleted, as the others give the same string). fn returning non-zero stops
 * the walk and is returned. */
static int variants(const char *s, size_t len, size_t start, unsigned char *dels, int nd, int max,
                    int (*fn)(void *ctx, const char *key, size_t klen, int nd), void *ctx)
{
	char key[WATCHLIST_PLATE_MAX + 1];
	size_t klen, p;
	int rc;

	klen = delete_at(s, len, dels, nd, key);
	rc = fn(ctx, key, klen, nd);
	if (rc != 0 || nd == max)
		return rc;
	for (p = start; p < len; p++) {
		if (p > start && s[p] == s[p - 1])
			continue;
		dels[nd] = (unsigned char)p;
		rc = variants(s, len, p + 1, dels, nd + 1, max, fn, ctx);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* A key's home slot: hash scaled onto [0, nslots) (no power-of-two size needed). */
static uint32_t home(const struct watchlist *wl, uint32_t hash)
{
	return (uint32_t)(((uint64_t)hash * wl->nslots) >> 32);
}

static uint32_t next_slot(const struct watchlist *wl, uint32_t i)
{
	return i + 1 < wl->nslots ? i + 1 : 0;
}

static void prefetch(const struct watchlist *wl, const struct batch *b)
{
	int i;

	for (i = 0; i < b->n; i++)
		__builtin_prefetch(&wl->slots[home(wl, b->hash[i])]);
}

struct build_ctx {
	struct watchlist *wl;
	uint32_t entry;
	struct batch b;
};

static void build_flush(struct build_ctx *ctx)
{
	struct watchlist *wl = ctx->wl;
	int k;

	prefetch(wl, &ctx->b);
	for (k = 0; k < ctx->b.n; k++) {
		uint32_t h = ctx->b.hash[k], i = home(wl, h);

		for (; wl->slots[i].hash != 0; i = next_slot(wl, i))
			if (wl->slots[i].hash == h && wl->slots[i].entry == ctx->entry)
				break; /* the same key from another deletion */
		if (wl->slots[i].hash != 0)
			continue;
		wl->slots[i].hash = h;
		wl->slots[i].entry = ctx->entry;
	}
	ctx->b.n = 0;
}

static int build_key(void *ctx_, const char *key, size_t klen, int nd)
{
	struct build_ctx *ctx = ctx_;

	(void)nd;
	if (ctx->b.n == BATCH)
		build_flush(ctx);
	ctx->b.hash[ctx->b.n++] = fnv1a(key, klen);
	return 0;
}

static size_t choose(size_t n, int k)
{
	size_t r = 1;
	int i;

	for (i = 0; i < k; i++)
		r = r * (n - (size_t)i) / (size_t)(i + 1);
	return r;
}

int watchlist_build(struct watchlist *wl)
{
	unsigned char dels[WATCHLIST_FUZZY_MAX];
	size_t i, keys = 0, nslots;
	struct build_ctx ctx;
	int k;

	if (wl == NULL) {
		errno = EINVAL;
		return -1;
	}
	index_release(wl);
	for (i = 0; i < wl->n; i++) {
		if (wl->v[i].kind != ENTRY_PLATE) {
			wl->npatterns++;
			continue;
		}
		for (k = 0; k <= wl->fuzzy && k <= wl->v[i].len; k++)
			keys += choose(wl->v[i].len, k);
	}
	/* keys bounds the pairs (repeats are merged), so linear probing stays under 0.7 load
	 * and always finds an empty slot */
	nslots = keys + keys * 3 / 7 + 16;
	if (nslots > (size_t)UINT32_MAX)
		goto out_nomem;
	wl->patterns = malloc((wl->npatterns ? wl->npatterns : 1) * sizeof(*wl->patterns));
	wl->slots = calloc(nslots, sizeof(*wl->slots));
	if (wl->patterns == NULL || wl->slots == NULL)
		goto out_nomem;
	wl->nslots = (uint32_t)nslots;
	wl->npatterns = 0;
	ctx.wl = wl;
	ctx.b.n = 0;
	for (i = 0; i < wl->n; i++) {
		if (wl->v[i].kind != ENTRY_PLATE) {
			wl->patterns[wl->npatterns++] = (uint32_t)i;
			continue;
		}
		ctx.entry = (uint32_t)i;
		variants(wl->v[i].key, wl->v[i].len, 0, dels, 0, wl->fuzzy, build_key, &ctx);
		build_flush(&ctx);
	}
	wl->built = true;
	return 0;

out_nomem:
	index_release(wl);
	errno = ENOMEM;
	return -1;
}

/* ---- lookup ---- */

struct query {
	const struct watchlist *wl;
	const char *country; /* NULL when the read has none */
	char canon[WATCHLIST_PLATE_MAX + 1];
	int len;
	int best_d;
	uint32_t best; /* entry index; NONE when none */
	struct batch b;
};

static bool country_ok(const struct entry *e, const char *country)
{
	return e->country[0] == '\0' || country == NULL || strcasecmp(e->country, country) == 0;
}

static void consider(struct query *q, uint32_t ei)
{
	const struct entry *e = &q->wl->v[ei];
	int limit = q->best_d < q->wl->fuzzy ? q->best_d : q->wl->fuzzy;
	int d;

	if (q->best_d == 0 && ei > q->best)
		return; /* cannot win: not closer, and later */
	if (!country_ok(e, q->country))
		return;
	d = distance_canon(q->canon, q->len, e->key, e->len, limit);
	if (d > limit)
		return;
	if (d < q->best_d || ei < q->best) {
		q->best_d = d;
		q->best = ei;
	}
}

static void probe(struct query *q, uint32_t hash)
{
	const struct watchlist *wl = q->wl;
	uint32_t i;

	for (i = home(wl, hash); wl->slots[i].hash != 0; i = next_slot(wl, i))
		if (wl->slots[i].hash == hash)
			consider(q, wl->slots[i].entry);
}

static void query_flush(struct query *q)
{
	int i;

	prefetch(q->wl, &q->b);
	for (i = 0; i < q->b.n; i++)
		probe(q, q->b.hash[i]);
	q->b.n = 0;
}

static int query_key(void *ctx, const char *key, size_t klen, int nd)
{
	struct query *q = ctx;

	if (nd == 0) {
		/* every distance-0 entry is filed under the read's own key: done if one is */
		probe(q, fnv1a(key, klen));
		return q->best_d == 0;
	}
	if (q->b.n == BATCH)
		query_flush(q);
	q->b.hash[q->b.n++] = fnv1a(key, klen);
	return 0;
}

bool watchlist_match(const struct watchlist *wl, const char *plate, const char *country,
                     struct watchlist_match *out)
{
	char norm[WATCHLIST_PLATE_MAX + 1];
	unsigned char dels[WATCHLIST_FUZZY_MAX];
	struct query q;
	const struct entry *e;
	size_t n, i;

	if (wl == NULL || plate == NULL || !wl->built)
		return false;
	n = plate_normalize(plate, norm, sizeof(norm), false);
	if (n == 0 || n > WATCHLIST_PLATE_MAX)
		return false;
	q.wl = wl;
	q.country = country != NULL && *country != '\0' ? country : NULL;
	q.len = (int)n;
	for (i = 0; i < n; i++)
		q.canon[i] = canon(norm[i]);
	q.canon[n] = '\0';
	q.best_d = INT_MAX;
	q.best = NONE;
	q.b.n = 0;
	variants(q.canon, n, 0, dels, 0, wl->fuzzy, query_key, &q);
	query_flush(&q);

	/* patterns and regexes match at distance 0, so only an earlier one can win */
	for (i = 0; i < wl->npatterns; i++) {
		uint32_t ei = wl->patterns[i];

		e = &wl->v[ei];
		if (q.best_d == 0 && ei > q.best)
			break;
		if (!country_ok(e, q.country))
			continue;
		if (e->kind == ENTRY_GLOB ? glob_match(e->key, norm)
		                          : regexec(e->re, norm, 0, NULL, 0) == 0) {
			q.best_d = 0;
			q.best = ei;
			break;
		}
	}
	if (q.best == NONE)
		return false;
	if (out != NULL) {
		e = &wl->v[q.best];
		out->watchlist = wl->name;
		out->entry = e->written;
		out->label = e->label;
		out->country = e->country[0] != '\0' ? e->country : NULL;
		out->distance = q.best_d;
	}
	return true;
}

/* ---- sets ---- */

struct watchlist_set *watchlist_set_new(void)
{
	return calloc(1, sizeof(struct watchlist_set));
}

void watchlist_set_free(struct watchlist_set *set)
{
	size_t i;

	if (set == NULL)
		return;
	for (i = 0; i < set->n; i++)
		watchlist_free(set->v[i]);
	free(set->v);
	free(set);
}

int watchlist_set_add(struct watchlist_set *set, struct watchlist *wl)
{
	struct watchlist **v;

	if (set == NULL || wl == NULL) {
		watchlist_free(wl);
		errno = EINVAL;
		return -1;
	}
	if (watchlist_set_get(set, wl->name) != NULL) {
		watchlist_free(wl);
		errno = EEXIST;
		return -1;
	}
	v = realloc(set->v, (set->n + 1) * sizeof(*v));
	if (v == NULL) {
		watchlist_free(wl);
		return -1;
	}
	set->v = v;
	v[set->n++] = wl;
	return 0;
}

struct watchlist *watchlist_set_get(const struct watchlist_set *set, const char *name)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (strcmp(set->v[i]->name, name) == 0)
			return set->v[i];
	return NULL;
}

size_t watchlist_set_count(const struct watchlist_set *set)
{
	return set->n;
}

bool watchlist_set_changed(const struct watchlist_set *set)
{
	size_t i;

	for (i = 0; i < set->n; i++)
		if (watchlist_file_changed(set->v[i]))
			return true;
	return false;
}
