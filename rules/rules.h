/* The rule engine: compiles the `rules`, `watchlists` and `severity_order` sections of a
 * config tree once, then evaluates normalised messages against them with no I/O and no
 * per-rule allocation. Cooldown and visit memory live in a separate state keyed by rule
 * name, so it survives a reload, and is saved and loaded as text so it survives a restart. */
#ifndef TB_RULES_H
#define TB_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/yaml.h"
#include "rules/normalize.h"

/* A configured publisher the rules may name. Strings are copied by rules_compile. */
struct rules_target_def {
	const char *kind; /* "mqtt" | "webhook" | "homeassistant" (a broker with discovery on) */
	const char *name;
	const char *topic_prefix; /* mqtt: the default topic is <prefix>/<kind>/{{zone.name}};
	                           * homeassistant: handed on as the delivery's topic */
	int qos;                  /* mqtt defaults */
	bool retain;
	bool slack; /* webhook: format slack, so text values are mrkdwn-escaped */
};

struct rules;
struct rules_state;

/* Compiles root's `rules`, `watchlists` and `severity_order` (root: the document's root map;
 * other keys are ignored). Relative watchlist files are read relative to root->file's
 * directory. Every problem is added to errs with its position; returns NULL if there was
 * any. Caller frees with rules_free. */
struct rules *rules_compile(const struct ynode *root, const struct rules_target_def *targets,
                            size_t ntargets, struct cfg_errors *errs);
void rules_free(struct rules *r); /* NULL is fine */
size_t rules_count(const struct rules *r);
/* The name of rule i (in config order) when one of its targets is kind/target, else NULL
 * (also past the last rule). Borrowed; valid while r lives. */
const char *rules_name_with_target(const struct rules *r, size_t i, const char *kind,
                                   const char *target);
/* Position of severity in severity_order, or -1 when it is not there (such a message
 * never satisfies min_severity; the daemon counts them). */
int rules_severity_rank(const struct rules *r, const char *severity);
/* True when a watchlist file changed on disk since it was read (reload to pick it up). */
bool rules_watchlists_changed(const struct rules *r);

/* Cooldown and visit memory. NULL on ENOMEM. Caller frees. */
struct rules_state *rules_state_new(void);
void rules_state_free(struct rules_state *st); /* NULL is fine */
/* The arming mode `when.modes` matches (copied; NULL or "" is none, which no `modes`
 * list matches). */
void rules_state_set_mode(struct rules_state *st, const char *mode);
/* How long after it occurred a plate read may still be evaluated (the poll lookback): a
 * visit is remembered until visit plus this after its last read's occurred_at, so a read of
 * the same visit evaluated late (a restart, a failing API, a catch-up) does not alert
 * again. 0 (the default) keeps it visit after the later of that read and its evaluation. */
void rules_state_set_late(struct rules_state *st, int64_t late_ms);
#define RULES_MAX_DELAY_DEFAULT_MS 30000
/* Number of remembered cooldown/visit entries (expired ones are dropped as eval goes).
 * Exported for tests. */
size_t rules_state_size(const struct rules_state *st);
/* Calls put for every cooldown/visit entry changed since the last successful call, then clears
 * the dirty marks: key is a stable text key ("C:rule|zone_id", "V:rule|plate|zone_id"),
 * value a compact JSON object of everything the entry holds, expires_ms when it can be
 * forgotten. key and value are borrowed for the call. Entries dropped on expiry are not
 * reported (they expire in the database too). 0, or the first non-zero return of put, or -1
 * on ENOMEM; on failure every entry stays marked, so the next call puts them again. */
int rules_state_save(struct rules_state *st,
                     int (*put)(void *arg, const char *key, const char *value, int64_t expires_ms),
                     void *arg);
/* Marks every entry changed, so the next rules_state_save puts them all again: for when the
 * transaction holding a successful save failed to commit. */
void rules_state_mark_all(struct rules_state *st);
/* Restores one entry saved by rules_state_save, replacing one of the same key; skips it (0)
 * when it expired at now_ms or does not parse. The entry is not marked changed. 0, or -1 on
 * ENOMEM. */
int rules_state_load(struct rules_state *st, const char *key, const char *value, int64_t now_ms);

/* One message for one target. Strings are owned by the result (freed by reset/release);
 * rule, target_kind and target are borrowed from the rules and valid while they live. */
struct rules_delivery {
	const char *rule;
	const char *target_kind; /* "mqtt" | "webhook" | "homeassistant" | "perspective" */
	const char *target;      /* the target's name; perspective: "auto", a name or an id */
	char *topic; /* rendered for mqtt; homeassistant: the broker's topic_prefix; else NULL */
	int qos;
	bool retain;
	char *text;           /* rendered text template, or NULL */
	char *body;           /* rendered body template (replaces the JSON body), or NULL */
	int64_t hold_ms;      /* perspective: how long the call-up holds the wall (0: not) */
	int64_t max_delay_ms; /* perspective: after this long queued it is stale */
	int rank;             /* the message's severity in severity_order, -1 when not there */
	bool top;             /* the severity is the last (highest) of severity_order */
	struct message msg;   /* as delivered: rule set, watchlist fields of this rule's match */
};

/* Why a rule did or did not match: reason is "" when it matched and delivered, else the first
 * failing condition ("flags_any: none of intrusion,tripwire", "cooldown: 3m left"). */
struct rules_trace {
	const char *rule; /* borrowed from the rules */
	bool matched;
	char reason[160];
};

/* Zero-initialise; reused between evaluations. */
struct rules_result {
	struct rules_delivery *d;
	size_t nd, capd;
	struct rules_trace *t;
	size_t nt, capt;
};

/* Tries every rule in order on msg at now_ms (Unix ms) and appends the deliveries, and with
 * trace one trace per rule tried. Updates st (cooldowns, visits). 0, or -1 on ENOMEM (the
 * result then holds what was appended so far). */
int rules_eval(const struct rules *r, struct rules_state *st, const struct message *msg,
               int64_t now_ms, bool trace, struct rules_result *res);
void rules_result_reset(struct rules_result *res);   /* frees rendered strings, keeps arrays */
void rules_result_release(struct rules_result *res); /* frees everything, re-inits */

#endif
