/* Unit tests for config/config: the example's values and defaults, env expansion, _file
 * secrets, redaction, and the data-driven suite tests/data/config-invalid/<case>/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/config.h"

#define INVALID_DIR "tests/data/config-invalid"

#include "tests/unit/alloc_fail.h"

/* Writes text to a new temporary file; path gets its name. */
static void write_temp(char path[64], const char *text)
{
	snprintf(path, 64, "/tmp/tb-cfg-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

static struct config *load_text(const char *text, struct cfg_errors *errs)
{
	char path[64];
	write_temp(path, text);
	struct config *c = config_load(path, errs);
	unlink(path);
	return c;
}

static void unset_example_env(void)
{
	static const char *const vars[] = {"TETHER_SIM_PORT",
	                                   "TETHER_ACCESS_TOKEN",
	                                   "TETHER_BRIDGE_STATE_DIR",
	                                   "METRICS_PORT",
	                                   "MQTT_PORT",
	                                   "WEBHOOK_PORT",
	                                   "HOOK_SECRET",
	                                   NULL};
	for (size_t i = 0; vars[i]; i++)
		unsetenv(vars[i]);
}

static void test_example_loads_with_values(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	unset_example_env();
	setenv("WEBHOOK_SECRET", "whsec_ZXhhbXBsZS1zZWNyZXQtMzItYnl0ZXMtbG9uZyEh", 1);
	struct config *c = config_load("config/example.yaml", &errs);
	if (c == NULL)
		cfg_errors_print(&errs, stderr);
	assert_non_null(c);
	assert_int_equal(errs.n, 0);
	assert_string_equal(c->tether.base_url, "http://127.0.0.1:8080");
	assert_true(c->tether.insecure);
	assert_string_equal(c->tether.access_token, "sim-static-token");
	assert_null(c->tether.client_id);
	assert_null(c->tether.client_secret);
	assert_int_equal(c->poll.interval_ms, 10000);
	assert_int_equal(c->poll.lookback_ms, 15 * 60000);
	assert_true(c->poll.zones_all);
	assert_true(c->poll.events && c->poll.plates);
	assert_string_equal(c->state_dir, "/tmp/tether-bridge-example");
	assert_string_equal(c->metrics.listen, "127.0.0.1:9464");
	assert_int_equal(c->log.level, LOG_LEVEL_INFO);
	assert_false(c->log.json);
	assert_int_equal(c->nmqtt, 1);
	const struct cfg_mqtt *m = config_mqtt(c, "home");
	assert_non_null(m);
	assert_string_equal(m->host, "127.0.0.1");
	assert_int_equal(m->port, 1883);
	assert_false(m->tls);
	assert_int_equal(m->qos, 1);
	assert_string_equal(m->client_id, "tether-bridge-home");
	assert_int_equal(c->nwebhooks, 1);
	const struct cfg_webhook *w = config_webhook(c, "receiver");
	assert_non_null(w);
	assert_string_equal(w->url, "http://127.0.0.1:8090/hook");
	assert_int_equal(w->format, WEBHOOK_JSON);
	assert_int_equal(w->nheaders, 1);
	assert_string_equal(w->headers[0].name, "X-Source");
	assert_int_equal(w->nsecrets, 1);
	assert_string_equal(w->secrets[0], "whsec_ZXhhbXBsZS1zZWNyZXQtMzItYnl0ZXMtbG9uZyEh");
	assert_null(config_webhook(c, "home"));
	assert_non_null(ynode_get(c->doc->root, "rules"));
	config_free(c);
}

static void test_defaults_fill_absent_keys(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	struct config *c = load_text("tether:\n  base_url: https://my.timeline.is/\n"
	                             "  access_token: t\n"
	                             "mqtt:\n  b:\n    url: mqtts://broker.example\n"
	                             "webhooks:\n  w:\n    url: https://example.com/x\n",
	                             &errs);
	assert_non_null(c);
	assert_string_equal(c->tether.base_url, "https://my.timeline.is");
	assert_false(c->tether.insecure);
	assert_int_equal(c->tether.timeout_ms, 30000);
	assert_int_equal(c->poll.interval_ms, 10000);
	assert_int_equal(c->poll.lookback_ms, 900000);
	assert_int_equal(c->poll.concurrency, 8);
	assert_int_equal(c->poll.catchup_window_ms, 3600000);
	assert_true(c->poll.zones_all);
	assert_null(c->poll.location_id);
	assert_string_equal(c->state_dir, "/var/lib/tether-bridge");
	assert_int_equal(c->delivery.max_outbox, 100000);
	assert_int_equal(c->delivery.max_retry_age_ms, 86400000);
	assert_null(c->metrics.listen);
	assert_int_equal(c->mqtt[0].port, 8883);
	assert_true(c->mqtt[0].tls);
	assert_int_equal(c->mqtt[0].qos, 1);
	assert_false(c->mqtt[0].retain);
	assert_string_equal(c->mqtt[0].topic_prefix, "tether");
	assert_int_equal(c->mqtt[0].keepalive_ms, 30000);
	assert_null(c->mqtt[0].password);
	assert_int_equal(c->webhooks[0].format, WEBHOOK_JSON);
	assert_int_equal(c->webhooks[0].timeout_ms, 10000);
	assert_int_equal(c->webhooks[0].concurrency, 4);
	assert_int_equal(c->webhooks[0].nsecrets, 0);
	config_free(c);
}

/* order: zone unless asked otherwise; none is kept per webhook, and the dump shows it. */
static void test_webhook_order_defaults_to_zone(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	struct buf dump;
	struct config *c = load_text("tether:\n  base_url: https://my.timeline.is/\n"
	                             "  access_token: t\n"
	                             "webhooks:\n  a:\n    url: https://example.com/a\n"
	                             "  b: {url: https://example.com/b, order: none}\n"
	                             "  c: {url: https://example.com/c, order: zone}\n",
	                             &errs);
	assert_non_null(c);
	assert_int_equal(errs.n, 0);
	assert_int_equal(config_webhook(c, "a")->order, WEBHOOK_ORDER_ZONE);
	assert_int_equal(config_webhook(c, "b")->order, WEBHOOK_ORDER_NONE);
	assert_int_equal(config_webhook(c, "c")->order, WEBHOOK_ORDER_ZONE);
	buf_init(&dump, 0);
	assert_int_equal(config_dump(c, &dump), 0);
	assert_non_null(strstr(dump.data, "webhook.b: "));
	assert_non_null(strstr(strstr(dump.data, "webhook.b: "), " order=none"));
	assert_non_null(strstr(strstr(dump.data, "webhook.a: "), " order=zone"));
	buf_release(&dump);
	config_free(c);
}

static void test_oauth_and_zone_list(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	struct config *c =
	    load_text("tether:\n  base_url: https://a.example\n  client_id: id\n"
	              "  client_secret: s\n  redirect_uri: https://b.example/cb\n"
	              "poll: {zones: [Camera 1, 5f06c1a541092788f683f3c7], plates: false}\n"
	              "log: {level: debug, format: json}\n",
	              &errs);
	assert_non_null(c);
	assert_null(c->tether.access_token);
	assert_string_equal(c->tether.client_id, "id");
	assert_string_equal(c->tether.client_secret, "s");
	assert_false(c->poll.zones_all);
	assert_int_equal(c->poll.nzones, 2);
	assert_string_equal(c->poll.zones[0], "Camera 1");
	assert_false(c->poll.plates);
	assert_int_equal(c->log.level, LOG_LEVEL_DEBUG);
	assert_true(c->log.json);
	char sum[256];
	config_summary(c, sum, sizeof(sum));
	assert_string_equal(sum, "ok: 0 mqtt brokers, 0 webhooks, poll every 10s over 2 zones "
	                         "(events only)");
	config_free(c);
}

static const char spec_cfg[] =
    "tether:\n"
    "  base_url: https://my.timeline.is\n"
    "  client_id: ${TETHER_CLIENT_ID}\n"
    "  client_secret: ${TETHER_CLIENT_SECRET}\n"
    "  redirect_uri: https://my.site.com/callback\n"
    "  access_token: ${TETHER_ACCESS_TOKEN:-}\n"
    "  insecure: false\n"
    "poll:\n  interval: 10s\n  lookback: 15m\n  zones: all\n  events: true\n"
    "  plates: true\n  concurrency: 8\n"
    "state_dir: /var/lib/tether-bridge\n"
    "delivery: {max_outbox: 100000, max_retry_age: 24h}\n"
    "log: {level: info, format: text}\n"
    "metrics: {listen: 127.0.0.1:9464}\n"
    "mqtt:\n  home:\n    url: mqtt://127.0.0.1:1883\n    username: bridge\n"
    "    password: ${MQTT_PASSWORD:-}\n    client_id: tether-bridge\n    qos: 1\n"
    "    topic_prefix: tether\n"
    "webhooks:\n  slack:\n    url: ${SLACK_WEBHOOK_URL}\n    format: slack\n"
    "    headers: {X-Team: ops}\n    secret: ${HOOK_SECRET:-}\n    timeout: 10s\n"
    "watchlists:\n  stolen: {file: /etc/tether-bridge/stolen.txt, fuzzy: 1}\n"
    "rules:\n  - name: r\n    when: {kind: plate}\n    to: [{webhook: slack}]\n";

/* The config of SPEC section 3, with its variables as a user would set them. */
static void test_spec_example_loads(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	setenv("TETHER_CLIENT_ID", "cid", 1);
	setenv("TETHER_CLIENT_SECRET", "csecret", 1);
	setenv("SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T0/B0/XYZ", 1);
	unsetenv("TETHER_ACCESS_TOKEN");
	unsetenv("MQTT_PASSWORD");
	unsetenv("HOOK_SECRET");
	struct config *c = load_text(spec_cfg, &errs);
	if (c == NULL)
		cfg_errors_print(&errs, stderr);
	assert_non_null(c);
	assert_null(c->tether.access_token);
	assert_string_equal(c->tether.client_secret, "csecret");
	assert_string_equal(c->tether.redirect_uri, "https://my.site.com/callback");
	assert_string_equal(c->mqtt[0].client_id, "tether-bridge");
	assert_string_equal(c->mqtt[0].username, "bridge");
	assert_null(c->mqtt[0].password);
	assert_int_equal(c->webhooks[0].format, WEBHOOK_SLACK);
	assert_string_equal(c->webhooks[0].headers[0].value, "ops");
	assert_int_equal(c->webhooks[0].nsecrets, 0);
	char sum[256];
	config_summary(c, sum, sizeof(sum));
	assert_string_equal(sum, "ok: 1 mqtt broker, 1 webhook, poll every 10s over all zones");
	config_free(c);
	unsetenv("TETHER_CLIENT_ID");
	unsetenv("TETHER_CLIENT_SECRET");
	unsetenv("SLACK_WEBHOOK_URL");
}

static void test_env_expands_into_fields(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	setenv("TB_CFG_TEST_PORT", "18080", 1);
	setenv("TB_CFG_TEST_TOKEN", "tok-from-env", 1);
	setenv("TB_CFG_TEST_QOS", "2", 1);
	unsetenv("TB_CFG_TEST_EMPTY");
	struct config *c = load_text("tether:\n  base_url: http://127.0.0.1:${TB_CFG_TEST_PORT}\n"
	                             "  insecure: true\n  access_token: ${TB_CFG_TEST_TOKEN}\n"
	                             "mqtt:\n  h:\n    url: mqtt://127.0.0.1\n"
	                             "    qos: ${TB_CFG_TEST_QOS}\n"
	                             "    password: ${TB_CFG_TEST_EMPTY:-}\n",
	                             &errs);
	assert_non_null(c);
	assert_string_equal(c->tether.base_url, "http://127.0.0.1:18080");
	assert_string_equal(c->tether.access_token, "tok-from-env");
	assert_int_equal(c->mqtt[0].qos, 2);
	assert_null(c->mqtt[0].password); /* empty ${VAR:-} means absent */
	config_free(c);
	unsetenv("TB_CFG_TEST_PORT");
	unsetenv("TB_CFG_TEST_TOKEN");
	unsetenv("TB_CFG_TEST_QOS");
}

static void test_secret_file_is_read(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	char spath[64], cpath[64], text[512];
	write_temp(spath, "whsec_c2VjcmV0LWZyb20tZmlsZS0yNGJ5dGVz\n");
	snprintf(text, sizeof(text),
	         "tether:\n  base_url: https://a.example\n  access_token_file: %s\n"
	         "webhooks:\n  w:\n    url: https://example.com/\n    secret_file: %s\n",
	         spath, spath);
	write_temp(cpath, text);
	struct config *c = config_load(cpath, &errs);
	unlink(cpath);
	unlink(spath);
	assert_non_null(c);
	assert_string_equal(c->tether.access_token, "whsec_c2VjcmV0LWZyb20tZmlsZS0yNGJ5dGVz");
	assert_int_equal(c->webhooks[0].nsecrets, 1);
	assert_string_equal(c->webhooks[0].secrets[0], "whsec_c2VjcmV0LWZyb20tZmlsZS0yNGJ5dGVz");
	config_free(c);
}

static void test_secrets_list_keeps_order(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	unsetenv("TB_CFG_TEST_OLD");
	struct config *c = load_text("tether: {base_url: https://a.example, access_token: t}\n"
	                             "webhooks:\n  w:\n    url: https://example.com/\n"
	                             "    secrets: [whsec_bmV3LWtleS1vZi0yNC1ieXRlcy1sb25n, "
	                             "whsec_b2xkLWtleS1vZi0yNC1ieXRlcy1sb25n,"
	                             " \"${TB_CFG_TEST_OLD:-}\"]\n",
	                             &errs);
	assert_non_null(c);
	assert_int_equal(c->webhooks[0].nsecrets, 2);
	assert_string_equal(c->webhooks[0].secrets[0], "whsec_bmV3LWtleS1vZi0yNC1ieXRlcy1sb25n");
	assert_string_equal(c->webhooks[0].secrets[1], "whsec_b2xkLWtleS1vZi0yNC1ieXRlcy1sb25n");
	config_free(c);
}

static const char redact_cfg[] =
    "tether:\n  base_url: https://a.example\n  client_id: cid\n"
    "  client_secret: CLIENT-SECRET-1\n  redirect_uri: https://b.example/cb\n"
    "  access_token: ACCESS-TOKEN-2\n"
    "mqtt:\n  h: {url: mqtt://127.0.0.1, username: u, password: MQTT-PASSWORD-3}\n"
    "webhooks:\n  w:\n    url: https://hooks.example.com/services/URL-TOKEN-4\n"
    "    headers: {Authorization: Bearer HEADER-TOKEN-5}\n"
    "    secret: whsec_SElEREVOLTYtSElEREVOLTYtSElEREVO\n";

static void assert_redacted(const char *text)
{
	static const char *const secrets[] = {"CLIENT-SECRET-1",
	                                      "ACCESS-TOKEN-2",
	                                      "MQTT-PASSWORD-3",
	                                      "URL-TOKEN-4",
	                                      "HEADER-TOKEN-5",
	                                      "whsec_",
	                                      NULL};
	for (size_t i = 0; secrets[i]; i++) {
		if (strstr(text, secrets[i]) != NULL)
			fail_msg("'%s' leaked into:\n%s", secrets[i], text);
	}
	assert_non_null(strstr(text, "***"));
}

static void test_dump_redacts_secrets(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	struct config *c = load_text(redact_cfg, &errs);
	assert_non_null(c);
	struct buf b;
	buf_init(&b, 0);
	assert_int_equal(config_dump(c, &b), 0);
	assert_redacted(b.data);
	assert_non_null(strstr(b.data, "password=***"));
	assert_non_null(strstr(b.data, "url=https://hooks.example.com/***"));
	assert_non_null(strstr(b.data, "headers=Authorization"));
	char sum[256];
	config_summary(c, sum, sizeof(sum));
	assert_redacted(strcat(sum, " ***"));
	buf_release(&b);
	config_free(c);
}

static const char *listen_error(const char *listen)
{
	static char text[256];
	char cfg[512];
	struct cfg_errors errs = {0};
	snprintf(cfg, sizeof(cfg),
	         "tether: {base_url: https://a.example, access_token: t}\n"
	         "metrics: {listen: '%s'}\n",
	         listen);
	struct config *c = load_text(cfg, &errs);
	text[0] = '\0';
	if (c == NULL) {
		assert_int_equal(errs.n, 1);
		snprintf(text, sizeof(text), "%s", errs.v[0].text);
	} else {
		assert_string_equal(c->metrics.listen, listen);
	}
	config_free(c);
	cfg_errors_release(&errs);
	return text;
}

/* check accepts what run listens on: HOST:PORT with a name or an IPv4 address, and
 * [IPV6]:PORT; nothing else. */
static void test_metrics_listen_forms(void **state)
{
	(void)state;
	static const char *const good[] = {"127.0.0.1:9464",   "0.0.0.0:1",  "localhost:9464",
	                                   "[::1]:9464",       "[::]:65535", "metrics.lan:80",
	                                   "a-b.example:8080", NULL};
	static const char *const bad[] = {"1.2.3.4.5:80", "256.1.1.1:80", "[zzz]:80", "-a:80",
	                                  "a-.b:80",      "a..b:80",      "::1:80",   "[::1]",
	                                  "host_x:80",    ":80",          "[]:80",    NULL};
	for (size_t i = 0; good[i]; i++) {
		if (listen_error(good[i])[0] != '\0')
			fail_msg("'%s' refused: %s", good[i], listen_error(good[i]));
	}
	for (size_t i = 0; bad[i]; i++) {
		if (listen_error(bad[i])[0] == '\0')
			fail_msg("'%s' accepted", bad[i]);
	}
}

static void test_empty_file_is_an_error(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	assert_null(load_text("# nothing\n", &errs));
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.v[0].text, "the configuration is empty");
	cfg_errors_release(&errs);
}

static void test_missing_file_is_an_error(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	assert_null(config_load("/nonexistent/tether-bridge.yaml", &errs));
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.v[0].text, "unable to open"));
	cfg_errors_release(&errs);
}

static const char oom_cfg[] =
    "tether:\n  base_url: https://a.example/\n  access_token: ${TB_TEST_UNSET_TOKEN:-tok}\n"
    "poll:\n  zones: [Back door, 5f06c1a541092788f683f3c7]\n  location_id: loc\n"
    "state_dir: /tmp/x\nmetrics: {listen: '127.0.0.1:9464'}\nlog: {level: debug}\n"
    "mqtt:\n  h: {url: 'mqtt://127.0.0.1:1883', username: u, password: p, topic_prefix: a/b/}\n"
    "webhooks:\n  w:\n    url: https://hooks.example.com/x\n"
    "    headers: {Authorization: Bearer t, X-A: b}\n"
    "    secrets: [whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3, '${TB_TEST_UNSET_OLD:-}']\n"
    "  v: {url: 'http://127.0.0.1:1/', secret: whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3}\n"
    "rules: []\n";

static const char oom_bad_cfg[] =
    "tether: {base_url: ftp://a, insecure: maybe}\npoll: {interval: 1x, zones: [a, a]}\n"
    "mqtt:\n  'bad name': {url: mqtt://h/p}\nunknown: 1\n";

static void assert_loaded_whole(const struct config *c)
{
	assert_string_equal(c->tether.base_url, "https://a.example");
	assert_string_equal(c->tether.access_token, "tok");
	assert_int_equal(c->poll.nzones, 2);
	assert_string_equal(c->poll.zones[1], "5f06c1a541092788f683f3c7");
	assert_string_equal(c->metrics.listen, "127.0.0.1:9464");
	assert_int_equal(c->nmqtt, 1);
	assert_string_equal(c->mqtt[0].topic_prefix, "a/b");
	assert_string_equal(c->mqtt[0].host, "127.0.0.1");
	assert_string_equal(c->mqtt[0].client_id, "tether-bridge-h");
	assert_int_equal(c->nwebhooks, 2);
	assert_int_equal(c->webhooks[0].nheaders, 2);
	assert_string_equal(c->webhooks[0].headers[1].value, "b");
	assert_int_equal(c->webhooks[0].nsecrets, 1);
	assert_int_equal(c->webhooks[1].nsecrets, 1);
}

/* Fails every allocation of a load in turn: each load either fails with an error (or the
 * nomem mark) or, once the index passes the last allocation, succeeds. Before, the loader
 * called abort(), and a reload on SIGHUP could kill the daemon. */
static void sweep_allocation_failures(const char *text, bool valid)
{
	char path[64];
	long k;

	/* valgrind brings its own allocator, which bypasses the replacement: nothing to sweep */
	const char *preload = getenv("LD_PRELOAD");
	if (preload != NULL && strstr(preload, "vgpreload") != NULL)
		skip();
	write_temp(path, text);
	unsetenv("TB_TEST_UNSET_TOKEN");
	unsetenv("TB_TEST_UNSET_OLD");
	for (k = 0;; k++) {
		struct cfg_errors errs = {0};
		alloc_count = 0;
		alloc_failed = false;
		fail_at = k;
		struct config *c = config_load(path, &errs);
		fail_at = -1;
		/* a failure libc absorbs (stdio falls back to no buffer) may still load */
		if (c == NULL)
			assert_true(cfg_errors_since(&errs, 0));
		else
			assert_false(cfg_errors_since(&errs, 0));
		if (!alloc_failed && valid && c == NULL)
			cfg_errors_print(&errs, stderr);
		assert_true(alloc_failed || (valid == (c != NULL)));
		if (c != NULL) /* nothing lost on the way */
			assert_loaded_whole(c);
		config_free(c);
		cfg_errors_release(&errs);
		if (!alloc_failed)
			break;
	}
	unlink(path);
	assert_true(k > 20); /* the sweep went through the load's allocations */
}

static void test_allocation_failure_is_a_load_error(void **state)
{
	(void)state;
	sweep_allocation_failures(oom_cfg, true);
	sweep_allocation_failures(oom_bad_cfg, false);
}

static char *read_all(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct buf b;
	char chunk[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	buf_init(&b, 0);
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		buf_append(&b, chunk, n);
	fclose(f);
	return b.data ? buf_steal(&b) : strdup("");
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Each case folder holds config.yaml and error: the errors config_load reports, as
 * "LINE:COL: text", one per line, in order. */
/* 10,000 unknown keys, then the same 10,000 again: the loader reports the duplicates while
 * parsing and the unknown keys after, so the two runs interleave. check lists them down
 * the file, and at one line in the order reported (the sort was quadratic here). */
static void test_many_errors_are_sorted_stably(void **state)
{
	(void)state;
	enum { NKEYS = 10000, HEAD = 4 };
	struct cfg_errors errs = {0};
	size_t cap = (size_t)NKEYS * 2 * 16 + 256, len = 0;
	char *text = malloc(cap);
	assert_non_null(text);
	len += (size_t)snprintf(text + len, cap - len,
	                        "tether:\n  base_url: http://127.0.0.1:9\n  insecure: true\n"
	                        "  access_token: t\n");
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < NKEYS; i++)
			len += (size_t)snprintf(text + len, cap - len, "  k%d: %d\n", i, pass);
	assert_null(load_text(text, &errs));
	assert_int_equal(errs.n, 3 * NKEYS);
	for (size_t i = 0; i < NKEYS; i++) {
		assert_int_equal(errs.v[i].line, HEAD + 1 + (int)i);
		assert_non_null(strstr(errs.v[i].text, "unknown key"));
	}
	for (size_t i = 0; i < NKEYS; i++) {
		const struct cfg_error *dup = &errs.v[NKEYS + 2 * i], *unk = dup + 1;
		char want[64];
		snprintf(want, sizeof(want), "duplicate key 'k%zu'", i);
		assert_int_equal(dup->line, HEAD + 1 + NKEYS + (int)i);
		assert_string_equal(dup->text, want);
		assert_int_equal(unk->line, dup->line);
		snprintf(want, sizeof(want), "unknown key 'k%zu' in 'tether'", i);
		assert_string_equal(unk->text, want);
	}
	cfg_errors_release(&errs);
	free(text);
}

static void test_invalid_cases_report_expected_errors(void **state)
{
	(void)state;
	DIR *d = opendir(INVALID_DIR);
	struct dirent *de;
	char **names = NULL;
	size_t nnames = 0, failures = 0;

	unsetenv("TB_TEST_SURELY_UNSET_VAR");
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		names = realloc(names, (nnames + 1) * sizeof(*names));
		assert_non_null(names);
		names[nnames++] = strdup(de->d_name);
	}
	closedir(d);
	qsort(names, nnames, sizeof(*names), cmp_names);
	assert_true(nnames >= 30);
	for (size_t i = 0; i < nnames; i++) {
		char cpath[512], epath[512];
		struct cfg_errors errs = {0};
		struct buf got;
		snprintf(cpath, sizeof(cpath), "%s/%s/config.yaml", INVALID_DIR, names[i]);
		snprintf(epath, sizeof(epath), "%s/%s/error", INVALID_DIR, names[i]);
		char *want = read_all(epath);
		struct config *c = config_load(cpath, &errs);
		buf_init(&got, 0);
		for (size_t j = 0; j < errs.n; j++)
			buf_printf(&got, "%d:%d: %s\n", errs.v[j].line, errs.v[j].column,
			           errs.v[j].text);
		if (want == NULL || c != NULL || errs.n == 0 ||
		    strcmp(want, got.data ? got.data : "") != 0) {
			fprintf(stderr, "case %s:\n--- want\n%s--- got\n%s", names[i],
			        want ? want : "(no error file)\n", got.data ? got.data : "");
			failures++;
		}
		config_free(c);
		buf_release(&got);
		free(want);
		cfg_errors_release(&errs);
		free(names[i]);
	}
	free(names);
	assert_int_equal(failures, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_example_loads_with_values),
	    cmocka_unit_test(test_defaults_fill_absent_keys),
	    cmocka_unit_test(test_webhook_order_defaults_to_zone),
	    cmocka_unit_test(test_oauth_and_zone_list),
	    cmocka_unit_test(test_spec_example_loads),
	    cmocka_unit_test(test_env_expands_into_fields),
	    cmocka_unit_test(test_secret_file_is_read),
	    cmocka_unit_test(test_secrets_list_keeps_order),
	    cmocka_unit_test(test_dump_redacts_secrets),
	    cmocka_unit_test(test_metrics_listen_forms),
	    cmocka_unit_test(test_empty_file_is_an_error),
	    cmocka_unit_test(test_missing_file_is_an_error),
	    cmocka_unit_test(test_allocation_failure_is_a_load_error),
	    cmocka_unit_test(test_many_errors_are_sorted_stably),
	    cmocka_unit_test(test_invalid_cases_report_expected_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
