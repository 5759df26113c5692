/* Per-message rule evaluation cost with 10, 100 and 1,000 rules: a realistic mix of zone
 * globs, flags, severities, schedules and cooldowns, most rules not matching a given message.
 * Prints "rules N: X us/message (D deliveries/message)", X in CPU time of this thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"
#include "config/yaml.h"
#include "rules/normalize.h"
#include "rules/rules.h"

static const struct rules_target_def targets[] = {
    {.kind = "mqtt", .name = "home", .topic_prefix = "tether", .qos = 1},
    {.kind = "webhook", .name = "slack"},
};

static const char *const flags[] = {"motion", "intrusion", "tripwire",   "face",
                                    "car",    "loitering", "video_loss", "pir"};
static const char *const sevs[] = {"low", "normal", "medium", "high", "critical"};

static char *make_config(int n)
{
	struct buf b;
	buf_init(&b, 0);
	buf_puts(&b, "rules:\n");
	for (int i = 0; i < n; i++) {
		buf_printf(&b, "  - name: rule-%d\n    when:\n", i);
		switch (i % 5) {
		case 0:
			buf_printf(&b, "      zones: [\"Camera %d*\", \"Back*\"]\n", i % 50);
			buf_printf(&b, "      flags_any: [%s, %s]\n", flags[i % 8],
			           flags[(i + 3) % 8]);
			break;
		case 1:
			buf_printf(&b, "      kind: event\n      severity: [%s]\n", sevs[i % 5]);
			buf_printf(&b, "      flags_all: [%s]\n", flags[i % 8]);
			break;
		case 2:
			buf_printf(&b, "      min_severity: %s\n      flags_none: [video_loss]\n",
			           sevs[(i / 5) % 5]);
			buf_printf(&b, "      zones: [\"*Door %d\"]\n", i % 40);
			break;
		case 3:
			buf_printf(&b,
			           "      kind: event\n      schedule: {days: [mon, tue, wed, thu, "
			           "fri], from: \"22:00\", to: \"06:00\", timezone: "
			           "Europe/London}\n      zones: [\"Camera %d\"]\n",
			           i % 60);
			break;
		default:
			buf_printf(&b, "      phase: [update]\n      locations: [loc%d]\n", i % 30);
			break;
		}
		buf_printf(&b, "    cooldown: 1m\n    to: [{mqtt: home}]\n");
	}
	return buf_steal(&b);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); /* CPU time: a busy machine skews wall time */
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
	static const int sizes[] = {10, 100, 1000};
	enum { NMSG = 256 };
	static struct message msgs[NMSG];
	int64_t t0 = 0;

	util_parse_time("2026-11-26T23:30:00Z", &t0, NULL);
	for (int i = 0; i < NMSG; i++) {
		struct message *m = &msgs[i];
		memset(m, 0, sizeof(*m));
		m->kind = MSG_EVENT;
		m->phase = i % 7 == 0 ? MSG_PHASE_UPDATE : MSG_PHASE_NEW;
		snprintf(m->source_id, sizeof(m->source_id), "ev%d", i);
		snprintf(m->zone_id, sizeof(m->zone_id), "z%d", i % 97);
		snprintf(m->zone_name, sizeof(m->zone_name), i % 3 ? "Camera %d" : "Side Door %d",
		         i % 97);
		snprintf(m->location_id, sizeof(m->location_id), "loc%d", i % 41);
		snprintf(m->severity, sizeof(m->severity), "%s", sevs[i % 5]);
		m->flags = UINT64_C(1) << msg_flag_index(flags[i % 8]);
		m->occurred_ms = t0 + i * 1000;
	}
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		struct cfg_errors errs = {0};
		char *yaml = make_config(sizes[s]);
		struct ydoc *doc = ydoc_load_string(yaml, strlen(yaml), "bench.yaml", &errs);
		struct rules *r = doc ? rules_compile(doc->root, targets, 2, &errs) : NULL;
		if (r == NULL) {
			cfg_errors_print(&errs, stderr);
			return 1;
		}
		struct rules_state *st = rules_state_new();
		struct rules_result res = {0};
		long iters = 2000000 / sizes[s];
		size_t delivered = 0;
		double start = now_s();
		for (long k = 0; k < iters; k++) {
			const struct message *m = &msgs[k % NMSG];
			rules_result_reset(&res);
			if (rules_eval(r, st, m, m->occurred_ms + k * 10, false, &res) < 0)
				return 1;
			delivered += res.nd;
		}
		double el = now_s() - start;
		printf("rules %d: %.2f us/message (%.2f deliveries/message)\n", sizes[s],
		       el * 1e6 / (double)iters, (double)delivered / (double)iters);
		rules_result_release(&res);
		rules_state_free(st);
		rules_free(r);
		ydoc_free(doc);
		free(yaml);
		cfg_errors_release(&errs);
	}
	return 0;
}
