/* Runs a fuzz target over files without libFuzzer, so `make test` replays the corpora and
 * past findings with the normal compiler: `replay FILE|DIR...` calls LLVMFuzzerTestOneInput
 * once per file (a folder: every regular file in it, sorted). A failing property or a crash
 * aborts the process; the exit code is 0 only when every file ran. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests/fuzz/fuzz.h"

#define REPLAY_FILE_MAX (16 << 20)

static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *data = malloc(REPLAY_FILE_MAX);
	size_t n = 0;
	int rc = -1;

	if (f == NULL || data == NULL) {
		fprintf(stderr, "replay: unable to read '%s': %s\n", path, strerror(errno));
		goto out;
	}
	n = fread(data, 1, REPLAY_FILE_MAX, f);
	if (ferror(f) || n == REPLAY_FILE_MAX) {
		fprintf(stderr, "replay: unable to read '%s' (error or over 16 MiB)\n", path);
		goto out;
	}
	/* libFuzzer hands the exact bytes in a buffer of that size: do the same, so ASan
	 * catches a read one past the end */
	uint8_t *exact = malloc(n ? n : 1);
	if (exact == NULL)
		goto out;
	memcpy(exact, data, n);
	fprintf(stderr, "replay: %s\n", path);
	LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	rc = 0;
out:
	free(data);
	if (f)
		fclose(f);
	return rc;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay_dir(const char *dir, size_t *count)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	int rc = 0;

	if (d == NULL) {
		fprintf(stderr, "replay: unable to open '%s': %s\n", dir, strerror(errno));
		return -1;
	}
	while ((de = readdir(d)) != NULL) {
		char **grown;
		if (de->d_name[0] == '.')
			continue;
		grown = realloc(names, (n + 1) * sizeof(*names));
		if (grown == NULL || asprintf(&grown[n], "%s/%s", dir, de->d_name) < 0) {
			names = grown ? grown : names;
			rc = -1;
			break;
		}
		names = grown;
		n++;
	}
	closedir(d);
	if (names)
		qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		struct stat sb;
		if (rc == 0 && stat(names[i], &sb) == 0 && S_ISREG(sb.st_mode)) {
			rc = replay_file(names[i]);
			(*count)++;
		}
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int rc = 0;

	LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc && rc == 0; i++) {
		struct stat sb;
		if (stat(argv[i], &sb) == 0 && S_ISDIR(sb.st_mode)) {
			rc = replay_dir(argv[i], &count);
		} else {
			rc = replay_file(argv[i]);
			count++;
		}
	}
	printf("replay: %zu inputs%s\n", count, rc == 0 ? "" : ", stopped at an error");
	return rc == 0 ? 0 : 1;
}
