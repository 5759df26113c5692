/* Unit tests for rules/watchlist: normalisation, entry kinds, file parsing and errors, fuzzy
 * matching with OCR look-alikes, countries, tie-breaks, a 100k list against a brute-force
 * scan, and the reload scenario (bad file keeps the old set, good file replaces it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "rules/watchlist.h"

#define DATA "tests/data/watchlists/"

/* A list from inline entries, built. */
static struct watchlist *inline_list(int fuzzy, const char **entries)
{
	struct cfg_errors errs = {0};
	struct watchlist *wl = watchlist_new("test", fuzzy);
	int i;

	assert_non_null(wl);
	for (i = 0; entries[i] != NULL; i++)
		assert_int_equal(watchlist_add(wl, entries[i], "config.yaml", 10 + i, 7, &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_int_equal(watchlist_build(wl), 0);
	return wl;
}

static const char *match_entry(const struct watchlist *wl, const char *plate, const char *country,
                               int *distance)
{
	struct watchlist_match m;

	if (!watchlist_match(wl, plate, country, &m))
		return NULL;
	if (distance != NULL)
		*distance = m.distance;
	return m.entry;
}

/* "FILE:LINE:COL: text", ":COL" only when known, only the text when line is 0. */
static const char *errtext(const struct cfg_errors *errs, size_t i)
{
	static char buf[512];
	const struct cfg_error *e;

	assert_true(i < errs->n);
	e = &errs->v[i];
	if (e->line <= 0)
		snprintf(buf, sizeof(buf), "%s", e->text);
	else if (e->column <= 0)
		snprintf(buf, sizeof(buf), "%s:%d: %s", e->file, e->line, e->text);
	else
		snprintf(buf, sizeof(buf), "%s:%d:%d: %s", e->file, e->line, e->column, e->text);
	return buf;
}

static void test_normalize_strips_and_upcases(void **state)
{
	char out[WATCHLIST_PLATE_MAX + 1];

	(void)state;
	assert_int_equal(plate_normalize("AB12 cde", out, sizeof(out), false), 7);
	assert_string_equal(out, "AB12CDE");
	plate_normalize("ab-12-cde", out, sizeof(out), false);
	assert_string_equal(out, "AB12CDE");
	plate_normalize(" j*n-**?234 ", out, sizeof(out), true);
	assert_string_equal(out, "J*N*?234");
	plate_normalize("j*n?", out, sizeof(out), false);
	assert_string_equal(out, "JN");
	assert_int_equal(plate_normalize("--  ..", out, sizeof(out), false), 0);
	assert_string_equal(out, "");
	/* truncation is reported by the length, output stays terminated */
	assert_int_equal(plate_normalize("ABCDEFGH", out, 4, false), 8);
	assert_string_equal(out, "ABC");
}

static void test_distance_counts_edits_not_lookalikes(void **state)
{
	(void)state;
	assert_int_equal(plate_distance("AB12CDE", "AB12CDE", 3), 0);
	assert_int_equal(plate_distance("AB12CDE", "A812CDE", 3), 0); /* 8/B */
	assert_int_equal(plate_distance("0ODQ", "ODQ0", 3), 0);
	assert_int_equal(plate_distance("SIZG", "5126", 3), 0);
	assert_int_equal(plate_distance("AB12CDE", "AB12CD", 3), 1);   /* delete */
	assert_int_equal(plate_distance("AB12CDE", "AB123CDE", 3), 1); /* insert */
	assert_int_equal(plate_distance("AB12CDE", "AB12CXE", 3), 1);  /* substitute */
	assert_int_equal(plate_distance("AB12CDE", "XY12CDE", 3), 2);
	assert_int_equal(plate_distance("AB12CDE", "XY12CDE", 1), 2); /* max + 1 */
	assert_int_equal(plate_distance("ABCDEFG", "HJKMNPR", 2), 3);
}

static void test_exact_match_ignores_spacing_and_case(void **state)
{
	const char *entries[] = {"AB12 CDE", "XY99ZZZ", NULL};
	struct watchlist *wl = inline_list(0, entries);
	struct watchlist_match m;

	(void)state;
	assert_true(watchlist_match(wl, "ab-12-cde", NULL, &m));
	assert_string_equal(m.watchlist, "test");
	assert_string_equal(m.entry, "AB12 CDE");
	assert_null(m.label);
	assert_null(m.country);
	assert_int_equal(m.distance, 0);
	assert_false(watchlist_match(wl, "AB12CDF", NULL, &m));
	assert_false(watchlist_match(wl, "", NULL, &m));
	assert_false(watchlist_match(wl, "AB12CDEAB12CDEAB12CDEAB12CDEAB12CDE", NULL, &m));
	assert_int_equal(watchlist_size(wl), 2);
	watchlist_free(wl);
}

static void test_wildcards_star_any_run_question_one_char(void **state)
{
	const char *entries[] = {"J*N-*234", "MN??PQR", NULL};
	struct watchlist *wl = inline_list(0, entries);

	(void)state;
	assert_string_equal(match_entry(wl, "JN234", NULL, NULL), "J*N-*234"); /* empty runs */
	assert_string_equal(match_entry(wl, "JAXN 99 234", NULL, NULL), "J*N-*234");
	assert_null(match_entry(wl, "JN2345", NULL, NULL));
	assert_null(match_entry(wl, "XJN234", NULL, NULL));
	assert_string_equal(match_entry(wl, "MN12PQR", NULL, NULL), "MN??PQR");
	assert_null(match_entry(wl, "MN1PQR", NULL, NULL));
	assert_null(match_entry(wl, "MN123PQR", NULL, NULL));
	/* patterns compare characters exactly: no look-alikes */
	assert_null(match_entry(wl, "MN12P0R", NULL, NULL));
	watchlist_free(wl);
}

static void test_regex_matches_normalised_plate(void **state)
{
	const char *entries[] = {"/^K[0-9]{2}ABC$/,regex", "/XX/", NULL};
	struct watchlist *wl = inline_list(1, entries);
	struct watchlist_match m;

	(void)state;
	assert_true(watchlist_match(wl, "k 12-abc", NULL, &m));
	assert_string_equal(m.entry, "/^K[0-9]{2}ABC$/");
	assert_string_equal(m.label, "regex");
	assert_int_equal(m.distance, 0);
	assert_null(match_entry(wl, "K123ABC", NULL, NULL));
	assert_null(match_entry(wl, "AK12ABC", NULL, NULL));              /* anchored as written */
	assert_string_equal(match_entry(wl, "AXXB", NULL, NULL), "/XX/"); /* unanchored */
	watchlist_free(wl);
}

static void test_bad_regex_reports_file_and_line(void **state)
{
	struct cfg_errors errs = {0};
	struct watchlist *wl = watchlist_new("w", 0);

	(void)state;
	assert_int_equal(watchlist_add(wl, "/[A-/,label", "config.yaml", 40, 9, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.v[0].line, 40);
	assert_int_equal(errs.v[0].column, 9);
	assert_non_null(strstr(errtext(&errs, 0), "config.yaml:40:9: bad regex '/[A-/': "));
	assert_int_equal(watchlist_add(wl, "/AB", "config.yaml", 41, 9, &errs), -1);
	assert_string_equal(errtext(&errs, 1), "config.yaml:41:9: unterminated regex '/AB'");
	assert_int_equal(watchlist_size(wl), 0);
	cfg_errors_release(&errs);
	watchlist_free(wl);
}

static void test_file_reads_labels_countries_comments(void **state)
{
	struct cfg_errors errs = {0};
	struct watchlist *wl = watchlist_new("stolen", 0);
	struct watchlist_match m;

	(void)state;
	assert_int_equal(watchlist_load_file(wl, DATA "good.txt", &errs), 0);
	assert_int_equal(errs.n, 0);
	assert_int_equal(watchlist_size(wl), 5);
	assert_int_equal(watchlist_build(wl), 0);

	assert_true(watchlist_match(wl, "AB12CDE", "GBR", &m));
	assert_string_equal(m.watchlist, "stolen");
	assert_string_equal(m.entry, "AB12 CDE");
	assert_string_equal(m.label, "Red Ford");
	assert_string_equal(m.country, "GBR");

	assert_true(watchlist_match(wl, "XY34ZZZ", NULL, &m));
	assert_string_equal(m.entry, "xy-34-zzz");
	assert_string_equal(m.label, "Blue van");
	assert_null(m.country);

	assert_true(watchlist_match(wl, "JON1234", NULL, &m));
	assert_string_equal(m.entry, "J*N*234");
	assert_null(m.label); /* empty label field */
	assert_string_equal(m.country, "GBR");

	assert_true(watchlist_match(wl, "K12ABC", "fra", &m));
	assert_string_equal(m.label, "regex entry");
	assert_string_equal(m.country, "FRA");
	assert_string_equal(match_entry(wl, "MN00PQR", NULL, NULL), "MN??PQR");
	cfg_errors_release(&errs);
	watchlist_free(wl);
}

static void test_file_errors_all_reported_with_lines(void **state)
{
	struct cfg_errors errs = {0};
	struct watchlist *wl = watchlist_new("bad", 0);

	(void)state;
	assert_int_equal(watchlist_load_file(wl, DATA "bad.txt", &errs), -1);
	assert_int_equal(errs.n, 5);
	assert_string_equal(errtext(&errs, 0), DATA "bad.txt:3:1: empty plate");
	assert_non_null(strstr(errtext(&errs, 1), DATA "bad.txt:4:1: bad regex '/[A-/': "));
	assert_string_equal(errtext(&errs, 2),
	                    DATA "bad.txt:5:18: too many fields (want PLATE[,label[,country]])");
	assert_string_equal(errtext(&errs, 3),
	                    DATA "bad.txt:6:1: plate '--' has no letters or digits");
	assert_string_equal(errtext(&errs, 4), DATA
	                    "bad.txt:7:15: bad country 'GB' (want ISO 3166 alpha-3, like GBR)");
	assert_int_equal(errs.v[4].line, 7);
	assert_string_equal(errs.v[4].file, DATA "bad.txt");
	/* the good lines around the bad ones are kept */
	assert_int_equal(watchlist_size(wl), 2);
	cfg_errors_release(&errs);
	assert_null(errs.v);
	watchlist_free(wl);
}

static void test_unreadable_file_is_an_error(void **state)
{
	struct cfg_errors errs = {0};
	struct watchlist *wl = watchlist_new("gone", 0);

	(void)state;
	assert_int_equal(watchlist_load_file(wl, DATA "missing.txt", &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errtext(&errs, 0),
	                    "unable to open '" DATA "missing.txt': No such file or directory");
	cfg_errors_release(&errs);
	watchlist_free(wl);
}

static void test_error_flood_is_capped_and_counted(void **state)
{
	char path[] = "/tmp/test_watchlist_flood.XXXXXX";
	struct cfg_errors errs = {0};
	struct watchlist *wl = watchlist_new("flood", 0);
	FILE *f;
	int fd, i;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	for (i = 0; i < 150; i++)
		fprintf(f, "%s\n", i == 75 ? "AB12CDE" : ",x");
	assert_int_equal(fclose(f), 0);
	assert_int_equal(watchlist_load_file(wl, path, &errs), -1);
	assert_int_equal(errs.n, 101);
	assert_int_equal(errs.v[99].line, 101); /* line 76 was good */
	assert_int_equal(errs.v[100].line, 0);
	assert_non_null(strstr(errs.v[100].text, "49 more errors not shown"));
	assert_int_equal(watchlist_size(wl), 1);
	cfg_errors_release(&errs);
	watchlist_free(wl);
	assert_int_equal(unlink(path), 0);
}

static void test_byte_order_mark_is_skipped(void **state)
{
	char path[] = "/tmp/test_watchlist_bom.XXXXXX";
	struct watchlist *wl = watchlist_new("bom", 0);
	struct watchlist_match m;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd,
	                       "\xef\xbb\xbf"
	                       "AB12CDE,first\n",
	                       17),
	                 17);
	assert_int_equal(close(fd), 0);
	assert_int_equal(watchlist_load_file(wl, path, NULL), 0);
	assert_int_equal(watchlist_build(wl), 0);
	assert_true(watchlist_match(wl, "AB12CDE", NULL, &m));
	assert_string_equal(m.entry, "AB12CDE");
	watchlist_free(wl);
	assert_int_equal(unlink(path), 0);
}

static void test_inline_entry_errors(void **state)
{
	struct cfg_errors errs = {0};
	struct watchlist *wl = watchlist_new("w", 0);

	(void)state;
	assert_int_equal(watchlist_add(wl, "  ", "c.yaml", 3, 5, &errs), -1);
	assert_int_equal(
	    watchlist_add(wl, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", "c.yaml", 4, 5, &errs), -1);
	assert_int_equal(watchlist_add(wl, "AB12CDE,x,GBRX", "c.yaml", 5, 5, &errs), -1);
	assert_int_equal(watchlist_add(wl, "/AB/ x", "c.yaml", 6, 5, &errs), -1);
	assert_int_equal(watchlist_add(wl, "//", "c.yaml", 7, 5, &errs), -1);
	assert_int_equal(errs.n, 5);
	assert_string_equal(errtext(&errs, 0), "c.yaml:3:5: empty plate");
	assert_non_null(strstr(errtext(&errs, 1), "c.yaml:4:5: plate 'ABCDEFGHIJ"));
	assert_non_null(strstr(errtext(&errs, 1), "longer than 32 characters"));
	assert_non_null(strstr(errtext(&errs, 2), "bad country 'GBRX'"));
	assert_non_null(strstr(errtext(&errs, 3), "unexpected text after regex"));
	assert_non_null(strstr(errtext(&errs, 4), "empty regex"));
	assert_int_equal(watchlist_add(wl, "AB12CDE , my car , gbr ", "c.yaml", 8, 5, &errs), 0);
	assert_int_equal(errs.n, 5);
	assert_int_equal(watchlist_size(wl), 1);
	cfg_errors_release(&errs);
	watchlist_free(wl);
}

/* One entry through watchlist_add: NULL when accepted, else the error text. */
static const char *add_one(struct watchlist *wl, const char *entry)
{
	static char buf[512];
	struct cfg_errors errs = {0};

	if (watchlist_add(wl, entry, "c.yaml", 2, 3, &errs) == 0) {
		assert_int_equal(errs.n, 0);
		return NULL;
	}
	assert_int_equal(errs.n, 1);
	snprintf(buf, sizeof(buf), "%s", errtext(&errs, 0));
	cfg_errors_release(&errs);
	return buf;
}

/* Regexes are checked before regcomp, so a pattern regcomp would take seconds and a
 * gigabyte over (a million copies of 'a') is refused without being compiled. */
static void test_regex_repeats_are_bounded(void **state)
{
	struct watchlist *wl = watchlist_new("w", 0);
	char longre[WATCHLIST_REGEX_MAX + 8], wide[200] = "/";
	int i;

	(void)state;
	assert_string_equal(add_one(wl, "/((a{1,100}){1,100}){1,100}/"),
	                    "c.yaml:2:3: bad regex '/((a{1,100}){1,100}){1,100}/': "
	                    "repeat count above 32");
	assert_string_equal(add_one(wl, "/A{33}/"),
	                    "c.yaml:2:3: bad regex '/A{33}/': repeat count above 32");
	assert_string_equal(add_one(wl, "/A{99999999999999999999}/"),
	                    "c.yaml:2:3: bad regex '/A{99999999999999999999}/': "
	                    "repeat count above 32");
	assert_string_equal(add_one(wl, "/((a{1,32}){1,32}){1,32}/"),
	                    "c.yaml:2:3: bad regex '/((a{1,32}){1,32}){1,32}/': "
	                    "nested repeat counts multiply to more than 256");
	assert_string_equal(add_one(wl, "/a{32}{9}/"),
	                    "c.yaml:2:3: bad regex '/a{32}{9}/': "
	                    "nested repeat counts multiply to more than 256");
	/* sixteen groups of 8 x 32 copies, each within the nesting limit */
	for (i = 0; i < 16; i++)
		strcat(wide, "(a{32}){8}");
	strcat(wide, "/");
	assert_non_null(strstr(add_one(wl, wide), "expands to more than 4096 elements"));
	memset(longre, 'A', sizeof(longre));
	longre[0] = '/';
	longre[WATCHLIST_REGEX_MAX + 2] = '/';
	longre[WATCHLIST_REGEX_MAX + 3] = '\0';
	assert_non_null(strstr(add_one(wl, longre), "' is longer than 256 bytes"));
	longre[WATCHLIST_REGEX_MAX + 1] = '/';
	longre[WATCHLIST_REGEX_MAX + 2] = '\0';
	assert_null(add_one(wl, longre)); /* exactly 256 */
	assert_int_equal(watchlist_size(wl), 1);
	watchlist_free(wl);
}

static void test_regex_scanner_refuses_what_it_cannot_bound(void **state)
{
	struct watchlist *wl = watchlist_new("w", 0);

	(void)state;
	assert_string_equal(add_one(wl, "/(A)\\1/"),
	                    "c.yaml:2:3: bad regex '/(A)\\1/': back-references are not supported");
	assert_string_equal(add_one(wl, "/*A/"),
	                    "c.yaml:2:3: bad regex '/*A/': '*' has nothing to repeat");
	assert_string_equal(add_one(wl, "/A|{2}/"),
	                    "c.yaml:2:3: bad regex '/A|{2}/': '{' has nothing to repeat");
	assert_string_equal(add_one(wl, "/A)(B{1,100}){1,100}/"),
	                    "c.yaml:2:3: bad regex '/A)(B{1,100}){1,100}/': unmatched ')'");
	assert_string_equal(add_one(wl, "/(AB/"), "c.yaml:2:3: bad regex '/(AB/': unmatched '('");
	assert_string_equal(add_one(wl, "/[[:alpha]/"),
	                    "c.yaml:2:3: bad regex '/[[:alpha]/': unmatched '['");
	assert_string_equal(add_one(wl, "/A\\/"),
	                    "c.yaml:2:3: bad regex '/A\\/': trailing backslash");
	assert_string_equal(add_one(wl, "/A{2,1}/"),
	                    "c.yaml:2:3: bad regex '/A{2,1}/': repeat count {m,n} with m above n");
	assert_string_equal(add_one(wl, "/A{x}/"), "c.yaml:2:3: bad regex '/A{x}/': bad repeat "
	                                           "count: want {m}, {m,}, {,n} or {m,n}");
	assert_int_equal(watchlist_size(wl), 0);
	watchlist_free(wl);
}

static void test_regex_within_limits_still_works(void **state)
{
	const char *entries[] = {
	    "/^(A{1,16}){1,16}$/,nested", "/^[[:alpha:]]{2}[0-9]{2,}[]X]?$/,classes",
	    "/^(B|C+|D{,3})*E{3,}$/,ops", "/^\\(?F\\)?$/,escapes",
	    "/^G()H$/,empty group",       NULL};
	struct watchlist *wl = inline_list(0, entries);
	struct watchlist_match m;

	(void)state;
	assert_true(watchlist_match(wl, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", NULL, &m));
	assert_string_equal(m.label, "nested");
	assert_true(watchlist_match(wl, "KJ123", NULL, &m));
	assert_string_equal(m.label, "classes");
	assert_true(watchlist_match(wl, "BCCDDEEE", NULL, &m));
	assert_string_equal(m.label, "ops");
	assert_true(watchlist_match(wl, "F", NULL, &m));
	assert_string_equal(m.label, "escapes");
	assert_true(watchlist_match(wl, "GH", NULL, &m));
	assert_string_equal(m.label, "empty group");
	watchlist_free(wl);
}

/* A temporary directory for file-kind tests; removed by the test. */
static void tmpdir(char *dir, size_t n)
{
	snprintf(dir, n, "/tmp/test_watchlist_kind.XXXXXX");
	assert_non_null(mkdtemp(dir));
}

static void expect_file_error(struct watchlist *wl, const char *path, const char *text)
{
	struct cfg_errors errs = {0};
	char want[600];

	assert_int_equal(watchlist_load_file(wl, path, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.v[0].line, 0);
	snprintf(want, sizeof(want), "'%s' %s", path, text);
	assert_string_equal(errs.v[0].text, want);
	cfg_errors_release(&errs);
}

static void test_only_regular_files_are_read(void **state)
{
	struct watchlist *wl = watchlist_new("kinds", 0);
	char dir[64], fifo[96];

	(void)state;
	tmpdir(dir, sizeof(dir));
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	/* opened without O_NONBLOCK, a FIFO with no writer would hang here */
	expect_file_error(wl, fifo, "is not a regular file");
	expect_file_error(wl, dir, "is not a regular file");
	expect_file_error(wl, "/dev/zero", "is not a regular file");
	assert_int_equal(watchlist_size(wl), 0);
	/* refused files are remembered as they are: only a change retries the load */
	assert_false(watchlist_file_changed(wl));
	assert_int_equal(unlink(fifo), 0);
	assert_true(watchlist_file_changed(wl));
	watchlist_free(wl);
	assert_int_equal(rmdir(dir), 0);
}

static void test_file_size_is_capped(void **state)
{
	struct watchlist *wl = watchlist_new("big", 0);
	char dir[64], path[96];
	int fd;

	(void)state;
	tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/big.txt", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "AB12CDE\n", 8), 8);
	/* sparse: nothing is written or read past the first line */
	assert_int_equal(ftruncate(fd, WATCHLIST_FILE_MAX + 1), 0);
	assert_int_equal(close(fd), 0);
	expect_file_error(wl, path, "is larger than 64 MiB");
	assert_int_equal(watchlist_size(wl), 0);
	watchlist_free(wl);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_long_lines_and_entries_are_refused(void **state)
{
	struct watchlist *wl = watchlist_new("long", 0);
	char path[] = "/tmp/test_watchlist_long.XXXXXX", line[WATCHLIST_LINE_MAX + 2];
	char want[600];
	struct cfg_errors errs = {0};
	FILE *f;
	int fd;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	memset(line, ' ', sizeof(line));
	line[0] = 'X';
	line[WATCHLIST_LINE_MAX + 1] = '\0'; /* 1,025 bytes */
	fprintf(f, "AB12CDE\n%s\n", line);
	line[0] = '#';
	line[WATCHLIST_LINE_MAX] = '\0'; /* 1,024 bytes: the longest line */
	fprintf(f, "%s\nXY34ZZZ\n", line);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(watchlist_load_file(wl, path, &errs), -1);
	assert_int_equal(errs.n, 1);
	snprintf(want, sizeof(want), "%s:2: line longer than 1024 bytes", path);
	assert_string_equal(errtext(&errs, 0), want);
	assert_int_equal(watchlist_size(wl), 2);
	cfg_errors_release(&errs);

	line[0] = 'X';
	line[WATCHLIST_LINE_MAX] = ' ';
	assert_string_equal(add_one(wl, line), "c.yaml:2:3: entry longer than 1024 bytes");
	line[WATCHLIST_LINE_MAX] = '\0';
	assert_null(add_one(wl, line));
	watchlist_free(wl);
	assert_int_equal(unlink(path), 0);
}

static void test_fuzzy1_accepts_one_real_edit(void **state)
{
	const char *entries[] = {"AB12CDE", NULL};
	struct watchlist *wl = inline_list(1, entries);
	int d = -1;

	(void)state;
	assert_string_equal(match_entry(wl, "AB12CDE", NULL, &d), "AB12CDE");
	assert_int_equal(d, 0);
	assert_non_null(match_entry(wl, "AB12CXE", NULL, &d)); /* substitute */
	assert_int_equal(d, 1);
	assert_non_null(match_entry(wl, "AB12CD", NULL, &d)); /* delete */
	assert_int_equal(d, 1);
	assert_non_null(match_entry(wl, "AB12CDEX", NULL, &d)); /* insert at the end */
	assert_int_equal(d, 1);
	assert_non_null(match_entry(wl, "XAB12CDE", NULL, &d)); /* insert at the start */
	assert_int_equal(d, 1);
	assert_null(match_entry(wl, "AB12XXE", NULL, NULL)); /* two edits */
	assert_null(match_entry(wl, "B12CD", NULL, NULL));
	watchlist_free(wl);
}

static void test_fuzzy_lookalikes_cost_nothing(void **state)
{
	const char *entries[] = {"AB12CDE", "OS50GG", NULL};
	struct watchlist *wl1 = inline_list(1, entries);
	struct watchlist *wl0 = inline_list(0, entries);
	int d = -1;

	(void)state;
	assert_string_equal(match_entry(wl1, "A812CDE", NULL, &d), "AB12CDE"); /* 8/B */
	assert_int_equal(d, 0);
	assert_string_equal(match_entry(wl1, "0550G6", NULL, &d), "OS50GG"); /* 0/O 5/S 6/G */
	assert_int_equal(d, 0);
	/* a look-alike plus one real edit is distance 1 */
	assert_string_equal(match_entry(wl1, "A8I2CDX", NULL, &d), "AB12CDE");
	assert_int_equal(d, 1);
	/* look-alikes match at fuzzy 0 too: they are not edits */
	assert_string_equal(match_entry(wl0, "ABIZC0E", NULL, &d), "AB12CDE");
	assert_int_equal(d, 0);
	watchlist_free(wl1);
	watchlist_free(wl0);
}

static void test_fuzzy0_rejects_one_edit(void **state)
{
	const char *entries[] = {"AB12CDE", NULL};
	struct watchlist *wl = inline_list(0, entries);

	(void)state;
	assert_non_null(match_entry(wl, "AB12CDE", NULL, NULL));
	assert_null(match_entry(wl, "AB12CXE", NULL, NULL));
	assert_null(match_entry(wl, "AB12CD", NULL, NULL));
	assert_null(match_entry(wl, "AB12CDEE", NULL, NULL));
	watchlist_free(wl);
}

static void test_fuzzy2_and_3_reach_further(void **state)
{
	const char *entries[] = {"AB12CDE", NULL};
	struct watchlist *wl2 = inline_list(2, entries);
	struct watchlist *wl3 = inline_list(3, entries);
	int d = -1;

	(void)state;
	assert_non_null(match_entry(wl2, "AX12CXE", NULL, &d));
	assert_int_equal(d, 2);
	assert_null(match_entry(wl2, "AX1XCXE", NULL, NULL));
	assert_non_null(match_entry(wl3, "AX1XCXE", NULL, &d));
	assert_int_equal(d, 3);
	assert_non_null(match_entry(wl3, "12CD", NULL, &d));
	assert_int_equal(d, 3);
	watchlist_free(wl2);
	watchlist_free(wl3);
}

static void test_country_must_match_when_both_known(void **state)
{
	const char *entries[] = {"AB12CDE,uk car,GBR", "XY99ZZZ", "K*,,FRA", NULL};
	struct watchlist *wl = inline_list(1, entries);

	(void)state;
	assert_non_null(match_entry(wl, "AB12CDE", "GBR", NULL));
	assert_non_null(match_entry(wl, "AB12CDE", "gbr", NULL));
	assert_non_null(match_entry(wl, "AB12CDE", NULL, NULL)); /* read without country */
	assert_non_null(match_entry(wl, "AB12CDE", "", NULL));
	assert_null(match_entry(wl, "AB12CDE", "FRA", NULL));
	assert_null(match_entry(wl, "AB12CXE", "FRA", NULL));     /* fuzzy path too */
	assert_non_null(match_entry(wl, "XY99ZZZ", "DEU", NULL)); /* entry without country */
	assert_non_null(match_entry(wl, "K1", "FRA", NULL));
	assert_null(match_entry(wl, "K1", "DEU", NULL));
	watchlist_free(wl);
}

static void test_best_is_smallest_distance_then_first(void **state)
{
	const char *entries[] = {"AB12CDX,far",       "AB12CDE,first", "AB12CDE,second",
	                         "A812CDE,lookalike", "XY*,pattern",   NULL};
	const char *later[] = {"AB12CDX,one-edit", "AB1*,pattern", "AB12CDE,exact", NULL};
	struct watchlist *wl = inline_list(1, entries);
	const char *third[] = {"AB12CDE,exact", "AB*,pattern", NULL};
	struct watchlist *wl2 = inline_list(1, later);
	struct watchlist *wl3 = inline_list(1, third);
	struct watchlist_match m;

	(void)state;
	assert_true(watchlist_match(wl, "AB12CDE", NULL, &m));
	assert_string_equal(m.label, "first");
	assert_int_equal(m.distance, 0);
	/* one edit from both "far" and "first": file order decides */
	assert_true(watchlist_match(wl, "AB12CDY", NULL, &m));
	assert_string_equal(m.label, "far");
	/* a distance-0 pattern beats an earlier one-edit plate */
	assert_true(watchlist_match(wl2, "AB12CDZ", NULL, &m));
	assert_string_equal(m.label, "pattern");
	assert_int_equal(m.distance, 0);
	/* an earlier pattern beats a later exact plate at equal distance */
	assert_true(watchlist_match(wl2, "AB12CDE", NULL, &m));
	assert_string_equal(m.label, "pattern");
	/* and an earlier exact plate beats a later pattern */
	assert_true(watchlist_match(wl3, "AB12CDE", NULL, &m));
	assert_string_equal(m.label, "exact");
	assert_true(watchlist_match(wl3, "AB12CDF", NULL, &m));
	assert_string_equal(m.label, "pattern");
	watchlist_free(wl3);
	watchlist_free(wl);
	watchlist_free(wl2);
}

/* ---- large list against a brute-force scan ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static void random_plate(char *out, const char *alphabet)
{
	int len = 5 + (int)rnd(4), i;

	for (i = 0; i < len; i++)
		out[i] = alphabet[rnd((uint32_t)strlen(alphabet))];
	out[len] = '\0';
}

static void mutate(char *p, int edits, const char *alphabet)
{
	uint32_t na = (uint32_t)strlen(alphabet);
	int e;

	for (e = 0; e < edits; e++) {
		size_t len = strlen(p), pos = rnd((uint32_t)len);

		switch (rnd(3)) {
		case 0:
			p[pos] = alphabet[rnd(na)];
			break;
		case 1:
			if (len > 1)
				memmove(p + pos, p + pos + 1, len - pos);
			break;
		default:
			if (len < 20) {
				memmove(p + pos + 1, p + pos, len - pos + 1);
				p[pos] = alphabet[rnd(na)];
			}
		}
	}
}

#define WIDE "ABCDEFGHJKMNPRTUVWXY0123456789OSBIZG"
#define NARROW "AB8O0X" /* many runs and look-alikes */

/* Builds n random plates (some duplicated) and checks that queries near them get the same
 * answer (entry, distance, first in file order) as a scan with plate_distance. */
static void check_against_brute_force(int n, int fuzzy, int queries, const char *alphabet)
{
	struct watchlist *wl = watchlist_new("large", fuzzy);
	char(*plates)[24] = malloc((size_t)n * sizeof(*plates));
	char line[64], q[32];
	int i, j, hits = 0, fuzzy_hits = 0;

	assert_non_null(plates);
	for (i = 0; i < n; i++) {
		if (i > 0 && rnd(100) == 0) /* some duplicates to exercise tie-breaks */
			strcpy(plates[i], plates[rnd((uint32_t)i)]);
		else
			random_plate(plates[i], alphabet);
		snprintf(line, sizeof(line), "%s,%d", plates[i], i);
		assert_int_equal(watchlist_add(wl, line, NULL, 0, 0, NULL), 0);
	}
	assert_int_equal(watchlist_build(wl), 0);
	for (j = 0; j < queries; j++) {
		struct watchlist_match m;
		int best = -1, best_d = fuzzy + 1;
		bool found;

		if (j % 3 == 2) {
			random_plate(q, alphabet);
		} else {
			strcpy(q, plates[rnd((uint32_t)n)]);
			mutate(q, (int)rnd((uint32_t)fuzzy + 2), alphabet);
		}
		for (i = 0; i < n; i++) {
			int d = plate_distance(q, plates[i], fuzzy);

			if (d < best_d) {
				best_d = d;
				best = i;
			}
		}
		found = watchlist_match(wl, q, NULL, &m);
		assert_int_equal(found, best >= 0);
		if (!found)
			continue;
		hits++;
		fuzzy_hits += best_d > 0;
		assert_int_equal(m.distance, best_d);
		assert_int_equal(atoi(m.label), best);
		assert_string_equal(m.entry, plates[best]);
	}
	/* the query mix must exercise both exact and fuzzy hits */
	assert_true(hits > queries / 5);
	if (fuzzy > 0)
		assert_true(fuzzy_hits > queries / 20);
	free(plates);
	watchlist_free(wl);
}

/* plate_distance with max 0 or 1 takes a linear path; it must agree with the full one. */
static void test_distance_small_max_agrees_with_full(void **state)
{
	char a[32], b[32];
	int i, ones = 0;

	(void)state;
	for (i = 0; i < 20000; i++) {
		int full, d0, d1;

		random_plate(a, NARROW);
		strcpy(b, a);
		mutate(b, (int)rnd(3), NARROW);
		full = plate_distance(a, b, 3);
		d1 = plate_distance(a, b, 1);
		d0 = plate_distance(a, b, 0);
		assert_int_equal(d1, full <= 1 ? full : 2);
		assert_int_equal(d0, full == 0 ? 0 : 1);
		ones += full == 1;
	}
	assert_true(ones > 1000);
}

static void test_large_list_fuzzy1_agrees_with_brute_force(void **state)
{
	(void)state;
	check_against_brute_force(100000, 1, 300, WIDE);
}

static void test_large_list_fuzzy0_agrees_with_brute_force(void **state)
{
	(void)state;
	check_against_brute_force(100000, 0, 100, WIDE);
}

static void test_fuzzy2_and_3_agree_with_brute_force(void **state)
{
	(void)state;
	check_against_brute_force(3000, 2, 300, WIDE);
	check_against_brute_force(3000, 2, 300, NARROW);
	check_against_brute_force(1000, 3, 300, WIDE);
	check_against_brute_force(1000, 3, 300, NARROW);
	check_against_brute_force(2000, 1, 300, NARROW);
}

/* ---- reload ---- */

static void write_atomically(const char *dir, const char *path, const char *text)
{
	char tmp[512];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s/.tmp-list", dir);
	f = fopen(tmp, "w");
	assert_non_null(f);
	assert_true(fputs(text, f) >= 0);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(rename(tmp, path), 0);
}

/* What a config reload does: a fresh set from the files, or NULL with errors. */
static struct watchlist_set *load_set(const char *path, struct cfg_errors *errs)
{
	struct watchlist_set *set = watchlist_set_new();
	struct watchlist *wl = watchlist_new("stolen", 1);
	int rc;

	assert_non_null(set);
	assert_non_null(wl);
	rc = watchlist_load_file(wl, path, errs);
	if (rc == 0)
		rc = watchlist_build(wl);
	assert_int_equal(watchlist_set_add(set, wl), 0);
	if (rc != 0) {
		watchlist_set_free(set);
		return NULL;
	}
	return set;
}

static void test_reload_keeps_old_set_until_file_is_good(void **state)
{
	char dir[] = "/tmp/test_watchlist.XXXXXX", path[512];
	struct cfg_errors errs = {0};
	struct watchlist_set *cur, *next;
	struct watchlist_match m;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/stolen.txt", dir);
	write_atomically(dir, path, "AB12CDE,old\n");
	cur = load_set(path, &errs);
	assert_non_null(cur);
	assert_int_equal(watchlist_set_count(cur), 1);
	assert_false(watchlist_set_changed(cur));
	assert_true(watchlist_match(watchlist_set_get(cur, "stolen"), "AB12CDE", NULL, &m));

	/* a bad version: detected, refused with its errors, the old set still answers */
	write_atomically(dir, path, "AB12CDE,old\nXY99ZZZ,new\n/[A-/\n");
	assert_true(watchlist_set_changed(cur));
	next = load_set(path, &errs);
	assert_null(next);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.v[0].line, 3);
	assert_non_null(strstr(errs.v[0].text, "bad regex"));
	cfg_errors_release(&errs);
	assert_true(watchlist_match(watchlist_set_get(cur, "stolen"), "AB12CDE", NULL, &m));
	assert_string_equal(m.label, "old");

	/* a good version replaces it */
	write_atomically(dir, path, "XY99ZZZ,new\n");
	assert_true(watchlist_set_changed(cur));
	next = load_set(path, &errs);
	assert_non_null(next);
	assert_int_equal(errs.n, 0);
	watchlist_set_free(cur);
	cur = next;
	assert_false(watchlist_set_changed(cur));
	assert_true(watchlist_match(watchlist_set_get(cur, "stolen"), "XY99ZZZ", NULL, &m));
	assert_string_equal(m.label, "new");
	assert_false(watchlist_match(watchlist_set_get(cur, "stolen"), "AB12CDE", NULL, &m));

	/* a deleted file counts as changed */
	assert_int_equal(unlink(path), 0);
	assert_true(watchlist_set_changed(cur));
	watchlist_set_free(cur);
	assert_int_equal(rmdir(dir), 0);
}

static void test_set_refuses_duplicate_names(void **state)
{
	struct watchlist_set *set = watchlist_set_new();

	(void)state;
	assert_int_equal(watchlist_set_add(set, watchlist_new("a", 0)), 0);
	assert_int_equal(watchlist_set_add(set, watchlist_new("b", 0)), 0);
	assert_int_equal(watchlist_set_add(set, watchlist_new("a", 1)), -1);
	assert_int_equal(watchlist_set_count(set), 2);
	assert_null(watchlist_set_get(set, "c"));
	assert_string_equal(watchlist_name(watchlist_set_get(set, "b")), "b");
	assert_null(watchlist_new("x", 4));
	assert_null(watchlist_new("x", -1));
	watchlist_set_free(set);
}

static void test_unbuilt_list_matches_nothing(void **state)
{
	struct watchlist *wl = watchlist_new("w", 0);

	(void)state;
	assert_int_equal(watchlist_add(wl, "AB12CDE", NULL, 0, 0, NULL), 0);
	assert_false(watchlist_match(wl, "AB12CDE", NULL, NULL));
	assert_int_equal(watchlist_build(wl), 0);
	assert_true(watchlist_match(wl, "AB12CDE", NULL, NULL));
	/* adding invalidates the index until the next build */
	assert_int_equal(watchlist_add(wl, "XY99ZZZ", NULL, 0, 0, NULL), 0);
	assert_false(watchlist_match(wl, "XY99ZZZ", NULL, NULL));
	assert_int_equal(watchlist_build(wl), 0);
	assert_true(watchlist_match(wl, "XY99ZZZ", NULL, NULL));
	watchlist_free(wl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_normalize_strips_and_upcases),
	    cmocka_unit_test(test_distance_counts_edits_not_lookalikes),
	    cmocka_unit_test(test_exact_match_ignores_spacing_and_case),
	    cmocka_unit_test(test_wildcards_star_any_run_question_one_char),
	    cmocka_unit_test(test_regex_matches_normalised_plate),
	    cmocka_unit_test(test_bad_regex_reports_file_and_line),
	    cmocka_unit_test(test_file_reads_labels_countries_comments),
	    cmocka_unit_test(test_file_errors_all_reported_with_lines),
	    cmocka_unit_test(test_unreadable_file_is_an_error),
	    cmocka_unit_test(test_error_flood_is_capped_and_counted),
	    cmocka_unit_test(test_byte_order_mark_is_skipped),
	    cmocka_unit_test(test_inline_entry_errors),
	    cmocka_unit_test(test_regex_repeats_are_bounded),
	    cmocka_unit_test(test_regex_scanner_refuses_what_it_cannot_bound),
	    cmocka_unit_test(test_regex_within_limits_still_works),
	    cmocka_unit_test(test_only_regular_files_are_read),
	    cmocka_unit_test(test_file_size_is_capped),
	    cmocka_unit_test(test_long_lines_and_entries_are_refused),
	    cmocka_unit_test(test_fuzzy1_accepts_one_real_edit),
	    cmocka_unit_test(test_fuzzy_lookalikes_cost_nothing),
	    cmocka_unit_test(test_fuzzy0_rejects_one_edit),
	    cmocka_unit_test(test_fuzzy2_and_3_reach_further),
	    cmocka_unit_test(test_country_must_match_when_both_known),
	    cmocka_unit_test(test_best_is_smallest_distance_then_first),
	    cmocka_unit_test(test_distance_small_max_agrees_with_full),
	    cmocka_unit_test(test_large_list_fuzzy1_agrees_with_brute_force),
	    cmocka_unit_test(test_large_list_fuzzy0_agrees_with_brute_force),
	    cmocka_unit_test(test_fuzzy2_and_3_agree_with_brute_force),
	    cmocka_unit_test(test_reload_keeps_old_set_until_file_is_good),
	    cmocka_unit_test(test_set_refuses_duplicate_names),
	    cmocka_unit_test(test_unbuilt_list_matches_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
