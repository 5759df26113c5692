/* Loads YAML into ynode trees with positions (libyaml's event parser), expands ${VAR}
 * in scalars, and offers typed accessors that report errors and keep going. */
#include "config/yaml.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "lib/suggest.h"
#include "lib/util.h"

#define MAX_DEPTH 64
#define MAX_SECRET_FILE (64 * 1024)

/* Allocation failures are load errors like any other (reported as "out of memory"), so a
 * reload on SIGHUP that runs short of memory fails and the running config stays. */
static void nomem(struct cfg_errors *errs, const char *file, int line, int column)
{
	cfg_errors_add(errs, file, line, column, "out of memory");
}

static void verrors_add(struct cfg_errors *errs, const char *file, int line, int column,
                        const char *fmt, va_list ap)
{
	char *text = NULL;

	char *fcopy;

	if (errs == NULL)
		return;
	if (vasprintf(&text, fmt, ap) < 0)
		goto out_nomem;
	if (errs->n == errs->cap) {
		size_t cap = errs->cap ? errs->cap * 2 : 8;
		struct cfg_error *v = realloc(errs->v, cap * sizeof(*v));
		if (v == NULL)
			goto out_free_text;
		errs->v = v;
		errs->cap = cap;
	}
	if ((fcopy = strdup(file ? file : "")) == NULL)
		goto out_free_text;
	errs->v[errs->n].file = fcopy;
	errs->v[errs->n].line = line;
	errs->v[errs->n].column = column;
	errs->v[errs->n].text = text;
	errs->n++;
	return;

out_free_text:
	free(text);
out_nomem:
	errs->nomem = true; /* the error is lost, not the failure */
}

void cfg_errors_add(struct cfg_errors *errs, const char *file, int line, int column,
                    const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verrors_add(errs, file, line, column, fmt, ap);
	va_end(ap);
}

bool cfg_errors_since(const struct cfg_errors *errs, size_t before)
{
	return errs->n > before || errs->nomem;
}

/* File-order comparison for cfg_errors_print: the file first seen first, then line, then
 * column, then the order of discovery (qsort is not stable). */
static size_t file_rank(const struct cfg_errors *sort_errs, const char *file)
{
	for (size_t i = 0; i < sort_errs->n; i++)
		if (strcmp(sort_errs->v[i].file, file) == 0)
			return i;
	return 0;
}

static int by_position(const void *pa, const void *pb, void *arg)
{
	const struct cfg_errors *sort_errs = arg;
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
	const struct cfg_error *x = &sort_errs->v[a], *y = &sort_errs->v[b];
	size_t fx = file_rank(sort_errs, x->file), fy = file_rank(sort_errs, y->file);

	if (fx != fy)
		return fx < fy ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	if (x->column != y->column)
		return x->column < y->column ? -1 : 1;
	return a < b ? -1 : a > b;
}

void cfg_errors_print(const struct cfg_errors *errs, FILE *f)
{
	size_t *order = malloc((errs->n ? errs->n : 1) * sizeof(*order));

	for (size_t i = 0; order != NULL && i < errs->n; i++)
		order[i] = i;
	if (order != NULL)
		qsort_r(order, errs->n, sizeof(*order), by_position, (void *)errs);
	for (size_t k = 0; k < errs->n; k++) {
		/* without memory for the order, in the order found */
		const struct cfg_error *e = &errs->v[order ? order[k] : k];
		if (e->line > 0)
			fprintf(f, "%s:%d:%d: %s\n", e->file, e->line, e->column, e->text);
		else
			fprintf(f, "%s: %s\n", e->file, e->text);
	}
	free(order);
	if (errs->nomem)
		fprintf(f, "out of memory (some errors could not be recorded)\n");
}

void cfg_errors_release(struct cfg_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++) {
		free(errs->v[i].file);
		free(errs->v[i].text);
	}
	free(errs->v);
	errs->v = NULL;
	errs->n = errs->cap = 0;
	errs->nomem = false;
}

void ynode_error(struct cfg_errors *errs, const struct ynode *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	verrors_add(errs, n ? n->file : "?", n ? n->line : 0, n ? n->column : 0, fmt, ap);
	va_end(ap);
}

static void node_free(struct ynode *n);

/* Frees the items and keys of n, leaving it an empty node of its type. */
static void node_free_children(struct ynode *n)
{
	for (size_t i = 0; i < n->n; i++) {
		node_free(n->items[i]);
		if (n->keys)
			node_free(n->keys[i]);
	}
	free(n->items);
	free(n->keys);
	n->items = n->keys = NULL;
	n->n = 0;
}

static void node_free(struct ynode *n)
{
	if (n == NULL)
		return;
	node_free_children(n);
	free(n->value);
	free(n);
}

void ydoc_free(struct ydoc *doc)
{
	if (doc == NULL)
		return;
	node_free(doc->root);
	free(doc->file);
	free(doc);
}

/* Expands ${VAR} and ${VAR:-default}; "$$" stands for "$". Unset variables without a
 * default are reported at the scalar and expand to nothing. A new string, or NULL when
 * out of memory (reported). */
static char *expand(const char *s, const struct ynode *at, struct cfg_errors *errs)
{
	struct buf b;
	int rc = 0;
	char *out;

	if (strchr(s, '$') == NULL) {
		if ((out = strdup(s)) == NULL)
			nomem(errs, at->file, at->line, at->column);
		return out;
	}
	buf_init(&b, 0);
	while (*s && rc == 0) {
		if (s[0] == '$' && s[1] == '$') {
			rc = buf_append(&b, "$", 1);
			s += 2;
			continue;
		}
		if (s[0] == '$' && s[1] == '{') {
			const char *close = strchr(s + 2, '}');
			const char *name = s + 2, *def = NULL;
			size_t nlen;
			char var[256];
			const char *val;

			if (close == NULL) {
				ynode_error(errs, at, "unterminated '${' in value");
				break;
			}
			nlen = (size_t)(close - name);
			const char *sep = memchr(name, ':', nlen);
			if (sep && sep + 1 < close && sep[1] == '-') {
				def = sep + 2;
				nlen = (size_t)(sep - name);
			}
			if (nlen == 0 || nlen >= sizeof(var)) {
				ynode_error(errs, at, "bad variable reference in '%.*s'",
				            (int)(close - s + 1), s);
				s = close + 1;
				continue;
			}
			memcpy(var, name, nlen);
			var[nlen] = '\0';
			for (size_t i = 0; i < nlen; i++) {
				if (!isalnum((unsigned char)var[i]) && var[i] != '_') {
					ynode_error(errs, at, "bad variable name '%s'", var);
					break;
				}
			}
			val = getenv(var);
			if (def != NULL && (val == NULL || *val == '\0'))
				rc = buf_append(&b, def, (size_t)(close - def));
			else if (val != NULL)
				rc = buf_puts(&b, val);
			else
				ynode_error(errs, at, "environment variable '%s' is not set", var);
			s = close + 1;
			continue;
		}
		rc = buf_append(&b, s, 1);
		s++;
	}
	if (rc < 0 || (out = buf_steal(&b)) == NULL) {
		buf_release(&b);
		nomem(errs, at->file, at->line, at->column);
		return NULL;
	}
	return out;
}

/* NULL when out of memory (reported). */
static struct ynode *node_new(enum ynode_type type, const char *file, const yaml_mark_t *m,
                              struct cfg_errors *errs)
{
	struct ynode *n = calloc(1, sizeof(*n));
	if (n == NULL) {
		nomem(errs, file, (int)m->line + 1, (int)m->column + 1);
		return NULL;
	}
	n->type = type;
	n->file = file;
	n->line = (int)m->line + 1;
	n->column = (int)m->column + 1;
	return n;
}

/* 0, or -1 when out of memory (parent unchanged; key and child still the caller's). */
static int node_push(struct ynode *parent, struct ynode *key, struct ynode *child)
{
	struct ynode **items = realloc(parent->items, (parent->n + 1) * sizeof(*items));
	if (items == NULL)
		return -1;
	parent->items = items;
	if (parent->type == YNODE_MAP) {
		struct ynode **keys = realloc(parent->keys, (parent->n + 1) * sizeof(*keys));
		if (keys == NULL)
			return -1;
		parent->keys = keys;
		keys[parent->n] = key;
	}
	items[parent->n++] = child;
	return 0;
}

/* The keys of one open map, so that a duplicate is found in constant time rather than by
 * comparing with every earlier key (quadratic on a map of 10,000s of keys): open
 * addressing on the key's hash, at most half full. Holds the first of equal keys. */
struct keyset {
	const struct ynode **slots;
	size_t cap, n;
};

static size_t key_hash(const char *s)
{
	size_t h = 14695981039346656037u; /* FNV-1a */

	for (; *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211u;
	}
	return h;
}

/* The slot holding a key equal to text, or the empty slot where it belongs. */
static const struct ynode **keyset_find(const struct keyset *ks, const char *text)
{
	size_t i = key_hash(text) & (ks->cap - 1);

	while (ks->slots[i] != NULL && strcmp(ks->slots[i]->value, text) != 0)
		i = (i + 1) & (ks->cap - 1);
	return &ks->slots[i];
}

/* Adds key (borrowed) unless an equal key is there: the earlier key, NULL when added, or
 * key itself when out of memory. */
static const struct ynode *keyset_add(struct keyset *ks, const struct ynode *key)
{
	const struct ynode **slot;

	if ((ks->n + 1) * 2 > ks->cap) {
		struct keyset grown = {.cap = ks->cap ? ks->cap * 2 : 16};

		grown.slots = calloc(grown.cap, sizeof(*grown.slots));
		if (grown.slots == NULL)
			return key;
		for (size_t i = 0; i < ks->cap; i++)
			if (ks->slots[i] != NULL)
				*keyset_find(&grown, ks->slots[i]->value) = ks->slots[i];
		grown.n = ks->n;
		free(ks->slots);
		*ks = grown;
	}
	slot = keyset_find(ks, key->value);
	if (*slot != NULL)
		return *slot;
	*slot = key;
	ks->n++;
	return NULL;
}

static void keyset_release(struct keyset *ks)
{
	free(ks->slots);
	*ks = (struct keyset){0};
}

/* Parser state: open collections are attached to their parent only once complete, so on
 * failure everything still on the stack is unattached and freed here. */
struct pstate {
	struct ydoc *doc;
	struct ynode *stack[MAX_DEPTH];
	struct ynode *pending_key[MAX_DEPTH];
	struct keyset keys[MAX_DEPTH]; /* of each open map */
	int depth;
	struct cfg_errors *errs;
};

/* Replaces a scalar's raw text with its expansion; -1 when out of memory (reported). */
static int expand_scalar(struct pstate *st, struct ynode *n)
{
	char *v;

	if (n->type != YNODE_SCALAR)
		return 0;
	if ((v = expand(n->value, n, st->errs)) == NULL)
		return -1;
	free(n->value);
	n->value = v;
	return 0;
}

/* Takes ownership of n and attaches it where the parse is. -1 when out of memory (reported;
 * n freed). */
static int place(struct pstate *st, struct ynode *n)
{
	struct ynode *parent;

	if (st->depth == 0) {
		if (expand_scalar(st, n) < 0) {
			node_free(n);
			return -1;
		}
		node_free(st->doc->root);
		st->doc->root = n;
		return 0;
	}
	parent = st->stack[st->depth - 1];
	if (parent->type == YNODE_MAP && st->pending_key[st->depth - 1] == NULL) {
		if (n->type != YNODE_SCALAR) {
			ynode_error(st->errs, n, "map keys must be plain strings");
			/* a placeholder key keeps the value that follows in its place */
			n->type = YNODE_SCALAR;
			node_free_children(n);
			if ((n->value = strdup("?")) == NULL) {
				nomem(st->errs, n->file, n->line, n->column);
				node_free(n);
				return -1;
			}
		} else {
			const struct ynode *first = keyset_add(&st->keys[st->depth - 1], n);

			if (first == n) {
				nomem(st->errs, n->file, n->line, n->column);
				node_free(n);
				return -1;
			}
			if (first != NULL)
				ynode_error(st->errs, n, "duplicate key '%s'", n->value);
		}
		st->pending_key[st->depth - 1] = n;
		return 0;
	}
	if (expand_scalar(st, n) < 0) {
		node_free(n);
		return -1;
	}
	if (node_push(parent, st->pending_key[st->depth - 1], n) < 0) {
		nomem(st->errs, n->file, n->line, n->column);
		node_free(n);
		return -1;
	}
	st->pending_key[st->depth - 1] = NULL;
	return 0;
}

/* A scalar node holding text (copied); NULL when out of memory (reported). */
static struct ynode *scalar_new(struct pstate *st, const yaml_mark_t *m, const char *text)
{
	struct ynode *n = node_new(YNODE_SCALAR, st->doc->file, m, st->errs);

	if (n == NULL)
		return NULL;
	if ((n->value = strdup(text)) == NULL) {
		nomem(st->errs, n->file, n->line, n->column);
		free(n);
		return NULL;
	}
	return n;
}

static struct ydoc *parse(yaml_parser_t *p, const char *name, struct cfg_errors *errs)
{
	struct pstate st = {.errs = errs};
	int docs = 0;
	bool done = false, failed = false;

	st.doc = calloc(1, sizeof(*st.doc));
	if (st.doc == NULL || (st.doc->file = strdup(name)) == NULL) {
		free(st.doc);
		nomem(errs, name, 0, 0);
		return NULL;
	}
	while (!done) {
		yaml_event_t ev;
		struct ynode *n = NULL;

		if (!yaml_parser_parse(p, &ev)) {
			cfg_errors_add(errs, st.doc->file, (int)p->problem_mark.line + 1,
			               (int)p->problem_mark.column + 1, "invalid YAML: %s%s%s",
			               p->problem ? p->problem : "syntax error",
			               p->context ? " " : "", p->context ? p->context : "");
			failed = true;
			break;
		}
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++docs > 1) {
				cfg_errors_add(errs, st.doc->file, (int)ev.start_mark.line + 1,
				               (int)ev.start_mark.column + 1,
				               "only one YAML document is allowed");
				done = true;
			}
			break;
		case YAML_ALIAS_EVENT:
			cfg_errors_add(errs, st.doc->file, (int)ev.start_mark.line + 1,
			               (int)ev.start_mark.column + 1,
			               "YAML aliases are not supported");
			if ((n = scalar_new(&st, &ev.start_mark, "")) == NULL || place(&st, n) < 0)
				failed = done = true;
			break;
		case YAML_SCALAR_EVENT:
			if (strlen((const char *)ev.data.scalar.value) != ev.data.scalar.length) {
				/* a "\0" escape would silently end the value there */
				cfg_errors_add(errs, st.doc->file, (int)ev.start_mark.line + 1,
				               (int)ev.start_mark.column + 1,
				               "a value must not contain a NUL character ('\\0')");
			}
			if ((n = scalar_new(&st, &ev.start_mark,
			                    (const char *)ev.data.scalar.value)) == NULL) {
				failed = done = true;
				break;
			}
			n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			if (place(&st, n) < 0)
				failed = done = true;
			break;
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (st.depth >= MAX_DEPTH) {
				cfg_errors_add(errs, st.doc->file, (int)ev.start_mark.line + 1,
				               (int)ev.start_mark.column + 1, "nesting too deep");
				failed = true;
				done = true;
				break;
			}
			n = node_new(ev.type == YAML_SEQUENCE_START_EVENT ? YNODE_SEQ : YNODE_MAP,
			             st.doc->file, &ev.start_mark, errs);
			if (n == NULL) {
				failed = done = true;
				break;
			}
			st.pending_key[st.depth] = NULL;
			st.stack[st.depth++] = n;
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (st.depth > 0) {
				n = st.stack[--st.depth];
				keyset_release(&st.keys[st.depth]);
				node_free(st.pending_key[st.depth]);
				st.pending_key[st.depth] = NULL;
				if (place(&st, n) < 0)
					failed = done = true;
			}
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	while (st.depth > 0) {
		st.depth--;
		keyset_release(&st.keys[st.depth]);
		node_free(st.pending_key[st.depth]);
		node_free(st.stack[st.depth]);
	}
	if (failed && st.doc->root == NULL) {
		ydoc_free(st.doc);
		return NULL;
	}
	return st.doc;
}

/* libyaml says "found a tab character that violates indentation" or "found character that
 * cannot start any token" for a tab in the indentation. When the syntax error added since
 * `before` sits on a line whose indentation holds a tab, it is replaced by one that says so,
 * at the tab. f is the document, read again from its start. */
static void name_indent_tab(struct cfg_errors *errs, size_t before, FILE *f)
{
	struct cfg_error *e = NULL;
	char line[4096];
	int n = 0;

	for (size_t i = before; i < errs->n; i++)
		if (strncmp(errs->v[i].text, "invalid YAML: ", 14) == 0)
			e = &errs->v[i];
	if (e == NULL || e->line <= 0 || f == NULL || fseek(f, 0, SEEK_SET) != 0)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n')
			return; /* a line this long is not worth a guess */
		if (++n < e->line)
			continue;
		for (size_t c = 0; line[c] == ' ' || line[c] == '\t'; c++) {
			char *text;
			if (line[c] != '\t')
				continue;
			text = strdup("tab in indentation (YAML indents with spaces only)");
			if (text == NULL)
				return;
			free(e->text);
			e->text = text;
			e->column = (int)c + 1;
			return;
		}
		return;
	}
}

struct ydoc *ydoc_load_string(const char *text, size_t len, const char *name,
                              struct cfg_errors *errs)
{
	size_t before = errs->n;
	FILE *f;
	yaml_parser_t p;
	struct ydoc *doc;

	if (!yaml_parser_initialize(&p)) {
		cfg_errors_add(errs, name, 0, 0, "unable to initialise the YAML parser");
		return NULL;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	doc = parse(&p, name, errs);
	yaml_parser_delete(&p);
	if (errs->n > before && len > 0 && (f = fmemopen((void *)text, len, "r")) != NULL) {
		name_indent_tab(errs, before, f);
		fclose(f);
	}
	return doc;
}

struct ydoc *ydoc_load(const char *path, struct cfg_errors *errs)
{
	yaml_parser_t p;
	struct ydoc *doc;
	size_t before = errs->n;
	FILE *f = fopen(path, "rb");

	if (f == NULL) {
		cfg_errors_add(errs, path, 0, 0, "unable to open '%s': %s", path, strerror(errno));
		return NULL;
	}
	if (!yaml_parser_initialize(&p)) {
		fclose(f);
		cfg_errors_add(errs, path, 0, 0, "unable to initialise the YAML parser");
		return NULL;
	}
	yaml_parser_set_input_file(&p, f);
	doc = parse(&p, path, errs);
	yaml_parser_delete(&p);
	if (ferror(f))
		cfg_errors_add(errs, path, 0, 0, "unable to read '%s': %s", path, strerror(errno));
	else if (errs->n > before)
		name_indent_tab(errs, before, f);
	fclose(f);
	return doc;
}

const struct ynode *ynode_get(const struct ynode *map, const char *key)
{
	if (map == NULL || map->type != YNODE_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++) {
		if (strcmp(map->keys[i]->value, key) == 0)
			return map->items[i];
	}
	return NULL;
}

const struct ynode *ynode_key_of(const struct ynode *map, const struct ynode *v)
{
	if (map == NULL || map->type != YNODE_MAP)
		return NULL;
	for (size_t i = 0; i < map->n; i++) {
		if (map->items[i] == v)
			return map->keys[i];
	}
	return NULL;
}

bool ynode_is_null(const struct ynode *n)
{
	if (n == NULL)
		return true;
	if (n->type != YNODE_SCALAR || !n->plain)
		return false;
	return n->value[0] == '\0' || strcmp(n->value, "~") == 0 || strcmp(n->value, "null") == 0 ||
	       strcmp(n->value, "Null") == 0 || strcmp(n->value, "NULL") == 0;
}

static const char *type_name(enum ynode_type t)
{
	return t == YNODE_MAP ? "a map" : t == YNODE_SEQ ? "a list" : "a single value";
}

bool ynode_expect(const struct ynode *n, enum ynode_type type, const char *what,
                  struct cfg_errors *errs)
{
	if (n != NULL && n->type == type)
		return true;
	ynode_error(errs, n, "'%s': expected %s", what, type_name(type));
	return false;
}

int ynode_check_keys(const struct ynode *map, const char *const *allowed, const char *what,
                     struct cfg_errors *errs)
{
	int unknown = 0;

	if (!ynode_expect(map, YNODE_MAP, what, errs))
		return 1;
	for (size_t i = 0; i < map->n; i++) {
		const char *k = map->keys[i]->value;
		bool ok = false;
		for (size_t j = 0; allowed[j]; j++) {
			if (strcmp(allowed[j], k) == 0) {
				ok = true;
				break;
			}
		}
		if (!ok) {
			const char *near = suggest_pick(k, allowed, SIZE_MAX);
			if (near != NULL)
				ynode_error(errs, map->keys[i],
				            "unknown key '%s' in '%s' (did you mean '%s'?)", k,
				            what, near);
			else
				ynode_error(errs, map->keys[i], "unknown key '%s' in '%s'", k,
				            what);
			unknown++;
		}
	}
	return unknown;
}

static const struct ynode *lookup(const struct ynode *map, const char *key, bool required,
                                  struct cfg_errors *errs)
{
	const struct ynode *n = ynode_get(map, key);
	if (n == NULL && required)
		ynode_error(errs, map, "missing required key '%s'", key);
	return n;
}

static bool scalar(const struct ynode *n, const char *key, struct cfg_errors *errs)
{
	if (n->type == YNODE_SCALAR)
		return true;
	ynode_error(errs, n, "'%s': expected a single value, found %s", key, type_name(n->type));
	return false;
}

int ynode_str(const struct ynode *map, const char *key, bool required, const char **out,
              struct cfg_errors *errs)
{
	const struct ynode *n = lookup(map, key, required, errs);
	if (n == NULL)
		return 0;
	if (!scalar(n, key, errs))
		return -1;
	*out = n->value;
	return 1;
}

int ynode_bool(const struct ynode *map, const char *key, bool required, bool *out,
               struct cfg_errors *errs)
{
	const struct ynode *n = lookup(map, key, required, errs);
	if (n == NULL)
		return 0;
	if (!scalar(n, key, errs))
		return -1;
	if (strcmp(n->value, "true") == 0 || strcmp(n->value, "yes") == 0 ||
	    strcmp(n->value, "on") == 0) {
		*out = true;
		return 1;
	}
	if (strcmp(n->value, "false") == 0 || strcmp(n->value, "no") == 0 ||
	    strcmp(n->value, "off") == 0) {
		*out = false;
		return 1;
	}
	ynode_error(errs, n, "'%s': expected true or false, found '%s'", key, n->value);
	return -1;
}

int ynode_int(const struct ynode *map, const char *key, bool required, int64_t min, int64_t max,
              int64_t *out, struct cfg_errors *errs)
{
	const struct ynode *n = lookup(map, key, required, errs);
	char *end;
	long long v;

	if (n == NULL)
		return 0;
	if (!scalar(n, key, errs))
		return -1;
	errno = 0;
	v = strtoll(n->value, &end, 10);
	if (n->value[0] == '\0' || *end != '\0' || errno != 0) {
		ynode_error(errs, n, "'%s': expected an integer, found '%s'", key, n->value);
		return -1;
	}
	if (v < min || v > max) {
		ynode_error(errs, n, "'%s': %lld is out of range (%lld to %lld)", key, v,
		            (long long)min, (long long)max);
		return -1;
	}
	*out = v;
	return 1;
}

int ynode_duration(const struct ynode *map, const char *key, bool required, int64_t *ms,
                   struct cfg_errors *errs)
{
	const struct ynode *n = lookup(map, key, required, errs);
	if (n == NULL)
		return 0;
	if (!scalar(n, key, errs))
		return -1;
	if (util_parse_duration(n->value, ms) < 0) {
		ynode_error(errs, n, "'%s': bad duration '%s' (use 500ms, 10s, 5m, 2h or 1d)", key,
		            n->value);
		return -1;
	}
	return 1;
}

int ynode_secret(const struct ynode *map, const char *key, bool required, char **out,
                 struct cfg_errors *errs)
{
	char fkey[128];
	const struct ynode *n = ynode_get(map, key), *fn;
	const char *path;
	struct buf b;
	FILE *f;
	char chunk[4096];
	size_t got;

	snprintf(fkey, sizeof(fkey), "%s_file", key);
	fn = ynode_get(map, fkey);
	if (n && fn) {
		ynode_error(errs, fn, "'%s' and '%s' are both set; use one", key, fkey);
		return -1;
	}
	if (n) {
		if (!scalar(n, key, errs))
			return -1;
		if ((*out = strdup(n->value)) == NULL) {
			ynode_error(errs, n, "out of memory");
			return -1;
		}
		return 1;
	}
	if (fn == NULL) {
		if (required)
			ynode_error(errs, map, "missing required key '%s' (or '%s')", key, fkey);
		return 0;
	}
	if (!scalar(fn, fkey, errs))
		return -1;
	path = fn->value;
	f = fopen(path, "rb");
	if (f == NULL) {
		ynode_error(errs, fn, "'%s': unable to open '%s': %s", fkey, path, strerror(errno));
		return -1;
	}
	buf_init(&b, MAX_SECRET_FILE);
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		if (buf_append(&b, chunk, got) < 0) {
			ynode_error(errs, fn, "'%s': '%s' is too large for a secret", fkey, path);
			fclose(f);
			util_memzero(chunk, sizeof(chunk));
			if (b.data)
				util_memzero(b.data, b.len);
			buf_release(&b);
			return -1;
		}
	}
	fclose(f);
	util_memzero(chunk, sizeof(chunk));
	while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
		b.data[--b.len] = '\0';
	if ((*out = buf_steal(&b)) == NULL) {
		ynode_error(errs, fn, "out of memory");
		return -1;
	}
	return 1;
}
