/* Fuzz target: the rules' cooldown and visit memory as saved in state.db. The input is
 * lines "KEY<TAB>VALUE" loaded with rules_state_load (as the daemon does at start); then
 * save, load what was saved into a fresh state, save again: the two saves must hold the
 * same entries, every saved entry must load back, and nothing expired may be kept. */
#include <inttypes.h>

#include "rules/rules.h"
#include "tests/fuzz/fuzz_saved.h"

#define NOW_MS INT64_C(1700000000000)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

/* Saves everything in st into out, sorted; every entry is saved. */
static void save_all(struct rules_state *st, struct fuzz_saved *out)
{
	fuzz_saved_all(st, out);
	FUZZ_CHECK(out->n == rules_state_size(st), "saved %zu of %zu entries", out->n,
	           rules_state_size(st));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size), *line, *next;
	struct rules_state *a = rules_state_new(), *b = rules_state_new();
	struct fuzz_saved sa = {0}, sb = {0};

	if (text == NULL || a == NULL || b == NULL)
		goto out;
	for (line = text; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *tab = strchr(line, '\t');
		if (tab == NULL)
			continue;
		*tab = '\0';
		FUZZ_CHECK(rules_state_load(a, line, tab + 1, NOW_MS) == 0, "load '%s' failed",
		           line);
	}
	save_all(a, &sa);
	for (size_t i = 0; i < sa.n; i++) {
		char *copy = strdup(sa.v[i]), *v, *e;
		if (copy == NULL)
			goto out;
		v = strchr(copy, '\t');
		e = strrchr(copy, '\t');
		*v++ = '\0';
		*e++ = '\0';
		FUZZ_CHECK(strtoll(e, NULL, 10) > NOW_MS, "kept an expired entry: %s", sa.v[i]);
		FUZZ_CHECK(rules_state_load(b, copy, v, NOW_MS) == 0, "reload '%s' failed", copy);
		free(copy);
	}
	save_all(b, &sb);
	FUZZ_CHECK(sa.n == sb.n, "%zu entries saved, %zu after a reload", sa.n, sb.n);
	for (size_t i = 0; i < sa.n; i++)
		FUZZ_CHECK(strcmp(sa.v[i], sb.v[i]) == 0, "saved '%s', after a reload '%s'",
		           sa.v[i], sb.v[i]);
out:
	fuzz_saved_release(&sa);
	fuzz_saved_release(&sb);
	rules_state_free(a);
	rules_state_free(b);
	free(text);
	return 0;
}
