/* Unit tests for bridge/store: schema and migrations, bad files, every verb (rule state
 * included), outbox order per target and zone, dead letters, transactions, write failures,
 * and kill -9 safety with tests/tools/store_crash (found in $BUILD/tools, BUILD defaulting
 * to "build"). */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "bridge/store.h"
#include "lib/util.h"

struct fixture {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	const char *suffix[] = {"", "-wal", "-shm", "-journal"};
	char p[160];

	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static struct store *open_ok(const char *path)
{
	char err[512] = "";
	struct store *s = store_open(path, err, sizeof(err));

	if (s == NULL)
		fail_msg("store_open: %s", err);
	return s;
}

/* Runs one SQL statement on a separate raw connection and returns its first integer. */
static int64_t raw_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t v = -1;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *msg = NULL;

	assert_int_equal(
	    sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL),
	    SQLITE_OK);
	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		char copy[256];

		snprintf(copy, sizeof(copy), "%s", msg ? msg : "?");
		sqlite3_free(msg);
		sqlite3_close(db);
		fail_msg("raw exec: %s", copy);
	}
	sqlite3_close(db);
}

static void put(struct store *s, const char *target, const char *zone, const char *msg_id)
{
	struct store_entry e = {.target = (char *)target,
	                        .zone_id = (char *)zone,
	                        .msg_id = (char *)msg_id,
	                        .payload = "{}"};

	assert_int_equal(store_outbox_put(s, &e), 0);
}

/* Fetches for target at now and returns the msg_ids joined by spaces. */
static void fetch_ids(struct store *s, const char *target, int64_t now, char *out, size_t outsz)
{
	struct store_entry *v = NULL;
	size_t n = 0, len = 0;

	assert_int_equal(store_outbox_fetch(s, target, now, 100, &v, &n), 0);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, outsz - len, "%s%s", i ? " " : "", v[i].msg_id);
	store_entries_free(v, n);
}

static int64_t id_of(struct store *s, const char *target, const char *msg_id)
{
	struct store_entry *v = NULL;
	size_t n = 0;
	int64_t id = -1;

	assert_int_equal(store_outbox_fetch(s, target, INT64_MAX, 1000, &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].msg_id, msg_id) == 0)
			id = v[i].id;
	store_entries_free(v, n);
	assert_true(id > 0);
	return id;
}

static void test_open_creates_schema_and_mode_0600(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct stat sb;
	char wal[160];

	assert_int_equal(store_cursor_set(s, "z", "events", 1), 0);
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_equal(stat(wal, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(
	    raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'outbox'"), 1);
	store_close(s);
	/* WAL stays set in the file header after close */
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM pragma_journal_mode "
	                                  "WHERE journal_mode = 'wal'"),
	                 1);
}

static void test_path_is_state_db_in_state_dir(void **state)
{
	(void)state;
	char *p = store_path("/var/lib/tether-bridge");
	assert_string_equal(p, "/var/lib/tether-bridge/state.db");
	free(p);
}

static void test_reopen_keeps_data(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	int64_t v = 0;

	assert_int_equal(store_cursor_set(s, "z1", "events", 1234), 0);
	put(s, "mqtt.home", "z1", "a");
	store_close(s);
	s = open_ok(f->path);
	assert_int_equal(store_cursor_get(s, "z1", "events", &v), 1);
	assert_int_equal(v, 1234);
	assert_int_equal(store_outbox_count(s), 1);
	store_close(s);
}

static void test_cursor_get_set(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	int64_t v = 7;

	assert_int_equal(store_cursor_get(s, "z1", "events", &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(store_cursor_set(s, "z1", "events", 100), 0);
	assert_int_equal(store_cursor_set(s, "z1", "lpr", 200), 0);
	assert_int_equal(store_cursor_set(s, "z1", "events", 300), 0);
	assert_int_equal(store_cursor_get(s, "z1", "events", &v), 1);
	assert_int_equal(v, 300);
	assert_int_equal(store_cursor_get(s, "z1", "lpr", &v), 1);
	assert_int_equal(v, 200);
	assert_int_equal(store_cursor_get(s, "z2", "events", &v), 0);
	store_close(s);
}

static void test_seen_put_get(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct store_seen in = {.revision = "2020-07-09T08:05:09.036+01:00",
	                        .flags = 0x8000000000000005ULL,
	                        .severity = "high",
	                        .complete = false,
	                        .starts_ms = 1000,
	                        .seen_ms = 5000};
	struct store_seen out;

	assert_int_equal(store_seen_get(s, "event", "e1", &out), 0);
	assert_int_equal(store_seen_put(s, "event", "e1", "z1", &in), 0);
	assert_int_equal(store_seen_get(s, "event", "e1", &out), 1);
	assert_string_equal(out.revision, in.revision);
	assert_true(out.flags == in.flags);
	assert_string_equal(out.severity, "high");
	assert_false(out.complete);
	assert_int_equal(out.starts_ms, 1000);
	assert_int_equal(out.seen_ms, 5000);
	/* same source id, other kind: a separate record */
	assert_int_equal(store_seen_get(s, "plate", "e1", &out), 0);
	/* a new revision replaces the record */
	snprintf(in.revision, sizeof(in.revision), "rev2");
	in.complete = true;
	in.seen_ms = 0;
	assert_int_equal(store_seen_put(s, "event", "e1", "z1", &in), 0);
	assert_int_equal(store_seen_get(s, "event", "e1", &out), 1);
	assert_string_equal(out.revision, "rev2");
	assert_true(out.complete);
	assert_true(out.seen_ms > 5000); /* 0 means now */
	store_close(s);
}

struct open_list {
	char text[256];
	size_t len;
};

static int collect_open(void *arg, const char *source_id, int64_t starts_ms)
{
	struct open_list *l = arg;

	l->len += (size_t)snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s%s@%" PRId64,
	                           l->len ? " " : "", source_id, starts_ms);
	return 0;
}

static void test_open_events_lists_incomplete_per_zone(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct store_seen r = {.revision = "r", .severity = "normal"};
	struct open_list l = {0};

	r.starts_ms = 300;
	assert_int_equal(store_seen_put(s, "event", "late", "z1", &r), 0);
	r.starts_ms = 100;
	assert_int_equal(store_seen_put(s, "event", "early", "z1", &r), 0);
	r.starts_ms = 200;
	assert_int_equal(store_seen_put(s, "event", "other-zone", "z2", &r), 0);
	r.complete = true;
	assert_int_equal(store_seen_put(s, "event", "done", "z1", &r), 0);
	r.complete = false;
	assert_int_equal(store_seen_put(s, "plate", "a-plate", "z1", &r), 0);
	assert_int_equal(store_open_events(s, "z1", collect_open, &l), 0);
	assert_string_equal(l.text, "early@100 late@300");
	store_close(s);
}

static int stop_at_first(void *arg, const char *source_id, int64_t starts_ms)
{
	(void)source_id;
	(void)starts_ms;
	(*(int *)arg)++;
	return 42;
}

static void test_open_events_callback_stops_walk(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct store_seen r = {.revision = "r", .severity = "normal"};
	int calls = 0;

	assert_int_equal(store_seen_put(s, "event", "a", "z1", &r), 0);
	assert_int_equal(store_seen_put(s, "event", "b", "z1", &r), 0);
	assert_int_equal(store_open_events(s, "z1", stop_at_first, &calls), 42);
	assert_int_equal(calls, 1);
	/* the statement was reset: a write works */
	assert_int_equal(store_cursor_set(s, "z1", "events", 1), 0);
	store_close(s);
}

static void test_seen_prune_keeps_open_events(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct store_seen r = {.revision = "r", .severity = "normal", .seen_ms = 1000};
	struct store_seen out;

	r.complete = true;
	assert_int_equal(store_seen_put(s, "event", "old-done", "z1", &r), 0);
	r.complete = false;
	assert_int_equal(store_seen_put(s, "event", "old-open", "z1", &r), 0);
	r.complete = true;
	r.seen_ms = 9000;
	assert_int_equal(store_seen_put(s, "event", "new-done", "z1", &r), 0);
	assert_int_equal(store_seen_prune(s, 5000), 1);
	assert_int_equal(store_seen_get(s, "event", "old-done", &out), 0);
	assert_int_equal(store_seen_get(s, "event", "old-open", &out), 1);
	assert_int_equal(store_seen_get(s, "event", "new-done", &out), 1);
	store_close(s);
}

/* Collects "key=value" lines from store_rstate_each; stops after max entries. */
struct rs_walk {
	char out[512];
	int n, max;
};

static int rs_collect(void *arg, const char *key, const char *value)
{
	struct rs_walk *w = arg;
	size_t len = strlen(w->out);

	snprintf(w->out + len, sizeof(w->out) - len, "%s=%s\n", key, value);
	return ++w->n == w->max ? 7 : 0;
}

static void test_rstate_put_replaces_and_each_skips_expired(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct rs_walk w = {.max = 0};

	assert_int_equal(store_rstate_put(s, "C:r1|z1", "{\"last_ms\":1}", 100), 0);
	assert_int_equal(store_rstate_put(s, "C:r1|z1", "{\"last_ms\":2}", 500), 0);
	assert_int_equal(store_rstate_put(s, "V:r2|AB12|z1", "{}", 300), 0);
	assert_int_equal(store_rstate_put(s, "C:old|z1", "{}", 200), 0);
	assert_int_equal(store_rstate_each(s, 200, rs_collect, &w), 0);
	assert_string_equal(w.out, "C:r1|z1={\"last_ms\":2}\nV:r2|AB12|z1={}\n");
	assert_int_equal(store_rstate_put(s, NULL, "{}", 1), -1);
	assert_non_null(strstr(store_errmsg(s), "rule state put"));
	store_close(s);
}

static void test_rstate_each_callback_stops_walk(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct rs_walk w = {.max = 1};

	assert_int_equal(store_rstate_put(s, "a", "1", 100), 0);
	assert_int_equal(store_rstate_put(s, "b", "2", 100), 0);
	assert_int_equal(store_rstate_each(s, 0, rs_collect, &w), 7);
	assert_string_equal(w.out, "a=1\n");
	/* the statement was reset: a new walk starts from the beginning */
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_rstate_each(s, 0, rs_collect, &w), 0);
	assert_string_equal(w.out, "a=1\nb=2\n");
	store_close(s);
}

static void test_rstate_prune_deletes_expired_only(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct rs_walk w = {.max = 0};

	assert_int_equal(store_rstate_put(s, "a", "1", 100), 0);
	assert_int_equal(store_rstate_put(s, "b", "2", 200), 0);
	assert_int_equal(store_rstate_put(s, "c", "3", 300), 0);
	assert_int_equal(store_rstate_prune(s, 200), 2);
	assert_int_equal(store_rstate_prune(s, 200), 0);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM rule_state"), 1);
	assert_int_equal(store_rstate_each(s, 0, rs_collect, &w), 0);
	assert_string_equal(w.out, "c=3\n");
	store_close(s);
}

static void test_rstate_survives_reopen_and_rollback_undoes_put(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct rs_walk w = {.max = 0};

	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_rstate_put(s, "kept", "1", 100), 0);
	assert_int_equal(store_commit(s), 0);
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_rstate_put(s, "undone", "2", 100), 0);
	assert_int_equal(store_rollback(s), 0);
	store_close(s);
	s = open_ok(f->path);
	assert_int_equal(store_rstate_each(s, 0, rs_collect, &w), 0);
	assert_string_equal(w.out, "kept=1\n");
	store_close(s);
}

static void test_ha_config_put_replaces_deletes_and_each_is_per_target(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct rs_walk w = {.max = 0};

	assert_int_equal(store_ha_config_put(s, "mqtt.home", "ha/b/config", "{\"v\":1}"), 0);
	assert_int_equal(store_ha_config_put(s, "mqtt.home", "ha/b/config", "{\"v\":2}"), 0);
	assert_int_equal(store_ha_config_put(s, "mqtt.home", "ha/a/config", "{}"), 0);
	assert_int_equal(store_ha_config_put(s, "mqtt.home", "ha/c/config", "{}"), 0);
	assert_int_equal(store_ha_config_put(s, "mqtt.other", "ha/a/config", "{}"), 0);
	/* an empty payload is the deletion of the retained config: the row goes */
	assert_int_equal(store_ha_config_put(s, "mqtt.home", "ha/c/config", ""), 0);
	assert_int_equal(store_ha_config_put(s, "mqtt.home", "ha/none/config", ""), 0);
	assert_int_equal(store_ha_config_each(s, "mqtt.home", rs_collect, &w), 0);
	assert_string_equal(w.out, "ha/a/config={}\nha/b/config={\"v\":2}\n");
	memset(&w, 0, sizeof(w));
	w.max = 1;
	assert_int_equal(store_ha_config_each(s, "mqtt.home", rs_collect, &w), 7);
	assert_string_equal(w.out, "ha/a/config={}\n");
	assert_int_equal(store_ha_config_put(s, "mqtt.home", NULL, "{}"), -1);
	assert_non_null(strstr(store_errmsg(s), "ha config put"));
	store_close(s);
	/* it survives a reopen */
	s = open_ok(f->path);
	memset(&w, 0, sizeof(w));
	assert_int_equal(store_ha_config_each(s, "mqtt.other", rs_collect, &w), 0);
	assert_string_equal(w.out, "ha/a/config={}\n");
	store_close(s);
}

static void test_outbox_roundtrips_every_field(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct store_entry in = {.target = "webhook.slack",
	                         .zone_id = "z1",
	                         .msg_id = "event:1:r",
	                         .topic_or_url = "http://127.0.0.1:1/hook",
	                         .payload = "{\"a\":1}xxx",
	                         .payload_len = 7,
	                         .headers = "{\"X-A\":\"b\"}",
	                         .extra = "{\"qos\":1,\"retain\":false}",
	                         .created_ms = 42};
	struct store_entry noopt = {.target = "mqtt.home", .msg_id = "m", .payload = "p"};
	struct store_entry *v = NULL;
	size_t n = 0;

	assert_int_equal(store_outbox_put(s, &in), 0);
	assert_int_equal(store_outbox_put(s, &noopt), 0);
	assert_int_equal(store_outbox_fetch(s, "webhook.slack", 1000, 10, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_true(v[0].id > 0);
	assert_string_equal(v[0].target, "webhook.slack");
	assert_string_equal(v[0].zone_id, "z1");
	assert_string_equal(v[0].msg_id, "event:1:r");
	assert_string_equal(v[0].topic_or_url, "http://127.0.0.1:1/hook");
	assert_string_equal(v[0].payload, "{\"a\":1}");
	assert_int_equal(v[0].payload_len, 7);
	assert_string_equal(v[0].headers, "{\"X-A\":\"b\"}");
	assert_string_equal(v[0].extra, "{\"qos\":1,\"retain\":false}");
	assert_int_equal(v[0].created_ms, 42);
	assert_int_equal(v[0].attempts, 0);
	assert_int_equal(v[0].first_failed_ms, 0);
	assert_null(v[0].last_error);
	store_entries_free(v, n);
	assert_int_equal(store_outbox_fetch(s, "mqtt.home", 1000, 10, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].zone_id, "");
	assert_null(v[0].topic_or_url);
	assert_null(v[0].headers);
	assert_null(v[0].extra);
	assert_true(v[0].created_ms > 0);
	store_entries_free(v, n);
	/* missing required fields: an error, nothing stored */
	noopt.payload = NULL;
	assert_int_equal(store_outbox_put(s, &noopt), -1);
	assert_non_null(strstr(store_errmsg(s), "outbox put"));
	assert_int_equal(store_outbox_count(s), 2);
	store_close(s);
}

static void test_outbox_fetch_in_order_per_target(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	char ids[256];
	struct store_entry *v = NULL;
	size_t n = 0;

	put(s, "mqtt.home", "z1", "a1");
	put(s, "webhook.x", "z1", "w1");
	put(s, "mqtt.home", "z2", "b1");
	put(s, "mqtt.home", "z1", "a2");
	put(s, "mqtt.home", "z2", "b2");
	fetch_ids(s, "mqtt.home", 1000, ids, sizeof(ids));
	assert_string_equal(ids, "a1 b1 a2 b2");
	fetch_ids(s, "webhook.x", 1000, ids, sizeof(ids));
	assert_string_equal(ids, "w1");
	assert_int_equal(store_outbox_fetch(s, "mqtt.home", 1000, 3, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_true(v[0].id < v[1].id && v[1].id < v[2].id);
	store_entries_free(v, n);
	fetch_ids(s, "nobody", 1000, ids, sizeof(ids));
	assert_string_equal(ids, "");
	store_close(s);
}

static void test_outbox_deferred_head_blocks_only_its_zone(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	char ids[256];

	put(s, "mqtt.home", "A", "a1");
	put(s, "mqtt.home", "B", "b1");
	put(s, "mqtt.home", "A", "a2");
	put(s, "mqtt.home", "B", "b2");
	put(s, "mqtt.home", "A", "a3");
	assert_int_equal(store_outbox_defer(s, id_of(s, "mqtt.home", "a1"), 5000, "timeout"), 0);
	fetch_ids(s, "mqtt.home", 1000, ids, sizeof(ids));
	assert_string_equal(ids, "b1 b2");
	/* another target's zone A is not held back by it */
	put(s, "webhook.x", "A", "wa1");
	fetch_ids(s, "webhook.x", 1000, ids, sizeof(ids));
	assert_string_equal(ids, "wa1");
	/* once due again, A comes back in order */
	fetch_ids(s, "mqtt.home", 5000, ids, sizeof(ids));
	assert_string_equal(ids, "a1 b1 a2 b2 a3");
	store_close(s);
}

static void test_outbox_heads_are_each_zones_oldest_due_entry(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct store_entry *v = NULL;
	size_t n = 0;

	put(s, "webhook.x", "A", "a1");
	put(s, "webhook.x", "A", "a2");
	put(s, "webhook.x", "B", "b1");
	put(s, "webhook.x", "C", "c1");
	put(s, "webhook.x", "B", "b2");
	put(s, "mqtt.home", "A", "other");
	assert_int_equal(store_outbox_defer(s, id_of(s, "webhook.x", "c1"), 5000, "500"), 0);
	assert_int_equal(store_outbox_heads(s, "webhook.x", 1000, NULL, 0, 10, &v, &n), 0);
	assert_int_equal(n, 2); /* C's head waits until 5000 */
	assert_string_equal(v[0].msg_id, "a1");
	assert_string_equal(v[1].msg_id, "b1");
	assert_string_equal(v[1].payload, "{}");
	store_entries_free(v, n);
	/* at most max, oldest heads first */
	assert_int_equal(store_outbox_heads(s, "webhook.x", 9000, NULL, 0, 2, &v, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[0].msg_id, "a1");
	assert_string_equal(v[1].msg_id, "b1");
	store_entries_free(v, n);
	/* acknowledging a head makes the next entry of its zone the head */
	assert_int_equal(store_outbox_ack(s, id_of(s, "webhook.x", "a1")), 0);
	assert_int_equal(store_outbox_heads(s, "webhook.x", 9000, NULL, 0, 10, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].msg_id, "a2");
	assert_string_equal(v[1].msg_id, "b1");
	assert_string_equal(v[2].msg_id, "c1");
	store_entries_free(v, n);
	store_close(s);
}

/* The msg_ids (space-separated) store_outbox_heads (heads) or store_outbox_due gives for
 * webhook.x at 1000 with skip, at most 10. */
static const char *sendable(struct store *s, bool heads, const int64_t *skip, size_t nskip)
{
	static char out[256];
	struct store_entry *v = NULL;
	size_t n = 0, len = 0;

	if (heads)
		assert_int_equal(store_outbox_heads(s, "webhook.x", 1000, skip, nskip, 10, &v, &n),
		                 0);
	else
		assert_int_equal(store_outbox_due(s, "webhook.x", 1000, skip, nskip, 10, &v, &n),
		                 0);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s", i ? " " : "",
		                        v[i].msg_id);
	store_entries_free(v, n);
	return out;
}

/* Entries delivered whose deletes wait for a commit are read past as if deleted: a zone's
 * next entry is its head, and an order-less read steps over them; with many of them too
 * (their list is longer than the store's stack buffer). */
static void test_outbox_reads_skip_delivered_entries(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	int64_t skip[40];
	char msg[16];

	put(s, "webhook.x", "A", "a1");
	put(s, "webhook.x", "A", "a2");
	put(s, "webhook.x", "B", "b1");
	skip[0] = id_of(s, "webhook.x", "a1");
	assert_string_equal(sendable(s, true, skip, 1), "a2 b1");
	assert_string_equal(sendable(s, false, skip, 1), "a2 b1");
	/* a zone whose entries are all skipped has no head */
	skip[1] = id_of(s, "webhook.x", "a2");
	assert_string_equal(sendable(s, true, skip, 2), "b1");
	/* nothing skipped: the outbox as it is */
	assert_string_equal(sendable(s, false, NULL, 0), "a1 a2 b1");
	/* 40 skipped, an id of 19 digits among them */
	for (int i = 0; i < 37; i++) {
		snprintf(msg, sizeof(msg), "c%d", i);
		put(s, "webhook.x", "C", msg);
		skip[i + 2] = id_of(s, "webhook.x", msg);
	}
	skip[39] = INT64_C(9000000000000000000);
	put(s, "webhook.x", "C", "last");
	assert_string_equal(sendable(s, true, skip, 40), "b1 last");
	assert_string_equal(sendable(s, false, skip, 40), "b1 last");
	store_close(s);
}

/* store_try_begin takes the write lock when it is free and, when another connection holds
 * it, answers at once without waiting or failing; store_begin still waits for it. */
static void test_try_begin_does_not_wait_for_another_writer(void **state)
{
	struct fixture *f = *state;
	struct store *a = open_ok(f->path), *b = open_ok(f->path);

	assert_int_equal(store_try_begin(b), 0);
	assert_int_equal(store_commit(b), 0);
	assert_int_equal(store_begin(a), 0);
	int64_t t0 = util_mono_ms();
	assert_int_equal(store_try_begin(b), 1);
	assert_true(util_mono_ms() - t0 < 1000); /* not the 5 s busy timeout */
	put(a, "webhook.x", "A", "a1");
	assert_int_equal(store_commit(a), 0);
	assert_int_equal(store_try_begin(b), 0);
	assert_int_equal(store_outbox_ack(b, id_of(b, "webhook.x", "a1")), 0);
	assert_int_equal(store_commit(b), 0);
	assert_int_equal(store_outbox_count(a), 0);
	store_close(a);
	store_close(b);
}

static void test_outbox_deferred_middle_entry_holds_back_later_ones(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	char ids[256];

	put(s, "webhook.x", "A", "a1");
	put(s, "webhook.x", "A", "a2");
	put(s, "webhook.x", "A", "a3");
	put(s, "webhook.x", "B", "b1");
	assert_int_equal(store_outbox_defer(s, id_of(s, "webhook.x", "a2"), 5000, "HTTP 503"), 0);
	fetch_ids(s, "webhook.x", 1000, ids, sizeof(ids));
	assert_string_equal(ids, "a1 b1");
	assert_int_equal(store_outbox_ack(s, id_of(s, "webhook.x", "a1")), 0);
	assert_int_equal(store_outbox_ack(s, id_of(s, "webhook.x", "b1")), 0);
	/* only held-back entries left: nothing to fetch until a2 is due */
	fetch_ids(s, "webhook.x", 4999, ids, sizeof(ids));
	assert_string_equal(ids, "");
	fetch_ids(s, "webhook.x", 5000, ids, sizeof(ids));
	assert_string_equal(ids, "a2 a3");
	store_close(s);
}

static void test_outbox_fetch_after_skips_in_flight(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct store_entry *v = NULL;
	size_t n = 0;
	int64_t last;

	put(s, "mqtt.home", "A", "a1");
	put(s, "mqtt.home", "A", "a2");
	put(s, "mqtt.home", "A", "a3");
	assert_int_equal(store_outbox_fetch(s, "mqtt.home", 1000, 2, &v, &n), 0);
	assert_int_equal(n, 2);
	last = v[1].id;
	store_entries_free(v, n);
	assert_int_equal(store_outbox_fetch_after(s, "mqtt.home", 1000, last, 10, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].msg_id, "a3");
	store_entries_free(v, n);
	store_close(s);
}

static void test_outbox_ack_deletes_entry(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	char ids[256];
	int64_t id;

	put(s, "mqtt.home", "A", "a1");
	put(s, "mqtt.home", "A", "a2");
	id = id_of(s, "mqtt.home", "a1");
	assert_int_equal(store_outbox_ack(s, id), 0);
	assert_int_equal(store_outbox_ack(s, id), 1); /* twice: nothing left to delete */
	fetch_ids(s, "mqtt.home", 1000, ids, sizeof(ids));
	assert_string_equal(ids, "a2");
	assert_int_equal(store_outbox_count(s), 1);
	store_close(s);
}

/* 4 MB of entries read back: the page cache stays near its 1 MiB bound instead of
 * SQLite's default 2 MiB (the connections empty it at each other's commits anyway). */
static void test_page_cache_is_bounded(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	static char payload[2048];
	struct store_entry *v = NULL;
	size_t n = 0, read = 0;
	int64_t after = 0;
	char msg_id[32];

	memset(payload, 'x', sizeof(payload) - 1);
	assert_int_equal(store_begin(s), 0);
	for (int i = 0; i < 2000; i++) {
		struct store_entry e = {
		    .target = "mqtt.home", .zone_id = "A", .msg_id = msg_id, .payload = payload};
		snprintf(msg_id, sizeof(msg_id), "m%d", i);
		assert_int_equal(store_outbox_put(s, &e), 0);
	}
	assert_int_equal(store_commit(s), 0);
	do {
		assert_int_equal(
		    store_outbox_fetch_after(s, "mqtt.home", INT64_MAX, after, 500, &v, &n), 0);
		if (n > 0)
			after = v[n - 1].id;
		read += n;
		store_entries_free(v, n);
	} while (n > 0);
	assert_int_equal(read, 2000);
	assert_true(store_cache_bytes(s) > 0);
	assert_true(store_cache_bytes(s) <= 1280 * 1024);
	store_close(s);
}

static void test_outbox_defer_counts_attempts(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct store_entry *v = NULL;
	size_t n = 0;
	int64_t id, first;

	put(s, "mqtt.home", "A", "a1");
	id = id_of(s, "mqtt.home", "a1");
	assert_int_equal(store_outbox_defer(s, id, 2000, "connection refused"), 0);
	assert_int_equal(store_outbox_fetch(s, "mqtt.home", 1999, 10, &v, &n), 0);
	assert_int_equal(n, 0);
	assert_null(v);
	assert_int_equal(store_outbox_fetch(s, "mqtt.home", 2000, 10, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].attempts, 1);
	assert_int_equal(v[0].next_attempt_ms, 2000);
	assert_string_equal(v[0].last_error, "connection refused");
	first = v[0].first_failed_ms;
	assert_true(first > 0);
	store_entries_free(v, n);
	assert_int_equal(store_outbox_defer(s, id, 3000, "HTTP 503"), 0);
	assert_int_equal(store_outbox_fetch(s, "mqtt.home", 3000, 10, &v, &n), 0);
	assert_int_equal(v[0].attempts, 2);
	assert_int_equal(v[0].first_failed_ms, first); /* kept from the first failure */
	assert_string_equal(v[0].last_error, "HTTP 503");
	store_entries_free(v, n);
	assert_int_equal(store_outbox_defer(s, 999999, 3000, "x"), 1);
	store_close(s);
}

static void test_outbox_next_due_is_earliest_zone_head(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	int64_t later = util_now_ms() + 3600 * 1000;

	assert_int_equal(store_outbox_next_due(s, "mqtt.home"), -1);
	put(s, "mqtt.home", "A", "a1");
	put(s, "mqtt.home", "A", "a2");
	put(s, "mqtt.home", "B", "b1");
	assert_int_equal(store_outbox_next_due(s, "mqtt.home"), 0);
	assert_int_equal(store_outbox_defer(s, id_of(s, "mqtt.home", "a1"), later + 7000, "e"), 0);
	/* b1 is still free to go */
	assert_int_equal(store_outbox_next_due(s, "mqtt.home"), 0);
	assert_int_equal(store_outbox_defer(s, id_of(s, "mqtt.home", "b1"), later + 9000, "e"), 0);
	/* a2 is due but held behind a1: the answer is a1's time, not a2's */
	assert_int_equal(store_outbox_next_due(s, "mqtt.home"), later + 7000);
	assert_int_equal(store_outbox_next_due(s, "webhook.x"), -1);
	store_close(s);
}

static void test_outbox_count_all_targets(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);

	assert_int_equal(store_outbox_count(s), 0);
	put(s, "mqtt.home", "A", "a1");
	put(s, "webhook.x", "A", "w1");
	put(s, "webhook.x", "B", "w2");
	assert_int_equal(store_outbox_count(s), 3);
	assert_int_equal(store_outbox_to_dlq(s, id_of(s, "webhook.x", "w1"), 400, "bad"), 0);
	assert_int_equal(store_outbox_count(s), 2);
	store_close(s);
}

struct dlq_list {
	char text[512];
	size_t len;
	int64_t first_failed;
};

static int collect_dlq(void *arg, const struct store_entry *e, int status, const char *reason,
                       int64_t failed_ms)
{
	struct dlq_list *l = arg;

	assert_true(failed_ms > 0);
	assert_string_equal(e->payload, "{}");
	l->len += (size_t)snprintf(l->text + l->len, sizeof(l->text) - l->len, "%s%s:%d:%s:%d",
	                           l->len ? " " : "", e->msg_id, status, reason, e->attempts);
	return 0;
}

static void test_dlq_move_list_and_replay_in_order(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct dlq_list l = {0};
	struct store_entry *v = NULL;
	size_t n = 0;
	int count = -1;
	int64_t a2;

	put(s, "webhook.x", "A", "a1");
	put(s, "webhook.x", "A", "a2");
	put(s, "webhook.x", "A", "a3");
	put(s, "mqtt.home", "A", "m1");
	a2 = id_of(s, "webhook.x", "a2");
	/* a2 fails first, a1 later: replay must still restore a1 before a2 */
	assert_int_equal(store_outbox_defer(s, a2, 0, "HTTP 503"), 0);
	assert_int_equal(store_outbox_to_dlq(s, a2, 410, "HTTP 410 Gone"), 0);
	assert_int_equal(store_outbox_to_dlq(s, id_of(s, "webhook.x", "a1"), 400, "HTTP 400"), 0);
	assert_int_equal(store_outbox_to_dlq(s, id_of(s, "mqtt.home", "m1"), 0, "expired"), 0);
	assert_int_equal(store_outbox_to_dlq(s, a2, 400, "again"), 1);
	assert_int_equal(store_dlq_list(s, "webhook.x", 0, collect_dlq, &l), 0);
	assert_string_equal(l.text, "a2:410:HTTP 410 Gone:2 a1:400:HTTP 400:1");
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_dlq_list(s, NULL, 0, collect_dlq, &l), 0);
	assert_string_equal(l.text, "a2:410:HTTP 410 Gone:2 a1:400:HTTP 400:1 m1:0:expired:1");
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_dlq_list(s, NULL, INT64_MAX, collect_dlq, &l), 0);
	assert_string_equal(l.text, "");

	assert_int_equal(store_dlq_replay(s, "webhook.x", 0, &count), 0);
	assert_int_equal(count, 2);
	assert_int_equal(store_outbox_fetch(s, "webhook.x", 1000, 10, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(v[0].msg_id, "a3");
	assert_string_equal(v[1].msg_id, "a1");
	assert_string_equal(v[2].msg_id, "a2");
	assert_int_equal(v[2].attempts, 0);
	assert_int_equal(v[2].first_failed_ms, 0);
	assert_null(v[2].last_error);
	assert_int_equal(v[2].next_attempt_ms, 0);
	store_entries_free(v, n);
	memset(&l, 0, sizeof(l));
	assert_int_equal(store_dlq_list(s, NULL, 0, collect_dlq, &l), 0);
	assert_string_equal(l.text, "m1:0:expired:1");
	store_close(s);
}

static void test_rollback_leaves_nothing(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct store_seen r = {.revision = "r", .severity = "normal"};
	int64_t v;

	assert_int_equal(store_begin(s), 0);
	put(s, "mqtt.home", "A", "a1");
	assert_int_equal(store_cursor_set(s, "A", "events", 99), 0);
	assert_int_equal(store_seen_put(s, "event", "e1", "A", &r), 0);
	assert_int_equal(store_rstate_put(s, "k", "{}", INT64_MAX), 0);
	assert_int_equal(store_outbox_count(s), 1);
	assert_int_equal(store_rollback(s), 0);
	assert_int_equal(store_outbox_count(s), 0);
	assert_int_equal(store_cursor_get(s, "A", "events", &v), 0);
	assert_int_equal(store_seen_get(s, "event", "e1", &r), 0);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM rule_state"), 0);
	store_close(s);
}

static void test_dlq_move_inside_rolled_back_transaction_is_undone(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct dlq_list l = {0};

	put(s, "webhook.x", "A", "a1");
	assert_int_equal(store_begin(s), 0);
	assert_int_equal(store_outbox_to_dlq(s, id_of(s, "webhook.x", "a1"), 400, "bad"), 0);
	assert_int_equal(store_outbox_count(s), 0);
	assert_int_equal(store_rollback(s), 0);
	assert_int_equal(store_outbox_count(s), 1);
	assert_int_equal(store_dlq_list(s, NULL, 0, collect_dlq, &l), 0);
	assert_string_equal(l.text, "");
	store_close(s);
}

static void test_two_connections_see_commits_only(void **state)
{
	struct fixture *f = *state;
	struct store *poller = open_ok(f->path);
	struct store *delivery = open_ok(f->path);
	char ids[256];

	assert_int_equal(store_begin(poller), 0);
	put(poller, "mqtt.home", "A", "a1");
	assert_int_equal(store_cursor_set(poller, "A", "events", 5), 0);
	fetch_ids(delivery, "mqtt.home", 1000, ids, sizeof(ids));
	assert_string_equal(ids, "");
	assert_int_equal(store_commit(poller), 0);
	fetch_ids(delivery, "mqtt.home", 1000, ids, sizeof(ids));
	assert_string_equal(ids, "a1");
	assert_int_equal(store_outbox_ack(delivery, id_of(delivery, "mqtt.home", "a1")), 0);
	assert_int_equal(store_outbox_count(poller), 0);
	store_close(delivery);
	store_close(poller);
}

struct writer {
	const char *path;
	const char *zone;
	int failures;
};

/* One thread's own connection, writing transactions while another thread does the same. Both
 * start on a file that does not exist yet, so creation and migration race too. */
static void *writer_run(void *arg)
{
	struct writer *w = arg;
	char err[512], msg_id[32];
	struct store *s = store_open(w->path, err, sizeof(err));

	if (s == NULL) {
		fprintf(stderr, "writer %s: open: %s\n", w->zone, err);
		w->failures++;
		return NULL;
	}
	for (int t = 0; t < 100; t++) {
		if (store_begin(s) < 0) {
			fprintf(stderr, "writer %s: begin: %s\n", w->zone, store_errmsg(s));
			w->failures++;
			continue;
		}
		for (int i = 0; i < 10; i++) {
			struct store_entry e = {.target = "mqtt.home",
			                        .zone_id = (char *)w->zone,
			                        .msg_id = msg_id,
			                        .payload = "{}"};

			snprintf(msg_id, sizeof(msg_id), "%s-%d", w->zone, t * 10 + i);
			if (store_outbox_put(s, &e) < 0)
				w->failures++;
		}
		if (store_cursor_set(s, w->zone, "events", t) < 0 || store_commit(s) < 0) {
			fprintf(stderr, "writer %s: commit: %s\n", w->zone, store_errmsg(s));
			w->failures++;
			store_rollback(s);
		}
	}
	store_close(s);
	return NULL;
}

static void test_concurrent_writers_wait_instead_of_failing(void **state)
{
	struct fixture *f = *state;
	struct writer a = {.path = f->path, .zone = "A"}, b = {.path = f->path, .zone = "B"};
	pthread_t ta, tb;
	struct store *s;
	struct store_entry *v = NULL;
	size_t n = 0;
	int next_a = 0, next_b = 0;

	assert_int_equal(pthread_create(&ta, NULL, writer_run, &a), 0);
	assert_int_equal(pthread_create(&tb, NULL, writer_run, &b), 0);
	assert_int_equal(pthread_join(ta, NULL), 0);
	assert_int_equal(pthread_join(tb, NULL), 0);
	s = open_ok(f->path);
	assert_int_equal(a.failures, 0);
	assert_int_equal(b.failures, 0);
	assert_int_equal(store_outbox_count(s), 2000);
	/* each zone's entries come back in the order its writer put them */
	assert_int_equal(store_outbox_fetch(s, "mqtt.home", INT64_MAX, 5000, &v, &n), 0);
	assert_int_equal(n, 2000);
	for (size_t i = 0; i < n; i++) {
		char want[32];
		int *next = v[i].zone_id[0] == 'A' ? &next_a : &next_b;

		snprintf(want, sizeof(want), "%s-%d", v[i].zone_id, (*next)++);
		assert_string_equal(v[i].msg_id, want);
	}
	store_entries_free(v, n);
	store_close(s);
}

/* A writer waits for the other connection's transaction, in short naps, but not for ever:
 * past the busy timeout (5 s) it fails with SQLite's "locked" and the caller retries later. */
static void test_writer_gives_up_past_the_busy_timeout(void **state)
{
	struct fixture *f = *state;
	struct store *a = open_ok(f->path), *b = open_ok(f->path);

	assert_int_equal(store_begin(a), 0);
	assert_int_equal(store_begin(b), -1);
	assert_non_null(strstr(store_errmsg(b), "locked"));
	assert_int_equal(store_commit(a), 0);
	assert_int_equal(store_begin(b), 0);
	assert_int_equal(store_commit(b), 0);
	store_close(b);
	store_close(a);
}

struct opener {
	const char *path;
	pthread_barrier_t *go;
	char err[512];
	bool failed;
};

static void *opener_run(void *arg)
{
	struct opener *o = arg;
	struct store *s;

	pthread_barrier_wait(o->go);
	s = store_open(o->path, o->err, sizeof(o->err));
	o->failed = s == NULL;
	store_close(s);
	return NULL;
}

/* Connections that open a new file at the same moment (a daemon's two threads, `explain`
 * next to a starting daemon) each see either no schema or the whole of it, never a
 * half-made one taken for a foreign database. */
static void test_simultaneous_first_opens_all_succeed(void **state)
{
	struct fixture *f = *state;
	enum { OPENERS = 4, ROUNDS = 40 };
	const char *suffix[] = {"", "-wal", "-shm", "-journal"};

	for (int r = 0; r < ROUNDS; r++) {
		struct opener o[OPENERS];
		pthread_t t[OPENERS];
		pthread_barrier_t go;
		char p[160];

		for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
			snprintf(p, sizeof(p), "%s%s", f->path, suffix[i]);
			unlink(p);
		}
		assert_int_equal(pthread_barrier_init(&go, NULL, OPENERS), 0);
		for (int i = 0; i < OPENERS; i++) {
			o[i] = (struct opener){.path = f->path, .go = &go};
			assert_int_equal(pthread_create(&t[i], NULL, opener_run, &o[i]), 0);
		}
		for (int i = 0; i < OPENERS; i++)
			assert_int_equal(pthread_join(t[i], NULL), 0);
		pthread_barrier_destroy(&go);
		for (int i = 0; i < OPENERS; i++) {
			if (o[i].failed)
				fail_msg("round %d, opener %d: %s", r, i, o[i].err);
		}
	}
}

/* The layout of schema version 1, as a v1 tether-bridge wrote it. */
static const char v1_schema[] =
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
    "CREATE INDEX dead_failed ON dead (failed_ms);"
    "PRAGMA application_id = 1413641076;"
    "PRAGMA user_version = 1;";

static void test_migrates_v1_database(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	struct store_entry *v = NULL;
	size_t n = 0;
	int64_t c = 0;

	raw_exec(f->path, v1_schema);
	raw_exec(
	    f->path,
	    "INSERT INTO cursors VALUES ('A', 'events', 77, 1);"
	    "INSERT INTO outbox (target, zone_id, msg_id, payload, created_ms, attempts,"
	    " next_attempt_ms, last_error) VALUES ('mqtt.home', 'A', 'old', '{}', 5, 2, 0, 'x');");
	s = open_ok(f->path);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(store_cursor_get(s, "A", "events", &c), 1);
	assert_int_equal(c, 77);
	assert_int_equal(store_outbox_fetch(s, "mqtt.home", 1000, 10, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].msg_id, "old");
	assert_int_equal(v[0].attempts, 2);
	assert_null(v[0].extra);
	assert_int_equal(v[0].first_failed_ms, 0);
	store_entries_free(v, n);
	/* the v2 columns work */
	assert_int_equal(store_outbox_to_dlq(s, id_of(s, "mqtt.home", "old"), 0, "r"), 0);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name = "
	                                  "'outbox_due'"),
	                 1);
	/* and through v2 on to v3: the rule state table works */
	assert_int_equal(store_rstate_put(s, "C:r1|A", "{}", 100), 0);
	assert_int_equal(store_rstate_prune(s, 100), 1);
	store_close(s);
}

/* The layout of schema version 2: version 1 plus the v2 step, as a v2 tether-bridge wrote
 * it. */
static const char v2_steps[] =
    "ALTER TABLE outbox ADD COLUMN extra TEXT;"
    "ALTER TABLE outbox ADD COLUMN first_failed_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE dead ADD COLUMN extra TEXT;"
    "ALTER TABLE dead ADD COLUMN first_failed_ms INTEGER NOT NULL DEFAULT 0;"
    "DROP INDEX outbox_target;"
    "CREATE INDEX outbox_walk ON outbox (target, id, zone_id, next_attempt_ms);"
    "CREATE INDEX outbox_due ON outbox (target, next_attempt_ms, zone_id);"
    "CREATE INDEX outbox_zone ON outbox (target, zone_id, id, next_attempt_ms);"
    "PRAGMA user_version = 2;";

static void test_migrates_v2_database(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	struct store_entry *v = NULL;
	size_t n = 0;
	int64_t c = 0;
	struct rs_walk w = {.max = 0};

	raw_exec(f->path, v1_schema);
	raw_exec(f->path, v2_steps);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name = "
	                                  "'rule_state'"),
	                 0);
	raw_exec(f->path,
	         "INSERT INTO cursors VALUES ('A', 'events', 77, 1);"
	         "INSERT INTO kv VALUES ('cool:r1:z1', 500);"
	         "INSERT INTO outbox (target, zone_id, msg_id, payload, created_ms, attempts,"
	         " next_attempt_ms, last_error, extra, first_failed_ms) VALUES ('mqtt.home', 'A',"
	         " 'old', '{}', 5, 2, 0, 'x', '{\"qos\":1}', 4);");
	s = open_ok(f->path);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(store_cursor_get(s, "A", "events", &c), 1);
	assert_int_equal(c, 77);
	/* v5: the unused kv table is gone */
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'kv'"),
	                 0);
	assert_int_equal(store_outbox_fetch(s, "mqtt.home", 1000, 10, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].msg_id, "old");
	assert_string_equal(v[0].extra, "{\"qos\":1}");
	assert_int_equal(v[0].first_failed_ms, 4);
	store_entries_free(v, n);
	/* the v3 table works */
	assert_int_equal(store_rstate_put(s, "C:r1|A", "{}", 100), 0);
	assert_int_equal(store_rstate_each(s, 0, rs_collect, &w), 0);
	assert_string_equal(w.out, "C:r1|A={}\n");
	store_close(s);
}

/* Version 3 entries of a webhook held its URL (and the tokens in it); version 4 forgets it
 * and the entries still go out, the URL coming from the config. */
static void test_migrates_v3_database_forgets_webhook_urls(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	struct store_entry *v = NULL;
	size_t n = 0;

	raw_exec(f->path, v1_schema);
	raw_exec(f->path, v2_steps);
	raw_exec(f->path, "CREATE TABLE rule_state (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
	                  " expires_ms INTEGER NOT NULL) WITHOUT ROWID;"
	                  "CREATE INDEX rule_state_expiry ON rule_state (expires_ms);"
	                  "PRAGMA user_version = 3;");
	raw_exec(
	    f->path,
	    "INSERT INTO outbox (target, zone_id, msg_id, topic_or_url, payload, created_ms)"
	    " VALUES ('webhook.slack', 'A', 'w1', 'https://hooks.example/T/B/secret', '{}', 5),"
	    " ('mqtt.home', 'A', 'm1', 'tether/events/a', '{}', 5);"
	    "INSERT INTO dead (orig_id, target, zone_id, msg_id, status, attempts, failed_ms,"
	    " created_ms, payload, topic_or_url) VALUES (9, 'webhook.slack', 'A', 'w0', 500,"
	    " 1, 6, 5, '{}', 'https://hooks.example/T/B/secret');");
	s = open_ok(f->path);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM outbox WHERE topic_or_url LIKE "
	                                  "'%secret%'"),
	                 0);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM dead WHERE topic_or_url LIKE "
	                                  "'%secret%'"),
	                 0);
	assert_int_equal(store_outbox_fetch(s, "webhook.slack", 1000, 10, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].msg_id, "w1");
	assert_null(v[0].topic_or_url);
	store_entries_free(v, n);
	assert_int_equal(store_outbox_fetch(s, "mqtt.home", 1000, 10, &v, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(v[0].topic_or_url, "tether/events/a");
	store_entries_free(v, n);
	store_close(s);
}

/* Version 6 (control) gains ha_config: what it held is kept and the new table works. */
static void test_migrates_v6_database_adds_ha_config(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	char mode[32];

	raw_exec(f->path, v1_schema);
	raw_exec(f->path, v2_steps);
	raw_exec(f->path, "CREATE TABLE rule_state (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
	                  " expires_ms INTEGER NOT NULL) WITHOUT ROWID;"
	                  "CREATE INDEX rule_state_expiry ON rule_state (expires_ms);"
	                  "DROP TABLE kv;"
	                  "CREATE TABLE control (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
	                  " WITHOUT ROWID;"
	                  "INSERT INTO control VALUES ('mode', 'away');"
	                  "PRAGMA user_version = 6;");
	s = open_ok(f->path);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	assert_int_equal(store_control_get(s, "mode", mode, sizeof(mode)), 1);
	assert_string_equal(mode, "away");
	assert_int_equal(store_ha_config_put(s, "mqtt.home", "homeassistant/x/config", "{}"), 0);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM ha_config"), 1);
	store_close(s);
}

/* Version 7's seen table had a rowid and its key's index; version 8 is keyed by the key
 * alone: the records are kept, open ones still listed, and puts replace them. */
static void test_migrates_v7_database_keys_seen_by_its_key(void **state)
{
	struct fixture *f = *state;
	struct store *s;
	struct store_seen seen = {0};
	char sql[256];

	raw_exec(f->path, v1_schema);
	raw_exec(f->path, v2_steps);
	raw_exec(f->path,
	         "CREATE TABLE rule_state (key TEXT PRIMARY KEY, value TEXT NOT NULL,"
	         " expires_ms INTEGER NOT NULL) WITHOUT ROWID;"
	         "DROP TABLE kv;"
	         "CREATE TABLE control (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
	         " WITHOUT ROWID;"
	         "CREATE TABLE ha_config (target TEXT NOT NULL, topic TEXT NOT NULL,"
	         " payload TEXT NOT NULL, PRIMARY KEY (target, topic)) WITHOUT ROWID;"
	         "INSERT INTO seen VALUES ('event', 'e1', 'r1', 5, 'high', 1, 'A', 10, 20),"
	         " ('event', 'e2', 'r2', 0, 'low', 0, 'A', 11, 21);"
	         "PRAGMA user_version = 7;");
	s = open_ok(f->path);
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM sqlite_master WHERE name = 'seen' AND"
	         " sql LIKE '%%WITHOUT ROWID%%'");
	assert_int_equal(raw_int(f->path, sql), 1);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master WHERE name ="
	                                  " 'seen_open'"),
	                 1);
	assert_int_equal(store_seen_get(s, "event", "e1", &seen), 1);
	assert_string_equal(seen.revision, "r1");
	assert_int_equal(seen.flags, 5);
	assert_true(seen.complete);
	assert_int_equal(seen.seen_ms, 20);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM seen INDEXED BY seen_open"
	                                  " WHERE zone_id = 'A' AND complete = 0"),
	                 1);
	snprintf(seen.revision, sizeof(seen.revision), "r3");
	seen.complete = true;
	assert_int_equal(store_seen_put(s, "event", "e2", "A", &seen), 0);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM seen"), 2);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM seen WHERE complete = 0"), 0);
	store_close(s);
}

static void test_newer_version_rejected(void **state)
{
	struct fixture *f = *state;
	char err[512] = "";
	char want[64];

	raw_exec(f->path, "CREATE TABLE future (x); PRAGMA application_id = 1413641076;"
	                  "PRAGMA user_version = 99;");
	assert_null(store_open(f->path, err, sizeof(err)));
	assert_non_null(strstr(err, f->path));
	assert_non_null(strstr(err, "schema version 99, newer than"));
	snprintf(want, sizeof(want), "(%d)", STORE_SCHEMA_VERSION);
	assert_non_null(strstr(err, want));
	assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 99);
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM sqlite_master"), 1);
}

static void test_foreign_database_rejected(void **state)
{
	struct fixture *f = *state;
	char err[512] = "";

	raw_exec(f->path, "CREATE TABLE photos (x); INSERT INTO photos VALUES (1);");
	assert_null(store_open(f->path, err, sizeof(err)));
	assert_non_null(strstr(err, f->path));
	assert_non_null(strstr(err, "not a tether-bridge state database"));
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM photos"), 1);
}

static void test_corrupt_file_rejected_and_untouched(void **state)
{
	struct fixture *f = *state;
	char garbage[4096], back[4097], err[512] = "", p[160];
	const char line[] = "this is not a database\n";
	struct stat sb;
	ssize_t got;
	int fd;

	for (size_t i = 0; i < sizeof(garbage); i++)
		garbage[i] = line[i % (sizeof(line) - 1)];
	fd = open(f->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, garbage, sizeof(garbage)), (ssize_t)sizeof(garbage));
	close(fd);
	assert_null(store_open(f->path, err, sizeof(err)));
	assert_non_null(strstr(err, f->path));
	assert_non_null(strstr(err, "not a database"));
	fd = open(f->path, O_RDONLY);
	assert_true(fd >= 0);
	got = read(fd, back, sizeof(back));
	close(fd);
	assert_int_equal(got, (ssize_t)sizeof(garbage));
	assert_memory_equal(back, garbage, sizeof(garbage));
	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0644);
	snprintf(p, sizeof(p), "%s-wal", f->path);
	assert_int_equal(access(p, F_OK), -1);
}

static void test_unopenable_path_names_file(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", p[160];

	snprintf(p, sizeof(p), "%s/missing-dir/state.db", f->dir);
	assert_null(store_open(p, err, sizeof(err)));
	assert_non_null(strstr(err, p));
	assert_non_null(strstr(err, "No such file"));
}

static void test_write_failure_is_an_error_not_a_crash(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	struct rlimit old, lim;
	struct store_entry e = {.target = "mqtt.home", .zone_id = "A", .msg_id = "big"};
	char *payload = malloc(64 * 1024);
	void (*old_handler)(int);
	int rc = 0, i;

	assert_non_null(payload);
	memset(payload, 'x', 64 * 1024 - 1);
	payload[64 * 1024 - 1] = '\0';
	e.payload = payload;
	put(s, "mqtt.home", "A", "small");
	/* A file size limit makes writes fail as a full disk would (EFBIG). */
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 256 * 1024;
	old_handler = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	assert_int_equal(store_begin(s), 0);
	for (i = 0; i < 64 && rc == 0; i++)
		rc = store_outbox_put(s, &e);
	if (rc == 0)
		rc = store_commit(s);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, old_handler);
	assert_int_equal(rc, -1);
	assert_true(strlen(store_errmsg(s)) > 0);
	print_message("write failure reported as: %s\n", store_errmsg(s));
	assert_int_equal(store_rollback(s), 0);
	/* the store still works and kept what was committed before */
	assert_int_equal(store_outbox_count(s), 1);
	put(s, "mqtt.home", "A", "after");
	assert_int_equal(store_outbox_count(s), 2);
	store_close(s);
	free(payload);
}

/* kill -9 store_crash at random moments, resuming each time; then every committed msg_id
 * must be in the outbox exactly once, in order, and the cursor must match. */
static void test_kill9_loses_nothing(void **state)
{
	struct fixture *f = *state;
	const char *build = getenv("BUILD");
	char tool[256], buf[4096];
	int64_t printed = 0, cursor = -1;
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	struct store *s;
	struct store_entry *v = NULL;
	size_t n = 0;

	snprintf(tool, sizeof(tool), "%s/tools/store_crash", build && *build ? build : "build");
	if (access(tool, X_OK) != 0)
		fail_msg("crash tool '%s' missing: build it first", tool);
	print_message("kill9 seed %u\n", seed);
	srand(seed);
	for (int round = 0; round < 30; round++) {
		int pfd[2], status, lines_wanted = rand() % 4, lines = 0;
		pid_t pid;
		FILE *in;

		assert_int_equal(pipe(pfd), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			dup2(pfd[1], STDOUT_FILENO);
			close(pfd[0]);
			close(pfd[1]);
			execl(tool, tool, f->path, (char *)NULL);
			_exit(127);
		}
		close(pfd[1]);
		in = fdopen(pfd[0], "r");
		assert_non_null(in);
		/* Let it commit a few batches (none in some rounds: then the kill lands in open or
		 * in the first transaction), then kill it at a random point of the next. */
		while (lines < lines_wanted && fgets(buf, sizeof(buf), in) != NULL) {
			printed = strtoll(buf, NULL, 10);
			lines++;
		}
		usleep((useconds_t)(rand() % 3000));
		kill(pid, SIGKILL);
		while (fgets(buf, sizeof(buf), in) != NULL)
			if (buf[0] >= '0' && buf[0] <= '9')
				printed = strtoll(buf, NULL, 10);
		fclose(in);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 0));
	}
	assert_int_equal(raw_int(f->path, "SELECT count(*) FROM pragma_integrity_check "
	                                  "WHERE integrity_check = 'ok'"),
	                 1);
	s = open_ok(f->path);
	assert_int_equal(store_cursor_get(s, "crash", "outbox", &cursor) >= 0, 1);
	if (cursor < 0)
		cursor = 0;
	print_message("kill9: last printed %" PRId64 ", cursor %" PRId64 "\n", printed, cursor);
	/* the kill may land between a commit and its printf: one batch ahead at most */
	assert_true(cursor == printed || cursor == printed + 50);
	assert_int_equal(store_outbox_count(s), cursor);
	assert_int_equal(
	    store_outbox_fetch(s, "mqtt.crash", INT64_MAX, (size_t)cursor + 10, &v, &n), 0);
	assert_int_equal(n, (size_t)cursor);
	for (size_t i = 0; i < n; i++) {
		char want[32];

		snprintf(want, sizeof(want), "m%zu", i);
		assert_string_equal(v[i].msg_id, want);
	}
	store_entries_free(v, n);
	store_close(s);
}

#define BIG_PAYLOAD (16 * 1024)

/* n outbox entries of BIG_PAYLOAD bytes (about 5 pages each), each committed on its own. */
static void put_big_entries(struct store *s, int n)
{
	static char payload[BIG_PAYLOAD];

	memset(payload, 'x', sizeof(payload) - 1);
	for (int i = 0; i < n; i++) {
		struct store_entry e = {.target = "mqtt.home",
		                        .zone_id = "z1",
		                        .msg_id = "m",
		                        .topic_or_url = "t",
		                        .payload = payload};
		assert_int_equal(store_outbox_put(s, &e), 0);
	}
}

struct wal_reader {
	struct store *s;
	atomic_bool stop;
	long reads;
};

/* Reads in a loop, each read a transaction holding a snapshot of the WAL, as the delivery
 * loop's fetches do while the poller writes. */
static void *wal_read_loop(void *arg)
{
	struct wal_reader *r = arg;
	int64_t v;

	while (!atomic_load(&r->stop)) {
		if (store_cursor_get(r->s, "z1", "event", &v) < 0)
			break;
		r->reads++;
	}
	return NULL;
}

/* With a reader always at work, the WAL started over only once the thread waited for it:
 * before, it grew to 20,000 pages (80 MB) and past that every commit checkpointed. Here
 * 16,000 pages (64 MB) go through it and it stays under 12,000 (8,000 to 9,300 here). */
static void test_wal_starts_over_under_a_busy_reader(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", wal[200];
	struct wal_reader r = {0};
	pthread_t reader;
	struct stat st;
	off_t most = 0;

	/* valgrind runs one thread at a time: no reader works beside the writer, and 64 MB
	 * through SQLite under it take minutes */
	const char *preload = getenv("LD_PRELOAD");
	if (preload != NULL && strstr(preload, "vgpreload") != NULL)
		skip();
	assert_int_equal(store_checkpoints_start(f->path, err, sizeof(err)), 0);
	struct store *s = open_ok(f->path);
	r.s = open_ok(f->path);
	atomic_init(&r.stop, false);
	assert_int_equal(pthread_create(&reader, NULL, wal_read_loop, &r), 0);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	for (int i = 0; i < 320; i++) {
		put_big_entries(s, 10); /* about 50 pages */
		usleep(2000);           /* the poller parses between its chunks */
		assert_int_equal(stat(wal, &st), 0);
		if (st.st_size > most)
			most = st.st_size;
	}
	atomic_store(&r.stop, true);
	assert_int_equal(pthread_join(reader, NULL), 0);
	assert_true(r.reads > 0);
	assert_true(store_checkpoints_done() > 0);
	assert_true(most < (off_t)12000 * (4096 + 24));
	store_close(r.s);
	store_close(s);
	store_checkpoints_stop();
}

/* With the checkpoint thread started, a connection's commits no longer checkpoint in the
 * committing thread: the thread does, and the database file (written only by checkpoints in
 * WAL mode) grows meanwhile. A store on another path keeps SQLite's own checkpoints. */
static void test_checkpoints_run_in_their_own_thread(void **state)
{
	struct fixture *f = *state;
	char err[512] = "", other[160];
	struct stat st;

	assert_int_equal(store_checkpoints_start(f->path, err, sizeof(err)), 0);
	struct store *s = open_ok(f->path);
	assert_int_equal(stat(f->path, &st), 0);
	off_t before = st.st_size;
	/* about 5 pages a commit, 1,500 in all: past the thread's 1,000, far below the 20,000
	 * at which the writer would checkpoint itself */
	put_big_entries(s, 300);
	for (int i = 0; i < 500 && store_checkpoints_done() == 0; i++)
		usleep(10 * 1000);
	assert_true(store_checkpoints_done() > 0);
	assert_int_equal(stat(f->path, &st), 0);
	assert_true(st.st_size > before + BIG_PAYLOAD);
	store_close(s);

	/* another database: its own commits checkpoint it, as before (the thread's connection
	 * is to the first one only) */
	snprintf(other, sizeof(other), "%s/other.db", f->dir);
	struct store *o = open_ok(other);
	put_big_entries(o, 300);
	assert_int_equal(stat(other, &st), 0);
	assert_true(st.st_size > BIG_PAYLOAD);
	store_close(o);
	store_checkpoints_stop();
	assert_int_equal(store_checkpoints_done(), 0);
	store_checkpoints_stop(); /* none started: nothing to do */
	const char *suffix[] = {"", "-wal", "-shm"};
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		char p[200];
		snprintf(p, sizeof(p), "%s%s", other, suffix[i]);
		unlink(p);
	}
}

/* The store turns SQLite's allocation counts off at its first open (they cost a mutex shared
 * by the poller's and the delivery loop's connections): nothing is counted afterwards. Runs
 * first, before this file opens SQLite any other way. */
static void test_sqlite_allocations_are_not_counted(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);

	put_big_entries(s, 3);
	assert_int_equal(sqlite3_memory_used(), 0);
	assert_int_equal(sqlite3_memory_highwater(0), 0);
	store_close(s);
}

/* The page caches take their pages from the store's pool, not from malloc: the pool's
 * lines in use rise while entries are written and read, and stay within it. */
static void test_page_caches_use_the_pool(void **state)
{
	struct fixture *f = *state;
	struct store *s = open_ok(f->path);
	int cur = -1, hi = -1;

	assert_int_equal(store_cache_pool_lines(), 320);
	put_big_entries(s, 20);
	assert_int_equal(sqlite3_status(SQLITE_STATUS_PAGECACHE_USED, &cur, &hi, 0), SQLITE_OK);
	assert_true(hi > 0);
	assert_true(hi <= 320);
	store_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_sqlite_allocations_are_not_counted, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_page_caches_use_the_pool, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_creates_schema_and_mode_0600, setup,
	                                    teardown),
	    cmocka_unit_test(test_path_is_state_db_in_state_dir),
	    cmocka_unit_test_setup_teardown(test_wal_starts_over_under_a_busy_reader, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_checkpoints_run_in_their_own_thread, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cursor_get_set, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_seen_put_get, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_open_events_lists_incomplete_per_zone, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_open_events_callback_stops_walk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_seen_prune_keeps_open_events, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rstate_put_replaces_and_each_skips_expired, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rstate_each_callback_stops_walk, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rstate_prune_deletes_expired_only, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rstate_survives_reopen_and_rollback_undoes_put,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(
	        test_ha_config_put_replaces_deletes_and_each_is_per_target, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_roundtrips_every_field, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_fetch_in_order_per_target, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_deferred_head_blocks_only_its_zone, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_reads_skip_delivered_entries, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_try_begin_does_not_wait_for_another_writer, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_heads_are_each_zones_oldest_due_entry,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_deferred_middle_entry_holds_back_later_ones,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_fetch_after_skips_in_flight, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_ack_deletes_entry, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_page_cache_is_bounded, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_defer_counts_attempts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_next_due_is_earliest_zone_head, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_outbox_count_all_targets, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dlq_move_list_and_replay_in_order, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_rollback_leaves_nothing, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_dlq_move_inside_rolled_back_transaction_is_undone,
	                                    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_connections_see_commits_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_writer_gives_up_past_the_busy_timeout, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_concurrent_writers_wait_instead_of_failing, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_simultaneous_first_opens_all_succeed, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_migrates_v1_database, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrates_v2_database, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_migrates_v3_database_forgets_webhook_urls, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_migrates_v7_database_keys_seen_by_its_key, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_migrates_v6_database_adds_ha_config, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_newer_version_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_foreign_database_rejected, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_file_rejected_and_untouched, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_unopenable_path_names_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_failure_is_an_error_not_a_crash, setup,
	                                    teardown),
	    cmocka_unit_test_setup_teardown(test_kill9_loses_nothing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
