/* Watchlist lookup cost: per-lookup time for hits and misses, build time and memory, for
 * 1k / 10k / 100k random UK-style plates at fuzzy 0 and 1 (and 2 on the smaller lists).
 * Prints one human-readable line per configuration; asserts nothing about timings.
 * Times are this thread's CPU time (best of several rounds); memory is heap bytes the
 * list holds (entries, strings, index). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <malloc.h>

#include "rules/watchlist.h"

#define LOOKUPS 50000
#define ROUNDS 7 /* the fastest round is reported: other load on the machine only adds */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static double now_s(void)
{
	struct timespec ts;

	/* CPU time of this thread: a busy machine preempting us does not count */
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Heap bytes in use (glibc): exact for what the list allocates, unlike an RSS delta,
 * which freed memory from the previous run hides. */
static long heap_bytes(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (long)(mi.uordblks + mi.hblkhd);
}

/* "AB12CDE": two letters, two digits, three letters (the GB shape). */
static void uk_plate(char *out)
{
	static const char letters[] = "ABCDEFGHJKLMNOPRSTUVWXYZ";
	int i;

	for (i = 0; i < 7; i++)
		out[i] = (i == 2 || i == 3) ? (char)('0' + rnd(10)) : letters[rnd(24)];
	out[7] = '\0';
}

/* Misses: digits where entries have letters and the other way round, using digits that
 * look like no letter, so no entry is within fuzzy 2. */
static void miss_plate(char *out)
{
	static const char digits[] = "3479";
	int i;

	for (i = 0; i < 7; i++)
		out[i] = (i == 2 || i == 3) ? (char)('A' + rnd(26)) : digits[rnd(4)];
	out[7] = '\0';
}

static double per_lookup_us(const struct watchlist *wl, char (*queries)[16], int nq, int *hits)
{
	struct watchlist_match m;
	double best = 1e9;
	int i, r;

	for (r = 0; r < ROUNDS; r++) {
		double t0 = now_s(), us;

		*hits = 0;
		for (i = 0; i < LOOKUPS; i++)
			*hits += watchlist_match(wl, queries[i % nq], NULL, &m);
		us = (now_s() - t0) * 1e6 / LOOKUPS;
		if (us < best)
			best = us;
	}
	return best;
}

static int run(int n, int fuzzy)
{
	enum { NQ = 4096 };
	char(*plates)[16] = malloc((size_t)n * sizeof(*plates));
	char(*hitq)[16] = malloc(NQ * sizeof(*hitq));
	char(*editq)[16] = malloc(NQ * sizeof(*editq));
	char(*missq)[16] = malloc(NQ * sizeof(*missq));
	struct watchlist *wl = NULL;
	double t0, build_ms, hit_us, edit_us, miss_us;
	long rss0, rss1; /* heap in use before and after */
	int i, hits, edit_hits, miss_hits, rc = -1;
	char line[64];

	if (plates == NULL || hitq == NULL || editq == NULL || missq == NULL)
		goto out;
	for (i = 0; i < n; i++)
		uk_plate(plates[i]);
	for (i = 0; i < NQ; i++) {
		strcpy(hitq[i], plates[rnd((uint32_t)n)]);
		strcpy(editq[i], hitq[i]);
		editq[i][4 + rnd(3)] = '9'; /* one real substitution */
		miss_plate(missq[i]);
	}

	rss0 = heap_bytes();
	t0 = now_s();
	wl = watchlist_new("bench", fuzzy);
	if (wl == NULL)
		goto out;
	for (i = 0; i < n; i++) {
		snprintf(line, sizeof(line), "%s,label %d", plates[i], i);
		if (watchlist_add(wl, line, NULL, 0, 0, NULL) != 0)
			goto out;
	}
	if (watchlist_build(wl) != 0)
		goto out;
	build_ms = (now_s() - t0) * 1e3;
	rss1 = heap_bytes();

	hit_us = per_lookup_us(wl, hitq, NQ, &hits);
	edit_us = per_lookup_us(wl, editq, NQ, &edit_hits);
	miss_us = per_lookup_us(wl, missq, NQ, &miss_hits);
	printf("watchlist %d entries fuzzy=%d: %.3f us/lookup (miss), %.3f us/lookup (hit), "
	       "%.3f us/lookup (one edit, %s), build %.1f ms, memory %.1f MB (%.0f B/entry)\n",
	       n, fuzzy, miss_us, hit_us, edit_us,
	       edit_hits == LOOKUPS ? "all hit"
	       : edit_hits == 0     ? "all miss"
	                            : "some hit",
	       build_ms, (double)(rss1 - rss0) / 1048576.0, (double)(rss1 - rss0) / n);
	if (hits != LOOKUPS || miss_hits != 0)
		fprintf(stderr, "bench_watchlist: unexpected results: %d/%d hits, %d misses hit\n",
		        hits, LOOKUPS, miss_hits);
	rc = 0;
out:
	if (rc != 0)
		fprintf(stderr, "bench_watchlist: setup failed for %d entries fuzzy=%d\n", n,
		        fuzzy);
	watchlist_free(wl);
	free(plates);
	free(hitq);
	free(editq);
	free(missq);
	return rc;
}

int main(void)
{
	static const int sizes[] = {1000, 10000, 100000};
	size_t s;
	int fuzzy, rc = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);

	for (fuzzy = 0; fuzzy <= 1; fuzzy++)
		for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
			rc |= run(sizes[s], fuzzy);
	rc |= run(1000, 2);
	rc |= run(10000, 2);
	return rc != 0;
}
