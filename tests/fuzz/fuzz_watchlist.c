/* Fuzz target: watchlist files and matching. The input is a watchlist file (fuzzy level:
 * input size % 4). It is loaded twice, as a file (watchlist_load_file) and line by line
 * (watchlist_add), and both lists must answer every read alike. Reads derived from its plain
 * plates are then matched, differentially against a brute-force distance written here from
 * SPEC section 7 (Levenshtein; a substitution between OCR look-alikes costs 0). */
#include <stdbool.h>

#include "rules/watchlist.h"
#include "tests/fuzz/fuzz.h"

#define MAX_PLAIN 16
#define MAX_READS 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* SPEC section 7: 0/O/D/Q, 1/I/L, 2/Z, 5/S, 8/B, 6/G */
static const char *const groups[] = {"0ODQ", "1IL", "2Z", "5S", "8B", "6G"};

static int look_group(char c)
{
	if (c == '\0')
		return -1;
	for (int g = 0; g < 6; g++)
		if (strchr(groups[g], c) != NULL)
			return g;
	return -1;
}

static int sub_cost(char a, char b)
{
	if (a == b)
		return 0;
	int ga = look_group(a);
	return ga >= 0 && ga == look_group(b) ? 0 : 1;
}

/* Plain dynamic programming over the full table: slow and obviously right. a and b are
 * normalised (upper case letters and digits), at most WATCHLIST_PLATE_MAX long. */
static int brute_distance(const char *a, const char *b)
{
	int d[WATCHLIST_PLATE_MAX + 1][WATCHLIST_PLATE_MAX + 1];
	size_t la = strlen(a), lb = strlen(b);

	for (size_t i = 0; i <= la; i++)
		d[i][0] = (int)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (int)j;
	for (size_t i = 1; i <= la; i++)
		for (size_t j = 1; j <= lb; j++) {
			int best = d[i - 1][j - 1] + sub_cost(a[i - 1], b[j - 1]);
			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			d[i][j] = best;
		}
	return d[la][lb];
}

struct plain {
	char norm[WATCHLIST_PLATE_MAX + 1];
};

struct lists {
	struct plain plain[MAX_PLAIN];
	size_t nplain;
	bool only_plain; /* no pattern or regex was accepted */
};

/* The plate field of an accepted line when it is a plain plate; false otherwise. */
static bool plain_of(const char *line, char norm[WATCHLIST_PLATE_MAX + 1])
{
	const char *p = line + strspn(line, " \t\r\n\v\f");
	size_t n = strcspn(p, ",");
	char field[256];

	if (*p == '/' || n >= sizeof(field))
		return false;
	memcpy(field, p, n);
	field[n] = '\0';
	if (strpbrk(field, "*?") != NULL)
		return false;
	return plate_normalize(field, norm, WATCHLIST_PLATE_MAX + 1, false) <= WATCHLIST_PLATE_MAX;
}

static void add_read(char reads[][WATCHLIST_PLATE_MAX + 2], size_t *n, const char *r)
{
	if (*n < MAX_READS)
		snprintf(reads[(*n)++], WATCHLIST_PLATE_MAX + 2, "%s", r);
}

static void check_read(const struct watchlist *wl, const struct watchlist *wf,
                       const struct lists *l, int fuzzy, const char *read)
{
	struct watchlist_match m, mf;
	char nr[WATCHLIST_PLATE_MAX + 1];
	int best = WATCHLIST_FUZZY_MAX + 1;
	size_t first = 0;
	bool matched = watchlist_match(wl, read, NULL, &m);
	bool matched_f = watchlist_match(wf, read, NULL, &mf);

	FUZZ_CHECK(matched == matched_f, "'%s': file and lines disagree", read);
	if (matched) {
		FUZZ_CHECK(m.distance == mf.distance && strcmp(m.entry, mf.entry) == 0,
		           "'%s': lines give '%s' (%d), the file '%s' (%d)", read, m.entry,
		           m.distance, mf.entry, mf.distance);
		FUZZ_CHECK(m.distance >= 0 && m.distance <= fuzzy, "'%s': distance %d at fuzzy %d",
		           read, m.distance, fuzzy);
	}
	size_t len = plate_normalize(read, nr, sizeof(nr), false);
	if (len == 0 || len > WATCHLIST_PLATE_MAX) {
		FUZZ_CHECK(!matched, "'%s' normalises to nothing or too much but matched", read);
		return;
	}
	for (size_t i = 0; i < l->nplain && i < MAX_PLAIN; i++) {
		int d = brute_distance(nr, l->plain[i].norm);
		int lib = plate_distance(nr, l->plain[i].norm, WATCHLIST_FUZZY_MAX);
		FUZZ_CHECK(lib == (d > WATCHLIST_FUZZY_MAX ? WATCHLIST_FUZZY_MAX + 1 : d),
		           "plate_distance('%s', '%s') = %d, brute force %d", nr, l->plain[i].norm,
		           lib, d);
		if (d < best) {
			best = d;
			first = i;
		}
	}
	if (best <= fuzzy)
		FUZZ_CHECK(matched && m.distance <= best,
		           "'%s': '%s' is %d away at fuzzy %d, got %s", read, l->plain[first].norm,
		           best, fuzzy, matched ? m.entry : "nothing");
	if (matched && plain_of(m.entry, nr) && nr[0] != '\0') {
		char rn[WATCHLIST_PLATE_MAX + 1];
		plate_normalize(read, rn, sizeof(rn), false);
		FUZZ_CHECK(brute_distance(rn, nr) == m.distance, "'%s': '%s' reported %d, is %d",
		           read, m.entry, m.distance, brute_distance(rn, nr));
	}
	if (l->only_plain && l->nplain < MAX_PLAIN) {
		FUZZ_CHECK(matched == (best <= fuzzy), "'%s': best %d at fuzzy %d, matched %d",
		           read, best, fuzzy, matched);
		/* ties go to the first entry in load order */
		if (matched && plain_of(m.entry, nr))
			FUZZ_CHECK(strcmp(nr, l->plain[first].norm) == 0,
			           "'%s': got '%s', the first at %d is '%s'", read, m.entry, best,
			           l->plain[first].norm);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char reads[MAX_READS][WATCHLIST_PLATE_MAX + 2];
	static struct lists l;
	int fuzzy = (int)(size % (WATCHLIST_FUZZY_MAX + 1));
	struct watchlist *wl = watchlist_new("lines", fuzzy), *wf = watchlist_new("file", fuzzy);
	struct cfg_errors errs = {0};
	char *text = fuzz_cstr(data, size), *line, *next;
	const char *path = fuzz_write_file("list.txt", data, size);
	size_t nreads = 0;
	int lineno = 0;

	memset(&l, 0, sizeof(l));
	l.only_plain = true;
	if (wl == NULL || wf == NULL || text == NULL)
		goto out;
	(void)watchlist_load_file(wf, path, &errs);
	/* the same lines as watchlist_load_file reads them: a NUL ends the text here, and the
	 * file reader refuses a line holding one, so stop comparing there */
	if (memchr(data, '\0', size) != NULL)
		goto out;
	for (line = text; line; line = next) {
		char norm[WATCHLIST_PLATE_MAX + 1];
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		if (lineno == 1 && strncmp(line, "\xef\xbb\xbf", 3) == 0)
			line += 3;
		const char *p = line + strspn(line, " \t\r\n\v\f");
		if (*p == '\0' || *p == '#')
			continue;
		if (watchlist_add(wl, line, "list.txt", lineno, 1, &errs) != 0)
			continue;
		if (plain_of(line, norm)) {
			if (l.nplain < MAX_PLAIN)
				memcpy(l.plain[l.nplain].norm, norm, sizeof(norm));
			l.nplain++;
		} else {
			l.only_plain = false;
		}
	}
	FUZZ_CHECK(watchlist_size(wl) == watchlist_size(wf), "%zu entries by line, %zu by file",
	           watchlist_size(wl), watchlist_size(wf));
	if (watchlist_build(wl) < 0 || watchlist_build(wf) < 0)
		goto out;
	add_read(reads, &nreads, "AB12CDE");
	add_read(reads, &nreads, "ab-12 cde");
	add_read(reads, &nreads, "");
	for (size_t i = 0; i < l.nplain && i < MAX_PLAIN; i++) {
		char r[WATCHLIST_PLATE_MAX + 2];
		size_t n = strlen(l.plain[i].norm);
		add_read(reads, &nreads, l.plain[i].norm);
		/* a look-alike for every character that has one */
		memcpy(r, l.plain[i].norm, n + 1);
		for (size_t k = 0; k < n; k++) {
			int g = look_group(r[k]);
			if (g >= 0) { /* the next in its group */
				size_t at = (size_t)(strchr(groups[g], r[k]) - groups[g]);
				r[k] = groups[g][(at + 1) % strlen(groups[g])];
			}
		}
		add_read(reads, &nreads, r);
		if (n > 1) { /* one deletion, one substitution, one insertion */
			memcpy(r, l.plain[i].norm, n + 1);
			memmove(r + n / 2, r + n / 2 + 1, n - n / 2);
			add_read(reads, &nreads, r);
			memcpy(r, l.plain[i].norm, n + 1);
			r[n - 1] = r[n - 1] == 'X' ? 'Y' : 'X';
			add_read(reads, &nreads, r);
			memcpy(r, l.plain[i].norm, n + 1);
			memmove(r + 1, r, n + 1);
			r[0] = 'W';
			add_read(reads, &nreads, r);
		}
	}
	for (size_t i = 0; i < nreads; i++)
		check_read(wl, wf, &l, fuzzy, reads[i]);
out:
	cfg_errors_release(&errs);
	watchlist_free(wl);
	watchlist_free(wf);
	free(text);
	return 0;
}
