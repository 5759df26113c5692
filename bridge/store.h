/* Durable state in state_dir/state.db (SQLite, WAL): zone cursors, dedup records and open
 * events, rule cooldown/visit memory, the outbox and dead letters. One struct store is one
 * connection, used by one thread; the poller and the delivery thread each open their own.
 * No logging here: every failure returns -1 and leaves its text in store_errmsg(). */
#ifndef TB_STORE_H
#define TB_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Schema version written to PRAGMA user_version. Older files are migrated at open. */
#define STORE_SCHEMA_VERSION 8

struct store;

/* Opens (creating it mode 0600 if missing) and migrates the database at path. Returns a new
 * store (caller frees with store_close), or NULL with a message naming the file in err: not a
 * database, a newer schema than this program knows, unreadable. A bad file is never changed,
 * replaced or deleted. Durability: WAL with synchronous=NORMAL. A commit is in the WAL
 * (written, not fsynced) before it returns, so kill -9 at any moment loses no committed
 * transaction; a power cut may lose the last commits, never half of one, and since a poll's
 * messages and its cursor commit together the poll is then simply done again. */
struct store *store_open(const char *path, char *err, size_t errsz);
/* The database's path in state_dir: "<state_dir>/state.db". New string (caller frees), NULL
 * on ENOMEM. */
char *store_path(const char *state_dir);
void store_close(struct store *s); /* NULL is fine; rolls back an open transaction */

/* Checkpoints (the WAL copied back into the database, with its two fdatasyncs) of the
 * connections store_open opens to path from now on run in a thread of their own, with its
 * own connection, instead of in the thread that committed; that thread only checkpoints
 * itself when the checkpoint thread is far behind. For the daemon: start before opening its
 * stores, stop after closing them all, from the thread that opens them. Stop with none
 * started is fine. 0, or -1 (with the reason in err: the writers keep checkpointing). */
int store_checkpoints_start(const char *path, char *err, size_t errsz);
void store_checkpoints_stop(void);
long store_checkpoints_done(void); /* checkpoints the thread ran, 0 when none runs */

/* Last error text ("outbox put: database or disk is full"); borrowed, valid until the next
 * call on s. Empty when nothing failed yet. */
const char *store_errmsg(struct store *s);
/* Bytes the connection's page cache holds now (bounded at open: see CACHE_PRAGMA). */
size_t store_cache_bytes(struct store *s);
/* Lines of the pool every page cache takes its pages from (CACHE_POOL_PAGES), 0 when SQLite
 * was set up before the first store_open and so without it. */
size_t store_cache_pool_lines(void);

/* Explicit transaction (BEGIN IMMEDIATE: takes the write lock at once, so two writers wait on
 * busy_timeout instead of failing at their first write). Calls below outside a transaction
 * commit on their own. 0 or -1. */
int store_begin(struct store *s);
/* store_begin without waiting when another connection holds the write lock: 0, 1 when it
 * does (nothing begun), -1 on error. */
int store_try_begin(struct store *s);
int store_commit(struct store *s);
int store_rollback(struct store *s);

/* Cursors: (zone, kind) -> until_ms, the end of the last fully processed window.
 * get: 1 found (sets *until_ms), 0 none, -1 error. set: 0 or -1. */
int store_cursor_get(struct store *s, const char *zone_id, const char *kind, int64_t *until_ms);
int store_cursor_set(struct store *s, const char *zone_id, const char *kind, int64_t until_ms);

/* Dedup records, one per (kind, source_id): the last revision seen and what it said. */
struct store_seen {
	char revision[64]; /* updated_at as the API sent it (longer values are cut) */
	uint64_t flags;    /* bitmask, meaning left to the caller */
	char severity[64]; /* as long as a message's, so a comparison never sees a cut one */
	bool complete;
	int64_t starts_ms;
	int64_t seen_ms; /* put: 0 means now; get: when it was last put */
};
/* get: 1 found (fills *out), 0 none, -1 error. put: insert or replace; 0 or -1. */
int store_seen_get(struct store *s, const char *kind, const char *source_id,
                   struct store_seen *out);
int store_seen_put(struct store *s, const char *kind, const char *source_id, const char *zone_id,
                   const struct store_seen *in);
/* Calls cb for each incomplete record of kind "event" in zone_id, oldest start first; a
 * non-zero return from cb stops the walk and is returned. Otherwise 0, or -1 on error.
 * source_id is borrowed for the call only. Do not write to s from cb. */
int store_open_events(struct store *s, const char *zone_id,
                      int (*cb)(void *arg, const char *source_id, int64_t starts_ms), void *arg);
/* Deletes complete records last seen before older_than_ms (open ones stay).
 * Returns the number deleted, or -1. */
int store_seen_prune(struct store *s, int64_t older_than_ms);

/* The rule engine's cooldown and visit memory: key -> value (text the rules module encodes
 * and decodes, see rules_state_save), forgotten at expires_ms. put: insert or replace; 0 or
 * -1. each: calls cb for every entry with expires_ms > now_ms, in key order; key and value
 * are borrowed for the call only; a non-zero return from cb stops the walk and is returned,
 * otherwise 0, or -1 on error. Do not write to s from cb. prune: deletes the entries with
 * expires_ms <= now_ms, returns the number deleted, or -1. */
int store_rstate_put(struct store *s, const char *key, const char *value, int64_t expires_ms);
int store_rstate_each(struct store *s, int64_t now_ms,
                      int (*cb)(void *arg, const char *key, const char *value), void *arg);
int store_rstate_prune(struct store *s, int64_t now_ms);

/* The control plane's state: key -> value text ("mode" -> "away", "wall" -> JSON of the
 * wall's hold). get: 1 found (value filled, cut to valuesz), 0 none (value ""), -1 error.
 * put: insert or replace; 0 or -1. */
int store_control_get(struct store *s, const char *key, char *value, size_t valuesz);
int store_control_put(struct store *s, const char *key, const char *value);

/* Home Assistant's discovery configs as handed to the outbox, per broker target
 * ("mqtt.home"): topic -> payload, so that a restart knows what the broker holds retained and
 * can delete what is no longer wanted. put: insert or replace, and payload "" (the deletion
 * of a retained config) removes the row; 0 or -1. each: calls cb for every row of target in
 * topic order (topic and payload borrowed for the call); a non-zero return from cb stops the
 * walk and is returned, otherwise 0, or -1 on error. Do not write to s from cb. */
int store_ha_config_put(struct store *s, const char *target, const char *topic,
                        const char *payload);
int store_ha_config_each(struct store *s, const char *target,
                         int (*cb)(void *arg, const char *topic, const char *payload), void *arg);

/* One outbox entry or dead letter. Strings other than target, zone_id, msg_id and payload
 * may be NULL. From fetch and dlq_list every string is owned by the array (see
 * store_entries_free); for put the caller keeps ownership. */
struct store_entry {
	int64_t id;         /* set by the store; order of insertion, never reused */
	char *target;       /* "mqtt.home", "webhook.slack" */
	char *zone_id;      /* ordering domain together with target; "" when none */
	char *msg_id;       /* the message's stable id */
	char *topic_or_url; /* mqtt: the topic; webhook: NULL (the URL is in the config) */
	char *payload;
	size_t payload_len; /* put: 0 means strlen(payload) */
	char *headers;      /* JSON object text */
	char *extra;        /* JSON object text: per-target options, {"qos":1,"retain":false} */
	int64_t created_ms; /* put: 0 means now */
	int64_t next_attempt_ms; /* put: 0 means due at once */
	int64_t first_failed_ms; /* 0 until the first failure */
	int attempts;
	char *last_error;
};

/* Appends e (id, attempts, first_failed_ms and last_error are ignored). 0 or -1. */
int store_outbox_put(struct store *s, const struct store_entry *e);
/* Up to max entries of target that are due (next_attempt_ms <= now_ms), in id order. An
 * entry is left out while an earlier entry of the same target and zone is deferred
 * (next_attempt_ms > now_ms), so a failing head holds back its zone and no other. The batch
 * may hold several entries of one zone: when one fails, the caller must not deliver that
 * zone's later entries of the batch (after its defer, the next fetch holds them back).
 * *out is a new array of *n entries (NULL when 0); caller frees with store_entries_free.
 * 0 or -1. Cost: a few index seeks per zone of target, plus the entries returned; a held-back
 * backlog older than them is skipped without being read. */
int store_outbox_fetch(struct store *s, const char *target, int64_t now_ms, size_t max,
                       struct store_entry **out, size_t *n); /* exported for tests */
/* The same, only entries with id > after_id: for a caller that has entries in flight
 * (MQTT QoS 1 waiting for PUBACK) and fetches the next batch before they are acknowledged. */
int store_outbox_fetch_after(struct store *s, const char *target, int64_t now_ms, int64_t after_id,
                             size_t max, struct store_entry **out, size_t *n);
/* The oldest entry of each zone of target whose head is due at now_ms, oldest first, at
 * most max: exactly what a sender that keeps one message per zone in flight can start next
 * (an entry already in flight is its zone's head until acknowledged). The nskip entries of
 * skip are taken for deleted: delivered ones whose deletes have not committed yet. 0 or -1. */
int store_outbox_heads(struct store *s, const char *target, int64_t now_ms, const int64_t *skip,
                       size_t nskip, size_t max, struct store_entry **out, size_t *n);
/* Up to max due entries of target in id order, whatever their zone (a sender that does not
 * keep zones in order; entries in flight are among them), skip as above. 0 or -1. */
int store_outbox_due(struct store *s, const char *target, int64_t now_ms, const int64_t *skip,
                     size_t nskip, size_t max, struct store_entry **out, size_t *n);
void store_entries_free(struct store_entry *v, size_t n); /* NULL is fine */
/* Frees the strings of one entry and zeroes it (for entries a caller built itself). */
void store_entry_release(struct store_entry *e);
/* ack: delivered, the entry is deleted. defer: attempts + 1, next_attempt_ms and last_error
 * set, first_failed_ms set if it was 0. to_dlq: the entry moves to the dead letters with
 * status (HTTP status, or 0) and reason, its attempts counting this failed one. Each returns
 * 0, 1 if no entry has that id (already acknowledged or moved), or -1. Acks are cheapest
 * batched in one transaction (store_begin .. store_commit). */
int store_outbox_ack(struct store *s, int64_t id);
int store_outbox_defer(struct store *s, int64_t id, int64_t next_attempt_ms, const char *error);
int store_outbox_to_dlq(struct store *s, int64_t id, int status, const char *reason);
/* Entries waiting, all targets (for max_outbox backpressure); -1 on error. */
int64_t store_outbox_count(struct store *s);
/* Entries waiting per target: cb once for each target that has some; a non-zero return
 * from cb stops and is returned. 0, or -1. */
int store_outbox_count_each(struct store *s, int (*cb)(void *arg, const char *target, int64_t n),
                            void *arg);
/* Earliest time a fetch for target can return something: the smallest next_attempt_ms among
 * the first entries of each zone. May be <= now (then only entries in flight, excluded by
 * fetch_after, may be waiting). -1 when target has no entry, -2 on error. */
int64_t store_outbox_next_due(struct store *s, const char *target);
/* The same over every entry of target, not only the zones' first ones (for store_outbox_due). */
int64_t store_outbox_next_due_any(struct store *s, const char *target);

/* Dead letters of target (NULL: all) that failed at or after since_ms, oldest first. cb gets
 * a borrowed entry (id is the dead letter's id), the status, reason and failure time; a
 * non-zero return stops the walk and is returned. Otherwise 0, or -1. */
int store_dlq_list(struct store *s, const char *target, int64_t since_ms,
                   int (*cb)(void *arg, const struct store_entry *e, int status, const char *reason,
                             int64_t failed_ms),
                   void *arg);
/* Moves the same selection back into the outbox, due at once, attempts and failure fields
 * reset, in the order the entries were first queued; sets *count (may be NULL). 0 or -1. */
int store_dlq_replay(struct store *s, const char *target, int64_t since_ms, int *count);

#endif
