/* What every fuzz target shares: the libFuzzer entry points (also called by replay.c, so
 * a target builds with gcc and no libFuzzer), a property check that aborts with a message,
 * and a private scratch folder for inputs the code under test reads from a path. */
#ifndef TB_FUZZ_H
#define TB_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Every target defines both. Initialize runs once before the first input (argv unused). */
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property that does not hold is a finding like a crash: print it and abort, so that
 * libFuzzer saves the input and the replay counts a failure. */
#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz: property failed at %s:%d: %s: ", __FILE__,          \
			        __LINE__, #cond);                                                  \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The input as a NUL-terminated string (a NUL inside ends it early); NULL on ENOMEM. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);
	if (s != NULL) {
		memcpy(s, data, size);
		s[size] = '\0';
	}
	return s;
}

/* A folder of this process's own under /tmp, made on first use and removed with what is
 * in it at exit (only files written by fuzz_write_file). Aborts when it cannot be made:
 * no target can run without it. */
static char fuzz_dir_path[64];
static char fuzz_written[8][128];
static size_t fuzz_nwritten;

static inline void fuzz_dir_remove(void)
{
	for (size_t i = 0; i < fuzz_nwritten; i++)
		unlink(fuzz_written[i]);
	rmdir(fuzz_dir_path);
}

static inline const char *fuzz_dir(void)
{
	if (fuzz_dir_path[0] == '\0') {
		snprintf(fuzz_dir_path, sizeof(fuzz_dir_path), "/tmp/tb-fuzz-XXXXXX");
		if (mkdtemp(fuzz_dir_path) == NULL) {
			perror("fuzz: unable to create a folder under /tmp");
			abort();
		}
		atexit(fuzz_dir_remove);
	}
	return fuzz_dir_path;
}

/* Writes data to fuzz_dir()/name (replacing it) and returns the path (static storage per
 * name slot; at most 8 names per process). Aborts when the write fails. */
static inline const char *fuzz_write_file(const char *name, const void *data, size_t size)
{
	char path[128];
	size_t i;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", fuzz_dir(), name);
	for (i = 0; i < fuzz_nwritten && strcmp(fuzz_written[i], path) != 0; i++)
		;
	if (i == fuzz_nwritten) {
		if (fuzz_nwritten == 8)
			abort();
		memcpy(fuzz_written[fuzz_nwritten++], path, sizeof(path));
	}
	f = fopen(path, "wb");
	if (f == NULL || (size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0) {
		perror("fuzz: unable to write a scratch file");
		abort();
	}
	return fuzz_written[i];
}

#endif
