/* Crash-test writer for the store: resumes from its cursor and loops forever committing 50
 * outbox entries ("m<N>") together with the cursor, printing the cursor after each commit.
 * test_store SIGKILLs it at random moments and checks that nothing committed was lost.
 * Usage: store_crash PATH [MAX_BATCHES] */
#include <stdio.h>
#include <stdlib.h>

#include "bridge/store.h"

#define BATCH 50

int main(int argc, char **argv)
{
	struct store *s;
	char err[512], msg_id[32];
	int64_t n = 0;
	long max = -1;
	int rc = 1;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: store_crash PATH [MAX_BATCHES]\n");
		return 2;
	}
	if (argc == 3)
		max = strtol(argv[2], NULL, 10);
	s = store_open(argv[1], err, sizeof(err));
	if (s == NULL) {
		fprintf(stderr, "store_crash: %s\n", err);
		return 1;
	}
	if (store_cursor_get(s, "crash", "outbox", &n) < 0)
		goto out_err;
	for (long b = 0; max < 0 || b < max; b++) {
		if (store_begin(s) < 0)
			goto out_err;
		for (int i = 0; i < BATCH; i++) {
			struct store_entry e = {.target = "mqtt.crash",
			                        .zone_id = "z",
			                        .msg_id = msg_id,
			                        .payload = "{\"crash\":true}"};

			snprintf(msg_id, sizeof(msg_id), "m%lld", (long long)(n + i));
			if (store_outbox_put(s, &e) < 0)
				goto out_rollback;
		}
		if (store_cursor_set(s, "crash", "outbox", n + BATCH) < 0)
			goto out_rollback;
		if (store_commit(s) < 0)
			goto out_rollback;
		n += BATCH;
		printf("%lld\n", (long long)n);
		fflush(stdout);
	}
	rc = 0;
	goto out_close;

out_rollback:
	fprintf(stderr, "store_crash: %s\n", store_errmsg(s));
	store_rollback(s);
	goto out_close;
out_err:
	fprintf(stderr, "store_crash: %s\n", store_errmsg(s));
out_close:
	store_close(s);
	return rc;
}
