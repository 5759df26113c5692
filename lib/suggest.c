/* Edit distance and the pick of a close name, for check's "did you mean" hints. Three rows
 * of a bounded table on the stack: names are short and a longer one is simply not suggested. */
#include "lib/suggest.h"

#include <stdint.h>
#include <string.h>

#define NAME_MAX_LEN 255

static char fold(char c, bool nocase)
{
	return nocase && c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int suggest_distance(const char *a, const char *b, bool nocase)
{
	size_t la = strlen(a), lb = strlen(b);
	int rows[3][NAME_MAX_LEN + 1];
	int *prev2 = rows[0], *prev = rows[1], *cur = rows[2];

	if (la > NAME_MAX_LEN || lb > NAME_MAX_LEN)
		return SUGGEST_FAR;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		char ca = fold(a[i - 1], nocase);
		cur[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			char cb = fold(b[j - 1], nocase);
			int best = prev[j - 1] + (ca != cb);
			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			/* two neighbours swapped ("qso" for "qos") is one slip, not two */
			if (i > 1 && j > 1 && ca == fold(b[j - 2], nocase) &&
			    fold(a[i - 2], nocase) == cb && prev2[j - 2] + 1 < best)
				best = prev2[j - 2] + 1;
			cur[j] = best;
		}
		int *t = prev2;
		prev2 = prev;
		prev = cur;
		cur = t;
	}
	return prev[lb];
}

bool suggest_close(const char *word, int d)
{
	size_t len = strlen(word);
	int limit = len <= 4 ? 1 : len <= 8 ? 2 : 3;

	return d <= limit && (size_t)d < len;
}

const char *suggest_pick(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	int bestd = SUGGEST_FAR;

	for (size_t i = 0; i < n && cands[i] != NULL; i++) {
		int d = suggest_distance(word, cands[i], false);
		if (d < bestd && d > 0 && suggest_close(word, d)) {
			bestd = d;
			best = cands[i];
		}
	}
	return best;
}
