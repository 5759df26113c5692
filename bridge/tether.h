/* Tether API client: runs batches of v3p requests over kept-alive connections (curl multi),
 * classifies failures, checks each answer's JSON:API shape, and keeps the OAuth2 token
 * (state_dir/token.json) fresh. Attribute-level meaning is left to rules/normalize. */
#ifndef TB_TETHER_H
#define TB_TETHER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tether_opts {
	const char *base_url;     /* "https://my.timeline.is" (a trailing slash is dropped) */
	const char *access_token; /* static token, or NULL for OAuth2 */
	const char *client_id, *client_secret, *redirect_uri;
	const char *state_dir; /* token.json lives here (OAuth2 only) */
	bool insecure;         /* allow http:// and skip TLS verification */
	int concurrency;       /* requests in flight at once; >= 1 (config: poll.concurrency) */
	int64_t timeout_ms;    /* per request; >= 1 (config: tether.timeout_ms) */
	size_t max_body;       /* response cap; 0: 64 MiB; bigger = TETHER_E_PAYLOAD */
	size_t max_doc_memory; /* what one batch's parsed documents may take together; 0:
	                          256 MiB; more = TETHER_E_PAYLOAD */
};

/* Resources (data or included) one document may hold; more = TETHER_E_PAYLOAD. An events or
 * lpr window of the poller holds far fewer; a document with more is hostile or broken. */
#define TETHER_MAX_RESOURCES 20000

enum tether_status {
	TETHER_OK,
	TETHER_E_AUTH,    /* 401/403 after the one refresh + retry, or no usable token */
	TETHER_E_RATE,    /* 429, or held unsent after one (http_status 0); retry_after_ms
	                     when the server said */
	TETHER_E_SERVER,  /* 5xx; retry_after_ms when the server said */
	TETHER_E_NETWORK, /* connect/DNS/TLS/reset */
	TETHER_E_TIMEOUT, /* over timeout_ms */
	TETHER_E_PAYLOAD, /* over max_body, truncated, not JSON, or not the expected shape */
	TETHER_E_CLIENT,  /* other 4xx, unexpected 1xx/3xx */
	TETHER_E_NOMEM,
};
/* "ok", "auth", "rate", "server", "network", "timeout", "payload", "client", "nomem". */
const char *tether_status_name(enum tether_status st);

enum tether_endpoint {
	TETHER_ZONES,        /* GET /zones[?location_id]                 -> list of zones */
	TETHER_EVENTS,       /* GET /events?zone_id[&from][&to]          -> list of events */
	TETHER_EVENTS_AT,    /* GET /events?zone_id&at                   -> list of events */
	TETHER_LPR,          /* GET /lpr?zone_id[&starts_at][&ends_at]   -> list of lprs */
	TETHER_PERSPECTIVES, /* GET /perspectives                        -> list of perspectives */
	TETHER_LIVE_SWITCH,  /* POST /perspectives/:id/live_switch_preset -> doc NULL or JSON */
	TETHER_RECORDINGS,   /* GET /recordings?zone_id[&at]             -> list of recordings */
	TETHER_RECORDING,    /* GET /recordings/:id                      -> one recording */
};

struct tether_req {
	/* in */
	enum tether_endpoint ep;
	const char *zone_id, *location_id, *id; /* as the endpoint needs */
	int64_t from_ms, to_ms, at_ms;          /* Unix ms; -1 = omit */
	size_t max_body; /* this answer's cap, under the client's; 0: the client's. Past it the
	                    transfer stops: TETHER_E_PAYLOAD with too_big set */
	bool raw; /* events and plates: keep the body (read with tether_each_flat), parse nothing */
	void *user;
	/* out, set by tether_run */
	enum tether_status status;
	long http_status;       /* 0 when no answer */
	int64_t retry_after_ms; /* from Retry-After (seconds or HTTP date), -1 if none */
	char error[256];        /* "HTTP 503 from /api/v3p/events", "data[3].id: ..." */
	char excerpt[128];      /* first bytes of a bad body, printable only; "" if none */
	json_t *doc;            /* validated document (tether_req_release), NULL on error */
	size_t doc_memory;      /* bytes doc takes */
	bool too_big;           /* the answer passed max_body (the caller may ask for less) */
	char *body;             /* raw: the answer's body, NUL-terminated (tether_req_release) */
	size_t body_len;
};

struct tether;

/* Copies what it needs from opts (secrets are zeroed at tether_free). Loads
 * state_dir/token.json when no static token is set; a missing file is not an error (the
 * requests then fail with TETHER_E_AUTH until 'auth exchange'). NULL with err on failure. */
struct tether *tether_new(const struct tether_opts *opts, char *err, size_t errsz);
void tether_free(struct tether *t);

/* Runs n requests, up to opts.concurrency at once over reused connections, and returns when
 * all are done. An expired OAuth2 token is refreshed first; a 401 triggers one refresh (OAuth2
 * only, at most one per call) and one retry of that request. Once a 429 is answered, the
 * requests not sent yet are not sent: they end TETHER_E_RATE with http_status 0 and the
 * 429's retry_after_ms (those in flight are answered as usual). Any doc left in a req from a
 * previous run is released first. Returns 0 (look at each req's status), or -1 when the
 * curl multi handle fails (every unfinished req then has TETHER_E_NETWORK and an error).
 * A token refresh blocks the batch while it runs. One thread at a time. */
int tether_run(struct tether *t, struct tether_req *reqs, size_t n);
void tether_req_release(struct tether_req *req); /* frees doc */

/* New connections opened so far (0 after a batch that reused every connection). Exported
 * for tests. */
long tether_connections(const struct tether *t);

/* OAuth2 (tether-api.md "oAuth2 Integration"). */
/* base_url/oauth/authorize?client_id=..&redirect_uri=..&response_type=code; caller frees. */
int tether_auth_url(const struct tether_opts *opts, char **url);
/* authorization_code grant; writes state_dir/token.json (0600, atomically). 0 or -1 + err. */
int tether_auth_exchange(struct tether *t, const char *code, char *err, size_t errsz);
/* refresh_token grant; rewrites token.json. 0 or -1 + err ("token refresh failed: ..."). */
int tether_auth_refresh(struct tether *t, char *err, size_t errsz);

/* 0 when doc has the JSON:API shape ep answers with (what tether_run checks: data, each
 * resource's id, type and attributes, zones' attributes.name, a recording's included), else -1
 * with the first wrong field in err: "data[3].attributes: expected an object". Events and
 * plate reads are checked as a list only: the normaliser checks (and skips) each one. */
int tether_doc_check(enum tether_endpoint ep, const json_t *doc, char *err, size_t errsz);

/* What tether_each builds of a resource that is an object, for a caller that reads only
 * some members: member() says which of the resource's own members are kept, attribute()
 * which members of its "attributes" object (when that member is kept and an object). A
 * member not kept is lexed by yajl (so the document must still be JSON, nested no deeper
 * than the limit) but never built, and what only jansson checks in a built string (no NUL,
 * strict UTF-8) is not checked in it: docs/internals/tether-client.md. A NULL function
 * keeps every member at its level. name is len bytes, not NUL-terminated. */
struct tether_keep {
	bool (*member)(const char *name, size_t len);
	bool (*attribute)(const char *name, size_t len);
};

/* Calls cb with each resource of the "data" array of r's raw body, in order, each parsed on
 * its own and freed when cb returns: a window's memory is its text and one resource, not a
 * tree of all of them. Other members are checked and dropped. keep (NULL: every member)
 * leaves out what the caller does not read. cb returns 0 to go on, or -1 to stop (returned
 * as is). Returns the number of resources, or -2 with err when the body is not a JSON:API
 * list (not JSON, data missing or not an array, more than TETHER_MAX_RESOURCES, one
 * resource over the client's document memory); cb may then have seen the resources before
 * the fault. The trees are built in an arena of the client's, reused once none of its
 * values is alive: a resource cb keeps (json_incref) stays valid, may be freed on any
 * thread, and outlives the client (tether_free then keeps the arena's memory and warns).
 * tether_each may run while tether_run runs on another thread (it touches only the
 * client's limits and its arena), but not on two threads at once with one client. */
long tether_each(const struct tether *t, const struct tether_req *r, const struct tether_keep *keep,
                 int (*cb)(void *arg, const json_t *resource), void *arg, char *err, size_t errsz);

/* A scalar, or the type of a container, as tether_each_flat reports it; s (len bytes, not
 * NUL-terminated) is a string's text, valid during the call. */
enum tether_vtype {
	TV_NULL,
	TV_FALSE,
	TV_TRUE,
	TV_INTEGER,
	TV_REAL,
	TV_STRING,
	TV_OBJECT,
	TV_ARRAY
};
struct tether_value {
	enum tether_vtype type;
	long long i;
	double d;
	const char *s;
	size_t len;
};

/* What tether_each_flat tells its caller of each resource, nothing being built:
 * begin: a resource starts (object: it is an object; offset: its first byte in the body);
 * slot: a member of the resource (level 1) or of its "attributes" object (level 2): the
 *   caller's slot for it, or -1 when the caller does not read it (its value is then only
 *   lexed);
 * value: the value of a member the caller reads: a scalar, or only the type of a container
 *   (a level-1 "attributes" object goes on with its members at level 2; the contents of
 *   other containers are checked, not reported);
 * end: the resource is whole: 0 to go on, -1 to stop (returned as is). */
struct tether_flat {
	void (*begin)(void *arg, bool object, size_t offset);
	int (*slot)(void *arg, int level, const char *name, size_t len);
	void (*value)(void *arg, int level, int slot, const struct tether_value *v);
	int (*end)(void *arg);
};

/* tether_each without the trees: the same reading of the body, the same refusals and
 * messages as tether_each with a keep filter that keeps the members ops->slot reads (its
 * strings and member names checked alike: no NUL, valid UTF-8, in what the caller reads
 * and inside the containers it reads), but the document memory limit, which only trees
 * need. Returns the number of resources, or -2 with err, or what end returned. */
long tether_each_flat(const struct tether *t, const struct tether_req *r,
                      const struct tether_flat *ops, void *arg, char *err, size_t errsz);

/* tether_req_release, but a raw answer's body of 256 KiB or more is kept by t (up to four)
 * for the next raw answers, whose pages are then already there. May run while tether_run
 * runs on another thread. tether_spare_release frees what t keeps (tether_free does too):
 * a caller calls it when a burst of big answers is over, so that idle memory stays small. */
void tether_req_recycle(struct tether *t, struct tether_req *req);
void tether_spare_release(struct tether *t);

/* Typed views of validated documents; strings are borrowed from doc. */
struct tether_zone {
	const char *id, *name;
};
/* *zones: caller frees the array (not the strings). 0, or -1 + err. */
int tether_zones_list(const json_t *doc, struct tether_zone **zones, size_t *n, char *err,
                      size_t errsz);

#endif
