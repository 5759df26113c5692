/* "Did you mean" for check: the plain edit distance between two names, and the closest of a
 * list of valid names to a misspelt one. No OCR look-alikes here (that is plate matching,
 * rules/watchlist.c); every character counts the same. */
#ifndef TB_SUGGEST_H
#define TB_SUGGEST_H

#include <stdbool.h>
#include <stddef.h>

/* Edit distance between a and b (insert, delete, substitute, swap two neighbours: 1 each;
 * the optimal string alignment distance), comparing
 * ASCII letters without case when nocase. Names longer than 255 bytes give SUGGEST_FAR. */
#define SUGGEST_FAR 1000
int suggest_distance(const char *a, const char *b, bool nocase);

/* Whether a candidate at distance d from word is close enough to suggest: at most 1 for a
 * word of up to 4 characters, 2 up to 8, 3 beyond, and never the whole word. */
bool suggest_close(const char *word, int d);

/* The closest of cands (n names, or NULL-terminated when n is SIZE_MAX) to word that is
 * close enough (suggest_close), or NULL. Ties go to the earlier name. Borrowed from cands. */
const char *suggest_pick(const char *word, const char *const *cands, size_t n);

#endif
