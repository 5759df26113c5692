/* Internal to the rule engine, shared by its three files: rules_compile.c (YAML tree ->
 * struct rule), rules_state.c (cooldown and visit memory, saved and loaded as text) and
 * rules.c (evaluation). Other modules use rules/rules.h only. */
#ifndef TB_RULES_INT_H
#define TB_RULES_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"
#include "rules/rules.h"
#include "rules/schedule.h"
#include "rules/template.h"
#include "rules/watchlist.h"

#define REASON_MAX sizeof(((struct rules_trace *)0)->reason)

struct strlist {
	char **v;
	size_t n;
	char *joined; /* "a,b,c" for reasons */
};

struct rule_target {
	const char *kind; /* static "mqtt" | "webhook" | "homeassistant" | "perspective" */
	bool mqtt;
	bool perspective;        /* name is "auto", a perspective's name or id */
	int64_t hold, max_delay; /* perspective only */
	char *name;
	char *prefix;                           /* homeassistant: the broker's topic_prefix */
	struct tmpl *topic;                     /* explicit topic, or NULL */
	struct tmpl *topic_event, *topic_plate; /* the default topics */
	int qos;
	bool retain;
	struct tmpl *text, *body;
};

struct rule {
	char *name;
	int kind;        /* -1 any, else enum msg_kind */
	unsigned phases; /* bit per enum msg_phase */
	char *phases_joined;
	struct strlist zones, locations, severities, countries, modes;
	unsigned char *zkind; /* per zone pattern: enum zkind */
	size_t *zlen;         /* literal part's length */
	uint64_t flags_any, flags_all, flags_none;
	char *flags_any_joined;
	int min_sev; /* rank in severity_order, -1 when unset */
	struct sched_window *win;
	size_t nwin;
	struct watchlist **wls; /* borrowed from rules.wls, plus inline_wl last */
	size_t nwl;
	struct watchlist *inline_wl; /* owned: the rule's `plates` */
	bool has_max_age;
	int64_t max_age;
	int64_t cooldown; /* 0: none */
	struct tmpl *cooldown_key;
	int64_t visit; /* 0: none */
	struct rule_target *to;
	size_t nto;
	bool stop;
};

struct rules {
	struct rule *v;
	size_t n;
	char **sev;
	size_t nsev;
	struct watchlist_set *wls;
	struct tz **tzs;
	size_t ntz;
};

/* Most zone patterns are a name, "Prefix*" or "*suffix": those skip fnmatch. */
enum zkind { Z_LITERAL, Z_PREFIX, Z_SUFFIX, Z_GLOB };

/* rules.c: "250ms", "45s", "3m", "2m30s", "1h5m", "2d". */
void rules_fmt_duration(int64_t ms, char *out, size_t outsz);
/* rules.c: writes a reason (at most REASON_MAX bytes, cut if longer) into why. */
void rules_say(char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Returns false from a condition, with the reason in why when why is not NULL. */
#define FAIL(...)                                                                                  \
	do {                                                                                       \
		if (why)                                                                           \
			rules_say(why, __VA_ARGS__);                                               \
		return false;                                                                      \
	} while (0)

/* rules_state.c: visit and cooldown of ru for m; updates st. False (with why) when the
 * message is held back. */
bool rules_state_pass(const struct rule *ru, struct rules_state *st, const struct message *m,
                      int64_t now_ms, int rank, char *why);
/* rules_state.c: drops expired entries once the memory has grown enough since the last
 * time; called before each evaluation. */
void rules_state_prune_due(struct rules_state *st, int64_t now_ms);
/* rules_state.c: a buffer evaluation may render into (kept between calls, so rendering
 * does not allocate per message). */
struct buf *rules_state_scratch(struct rules_state *st);
/* rules_state.c: the arming mode when.modes matches ("" when none); borrowed. */
const char *rules_state_mode(const struct rules_state *st);

#endif
