/* tether-sim as a black box: the built binary on a free port, every endpoint compared key by
 * key and type by type with the examples of tether-api.md (tests/data/api-examples), the
 * filters, OAuth2, the admin API and the fault classes. Talks to it with libcurl. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "lib/util.h"

#define STATIC_TOKEN "sim-static-token"
#define EXAMPLES "tests/data/api-examples/"

struct simproc {
	pid_t pid;
	int port;
	char dir[64];
	char base[64];
};

struct resp {
	long status;
	struct buf body;
	char retry_after[64];
	char location[2048];
	bool www_auth;
	CURLcode rc;
};

static struct {
	struct simproc a; /* shared: --backlog 300 --zones 4 --locations 2 */
	struct simproc b; /* a test's own, stopped by stop_own_sim even when it fails */
	CURL *curl;       /* one handle: connections are reused */
} T;

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Starts $BUILD/tether-sim with extra arguments (NULL-terminated); 0 or -1. */
static int sim_start(struct simproc *p, ...)
{
	const char *build = getenv("BUILD");
	char bin[512], portfile[128];
	const char *argv[32];
	int argc = 0;
	va_list ap;

	memset(p, 0, sizeof(*p));
	snprintf(bin, sizeof(bin), "%s/tether-sim", build && *build ? build : "build");
	snprintf(p->dir, sizeof(p->dir), "/tmp/test-sim.XXXXXX");
	if (mkdtemp(p->dir) == NULL)
		return -1;
	snprintf(portfile, sizeof(portfile), "%s/port", p->dir);
	argv[argc++] = bin;
	argv[argc++] = "--port-file";
	argv[argc++] = portfile;
	argv[argc++] = "--quiet";
	va_start(ap, p);
	for (const char *a; argc < 30 && (a = va_arg(ap, const char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	p->pid = fork();
	if (p->pid < 0)
		return -1;
	if (p->pid == 0) {
		/* a crashed test must not leave a simulator behind */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (freopen("/dev/null", "w", stdout) == NULL)
			_exit(127);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 1000; i++) {
		FILE *f = fopen(portfile, "r");
		int status;
		if (f != NULL) {
			int ok = fscanf(f, "%d", &p->port) == 1;
			fclose(f);
			if (ok) {
				snprintf(p->base, sizeof(p->base), "http://127.0.0.1:%d", p->port);
				return 0;
			}
		}
		if (waitpid(p->pid, &status, WNOHANG) == p->pid) {
			p->pid = 0;
			return -1;
		}
		sleep_ms(10);
	}
	return -1;
}

/* SIGTERM, then the exit status: 0 when the simulator stopped cleanly. */
static int sim_stop(struct simproc *p)
{
	char path[128];
	int status = -1;

	if (p->pid > 0) {
		kill(p->pid, SIGTERM);
		if (waitpid(p->pid, &status, 0) != p->pid)
			status = -1;
		p->pid = 0;
	}
	snprintf(path, sizeof(path), "%s/port", p->dir);
	unlink(path);
	rmdir(p->dir);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
	struct resp *r = ud;
	return buf_append(&r->body, ptr, size * n) < 0 ? 0 : size * n;
}

static size_t on_header(char *ptr, size_t size, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t len = size * n;
	char line[2200];

	if (len >= sizeof(line))
		return len;
	memcpy(line, ptr, len);
	line[len] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	if (strncasecmp(line, "Retry-After: ", 13) == 0)
		snprintf(r->retry_after, sizeof(r->retry_after), "%.63s", line + 13);
	else if (strncasecmp(line, "Location: ", 10) == 0)
		snprintf(r->location, sizeof(r->location), "%.2047s", line + 10);
	else if (strncasecmp(line, "WWW-Authenticate: ", 18) == 0)
		r->www_auth = true;
	return len;
}

/* One request on the shared handle; token NULL sends no Authorization header. */
static void http(const char *method, const char *url, const char *token, const char *ctype,
                 const char *body, struct resp *r)
{
	struct curl_slist *h = NULL;
	char hdr[256];

	memset(r, 0, sizeof(*r));
	buf_init(&r->body, 64 * 1024 * 1024);
	curl_easy_reset(T.curl);
	curl_easy_setopt(T.curl, CURLOPT_URL, url);
	curl_easy_setopt(T.curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(T.curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(T.curl, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(T.curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(T.curl, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(T.curl, CURLOPT_TIMEOUT, 20L);
	if (token) {
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s", token);
		h = curl_slist_append(h, hdr);
	}
	if (ctype) {
		snprintf(hdr, sizeof(hdr), "Content-Type: %s", ctype);
		h = curl_slist_append(h, hdr);
	}
	if (body)
		curl_easy_setopt(T.curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(T.curl, CURLOPT_HTTPHEADER, h);
	r->rc = curl_easy_perform(T.curl);
	curl_easy_getinfo(T.curl, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
}

static void resp_release(struct resp *r)
{
	buf_release(&r->body);
}

/* GET base+path with the static token; the parsed body (caller decrefs) or NULL. */
static json_t *api_get(const struct simproc *p, const char *path, long *status)
{
	char url[4096];
	struct resp r;
	json_t *j;

	snprintf(url, sizeof(url), "%s%s", p->base, path);
	http("GET", url, STATIC_TOKEN, NULL, NULL, &r);
	*status = r.status;
	j = r.body.data ? json_loads(r.body.data, 0, NULL) : NULL;
	resp_release(&r);
	return j;
}

/* An admin call with a JSON body (or NULL); the parsed answer or NULL (204, errors). */
static json_t *admin(const struct simproc *p, const char *method, const char *path,
                     const char *body, long *status)
{
	char url[512];
	struct resp r;
	json_t *j;

	snprintf(url, sizeof(url), "%s/_sim%s", p->base, path);
	http(method, url, NULL, "application/json", body, &r);
	*status = r.status;
	j = r.body.data && r.body.len ? json_loads(r.body.data, 0, NULL) : NULL;
	resp_release(&r);
	return j;
}

static json_t *example(const char *name)
{
	char path[256];
	json_error_t err;
	json_t *j;

	snprintf(path, sizeof(path), EXAMPLES "%s.json", name);
	j = json_load_file(path, 0, &err);
	if (j == NULL)
		fail_msg("%s: %s", path, err.text);
	return j;
}

/* Same keys and value types as the example, recursively. Allowed differences: a null in
 * the example matches null or a string (the recording fields the docs leave null); integer
 * and real are one "number" type (the docs write motion as 0 and as 0.0); an array's every
 * element matches the example's first element (any elements when the example is empty). */
static bool same_shape(json_t *ex, json_t *got, const char *path, char *why, size_t whylen)
{
	char sub[512];

	if (json_is_null(ex)) {
		if (json_is_null(got) || json_is_string(got))
			return true;
		snprintf(why, whylen, "%s: null or string expected", path);
		return false;
	}
	if (json_is_number(ex)) {
		if (json_is_number(got))
			return true;
		snprintf(why, whylen, "%s: number expected", path);
		return false;
	}
	if (json_typeof(ex) != json_typeof(got) && !(json_is_boolean(ex) && json_is_boolean(got))) {
		snprintf(why, whylen, "%s: type %d expected, got %d", path, json_typeof(ex),
		         got ? (int)json_typeof(got) : -1);
		return false;
	}
	if (json_is_object(ex)) {
		const char *k;
		json_t *v;
		json_object_foreach(ex, k, v)
		{
			snprintf(sub, sizeof(sub), "%s.%s", path, k);
			if (json_object_get(got, k) == NULL) {
				snprintf(why, whylen, "%s: missing", sub);
				return false;
			}
			if (!same_shape(v, json_object_get(got, k), sub, why, whylen))
				return false;
		}
		json_object_foreach(got, k, v)
		{
			if (json_object_get(ex, k) == NULL) {
				snprintf(why, whylen, "%s.%s: not in the example", path, k);
				return false;
			}
		}
	}
	if (json_is_array(ex) && json_array_size(ex) > 0) {
		size_t i;
		json_t *v;
		json_array_foreach(got, i, v)
		{
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if (!same_shape(json_array_get(ex, 0), v, sub, why, whylen))
				return false;
		}
	}
	return true;
}

static void assert_shape(const char *name, json_t *got)
{
	json_t *ex = example(name);
	char why[1024] = "";
	bool ok;

	assert_non_null(got);
	ok = same_shape(ex, got, "$", why, sizeof(why));
	json_decref(ex);
	if (!ok)
		fail_msg("%s: %s", name, why);
}

static size_t data_len(json_t *doc)
{
	return json_array_size(json_object_get(doc, "data"));
}

/* A fresh zone of sim a (so injected data is alone in it); writes its id. */
static void new_zone(char id[32], const char *location)
{
	char body[256];
	long st;
	json_t *j;

	if (location)
		snprintf(body, sizeof(body), "{\"name\":\"Test zone\",\"location_id\":\"%s\"}",
		         location);
	else
		snprintf(body, sizeof(body), "{\"name\":\"Test zone\"}");
	j = admin(&T.a, "POST", "/zones", body, &st);
	assert_int_equal(st, 201);
	snprintf(id, 32, "%s",
	         json_string_value(json_object_get(json_object_get(j, "data"), "id")));
	assert_int_equal(strlen(id), 24);
	json_decref(j);
}

/* Injects an event; returns its id in id (may be NULL). */
static json_t *add_event(const char *zone, const char *starts, const char *ends, bool complete)
{
	char body[512];
	long st;
	json_t *j;

	snprintf(body, sizeof(body),
	         "{\"zone_id\":\"%s\",\"starts_at\":\"%s\",\"ends_at\":%s%s%s,\"complete\":%s,"
	         "\"severity\":\"high\",\"flags\":[\"intrusion\",\"tripwire\"],\"motion\":0.5}",
	         zone, starts, ends ? "\"" : "", ends ? ends : "null", ends ? "\"" : "",
	         complete ? "true" : "false");
	j = admin(&T.a, "POST", "/events", body, &st);
	assert_int_equal(st, 201);
	return j;
}

static const char *attr_str(json_t *doc_data, const char *key)
{
	return json_string_value(json_object_get(json_object_get(doc_data, "attributes"), key));
}

static int count_events(const char *zone, const char *query)
{
	char path[1024];
	long st;
	json_t *j;
	int n;

	snprintf(path, sizeof(path), "/api/v3p/events?zone_id=%s&%s", zone, query);
	j = api_get(&T.a, path, &st);
	assert_int_equal(st, 200);
	assert_non_null(j);
	n = (int)data_len(j);
	json_decref(j);
	return n;
}

static const char *first_zone(void)
{
	static char id[32];
	long st;
	json_t *j = api_get(&T.a, "/api/v3p/zones", &st);
	assert_int_equal(st, 200);
	snprintf(id, sizeof(id), "%s",
	         json_string_value(
	             json_object_get(json_array_get(json_object_get(j, "data"), 0), "id")));
	json_decref(j);
	return id;
}

static int setup(void **state)
{
	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	T.curl = curl_easy_init();
	if (T.curl == NULL)
		return -1;
	return sim_start(&T.a, "--seed", "42", "--backlog", "300", "--backlog-span", "10m",
	                 "--zones", "4", "--locations", "2", NULL);
}

static int teardown(void **state)
{
	int rc = sim_stop(&T.a);
	(void)state;
	curl_easy_cleanup(T.curl);
	curl_global_cleanup();
	if (rc != 0)
		fprintf(stderr, "tether-sim exited with %d\n", rc);
	return rc == 0 ? 0 : -1;
}

/* ---- documents match the examples ---- */

static void test_zones_document_matches_example(void **state)
{
	long st;
	json_t *j = api_get(&T.a, "/api/v3p/zones", &st);
	(void)state;
	assert_int_equal(st, 200);
	assert_int_equal(data_len(j), 4);
	assert_shape("zones", j);
	assert_string_equal(attr_str(json_array_get(json_object_get(j, "data"), 0), "name"),
	                    "Front Door");
	json_decref(j);
}

static void test_events_document_matches_example(void **state)
{
	char path[256];
	long st;
	json_t *j;

	(void)state;
	snprintf(path, sizeof(path), "/api/v3p/events?zone_id=%s", first_zone());
	j = api_get(&T.a, path, &st);
	assert_int_equal(st, 200);
	assert_true(data_len(j) > 10);
	assert_shape("events", j);
	json_decref(j);
}

static void test_events_at_document_matches_example(void **state)
{
	char zone[32], path[256];
	long st;
	json_t *e, *j;

	(void)state;
	new_zone(zone, NULL);
	e = add_event(zone, "2021-03-04T10:00:00.000Z", "2021-03-04T10:42:00.000Z", true);
	json_decref(e);
	snprintf(path, sizeof(path), "/api/v3p/events?zone_id=%s&at=2021-03-04%%2010:30:00", zone);
	j = api_get(&T.a, path, &st);
	assert_int_equal(st, 200);
	assert_int_equal(data_len(j), 1);
	assert_shape("events_at", j);
	json_decref(j);
}

static void test_lpr_document_matches_example(void **state)
{
	char path[256];
	long st;
	json_t *j;
	size_t total = 0;

	(void)state;
	/* 30 backlog plates over 4 zones: take the whole zone list. */
	for (int z = 0; z < 4; z++) {
		json_t *zones = api_get(&T.a, "/api/v3p/zones", &st);
		const char *id = json_string_value(
		    json_object_get(json_array_get(json_object_get(zones, "data"), z), "id"));
		snprintf(path, sizeof(path), "/api/v3p/lpr?zone_id=%s", id);
		json_decref(zones);
		j = api_get(&T.a, path, &st);
		assert_int_equal(st, 200);
		assert_shape("lpr", j);
		total += data_len(j);
		json_decref(j);
	}
	assert_int_equal(total, 30);
}

static void test_perspectives_document_matches_example(void **state)
{
	long st;
	json_t *j = api_get(&T.a, "/api/v3p/perspectives", &st);
	(void)state;
	assert_int_equal(st, 200);
	assert_true(data_len(j) > 0);
	assert_shape("perspectives", j);
	json_decref(j);
}

static void test_recordings_and_recording_match_examples(void **state)
{
	char path[256];
	const char *id;
	long st;
	json_t *j, *one;

	(void)state;
	snprintf(path, sizeof(path), "/api/v3p/recordings?zone_id=%s", first_zone());
	j = api_get(&T.a, path, &st);
	assert_int_equal(st, 200);
	assert_true(data_len(j) > 0);
	assert_shape("recordings", j);
	id =
	    json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 1), "id"));
	snprintf(path, sizeof(path), "/api/v3p/recordings/%s", id);
	one = api_get(&T.a, path, &st);
	assert_int_equal(st, 200);
	assert_shape("recording", one);
	assert_int_equal(json_array_size(json_object_get(one, "included")), 2);
	json_decref(one);
	json_decref(j);
	one = api_get(&T.a, "/api/v3p/recordings/000000000000000000000000", &st);
	assert_int_equal(st, 404);
	json_decref(one);
}

static void test_recordings_at_selects_the_clip(void **state)
{
	char path[256];
	const char *start;
	long st;
	json_t *j, *k;
	struct buf q;

	(void)state;
	snprintf(path, sizeof(path), "/api/v3p/recordings?zone_id=%s", first_zone());
	j = api_get(&T.a, path, &st);
	start = attr_str(json_array_get(json_object_get(j, "data"), 2), "starts_at");
	buf_init(&q, 0);
	assert_int_equal(buf_printf(&q, "%s&at=", path), 0);
	assert_int_equal(buf_urlencode(&q, start), 0);
	k = api_get(&T.a, q.data, &st);
	assert_int_equal(st, 200);
	assert_int_equal(data_len(k), 1);
	buf_release(&q);
	json_decref(k);
	json_decref(j);
}

/* ---- filters ---- */

static void test_events_window_to_bounds_start(void **state)
{
	char zone[32];
	(void)state;
	new_zone(zone, NULL);
	json_decref(add_event(zone, "2021-03-04T10:00:00.000Z", "2021-03-04T10:10:00.000Z", true));
	json_decref(add_event(zone, "2021-03-04T10:20:00.000Z", "2021-03-04T10:25:00.000Z", true));
	/* from <= starts_at < to */
	assert_int_equal(count_events(zone, "from=2021-03-04%2010:05:00&to=2021-03-04%2010:22:00"),
	                 1);
	assert_int_equal(count_events(zone, "from=2021-03-04%2010:00:00&to=2021-03-04%2010:20:00"),
	                 1);
	assert_int_equal(count_events(zone, "from=2021-03-04%2010:00:00"), 2);
	assert_int_equal(count_events(zone, "to=2021-03-04%2010:00:00"), 0);
	assert_int_equal(count_events(zone, "to=2021-03-04%2010:00:00.001"), 1);
}

static void test_events_window_to_bounds_end(void **state)
{
	char zone[32];
	long st;
	(void)state;
	new_zone(zone, NULL);
	json_decref(add_event(zone, "2021-03-04T10:00:00.000Z", "2021-03-04T10:10:00.000Z", true));
	json_decref(add_event(zone, "2021-03-04T10:20:00.000Z", "2021-03-04T10:25:00.000Z", true));
	json_decref(add_event(zone, "2021-03-04T09:00:00.000Z", NULL, false)); /* open */
	json_decref(admin(&T.a, "PUT", "/config", "{\"to_bounds\":\"end\"}", &st));
	assert_int_equal(st, 200);
	/* overlap with [from, to): the first ends after from, the open one ends now */
	assert_int_equal(count_events(zone, "from=2021-03-04%2010:05:00&to=2021-03-04%2010:22:00"),
	                 3);
	assert_int_equal(count_events(zone, "from=2021-03-04%2010:11:00&to=2021-03-04%2010:20:00"),
	                 1);
	assert_int_equal(count_events(zone, "from=2021-03-04%2010:26:00"), 1);
	json_decref(admin(&T.a, "PUT", "/config", "{\"to_bounds\":\"start\"}", &st));
	assert_int_equal(count_events(zone, "from=2021-03-04%2010:05:00&to=2021-03-04%2010:22:00"),
	                 1);
}

static void test_events_at_finds_containing_and_open(void **state)
{
	char zone[32];
	(void)state;
	new_zone(zone, NULL);
	json_decref(add_event(zone, "2021-03-04T10:00:00.000Z", "2021-03-04T10:10:00.000Z", true));
	json_decref(add_event(zone, "2021-03-04T10:30:00.000Z", NULL, false));
	assert_int_equal(count_events(zone, "at=2021-03-04%2010:05:00"), 1);
	assert_int_equal(count_events(zone, "at=2021-03-04%2010:10:00"), 1);
	assert_int_equal(count_events(zone, "at=2021-03-04%2010:15:00"), 0);
	assert_int_equal(count_events(zone, "at=2021-03-04%2009:59:59"), 0);
	assert_int_equal(count_events(zone, "at=2021-03-05%2011:00:00"), 1);
}

static void test_lpr_window(void **state)
{
	static const char *const times[] = {"2021-03-04T10:00:00.000Z", "2021-03-04T10:05:00.000Z",
	                                    "2021-03-04T10:10:00.000Z"};
	char zone[32], body[256], path[512];
	long st;
	json_t *j;

	(void)state;
	new_zone(zone, NULL);
	for (int i = 0; i < 3; i++) {
		snprintf(body, sizeof(body),
		         "{\"zone_id\":\"%s\",\"plate_number\":\"AB12CDE\","
		         "\"country\":\"GBR\",\"starts_at\":\"%s\"}",
		         zone, times[i]);
		j = admin(&T.a, "POST", "/lprs", body, &st);
		assert_int_equal(st, 201);
		assert_string_equal(attr_str(json_object_get(j, "data"), "plate_number"),
		                    "AB12CDE");
		json_decref(j);
	}
	snprintf(path, sizeof(path),
	         "/api/v3p/lpr?zone_id=%s&starts_at=2021-03-04+10%%3A00%%3A00.000+UTC"
	         "&ends_at=2021-03-04+10%%3A10%%3A00.000+UTC",
	         zone);
	j = api_get(&T.a, path, &st);
	assert_int_equal(st, 200);
	assert_int_equal(data_len(j), 2);
	assert_shape("lpr", j);
	json_decref(j);
}

static void test_zones_filter_by_location_id(void **state)
{
	char path[256];
	long st;
	json_t *z = admin(&T.a, "GET", "/zones", NULL, &st), *j;
	const char *loc;
	size_t expect = 0, i;
	json_t *v;

	(void)state;
	assert_int_equal(st, 200);
	loc = json_string_value(
	    json_object_get(json_array_get(json_object_get(z, "zones"), 1), "location_id"));
	json_array_foreach(json_object_get(z, "zones"), i, v) expect +=
	    strcmp(json_string_value(json_object_get(v, "location_id")), loc) == 0;
	snprintf(path, sizeof(path), "/api/v3p/zones?location_id=%s", loc);
	j = api_get(&T.a, path, &st);
	assert_int_equal(st, 200);
	assert_int_equal(data_len(j), expect);
	assert_true(expect < json_array_size(json_object_get(z, "zones")));
	json_decref(j);
	json_decref(z);
}

static void test_time_formats_of_the_docs_are_accepted(void **state)
{
	static const char *const same[] = {
	    "from=2021-03-04%2010:00:00",           /* no zone: UTC */
	    "from=2021-03-04+10%3A00%3A00.000+UTC", /* the lpr example's form */
	    "from=2021-03-04%2010:00:00.000%20UTC",
	    "from=2021-03-04T11:00:00.000%2B01:00", /* ISO with offset */
	    "from=2021-03-04T11:00:00.000+01:00",   /* unencoded '+' */
	    "from=2021-03-04T10:00:00Z",
	    "from=2021-03-04%2011:00:00%20%2B0100", /* the timelapse form */
	};
	char zone[32], path[256];
	long st;
	json_t *j;

	(void)state;
	new_zone(zone, NULL);
	json_decref(add_event(zone, "2021-03-04T09:59:59.999Z", "2021-03-04T10:10:00.000Z", true));
	json_decref(add_event(zone, "2021-03-04T10:00:00.000Z", "2021-03-04T10:10:00.000Z", true));
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		if (count_events(zone, same[i]) != 1)
			fail_msg("%s: expected 1 event", same[i]);
	snprintf(path, sizeof(path), "/api/v3p/events?zone_id=%s&from=yesterday", zone);
	j = api_get(&T.a, path, &st);
	assert_int_equal(st, 400);
	json_decref(j);
}

static void test_missing_zone_id_is_400_and_unknown_zone_404(void **state)
{
	static const char *const paths[] = {"/api/v3p/events", "/api/v3p/lpr",
	                                    "/api/v3p/recordings"};
	char path[256];
	long st;

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		json_t *j = api_get(&T.a, paths[i], &st);
		assert_int_equal(st, 400);
		assert_non_null(json_object_get(j, "errors"));
		json_decref(j);
		snprintf(path, sizeof(path), "%s?zone_id=ffffffffffffffffffffffff", paths[i]);
		j = api_get(&T.a, path, &st);
		assert_int_equal(st, 404);
		json_decref(j);
	}
}

static void test_live_switch_preset(void **state)
{
	char url[512];
	long st;
	struct resp r;
	json_t *j = api_get(&T.a, "/api/v3p/perspectives", &st);
	const char *id =
	    json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "id"));

	(void)state;
	snprintf(url, sizeof(url), "%s/api/v3p/perspectives/%s/live_switch_preset", T.a.base, id);
	http("POST", url, STATIC_TOKEN, NULL, "", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.body.len, 0);
	resp_release(&r);
	snprintf(url, sizeof(url), "%s/api/v3p/perspectives/nope/live_switch_preset", T.a.base);
	http("POST", url, STATIC_TOKEN, NULL, "", &r);
	assert_int_equal(r.status, 404);
	resp_release(&r);
	json_decref(j);
}

static void test_deleted_zone_is_gone(void **state)
{
	char zone[32], path[128];
	long st;
	json_t *j;

	(void)state;
	new_zone(zone, NULL);
	snprintf(path, sizeof(path), "/zones/%s", zone);
	j = admin(&T.a, "DELETE", path, NULL, &st);
	assert_int_equal(st, 204);
	json_decref(j);
	snprintf(path, sizeof(path), "/api/v3p/events?zone_id=%s", zone);
	j = api_get(&T.a, path, &st);
	assert_int_equal(st, 404);
	json_decref(j);
}

/* ---- OAuth2 ---- */

/* authorize + exchange; the token document (caller decrefs). */
static json_t *obtain_token(const struct simproc *p)
{
	char url[512], body[512];
	const char *code;
	struct resp r;
	json_t *j;

	snprintf(url, sizeof(url),
	         "%s/oauth/authorize?client_id=sim-client&redirect_uri="
	         "https%%3A%%2F%%2Fmy.site.com%%2Fcb&response_type=code",
	         p->base);
	http("GET", url, NULL, NULL, NULL, &r);
	assert_int_equal(r.status, 302);
	code = strstr(r.location, "code=");
	assert_non_null(code);
	snprintf(body, sizeof(body),
	         "client_id=sim-client&client_secret=sim-secret&code=%.64s"
	         "&grant_type=authorization_code&redirect_uri=https%%3A%%2F%%2Fmy.site.com%%2Fcb",
	         code + 5);
	resp_release(&r);
	snprintf(url, sizeof(url), "%s/oauth/token", p->base);
	http("POST", url, NULL, "application/x-www-form-urlencoded", body, &r);
	assert_int_equal(r.status, 200);
	j = json_loads(r.body.data, 0, NULL);
	resp_release(&r);
	assert_non_null(j);
	return j;
}

static long token_status(const struct simproc *p, const char *token)
{
	char url[256];
	struct resp r;
	long st;

	snprintf(url, sizeof(url), "%s/api/v3p/zones", p->base);
	http("GET", url, token, NULL, NULL, &r);
	st = r.status;
	if (st == 401)
		assert_true(r.www_auth);
	resp_release(&r);
	return st;
}

static void test_oauth_authorize_redirects_with_code_and_state(void **state)
{
	char url[512];
	struct resp r;

	(void)state;
	snprintf(url, sizeof(url),
	         "%s/oauth/authorize?client_id=sim-client&redirect_uri="
	         "https%%3A%%2F%%2Fmy.site.com%%2Fcb%%3Fa%%3D1&response_type=code&state=s1",
	         T.a.base);
	http("GET", url, NULL, NULL, NULL, &r);
	assert_int_equal(r.status, 302);
	assert_true(strncmp(r.location, "https://my.site.com/cb?a=1&code=", 32) == 0);
	assert_int_equal(strspn(r.location + 32, "0123456789abcdef"), 64);
	assert_string_equal(r.location + 96, "&state=s1");
	resp_release(&r);
	snprintf(url, sizeof(url),
	         "%s/oauth/authorize?client_id=other&redirect_uri="
	         "https%%3A%%2F%%2Fmy.site.com%%2Fcb&response_type=code",
	         T.a.base);
	http("GET", url, NULL, NULL, NULL, &r);
	assert_int_equal(r.status, 400);
	resp_release(&r);
}

static void test_oauth_token_document_and_use(void **state)
{
	json_t *t = obtain_token(&T.a);
	(void)state;
	assert_shape("token", t);
	assert_string_equal(json_string_value(json_object_get(t, "token_type")), "Bearer");
	assert_int_equal(json_integer_value(json_object_get(t, "expires_in")), 3600);
	assert_int_equal(token_status(&T.a, json_string_value(json_object_get(t, "access_token"))),
	                 200);
	json_decref(t);
}

static void test_oauth_code_is_single_use(void **state)
{
	char url[512], body[512];
	const char *code;
	struct resp r;

	(void)state;
	snprintf(url, sizeof(url),
	         "%s/oauth/authorize?client_id=sim-client&redirect_uri=x"
	         "&response_type=code",
	         T.a.base);
	http("GET", url, NULL, NULL, NULL, &r);
	code = strstr(r.location, "code=");
	assert_non_null(code);
	snprintf(body, sizeof(body),
	         "client_id=sim-client&client_secret=sim-secret&code=%.64s"
	         "&grant_type=authorization_code&redirect_uri=x",
	         code + 5);
	resp_release(&r);
	snprintf(url, sizeof(url), "%s/oauth/token", T.a.base);
	http("POST", url, NULL, "application/x-www-form-urlencoded", body, &r);
	assert_int_equal(r.status, 200);
	resp_release(&r);
	http("POST", url, NULL, "application/x-www-form-urlencoded", body, &r);
	assert_int_equal(r.status, 400);
	assert_non_null(strstr(r.body.data, "\"invalid_grant\""));
	resp_release(&r);
}

static void test_oauth_bad_client_secret_is_401(void **state)
{
	char url[256];
	struct resp r;

	(void)state;
	snprintf(url, sizeof(url), "%s/oauth/token", T.a.base);
	http("POST", url, NULL, "application/x-www-form-urlencoded",
	     "client_id=sim-client&client_secret=wrong&grant_type=refresh_token&refresh_token=x",
	     &r);
	assert_int_equal(r.status, 401);
	assert_non_null(strstr(r.body.data, "\"error_description\""));
	resp_release(&r);
}

static void test_oauth_refresh_rotates(void **state)
{
	json_t *t = obtain_token(&T.a), *t2;
	char url[256], body[512];
	struct resp r;

	(void)state;
	snprintf(url, sizeof(url), "%s/oauth/token", T.a.base);
	snprintf(body, sizeof(body),
	         "client_id=sim-client&client_secret=sim-secret"
	         "&grant_type=refresh_token&refresh_token=%s",
	         json_string_value(json_object_get(t, "refresh_token")));
	http("POST", url, NULL, "application/x-www-form-urlencoded", body, &r);
	assert_int_equal(r.status, 200);
	t2 = json_loads(r.body.data, 0, NULL);
	resp_release(&r);
	assert_shape("token", t2);
	assert_string_not_equal(json_string_value(json_object_get(t2, "refresh_token")),
	                        json_string_value(json_object_get(t, "refresh_token")));
	assert_int_equal(token_status(&T.a, json_string_value(json_object_get(t2, "access_token"))),
	                 200);
	http("POST", url, NULL, "application/x-www-form-urlencoded", body, &r); /* old one */
	assert_int_equal(r.status, 400);
	resp_release(&r);
	json_decref(t2);
	json_decref(t);
}

static void test_oauth_expired_token_is_401(void **state)
{
	struct simproc *b = &T.b;
	json_t *t;

	(void)state;
	assert_int_equal(sim_start(b, "--token-ttl", "1", "--zones", "1", NULL), 0);
	t = obtain_token(b);
	assert_int_equal(json_integer_value(json_object_get(t, "expires_in")), 1);
	assert_int_equal(token_status(b, json_string_value(json_object_get(t, "access_token"))),
	                 200);
	sleep_ms(1100);
	assert_int_equal(token_status(b, json_string_value(json_object_get(t, "access_token"))),
	                 401);
	json_decref(t);
	assert_int_equal(sim_stop(b), 0);
}

static void test_oauth_revoked_token_is_401_static_stays(void **state)
{
	json_t *t = obtain_token(&T.a);
	long st;

	(void)state;
	json_decref(admin(&T.a, "POST", "/faults", "{\"count\":0,\"revoke_tokens\":true}", &st));
	assert_int_equal(st, 201);
	assert_int_equal(token_status(&T.a, json_string_value(json_object_get(t, "access_token"))),
	                 401);
	assert_int_equal(token_status(&T.a, STATIC_TOKEN), 200);
	assert_int_equal(token_status(&T.a, "not-a-token"), 401);
	assert_int_equal(token_status(&T.a, NULL), 401);
	json_decref(t);
}

/* ---- admin API and faults ---- */

static void test_admin_patch_bumps_updated_at(void **state)
{
	char zone[32], path[128];
	const char *id;
	char before[64], created[64];
	long st;
	json_t *e, *p, *attrs;

	(void)state;
	new_zone(zone, NULL);
	e = add_event(zone, "2021-03-04T10:00:00.000Z", NULL, false);
	id = json_string_value(json_object_get(json_object_get(e, "data"), "id"));
	snprintf(before, sizeof(before), "%s", attr_str(json_object_get(e, "data"), "updated_at"));
	snprintf(created, sizeof(created), "%s",
	         attr_str(json_object_get(e, "data"), "created_at"));
	assert_true(json_is_null(
	    json_object_get(json_object_get(json_object_get(e, "data"), "attributes"), "ends_at")));
	snprintf(path, sizeof(path), "/events/%s", id);
	p = admin(&T.a, "PATCH", path,
	          "{\"complete\":true,\"ends_at\":\"2021-03-04T10:05:00Z\","
	          "\"flags\":[\"face\"],\"severity\":\"critical\"}",
	          &st);
	assert_int_equal(st, 200);
	attrs = json_object_get(json_object_get(p, "data"), "attributes");
	assert_true(json_is_true(json_object_get(attrs, "complete")));
	assert_true(json_is_true(json_object_get(attrs, "has_face")));
	assert_true(json_is_false(json_object_get(attrs, "has_intrusion")));
	assert_string_equal(json_string_value(json_object_get(attrs, "severity")), "critical");
	assert_int_equal(json_integer_value(json_object_get(attrs, "duration")), 300);
	assert_string_equal(json_string_value(json_object_get(attrs, "created_at")), created);
	{
		int64_t a, b;
		assert_int_equal(util_parse_time(before, &a, NULL), 0);
		assert_int_equal(
		    util_parse_time(json_string_value(json_object_get(attrs, "updated_at")), &b,
		                    NULL),
		    0);
		assert_true(b > a);
	}
	json_decref(p);
	json_decref(e);
}

static void test_open_event_ends_at_modes(void **state)
{
	char zone[32];
	long st;
	json_t *e, *attrs;

	(void)state;
	new_zone(zone, NULL);
	json_decref(admin(&T.a, "PUT", "/config", "{\"open_ends_at\":\"start\"}", &st));
	e = add_event(zone, "2021-03-04T10:00:00.000Z", NULL, false);
	attrs = json_object_get(json_object_get(e, "data"), "attributes");
	assert_true(json_is_false(json_object_get(attrs, "complete")));
	assert_string_equal(json_string_value(json_object_get(attrs, "ends_at")),
	                    json_string_value(json_object_get(attrs, "starts_at")));
	json_decref(e);
	json_decref(admin(&T.a, "PUT", "/config", "{\"open_ends_at\":\"now\"}", &st));
	e = add_event(zone, "2021-03-04T10:00:00.000Z", NULL, false);
	attrs = json_object_get(json_object_get(e, "data"), "attributes");
	assert_true(json_integer_value(json_object_get(attrs, "duration")) > 3600);
	json_decref(e);
	json_decref(admin(&T.a, "PUT", "/config", "{\"open_ends_at\":\"null\"}", &st));
	assert_int_equal(st, 200);
}

static void test_fault_status_k_times_then_ok_with_retry_after(void **state)
{
	char url[256];
	struct resp r;
	long st;

	(void)state;
	json_decref(admin(
	    &T.a, "POST", "/faults",
	    "{\"count\":2,\"status\":503,\"retry_after\":\"3\",\"path\":\"/api/v3p/zones\"}", &st));
	assert_int_equal(st, 201);
	snprintf(url, sizeof(url), "%s/api/v3p/zones", T.a.base);
	for (int i = 0; i < 2; i++) {
		http("GET", url, STATIC_TOKEN, NULL, NULL, &r);
		assert_int_equal(r.status, 503);
		assert_string_equal(r.retry_after, "3");
		resp_release(&r);
	}
	http("GET", url, STATIC_TOKEN, NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.retry_after, "");
	resp_release(&r);
}

static void test_fault_path_prefix_spares_other_paths(void **state)
{
	long st;
	json_t *j;

	(void)state;
	json_decref(admin(&T.a, "POST", "/faults",
	                  "{\"count\":1,\"status\":500,\"path\":\"/api/v3p/lpr\"}", &st));
	j = api_get(&T.a, "/api/v3p/zones", &st);
	assert_int_equal(st, 200);
	json_decref(j);
	json_decref(admin(&T.a, "DELETE", "/faults", NULL, &st));
	assert_int_equal(st, 204);
	j = admin(&T.a, "GET", "/stats", NULL, &st);
	assert_int_equal(json_integer_value(json_object_get(j, "faults")), 0);
	json_decref(j);
}

/* Body of the next /zones request after arming a body fault. */
static void body_fault(const char *kind, struct resp *r)
{
	char body[128], url[256];
	long st;

	snprintf(body, sizeof(body), "{\"count\":1,\"body\":\"%s\"}", kind);
	json_decref(admin(&T.a, "POST", "/faults", body, &st));
	assert_int_equal(st, 201);
	snprintf(url, sizeof(url), "%s/api/v3p/zones", T.a.base);
	http("GET", url, STATIC_TOKEN, NULL, NULL, r);
}

static void test_fault_bodies(void **state)
{
	struct resp r;
	json_t *j;

	(void)state;
	body_fault("malformed", &r);
	assert_int_equal(r.status, 200);
	assert_null(json_loads(r.body.data, 0, NULL));
	resp_release(&r);

	body_fault("truncated", &r);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.rc, CURLE_OK);
	assert_null(json_loads(r.body.data, 0, NULL));
	resp_release(&r);

	body_fault("wrong-shape", &r);
	j = json_loads(r.body.data, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_object(json_object_get(j, "data")));
	json_decref(j);
	resp_release(&r);

	body_fault("huge", &r);
	assert_true(r.body.len >= 20 * 1024 * 1024);
	resp_release(&r);

	body_fault("cut", &r);
	assert_int_not_equal(r.rc, CURLE_OK);
	resp_release(&r);

	/* and the next request is served normally */
	body_fault("wrong-shape", &r);
	resp_release(&r);
	{
		long st;
		j = api_get(&T.a, "/api/v3p/zones", &st);
		assert_int_equal(st, 200);
		assert_shape("zones", j);
		json_decref(j);
	}
}

static void test_fault_delay(void **state)
{
	long st;
	int64_t t0;
	json_t *j;

	(void)state;
	json_decref(admin(&T.a, "POST", "/faults", "{\"count\":1,\"delay_ms\":300}", &st));
	t0 = util_mono_ms();
	j = api_get(&T.a, "/api/v3p/zones", &st);
	assert_int_equal(st, 200);
	assert_true(util_mono_ms() - t0 >= 300);
	json_decref(j);
}

static void test_request_log_records_auth(void **state)
{
	char url[256];
	struct resp r;
	long st;
	json_t *log, *reqs;

	(void)state;
	json_decref(admin(&T.a, "DELETE", "/requests", NULL, &st));
	assert_int_equal(st, 204);
	snprintf(url, sizeof(url), "%s/api/v3p/zones?location_id=x%%20y", T.a.base);
	http("GET", url, STATIC_TOKEN, NULL, NULL, &r);
	resp_release(&r);
	http("GET", url, NULL, NULL, NULL, &r);
	resp_release(&r);
	http("GET", url, "wrong", NULL, NULL, &r);
	resp_release(&r);
	log = admin(&T.a, "GET", "/requests", NULL, &st);
	reqs = json_object_get(log, "requests");
	assert_int_equal(json_array_size(reqs), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(reqs, 0), "auth")),
	                    "bearer");
	assert_string_equal(json_string_value(json_object_get(json_array_get(reqs, 1), "auth")),
	                    "none");
	assert_string_equal(json_string_value(json_object_get(json_array_get(reqs, 2), "auth")),
	                    "invalid");
	assert_string_equal(json_string_value(json_object_get(json_array_get(reqs, 0), "query")),
	                    "location_id=x%20y");
	assert_string_equal(json_string_value(json_object_get(json_array_get(reqs, 0), "path")),
	                    "/api/v3p/zones");
	assert_int_equal(json_integer_value(json_object_get(json_array_get(reqs, 1), "status")),
	                 401);
	json_decref(log);
}

static void test_generate_adds_items(void **state)
{
	long st;
	json_t *before = admin(&T.a, "GET", "/stats", NULL, &st), *after;

	(void)state;
	json_decref(admin(&T.a, "POST", "/generate", "{\"events\":25,\"plates\":5}", &st));
	assert_int_equal(st, 200);
	after = admin(&T.a, "GET", "/stats", NULL, &st);
	assert_int_equal(json_integer_value(json_object_get(after, "events")),
	                 json_integer_value(json_object_get(before, "events")) + 25);
	assert_int_equal(json_integer_value(json_object_get(after, "plates")),
	                 json_integer_value(json_object_get(before, "plates")) + 5);
	json_decref(after);
	json_decref(before);
}

static void test_large_backlog_loads_and_serves_windows(void **state)
{
	struct simproc *b = &T.b;
	char path[512];
	long st;
	json_t *j, *e;
	struct buf q;
	size_t i;
	int64_t from = util_now_ms() - 5 * 60 * 1000, t;
	char from_s[UTIL_TIME_MAX];

	(void)state;
	assert_int_equal(sim_start(b, "--backlog", "100000", "--seed", "7", NULL), 0);
	j = admin(b, "GET", "/stats", NULL, &st);
	assert_int_equal(json_integer_value(json_object_get(j, "events")), 100000);
	assert_int_equal(json_integer_value(json_object_get(j, "plates")), 10000);
	json_decref(j);
	j = api_get(b, "/api/v3p/zones", &st);
	snprintf(path, sizeof(path), "/api/v3p/events?zone_id=%s&from=",
	         json_string_value(
	             json_object_get(json_array_get(json_object_get(j, "data"), 0), "id")));
	json_decref(j);
	/* the last five minutes of an hour-long backlog: about 1/12 of a zone's 33k events */
	util_format_api(from, from_s);
	buf_init(&q, 0);
	assert_int_equal(buf_puts(&q, path), 0);
	assert_int_equal(buf_urlencode(&q, from_s), 0);
	j = api_get(b, q.data, &st);
	buf_release(&q);
	assert_int_equal(st, 200);
	assert_true(data_len(j) > 1000 && data_len(j) < 10000);
	json_array_foreach(json_object_get(j, "data"), i, e)
	{
		assert_int_equal(util_parse_time(attr_str(e, "starts_at"), &t, NULL), 0);
		assert_true(t >= from);
	}
	assert_shape("events", j);
	json_decref(j);
	assert_int_equal(sim_stop(b), 0);
}

static void test_keep_alive_reuses_the_connection(void **state)
{
	char url[256];
	struct resp r;
	long connects = -1;

	(void)state;
	snprintf(url, sizeof(url), "%s/api/v3p/zones", T.a.base);
	http("GET", url, STATIC_TOKEN, NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	resp_release(&r);
	http("GET", url, STATIC_TOKEN, NULL, NULL, &r);
	assert_int_equal(r.status, 200);
	curl_easy_getinfo(T.curl, CURLINFO_NUM_CONNECTS, &connects);
	assert_int_equal(connects, 0);
	resp_release(&r);
}

static void test_same_seed_same_zones(void **state)
{
	struct simproc *b = &T.b;
	long st;
	json_t *ja, *jb;

	(void)state;
	assert_int_equal(sim_start(b, "--seed", "42", "--zones", "4", "--locations", "2", NULL), 0);
	ja = admin(&T.a, "GET", "/zones", NULL, &st);
	jb = admin(b, "GET", "/zones", NULL, &st);
	assert_non_null(jb);
	/* sim a has test zones added after its first four */
	for (size_t i = 0; i < 4; i++)
		assert_true(json_equal(json_array_get(json_object_get(ja, "zones"), i),
		                       json_array_get(json_object_get(jb, "zones"), i)));
	json_decref(ja);
	json_decref(jb);
	assert_int_equal(sim_stop(b), 0);
}

static void test_rate_generates_open_and_complete_events(void **state)
{
	struct simproc *b = &T.b;
	long st;
	json_t *j = NULL;

	(void)state;
	assert_int_equal(sim_start(b, "--rate", "200", "--plate-rate", "50", "--incomplete", "50",
	                           "--zones", "2", NULL),
	                 0);
	for (int i = 0; i < 100; i++) {
		json_decref(j);
		j = admin(b, "GET", "/stats", NULL, &st);
		if (json_integer_value(json_object_get(j, "open_events")) > 0 &&
		    json_integer_value(json_object_get(j, "events")) >
		        json_integer_value(json_object_get(j, "open_events")) &&
		    json_integer_value(json_object_get(j, "plates")) > 0)
			break;
		sleep_ms(20);
	}
	assert_true(json_integer_value(json_object_get(j, "open_events")) > 0);
	assert_true(json_integer_value(json_object_get(j, "events")) >
	            json_integer_value(json_object_get(j, "open_events")));
	assert_true(json_integer_value(json_object_get(j, "plates")) > 0);
	json_decref(j);
	assert_int_equal(sim_stop(b), 0);
}

static int stop_own_sim(void **state)
{
	int rc = 0;
	(void)state;
	if (T.b.pid > 0)
		rc = sim_stop(&T.b);
	return rc == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_zones_document_matches_example),
	    cmocka_unit_test(test_events_document_matches_example),
	    cmocka_unit_test(test_events_at_document_matches_example),
	    cmocka_unit_test(test_lpr_document_matches_example),
	    cmocka_unit_test(test_perspectives_document_matches_example),
	    cmocka_unit_test(test_recordings_and_recording_match_examples),
	    cmocka_unit_test(test_recordings_at_selects_the_clip),
	    cmocka_unit_test(test_events_window_to_bounds_start),
	    cmocka_unit_test(test_events_window_to_bounds_end),
	    cmocka_unit_test(test_events_at_finds_containing_and_open),
	    cmocka_unit_test(test_lpr_window),
	    cmocka_unit_test(test_zones_filter_by_location_id),
	    cmocka_unit_test(test_time_formats_of_the_docs_are_accepted),
	    cmocka_unit_test(test_missing_zone_id_is_400_and_unknown_zone_404),
	    cmocka_unit_test(test_live_switch_preset),
	    cmocka_unit_test(test_deleted_zone_is_gone),
	    cmocka_unit_test(test_oauth_authorize_redirects_with_code_and_state),
	    cmocka_unit_test(test_oauth_token_document_and_use),
	    cmocka_unit_test(test_oauth_code_is_single_use),
	    cmocka_unit_test(test_oauth_bad_client_secret_is_401),
	    cmocka_unit_test(test_oauth_refresh_rotates),
	    cmocka_unit_test_teardown(test_oauth_expired_token_is_401, stop_own_sim),
	    cmocka_unit_test(test_oauth_revoked_token_is_401_static_stays),
	    cmocka_unit_test(test_admin_patch_bumps_updated_at),
	    cmocka_unit_test(test_open_event_ends_at_modes),
	    cmocka_unit_test(test_fault_status_k_times_then_ok_with_retry_after),
	    cmocka_unit_test(test_fault_path_prefix_spares_other_paths),
	    cmocka_unit_test(test_fault_bodies),
	    cmocka_unit_test(test_fault_delay),
	    cmocka_unit_test(test_request_log_records_auth),
	    cmocka_unit_test(test_generate_adds_items),
	    cmocka_unit_test(test_keep_alive_reuses_the_connection),
	    cmocka_unit_test_teardown(test_rate_generates_open_and_complete_events, stop_own_sim),
	    cmocka_unit_test_teardown(test_same_seed_same_zones, stop_own_sim),
	    cmocka_unit_test_teardown(test_large_backlog_loads_and_serves_windows, stop_own_sim),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
