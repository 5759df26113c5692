/* Allocation failure injection for a unit test program: malloc, calloc and realloc are
 * interposed (the real ones found with RTLD_NEXT: libc's, or the sanitizer's). While
 * fail_at >= 0, allocation number fail_at (counted in alloc_count from 0) fails with ENOMEM
 * and sets alloc_failed. The definitions replace the C library's for the whole program:
 * include this from exactly one file of a test program, after <dlfcn.h> and <errno.h>. */
#ifndef TB_TEST_ALLOC_FAIL_H
#define TB_TEST_ALLOC_FAIL_H

#include <stdbool.h>
#include <stddef.h>

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static long fail_at = -1, alloc_count;
static bool alloc_failed;

static void resolve_allocators(void)
{
	static bool resolving;

	if (real_realloc != NULL || resolving)
		return;
	resolving = true;
	real_malloc = (void *(*)(size_t))dlsym(RTLD_NEXT, "malloc");
	real_calloc = (void *(*)(size_t, size_t))dlsym(RTLD_NEXT, "calloc");
	real_realloc = (void *(*)(void *, size_t))dlsym(RTLD_NEXT, "realloc");
	resolving = false;
}

static bool inject_failure(void)
{
	if (fail_at < 0 || alloc_count++ != fail_at)
		return false;
	alloc_failed = true;
	errno = ENOMEM;
	return true;
}

void *malloc(size_t n)
{
	resolve_allocators();
	if (real_malloc == NULL || inject_failure())
		return NULL;
	return real_malloc(n);
}

void *calloc(size_t n, size_t sz)
{
	static char boot[1024]; /* dlsym may allocate while the real calloc is looked up */

	resolve_allocators();
	if (real_calloc == NULL)
		return n * sz <= sizeof(boot) ? boot : NULL;
	if (inject_failure())
		return NULL;
	return real_calloc(n, sz);
}

void *realloc(void *p, size_t n)
{
	resolve_allocators();
	if (real_realloc == NULL || inject_failure())
		return NULL;
	return real_realloc(p, n);
}

#endif
