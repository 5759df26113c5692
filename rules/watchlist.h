/* Plate watchlists: entries (plates, * / ? patterns, /regex/) from inline strings and files,
 * matched against normalised plate reads with OCR look-alike tolerant fuzzy matching.
 * No YAML here: the config loader calls new/add/load_file/build; reload is "build a new
 * set, swap it in if it has no errors". A built watchlist is read-only and thread-safe. */
#ifndef TB_WATCHLIST_H
#define TB_WATCHLIST_H

#include <stdbool.h>
#include <stddef.h>

#include "config/yaml.h"

#define WATCHLIST_PLATE_MAX 32 /* normalised characters; longer entries are errors */
#define WATCHLIST_FUZZY_MAX 3

/* Limits that keep a hostile or mistaken list from stalling the poller thread (lists are
 * loaded there when a file changes) or exhausting memory. A /regex/ entry is refused unless
 * its text between the slashes is at most WATCHLIST_REGEX_MAX bytes, every {m,n} bound is
 * at most WATCHLIST_PLATE_MAX (a plate has no more characters to match), the repeat counts
 * of nested repetitions multiply to at most WATCHLIST_REGEX_NEST_MAX, and the pattern
 * expands to at most WATCHLIST_REGEX_SIZE_MAX elements once repetitions are copied out
 * (regcomp copies a{1,32} 32 times); back-references are refused. A file must be a regular
 * file of at most WATCHLIST_FILE_MAX bytes, with lines and inline entries of at most
 * WATCHLIST_LINE_MAX bytes. */
#define WATCHLIST_REGEX_MAX 256
#define WATCHLIST_REGEX_NEST_MAX 256
#define WATCHLIST_REGEX_SIZE_MAX 4096
#define WATCHLIST_FILE_MAX (64L * 1024 * 1024)
#define WATCHLIST_LINE_MAX 1024

/* Problems are appended to the config's error list (config/yaml.h): file is the source
 * given, line 0 for file-level problems (unreadable file), column 0 when not known. */

/* A match. All pointers are borrowed and valid while the watchlist lives. */
struct watchlist_match {
	const char *watchlist; /* the list's name */
	const char *entry;     /* the plate field as written: "AB12 CDE", "J*N-*234", "/^AB/" */
	const char *label;     /* NULL when none */
	const char *country;   /* "GBR", or NULL when the entry has none */
	int distance;          /* 0 for patterns, regexes and exact (look-alike) matches */
};

struct watchlist;

/* name is copied; fuzzy 0..WATCHLIST_FUZZY_MAX. NULL (errno EINVAL or ENOMEM) on failure.
 * Caller frees with watchlist_free. The index files each plate under itself and its
 * deletions up to fuzzy: 1, 8, 29, 64 keys for a 7-character plate at fuzzy 0..3 (about
 * 11 bytes a key), so fuzzy 2 and 3 are meant for lists of thousands, not 100,000s. */
struct watchlist *watchlist_new(const char *name, int fuzzy);
void watchlist_free(struct watchlist *wl); /* NULL is fine */

/* Adds one "PLATE[,label[,country]]" entry. src_file/line/col only label errors (copied).
 * PLATE is a plate ("AB12 CDE"), a pattern with * (any run, also empty) and ? (one
 * character), or /regex/ (POSIX extended, case-insensitive, applied to the normalised plate,
 * anchored only where written with ^ $; it may contain commas, not '/'). Plates and patterns
 * are normalised; country is ISO 3166 alpha-3 (upper-cased). A label cannot hold a comma.
 * 0, or -1 with the problem appended to errs (errs may be NULL). Invalidates the index
 * until the next watchlist_build. */
int watchlist_add(struct watchlist *wl, const char *entry_line, const char *src_file, int line,
                  int col, struct cfg_errors *errs);
/* Adds every entry of a file (one per line, blank lines and whole-line "#" comments skipped)
 * and remembers the file's identity for watchlist_file_changed. Keeps going past bad lines:
 * 0, or -1 with every problem (up to 100 per file, then a count) appended to errs. A path
 * that is not a regular file (a directory, a FIFO, /dev/zero) or is larger than
 * WATCHLIST_FILE_MAX is one error at line 0 and nothing is read; it is opened without
 * blocking, so a FIFO with no writer cannot hold the caller. */
int watchlist_load_file(struct watchlist *wl, const char *path, struct cfg_errors *errs);
/* Builds the lookup index; call after the last add and before watchlist_match. 0, or -1
 * (ENOMEM). */
int watchlist_build(struct watchlist *wl);

/* Best entry for a read: smallest distance, ties to the first entry in load order. plate is
 * normalised here; country (NULL or "" for unknown) must equal an entry's country when both
 * are known. Exact plates use fuzzy distance; patterns and regexes match exactly (no
 * look-alikes) on the normalised plate. False when nothing matches, the read normalises to
 * nothing or to more than WATCHLIST_PLATE_MAX characters, or the list is not built. */
bool watchlist_match(const struct watchlist *wl, const char *plate, const char *country,
                     struct watchlist_match *out);
/* Exported for tests: the name (borrowed) and the number of entries added. */
const char *watchlist_name(const struct watchlist *wl);
size_t watchlist_size(const struct watchlist *wl);
/* True when a file loaded into wl now differs on disk (inode, size, mtime), is gone, or has
 * appeared after failing to open. */
bool watchlist_file_changed(const struct watchlist *wl);

/* "AB12 cde" -> "AB12CDE": upper case, ASCII letters and digits only; keep_wild keeps * and
 * ?. Writes at most outsz - 1 characters plus NUL; returns the full normalised length (a
 * return >= outsz means truncated). */
size_t plate_normalize(const char *in, char *out, size_t outsz, bool keep_wild);
/* Levenshtein distance between two plates (case-insensitive) where a substitution within
 * {0,O,D,Q} {1,I,L} {2,Z} {5,S} {8,B} {6,G} costs 0. Returns max + 1 when above max, or
 * when either string is longer than WATCHLIST_PLATE_MAX. */
int plate_distance(const char *a, const char *b, int max);

/* All watchlists of one config. */
struct watchlist_set;
struct watchlist_set *watchlist_set_new(void);      /* caller frees; NULL on ENOMEM */
void watchlist_set_free(struct watchlist_set *set); /* frees every list in it */
/* Takes ownership of wl, also on failure. -1 on ENOMEM or a duplicate name (EEXIST). */
int watchlist_set_add(struct watchlist_set *set, struct watchlist *wl);
struct watchlist *watchlist_set_get(const struct watchlist_set *set,
                                    const char *name);       /* borrowed */
size_t watchlist_set_count(const struct watchlist_set *set); /* exported for tests */
bool watchlist_set_changed(const struct watchlist_set *set); /* any list's file changed */

#endif
