/* Per-target series behind one mutex: targets are few (the configured ones), updates come
 * once per delivery or poll cycle, so a lock and a linear search cost nothing. */
#include "bridge/tmetrics.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define TMETRICS_MAX_TARGETS 1024 /* beyond this a target is not counted, never a crash */

struct tdef {
	const char *name, *type, *help;
};

static const struct tdef tdefs[TM_COUNT] = {
    [TM_DELIVERIES] = {"tether_bridge_deliveries_total", "counter",
                       "Outbox entries acknowledged, by target."},
    [TM_FAILURES] = {"tether_bridge_delivery_failures_total", "counter",
                     "Delivery attempts that failed (retried or dead-lettered), by target."},
    [TM_DEAD] = {"tether_bridge_target_dead_letters_total", "counter",
                 "Outbox entries moved to the dead letters, by target."},
    [TM_OUTBOX] = {"tether_bridge_target_outbox_entries", "gauge",
                   "Outbox entries waiting, by target."},
    [TM_CONNECTED] = {"tether_bridge_broker_connected", "gauge",
                      "1 while the MQTT broker is connected, else 0."},
};

struct tseries {
	char *target;
	int64_t v[TM_COUNT];
	bool has[TM_COUNT]; /* TM_CONNECTED only for brokers */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct tseries *series;
static size_t nseries;

/* The series of target, added if new; NULL when out of memory or full. Lock held. */
static struct tseries *find(const char *target)
{
	struct tseries *v;

	for (size_t i = 0; i < nseries; i++)
		if (strcmp(series[i].target, target) == 0)
			return &series[i];
	if (nseries == TMETRICS_MAX_TARGETS)
		return NULL;
	v = realloc(series, (nseries + 1) * sizeof(*v));
	if (v == NULL)
		return NULL;
	series = v;
	memset(&series[nseries], 0, sizeof(series[nseries]));
	if ((series[nseries].target = strdup(target)) == NULL)
		return NULL;
	for (int m = 0; m < TM_COUNT; m++)
		series[nseries].has[m] = m != TM_CONNECTED;
	return &series[nseries++];
}

void tmetrics_register(const char *target, int broker)
{
	struct tseries *s;

	pthread_mutex_lock(&mu);
	if ((s = find(target)) != NULL && broker)
		s->has[TM_CONNECTED] = true;
	pthread_mutex_unlock(&mu);
}

void tmetrics_add(enum tmetric m, const char *target, uint64_t n)
{
	struct tseries *s;

	pthread_mutex_lock(&mu);
	if ((s = find(target)) != NULL)
		s->v[m] += (int64_t)n;
	pthread_mutex_unlock(&mu);
}

void tmetrics_set(enum tmetric m, const char *target, int64_t v)
{
	struct tseries *s;

	pthread_mutex_lock(&mu);
	if ((s = find(target)) != NULL) {
		s->v[m] = v;
		s->has[m] = true;
	}
	pthread_mutex_unlock(&mu);
}

void tmetrics_set_all(enum tmetric m, const char *const *targets, const int64_t *v, size_t n)
{
	struct tseries *s;

	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < nseries; i++)
		series[i].v[m] = 0;
	for (size_t i = 0; i < n; i++)
		if ((s = find(targets[i])) != NULL)
			s->v[m] = v[i];
	pthread_mutex_unlock(&mu);
}

int64_t tmetrics_get(enum tmetric m, const char *target)
{
	int64_t v = 0;

	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < nseries; i++)
		if (strcmp(series[i].target, target) == 0)
			v = series[i].v[m];
	pthread_mutex_unlock(&mu);
	return v;
}

/* target as a label value: \, " and newline escaped as the text format asks. */
static int put_label(struct buf *b, const char *target)
{
	for (const char *p = target; *p; p++) {
		int rc = *p == '\\'   ? buf_printf(b, "\\\\")
		         : *p == '"'  ? buf_printf(b, "\\\"")
		         : *p == '\n' ? buf_printf(b, "\\n")
		                      : buf_printf(b, "%c", *p);
		if (rc < 0)
			return -1;
	}
	return 0;
}

int tmetrics_render(struct buf *b)
{
	int rc = 0;

	pthread_mutex_lock(&mu);
	for (int m = 0; m < TM_COUNT && rc == 0; m++) {
		rc = buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", tdefs[m].name, tdefs[m].help,
		                tdefs[m].name, tdefs[m].type);
		for (size_t i = 0; i < nseries && rc == 0; i++) {
			if (!series[i].has[m])
				continue;
			if (buf_printf(b, "%s{target=\"", tdefs[m].name) < 0 ||
			    put_label(b, series[i].target) < 0 ||
			    buf_printf(b, "\"} %lld\n", (long long)series[i].v[m]) < 0)
				rc = -1;
		}
	}
	pthread_mutex_unlock(&mu);
	return rc < 0 ? -1 : 0;
}

void tmetrics_reset(void)
{
	pthread_mutex_lock(&mu);
	for (size_t i = 0; i < nseries; i++)
		free(series[i].target);
	free(series);
	series = NULL;
	nseries = 0;
	pthread_mutex_unlock(&mu);
}
