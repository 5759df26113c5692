/* What the state fuzz targets share: the rules' cooldown and visit memory saved as sorted
 * "KEY\tVALUE\tEXPIRES" lines, so two saves compare line by line. Header-only, like fuzz.h. */
#ifndef TB_FUZZ_SAVED_H
#define TB_FUZZ_SAVED_H

#include <inttypes.h>

#include "rules/rules.h"
#include "tests/fuzz/fuzz.h"

struct fuzz_saved {
	char **v;
	size_t n;
};

static inline int fuzz_saved_put(void *arg, const char *key, const char *value, int64_t expires_ms)
{
	struct fuzz_saved *s = arg;
	char **grown = realloc(s->v, (s->n + 1) * sizeof(*s->v));

	if (grown == NULL)
		return -1;
	s->v = grown;
	/* key and value never hold a tab or a newline: control bytes are %XX, JSON escapes */
	if (asprintf(&s->v[s->n], "%s\t%s\t%" PRId64, key, value, expires_ms) < 0)
		return -1;
	s->n++;
	return 0;
}

static inline int fuzz_saved_by_text(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Saves every entry of st into out, sorted. */
static inline void fuzz_saved_all(struct rules_state *st, struct fuzz_saved *out)
{
	rules_state_mark_all(st);
	FUZZ_CHECK(rules_state_save(st, fuzz_saved_put, out) == 0, "state save failed");
	if (out->n > 0)
		qsort(out->v, out->n, sizeof(*out->v), fuzz_saved_by_text);
}

static inline void fuzz_saved_release(struct fuzz_saved *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

#endif
