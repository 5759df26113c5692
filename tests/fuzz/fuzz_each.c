/* Fuzz target: tether_each, the streaming reader of an events or lpr answer (yajl lexes,
 * only the resources of "data" are built), checked against jansson's json_loadb on the same
 * bytes. Properties: what tether_each hands over is, in order, exactly the "data" array
 * json_loadb gives; what json_loadb accepts as a JSON:API list, tether_each accepts too
 * (a duplicated "data" member aside: jansson keeps the last one, we refuse the answer);
 * what json_loadb refuses, tether_each refuses, but for a lone surrogate escape, which yajl
 * turns into '?', and a form feed or vertical tab between tokens, which yajl takes as white
 * space, and a string outside data with loose UTF-8 or a NUL (lexed by yajl, not built,
 * so jansson's checks are not made); a raw NUL byte, which json_loadb lets pass, is
 * refused.
 * The same bytes read again with the normaliser's keep filter: the resources handed over
 * are the unfiltered ones (and json_loadb's) without the members the filter leaves out;
 * it refuses nothing the unfiltered walk takes, and takes more only where the unfiltered
 * walk refused a string or member name jansson would (NUL, UTF-8) that the filter skips.
 * And with tether_each_flat, which builds nothing: the filtered walk's count or its very
 * refusal, and of each resource what the normaliser reads of the filtered walk's tree. */
#include <stdbool.h>

#include <jansson.h>

#include "bridge/tether.h"
#include "rules/normalize.h"
#include "tests/fuzz/fuzz.h"

static const struct tether_keep keep = {normalize_reads_member, normalize_reads_attribute};

static struct tether *client;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct tether_opts o = {.base_url = "http://127.0.0.1:9",
	                        .access_token = "fuzz",
	                        .insecure = true,
	                        .concurrency = 1,
	                        .timeout_ms = 1000};
	char err[256];

	(void)argc;
	(void)argv;
	client = tether_new(&o, err, sizeof(err));
	FUZZ_CHECK(client != NULL, "tether_new: %s", err);
	return 0;
}

/* Every resource handed over, copied in order. */
static int collect(void *arg, const json_t *res)
{
	json_t *copy = json_deep_copy(res);

	if (copy == NULL || json_array_append_new(arg, copy) < 0)
		return -1;
	return 0;
}

/* Whether jansson stopped at a form feed or a vertical tab: yajl takes both as white space
 * between tokens (JSON has only space, tab, CR and LF), which changes no value. */
static bool yajl_space(const uint8_t *data, size_t size, const json_error_t *jerr)
{
	size_t at = jerr->position > 0 ? (size_t)jerr->position - 1 : 0;

	return at < size && (data[at] == '\f' || data[at] == '\v');
}

/* Drops the members of o that f does not keep. */
static void strip_object(json_t *o, bool (*f)(const char *name, size_t len))
{
	const char *k;
	size_t len;
	void *next;
	json_t *v;

	json_object_keylen_foreach_safe(o, next, k, len, v)
	{
		if (!f(k, len))
			json_object_deln(o, k, len);
	}
}

/* list's resources as tether_each builds them with keep (a new copy), NULL if no list. */
static json_t *stripped(const json_t *list)
{
	json_t *c = json_is_array(list) ? json_deep_copy(list) : NULL, *r;
	size_t i;

	json_array_foreach(c, i, r)
	{
		if (!json_is_object(r))
			continue;
		strip_object(r, keep.member);
		if (json_is_object(json_object_get(r, "attributes")))
			strip_object(json_object_get(r, "attributes"), keep.attribute);
	}
	return c;
}

/* The refusals of the unfiltered walk that only a string or member name can cause:
 * jansson's checks, which the filter skips in what it does not build. */
static bool string_refusal(const char *err)
{
	return strcmp(err, "a string holds a NUL character") == 0 ||
	       strcmp(err, "a string is not valid UTF-8") == 0 ||
	       strcmp(err, "a member name holds a NUL character") == 0 ||
	       strcmp(err, "a member name is not valid UTF-8") == 0;
}

/* --- tether_each_flat: nothing built --- */

struct flat_got {
	struct nres *v;
	size_t n, cap;
	bool oom;
};

static void fg_begin(void *arg, bool object, size_t offset)
{
	struct flat_got *g = arg;

	if (g->n == g->cap) {
		size_t cap = g->cap ? 2 * g->cap : 16;
		struct nres *v = realloc(g->v, cap * sizeof(*v));
		if (v == NULL) {
			g->oom = true;
			return;
		}
		g->v = v;
		g->cap = cap;
	}
	nres_reset(&g->v[g->n], object);
	g->v[g->n].offset = offset;
}

static int fg_slot(void *arg, int level, const char *name, size_t len)
{
	(void)arg;
	return nres_slot(level, name, len);
}

static void fg_value(void *arg, int level, int slot, const struct tether_value *v)
{
	static const enum nres_type types[] = {
	    [TV_NULL] = NRES_NULL,       [TV_FALSE] = NRES_FALSE, [TV_TRUE] = NRES_TRUE,
	    [TV_INTEGER] = NRES_INTEGER, [TV_REAL] = NRES_REAL,   [TV_STRING] = NRES_STRING,
	    [TV_OBJECT] = NRES_OBJECT,   [TV_ARRAY] = NRES_ARRAY,
	};
	struct flat_got *g = arg;

	FUZZ_CHECK(level == (slot >= NRES_STARTS_AT ? 2 : 1), "flat: slot %d at level %d", slot,
	           level);
	if (!g->oom && g->n < g->cap)
		nres_set(&g->v[g->n], slot, types[v->type], v->i, v->d, v->s, v->len);
}

static int fg_end(void *arg)
{
	struct flat_got *g = arg;

	if (g->oom)
		return -1;
	g->n++;
	return 0;
}

static const struct tether_flat fg_ops = {fg_begin, fg_slot, fg_value, fg_end};

/* The flat walk of r against the filtered one (fn resources fgot, or ferr): the same count
 * or the same refusal, and each resource holds what the normaliser reads of the filtered
 * walk's tree; an object starts at its '{'. */
static void check_flat(const struct tether_req *r, long fn, const json_t *fgot, const char *ferr)
{
	struct flat_got g = {0};
	char err[256] = "";
	long n = tether_each_flat(client, r, &fg_ops, &g, err, sizeof(err));

	if (n == -1 || fn == -1) {
		/* out of memory in a callback */
	} else if (fn >= 0) {
		FUZZ_CHECK(n == fn, "flat: %ld resources, the filtered walk %ld (%s)", n, fn, err);
		for (size_t i = 0; i < g.n; i++) {
			struct nres want;
			nres_from_json(json_array_get(fgot, i), &want);
			FUZZ_CHECK(
			    nres_equal(&g.v[i], &want),
			    "flat: resource %zu is not what the normaliser reads of the tree", i);
			FUZZ_CHECK(!g.v[i].object || (g.v[i].offset < r->body_len &&
			                              r->body[g.v[i].offset] == '{'),
			           "flat: resource %zu does not start at its offset", i);
		}
	} else {
		/* the one refusal only trees have: the document memory limit */
		FUZZ_CHECK((n < 0 && strcmp(err, ferr) == 0) ||
		               strstr(ferr, "MiB of memory") != NULL,
		           "flat: %ld (%s), the filtered walk refused: %s", n, err, ferr);
	}
	free(g.v);
}

/* The filtered walk of r against the unfiltered one (n, got, err) and json_loadb's list. */
static void check_filtered(const struct tether_req *r, long n, const json_t *got, const char *err,
                           const json_t *list)
{
	json_t *fgot = json_array(), *want;
	char ferr[256] = "";
	long fn;

	if (fgot == NULL)
		return;
	fn = tether_each(client, r, &keep, collect, fgot, ferr, sizeof(ferr));
	check_flat(r, fn, fgot, ferr);
	if (fn == -1 || n == -1) {
		/* out of memory in collect */
	} else if (n >= 0) {
		FUZZ_CHECK(fn == n, "filtered: %ld resources, unfiltered %ld (%s)", fn, n, ferr);
		want = stripped(got);
		FUZZ_CHECK(json_equal(fgot, want),
		           "filtered: not the unfiltered resources stripped");
		json_decref(want);
		if (json_is_array(list)) {
			want = stripped(list);
			FUZZ_CHECK(json_equal(fgot, want), "filtered: not jansson's data stripped");
			json_decref(want);
		}
	} else if (fn >= 0) {
		FUZZ_CHECK(string_refusal(err),
		           "filtered walk took %ld resources the unfiltered one refused: %s", fn,
		           err);
	} else {
		FUZZ_CHECK(ferr[0] != '\0', "a filtered refusal without a message");
	}
	json_decref(fgot);
}

/* Whether jansson refused only a string's bytes that tether_each did not build (a member
 * outside data, or one the filter skips): loose UTF-8 (yajl lets overlong forms and encoded
 * surrogates through), or a NUL, and then with NULs allowed jansson's data is what was
 * handed over. tether_each refuses both in a string it builds. */
static bool string_bytes(const uint8_t *data, size_t size, const json_error_t *jerr,
                         const json_t *got)
{
	json_error_t e;
	json_t *doc;
	bool same;

	if (strstr(jerr->text, "unable to decode byte") != NULL)
		return true;
	if (strstr(jerr->text, "is not allowed without JSON_ALLOW_NUL") == NULL)
		return false;
	doc = json_loadb((const char *)data, size, JSON_ALLOW_NUL, &e);
	same = doc == NULL ? strstr(e.text, "unable to decode byte") != NULL
	                   : json_equal(json_object_get(doc, "data"), got);
	json_decref(doc);
	return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tether_req r = {.ep = TETHER_EVENTS, .raw = true};
	json_t *got = json_array(), *want, *list;
	json_error_t jerr;
	char err[256] = "";
	long n;

	if (got == NULL || (r.body = fuzz_cstr(data, size)) == NULL) {
		json_decref(got);
		return 0;
	}
	r.body_len = size;
	n = tether_each(client, &r, NULL, collect, got, err, sizeof(err));
	want = json_loadb((const char *)data, size, 0, &jerr);
	list = json_is_object(want) ? json_object_get(want, "data") : NULL;
	if (n == -1) {
		/* out of memory in collect: nothing to compare */
	} else if (n >= 0 && want == NULL) {
		FUZZ_CHECK(strstr(jerr.text, "nicode") != NULL || yajl_space(data, size, &jerr) ||
		               string_bytes(data, size, &jerr, got),
		           "tether_each took %ld resources of what jansson refuses: %s", n,
		           jerr.text);
	} else if (n >= 0) {
		FUZZ_CHECK(json_is_array(list),
		           "tether_each took %ld resources without a data array", n);
		FUZZ_CHECK(
		    (size_t)n == json_array_size(list) && json_equal(got, list),
		    "tether_each gave %ld resources, jansson's data has %zu (or they differ)", n,
		    json_array_size(list));
	} else if (json_is_array(list) && json_array_size(list) <= TETHER_MAX_RESOURCES) {
		json_t *strict =
		    json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
		bool dup = strict == NULL;
		json_decref(strict);
		/* a raw NUL byte is not JSON (RFC 8259): jansson's reader skips over it */
		FUZZ_CHECK(memchr(data, '\0', size) != NULL ||
		               (dup && strcmp(err, "data: expected an array") == 0),
		           "tether_each refused a list jansson takes: %s", err);
	} else {
		FUZZ_CHECK(err[0] != '\0', "a refusal without a message");
	}
	check_filtered(&r, n, got, err, n >= 0 ? list : NULL);
	json_decref(want);
	json_decref(got);
	tether_req_release(&r);
	return 0;
}
