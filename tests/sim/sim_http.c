/* The simulator's HTTP front end on libmicrohttpd: one thread per connection (keep-alive
 * works, a delay fault stalls only its own connection), routing to OAuth2, the v3p API and
 * the admin API, fault injection on the way out and the request log. 127.0.0.1 only. */
#include "tests/sim/sim.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define HUGE_BYTES (20 * 1024 * 1024)

struct req {
	char *uri; /* raw request target, query included */
	struct buf body;
	bool started;
};

void sim_reply_json(struct http_reply *r, int status, struct buf *b)
{
	r->len = b->len;
	r->body = buf_steal(b);
	if (r->body == NULL)
		r->len = 0;
	r->status = status;
	r->content_type = "application/json; charset=utf-8";
}

void sim_reply_str(struct http_reply *r, int status, const char *json)
{
	free(r->body);
	r->body = strdup(json);
	r->len = r->body ? strlen(r->body) : 0;
	r->status = r->body ? status : 500;
	r->content_type = "application/json; charset=utf-8";
}

static void api_error(struct http_reply *r, int status, const char *title)
{
	struct buf b;
	buf_init(&b, 0);
	if (buf_printf(&b, "{\"errors\":[{\"status\":\"%d\",\"title\":", status) < 0 ||
	    sim_json_str(&b, title) < 0 || buf_puts(&b, "}]}") < 0) {
		buf_release(&b);
		sim_reply_str(r, 500, "{\"errors\":[{\"status\":\"500\"}]}");
		return;
	}
	sim_reply_json(r, status, &b);
}

int sim_parse_time_param(const char *raw, int64_t *ms)
{
	char *copy;
	int rc;

	if (raw == NULL)
		return -1;
	if (util_parse_time(raw, ms, NULL) == 0)
		return 0;
	/* "2020-03-05+08:51:46.895+UTC": a '+' that stood for a space. */
	copy = strdup(raw);
	if (copy == NULL)
		return -1;
	for (char *p = copy; *p; p++)
		if (*p == '+')
			*p = ' ';
	rc = util_parse_time(copy, ms, NULL);
	free(copy);
	return rc;
}

/* Reads an optional time parameter: 1 set, 0 absent, -1 invalid. */
static int time_param(const struct form *q, const char *key, int64_t *ms)
{
	const char *raw = form_get_raw(q, key);
	if (raw == NULL || *raw == '\0')
		return 0;
	return sim_parse_time_param(raw, ms) == 0 ? 1 : -1;
}

static void reply_doc(struct http_reply *r, int rc, struct buf *b)
{
	if (rc < 0) {
		buf_release(b);
		api_error(r, 500, "out of memory");
		return;
	}
	sim_reply_json(r, 200, b);
}

/* Finds the zone of a zone_id parameter, or answers 400/404 and returns NULL. */
static struct sim_zone *zone_param(struct sim *s, const struct form *q, struct http_reply *r)
{
	const char *id = form_get(q, "zone_id");
	struct sim_zone *z;

	if (id == NULL || *id == '\0') {
		api_error(r, 400, "zone_id is required");
		return NULL;
	}
	z = sim_zone_find(s, id);
	if (z == NULL)
		api_error(r, 404, "zone not found");
	return z;
}

static void api_events(struct sim *s, const struct form *q, struct http_reply *r)
{
	struct sim_zone *z = zone_param(s, q, r);
	int64_t from = 0, to = 0, at = 0, now = util_now_ms();
	int hf, ht, ha;
	struct buf b;

	if (z == NULL)
		return;
	hf = time_param(q, "from", &from);
	ht = time_param(q, "to", &to);
	ha = time_param(q, "at", &at);
	if (hf < 0 || ht < 0 || ha < 0) {
		api_error(r, 400, "unparsable time in from, to or at");
		return;
	}
	buf_init(&b, 0);
	if (ha)
		reply_doc(r, sim_doc_events_at(s, &b, z, at, now), &b);
	else
		reply_doc(r, sim_doc_events_window(s, &b, z, hf, from, ht, to, now), &b);
}

static void api_lpr(struct sim *s, const struct form *q, struct http_reply *r)
{
	struct sim_zone *z = zone_param(s, q, r);
	int64_t from = 0, to = 0;
	int hf, ht;
	struct buf b;

	if (z == NULL)
		return;
	hf = time_param(q, "starts_at", &from);
	ht = time_param(q, "ends_at", &to);
	if (hf < 0 || ht < 0) {
		api_error(r, 400, "unparsable time in starts_at or ends_at");
		return;
	}
	buf_init(&b, 0);
	reply_doc(r, sim_doc_plates(&b, z, hf, from, ht, to), &b);
}

static void api_zones(struct sim *s, const struct form *q, struct http_reply *r)
{
	const char *loc = form_get(q, "location_id");
	bool first = true;
	struct buf b;
	int rc;

	buf_init(&b, 0);
	rc = buf_puts(&b, "{\"data\":[");
	for (size_t i = 0; i < s->nzones; i++) {
		const struct sim_zone *z = s->zones[i];
		if (z->deleted || (loc && *loc && strcmp(loc, z->location_id) != 0))
			continue;
		rc |= buf_puts(&b, first ? "" : ",");
		rc |= sim_render_zone(&b, z);
		first = false;
	}
	rc |= buf_puts(&b, "],\"jsonapi\":{\"version\":\"1.0\"}}");
	reply_doc(r, rc ? -1 : 0, &b);
}

static void api_perspectives(struct sim *s, struct http_reply *r)
{
	struct buf b;
	int rc;

	buf_init(&b, 0);
	rc = buf_puts(&b, "{\"data\":[");
	for (size_t i = 0; i < s->npersp; i++) {
		rc |= buf_puts(&b, i ? "," : "");
		rc |= sim_render_perspective(&b, &s->persp[i], s->zones, s->nzones);
	}
	rc |= buf_puts(&b, "],\"jsonapi\":{\"version\":\"1.0\"}}");
	reply_doc(r, rc ? -1 : 0, &b);
}

static void api_recordings(struct sim *s, const struct form *q, struct http_reply *r)
{
	struct sim_zone *z = zone_param(s, q, r);
	int64_t at = 0;
	int ha;
	struct buf b;

	if (z == NULL)
		return;
	ha = time_param(q, "at", &at);
	if (ha < 0) {
		api_error(r, 400, "unparsable time in at");
		return;
	}
	buf_init(&b, 0);
	reply_doc(r, sim_doc_recordings(&b, z, ha, at), &b);
}

static void api_recording(struct sim *s, const char *id, struct http_reply *r)
{
	struct sim_recording *rec = sim_recording_find(s, id);
	struct buf b;
	int rc;

	if (rec == NULL) {
		api_error(r, 404, "recording not found");
		return;
	}
	buf_init(&b, 0);
	rc = buf_puts(&b, "{\"data\":");
	rc |= sim_render_recording(&b, rec, true);
	rc |= buf_puts(&b, ",\"included\":[");
	rc |= sim_render_recording_included(&b, rec);
	rc |= buf_puts(&b, "]}");
	reply_doc(r, rc ? -1 : 0, &b);
}

static void api_live_switch(struct sim *s, const char *rest, struct http_reply *r)
{
	const char *slash = strchr(rest, '/');

	if (slash == NULL || strcmp(slash, "/live_switch_preset") != 0) {
		api_error(r, 404, "not found");
		return;
	}
	for (size_t i = 0; i < s->npersp; i++) {
		if (strlen(s->persp[i].id) == (size_t)(slash - rest) &&
		    strncmp(s->persp[i].id, rest, (size_t)(slash - rest)) == 0) {
			r->status = 200; /* the docs: 200, no content */
			return;
		}
	}
	api_error(r, 404, "perspective not found");
}

/* /api/v3p below the prefix; the caller holds the lock and checked the token. */
static void api_route(struct sim *s, const char *method, const char *path, const struct form *q,
                      struct http_reply *r)
{
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	if (get && strcmp(path, "/events") == 0)
		api_events(s, q, r);
	else if (get && strcmp(path, "/lpr") == 0)
		api_lpr(s, q, r);
	else if (get && strcmp(path, "/zones") == 0)
		api_zones(s, q, r);
	else if (get && strcmp(path, "/perspectives") == 0)
		api_perspectives(s, r);
	else if (strcmp(method, "POST") == 0 && strncmp(path, "/perspectives/", 14) == 0)
		api_live_switch(s, path + 14, r);
	else if (get && strcmp(path, "/recordings") == 0)
		api_recordings(s, q, r);
	else if (get && strncmp(path, "/recordings/", 12) == 0 && strchr(path + 12, '/') == NULL)
		api_recording(s, path + 12, r);
	else
		api_error(r, 404, "not found");
}

/* Rewrites a real reply into the body fault asked for. */
static void apply_body_fault(const struct sim_fault *f, struct http_reply *r)
{
	static const char malformed[] =
	    "{\"data\":[{\"id\":\"5f06c1a541092788f683f3c8\",\"type\":\"events\","
	    "\"attributes\":{\"severity\":normal,}}],";
	static const char wrong[] =
	    "{\"data\":{\"id\":\"5f06c1a541092788f683f3c8\",\"type\":\"events\","
	    "\"attributes\":{}},\"jsonapi\":{\"version\":\"1.0\"}}";

	if (f->status)
		r->status = f->status;
	else if (r->status == 0 || r->status >= 300)
		r->status = 200;
	r->content_type = "application/json; charset=utf-8";
	switch (f->body) {
	case SIM_BODY_MALFORMED:
		sim_reply_str(r, r->status, malformed);
		break;
	case SIM_BODY_WRONG_SHAPE:
		sim_reply_str(r, r->status, wrong);
		break;
	case SIM_BODY_TRUNCATED:
		if (r->body == NULL || r->len < 2)
			sim_reply_str(r, r->status, "{\"data\":[");
		else
			r->len /= 2;
		break;
	case SIM_BODY_CUT:
		if (r->body == NULL || r->len < 2)
			sim_reply_str(r, r->status,
			              "{\"data\":[],\"jsonapi\":{\"version\":\"1.0\"}}");
		r->cut = SIM_BODY_CUT;
		break;
	case SIM_BODY_HUGE: {
		static const char head[] = "{\"data\":[],\"jsonapi\":{\"version\":\"1.0\"},"
		                           "\"meta\":{\"padding\":\"";
		size_t hl = sizeof(head) - 1;
		char *p = malloc(HUGE_BYTES + 1);
		if (p == NULL)
			break;
		memcpy(p, head, hl);
		memset(p + hl, 'x', HUGE_BYTES - hl - 3);
		memcpy(p + HUGE_BYTES - 3, "\"}}", 4);
		free(r->body);
		r->body = p;
		r->len = HUGE_BYTES;
		break;
	}
	case SIM_BODY_MANY: {
		/* {"data":[{},{},...]}: little text, a big tree */
		size_t n = (size_t)f->resources, len = 10 + 3 * n, off = 0;
		char *p = malloc(len + 1);
		if (p == NULL)
			break;
		off += (size_t)sprintf(p, "{\"data\":[");
		for (size_t i = 0; i < n; i++)
			off += (size_t)sprintf(p + off, i ? ",{}" : "{}");
		off += (size_t)sprintf(p + off, "]}");
		free(r->body);
		r->body = p;
		r->len = off;
		break;
	}
	case SIM_BODY_REZONE: {
		/* the real answer, every resource moved to another zone */
		json_t *doc = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL, *res;
		size_t i;
		char *text;
		json_array_foreach(json_object_get(doc, "data"), i, res)
		{
			json_t *a = json_object_get(res, "attributes");
			if (json_is_object(a))
				json_object_set_new(a, "zone_id", json_string(f->zone_id));
		}
		if (doc && (text = json_dumps(doc, JSON_COMPACT)) != NULL) {
			free(r->body);
			r->body = text;
			r->len = strlen(text);
		}
		json_decref(doc);
		break;
	}
	case SIM_BODY_NONE:
		break;
	}
}

struct cut_body {
	char *data;
	size_t len, sent_max;
};

static ssize_t cut_reader(void *cls, uint64_t pos, char *out, size_t max)
{
	struct cut_body *c = cls;
	size_t n;

	if (pos >= c->sent_max)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	n = c->sent_max - (size_t)pos;
	if (n > max)
		n = max;
	memcpy(out, c->data + pos, n);
	return (ssize_t)n;
}

static void cut_free(void *cls)
{
	struct cut_body *c = cls;
	free(c->data);
	free(c);
}

static enum MHD_Result send_reply(struct MHD_Connection *con, struct http_reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (r->cut == SIM_BODY_CUT && r->body != NULL) {
		struct cut_body *c = malloc(sizeof(*c));
		if (c == NULL)
			return MHD_NO;
		c->data = r->body;
		c->len = r->len;
		c->sent_max = r->len / 2;
		r->body = NULL;
		resp = MHD_create_response_from_callback(c->len, 4096, cut_reader, c, cut_free);
		if (resp == NULL) {
			cut_free(c);
			return MHD_NO;
		}
	} else {
		resp = MHD_create_response_from_buffer(r->len, r->body ? r->body : (void *)"",
		                                       r->body ? MHD_RESPMEM_MUST_FREE
		                                               : MHD_RESPMEM_PERSISTENT);
		if (resp == NULL)
			return MHD_NO;
		r->body = NULL;
	}
	if (r->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	if (r->location[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
	if (r->retry_after[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->retry_after);
	if (r->www_auth)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        "Bearer realm=\"tether-sim\", error=\"invalid_token\"");
	ret = MHD_queue_response(con, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

static void handle(struct sim *s, struct MHD_Connection *con, const char *method, const char *path,
                   const char *query, struct req *rq, struct http_reply *r)
{
	const char *authz =
	    MHD_lookup_connection_value(con, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	struct form *q = form_parse(query, query ? strlen(query) : 0);
	struct form *body = NULL;
	const char *auth = authz ? "invalid" : "none";
	struct sim_fault f;
	bool faulted;

	if (q == NULL) {
		api_error(r, 500, "out of memory");
		return;
	}
	pthread_mutex_lock(&s->lock);
	faulted = sim_fault_take(s, path, &f);
	pthread_mutex_unlock(&s->lock);
	if (faulted && f.delay_ms > 0)
		sleep_ms(f.delay_ms);

	pthread_mutex_lock(&s->lock);
	auth = sim_oauth_check(s, authz, util_now_ms());
	if (faulted && f.status && f.body == SIM_BODY_NONE) {
		api_error(r, f.status, "simulated fault");
	} else if (strcmp(path, "/oauth/authorize") == 0 && strcmp(method, "GET") == 0) {
		sim_oauth_authorize(s, q, r);
	} else if (strcmp(path, "/oauth/token") == 0 && strcmp(method, "POST") == 0) {
		body = form_parse(rq->body.data, rq->body.len);
		if (body == NULL)
			api_error(r, 500, "out of memory");
		else
			sim_oauth_token(s, body, r);
	} else if (strncmp(path, "/api/v3p/", 9) == 0) {
		if (strcmp(auth, "bearer") != 0) {
			sim_reply_str(r, 401,
			              "{\"error\":\"invalid_token\",\"error_description\":"
			              "\"the access token is missing, invalid, expired or "
			              "revoked\"}");
			r->www_auth = true;
		} else {
			api_route(s, method, path + 8, q, r);
		}
	} else {
		api_error(r, 404, "not found");
	}
	if (faulted) {
		if (f.body != SIM_BODY_NONE)
			apply_body_fault(&f, r);
		if (f.retry_after[0])
			snprintf(r->retry_after, sizeof(r->retry_after), "%s", f.retry_after);
	}
	sim_reqlog_add(s, method, path, query, auth, r->status);
	pthread_mutex_unlock(&s->lock);
	form_free(body);
	form_free(q);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
	struct sim *s = cls;
	struct req *rq = *con_cls;
	struct http_reply r;
	const char *query;
	enum MHD_Result ret;
	int64_t t0;

	(void)version;
	if (rq == NULL)
		return MHD_NO;
	if (!rq->started) {
		rq->started = true;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		/* Past the cap the body is dropped and the request answered 413 below. */
		if (buf_append(&rq->body, upload, *upload_size) < 0)
			rq->body.max = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	memset(&r, 0, sizeof(r));
	t0 = util_mono_ms();
	query = strchr(rq->uri, '?');
	query = query ? query + 1 : "";
	if (rq->body.max == 1) {
		api_error(&r, 413, "body too large");
	} else if (strncmp(url, "/_sim/", 6) == 0) {
		pthread_mutex_lock(&s->lock);
		sim_admin_handle(s, method, url + 5, rq->body.data, rq->body.len, &r);
		pthread_mutex_unlock(&s->lock);
	} else {
		handle(s, con, method, url, query, rq, &r);
	}
	if (r.status == 0)
		r.status = 500;
	if (!s->opts.quiet)
		fprintf(stderr, "tether-sim: %s %s %d %lldms\n", method, rq->uri, r.status,
		        (long long)(util_mono_ms() - t0));
	ret = send_reply(con, &r);
	free(r.body);
	return ret;
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
	struct req *rq = calloc(1, sizeof(*rq));

	(void)cls;
	(void)con;
	if (rq == NULL)
		return NULL;
	rq->uri = strdup(uri);
	if (rq->uri == NULL) {
		free(rq);
		return NULL;
	}
	buf_init(&rq->body, SIM_BODY_MAX);
	return rq;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)cls;
	(void)con;
	(void)toe;
	if (rq == NULL)
		return;
	free(rq->uri);
	if (rq->body.data)
		util_memzero(rq->body.data, rq->body.len);
	buf_release(&rq->body);
	free(rq);
	*con_cls = NULL;
}

struct MHD_Daemon *sim_http_start(struct sim *s, uint16_t *port)
{
	struct sockaddr_in sa;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)s->opts.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO,
	    (uint16_t)s->opts.port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&sa, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned int)120, MHD_OPTION_END);
	if (d == NULL)
		return NULL;
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (info == NULL || info->port == 0) {
		MHD_stop_daemon(d);
		return NULL;
	}
	*port = info->port;
	return d;
}

void sim_http_stop(struct MHD_Daemon *d)
{
	if (d != NULL)
		MHD_stop_daemon(d);
}
