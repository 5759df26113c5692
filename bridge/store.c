/* The SQLite state database: schema and migrations, prepared statements made once at open,
 * and the cursor / dedup / rule state / outbox / dead-letter verbs. Callers decide what
 * to store and when to commit; this file only keeps it safe and in order. */
#include "bridge/store.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "lib/util.h"

#define STORE_APP_ID 0x54427374 /* "TBst" in PRAGMA application_id */
#define WAL_RETRY_MS 20
#define BUSY_TIMEOUT_MS 5000
#define BUSY_NAP_US 100
/* A connection's page cache: 1 MiB (negative: KiB). In WAL mode a connection empties its
 * cache whenever another one has committed since its last transaction, and the poller's and
 * the delivery loop's connections commit in turn many times a second: a page rarely
 * outlives one transaction, so SQLite's default 2 MiB mostly holds pages about to be
 * dropped (1.9 MiB of peak RSS over the two). Not less: at 512 KiB webhook posts/s fell by
 * a fifth, probably because the heads query of an order: zone webhook (every zone's oldest
 * entry) no longer fits (docs/internals/performance.md). */
#define CACHE_PRAGMA "PRAGMA cache_size = -1024"
/* The pages of every cache, the connections' and the temporary tables' of a query, come
 * from one pool set up with SQLite (lib_init): a cache emptied at each other connection's
 * commit gave its pages back to malloc, which handed the heap's top back to the kernel and
 * faulted it in again for the next transaction (the delivery loop spent a tenth of its time
 * in brk and page faults). 320 lines of a 4 KiB page and its header, 1.4 MB: what the busy
 * bench needs at once, less than the two caches' bound; SQLite takes a line beyond them, or
 * of a bigger page, from malloc. SQLite links every line into its free list at set-up, so
 * the pool is resident from the start: idle RSS 0.8 MB more, peak RSS 1.2 to 1.9 MB less. */
#define POOL_PAGE_SIZE 4096
#define CACHE_POOL_PAGES 320
#define STORE_FILE "state.db"
/* A checkpoint copies the WAL back into the database, with an fdatasync before and after.
 * SQLite runs one in the committing thread once the WAL holds 1,000 pages, and past that
 * after every commit until the WAL starts over (only when no reader holds a snapshot in it,
 * rarely with two busy connections): at a busy site the poller spent an eighth of its time
 * in those syncs. The daemon's connections hand them to a thread of their own, which runs
 * one at most every CKPT_GAP_MS, and checkpoint themselves only when that thread is
 * CKPT_FRAMES_SELF pages behind. Those PASSIVE checkpoints copy the WAL but never start it
 * over while the poller and the delivery loop take turns at reading; past
 * CKPT_RESTART_FRAMES pages the thread waits for the readers, up to CKPT_RESTART_WAIT_MS
 * (see ckpt_run). */
#define CKPT_FRAMES 1000
#define CKPT_FRAMES_SELF 20000
#define CKPT_RESTART_FRAMES 4000
#define CKPT_RESTART_WAIT_MS 20
#define CKPT_GAP_MS 100

/* migrations[v] takes a database from user_version v to v + 1. Never edit a shipped step:
 * add one. v1 was the first layout; v2 added per-target options, the first failure time and
 * the indexes fetch needs to hold back a zone behind its deferred head (see ST_OB_FETCH); v3
 * added rule_state, the rule engine's cooldown and visit memory, so a restart keeps it; v4
 * forgets the webhook URLs (they carry tokens) that older versions copied into each entry:
 * topic_or_url is the MQTT topic only, webhooks take their URL from the config; v5 drops kv,
 * a table of deadlines nothing used since rule_state took its place; v6 added control, the
 * arming mode and the video wall's hold, so a restart keeps both; v7 added ha_config, the
 * Home Assistant discovery configs handed to the outbox, so a restart can delete those of
 * zones and rules that went away while it was stopped; v8 makes seen a WITHOUT ROWID table
 * (one b-tree keyed by kind and source_id, not a table and its key's index: the poller
 * writes a record for every resource it reads). */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
    "CREATE TABLE cursors (zone_id TEXT NOT NULL, kind TEXT NOT NULL,"
    " until_ms INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
    " PRIMARY KEY (zone_id, kind)) WITHOUT ROWID;"
    "CREATE TABLE seen (kind TEXT NOT NULL, source_id TEXT NOT NULL,"
    " revision TEXT NOT NULL, flags INTEGER NOT NULL, severity TEXT NOT NULL,"
    " complete INTEGER NOT NULL, zone_id TEXT NOT NULL, starts_ms INTEGER NOT NULL,"
    " seen_ms INTEGER NOT NULL, PRIMARY KEY (kind, source_id));"
    "CREATE INDEX seen_open ON seen (zone_id, starts_ms) WHERE complete = 0;"
    "CREATE TABLE kv (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL,"
    " zone_id TEXT NOT NULL, msg_id TEXT NOT NULL, topic_or_url TEXT, payload TEXT NOT NULL,"
    " headers TEXT, created_ms INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_ms INTEGER NOT NULL DEFAULT 0, last_error TEXT);"
    "CREATE INDEX outbox_target ON outbox (target, id);"
    "CREATE TABLE dead (id INTEGER PRIMARY KEY AUTOINCREMENT, orig_id INTEGER NOT NULL,"
    " target TEXT NOT NULL, zone_id TEXT NOT NULL, msg_id TEXT NOT NULL,"
    " status INTEGER NOT NULL, reason TEXT, attempts INTEGER NOT NULL,"
    " failed_ms INTEGER NOT NULL, created_ms INTEGER NOT NULL, payload TEXT NOT NULL,"
    " topic_or_url TEXT, headers TEXT);"
    "CREATE INDEX dead_failed ON dead (failed_ms);",

    "ALTER TABLE outbox ADD COLUMN extra TEXT;"
    "ALTER TABLE outbox ADD COLUMN first_failed_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE dead ADD COLUMN extra TEXT;"
    "ALTER TABLE dead ADD COLUMN first_failed_ms INTEGER NOT NULL DEFAULT 0;"
    "DROP INDEX outbox_target;"
    "CREATE INDEX outbox_walk ON outbox (target, id, zone_id, next_attempt_ms);"
    "CREATE INDEX outbox_due ON outbox (target, next_attempt_ms, zone_id);"
    "CREATE INDEX outbox_zone ON outbox (target, zone_id, id, next_attempt_ms);",

    "CREATE TABLE rule_state (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
    " expires_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX rule_state_expiry ON rule_state (expires_ms);",

    /* parenthesised: clang takes two short literals in a row for a missing comma */
    ("UPDATE outbox SET topic_or_url = NULL WHERE target LIKE 'webhook.%';"
     "UPDATE dead SET topic_or_url = NULL WHERE target LIKE 'webhook.%';"),

    "DROP TABLE kv;",

    "CREATE TABLE control (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",

    "CREATE TABLE ha_config (target TEXT NOT NULL, topic TEXT NOT NULL,"
    " payload TEXT NOT NULL, PRIMARY KEY (target, topic)) WITHOUT ROWID;",

    "CREATE TABLE seen_v8 (kind TEXT NOT NULL, source_id TEXT NOT NULL,"
    " revision TEXT NOT NULL, flags INTEGER NOT NULL, severity TEXT NOT NULL,"
    " complete INTEGER NOT NULL, zone_id TEXT NOT NULL, starts_ms INTEGER NOT NULL,"
    " seen_ms INTEGER NOT NULL, PRIMARY KEY (kind, source_id)) WITHOUT ROWID;"
    "INSERT INTO seen_v8 SELECT kind, source_id, revision, flags, severity, complete,"
    " zone_id, starts_ms, seen_ms FROM seen;"
    "DROP TABLE seen;"
    "ALTER TABLE seen_v8 RENAME TO seen;"
    "CREATE INDEX seen_open ON seen (zone_id, starts_ms) WHERE complete = 0;",
};

enum st {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_CURSOR_GET,
	ST_CURSOR_SET,
	ST_SEEN_GET,
	ST_SEEN_PUT,
	ST_OPEN_EVENTS,
	ST_SEEN_PRUNE,
	ST_RS_PUT,
	ST_RS_EACH,
	ST_RS_PRUNE,
	ST_OB_PUT,
	ST_OB_FETCH,
	ST_OB_ACK,
	ST_OB_DEFER,
	ST_OB_TO_DLQ,
	ST_OB_COUNT,
	ST_OB_COUNT_EACH,
	ST_OB_LOW,
	ST_OB_DEFERRED,
	ST_OB_NEXT_DUE,
	ST_OB_HEADS,
	ST_OB_DUE_ANY,
	ST_OB_NEXT_DUE_ANY,
	ST_DLQ_LIST,
	ST_DLQ_REPLAY,
	ST_DLQ_DELETE,
	ST_CTL_GET,
	ST_CTL_PUT,
	ST_HA_PUT,
	ST_HA_DELETE,
	ST_HA_EACH,
	ST_COUNT
};

/* Entry columns, in the order row_to_entry reads them (enum col_entry). */
#define ENTRY_COLS_O                                                                               \
	"o.id, o.target, o.zone_id, o.msg_id, o.topic_or_url, o.payload, o.headers, o.extra, "     \
	"o.created_ms, o.next_attempt_ms, o.first_failed_ms, o.attempts, o.last_error"
/* Due entries of target ?1 at ?2 after id ?3 that no earlier deferred entry of their zone
 * holds back. blocked is one row per zone with a deferred entry (few: found through
 * outbox_due); the walk in id order reads only the covering index outbox_walk. */
#define FETCH_SQL                                                                                  \
	"WITH blocked (zone_id, first_id) AS MATERIALIZED (SELECT zone_id, min(id)"                \
	" FROM outbox INDEXED BY outbox_due WHERE target = ?1 AND next_attempt_ms > ?2"            \
	" GROUP BY zone_id) SELECT " ENTRY_COLS_O " FROM outbox o INDEXED BY outbox_walk"          \
	" LEFT JOIN blocked b ON b.zone_id = o.zone_id"                                            \
	" WHERE o.target = ?1 AND o.id > ?3 AND o.next_attempt_ms <= ?2"                           \
	" AND (b.first_id IS NULL OR o.id < b.first_id) ORDER BY o.id LIMIT ?4"
/* Plans are pinned with INDEXED BY: the planner has no statistics, and a wrong choice here
 * turns a fetch into a scan of the whole outbox. */
/* The zones of target ?1, one index seek each (a skip-scan of outbox_zone), and the id and
 * next_attempt_ms of each zone's head, its oldest entry. */
#define ZONES_CTE                                                                                  \
	"WITH RECURSIVE zones (z) AS (SELECT (SELECT zone_id FROM outbox"                          \
	" INDEXED BY outbox_zone WHERE target = ?1 ORDER BY zone_id LIMIT 1) UNION ALL"            \
	" SELECT (SELECT zone_id FROM outbox INDEXED BY outbox_zone"                               \
	" WHERE target = ?1 AND zone_id > zones.z ORDER BY zone_id LIMIT 1) FROM zones"            \
	" WHERE zones.z IS NOT NULL)"
#define HEAD_ID                                                                                    \
	"(SELECT id FROM outbox INDEXED BY outbox_zone WHERE target = ?1 AND zone_id = zones.z"    \
	" ORDER BY id LIMIT 1)"
#define HEAD_T                                                                                     \
	"(SELECT next_attempt_ms FROM outbox INDEXED BY outbox_zone"                               \
	" WHERE target = ?1 AND zone_id = zones.z ORDER BY id LIMIT 1)"
/* Entries delivered whose deletes have not committed yet (a JSON array of ids in ?4, or
 * NULL): the reads of a sender skip them as if deleted, so their zones can go on. */
#define SKIP_IDS " NOT IN (SELECT value FROM json_each(?4))"
#define HEAD_ID_SKIP                                                                               \
	"(SELECT id FROM outbox INDEXED BY outbox_zone WHERE target = ?1 AND zone_id = zones.z"    \
	" AND id" SKIP_IDS " ORDER BY id LIMIT 1)"
/* Nothing below the oldest due head can go: a fetch walks from there. NULL: none. */
#define LOW_SQL                                                                                    \
	ZONES_CTE " SELECT min(h) FROM (SELECT " HEAD_ID " AS h, " HEAD_T " AS t"                  \
	          " FROM zones WHERE z IS NOT NULL) WHERE t <= ?2"
/* The head of each zone of target ?1 that is due at ?2, oldest first, at most ?3, the
 * entries of ?4 skipped. */
#define HEADS_SQL                                                                                  \
	ZONES_CTE " SELECT " ENTRY_COLS_O " FROM zones JOIN outbox o ON o.id = " HEAD_ID_SKIP      \
	          " WHERE zones.z IS NOT NULL AND o.next_attempt_ms <= ?2 ORDER BY o.id LIMIT ?3"
/* Due entries of target ?1 at ?2 in id order whatever their zone, at most ?3, the entries of
 * ?4 skipped (a walk of outbox_walk that steps over the deferred ones), and the earliest
 * next attempt of any. */
#define DUE_ANY_SQL                                                                                \
	"SELECT " ENTRY_COLS_O " FROM outbox o INDEXED BY outbox_walk WHERE o.target = ?1"         \
	" AND o.next_attempt_ms <= ?2 AND o.id" SKIP_IDS " ORDER BY o.id LIMIT ?3"
#define NEXT_DUE_ANY_SQL                                                                           \
	"SELECT min(next_attempt_ms) FROM outbox INDEXED BY outbox_due WHERE target = ?1"
#define NEXT_DUE_SQL ZONES_CTE " SELECT min(" HEAD_T ") FROM zones WHERE z IS NOT NULL"
#define DLQ_WHERE "(?1 IS NULL OR target = ?1) AND failed_ms >= ?2"

/* Column positions of ENTRY_COLS_O, and of ST_DLQ_LIST, which adds three after them. */
enum col_entry {
	COL_ID,
	COL_TARGET, /* the strings, target to extra, in struct store_entry's order */
	COL_ZONE_ID,
	COL_MSG_ID,
	COL_TOPIC_OR_URL,
	COL_PAYLOAD,
	COL_HEADERS,
	COL_EXTRA,
	COL_CREATED_MS,
	COL_NEXT_ATTEMPT_MS,
	COL_FIRST_FAILED_MS,
	COL_ATTEMPTS,
	COL_LAST_ERROR,
	COL_DLQ_STATUS,
	COL_DLQ_REASON,
	COL_DLQ_FAILED_MS,
};

/* Column positions of ST_SEEN_GET. */
enum col_seen {
	COL_SEEN_REVISION,
	COL_SEEN_FLAGS,
	COL_SEEN_SEVERITY,
	COL_SEEN_COMPLETE,
	COL_SEEN_STARTS_MS,
	COL_SEEN_SEEN_MS,
};

static const char *const st_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SAVEPOINT] = "SAVEPOINT store_op",
    [ST_RELEASE] = "RELEASE store_op",
    [ST_ROLLBACK_TO] = "ROLLBACK TO store_op",
    [ST_CURSOR_GET] = "SELECT until_ms FROM cursors WHERE zone_id = ?1 AND kind = ?2",
    [ST_CURSOR_SET] = "INSERT INTO cursors (zone_id, kind, until_ms, updated_at)"
                      " VALUES (?1, ?2, ?3, ?4) ON CONFLICT (zone_id, kind) DO UPDATE"
                      " SET until_ms = excluded.until_ms, updated_at = excluded.updated_at",
    [ST_SEEN_GET] = "SELECT revision, flags, severity, complete, starts_ms, seen_ms FROM seen"
                    " WHERE kind = ?1 AND source_id = ?2",
    [ST_SEEN_PUT] = "INSERT OR REPLACE INTO seen (kind, source_id, revision, flags, severity,"
                    " complete, zone_id, starts_ms, seen_ms)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_OPEN_EVENTS] = "SELECT source_id, starts_ms FROM seen WHERE zone_id = ?1"
                       " AND complete = 0 AND kind = 'event' ORDER BY starts_ms, source_id",
    [ST_SEEN_PRUNE] = "DELETE FROM seen WHERE seen_ms < ?1 AND complete <> 0",
    [ST_RS_PUT] = "INSERT OR REPLACE INTO rule_state (key, value, expires_ms)"
                  " VALUES (?1, ?2, ?3)",
    [ST_RS_EACH] = "SELECT key, value FROM rule_state WHERE expires_ms > ?1 ORDER BY key",
    [ST_RS_PRUNE] = "DELETE FROM rule_state WHERE expires_ms <= ?1",
    [ST_OB_PUT] = "INSERT INTO outbox (target, zone_id, msg_id, topic_or_url, payload, headers,"
                  " extra, created_ms, next_attempt_ms)"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_OB_FETCH] = FETCH_SQL,
    [ST_OB_LOW] = LOW_SQL,
    [ST_OB_DEFERRED] = "SELECT 1 FROM outbox INDEXED BY outbox_due"
                       " WHERE target = ?1 AND next_attempt_ms > ?2 LIMIT 1",
    [ST_OB_HEADS] = HEADS_SQL,
    [ST_OB_ACK] = "DELETE FROM outbox WHERE id = ?1",
    [ST_OB_DEFER] = "UPDATE outbox SET attempts = attempts + 1, next_attempt_ms = ?2,"
                    " last_error = ?3, first_failed_ms = CASE first_failed_ms WHEN 0 THEN ?4"
                    " ELSE first_failed_ms END WHERE id = ?1",
    [ST_OB_TO_DLQ] = "INSERT INTO dead (orig_id, target, zone_id, msg_id, status, reason,"
                     " attempts, failed_ms, created_ms, payload, topic_or_url, headers, extra,"
                     " first_failed_ms) SELECT id, target, zone_id, msg_id, ?2, ?3,"
                     " attempts + 1, ?4, created_ms, payload, topic_or_url, headers, extra,"
                     " CASE first_failed_ms WHEN 0 THEN ?4 ELSE first_failed_ms END"
                     " FROM outbox WHERE id = ?1",
    [ST_OB_COUNT] = "SELECT count(*) FROM outbox",
    [ST_OB_COUNT_EACH] = "SELECT target, count(*) FROM outbox GROUP BY target",
    [ST_OB_NEXT_DUE] = NEXT_DUE_SQL,
    [ST_OB_DUE_ANY] = DUE_ANY_SQL,
    [ST_OB_NEXT_DUE_ANY] = NEXT_DUE_ANY_SQL,
    [ST_DLQ_LIST] = "SELECT id, target, zone_id, msg_id, topic_or_url, payload, headers, extra,"
                    " created_ms, 0, first_failed_ms, attempts, NULL, status, reason, failed_ms"
                    " FROM dead WHERE " DLQ_WHERE " ORDER BY id",
    [ST_DLQ_REPLAY] = "INSERT INTO outbox (target, zone_id, msg_id, topic_or_url, payload,"
                      " headers, extra, created_ms, next_attempt_ms)"
                      " SELECT target, zone_id, msg_id, topic_or_url, payload, headers, extra,"
                      " created_ms, 0 FROM dead WHERE " DLQ_WHERE " ORDER BY orig_id",
    [ST_DLQ_DELETE] = "DELETE FROM dead WHERE " DLQ_WHERE,
    [ST_CTL_GET] = "SELECT value FROM control WHERE key = ?1",
    [ST_CTL_PUT] = "INSERT OR REPLACE INTO control (key, value) VALUES (?1, ?2)",
    [ST_HA_PUT] = "INSERT OR REPLACE INTO ha_config (target, topic, payload) VALUES (?1, ?2, ?3)",
    [ST_HA_DELETE] = "DELETE FROM ha_config WHERE target = ?1 AND topic = ?2",
    [ST_HA_EACH] = "SELECT topic, payload FROM ha_config WHERE target = ?1 ORDER BY topic",
};

struct ckpt {
	char *path;
	sqlite3 *db; /* the thread's own connection, opened at its first checkpoint */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	bool want, quit;
	atomic_long done; /* checkpoints the thread ran */
};

/* Set by store_checkpoints_start before the daemon's connections open, cleared by
 * store_checkpoints_stop after they closed: read and written by the thread that opens them. */
static struct ckpt *ckpt;

struct store {
	sqlite3 *db;
	sqlite3_stmt *st[ST_COUNT];
	char err[512];
	int64_t busy_since; /* monotonic ms of the first try of the wait in progress */
	bool no_wait;       /* store_try_begin: a write lock held elsewhere is not waited for */
};

/* The poller and the delivery loop write through two connections and take turns at the write
 * lock, each for a few milliseconds. SQLite's own busy handler sleeps 1, 2, 5, 10 ms and
 * longer between tries, so the one waiting misses the gaps between the other's
 * transactions and falls behind (the MQTT acknowledgements waited behind the poller's
 * chunks); this one tries again every BUSY_NAP_US, up to BUSY_TIMEOUT_MS. */
static int busy_wait(void *arg, int tries)
{
	struct store *s = arg;
	struct timespec nap = {0, BUSY_NAP_US * 1000L};
	int64_t now = util_mono_ms();

	if (s->no_wait)
		return 0;
	if (tries == 0)
		s->busy_since = now;
	if (now - s->busy_since >= BUSY_TIMEOUT_MS)
		return 0;
	nanosleep(&nap, NULL);
	return 1;
}

static void set_err(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* After each commit of a connection whose checkpoints the thread runs; frames: the pages in
 * the WAL. Failures are not reported: the next commit asks again, and past CKPT_FRAMES_SELF
 * the writer checkpoints itself, as SQLite would have. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct ckpt *c = arg;

	if (frames >= CKPT_FRAMES_SELF) {
		(void)sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	} else if (frames >= CKPT_FRAMES && pthread_mutex_lock(&c->mu) == 0) {
		/* once per request: the thread's pause would wake for every commit */
		if (!c->want) {
			c->want = true;
			(void)pthread_cond_signal(&c->cv);
		}
		(void)pthread_mutex_unlock(&c->mu);
	}
	return SQLITE_OK;
}

static void *page_pool; /* CACHE_POOL_PAGES cache lines, for the process's life; NULL when
                         * SQLite was set up without them */

/* SQLite counts every allocation under one mutex shared by all connections, which the
 * poller and the delivery loop then take turns at; nothing here reads those counts. The page
 * caches take their lines from page_pool (see CACHE_POOL_PAGES). */
static void lib_init(void)
{
	int hdr = 0;

	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); /* refused once SQLite is set up */
	if (sqlite3_config(SQLITE_CONFIG_PCACHE_HDRSZ, &hdr) == SQLITE_OK && hdr > 0) {
		size_t line = ((size_t)POOL_PAGE_SIZE + (size_t)hdr + 7) & ~(size_t)7;
		page_pool = malloc(line * CACHE_POOL_PAGES);
		if (page_pool != NULL && sqlite3_config(SQLITE_CONFIG_PAGECACHE, page_pool,
		                                        (int)line, CACHE_POOL_PAGES) != SQLITE_OK) {
			free(page_pool);
			page_pool = NULL;
		}
	}
}

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

/* The checkpoint thread's wait for the readers of the WAL (a RESTART checkpoint): short
 * naps, as busy_wait, up to CKPT_RESTART_WAIT_MS; the writers wait meanwhile. */
static int ckpt_busy(void *arg, int tries)
{
	struct timespec nap = {0, BUSY_NAP_US * 1000L};

	(void)arg;
	if ((long)tries * BUSY_NAP_US >= CKPT_RESTART_WAIT_MS * 1000L)
		return 0;
	nanosleep(&nap, NULL);
	return 1;
}

/* Asked for by a connection store_open opened: SQLite is set up (lib_init) by then. */
static void ckpt_run(struct ckpt *c)
{
	int frames = 0;

	if (c->db == NULL) {
		/* it reads no table: no lookaside memory, a minimal page cache */
		if (sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
		    sqlite3_db_config(c->db, SQLITE_DBCONFIG_LOOKASIDE, NULL, 0, 0) != SQLITE_OK ||
		    sqlite3_busy_handler(c->db, ckpt_busy, NULL) != SQLITE_OK ||
		    sqlite3_exec(c->db, "PRAGMA synchronous = NORMAL; PRAGMA cache_size = 8", NULL,
		                 NULL, NULL) != SQLITE_OK) {
			sqlite3_close(c->db); /* the next request tries again */
			c->db = NULL;
			return;
		}
	}
	/* PASSIVE: never waits for the writers or the readers, as SQLite's own */
	if (sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &frames, NULL) !=
	    SQLITE_OK)
		return;
	atomic_fetch_add(&c->done, 1);
	/* The WAL starts over at a commit only when no reader holds a snapshot in it, and with
	 * the poller and the delivery loop reading in turn one nearly always does: it grew to
	 * CKPT_FRAMES_SELF pages (80 MB on disk), every page read searching its whole index,
	 * and past that every commit checkpointed in the committing thread. RESTART copies
	 * what PASSIVE left and waits for those readers (new ones read the database file),
	 * holding off the writers up to CKPT_RESTART_WAIT_MS; the next commit starts the WAL
	 * over. Busy: the next request tries again. */
	if (frames >= CKPT_RESTART_FRAMES)
		(void)sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_RESTART, NULL, NULL);
}

/* Waits CKPT_GAP_MS, or until stopped; c->mu held. */
static void ckpt_pause(struct ckpt *c)
{
	struct timespec until;

	if (clock_gettime(CLOCK_MONOTONIC, &until) != 0)
		return;
	until.tv_nsec += CKPT_GAP_MS * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	while (!c->quit && pthread_cond_timedwait(&c->cv, &c->mu, &until) == 0)
		;
}

static void *ckpt_main(void *arg)
{
	struct ckpt *c = arg;

	if (pthread_mutex_lock(&c->mu) != 0)
		return NULL; /* the writers' own checkpoints take over */
	for (;;) {
		while (!c->want && !c->quit) {
			if (pthread_cond_wait(&c->cv, &c->mu) != 0)
				c->quit = true;
		}
		if (c->quit)
			break;
		c->want = false;
		(void)pthread_mutex_unlock(&c->mu);
		ckpt_run(c);
		if (pthread_mutex_lock(&c->mu) != 0)
			return NULL;
		ckpt_pause(c);
	}
	(void)pthread_mutex_unlock(&c->mu);
	return NULL;
}

static void ckpt_free(struct ckpt *c)
{
	if (c == NULL)
		return;
	sqlite3_close(c->db);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	free(c->path);
	free(c);
}

int store_checkpoints_start(const char *path, char *err, size_t errsz)
{
	struct ckpt *c = calloc(1, sizeof(*c));
	pthread_condattr_t ca;
	int rc = ENOMEM;

	if (c == NULL || (c->path = strdup(path)) == NULL)
		goto fail_free;
	if ((rc = pthread_condattr_init(&ca)) != 0)
		goto fail_free;
	if ((rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC)) == 0)
		rc = pthread_cond_init(&c->cv, &ca);
	(void)pthread_condattr_destroy(&ca);
	if (rc != 0)
		goto fail_free;
	if ((rc = pthread_mutex_init(&c->mu, NULL)) != 0) {
		pthread_cond_destroy(&c->cv);
		goto fail_free;
	}
	if ((rc = pthread_create(&c->thread, NULL, ckpt_main, c)) != 0) {
		ckpt_free(c);
		goto fail;
	}
	ckpt = c;
	return 0;
fail_free:
	if (c != NULL)
		free(c->path);
	free(c);
fail:
	set_err(err, errsz, "unable to start the checkpoint thread: %s", strerror(rc));
	return -1;
}

void store_checkpoints_stop(void)
{
	struct ckpt *c = ckpt;

	if (c == NULL)
		return;
	ckpt = NULL;
	if (pthread_mutex_lock(&c->mu) == 0) {
		c->quit = true;
		(void)pthread_cond_signal(&c->cv);
		(void)pthread_mutex_unlock(&c->mu);
	}
	(void)pthread_join(c->thread, NULL);
	ckpt_free(c);
}

long store_checkpoints_done(void)
{
	return ckpt != NULL ? atomic_load(&ckpt->done) : 0;
}

static void set_err(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errsz == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

/* Records sqlite's message for op; always returns -1. */
static int fail(struct store *s, const char *op)
{
	set_err(s->err, sizeof(s->err), "%s: %s", op, sqlite3_errmsg(s->db));
	return -1;
}

static int failx(struct store *s, const char *op, const char *what)
{
	set_err(s->err, sizeof(s->err), "%s: %s", op, what);
	return -1;
}

/* Resets st after an error, keeping sqlite's message of the failure. */
static int fail_reset(struct store *s, sqlite3_stmt *st, const char *op)
{
	fail(s, op);
	sqlite3_reset(st);
	return -1;
}

/* Binds text or NULL; the text must live until the statement is reset. */
static int bind_text(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
}

/* A reason cut by bytes somewhere may end inside a character: stored without that broken
 * tail, so that dlq list can print it as JSON. */
static int bind_reason(sqlite3_stmt *st, int i, const char *v)
{
	if (v == NULL)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, v, (int)util_utf8_cut(v, INT_MAX, SIZE_MAX), SQLITE_STATIC);
}

/* Runs a statement that returns no row; returns sqlite3_changes() or -1. */
static int run(struct store *s, enum st i, const char *op)
{
	sqlite3_stmt *st = s->st[i];

	if (sqlite3_step(st) != SQLITE_DONE)
		return fail_reset(s, st, op);
	if (sqlite3_reset(st) != SQLITE_OK)
		return fail(s, op);
	return sqlite3_changes(s->db);
}

/* Runs a statement returning at most one integer; 1 found, 0 no row or NULL, -1 error. */
static int run_int64(struct store *s, enum st i, const char *op, int64_t *v)
{
	sqlite3_stmt *st = s->st[i];
	int rc = sqlite3_step(st);
	int found = 0;

	if (rc == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
			*v = sqlite3_column_int64(st, 0);
			found = 1;
		}
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE)
		return fail_reset(s, st, op);
	if (sqlite3_reset(st) != SQLITE_OK)
		return fail(s, op);
	return found;
}

/* Plain SQL outside the prepared set (open and migrations only). */
static int exec_int(sqlite3 *db, const char *sql, int64_t *v)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*v = sqlite3_column_int64(st, 0);
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		*v = 0;
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK) {
		/* keep the step's message: finalize would not change it, but be explicit */
		sqlite3_finalize(st);
		return rc;
	}
	return sqlite3_finalize(st);
}

static int migrate(struct store *s, const char *path, char *err, size_t errsz)
{
	int64_t version = -1;
	char sql[64];

	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto fail;
	/* Read again under the write lock: another connection may have migrated meanwhile. */
	if (exec_int(s->db, "PRAGMA user_version", &version) != SQLITE_OK)
		goto fail_rollback;
	if (version >= STORE_SCHEMA_VERSION) {
		if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
			goto fail_rollback;
		return 0;
	}
	for (int64_t v = version; v < STORE_SCHEMA_VERSION; v++) {
		if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK)
			goto fail_rollback;
	}
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", STORE_APP_ID);
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		goto fail_rollback;
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION);
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		goto fail_rollback;
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto fail_rollback;
	return 0;

fail_rollback:
	set_err(err, errsz, "unable to migrate state database '%s' from version %lld: %s", path,
	        (long long)version, sqlite3_errmsg(s->db));
	if (!sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return -1;
fail:
	set_err(err, errsz, "unable to lock state database '%s': %s", path, sqlite3_errmsg(s->db));
	return -1;
}

/* Checks that path holds our database (or nothing yet) without writing to it. The three
 * figures are read in one transaction: another process creating the schema between two of
 * them would otherwise show version 0 next to its tables, a "foreign" database. */
static int check_header(struct store *s, const char *path, char *err, size_t errsz)
{
	int64_t version, app_id, tables;

	if (sqlite3_exec(s->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
	    exec_int(s->db, "PRAGMA user_version", &version) != SQLITE_OK ||
	    exec_int(s->db, "PRAGMA application_id", &app_id) != SQLITE_OK ||
	    exec_int(s->db, "SELECT count(*) FROM sqlite_master", &tables) != SQLITE_OK ||
	    sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		set_err(err, errsz, "unable to read state database '%s': %s", path,
		        sqlite3_errmsg(s->db));
		if (!sqlite3_get_autocommit(s->db))
			sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return -1;
	}
	if (app_id != 0 && app_id != STORE_APP_ID) {
		set_err(err, errsz,
		        "'%s' is not a tether-bridge state database (application_id %lld)", path,
		        (long long)app_id);
		return -1;
	}
	if (version == 0 && tables > 0) {
		set_err(err, errsz,
		        "'%s' is not a tether-bridge state database (it holds other tables)", path);
		return -1;
	}
	if (version > STORE_SCHEMA_VERSION) {
		set_err(
		    err, errsz,
		    "state database '%s' has schema version %lld, newer than this tether-bridge "
		    "knows (%d): run a newer tether-bridge or move the file away",
		    path, (long long)version, STORE_SCHEMA_VERSION);
		return -1;
	}
	if (version < 0) {
		set_err(err, errsz, "state database '%s' has an invalid schema version %lld", path,
		        (long long)version);
		return -1;
	}
	return 0;
}

static int set_pragmas(struct store *s, const char *path, char *err, size_t errsz)
{
	sqlite3_stmt *st = NULL;
	int rc;
	bool wal = false;

	/* journal_mode returns the mode now in force: anything but "wal" is a failure. Switching
	 * a new file to WAL while another connection opens it can be refused at once with
	 * SQLITE_BUSY, without the busy handler: try again for up to the busy timeout. */
	rc = sqlite3_prepare_v2(s->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
	for (int tries = 0; rc == SQLITE_OK; tries++) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const unsigned char *mode = sqlite3_column_text(st, 0);
			wal = mode != NULL && strcmp((const char *)mode, "wal") == 0;
			rc = SQLITE_OK;
			break;
		}
		if ((rc != SQLITE_BUSY && rc != SQLITE_LOCKED) ||
		    tries * WAL_RETRY_MS >= BUSY_TIMEOUT_MS)
			break;
		sqlite3_reset(st);
		sqlite3_sleep(WAL_RETRY_MS);
		rc = SQLITE_OK;
	}
	if (rc != SQLITE_OK) {
		set_err(err, errsz, "unable to set WAL mode on state database '%s': %s", path,
		        sqlite3_errmsg(s->db));
		sqlite3_finalize(st);
		return -1;
	}
	if (sqlite3_finalize(st) != SQLITE_OK || !wal) {
		set_err(err, errsz, "unable to set WAL mode on state database '%s'", path);
		return -1;
	}
	/* NORMAL in WAL: a commit is written to the WAL before it returns, which is all a
	 * process crash needs; only the fsync at commit is skipped (see store.h). */
	if (sqlite3_exec(s->db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(s->db, CACHE_PRAGMA, NULL, NULL, NULL) != SQLITE_OK) {
		set_err(err, errsz, "unable to configure state database '%s': %s", path,
		        sqlite3_errmsg(s->db));
		return -1;
	}
	return 0;
}

struct store *store_open(const char *path, char *err, size_t errsz)
{
	struct store *s;
	int fd, rc;

	if (path == NULL || *path == '\0') {
		set_err(err, errsz, "state database path is empty");
		return NULL;
	}
	/* Create it ourselves so the mode is 0600; sqlite gives -wal and -shm the same mode.
	 * Only when it does not exist yet: closing any descriptor of a file drops every POSIX
	 * lock this process holds on it, and another connection of ours (the other thread's)
	 * relies on them; without its shared lock, another process may take the file as unused
	 * and checkpoint and remove the WAL under us. */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd >= 0) {
		close(fd);
	} else if (errno != EEXIST) {
		set_err(err, errsz, "unable to open state database '%s': %s", path,
		        strerror(errno));
		return NULL;
	}

	(void)pthread_once(&lib_once, lib_init);
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		set_err(err, errsz, "unable to open state database '%s': out of memory", path);
		return NULL;
	}
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		set_err(err, errsz, "unable to open state database '%s': %s", path,
		        s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto out_close;
	}
	if (sqlite3_busy_handler(s->db, busy_wait, s) != SQLITE_OK) {
		set_err(err, errsz, "unable to configure state database '%s': %s", path,
		        sqlite3_errmsg(s->db));
		goto out_close;
	}
	if (check_header(s, path, err, errsz) < 0)
		goto out_close;
	if (set_pragmas(s, path, err, errsz) < 0)
		goto out_close;
	if (migrate(s, path, err, errsz) < 0)
		goto out_close;
	/* replaces SQLite's own checkpoints after commits */
	if (ckpt != NULL && strcmp(ckpt->path, path) == 0)
		sqlite3_wal_hook(s->db, wal_hook, ckpt);
	for (int i = 0; i < ST_COUNT; i++) {
		rc = sqlite3_prepare_v3(s->db, st_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
		                        NULL);
		if (rc != SQLITE_OK) {
			set_err(err, errsz,
			        "unable to prepare statements on state database '%s': %s", path,
			        sqlite3_errmsg(s->db));
			goto out_close;
		}
	}
	return s;

out_close:
	store_close(s);
	return NULL;
}

char *store_path(const char *state_dir)
{
	char *path;

	if (asprintf(&path, "%s/" STORE_FILE, state_dir) < 0)
		return NULL;
	return path;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (s->db != NULL && !sqlite3_get_autocommit(s->db))
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	/* Every statement is finalized, so close does not fail with SQLITE_BUSY. */
	sqlite3_close(s->db);
	free(s);
}

const char *store_errmsg(struct store *s)
{
	return s != NULL ? s->err : "no store";
}

size_t store_cache_pool_lines(void)
{
	return page_pool != NULL ? CACHE_POOL_PAGES : 0;
}

size_t store_cache_bytes(struct store *s)
{
	int cur = 0, hi = 0;

	if (sqlite3_db_status(s->db, SQLITE_DBSTATUS_CACHE_USED, &cur, &hi, 0) != SQLITE_OK ||
	    cur < 0)
		return 0;
	return (size_t)cur;
}

int store_begin(struct store *s)
{
	return run(s, ST_BEGIN, "begin") < 0 ? -1 : 0;
}

int store_try_begin(struct store *s)
{
	int rc;

	s->no_wait = true;
	rc = store_begin(s);
	s->no_wait = false;
	if (rc < 0 && sqlite3_errcode(s->db) == SQLITE_BUSY)
		return 1;
	return rc;
}

int store_commit(struct store *s)
{
	return run(s, ST_COMMIT, "commit") < 0 ? -1 : 0;
}

int store_rollback(struct store *s)
{
	/* Some errors (disk full, I/O) already rolled the transaction back: nothing to do. */
	if (sqlite3_get_autocommit(s->db))
		return 0;
	return run(s, ST_ROLLBACK, "rollback") < 0 ? -1 : 0;
}

/* Several statements as one step: a savepoint inside the caller's transaction, else a
 * transaction of its own. */
static int op_begin(struct store *s, bool *own)
{
	*own = sqlite3_get_autocommit(s->db) != 0;
	if (*own)
		return store_begin(s);
	return run(s, ST_SAVEPOINT, "savepoint") < 0 ? -1 : 0;
}

static int op_end(struct store *s, bool own, int rc)
{
	char keep[sizeof(s->err)];

	if (rc >= 0) {
		if (own ? store_commit(s) == 0 : run(s, ST_RELEASE, "release") >= 0)
			return rc;
	}
	memcpy(keep, s->err, sizeof(keep));
	if (own)
		store_rollback(s);
	else if (!sqlite3_get_autocommit(s->db) && run(s, ST_ROLLBACK_TO, "rollback") >= 0)
		run(s, ST_RELEASE, "release");
	memcpy(s->err, keep, sizeof(keep));
	return -1;
}

int store_cursor_get(struct store *s, const char *zone_id, const char *kind, int64_t *until_ms)
{
	sqlite3_stmt *st = s->st[ST_CURSOR_GET];

	if (bind_text(st, 1, zone_id) || bind_text(st, 2, kind))
		return fail_reset(s, st, "cursor get");
	return run_int64(s, ST_CURSOR_GET, "cursor get", until_ms);
}

int store_cursor_set(struct store *s, const char *zone_id, const char *kind, int64_t until_ms)
{
	sqlite3_stmt *st = s->st[ST_CURSOR_SET];

	if (bind_text(st, 1, zone_id) || bind_text(st, 2, kind) ||
	    sqlite3_bind_int64(st, 3, until_ms) || sqlite3_bind_int64(st, 4, util_now_ms()))
		return fail_reset(s, st, "cursor set");
	return run(s, ST_CURSOR_SET, "cursor set") < 0 ? -1 : 0;
}

int store_control_get(struct store *s, const char *key, char *value, size_t valuesz)
{
	sqlite3_stmt *st = s->st[ST_CTL_GET];
	int rc;

	if (valuesz > 0)
		value[0] = '\0';
	if (bind_text(st, 1, key))
		return fail_reset(s, st, "control get");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		const unsigned char *v = sqlite3_column_text(st, 0);
		snprintf(value, valuesz, "%s", v != NULL ? (const char *)v : "");
		sqlite3_reset(st);
		return 1;
	}
	if (rc == SQLITE_DONE) {
		sqlite3_reset(st);
		return 0;
	}
	return fail_reset(s, st, "control get");
}

int store_control_put(struct store *s, const char *key, const char *value)
{
	sqlite3_stmt *st = s->st[ST_CTL_PUT];

	if (key == NULL || value == NULL)
		return failx(s, "control put", "key and value are required");
	if (bind_text(st, 1, key) || bind_text(st, 2, value))
		return fail_reset(s, st, "control put");
	return run(s, ST_CTL_PUT, "control put") < 0 ? -1 : 0;
}

int store_ha_config_put(struct store *s, const char *target, const char *topic, const char *payload)
{
	bool del = payload != NULL && payload[0] == '\0';
	sqlite3_stmt *st = s->st[del ? ST_HA_DELETE : ST_HA_PUT];

	if (target == NULL || topic == NULL || payload == NULL)
		return failx(s, "ha config put", "target, topic and payload are required");
	if (bind_text(st, 1, target) || bind_text(st, 2, topic) ||
	    (!del && bind_text(st, 3, payload)))
		return fail_reset(s, st, "ha config put");
	return run(s, del ? ST_HA_DELETE : ST_HA_PUT, "ha config put") < 0 ? -1 : 0;
}

/* Steps st (bound by the caller) and calls cb with the two text columns of each row; st is
 * reset at the end. 0, cb's non-zero answer as is, or -1 (what names the error). */
static int each_pair(struct store *s, sqlite3_stmt *st, const char *what,
                     int (*cb)(void *arg, const char *a, const char *b), void *arg)
{
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *a = sqlite3_column_text(st, 0);
		const unsigned char *b = sqlite3_column_text(st, 1);
		int stop;

		if (a == NULL || b == NULL)
			return fail_reset(s, st, what);
		stop = cb(arg, (const char *)a, (const char *)b);
		if (stop != 0) {
			sqlite3_reset(st);
			return stop;
		}
	}
	if (rc != SQLITE_DONE)
		return fail_reset(s, st, what);
	if (sqlite3_reset(st) != SQLITE_OK)
		return fail(s, what);
	return 0;
}

int store_ha_config_each(struct store *s, const char *target,
                         int (*cb)(void *arg, const char *topic, const char *payload), void *arg)
{
	sqlite3_stmt *st = s->st[ST_HA_EACH];

	if (bind_text(st, 1, target))
		return fail_reset(s, st, "ha config each");
	return each_pair(s, st, "ha config each", cb, arg);
}

static void copy_col(char *dst, size_t dstsz, sqlite3_stmt *st, int col)
{
	const unsigned char *v = sqlite3_column_text(st, col);

	snprintf(dst, dstsz, "%s", v != NULL ? (const char *)v : "");
}

int store_seen_get(struct store *s, const char *kind, const char *source_id, struct store_seen *out)
{
	sqlite3_stmt *st = s->st[ST_SEEN_GET];
	int rc, found = 0;

	if (bind_text(st, 1, kind) || bind_text(st, 2, source_id))
		return fail_reset(s, st, "seen get");
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		memset(out, 0, sizeof(*out));
		copy_col(out->revision, sizeof(out->revision), st, COL_SEEN_REVISION);
		out->flags = (uint64_t)sqlite3_column_int64(st, COL_SEEN_FLAGS);
		copy_col(out->severity, sizeof(out->severity), st, COL_SEEN_SEVERITY);
		out->complete = sqlite3_column_int(st, COL_SEEN_COMPLETE) != 0;
		out->starts_ms = sqlite3_column_int64(st, COL_SEEN_STARTS_MS);
		out->seen_ms = sqlite3_column_int64(st, COL_SEEN_SEEN_MS);
		found = 1;
		rc = sqlite3_step(st);
	}
	if (rc != SQLITE_DONE)
		return fail_reset(s, st, "seen get");
	if (sqlite3_reset(st) != SQLITE_OK)
		return fail(s, "seen get");
	return found;
}

int store_seen_put(struct store *s, const char *kind, const char *source_id, const char *zone_id,
                   const struct store_seen *in)
{
	sqlite3_stmt *st = s->st[ST_SEEN_PUT];
	int64_t seen_ms = in->seen_ms != 0 ? in->seen_ms : util_now_ms();

	if (zone_id == NULL)
		zone_id = "";
	if (bind_text(st, 1, kind) || bind_text(st, 2, source_id) ||
	    bind_text(st, 3, in->revision) || sqlite3_bind_int64(st, 4, (int64_t)in->flags) ||
	    bind_text(st, 5, in->severity) || sqlite3_bind_int(st, 6, in->complete ? 1 : 0) ||
	    bind_text(st, 7, zone_id) || sqlite3_bind_int64(st, 8, in->starts_ms) ||
	    sqlite3_bind_int64(st, 9, seen_ms))
		return fail_reset(s, st, "seen put");
	return run(s, ST_SEEN_PUT, "seen put") < 0 ? -1 : 0;
}

int store_open_events(struct store *s, const char *zone_id,
                      int (*cb)(void *arg, const char *source_id, int64_t starts_ms), void *arg)
{
	sqlite3_stmt *st = s->st[ST_OPEN_EVENTS];
	int rc;

	if (bind_text(st, 1, zone_id))
		return fail_reset(s, st, "open events");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *id = sqlite3_column_text(st, 0);
		int stop;

		if (id == NULL)
			return fail_reset(s, st, "open events");
		stop = cb(arg, (const char *)id, sqlite3_column_int64(st, 1));
		if (stop != 0) {
			sqlite3_reset(st);
			return stop;
		}
	}
	if (rc != SQLITE_DONE)
		return fail_reset(s, st, "open events");
	if (sqlite3_reset(st) != SQLITE_OK)
		return fail(s, "open events");
	return 0;
}

int store_seen_prune(struct store *s, int64_t older_than_ms)
{
	sqlite3_stmt *st = s->st[ST_SEEN_PRUNE];

	if (sqlite3_bind_int64(st, 1, older_than_ms))
		return fail_reset(s, st, "seen prune");
	return run(s, ST_SEEN_PRUNE, "seen prune");
}

int store_rstate_put(struct store *s, const char *key, const char *value, int64_t expires_ms)
{
	sqlite3_stmt *st = s->st[ST_RS_PUT];

	if (key == NULL || value == NULL)
		return failx(s, "rule state put", "key and value are required");
	if (bind_text(st, 1, key) || bind_text(st, 2, value) ||
	    sqlite3_bind_int64(st, 3, expires_ms))
		return fail_reset(s, st, "rule state put");
	return run(s, ST_RS_PUT, "rule state put") < 0 ? -1 : 0;
}

int store_rstate_each(struct store *s, int64_t now_ms,
                      int (*cb)(void *arg, const char *key, const char *value), void *arg)
{
	sqlite3_stmt *st = s->st[ST_RS_EACH];

	if (sqlite3_bind_int64(st, 1, now_ms))
		return fail_reset(s, st, "rule state each");
	return each_pair(s, st, "rule state each", cb, arg);
}

int store_rstate_prune(struct store *s, int64_t now_ms)
{
	sqlite3_stmt *st = s->st[ST_RS_PRUNE];

	if (sqlite3_bind_int64(st, 1, now_ms))
		return fail_reset(s, st, "rule state prune");
	return run(s, ST_RS_PRUNE, "rule state prune");
}

int store_outbox_put(struct store *s, const struct store_entry *e)
{
	sqlite3_stmt *st = s->st[ST_OB_PUT];
	size_t len;

	if (e->target == NULL || e->msg_id == NULL || e->payload == NULL)
		return failx(s, "outbox put", "target, msg_id and payload are required");
	len = e->payload_len != 0 ? e->payload_len : strlen(e->payload);
	if (bind_text(st, 1, e->target) || bind_text(st, 2, e->zone_id != NULL ? e->zone_id : "") ||
	    bind_text(st, 3, e->msg_id) || bind_text(st, 4, e->topic_or_url) ||
	    sqlite3_bind_text64(st, 5, e->payload, len, SQLITE_STATIC, SQLITE_UTF8) ||
	    bind_text(st, 6, e->headers) || bind_text(st, 7, e->extra) ||
	    sqlite3_bind_int64(st, 8, e->created_ms != 0 ? e->created_ms : util_now_ms()) ||
	    sqlite3_bind_int64(st, 9, e->next_attempt_ms))
		return fail_reset(s, st, "outbox put");
	return run(s, ST_OB_PUT, "outbox put") < 0 ? -1 : 0;
}

/* Copies a text column; NULL stays NULL. 0, or -1 out of memory. */
static int dup_col(sqlite3_stmt *st, int col, char **dst, size_t *len)
{
	const unsigned char *v = sqlite3_column_text(st, col);
	size_t n;

	*dst = NULL;
	if (v == NULL)
		return sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM ? -1 : 0;
	n = (size_t)sqlite3_column_bytes(st, col);
	*dst = malloc(n + 1);
	if (*dst == NULL)
		return -1;
	memcpy(*dst, v, n);
	(*dst)[n] = '\0';
	if (len != NULL)
		*len = n;
	return 0;
}

void store_entry_release(struct store_entry *e)
{
	free(e->target);
	free(e->zone_id);
	free(e->msg_id);
	free(e->topic_or_url);
	free(e->payload);
	free(e->headers);
	free(e->extra);
	free(e->last_error);
	memset(e, 0, sizeof(*e));
}

/* Fills e from a row of ENTRY_COLS_O; copy: owned strings, else borrowed until the next step. */
static int row_to_entry(sqlite3_stmt *st, struct store_entry *e, bool copy)
{
	/* in column order, COL_TARGET to COL_EXTRA */
	char **strs[] = {&e->target,  &e->zone_id, &e->msg_id, &e->topic_or_url,
	                 &e->payload, &e->headers, &e->extra};

	memset(e, 0, sizeof(*e));
	e->id = sqlite3_column_int64(st, COL_ID);
	for (int col = COL_TARGET; col <= COL_EXTRA; col++) {
		char **dst = strs[col - COL_TARGET];
		size_t *len = col == COL_PAYLOAD ? &e->payload_len : NULL;
		if (copy) {
			if (dup_col(st, col, dst, len) < 0)
				goto out_nomem;
		} else {
			*dst = (char *)sqlite3_column_text(st, col);
			if (len != NULL)
				*len = (size_t)sqlite3_column_bytes(st, col);
		}
	}
	e->created_ms = sqlite3_column_int64(st, COL_CREATED_MS);
	e->next_attempt_ms = sqlite3_column_int64(st, COL_NEXT_ATTEMPT_MS);
	e->first_failed_ms = sqlite3_column_int64(st, COL_FIRST_FAILED_MS);
	e->attempts = sqlite3_column_int(st, COL_ATTEMPTS);
	if (copy) {
		if (dup_col(st, COL_LAST_ERROR, &e->last_error, NULL) < 0)
			goto out_nomem;
	} else {
		e->last_error = (char *)sqlite3_column_text(st, COL_LAST_ERROR);
	}
	return 0;

out_nomem:
	store_entry_release(e);
	return -1;
}

void store_entries_free(struct store_entry *v, size_t n)
{
	if (v == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		store_entry_release(&v[i]);
	free(v);
}

/* Reads up to max rows of a bound entry statement into a new array. 0 or -1. */
static int read_entries(struct store *s, sqlite3_stmt *st, size_t max, struct store_entry **out,
                        size_t *n, const char *what)
{
	struct store_entry *v = NULL;
	size_t len = 0, cap = 0;
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (len == cap) {
			size_t ncap = cap == 0 ? (max < 64 ? max : 64) : cap * 2;
			struct store_entry *nv;

			if (ncap > max)
				ncap = max;
			nv = realloc(v, ncap * sizeof(*v));
			if (nv == NULL)
				goto out_nomem;
			v = nv;
			cap = ncap;
		}
		if (row_to_entry(st, &v[len], true) < 0)
			goto out_nomem;
		len++;
	}
	if (rc != SQLITE_DONE) {
		fail_reset(s, st, what);
		goto out_free;
	}
	if (sqlite3_reset(st) != SQLITE_OK) {
		fail(s, what);
		goto out_free;
	}
	*out = v;
	*n = len;
	return 0;

out_nomem:
	failx(s, what, "out of memory");
	sqlite3_reset(st);
out_free:
	store_entries_free(v, len);
	return -1;
}

int store_outbox_fetch_after(struct store *s, const char *target, int64_t now_ms, int64_t after_id,
                             size_t max, struct store_entry **out, size_t *n)
{
	sqlite3_stmt *st = s->st[ST_OB_FETCH];
	sqlite3_stmt *low = s->st[ST_OB_LOW];
	sqlite3_stmt *deferred = s->st[ST_OB_DEFERRED];
	int64_t start = 0, one = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if (max == 0)
		return 0;
	if (max > INT32_MAX)
		max = INT32_MAX;
	/* Start the walk at the oldest due zone head: entries of zones whose head is deferred
	 * may fill the outbox below it, and walking them is what would cost. Finding the heads
	 * is an index seek a zone, so it is done only when some entry of the target is deferred
	 * (one seek): with none, every head is due, the oldest is the target's first entry and
	 * the walk from after_id finds the same entries. The reads may see different commits;
	 * that is safe, as others only add entries, with higher ids. */
	if (bind_text(deferred, 1, target) || sqlite3_bind_int64(deferred, 2, now_ms))
		return fail_reset(s, deferred, "outbox fetch");
	rc = run_int64(s, ST_OB_DEFERRED, "outbox fetch", &one);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		if (bind_text(low, 1, target) || sqlite3_bind_int64(low, 2, now_ms))
			return fail_reset(s, low, "outbox fetch");
		rc = run_int64(s, ST_OB_LOW, "outbox fetch", &start);
		if (rc <= 0)
			return rc; /* error, or no zone's head is due: nothing can go */
		if (start - 1 > after_id)
			after_id = start - 1;
	}
	if (bind_text(st, 1, target) || sqlite3_bind_int64(st, 2, now_ms) ||
	    sqlite3_bind_int64(st, 3, after_id) || sqlite3_bind_int64(st, 4, (int64_t)max))
		return fail_reset(s, st, "outbox fetch");
	return read_entries(s, st, max, out, n, "outbox fetch");
}

/* ids as the JSON array SKIP_IDS reads, in parameter i (NULL when there are none). */
static int bind_ids(sqlite3_stmt *st, int i, const int64_t *ids, size_t n)
{
	char small[512], *b = small;
	size_t cap = n * 21 + 2, len = 0;
	int rc;

	if (n == 0)
		return sqlite3_bind_null(st, i);
	if (cap > sizeof(small) && (b = malloc(cap)) == NULL)
		return SQLITE_NOMEM;
	for (size_t k = 0; k < n; k++)
		len += (size_t)snprintf(b + len, cap - len, "%c%" PRId64, k ? ',' : '[', ids[k]);
	b[len++] = ']';
	rc = sqlite3_bind_text(st, i, b, (int)len, SQLITE_TRANSIENT);
	if (b != small)
		free(b);
	return rc;
}

/* store_outbox_heads and store_outbox_due: statement sti. */
static int read_sendable(struct store *s, int sti, const char *what, const char *target,
                         int64_t now_ms, const int64_t *skip, size_t nskip, size_t max,
                         struct store_entry **out, size_t *n)
{
	sqlite3_stmt *st = s->st[sti];

	*out = NULL;
	*n = 0;
	if (max == 0)
		return 0;
	if (max > INT32_MAX)
		max = INT32_MAX;
	if (bind_text(st, 1, target) || sqlite3_bind_int64(st, 2, now_ms) ||
	    sqlite3_bind_int64(st, 3, (int64_t)max) || bind_ids(st, 4, skip, nskip))
		return fail_reset(s, st, what);
	return read_entries(s, st, max, out, n, what);
}

int store_outbox_heads(struct store *s, const char *target, int64_t now_ms, const int64_t *skip,
                       size_t nskip, size_t max, struct store_entry **out, size_t *n)
{
	return read_sendable(s, ST_OB_HEADS, "outbox heads", target, now_ms, skip, nskip, max, out,
	                     n);
}

int store_outbox_due(struct store *s, const char *target, int64_t now_ms, const int64_t *skip,
                     size_t nskip, size_t max, struct store_entry **out, size_t *n)
{
	return read_sendable(s, ST_OB_DUE_ANY, "outbox due", target, now_ms, skip, nskip, max, out,
	                     n);
}

int store_outbox_fetch(struct store *s, const char *target, int64_t now_ms, size_t max,
                       struct store_entry **out, size_t *n)
{
	return store_outbox_fetch_after(s, target, now_ms, 0, max, out, n);
}

int store_outbox_ack(struct store *s, int64_t id)
{
	sqlite3_stmt *st = s->st[ST_OB_ACK];
	int rc;

	if (sqlite3_bind_int64(st, 1, id))
		return fail_reset(s, st, "outbox ack");
	rc = run(s, ST_OB_ACK, "outbox ack");
	return rc < 0 ? -1 : rc == 0 ? 1 : 0;
}

int store_outbox_defer(struct store *s, int64_t id, int64_t next_attempt_ms, const char *error)
{
	sqlite3_stmt *st = s->st[ST_OB_DEFER];
	int rc;

	if (sqlite3_bind_int64(st, 1, id) || sqlite3_bind_int64(st, 2, next_attempt_ms) ||
	    bind_reason(st, 3, error) || sqlite3_bind_int64(st, 4, util_now_ms()))
		return fail_reset(s, st, "outbox defer");
	rc = run(s, ST_OB_DEFER, "outbox defer");
	return rc < 0 ? -1 : rc == 0 ? 1 : 0;
}

int store_outbox_to_dlq(struct store *s, int64_t id, int status, const char *reason)
{
	sqlite3_stmt *ins = s->st[ST_OB_TO_DLQ];
	sqlite3_stmt *del = s->st[ST_OB_ACK];
	bool own;
	int rc;

	if (op_begin(s, &own) < 0)
		return -1;
	if (sqlite3_bind_int64(ins, 1, id) || sqlite3_bind_int(ins, 2, status) ||
	    bind_reason(ins, 3, reason) || sqlite3_bind_int64(ins, 4, util_now_ms())) {
		rc = fail_reset(s, ins, "outbox to dlq");
		goto out;
	}
	rc = run(s, ST_OB_TO_DLQ, "outbox to dlq");
	if (rc <= 0) {
		rc = rc < 0 ? -1 : 1;
		goto out;
	}
	if (sqlite3_bind_int64(del, 1, id)) {
		rc = fail_reset(s, del, "outbox to dlq");
		goto out;
	}
	rc = run(s, ST_OB_ACK, "outbox to dlq") < 0 ? -1 : 0;
out:
	return op_end(s, own, rc);
}

int64_t store_outbox_count(struct store *s)
{
	int64_t v = 0;

	if (run_int64(s, ST_OB_COUNT, "outbox count", &v) < 0)
		return -1;
	return v;
}

int store_outbox_count_each(struct store *s, int (*cb)(void *arg, const char *target, int64_t n),
                            void *arg)
{
	sqlite3_stmt *st = s->st[ST_OB_COUNT_EACH];
	int rc;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const unsigned char *target = sqlite3_column_text(st, 0);
		int stop;

		if (target == NULL)
			return fail_reset(s, st, "outbox count each");
		stop = cb(arg, (const char *)target, sqlite3_column_int64(st, 1));
		if (stop != 0) {
			sqlite3_reset(st);
			return stop;
		}
	}
	if (rc != SQLITE_DONE)
		return fail_reset(s, st, "outbox count each");
	if (sqlite3_reset(st) != SQLITE_OK)
		return fail(s, "outbox count each");
	return 0;
}

int64_t store_outbox_next_due(struct store *s, const char *target)
{
	sqlite3_stmt *st = s->st[ST_OB_NEXT_DUE];
	int64_t v = 0;
	int rc;

	if (bind_text(st, 1, target)) {
		fail_reset(s, st, "outbox next due");
		return -2;
	}
	rc = run_int64(s, ST_OB_NEXT_DUE, "outbox next due", &v);
	if (rc < 0)
		return -2;
	return rc == 0 ? -1 : v;
}

int64_t store_outbox_next_due_any(struct store *s, const char *target)
{
	sqlite3_stmt *st = s->st[ST_OB_NEXT_DUE_ANY];
	int64_t v = 0;
	int rc;

	if (bind_text(st, 1, target)) {
		fail_reset(s, st, "outbox next due");
		return -2;
	}
	rc = run_int64(s, ST_OB_NEXT_DUE_ANY, "outbox next due", &v);
	if (rc < 0)
		return -2;
	return rc == 0 ? -1 : v;
}

int store_dlq_list(struct store *s, const char *target, int64_t since_ms,
                   int (*cb)(void *arg, const struct store_entry *e, int status, const char *reason,
                             int64_t failed_ms),
                   void *arg)
{
	sqlite3_stmt *st = s->st[ST_DLQ_LIST];
	int rc;

	if (bind_text(st, 1, target) || sqlite3_bind_int64(st, 2, since_ms))
		return fail_reset(s, st, "dlq list");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct store_entry e;
		const unsigned char *reason = sqlite3_column_text(st, COL_DLQ_REASON);
		int stop;

		row_to_entry(st, &e, false);
		if (e.target == NULL || e.msg_id == NULL || e.payload == NULL)
			return fail_reset(s, st, "dlq list");
		stop = cb(arg, &e, sqlite3_column_int(st, COL_DLQ_STATUS),
		          reason ? (const char *)reason : "",
		          sqlite3_column_int64(st, COL_DLQ_FAILED_MS));
		if (stop != 0) {
			sqlite3_reset(st);
			return stop;
		}
	}
	if (rc != SQLITE_DONE)
		return fail_reset(s, st, "dlq list");
	if (sqlite3_reset(st) != SQLITE_OK)
		return fail(s, "dlq list");
	return 0;
}

int store_dlq_replay(struct store *s, const char *target, int64_t since_ms, int *count)
{
	sqlite3_stmt *ins = s->st[ST_DLQ_REPLAY];
	sqlite3_stmt *del = s->st[ST_DLQ_DELETE];
	bool own;
	int rc, moved = 0;

	if (count != NULL)
		*count = 0;
	if (op_begin(s, &own) < 0)
		return -1;
	if (bind_text(ins, 1, target) || sqlite3_bind_int64(ins, 2, since_ms)) {
		rc = fail_reset(s, ins, "dlq replay");
		goto out;
	}
	rc = run(s, ST_DLQ_REPLAY, "dlq replay");
	if (rc < 0)
		goto out;
	moved = rc;
	if (bind_text(del, 1, target) || sqlite3_bind_int64(del, 2, since_ms)) {
		rc = fail_reset(s, del, "dlq replay");
		goto out;
	}
	rc = run(s, ST_DLQ_DELETE, "dlq replay");
	if (rc >= 0 && rc != moved)
		rc = failx(s, "dlq replay", "dead letters changed during replay");
out:
	rc = op_end(s, own, rc < 0 ? -1 : 0);
	if (rc == 0 && count != NULL)
		*count = moved;
	return rc;
}
