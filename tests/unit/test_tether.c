/* Unit tests for bridge/tether against a real tether-sim on 127.0.0.1: every endpoint, the
 * time format on the wire, each failure class, OAuth2 (exchange, refresh on 401, revoked
 * refresh), connection reuse, and the web links of the docs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bridge/tether.h"
#include "lib/util.h"
#include "rules/normalize.h"

#define OAUTH_TEST(f) cmocka_unit_test_setup_teardown(f, oauth_setup, oauth_teardown)
#define REDIRECT "http://127.0.0.1/callback"
#define REC "{\"data\":{\"id\":\"a\",\"type\":\"recordings\",\"attributes\":{}}"

struct simproc {
	pid_t pid;
	int port;
	char base[64];
	char dir[64]; /* temp folder: port file, state_dir */
};

static struct simproc g_sim; /* shared by the groups that do not touch tokens */
static char g_zone[64];      /* a zone created for these tests, location g_loc */
static const char *g_loc = "5f06c1a441092788f683f3c6";

/* --- the simulator process --- */

static void rm_dir(const char *dir)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "unable to remove '%s'\n", dir);
}

static int sim_start(struct simproc *p, const char *ttl)
{
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	char bin[256], portfile[128];
	int i;

	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "/tmp/test_tether.XXXXXX");
	if (mkdtemp(p->dir) == NULL)
		return -1;
	snprintf(bin, sizeof(bin), "%s/tether-sim", build);
	snprintf(portfile, sizeof(portfile), "%s/port", p->dir);
	p->pid = fork();
	if (p->pid < 0)
		return -1;
	if (p->pid == 0) {
		int fd = open("/dev/null", O_WRONLY);
		if (fd >= 0)
			dup2(fd, 1);
		execl(bin, bin, "--port", "0", "--port-file", portfile, "--quiet", "--zones", "2",
		      "--client-id", "sim-client", "--client-secret", "sim-secret",
		      "--access-token", "sim-static-token", "--token-ttl", ttl, (char *)NULL);
		perror(bin);
		_exit(127);
	}
	for (i = 0; i < 1000; i++) { /* up to 10 s under sanitizers */
		FILE *f = fopen(portfile, "r");
		if (f) {
			int ok = fscanf(f, "%d", &p->port) == 1;
			fclose(f);
			if (ok && p->port > 0) {
				snprintf(p->base, sizeof(p->base), "http://127.0.0.1:%d", p->port);
				return 0;
			}
		}
		if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
			p->pid = 0;
			return -1;
		}
		usleep(10000);
	}
	return -1;
}

static void sim_stop(struct simproc *p)
{
	int i;
	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		for (i = 0; i < 300 && waitpid(p->pid, NULL, WNOHANG) == 0; i++)
			usleep(10000);
		if (i == 300) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
		}
		p->pid = 0;
	}
	if (p->dir[0])
		rm_dir(p->dir);
}

static size_t collect(char *d, size_t s, size_t n, void *ud)
{
	return buf_append(ud, d, s * n) < 0 ? 0 : s * n;
}

/* Plain HTTP to the sim (admin API, /oauth/authorize); redirects are not followed. */
static long http(const struct simproc *p, const char *method, const char *path, const char *body,
                 json_t **out, char *location, size_t locsz)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	struct buf b;
	char url[512];
	long code = 0;
	char *loc = NULL;

	buf_init(&b, 0);
	snprintf(url, sizeof(url), "%s%s", p->base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (location && curl_easy_getinfo(c, CURLINFO_REDIRECT_URL, &loc) == CURLE_OK && loc)
		snprintf(location, locsz, "%s", loc);
	if (out)
		*out = b.len ? json_loadb(b.data, b.len, 0, NULL) : NULL;
	buf_release(&b);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return code;
}

static void fault(const struct simproc *p, const char *json)
{
	assert_int_equal(http(p, "POST", "/_sim/faults", json, NULL, NULL, 0), 201);
}

static void clear_log(const struct simproc *p)
{
	long code = http(p, "DELETE", "/_sim/requests", NULL, NULL, NULL, 0);
	assert_true(code >= 200 && code < 300);
}

/* The API and OAuth requests the sim saw (admin requests left out); caller json_decref. */
static json_t *api_log(const struct simproc *p)
{
	json_t *o = NULL, *out = json_array(), *v;
	size_t i;

	assert_int_equal(http(p, "GET", "/_sim/requests", NULL, &o, NULL, 0), 200);
	json_array_foreach(json_object_get(o, "requests"), i, v)
	{
		const char *path = json_string_value(json_object_get(v, "path"));
		if (path && strncmp(path, "/_sim", 5) != 0)
			json_array_append(out, v);
	}
	json_decref(o);
	return out;
}

static const char *log_str(json_t *log, size_t i, const char *key)
{
	return json_string_value(json_object_get(json_array_get(log, i), key));
}

static long log_status(json_t *log, size_t i)
{
	return (long)json_integer_value(json_object_get(json_array_get(log, i), "status"));
}

/* --- clients --- */

static struct tether_opts static_opts(const struct simproc *p)
{
	struct tether_opts o = {
	    .base_url = p->base,
	    .access_token = "sim-static-token",
	    .insecure = true,
	    .concurrency = 8,
	    .timeout_ms = 10000,
	};
	return o;
}

static struct tether *client(const struct tether_opts *o)
{
	char err[256] = "";
	struct tether *t = tether_new(o, err, sizeof(err));
	if (t == NULL)
		fail_msg("tether_new: %s", err);
	return t;
}

static struct tether_req req(enum tether_endpoint ep, const char *zone)
{
	struct tether_req r = {.ep = ep, .zone_id = zone, .from_ms = -1, .to_ms = -1, .at_ms = -1};
	return r;
}

/* Runs one request with a static-token client on g_sim; the caller releases. */
static void run_one(struct tether_req *r, const struct tether_opts *o)
{
	struct tether *t = client(o);
	assert_int_equal(tether_run(t, r, 1), 0);
	tether_free(t);
}

static void run_one_batch(struct tether_req *r, size_t n, const struct tether_opts *o)
{
	struct tether *t = client(o);
	assert_int_equal(tether_run(t, r, n), 0);
	tether_free(t);
}

static int64_t ms_of(const char *iso)
{
	int64_t ms;
	assert_int_equal(util_parse_time(iso, &ms, NULL), 0);
	return ms;
}

static bool data_has_id(const json_t *doc, const char *id)
{
	size_t i;
	json_t *v;
	json_array_foreach(json_object_get(doc, "data"), i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "id")), id) == 0)
			return true;
	}
	return false;
}

/* --- group with the shared simulator --- */

static int group_setup(void **state)
{
	json_t *o = NULL;
	char body[128];
	(void)state;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (sim_start(&g_sim, "3600") < 0) {
		fprintf(stderr, "unable to start tether-sim (BUILD=%s)\n",
		        getenv("BUILD") ? getenv("BUILD") : "build");
		return -1;
	}
	snprintf(body, sizeof(body), "{\"name\":\"Front door\",\"location_id\":\"%s\"}", g_loc);
	if (http(&g_sim, "POST", "/_sim/zones", body, &o, NULL, 0) != 201 || o == NULL)
		return -1;
	snprintf(g_zone, sizeof(g_zone), "%s",
	         json_string_value(json_object_get(json_object_get(o, "data"), "id")));
	json_decref(o);
	return g_zone[0] ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	sim_stop(&g_sim);
	curl_global_cleanup();
	return 0;
}

static void test_status_names(void **state)
{
	(void)state;
	assert_string_equal(tether_status_name(TETHER_OK), "ok");
	assert_string_equal(tether_status_name(TETHER_E_RATE), "rate");
	assert_string_equal(tether_status_name(TETHER_E_PAYLOAD), "payload");
	assert_string_equal(tether_status_name(TETHER_E_NOMEM), "nomem");
}

static void test_zones_list_and_location_filter(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req all = req(TETHER_ZONES, NULL), one = req(TETHER_ZONES, NULL);
	struct tether_req both[2];
	struct tether_zone *z;
	size_t n;
	char err[128];
	(void)state;

	one.location_id = g_loc;
	both[0] = all;
	both[1] = one;
	struct tether *t = client(&o);
	assert_int_equal(tether_run(t, both, 2), 0);
	tether_free(t);
	assert_int_equal(both[0].status, TETHER_OK);
	assert_int_equal(both[1].status, TETHER_OK);
	assert_int_equal(both[0].http_status, 200);
	assert_true(json_array_size(json_object_get(both[0].doc, "data")) >= 3);
	assert_int_equal(tether_zones_list(both[1].doc, &z, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 1);
	assert_string_equal(z[0].id, g_zone);
	assert_string_equal(z[0].name, "Front door");
	free(z);
	tether_req_release(&both[0]);
	tether_req_release(&both[1]);
}

static void test_events_window_sends_api_time_format(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_EVENTS, g_zone);
	json_t *ev = NULL, *log;
	char body[512], want[256];
	const char *id;
	(void)state;

	snprintf(body, sizeof(body),
	         "{\"zone_id\":\"%s\",\"starts_at\":\"2020-06-12T15:03:09.019Z\","
	         "\"ends_at\":\"2020-06-12T15:10:00.000Z\",\"complete\":true,"
	         "\"severity\":\"normal\",\"flags\":[\"intrusion\"]}",
	         g_zone);
	assert_int_equal(http(&g_sim, "POST", "/_sim/events", body, &ev, NULL, 0), 201);
	id = json_string_value(json_object_get(json_object_get(ev, "data"), "id"));
	assert_non_null(id);
	clear_log(&g_sim);

	r.from_ms = ms_of("2020-06-12T15:00:00Z");
	r.to_ms = ms_of("2020-06-12T16:00:00.5Z");
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_OK);
	assert_true(data_has_id(r.doc, id));

	log = api_log(&g_sim);
	assert_int_equal(json_array_size(log), 1);
	assert_string_equal(log_str(log, 0, "method"), "GET");
	assert_string_equal(log_str(log, 0, "path"), "/api/v3p/events");
	assert_string_equal(log_str(log, 0, "auth"), "bearer");
	snprintf(want, sizeof(want),
	         "zone_id=%s&from=2020-06-12%%2015%%3A00%%3A00.000%%20UTC"
	         "&to=2020-06-12%%2016%%3A00%%3A00.500%%20UTC",
	         g_zone);
	assert_string_equal(log_str(log, 0, "query"), want);
	json_decref(log);
	json_decref(ev);
	tether_req_release(&r);
}

static void test_events_at_finds_event(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_EVENTS_AT, g_zone);
	json_t *ev = NULL, *log;
	char body[512], want[256];
	(void)state;

	snprintf(body, sizeof(body),
	         "{\"zone_id\":\"%s\",\"starts_at\":\"2021-03-01T10:00:00Z\","
	         "\"ends_at\":\"2021-03-01T10:20:00Z\",\"complete\":true}",
	         g_zone);
	assert_int_equal(http(&g_sim, "POST", "/_sim/events", body, &ev, NULL, 0), 201);
	clear_log(&g_sim);
	r.at_ms = ms_of("2021-03-01T10:05:00Z");
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_OK);
	assert_true(data_has_id(
	    r.doc, json_string_value(json_object_get(json_object_get(ev, "data"), "id"))));
	log = api_log(&g_sim);
	snprintf(want, sizeof(want), "zone_id=%s&at=2021-03-01%%2010%%3A05%%3A00.000%%20UTC",
	         g_zone);
	assert_string_equal(log_str(log, 0, "query"), want);
	json_decref(log);
	json_decref(ev);
	tether_req_release(&r);
}

static void test_lpr_window_returns_plate(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_LPR, g_zone);
	json_t *p = NULL, *log;
	char body[256], want[256];
	(void)state;

	snprintf(body, sizeof(body),
	         "{\"zone_id\":\"%s\",\"plate_number\":\"AB12CDE\","
	         "\"country\":\"GBR\",\"starts_at\":\"2020-03-05T08:51:46.895Z\"}",
	         g_zone);
	assert_int_equal(http(&g_sim, "POST", "/_sim/lprs", body, &p, NULL, 0), 201);
	clear_log(&g_sim);
	r.from_ms = ms_of("2020-03-05T08:00:00Z");
	r.to_ms = ms_of("2020-03-05T09:00:00Z");
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_OK);
	assert_true(data_has_id(
	    r.doc, json_string_value(json_object_get(json_object_get(p, "data"), "id"))));
	log = api_log(&g_sim);
	assert_string_equal(log_str(log, 0, "path"), "/api/v3p/lpr");
	snprintf(want, sizeof(want),
	         "zone_id=%s&starts_at=2020-03-05%%2008%%3A00%%3A00.000%%20UTC"
	         "&ends_at=2020-03-05%%2009%%3A00%%3A00.000%%20UTC",
	         g_zone);
	assert_string_equal(log_str(log, 0, "query"), want);
	json_decref(log);
	json_decref(p);
	tether_req_release(&r);
}

static void test_perspectives_and_live_switch(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_PERSPECTIVES, NULL), sw = req(TETHER_LIVE_SWITCH, NULL);
	char path[128];
	json_t *log;
	(void)state;

	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_OK);
	assert_true(json_array_size(json_object_get(r.doc, "data")) > 0);
	sw.id = json_string_value(
	    json_object_get(json_array_get(json_object_get(r.doc, "data"), 0), "id"));
	clear_log(&g_sim);
	run_one(&sw, &o);
	assert_int_equal(sw.status, TETHER_OK);
	assert_int_equal(sw.http_status, 200);
	log = api_log(&g_sim);
	snprintf(path, sizeof(path), "/api/v3p/perspectives/%s/live_switch_preset", sw.id);
	assert_string_equal(log_str(log, 0, "method"), "POST");
	assert_string_equal(log_str(log, 0, "path"), path);
	json_decref(log);
	tether_req_release(&sw);
	tether_req_release(&r);
}

static void test_live_switch_unknown_preset_is_client_error(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req sw = req(TETHER_LIVE_SWITCH, NULL);
	(void)state;

	sw.id = "000000000000000000000000";
	run_one(&sw, &o);
	assert_int_equal(sw.status, TETHER_E_CLIENT);
	assert_int_equal(sw.http_status, 404);
	assert_string_equal(sw.error, "HTTP 404 from /api/v3p/perspectives/000000000000000000000000"
	                              "/live_switch_preset");
	assert_null(sw.doc);
}

static void test_recordings_list_and_single_with_included(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req l = req(TETHER_RECORDINGS, g_zone), one = req(TETHER_RECORDING, NULL);
	json_t *log;
	(void)state;

	run_one(&l, &o);
	assert_int_equal(l.status, TETHER_OK);
	assert_true(json_array_size(json_object_get(l.doc, "data")) > 0);
	one.id = json_string_value(
	    json_object_get(json_array_get(json_object_get(l.doc, "data"), 0), "id"));
	clear_log(&g_sim);
	run_one(&one, &o);
	assert_int_equal(one.status, TETHER_OK);
	assert_true(json_is_object(json_object_get(one.doc, "data")));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(one.doc, "data"), "id")), one.id);
	assert_true(json_array_size(json_object_get(one.doc, "included")) > 0);
	log = api_log(&g_sim);
	assert_int_equal(strncmp(log_str(log, 0, "path"), "/api/v3p/recordings/", 20), 0);
	json_decref(log);
	tether_req_release(&one);
	tether_req_release(&l);
}

static void test_recordings_at_sends_time(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req l = req(TETHER_RECORDINGS, g_zone);
	json_t *log;
	char want[256];
	(void)state;

	clear_log(&g_sim);
	l.at_ms = ms_of("2020-07-04T15:36:30Z");
	run_one(&l, &o);
	assert_int_equal(l.status, TETHER_OK);
	log = api_log(&g_sim);
	snprintf(want, sizeof(want), "zone_id=%s&at=2020-07-04%%2015%%3A36%%3A30.000%%20UTC",
	         g_zone);
	assert_string_equal(log_str(log, 0, "query"), want);
	json_decref(log);
	tether_req_release(&l);
}

static void test_missing_zone_id_fails_without_request(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_EVENTS, NULL), at = req(TETHER_EVENTS_AT, g_zone);
	json_t *log;
	(void)state;

	clear_log(&g_sim);
	run_one(&r, &o);
	run_one(&at, &o);
	assert_int_equal(r.status, TETHER_E_CLIENT);
	assert_string_equal(r.error, "zone_id is required for /api/v3p/events");
	assert_int_equal(at.status, TETHER_E_CLIENT);
	assert_string_equal(at.error, "at is required for /api/v3p/events");
	log = api_log(&g_sim);
	assert_int_equal(json_array_size(log), 0);
	json_decref(log);
}

static void test_server_error_is_server(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_ZONES, NULL);
	(void)state;

	fault(&g_sim, "{\"count\":1,\"status\":500,\"path\":\"/api/v3p/zones\"}");
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_E_SERVER);
	assert_int_equal(r.http_status, 500);
	assert_int_equal(r.retry_after_ms, -1);
	assert_string_equal(r.error, "HTTP 500 from /api/v3p/zones");
	assert_null(r.doc);
}

static void test_rate_limit_reports_retry_after_seconds(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_EVENTS, g_zone);
	(void)state;

	fault(&g_sim, "{\"count\":1,\"status\":429,\"retry_after\":\"3\","
	              "\"path\":\"/api/v3p/events\"}");
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_E_RATE);
	assert_int_equal(r.http_status, 429);
	assert_int_equal(r.retry_after_ms, 3000);
}

/* A 429 pauses the whole batch: what was not sent yet is held (not sent, same Retry-After),
 * so the caller asks again after the pause instead of right after the 429. */
static void test_rate_limit_holds_unsent_requests(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r[3];
	json_t *log;
	(void)state;

	o.concurrency = 1;
	for (size_t i = 0; i < 3; i++)
		r[i] = req(TETHER_EVENTS, g_zone);
	fault(&g_sim, "{\"count\":1,\"status\":429,\"retry_after\":\"2\","
	              "\"path\":\"/api/v3p/events\"}");
	clear_log(&g_sim);
	run_one_batch(r, 3, &o);
	assert_int_equal(r[0].status, TETHER_E_RATE);
	assert_int_equal(r[0].http_status, 429);
	for (size_t i = 1; i < 3; i++) {
		assert_int_equal(r[i].status, TETHER_E_RATE);
		assert_int_equal(r[i].http_status, 0);
		assert_int_equal(r[i].retry_after_ms, 2000);
		assert_string_equal(r[i].error,
		                    "not sent: rate limited (HTTP 429 from /api/v3p/events)");
		assert_null(r[i].doc);
	}
	log = api_log(&g_sim);
	assert_int_equal(json_array_size(log), 1);
	json_decref(log);
}

static void test_retry_after_http_date(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_ZONES, NULL);
	char date[64], body[160];
	time_t when = time(NULL) + 120;
	struct tm tm;
	(void)state;

	gmtime_r(&when, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	snprintf(body, sizeof(body),
	         "{\"count\":1,\"status\":503,\"retry_after\":\"%s\","
	         "\"path\":\"/api/v3p/zones\"}",
	         date);
	fault(&g_sim, body);
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_E_SERVER);
	assert_int_equal(r.http_status, 503);
	assert_in_range(r.retry_after_ms, 100000, 121000);
}

static void test_malformed_json_is_payload_with_excerpt(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_EVENTS, g_zone);
	(void)state;

	fault(&g_sim, "{\"count\":1,\"body\":\"malformed\",\"path\":\"/api/v3p/events\"}");
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_E_PAYLOAD);
	assert_int_equal(r.http_status, 200);
	assert_non_null(strstr(r.error, "invalid JSON from /api/v3p/events"));
	assert_int_equal(strncmp(r.excerpt, "{\"data\":[{\"id\":", 15), 0);
	assert_null(r.doc);
}

static void test_truncated_body_is_payload(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_EVENTS, g_zone);
	(void)state;

	fault(&g_sim, "{\"count\":1,\"body\":\"truncated\",\"path\":\"/api/v3p/events\"}");
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_E_PAYLOAD);
	assert_non_null(strstr(r.error, "invalid JSON"));
	assert_true(r.excerpt[0] != '\0');
}

static void test_connection_cut_mid_body_is_payload(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_ZONES, NULL);
	(void)state;

	fault(&g_sim, "{\"count\":1,\"body\":\"cut\",\"path\":\"/api/v3p/zones\"}");
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_E_PAYLOAD);
	assert_string_equal(r.error, "truncated response from /api/v3p/zones");
}

static void test_wrong_shape_is_payload_naming_field(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_EVENTS, g_zone);
	(void)state;

	fault(&g_sim, "{\"count\":1,\"body\":\"wrong-shape\",\"path\":\"/api/v3p/events\"}");
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_E_PAYLOAD);
	assert_string_equal(r.error, "data: expected an array");
	assert_int_equal(strncmp(r.excerpt, "{\"data\":{", 9), 0);
	assert_null(r.doc);
}

static void test_huge_body_over_cap_is_payload(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_ZONES, NULL);
	(void)state;

	o.max_body = 4096;
	fault(&g_sim, "{\"count\":1,\"body\":\"huge\",\"path\":\"/api/v3p/zones\"}");
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_E_PAYLOAD);
	assert_string_equal(r.error, "response larger than 4096 bytes from /api/v3p/zones");
	assert_null(r.doc);
}

/* {"data":[{},{},...]}: little text, a big tree. Over TETHER_MAX_RESOURCES the document is
 * refused whatever the endpoint (events are otherwise checked one by one by the poller). */
static void test_too_many_resources_is_payload_naming_count(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_EVENTS, g_zone);
	(void)state;

	fault(&g_sim, "{\"count\":1,\"body\":\"many\",\"resources\":30000,"
	              "\"path\":\"/api/v3p/events\"}");
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_E_PAYLOAD);
	assert_string_equal(r.error, "data: 30000 resources, more than 20000");
	assert_null(r.doc);
}

/* A big raw answer's body handed back with tether_req_recycle holds the next raw answer
 * (its pages are already there); what the client keeps is freed by tether_spare_release
 * and tether_free (LeakSanitizer and valgrind run this too). */
static void test_recycled_body_holds_the_next_raw_answer(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether *t = client(&o);
	struct tether_req r = req(TETHER_EVENTS, g_zone), r2 = r, r3 = r;
	char *first;
	(void)state;

	r.raw = r2.raw = r3.raw = true;
	fault(&g_sim, "{\"count\":3,\"body\":\"many\",\"resources\":100000,"
	              "\"path\":\"/api/v3p/events\"}");
	assert_int_equal(tether_run(t, &r, 1), 0);
	assert_int_equal(r.status, TETHER_OK);
	assert_true(r.body_len > 256 * 1024);
	first = r.body;
	tether_req_recycle(t, &r);
	assert_null(r.body);
	assert_int_equal(tether_run(t, &r2, 1), 0);
	assert_int_equal(r2.status, TETHER_OK);
	assert_ptr_equal(r2.body, first);
	assert_true(r2.body_len > 256 * 1024);
	/* given back again, then let go: the next answer has a buffer of its own */
	tether_req_recycle(t, &r2);
	tether_spare_release(t);
	assert_int_equal(tether_run(t, &r3, 1), 0);
	assert_int_equal(r3.status, TETHER_OK);
	tether_req_recycle(t, &r3);
	tether_free(t); /* frees what it keeps: valgrind and LeakSanitizer would tell */
}

/* The memory a batch's parsed documents take is bounded, not only their text. */
static void test_document_over_memory_budget_is_payload(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r[2] = {req(TETHER_EVENTS, g_zone), req(TETHER_ZONES, NULL)};
	(void)state;

	o.max_doc_memory = 1024 * 1024;
	o.concurrency = 1;
	fault(&g_sim, "{\"count\":1,\"body\":\"many\",\"resources\":19000,"
	              "\"path\":\"/api/v3p/events\"}");
	run_one_batch(r, 2, &o);
	assert_int_equal(r[0].status, TETHER_E_PAYLOAD);
	assert_non_null(strstr(r[0].error, "document from /api/v3p/events needs more than"));
	assert_null(r[0].doc);
	/* the next document of the batch is parsed as usual */
	assert_int_equal(r[1].status, TETHER_OK);
	assert_true(r[1].doc_memory > 0);
	tether_req_release(&r[1]);
}

static void test_delay_beyond_timeout_is_timeout(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_PERSPECTIVES, NULL);
	(void)state;

	o.timeout_ms = 200;
	fault(&g_sim, "{\"count\":1,\"delay_ms\":1000,\"path\":\"/api/v3p/perspectives\"}");
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_E_TIMEOUT);
	assert_non_null(strstr(r.error, "timed out"));
}

static void test_connection_refused_is_network(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_ZONES, NULL);
	char base[64];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	(void)state;

	/* a port that was free a moment ago and has no listener */
	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd);
	snprintf(base, sizeof(base), "http://127.0.0.1:%u", ntohs(sa.sin_port));
	o.base_url = base;
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_E_NETWORK);
	assert_int_equal(r.http_status, 0);
	assert_true(r.error[0] != '\0');
}

static void test_static_token_never_refreshes(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r = req(TETHER_ZONES, NULL);
	json_t *log;
	(void)state;

	o.access_token = "not-the-sim-token";
	o.client_id = "sim-client";
	o.client_secret = "sim-secret";
	clear_log(&g_sim);
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_E_AUTH);
	assert_int_equal(r.http_status, 401);
	assert_string_equal(r.error, "HTTP 401 from /api/v3p/zones");
	log = api_log(&g_sim);
	assert_int_equal(json_array_size(log), 1); /* no /oauth/token, no retry */
	json_decref(log);
}

static void test_http_base_url_needs_insecure(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	char err[256] = "";
	(void)state;

	o.insecure = false;
	assert_null(tether_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "https://"));
}

/* The config owns the defaults: options it did not fill are refused, not guessed. */
static void test_unset_concurrency_or_timeout_refused(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	char err[256] = "";
	(void)state;

	o.concurrency = 0;
	assert_null(tether_new(&o, err, sizeof(err)));
	assert_non_null(strstr(err, "concurrency"));
	o = static_opts(&g_sim);
	o.timeout_ms = 0;
	assert_null(tether_new(&o, err, sizeof(err)));
}

static void test_batches_reuse_connections(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r[20];
	struct tether *t;
	long first;
	json_t *log;
	size_t i;
	(void)state;

	o.concurrency = 4;
	t = client(&o);
	for (i = 0; i < 20; i++) {
		r[i] = req(i % 2 ? TETHER_ZONES : TETHER_EVENTS, g_zone);
		r[i].from_ms = 0;
	}
	clear_log(&g_sim);
	assert_int_equal(tether_run(t, r, 20), 0);
	for (i = 0; i < 20; i++) {
		assert_int_equal(r[i].status, TETHER_OK);
		assert_non_null(r[i].doc);
	}
	first = tether_connections(t);
	assert_in_range(first, 1, 4);
	/* the second batch, docs from the first released by tether_run */
	assert_int_equal(tether_run(t, r, 20), 0);
	for (i = 0; i < 20; i++)
		assert_int_equal(r[i].status, TETHER_OK);
	assert_int_equal(tether_connections(t), first);
	/* every request reached the server (a slow run under valgrind may see curl resend one
	 * whose kept-alive connection the server had just closed, hence "at least") */
	log = api_log(&g_sim);
	assert_true(json_array_size(log) >= 40);
	json_decref(log);
	for (i = 0; i < 20; i++)
		tether_req_release(&r[i]);
	tether_free(t);
}

/* Descriptors open in this process. */
static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* The client opens and closes its sockets itself (it tracks them to acknowledge answers at
 * once): every one is closed by tether_free, however many batches used them. */
static void test_free_closes_every_connection(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether_req r[12];
	struct tether *t;
	int before = open_fds();
	(void)state;

	o.concurrency = 3;
	t = client(&o);
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < 12; i++)
			r[i] = req(i % 2 ? TETHER_ZONES : TETHER_LPR, g_zone);
		assert_int_equal(tether_run(t, r, 12), 0);
		for (size_t i = 0; i < 12; i++) {
			assert_int_equal(r[i].status, TETHER_OK);
			tether_req_release(&r[i]);
		}
	}
	assert_true(tether_connections(t) >= 1);
	assert_true(open_fds() > before); /* the pool's connections are open */
	tether_free(t);
	assert_int_equal(open_fds(), before);
}

/* --- OAuth2: a fresh simulator per test --- */

static int oauth_setup(void **state)
{
	struct simproc *p = calloc(1, sizeof(*p));
	if (p == NULL || sim_start(p, "3600") < 0) {
		free(p);
		return -1;
	}
	*state = p;
	return 0;
}

static int oauth_teardown(void **state)
{
	sim_stop(*state);
	free(*state);
	return 0;
}

static struct tether_opts oauth_opts(const struct simproc *p)
{
	struct tether_opts o = {
	    .base_url = p->base,
	    .client_id = "sim-client",
	    .client_secret = "sim-secret",
	    .redirect_uri = REDIRECT,
	    .state_dir = p->dir,
	    .insecure = true,
	    .concurrency = 8,
	    .timeout_ms = 10000,
	};
	return o;
}

/* Authorises like a browser would: GET /oauth/authorize, read the code off the redirect. */
static void get_code(const struct simproc *p, char *code, size_t codesz)
{
	struct tether_opts o = oauth_opts(p);
	char *url, loc[1024] = "";
	const char *c;

	assert_int_equal(tether_auth_url(&o, &url), 0);
	assert_int_equal(strncmp(url, p->base, strlen(p->base)), 0);
	assert_int_equal(http(p, "GET", url + strlen(p->base), NULL, NULL, loc, sizeof(loc)), 302);
	free(url);
	assert_int_equal(strncmp(loc, REDIRECT "?", strlen(REDIRECT) + 1), 0);
	c = strstr(loc, "code=");
	assert_non_null(c);
	snprintf(code, codesz, "%.*s", (int)strcspn(c + 5, "&"), c + 5);
}

static struct tether *authorised_client(const struct simproc *p)
{
	struct tether_opts o = oauth_opts(p);
	struct tether *t = client(&o);
	char code[128], err[256] = "";

	get_code(p, code, sizeof(code));
	if (tether_auth_exchange(t, code, err, sizeof(err)) != 0)
		fail_msg("exchange: %s", err);
	return t;
}

static json_t *read_token(const struct simproc *p)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/token.json", p->dir);
	json_t *o = json_load_file(path, 0, NULL);
	assert_non_null(o);
	return o;
}

/* Overwrites one field of token.json (a string, or an integer when s is NULL). */
static void edit_token(const struct simproc *p, const char *key, const char *s, json_int_t i)
{
	char path[128];
	json_t *o = read_token(p);
	snprintf(path, sizeof(path), "%s/token.json", p->dir);
	json_object_set_new(o, key, s ? json_string(s) : json_integer(i));
	assert_int_equal(json_dump_file(o, path, 0), 0);
	json_decref(o);
}

static size_t count_path(json_t *log, const char *path)
{
	size_t i, n = 0;
	for (i = 0; i < json_array_size(log); i++)
		n += strcmp(log_str(log, i, "path"), path) == 0;
	return n;
}

static void test_auth_url_has_client_redirect_and_code(void **state)
{
	struct tether_opts o = {.base_url = "https://my.timeline.is/",
	                        .client_id = "YOUR_API_KEY",
	                        .redirect_uri = "https://my.site.com/callback/url"};
	char *url;
	(void)state;

	assert_int_equal(tether_auth_url(&o, &url), 0);
	assert_string_equal(url, "https://my.timeline.is/oauth/authorize?client_id=YOUR_API_KEY"
	                         "&redirect_uri=https%3A%2F%2Fmy.site.com%2Fcallback%2Furl"
	                         "&response_type=code");
	free(url);
	o.redirect_uri = NULL;
	assert_int_equal(tether_auth_url(&o, &url), -1);
	assert_null(url);
}

static void test_exchange_writes_private_token_file(void **state)
{
	struct simproc *p = *state;
	struct tether_req r = req(TETHER_ZONES, NULL);
	struct tether_opts o = oauth_opts(p);
	struct tether *t = authorised_client(p), *t2;
	char path[128];
	struct stat st;
	json_t *tok, *log;
	int64_t now = util_now_ms() / 1000;

	snprintf(path, sizeof(path), "%s/token.json", p->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	tok = read_token(p);
	assert_true(json_string_length(json_object_get(tok, "access_token")) > 0);
	assert_true(json_string_length(json_object_get(tok, "refresh_token")) > 0);
	assert_string_equal(json_string_value(json_object_get(tok, "token_type")), "Bearer");
	assert_in_range(json_integer_value(json_object_get(tok, "expires_at")), now + 3500,
	                now + 3700);
	json_decref(tok);

	clear_log(p);
	assert_int_equal(tether_run(t, &r, 1), 0);
	assert_int_equal(r.status, TETHER_OK);
	tether_req_release(&r);
	tether_free(t);
	/* a new client (a restart) uses the saved token */
	t2 = client(&o);
	assert_int_equal(tether_run(t2, &r, 1), 0);
	assert_int_equal(r.status, TETHER_OK);
	tether_req_release(&r);
	tether_free(t2);
	log = api_log(p);
	assert_int_equal(json_array_size(log), 2);
	assert_string_equal(log_str(log, 0, "auth"), "bearer");
	assert_string_equal(log_str(log, 1, "auth"), "bearer");
	json_decref(log);
}

static void test_exchange_with_bad_code_fails(void **state)
{
	struct simproc *p = *state;
	struct tether_opts o = oauth_opts(p);
	struct tether *t = client(&o);
	char err[256] = "";

	assert_int_equal(tether_auth_exchange(t, "not-a-code", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "HTTP 400 from /oauth/token: invalid_grant"));
	tether_free(t);
}

static void test_no_token_file_is_auth_error(void **state)
{
	struct simproc *p = *state;
	struct tether_opts o = oauth_opts(p);
	struct tether_req r = req(TETHER_ZONES, NULL);
	json_t *log;

	clear_log(p);
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_E_AUTH);
	assert_non_null(strstr(r.error, "no OAuth2 token in"));
	assert_non_null(strstr(r.error, "tether-bridge auth url"));
	log = api_log(p);
	assert_int_equal(json_array_size(log), 0);
	json_decref(log);
}

static void test_rejected_access_token_refreshes_and_retries_once(void **state)
{
	struct simproc *p = *state;
	struct tether_opts o = oauth_opts(p);
	struct tether_req r = req(TETHER_ZONES, NULL);
	json_t *before, *after, *log;

	tether_free(authorised_client(p));
	edit_token(p, "access_token", "0000dead", 0); /* what the API no longer accepts */
	before = read_token(p);
	clear_log(p);
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_OK);
	assert_int_equal(r.http_status, 200);
	log = api_log(p);
	assert_int_equal(json_array_size(log), 3);
	assert_string_equal(log_str(log, 0, "path"), "/api/v3p/zones");
	assert_int_equal(log_status(log, 0), 401);
	assert_string_equal(log_str(log, 1, "path"), "/oauth/token");
	assert_int_equal(log_status(log, 1), 200);
	assert_string_equal(log_str(log, 2, "path"), "/api/v3p/zones");
	assert_int_equal(log_status(log, 2), 200);
	/* the new tokens were saved, the refresh token rotated */
	after = read_token(p);
	assert_string_not_equal(json_string_value(json_object_get(after, "access_token")),
	                        "0000dead");
	assert_string_not_equal(json_string_value(json_object_get(after, "refresh_token")),
	                        json_string_value(json_object_get(before, "refresh_token")));
	json_decref(after);
	json_decref(before);
	json_decref(log);
	tether_req_release(&r);
}

static void test_batch_of_401s_refreshes_once(void **state)
{
	struct simproc *p = *state;
	struct tether_opts o = oauth_opts(p);
	struct tether_req r[6];
	struct tether *t;
	json_t *log;
	size_t i;

	tether_free(authorised_client(p));
	edit_token(p, "access_token", "0000dead", 0);
	o.concurrency = 3;
	t = client(&o);
	for (i = 0; i < 6; i++)
		r[i] = req(TETHER_PERSPECTIVES, NULL);
	clear_log(p);
	assert_int_equal(tether_run(t, r, 6), 0);
	for (i = 0; i < 6; i++) {
		assert_int_equal(r[i].status, TETHER_OK);
		tether_req_release(&r[i]);
	}
	tether_free(t);
	log = api_log(p);
	assert_int_equal(count_path(log, "/oauth/token"), 1);
	json_decref(log);
}

static void test_revoked_refresh_token_is_auth_with_hint(void **state)
{
	struct simproc *p = *state;
	struct tether *t = authorised_client(p);
	struct tether_req r = req(TETHER_ZONES, NULL);
	json_t *log;

	/* count 0: only the revocation, no fault on a request */
	fault(p, "{\"count\":0,\"revoke_tokens\":true}");
	clear_log(p);
	assert_int_equal(tether_run(t, &r, 1), 0);
	assert_int_equal(r.status, TETHER_E_AUTH);
	assert_non_null(strstr(r.error, "token refresh failed: HTTP 400 from /oauth/token: "
	                                "invalid_grant"));
	assert_non_null(strstr(r.error, "; run 'tether-bridge auth url' to authorise again"));
	assert_null(r.doc);
	log = api_log(p);
	assert_int_equal(count_path(log, "/api/v3p/zones"), 1); /* no retry */
	assert_int_equal(count_path(log, "/oauth/token"), 1);
	json_decref(log);
	tether_free(t);
}

/* `auth refresh` (another client on the same token.json) spends the daemon's refresh
 * token: the daemon's next refresh gets invalid_grant, finds the new token in token.json and
 * goes on with it instead of asking for a new authorisation. */
static void test_refresh_after_another_process_refreshed_uses_token_file(void **state)
{
	struct simproc *p = *state;
	struct tether_opts o = oauth_opts(p);
	struct tether *daemon = authorised_client(p), *cli = client(&o);
	struct tether_req r = req(TETHER_ZONES, NULL);
	char err[256] = "";
	json_t *log;

	assert_int_equal(tether_auth_refresh(cli, err, sizeof(err)), 0);
	tether_free(cli);
	fault(p, "{\"count\":1,\"status\":401,\"path\":\"/api/v3p/zones\"}");
	clear_log(p);
	assert_int_equal(tether_run(daemon, &r, 1), 0);
	if (r.status != TETHER_OK)
		fail_msg("%s: %s", tether_status_name(r.status), r.error);
	log = api_log(p);
	assert_int_equal(json_array_size(log), 3);
	assert_int_equal(log_status(log, 0), 401);
	assert_string_equal(log_str(log, 1, "path"), "/oauth/token");
	assert_int_equal(log_status(log, 1), 400);
	assert_int_equal(log_status(log, 2), 200);
	json_decref(log);
	tether_req_release(&r);

	/* the command line does the same: its refresh retries with the token in the file */
	cli = client(&o);
	assert_int_equal(tether_auth_refresh(cli, err, sizeof(err)), 0);
	tether_free(cli);
	if (tether_auth_refresh(daemon, err, sizeof(err)) != 0)
		fail_msg("second refresh: %s", err);
	tether_free(daemon);
}

static void test_expired_token_refreshed_before_request(void **state)
{
	struct simproc *p = *state;
	struct tether_opts o = oauth_opts(p);
	struct tether_req r = req(TETHER_ZONES, NULL);
	json_t *log;

	tether_free(authorised_client(p));
	edit_token(p, "expires_at", NULL, util_now_ms() / 1000 - 10);
	clear_log(p);
	run_one(&r, &o);
	assert_int_equal(r.status, TETHER_OK);
	log = api_log(p);
	assert_int_equal(json_array_size(log), 2);
	assert_string_equal(log_str(log, 0, "path"), "/oauth/token");
	assert_int_equal(log_status(log, 1), 200);
	json_decref(log);
	tether_req_release(&r);
}

static void test_auth_refresh_command_rotates_token(void **state)
{
	struct simproc *p = *state;
	struct tether *t = authorised_client(p);
	json_t *before = read_token(p), *after;
	char err[256] = "";

	assert_int_equal(tether_auth_refresh(t, err, sizeof(err)), 0);
	after = read_token(p);
	assert_string_not_equal(json_string_value(json_object_get(after, "refresh_token")),
	                        json_string_value(json_object_get(before, "refresh_token")));
	json_decref(after);
	json_decref(before);
	tether_free(t);
}

static void test_zones_list_rejects_non_list(void **state)
{
	json_t *doc = json_pack("{s:{s:s}}", "data", "id", "x");
	struct tether_zone *z;
	size_t n;
	char err[128];
	(void)state;

	assert_int_equal(tether_zones_list(doc, &z, &n, err, sizeof(err)), -1);
	assert_string_equal(err, "data: expected an array");
	json_decref(doc);
}

struct shape_case {
	enum tether_endpoint ep;
	const char *json;
	const char *error; /* NULL: valid */
};

static void test_doc_check_names_the_wrong_field(void **state)
{
	static const struct shape_case cases[] = {
	    {TETHER_EVENTS, "{\"data\":[],\"jsonapi\":{\"version\":\"1.0\"}}", NULL},
	    {TETHER_EVENTS, "[]", "document: expected an object"},
	    {TETHER_EVENTS, "{\"jsonapi\":{}}", "data: missing"},
	    {TETHER_EVENTS, "{\"data\":{}}", "data: expected an array"},
	    {TETHER_PERSPECTIVES,
	     "{\"data\":[{\"id\":\"a\",\"type\":\"perspectives\",\"attributes\":{}},"
	     "{\"id\":\"b\",\"type\":\"perspectives\",\"attributes\":[]}]}",
	     "data[1].attributes: expected an object"},
	    {TETHER_PERSPECTIVES, "{\"data\":[7]}", "data[0]: expected an object"},
	    {TETHER_RECORDINGS, "{\"data\":[{\"id\":5,\"type\":\"recordings\",\"attributes\":{}}]}",
	     "data[0].id: expected a string"},
	    {TETHER_RECORDINGS, "{\"data\":[{\"id\":\"a\",\"attributes\":{}}]}",
	     "data[0].type: expected a string"},
	    {TETHER_RECORDINGS, "{\"data\":[{\"id\":\"a\",\"type\":\"lprs\",\"attributes\":{}}]}",
	     "data[0].type: expected \"recordings\", got \"lprs\""},
	    /* events and plate reads: one bad resource is the normaliser's to skip, the
	     * document stays usable */
	    {TETHER_EVENTS, "{\"data\":[7,{\"id\":\"a\",\"type\":\"events\",\"attributes\":[]}]}",
	     NULL},
	    {TETHER_LPR, "{\"data\":[{\"id\":5}]}", NULL},
	    {TETHER_ZONES,
	     "{\"data\":[{\"id\":\"a\",\"type\":\"zones\",\"attributes\":"
	     "{\"name\":\"Camera 2\"}}]}",
	     NULL},
	    {TETHER_ZONES,
	     "{\"data\":[{\"id\":\"a\",\"type\":\"zones\",\"attributes\":"
	     "{\"name\":null}}]}",
	     "data[0].attributes.name: expected a string"},
	    {TETHER_PERSPECTIVES,
	     "{\"data\":[{\"id\":\"a\",\"type\":\"perspectives\","
	     "\"attributes\":{}}]}",
	     NULL},
	    {TETHER_RECORDINGS,
	     "{\"data\":[{\"id\":\"a\",\"type\":\"recordings\","
	     "\"attributes\":{}}]}",
	     NULL},
	    {TETHER_RECORDING, REC ",\"included\":[{\"id\":\"1\",\"type\":\"timelapses\"}]}", NULL},
	    {TETHER_RECORDING, REC "}", NULL},
	    {TETHER_RECORDING, "{\"data\":[]}", "data: expected an object"},
	    {TETHER_RECORDING, REC ",\"included\":{}}", "included: expected an array"},
	    {TETHER_RECORDING, REC ",\"included\":[{\"type\":\"timelapses\"}]}",
	     "included[0].id: expected a string"},
	    {TETHER_LIVE_SWITCH, "{}", NULL},
	};
	char err[256];
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *doc = json_loads(cases[i].json, JSON_DECODE_ANY, NULL);
		assert_non_null(doc);
		err[0] = '\0';
		if (cases[i].error == NULL) {
			if (tether_doc_check(cases[i].ep, doc, err, sizeof(err)) != 0)
				fail_msg("case %zu: unexpected error '%s'", i, err);
		} else {
			assert_int_equal(tether_doc_check(cases[i].ep, doc, err, sizeof(err)), -1);
			assert_string_equal(err, cases[i].error);
		}
		json_decref(doc);
	}
}

/* --- resource by resource (tether_each) --- */

struct each_seen {
	char ids[512];
	int n, stop_at;
};

static int each_cb(void *arg, const json_t *res)
{
	struct each_seen *e = arg;
	const char *id = json_string_value(json_object_get(res, "id"));
	size_t l = strlen(e->ids);

	snprintf(e->ids + l, sizeof(e->ids) - l, "%s%s", l ? "," : "",
	         id                    ? id
	         : json_is_object(res) ? "{}"
	         : json_is_string(res) ? "str"
	                               : "scalar");
	return ++e->n == e->stop_at ? -1 : 0;
}

static long each(const char *body, struct each_seen *e, char *err, size_t errsz)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether *t = client(&o);
	struct tether_req r = req(TETHER_EVENTS, "z1");
	long n;

	r.body = strdup(body);
	r.body_len = strlen(body);
	n = tether_each(t, &r, NULL, each_cb, e, err, errsz);
	tether_req_release(&r);
	tether_free(t);
	return n;
}

static void test_each_gives_resources_in_order_and_skips_other_members(void **state)
{
	struct each_seen e = {.stop_at = -1};
	char err[200] = "";
	(void)state;

	assert_int_equal(
	    each(" {\"meta\": {\"n\": [1, 2]}, \"links\": null, \"data\": [{\"id\":\"a\"},"
	         "12,true , \"x\",{\"id\":\"b\"}, -0.5e3], \"count\": 7 }\n",
	         &e, err, sizeof(err)),
	    6);
	assert_string_equal(e.ids, "a,scalar,scalar,str,b,scalar");
	memset(&e, 0, sizeof(e));
	e.stop_at = -1;
	assert_int_equal(each("{\"data\":[]}", &e, err, sizeof(err)), 0);
}

static void test_each_refuses_what_is_not_a_list(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{\"data\": {}}",
	    "{\"meta\": 1}",
	    "{\"data\": [{}, ]}",
	    "{\"data\": [{} {}]}",
	    "{\"data\": [{}]} x",
	    "{\"data\": [{}]",
	    "{\"data\": [1], \"data\": [2]}",
	    "{\"data\": [1], }",
	    "{\"data\": [{\"id\": tru}]}",
	};
	char err[200];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct each_seen e = {.stop_at = -1};
		err[0] = '\0';
		if (each(bad[i], &e, err, sizeof(err)) != -2)
			fail_msg("accepted: %s", bad[i]);
		assert_true(err[0] != '\0');
	}
}

static void test_each_stops_when_the_callback_fails(void **state)
{
	struct each_seen e = {.stop_at = 2};
	char err[200] = "";
	(void)state;

	assert_int_equal(
	    each("{\"data\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"}]}", &e, err, sizeof(err)),
	    -1);
	assert_string_equal(e.ids, "a,b");
}

/* The resource json_loadb gives for text, compared with what tether_each handed over. */
struct each_same {
	const char *text;
	int same, n;
};

static int same_cb(void *arg, const json_t *res)
{
	struct each_same *e = arg;
	json_error_t jerr;
	json_t *want = json_loads(e->text, 0, &jerr);

	assert_non_null(want);
	e->same += json_equal(want, res);
	e->n++;
	json_decref(want);
	return 0;
}

static void test_each_builds_the_tree_json_loadb_gives(void **state)
{
	static const char *const res[] = {
	    "{\"id\":\"a\",\"attributes\":{\"n\":-12,\"r\":0.25,\"e\":1e-3,\"big\":"
	    "9007199254740993,\"t\":true,\"f\":false,\"z\":null,\"\":\"empty key\","
	    "\"s\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\n\",\"utf8\":\"\xE2\x82\xAC\","
	    "\"deep\":{\"a\":[[],{},[1,[2,{\"b\":[3]}]]]},\"dup\":1,\"dup\":2}}",
	};
	struct tether_opts o = static_opts(&g_sim);
	struct tether *t = client(&o);
	char body[1024], err[200] = "";
	(void)state;

	for (size_t i = 0; i < sizeof(res) / sizeof(res[0]); i++) {
		struct tether_req r = req(TETHER_EVENTS, "z1");
		struct each_same e = {.text = res[i]};

		snprintf(body, sizeof(body), "{\"meta\":{\"x\":[1,{\"data\":2}]},\"data\":[%s,%s]}",
		         res[i], res[i]);
		r.body = strdup(body);
		r.body_len = strlen(body);
		assert_int_equal(tether_each(t, &r, NULL, same_cb, &e, err, sizeof(err)), 2);
		assert_int_equal(e.same, 2);
		tether_req_release(&r);
	}
	tether_free(t);
}

static void test_each_refuses_what_json_loadb_refuses_in_a_resource(void **state)
{
	static const char *const bad[] = {
	    "{\"data\": [{\"s\": \"a\\u0000b\"}]}",    /* NUL in a string */
	    "{\"data\": [{\"a\\u0000b\": 1}]}",        /* NUL in a member name */
	    "{\"data\": [{\"s\": \"\xC0\xAF\"}]}",     /* overlong UTF-8 */
	    "{\"data\": [{\"s\": \"\xED\xA0\x80\"}]}", /* a surrogate in UTF-8 */
	    "{\"data\": [{\"n\": 1e400}]}",            /* real overflow */
	    "{\"data\": [{\"n\": 99999999999999999999}]}",
	};
	char err[200];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct each_seen e = {.stop_at = -1};
		err[0] = '\0';
		assert_int_equal(each(bad[i], &e, err, sizeof(err)), -2);
		assert_string_not_equal(err, "");
		assert_int_equal(e.n, 0);
	}
}

/* yajl takes a document followed by a token it has not finished (a lone quote) as
 * complete; jansson refuses it, and so does tether_each. */
static void test_each_refuses_an_unfinished_token_after_the_document(void **state)
{
	static const char *const bad[] = {
	    "{\"data\": [{\"id\": \"a\"}]} \"",
	    "{\"data\": [{\"id\": \"a\"}]}\n\"tail",
	    "{\"data\": [{\"id\": \"a\"}]}  1",
	};
	char err[200];
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct each_seen e = {.stop_at = -1};
		err[0] = '\0';
		assert_int_equal(each(bad[i], &e, err, sizeof(err)), -2);
		assert_non_null(strstr(err, "invalid JSON at byte"));
		assert_null(strchr(err, '\n')); /* yajl's messages end with one */
	}
}

static void test_each_refuses_nesting_deeper_than_jansson(void **state)
{
	size_t depth = 3000, n = 0;
	char *body = malloc(2 * depth + 32), err[200] = "";
	struct each_seen e = {.stop_at = -1};
	(void)state;

	assert_non_null(body);
	n += (size_t)sprintf(body, "{\"data\":[");
	for (size_t i = 0; i < depth; i++)
		body[n++] = '[';
	for (size_t i = 0; i < depth; i++)
		body[n++] = ']';
	strcpy(body + n, "]}");
	assert_int_equal(each(body, &e, err, sizeof(err)), -2);
	assert_string_equal(err, "too deeply nested");
	free(body);
}

static void test_each_gives_one_resource_the_document_budget(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether *t;
	struct tether_req r = req(TETHER_EVENTS, "z1");
	struct each_seen e = {.stop_at = -1};
	struct buf b;
	char err[200] = "";
	(void)state;

	o.max_doc_memory = 1024 * 1024;
	t = client(&o);
	buf_init(&b, 0);
	/* a small resource, then one of 100,000 members (several MiB as a tree) */
	assert_int_equal(buf_append(&b, "{\"data\":[{\"id\":\"a\"},{", 21), 0);
	for (int i = 0; i < 100000; i++) {
		char m[32];
		int k = snprintf(m, sizeof(m), "%s\"k%d\":%d", i ? "," : "", i, i);
		assert_int_equal(buf_append(&b, m, (size_t)k), 0);
	}
	assert_int_equal(buf_append(&b, "}]}", 3), 0);
	r.body = b.data;
	r.body_len = b.len;
	assert_int_equal(tether_each(t, &r, NULL, each_cb, &e, err, sizeof(err)), -2);
	assert_string_equal(e.ids, "a");
	assert_string_equal(err, "a resource needs more than 1 MiB of memory");
	tether_req_release(&r);
	tether_free(t);
}

/* --- tether_each with a keep filter --- */

/* Test filter: the resource keeps id, type and attributes; attributes keeps "keep*". */
static bool keep_member(const char *name, size_t len)
{
	return (len == 2 && memcmp(name, "id", 2) == 0) ||
	       (len == 4 && memcmp(name, "type", 4) == 0) ||
	       (len == 10 && memcmp(name, "attributes", 10) == 0);
}

static bool keep_attribute(const char *name, size_t len)
{
	return len >= 4 && memcmp(name, "keep", 4) == 0;
}

static const struct tether_keep test_keep = {keep_member, keep_attribute};

/* Each resource handed over as sorted compact JSON, joined with '|'. */
static int text_cb(void *arg, const json_t *res)
{
	struct buf *b = arg;
	char *text = json_dumps(res, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

	assert_non_null(text);
	if (b->len > 0)
		assert_int_equal(buf_append(b, "|", 1), 0);
	assert_int_equal(buf_append(b, text, strlen(text)), 0);
	free(text);
	return 0;
}

/* An events request answered with body (len bytes). */
static struct tether_req answered(const char *body, size_t len)
{
	struct tether_req r = req(TETHER_EVENTS, "z1");

	r.body = malloc(len + 1);
	assert_non_null(r.body);
	memcpy(r.body, body, len);
	r.body[len] = '\0';
	r.body_len = len;
	return r;
}

/* tether_each of body with keep; *texts gets text_cb's output (caller frees). */
static long each_keep(const char *body, size_t len, const struct tether_keep *keep,
                      size_t max_doc_memory, char **texts, char *err, size_t errsz)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether *t;
	struct tether_req r = answered(body, len);
	struct buf b;
	long n;

	o.max_doc_memory = max_doc_memory;
	t = client(&o);
	buf_init(&b, 0);
	err[0] = '\0';
	n = tether_each(t, &r, keep, text_cb, &b, err, errsz);
	*texts = b.data ? buf_steal(&b) : strdup("");
	tether_req_release(&r);
	tether_free(t);
	return n;
}

static void test_each_filtered_builds_only_the_kept_members(void **state)
{
	static const char body[] =
	    "{\"data\":[{\"id\":\"a\",\"links\":{\"self\":\"/e/a\"},\"type\":\"events\","
	    "\"attributes\":{\"keep_s\":\"x\",\"title\":\"t\",\"keep_n\":1,\"has_x\":true,"
	    "\"keep_o\":{\"inner\":[1,{\"title\":2}]},\"z\":null},\"relationships\":{}},"
	    "{\"type\":\"lprs\",\"attributes\":{\"drop\":1}}],\"meta\":{\"keep\":1}}";
	char err[200], *texts;
	(void)state;

	/* deeper members are all kept, whatever their name */
	assert_int_equal(each_keep(body, strlen(body), &test_keep, 0, &texts, err, sizeof(err)), 2);
	assert_string_equal(texts, "{\"attributes\":{\"keep_n\":1,\"keep_o\":{\"inner\":[1,{"
	                           "\"title\":2}]},\"keep_s\":\"x\"},\"id\":\"a\",\"type\":"
	                           "\"events\"}|{\"attributes\":{},\"type\":\"lprs\"}");
	free(texts);
	/* without a filter, or with NULL functions, everything */
	static const struct tether_keep keep_all = {NULL, NULL};
	char *all;
	assert_int_equal(each_keep(body, strlen(body), NULL, 0, &all, err, sizeof(err)), 2);
	assert_int_equal(each_keep(body, strlen(body), &keep_all, 0, &texts, err, sizeof(err)), 2);
	assert_string_equal(texts, all);
	assert_non_null(strstr(all, "\"title\":\"t\""));
	free(texts);
	free(all);
}

/* Only the resource's own "attributes" object is filtered by attribute(): not an
 * "attributes" deeper down, not one in a resource that is an array; the last of two
 * "attributes" members wins, as in json_loadb. */
static void test_each_filtered_filters_only_the_resource_attributes(void **state)
{
	static const struct tether_keep attrs_only = {NULL, keep_attribute};
	static const char body[] =
	    "{\"data\":[{\"x\":{\"attributes\":{\"drop\":1}},\"attributes\":{\"keep\":1,"
	    "\"drop\":2},\"attributes\":{\"drop\":3,\"keep2\":4}},[{\"attributes\":{\"drop\":5}}],"
	    "{\"attributes\":[{\"drop\":6}]}]}";
	char err[200], *texts;
	(void)state;

	assert_int_equal(each_keep(body, strlen(body), &attrs_only, 0, &texts, err, sizeof(err)),
	                 3);
	assert_string_equal(texts, "{\"attributes\":{\"keep2\":4},\"x\":{\"attributes\":{"
	                           "\"drop\":1}}}|[{\"attributes\":{\"drop\":5}}]|{"
	                           "\"attributes\":[{\"drop\":6}]}");
	free(texts);
}

static void test_each_filtered_skips_nested_values_of_every_type(void **state)
{
	static const char *const values[] = {
	    "null",
	    "true",
	    "false",
	    "-12",
	    "0.25e-3",
	    "\"s\\u00e9\\n\"",
	    "[]",
	    "{}",
	    "[[1,{\"a\":[{}]}],\"x\",{\"b\":{\"c\":[null,true]}}]",
	    "{\"id\":\"not me\",\"attributes\":{\"keep\":1},\"keep\":[{\"keep\":{}}]}",
	};
	char body[512], err[200], *texts;
	(void)state;

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		/* a skipped value before, between and after kept ones, at both levels */
		snprintf(body, sizeof(body),
		         "{\"data\":[{\"s1\":%s,\"id\":\"a\",\"s2\":%s,\"attributes\":{\"s3\":%s,"
		         "\"keep\":[1],\"s4\":%s},\"s5\":%s},{\"s6\":%s}]}",
		         values[i], values[i], values[i], values[i], values[i], values[i]);
		assert_int_equal(
		    each_keep(body, strlen(body), &test_keep, 0, &texts, err, sizeof(err)), 2);
		if (strcmp(texts, "{\"attributes\":{\"keep\":[1]},\"id\":\"a\"}|{}") != 0)
			fail_msg("value %s: %s", values[i], texts);
		free(texts);
	}
}

/* What only jansson checks (no NUL, strict UTF-8) is not checked in what is not built;
 * in what is built it still is. */
static void test_each_filtered_checks_strings_only_where_built(void **state)
{
	static const char *const odd[] = {
	    "\"a\\u0000b\"",    /* NUL in a string */
	    "\"\xC0\xAF\"",     /* overlong UTF-8 (yajl lets it through) */
	    "\"\xED\xA0\x80\"", /* a surrogate in UTF-8 */
	};
	char body[256], err[200], *texts;
	(void)state;

	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
		snprintf(body, sizeof(body),
		         "{\"data\":[{\"id\":\"a\",\"title\":%s,\"attributes\":{\"t\":%s}}]}",
		         odd[i], odd[i]);
		assert_int_equal(
		    each_keep(body, strlen(body), &test_keep, 0, &texts, err, sizeof(err)), 1);
		assert_string_equal(texts, "{\"attributes\":{},\"id\":\"a\"}");
		free(texts);
		snprintf(body, sizeof(body),
		         "{\"data\":[{\"id\":\"a\",\"attributes\":{\"keep\":%s}}]}", odd[i]);
		assert_int_equal(
		    each_keep(body, strlen(body), &test_keep, 0, &texts, err, sizeof(err)), -2);
		assert_string_not_equal(err, "");
		assert_string_equal(texts, "");
		free(texts);
	}
	/* a member name with a NUL is never kept (no read name has one), so never refused */
	static const char nul_key[] =
	    "{\"data\":[{\"i\\u0000d\":1,\"attributes\":{\"kee\\u0000p\":2}}]}";
	assert_int_equal(
	    each_keep(nul_key, strlen(nul_key), &test_keep, 0, &texts, err, sizeof(err)), 1);
	assert_string_equal(texts, "{\"attributes\":{}}");
	free(texts);
}

static void test_each_filtered_still_refuses_what_is_not_a_list(void **state)
{
	static const char *const bad[] = {
	    "",
	    "[]",
	    "{\"data\": {}}",
	    "{\"meta\": 1}",
	    "{\"data\": [{\"x\": 1, }]}",
	    "{\"data\": [{\"x\": [1 2]}]}",
	    "{\"data\": [{\"attributes\": {\"x\": tru}}]}",
	    "{\"data\": [{\"x\": \"\xff\"}]}",
	    "{\"data\": [{\"x\": {\"a\" 1}}]}",
	    "{\"data\": [{}]} x",
	    "{\"data\": [{\"x\": [}]}",
	    "{\"data\": [1], \"data\": [2]}",
	    "{\"data\": [{\"x\": 1e400}]}", /* yajl converts skipped numbers too */
	    "{\"data\": [{\"x\": [99999999999999999999]}]}",
	    "{\"data\": [{\"x\": \"\\ud800\\q\"}]}", /* a bad escape */
	};
	char err[200], *texts;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (each_keep(bad[i], strlen(bad[i]), &test_keep, 0, &texts, err, sizeof(err)) !=
		    -2)
			fail_msg("accepted: %s", bad[i]);
		assert_string_not_equal(err, "");
		free(texts);
	}
}

static void test_each_filtered_counts_every_resource(void **state)
{
	struct buf b;
	char err[200], *texts;
	(void)state;

	buf_init(&b, 0);
	assert_int_equal(buf_append(&b, "{\"data\":[", 9), 0);
	for (int i = 0; i <= TETHER_MAX_RESOURCES; i++)
		assert_int_equal(buf_append(&b, i ? ",{\"x\":1}" : "{\"x\":1}", i ? 8 : 7), 0);
	assert_int_equal(buf_append(&b, "]}", 2), 0);
	/* one more than the limit: refused, naming the count */
	assert_int_equal(each_keep(b.data, b.len, &test_keep, 0, &texts, err, sizeof(err)), -2);
	assert_string_equal(err, "data: 20001 resources, more than 20000");
	free(texts);
	/* at the limit: every one handed over, each without its skipped member */
	b.len -= 10;
	assert_int_equal(buf_append(&b, "]}", 2), 0);
	assert_int_equal(each_keep(b.data, b.len, &test_keep, 0, &texts, err, sizeof(err)),
	                 TETHER_MAX_RESOURCES);
	assert_int_equal(strlen(texts), (size_t)TETHER_MAX_RESOURCES * 3 - 1); /* {}|{}|...{} */
	free(texts);
	buf_release(&b);
}

/* The budget counts what is built: a resource of 100,000 kept members is over it, the
 * same members skipped are not built and pass. */
static void test_each_filtered_applies_the_budget_to_what_is_built(void **state)
{
	struct buf b;
	char err[200], *texts;
	(void)state;

	for (int kept = 1; kept >= 0; kept--) {
		buf_init(&b, 0);
		assert_int_equal(buf_append(&b, "{\"data\":[{\"id\":\"a\",\"attributes\":{", 33),
		                 0);
		for (int i = 0; i < 100000; i++) {
			char m[32];
			int k = snprintf(m, sizeof(m), "%s\"%s%d\":%d", i ? "," : "",
			                 kept ? "keep" : "k", i, i);
			assert_int_equal(buf_append(&b, m, (size_t)k), 0);
		}
		assert_int_equal(buf_append(&b, "}}]}", 4), 0);
		if (kept) {
			assert_int_equal(each_keep(b.data, b.len, &test_keep, 1024 * 1024, &texts,
			                           err, sizeof(err)),
			                 -2);
			assert_string_equal(err, "a resource needs more than 1 MiB of memory");
		} else {
			assert_int_equal(each_keep(b.data, b.len, &test_keep, 1024 * 1024, &texts,
			                           err, sizeof(err)),
			                 1);
			assert_string_equal(texts, "{\"attributes\":{},\"id\":\"a\"}");
		}
		free(texts);
		buf_release(&b);
	}
}

/* Skipped values count towards the nesting limit: the depth stays bounded. */
static void test_each_filtered_refuses_deep_nesting_in_a_skipped_value(void **state)
{
	size_t depth = 3000, n = 0;
	char *body = malloc(2 * depth + 64), err[200], *texts;
	(void)state;

	assert_non_null(body);
	n += (size_t)sprintf(body, "{\"data\":[{\"skipped\":");
	for (size_t i = 0; i < depth; i++)
		body[n++] = '[';
	for (size_t i = 0; i < depth; i++)
		body[n++] = ']';
	strcpy(body + n, "}]}");
	assert_int_equal(each_keep(body, strlen(body), &test_keep, 0, &texts, err, sizeof(err)),
	                 -2);
	assert_string_equal(err, "too deeply nested");
	free(texts);
	free(body);
}

/* --- tether_each_flat: nothing built --- */

struct flat_seen {
	struct nres v[8];
	size_t n;
	int stop_at; /* end returns -1 at this resource (1-based), or never */
};

static void fs_begin(void *arg, bool object, size_t offset)
{
	struct flat_seen *f = arg;

	assert_true(f->n < sizeof(f->v) / sizeof(f->v[0]));
	nres_reset(&f->v[f->n], object);
	f->v[f->n].offset = offset;
}

static int fs_slot(void *arg, int level, const char *name, size_t len)
{
	(void)arg;
	return nres_slot(level, name, len);
}

static void fs_value(void *arg, int level, int slot, const struct tether_value *v)
{
	static const enum nres_type types[] = {
	    [TV_NULL] = NRES_NULL,       [TV_FALSE] = NRES_FALSE, [TV_TRUE] = NRES_TRUE,
	    [TV_INTEGER] = NRES_INTEGER, [TV_REAL] = NRES_REAL,   [TV_STRING] = NRES_STRING,
	    [TV_OBJECT] = NRES_OBJECT,   [TV_ARRAY] = NRES_ARRAY,
	};
	struct flat_seen *f = arg;

	assert_int_equal(level, slot >= NRES_STARTS_AT ? 2 : 1);
	nres_set(&f->v[f->n], slot, types[v->type], v->i, v->d, v->s, v->len);
}

static int fs_end(void *arg)
{
	struct flat_seen *f = arg;

	return (int)++f->n == f->stop_at ? -1 : 0;
}

static const struct tether_flat fs_ops = {fs_begin, fs_slot, fs_value, fs_end};

/* tether_each_flat of body (len bytes) into f. */
static long each_flat(const char *body, size_t len, struct flat_seen *f, char *err, size_t errsz)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether *t = client(&o);
	struct tether_req r = answered(body, len);
	long n;

	err[0] = '\0';
	n = tether_each_flat(t, &r, &fs_ops, f, err, errsz);
	tether_req_release(&r);
	tether_free(t);
	return n;
}

/* What the flat walk reads of each resource is what the normaliser reads of json_loadb's
 * tree: members it does not read left out, containers only typed, the last of two members
 * of one name, a second "attributes" replacing the first, resources that are not objects;
 * and the message normalised from it is the tree's. */
static void test_each_flat_reads_what_the_normaliser_reads_of_the_tree(void **state)
{
	static const char body[] =
	    "{\"meta\":{\"id\":1},\"data\":[\n"
	    " {\"id\":\"e1\",\"type\":\"events\",\"links\":{\"self\":\"/e1\"},\"attributes\":{"
	    "\"starts_at\":\"2020-06-12T16:03:09.019+01:00\",\"updated_at\":\"u1\",\"zone_id\":"
	    "\"z1\",\"severity\":\"high\",\"has_face\":true,\"has_car\":false,\"has_pir\":null,"
	    "\"motion\":0.5,\"duration\":12,\"title\":{\"deep\":[1,\"x\"]},\"has_face\":true,"
	    "\"complete\":true,\"ends_at\":\"2020-06-12T16:04:09.019+01:00\"}},\n"
	    " {\"id\":\"e2\",\"type\":\"events\",\"attributes\":{\"severity\":\"low\"},"
	    "\"attributes\":{\"starts_at\":\"x\",\"has_tma\":[true],\"zone_id\":{\"a\":1}},"
	    "\"id\":\"e2b\"},\n"
	    " [{\"id\":\"in an array\"}], \"a string\", 7,\n"
	    " {\"id\":\"p1\",\"type\":\"lprs\",\"attributes\":{\"plate_number\":\"ab 12\","
	    "\"starts_at\":\"2020-06-12T16:03:09Z\",\"updated_at\":\"u\",\"zone_id\":\"z1\","
	    "\"country\":\"GBR\",\"event_id\":\"e1\"}}]}";
	struct flat_seen f = {.stop_at = -1};
	json_t *doc = json_loads(body, 0, NULL), *res;
	char err[200];
	size_t i;
	(void)state;

	assert_non_null(doc);
	assert_int_equal(each_flat(body, strlen(body), &f, err, sizeof(err)), 6);
	assert_int_equal(f.n, 6);
	json_array_foreach(json_object_get(doc, "data"), i, res)
	{
		struct nres want;
		struct message a, b;
		char ea[200] = "", eb[200] = "";
		int ra, rb;

		nres_from_json(res, &want);
		if (!nres_equal(&f.v[i], &want))
			fail_msg("resource %zu: not what the normaliser reads of the tree", i);
		/* where each starts: two objects, an array, a string, a number, an object */
		assert_int_equal(body[f.v[i].offset], "{{[\"7{"[i]);
		ra = normalize_nres(&f.v[i], "Zone", "https://my.timeline.is", &a, ea, sizeof(ea));
		rb = normalize_resource(res, "Zone", "https://my.timeline.is", &b, eb, sizeof(eb));
		assert_int_equal(ra, rb);
		assert_string_equal(ea, eb);
		if (ra == 0)
			assert_memory_equal(&a, &b, sizeof(a));
	}
	/* the readings themselves */
	assert_true(f.v[0].flags_true == (UINT64_C(1) << msg_flag_index("face")));
	assert_true(f.v[0].flags_bad == (UINT64_C(1) << msg_flag_index("pir")));
	assert_int_equal(f.v[0].v[NRES_DURATION].type, NRES_INTEGER);
	assert_string_equal(f.v[1].v[NRES_ID].text, "e2b");
	assert_int_equal(f.v[1].v[NRES_SEVERITY].type, NRES_ABSENT);
	assert_int_equal(f.v[1].v[NRES_ZONE_ID].type, NRES_OBJECT);
	assert_true(f.v[1].flags_bad == (UINT64_C(1) << msg_flag_index("tma")));
	assert_false(f.v[2].object);
	assert_false(f.v[3].object);
	assert_string_equal(f.v[5].v[NRES_PLATE_NUMBER].text, "ab 12");
	json_decref(doc);
}

/* The flat walk refuses what the filtered tree walk refuses, with its message: a NUL or
 * bad UTF-8 in a string or member name it reads or that lies inside a value it reads; it
 * takes the same bytes in a member it does not read. */
static void test_each_flat_refuses_as_the_filtered_walk(void **state)
{
	static const struct tether_keep keep = {normalize_reads_member, normalize_reads_attribute};
	static const char *const bodies[] = {
	    "{\"data\":[{\"id\":\"a\\u0000b\"}]}",
	    "{\"data\":[{\"attributes\":{\"severity\":\"\xc0\xaf\"}}]}",
	    "{\"data\":[{\"attributes\":{\"severity\":{\"x\":[\"\xed\xa0\x80\"]}}}]}",
	    "{\"data\":[{\"type\":{\"a\\u0000\":1}}]}",
	    "{\"data\":[{\"attributes\":{\"zone_id\":[{\"\xc0\xaf\":1}]}}]}",
	    "{\"data\":[[\"\xc0\xaf\"]]}",
	    "{\"data\":[\"\xed\xa0\x80\"]}",
	    "{\"data\":[{\"title\":\"a\\u0000b\",\"attributes\":{\"title\":\"\xc0\xaf\"}}]}",
	    "{\"data\":[{\"id\":\"a\"}],\"data\":[]}",
	    "{\"data\":[{\"id\":\"a\"} \"}",
	    "{\"data\":{}}",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
		struct flat_seen f = {.stop_at = -1};
		char err[200], ferr[200], *texts;
		size_t len = strlen(bodies[i]);
		long n = each_flat(bodies[i], len, &f, err, sizeof(err));
		long fn = each_keep(bodies[i], len, &keep, 0, &texts, ferr, sizeof(ferr));

		free(texts);
		if (n != fn || strcmp(err, ferr) != 0)
			fail_msg("body %zu: flat %ld '%s', filtered %ld '%s'", i, n, err, fn, ferr);
		/* the last body but three is taken: its odd bytes are in members not read */
		assert_true(i == sizeof(bodies) / sizeof(bodies[0]) - 4 ? n == 1 : n == -2);
	}
}

/* end's -1 stops the walk at once and is returned; the resources before it were seen. */
static void test_each_flat_stops_when_the_caller_says_so(void **state)
{
	static const char body[] = "{\"data\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"}]}";
	struct flat_seen f = {.stop_at = 2};
	char err[200];
	(void)state;

	assert_int_equal(each_flat(body, strlen(body), &f, err, sizeof(err)), -1);
	assert_int_equal(f.n, 2);
	assert_string_equal(f.v[1].v[NRES_ID].text, "b");
}

/* --- the arena of tether_each's trees --- */

/* Holds every resource handed over (a reference in held) and its text at that time. */
struct hold {
	json_t *held, *texts;
};

static int hold_cb(void *arg, const json_t *res)
{
	struct hold *h = arg;
	char *text = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);

	assert_non_null(text);
	assert_int_equal(json_array_append(h->held, (json_t *)res), 0);
	assert_int_equal(json_array_append_new(h->texts, json_string(text)), 0);
	free(text);
	return 0;
}

/* Every held resource still reads as it did when it was handed over. */
static void hold_check(const struct hold *h)
{
	size_t i;
	json_t *r;

	json_array_foreach(h->held, i, r)
	{
		char *text = json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY);
		assert_non_null(text);
		assert_string_equal(text, json_string_value(json_array_get(h->texts, i)));
		free(text);
	}
}

/* n events of ~20 kept members (strings, numbers, nested values), k as an id prefix: with
 * n = 3000, more than the arena holds, so the rest comes from malloc. */
static char *events_body(int n, char k, size_t *len)
{
	struct buf b;

	buf_init(&b, 0);
	assert_int_equal(buf_puts(&b, "{\"data\":["), 0);
	for (int i = 0; i < n; i++) {
		char one[1024];
		int m =
		    snprintf(one, sizeof(one),
		             "%s{\"id\":\"%c%d\",\"type\":\"events\",\"links\":{\"x\":1},"
		             "\"attributes\":{\"keep_a\":\"value %d of some length\","
		             "\"keep_b\":%d,\"keep_c\":%d.5,\"keep_d\":[1,\"two\",{\"three\":3}],"
		             "\"keep_e\":{\"f\":\"g\",\"h\":[null,true]},\"title\":\"skipped\","
		             "\"keep_f\":\"%c%d%c\",\"keep_g\":false,\"keep_h\":null,"
		             "\"keep_i\":\"\\u00e9t\\u00e9\",\"keep_j\":-%d}}",
		             i ? "," : "", k, i, i, i, i, k, i, k, i);
		assert_int_equal(buf_append(&b, one, (size_t)m), 0);
	}
	assert_int_equal(buf_puts(&b, "]}"), 0);
	*len = b.len;
	return buf_steal(&b);
}

static long hold_walk(struct tether *t, const char *body, size_t len, struct hold *h)
{
	struct tether_req r = req(TETHER_EVENTS, "z1");
	char err[200] = "";
	long n;

	r.body = malloc(len + 1);
	assert_non_null(r.body);
	memcpy(r.body, body, len + 1);
	r.body_len = len;
	n = tether_each(t, &r, &test_keep, hold_cb, h, err, sizeof(err));
	if (n < 0)
		fail_msg("tether_each: %s", err);
	tether_req_release(&r);
	return n;
}

static void hold_init(struct hold *h)
{
	h->held = json_array();
	h->texts = json_array();
	assert_non_null(h->held);
	assert_non_null(h->texts);
}

static void hold_release(struct hold *h)
{
	json_decref(h->held);
	json_decref(h->texts);
}

/* What a caller holds is never reused under it: past the arena's size, across walks, and
 * while an earlier answer's values are held; once freed, the next walk reuses the arena. */
static void test_each_arena_never_reuses_held_values(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether *t = client(&o);
	struct hold a, b, c;
	size_t len;
	char *body1 = events_body(3000, 'a', &len), *body2;
	size_t len2;
	(void)state;

	body2 = events_body(3000, 'b', &len2);
	hold_init(&a);
	hold_init(&b);
	hold_init(&c);
	assert_int_equal(hold_walk(t, body1, len, &a), 3000);
	hold_check(&a);
	assert_int_equal(hold_walk(t, body2, len2, &b), 3000); /* a still held */
	hold_check(&a);
	hold_check(&b);
	/* some freed, some held: the arena is not reused while any is alive */
	json_array_clear(a.held);
	json_array_clear(a.texts);
	assert_int_equal(hold_walk(t, body1, len, &c), 3000);
	hold_check(&b);
	hold_check(&c);
	hold_release(&b);
	hold_release(&c);
	/* all freed: reused, as the poller does chunk after chunk */
	for (int i = 0; i < 3; i++) {
		hold_init(&c);
		assert_int_equal(hold_walk(t, body2, len2, &c), 3000);
		hold_check(&c);
		hold_release(&c);
	}
	hold_release(&a);
	free(body1);
	free(body2);
	tether_free(t);
}

static void *release_held(void *arg)
{
	hold_release(arg);
	return NULL;
}

/* Values freed on another thread, and after their client is gone, are recognised as the
 * arena's (a free() of them would abort under ASan). */
static void test_each_arena_values_outlive_thread_and_client(void **state)
{
	struct tether_opts o = static_opts(&g_sim);
	struct tether *t = client(&o);
	struct hold h;
	pthread_t th;
	size_t len;
	char *body = events_body(200, 'a', &len);
	(void)state;

	hold_init(&h);
	assert_int_equal(hold_walk(t, body, len, &h), 200);
	assert_int_equal(pthread_create(&th, NULL, release_held, &h), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	hold_init(&h);
	assert_int_equal(hold_walk(t, body, len, &h), 200);
	tether_free(t); /* logs that values are still held, keeps their memory */
	hold_check(&h);
	hold_release(&h);
	/* a new client still works */
	t = client(&o);
	hold_init(&h);
	assert_int_equal(hold_walk(t, body, len, &h), 200);
	hold_check(&h);
	hold_release(&h);
	tether_free(t);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_status_names),
	    cmocka_unit_test(test_each_gives_resources_in_order_and_skips_other_members),
	    cmocka_unit_test(test_each_refuses_what_is_not_a_list),
	    cmocka_unit_test(test_each_stops_when_the_callback_fails),
	    cmocka_unit_test(test_each_builds_the_tree_json_loadb_gives),
	    cmocka_unit_test(test_each_refuses_what_json_loadb_refuses_in_a_resource),
	    cmocka_unit_test(test_each_refuses_an_unfinished_token_after_the_document),
	    cmocka_unit_test(test_each_refuses_nesting_deeper_than_jansson),
	    cmocka_unit_test(test_each_gives_one_resource_the_document_budget),
	    cmocka_unit_test(test_each_filtered_builds_only_the_kept_members),
	    cmocka_unit_test(test_each_filtered_filters_only_the_resource_attributes),
	    cmocka_unit_test(test_each_filtered_skips_nested_values_of_every_type),
	    cmocka_unit_test(test_each_filtered_checks_strings_only_where_built),
	    cmocka_unit_test(test_each_filtered_still_refuses_what_is_not_a_list),
	    cmocka_unit_test(test_each_filtered_counts_every_resource),
	    cmocka_unit_test(test_each_filtered_applies_the_budget_to_what_is_built),
	    cmocka_unit_test(test_each_filtered_refuses_deep_nesting_in_a_skipped_value),
	    cmocka_unit_test(test_each_flat_reads_what_the_normaliser_reads_of_the_tree),
	    cmocka_unit_test(test_each_flat_refuses_as_the_filtered_walk),
	    cmocka_unit_test(test_each_flat_stops_when_the_caller_says_so),
	    cmocka_unit_test(test_each_arena_never_reuses_held_values),
	    cmocka_unit_test(test_each_arena_values_outlive_thread_and_client),
	    cmocka_unit_test(test_auth_url_has_client_redirect_and_code),
	    cmocka_unit_test(test_zones_list_rejects_non_list),
	    cmocka_unit_test(test_doc_check_names_the_wrong_field),
	    cmocka_unit_test(test_zones_list_and_location_filter),
	    cmocka_unit_test(test_events_window_sends_api_time_format),
	    cmocka_unit_test(test_events_at_finds_event),
	    cmocka_unit_test(test_lpr_window_returns_plate),
	    cmocka_unit_test(test_perspectives_and_live_switch),
	    cmocka_unit_test(test_live_switch_unknown_preset_is_client_error),
	    cmocka_unit_test(test_recordings_list_and_single_with_included),
	    cmocka_unit_test(test_recordings_at_sends_time),
	    cmocka_unit_test(test_missing_zone_id_fails_without_request),
	    cmocka_unit_test(test_server_error_is_server),
	    cmocka_unit_test(test_rate_limit_reports_retry_after_seconds),
	    cmocka_unit_test(test_rate_limit_holds_unsent_requests),
	    cmocka_unit_test(test_retry_after_http_date),
	    cmocka_unit_test(test_malformed_json_is_payload_with_excerpt),
	    cmocka_unit_test(test_truncated_body_is_payload),
	    cmocka_unit_test(test_connection_cut_mid_body_is_payload),
	    cmocka_unit_test(test_wrong_shape_is_payload_naming_field),
	    cmocka_unit_test(test_huge_body_over_cap_is_payload),
	    cmocka_unit_test(test_too_many_resources_is_payload_naming_count),
	    cmocka_unit_test(test_recycled_body_holds_the_next_raw_answer),
	    cmocka_unit_test(test_document_over_memory_budget_is_payload),
	    cmocka_unit_test(test_delay_beyond_timeout_is_timeout),
	    cmocka_unit_test(test_connection_refused_is_network),
	    cmocka_unit_test(test_static_token_never_refreshes),
	    cmocka_unit_test(test_http_base_url_needs_insecure),
	    cmocka_unit_test(test_unset_concurrency_or_timeout_refused),
	    cmocka_unit_test(test_batches_reuse_connections),
	    cmocka_unit_test(test_free_closes_every_connection),
	    OAUTH_TEST(test_exchange_writes_private_token_file),
	    OAUTH_TEST(test_exchange_with_bad_code_fails),
	    OAUTH_TEST(test_no_token_file_is_auth_error),
	    OAUTH_TEST(test_rejected_access_token_refreshes_and_retries_once),
	    OAUTH_TEST(test_batch_of_401s_refreshes_once),
	    OAUTH_TEST(test_revoked_refresh_token_is_auth_with_hint),
	    OAUTH_TEST(test_refresh_after_another_process_refreshed_uses_token_file),
	    OAUTH_TEST(test_expired_token_refreshed_before_request),
	    OAUTH_TEST(test_auth_refresh_command_rotates_token),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
