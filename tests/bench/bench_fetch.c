/* Small answers on one reused connection: N plate-read requests (an empty list each) sent
 * one after another through the bridge's Tether client, and the wall time each took. Run
 * against a server that writes an answer's headers and body apart without TCP_NODELAY
 * (fake_api.py, on Python's http.server), it shows whether the client's acknowledgements
 * keep such a server waiting (about 40 ms an answer) or not (about 1 ms).
 * Usage: bench_fetch BASE_URL TOKEN N. Prints one line; exit 1 on a failed request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge/tether.h"

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	struct tether_opts o = {0};
	struct tether *t;
	char err[256];
	double t0, worst = 0, total = 0;
	int n;

	if (argc != 4 || (n = atoi(argv[3])) < 2) {
		fprintf(stderr, "usage: bench_fetch BASE_URL TOKEN N (N >= 2)\n");
		return 2;
	}
	o.base_url = argv[1];
	o.access_token = argv[2];
	o.insecure = true;
	o.concurrency = 1;
	o.timeout_ms = 10000;
	t = tether_new(&o, err, sizeof(err));
	if (t == NULL) {
		fprintf(stderr, "bench_fetch: %s\n", err);
		return 1;
	}
	/* the first request opens the connection: not counted */
	for (int i = 0; i < n; i++) {
		struct tether_req r = {.ep = TETHER_LPR,
		                       .zone_id = "bench",
		                       .from_ms = 0,
		                       .to_ms = 1000,
		                       .at_ms = -1,
		                       .raw = true};
		t0 = now_ms();
		if (tether_run(t, &r, 1) != 0 || r.status != TETHER_OK) {
			fprintf(stderr, "bench_fetch: request %d: %s\n", i, r.error);
			tether_req_release(&r);
			tether_free(t);
			return 1;
		}
		double ms = now_ms() - t0;
		tether_req_release(&r);
		if (i == 0)
			continue;
		total += ms;
		if (ms > worst)
			worst = ms;
	}
	printf("count=%d mean_ms=%.2f worst_ms=%.2f connections=%ld\n", n - 1, total / (n - 1),
	       worst, tether_connections(t));
	tether_free(t);
	return 0;
}
