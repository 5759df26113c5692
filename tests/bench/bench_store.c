/* Store throughput: 100,000 outbox puts in transactions of 500, then fetch + ack in batches
 * of 100 (one transaction per batch, and per-ack autocommit), then the cost of a fetch,
 * next_due and count with a deferred zone head holding 50,000 entries back. Prints figures. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge/store.h"

#define TOTAL 100000
#define PUT_BATCH 500
#define FETCH_BATCH 100
#define ZONES 10
#define NOW 1000000000000000LL

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(struct store *s, const char *what)
{
	fprintf(stderr, "bench_store: %s: %s\n", what, s ? store_errmsg(s) : "");
	exit(1);
}

/* Puts count entries round-robin over zones first_zone.., PUT_BATCH per transaction. */
static void fill(struct store *s, int count, int first_zone, int zones, const char *payload)
{
	char msg_id[64], zone[16];
	struct store_entry e = {.target = "mqtt.home",
	                        .zone_id = zone,
	                        .msg_id = msg_id,
	                        .payload = (char *)payload,
	                        .topic_or_url = "tether/events/zone/motion",
	                        .extra = "{\"qos\":1,\"retain\":false}"};

	for (int i = 0; i < count; i += PUT_BATCH) {
		if (store_begin(s) < 0)
			die(s, "begin");
		for (int j = i; j < i + PUT_BATCH && j < count; j++) {
			snprintf(zone, sizeof(zone), "zone%d", first_zone + j % zones);
			snprintf(msg_id, sizeof(msg_id), "event:%08d:2020-07-09T08:05:09.036+01:00",
			         j);
			if (store_outbox_put(s, &e) < 0)
				die(s, "put");
		}
		if (store_commit(s) < 0)
			die(s, "commit");
	}
}

/* Fetches and acks until target is empty; returns the number acked. */
static int64_t drain(struct store *s, bool txn, int64_t limit)
{
	int64_t done = 0;

	while (done < limit) {
		struct store_entry *v = NULL;
		size_t n = 0;

		if (store_outbox_fetch(s, "mqtt.home", NOW, FETCH_BATCH, &v, &n) < 0)
			die(s, "fetch");
		if (n == 0)
			break;
		if (txn && store_begin(s) < 0)
			die(s, "begin");
		for (size_t i = 0; i < n; i++)
			if (store_outbox_ack(s, v[i].id) != 0)
				die(s, "ack");
		if (txn && store_commit(s) < 0)
			die(s, "commit");
		done += (int64_t)n;
		store_entries_free(v, n);
	}
	return done;
}

int main(void)
{
	char dir[] = "/tmp/bench_store.XXXXXX", path[128], err[512], payload[512];
	struct store *s;
	struct store_entry *v = NULL;
	size_t n = 0;
	double t0, t, c0, c;
	int64_t got = 0, head;

	if (mkdtemp(dir) == NULL) {
		perror("bench_store: mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/state.db", dir);
	memset(payload, 'x', sizeof(payload) - 1);
	memcpy(payload, "{\"schema\":\"tether-bridge/v1\",\"pad\":\"", 36);
	payload[sizeof(payload) - 3] = '"';
	payload[sizeof(payload) - 2] = '}';
	payload[sizeof(payload) - 1] = '\0';
	s = store_open(path, err, sizeof(err));
	if (s == NULL) {
		fprintf(stderr, "bench_store: %s\n", err);
		return 1;
	}

	t0 = now_s();
	c0 = cpu_s();
	fill(s, TOTAL, 0, ZONES, payload);
	t = now_s() - t0;
	c = cpu_s() - c0;
	printf(
	    "store put: %d msgs in %.3f s = %.0f msgs/s (transactions of %d, %zu-byte payload)\n",
	    TOTAL, t, TOTAL / t, PUT_BATCH, strlen(payload));
	printf("  process cpu %.3f s, %.1f us per msg\n", c, c * 1e6 / TOTAL);

	t0 = now_s();
	c0 = cpu_s();
	got = store_outbox_count(s);
	printf("store count with %" PRId64 " pending: %.3f ms\n", got, (now_s() - t0) * 1e3);

	t0 = now_s();
	c0 = cpu_s();
	got = drain(s, true, TOTAL);
	t = now_s() - t0;
	c = cpu_s() - c0;
	printf("store fetch+ack: %" PRId64 " msgs in %.3f s = %.0f msgs/s (batches of %d, one "
	       "transaction per batch)\n",
	       got, t, (double)got / t, FETCH_BATCH);
	printf("  process cpu %.3f s, %.1f us per msg\n", c, c * 1e6 / (double)got);

	fill(s, 10000, 0, ZONES, payload);
	t0 = now_s();
	c0 = cpu_s();
	got = drain(s, false, 10000);
	t = now_s() - t0;
	c = cpu_s() - c0;
	printf("store fetch+ack: %" PRId64 " msgs in %.3f s = %.0f msgs/s (batches of %d, each "
	       "ack its own commit)\n",
	       got, t, (double)got / t, FETCH_BATCH);
	printf("  process cpu %.3f s, %.1f us per msg\n", c, c * 1e6 / (double)got);

	/* Zone 0's head deferred with 50,000 entries behind it, then zone 1's 50,000, due. */
	fill(s, TOTAL / 2, 0, 1, payload);
	fill(s, TOTAL / 2, 1, 1, payload);
	if (store_outbox_fetch(s, "mqtt.home", 0, 1, &v, &n) < 0 || n != 1)
		die(s, "fetch head");
	head = v[0].id;
	store_entries_free(v, n);
	if (store_outbox_defer(s, head, 2 * NOW, "bench") != 0)
		die(s, "defer");
	t0 = now_s();
	c0 = cpu_s();
	if (store_outbox_fetch(s, "mqtt.home", NOW, FETCH_BATCH, &v, &n) < 0)
		die(s, "fetch");
	t = now_s() - t0;
	c = cpu_s() - c0;
	printf("store fetch of %zu with a deferred head blocking 50000 of 100000: %.3f ms\n", n,
	       t * 1e3);
	store_entries_free(v, n);
	t0 = now_s();
	c0 = cpu_s();
	got = store_outbox_next_due(s, "mqtt.home");
	printf("store next_due with 100000 pending: %.3f ms (%" PRId64 ")\n", (now_s() - t0) * 1e3,
	       got);
	t0 = now_s();
	c0 = cpu_s();
	got = drain(s, true, TOTAL);
	t = now_s() - t0;
	c = cpu_s() - c0;
	printf("store fetch+ack of the unblocked zone behind a deferred head: %" PRId64
	       " msgs in %.3f s = %.0f msgs/s\n",
	       got, t, (double)got / t);
	printf("  process cpu %.3f s, %.1f us per msg\n", c, c * 1e6 / (double)got);

	store_close(s);
	snprintf(err, sizeof(err), "%s-wal", path);
	unlink(err);
	snprintf(err, sizeof(err), "%s-shm", path);
	unlink(err);
	unlink(path);
	rmdir(dir);
	return 0;
}
