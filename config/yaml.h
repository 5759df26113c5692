/* YAML documents as a tree of nodes that remember their FILE:LINE:COL, with ${VAR} and
 * ${VAR:-default} expanded in scalars, plus typed accessors that report errors in the
 * house format and keep going, so one run lists every problem. libyaml does the parsing. */
#ifndef TB_YAML_H
#define TB_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Longest broker, webhook, watchlist or rule name, in bytes. Names key the outbox, the
 * cooldown memory and the metrics, so they are checked at load and never cut later. */
#define CFG_NAME_MAX 64

/* One problem, printed as "FILE:LINE:COL: text" (line and column 1-based; 0 = unknown). */
struct cfg_error {
	char *file;
	int line, column;
	char *text;
};

/* Zero-initialise. nomem is set when an error could not be recorded (out of memory): a
 * load that sets it failed even if n did not grow. */
struct cfg_errors {
	struct cfg_error *v;
	size_t n, cap;
	bool nomem;
};

void cfg_errors_add(struct cfg_errors *errs, const char *file, int line, int column,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* True when errs got an error since it held before errors (or lost one to nomem). */
bool cfg_errors_since(const struct cfg_errors *errs, size_t before);
/* Prints every error, one a line, in file order: grouped by file in the order the files
 * were first reported, by line and column within a file, so a reader fixes them top down
 * (config and rules sections are compiled one after the other, not in file order). */
void cfg_errors_print(const struct cfg_errors *errs, FILE *f);
void cfg_errors_release(struct cfg_errors *errs);

enum ynode_type { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP };

struct ynode {
	enum ynode_type type;
	const char *file;     /* borrowed from the document */
	int line, column;     /* 1-based, where the node starts */
	char *value;          /* scalars: text after ${VAR} expansion */
	bool plain;           /* scalar was written without quotes (so ~ and null are null) */
	size_t n;             /* sequence items or map pairs */
	struct ynode **items; /* sequence items, or map values */
	struct ynode **keys;  /* map keys (scalars); NULL for sequences */
};

struct ydoc {
	char *file;
	struct ynode *root; /* NULL for an empty document */
};

/* Parses path. Syntax errors, unreadable files, duplicate keys, aliases and unset
 * ${VAR}s are added to errs; returns NULL if nothing usable was read. Caller frees. */
struct ydoc *ydoc_load(const char *path, struct cfg_errors *errs);
/* Same, from memory; name stands for the file in errors. Exported for tests. */
struct ydoc *ydoc_load_string(const char *text, size_t len, const char *name,
                              struct cfg_errors *errs);
void ydoc_free(struct ydoc *doc);

/* Map lookup; NULL when map is not a map or the key is absent. Borrowed. */
const struct ynode *ynode_get(const struct ynode *map, const char *key);
/* The key node of a map pair holding value v, for error positions; NULL if none. */
const struct ynode *ynode_key_of(const struct ynode *map, const struct ynode *v);
/* True for a plain "~", "null", "Null", "NULL" or empty plain scalar. */
bool ynode_is_null(const struct ynode *n);

/* Reports every key of map not in allowed (NULL-terminated) as "unknown key 'k'".
 * Returns the number of unknown keys. what names the section for non-map errors. */
int ynode_check_keys(const struct ynode *map, const char *const *allowed, const char *what,
                     struct cfg_errors *errs);
/* "'what': expected a map" unless n is a map; returns true if it is. */
bool ynode_expect(const struct ynode *n, enum ynode_type type, const char *what,
                  struct cfg_errors *errs);

/* Typed reads of map[key]. Each returns 1 when the key was present and valid (out set),
 * 0 when absent (out untouched; when required, "missing required key 'key'" is reported
 * at the map), -1 when present but invalid (error reported, out untouched). */
int ynode_str(const struct ynode *map, const char *key, bool required, const char **out,
              struct cfg_errors *errs);
int ynode_bool(const struct ynode *map, const char *key, bool required, bool *out,
               struct cfg_errors *errs);
int ynode_int(const struct ynode *map, const char *key, bool required, int64_t min, int64_t max,
              int64_t *out, struct cfg_errors *errs);
int ynode_duration(const struct ynode *map, const char *key, bool required, int64_t *ms,
                   struct cfg_errors *errs);
/* A secret: map[key] or the trimmed contents of the file named by map[key "_file"];
 * both present is an error. *out is a new string (caller frees with util_free_secret). */
int ynode_secret(const struct ynode *map, const char *key, bool required, char **out,
                 struct cfg_errors *errs);

/* Error at node n (its file/line/column). */
void ynode_error(struct cfg_errors *errs, const struct ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
