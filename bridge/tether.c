/* Tether API client: batches of v3p requests on a curl multi handle whose easy handles and
 * connections live as long as the client, failure classes, JSON:API shape checks and the
 * OAuth2 token life cycle (state_dir/token.json). What the attributes mean is normalize's job. */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sanitizer/asan_interface.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <yajl/yajl_parse.h>

#include "lib/log.h"
#include "lib/retry.h"
#include "bridge/bridge.h"
#include "bridge/tether.h"
#include "lib/util.h"

#define TOKEN_SKEW_S 60 /* refresh this long before expires_at */
#define OAUTH_BODY_MAX (1024 * 1024)
#define CONNECT_TIMEOUT_MS 10000
#define DEFAULT_MAX_BODY ((size_t)64 * 1024 * 1024)
#define TETHER_RETRY_AFTER_MAX_MS (3600 * 1000LL) /* a bogus Retry-After must not stop polling */
#define REAUTH_HINT "run 'tether-bridge auth url' to authorise again"
#define DEFAULT_MAX_DOC_MEMORY ((size_t)256 * 1024 * 1024)
#define TRIM_OVER ((size_t)4 * 1024 * 1024) /* documents this big give memory back when freed */
#define SPARE_BODIES 4                      /* raw bodies kept for reuse (tether_req_recycle) */
#define SPARE_MIN ((size_t)256 * 1024)      /* smaller ones are not worth keeping */

/* One transfer slot: an easy handle kept for the client's life, so its connection stays warm. */
struct slot {
	CURL *easy;
	struct tether_req *req; /* NULL while free */
	struct buf body;
	struct curl_slist *hdrs; /* holds the bearer token: zeroed before free */
	char errbuf[CURL_ERROR_SIZE];
	char path[160]; /* for messages: "/api/v3p/events" */
	char *url;
	unsigned gen; /* token generation the request went out with */
	int64_t retry_after_ms;
	bool too_big, nomem, retried;
	struct tether *t; /* the client's spare bodies, for a raw answer growing big */
};

struct tether {
	char *base_url, *static_token, *client_id, *client_secret, *redirect_uri, *state_dir;
	bool insecure;
	int concurrency;
	int64_t timeout_ms;
	size_t max_body, max_doc_memory;
	/* OAuth2 token (secrets) */
	char *access_token, *refresh_token, *token_type;
	int64_t expires_at;  /* Unix s; 0: unknown, never refreshed ahead */
	unsigned gen;        /* bumped by every new access token */
	char token_err[256]; /* why there is no token, for TETHER_E_AUTH messages */
	CURLM *multi;
	CURL *auth_easy;
	struct slot *slots;
	long connections;
	curl_socket_t *socks; /* the client's open sockets (quick_acks), CURL_SOCKET_BAD: free */
	size_t nsocks;
	struct arena *arena; /* tether_each's trees; NULL: plain malloc */
	/* bodies of raw answers handed back by tether_req_recycle, for the next raw answers:
	 * their pages are already there (a fresh 1.5 MB body is 370 page faults, each page
	 * zeroed); under spare_mu (the fetch thread takes, the caller's thread gives) */
	pthread_mutex_t spare_mu;
	struct {
		char *data;
		size_t cap;
	} spare[SPARE_BODIES];
	size_t nspare;
};

/* Per tether_run: a 401 refreshes at most once per call; a 429 holds every request not
 * yet sent (the server asked for a pause, not for the rest of the batch at once). */
struct run {
	bool refresh_tried;
	enum tether_status refresh_status;
	char refresh_err[256];
	bool rate_limited;
	int64_t rate_retry_after_ms; /* the 429's Retry-After, -1 if none */
	char rate_path[160];         /* where the 429 came from */
	size_t doc_memory;           /* what this batch's documents took as jansson trees */
};

static const char *const status_names[] = {
    "ok", "auth", "rate", "server", "network", "timeout", "payload", "client", "nomem",
};

const char *tether_status_name(enum tether_status st)
{
	if ((unsigned)st >= sizeof(status_names) / sizeof(status_names[0]))
		return "unknown";
	return status_names[st];
}

/* --- memory budget of parsed documents ---
 * A JSON tree costs up to ~80 times its text ({"data":[{},{},...]}), so the body cap alone
 * does not bound memory. jansson allocates through these functions: while a budget is on
 * (this thread, inside json_loadb), an allocation past it fails and the parse with it. The
 * sizes come from malloc_usable_size, so blocks need no header and the functions can be
 * installed while jansson values exist; with no budget on they are malloc and free. */
static _Thread_local struct {
	bool on, over;
	size_t used, limit;
} budget;

/* --- an arena for the trees tether_each builds ---
 * Building a resource is ~100 small blocks, freed together when the poller's chunk is
 * dropped; malloc and free of them were ~17% of the poller's instructions. While a budget
 * is on and this thread is in tether_each, blocks come from the client's arena by bumping
 * a pointer; a block is never freed on its own, the arena is reused from the start once
 * none of its blocks is alive (counted). budget_free recognises an arena block on any
 * thread by the ranges in arena_slots, which are static so that reading them is safe even
 * while an arena is freed. A full arena, or none, falls back to malloc. Under AddressSanitizer
 * the arena's memory is poisoned except for the blocks handed out since it was last started
 * again, so a tree used after its chunk was dropped and the arena reused is reported as it
 * would be with malloc (no-ops otherwise). */
#define ARENA_SIZE ((size_t)1024 * 1024) /* a chunk of 128 filtered events takes 744 KiB */
#define ARENA_SLOTS 8                    /* clients with an arena at once; more get none */
#define ARENA_ALIGN ((size_t)16)         /* what malloc gives on x86-64 */

static struct arena_slot {
	_Atomic uintptr_t lo, hi; /* [lo, hi): the arena's memory; hi 0: no arena */
	atomic_long live;         /* its blocks not freed yet */
} arena_slots[ARENA_SLOTS];

struct arena {
	char *base;
	size_t used;
	struct arena_slot *slot;
	bool opened; /* arena_open tried: not again when it failed */
	bool warned; /* "still held" said once */
};

static _Thread_local struct arena *arena_cur; /* the arena of the tether_each running here */

/* The slot whose arena holds p, or NULL. */
static struct arena_slot *arena_of(const void *p)
{
	uintptr_t u = (uintptr_t)p;

	for (size_t i = 0; i < ARENA_SLOTS; i++) {
		struct arena_slot *s = &arena_slots[i];
		if (u < atomic_load_explicit(&s->hi, memory_order_acquire) &&
		    u >= atomic_load_explicit(&s->lo, memory_order_acquire))
			return s;
	}
	return NULL;
}

/* Makes a's memory and claims a slot for it; false (a stays without) when either fails. */
static bool arena_open(struct arena *a)
{
	for (size_t i = 0; i < ARENA_SLOTS; i++) {
		struct arena_slot *s = &arena_slots[i];
		uintptr_t zero = 0;
		/* lo 1, hi 0: claimed, matches nothing */
		if (!atomic_compare_exchange_strong(&s->lo, &zero, 1))
			continue;
		if ((a->base = malloc(ARENA_SIZE)) == NULL) {
			atomic_store(&s->lo, 0);
			return false;
		}
		ASAN_POISON_MEMORY_REGION(a->base, ARENA_SIZE);
		atomic_store(&s->live, 0);
		atomic_store(&s->lo, (uintptr_t)a->base);
		atomic_store(&s->hi, (uintptr_t)a->base + ARENA_SIZE);
		a->slot = s;
		a->used = 0;
		return true;
	}
	return false;
}

/* Gives a's memory back, unless blocks of it are alive: they then stay valid (the slot
 * keeps recognising them) for good, at the cost of the arena's memory. a may be freed
 * after. */
static void arena_close(struct arena *a)
{
	if (a->slot == NULL)
		return;
	if (atomic_load_explicit(&a->slot->live, memory_order_acquire) > 0) {
		log_warnx("tether: %ld parsed values still held when the client is freed: their "
		          "memory is kept",
		          atomic_load(&a->slot->live));
		return;
	}
	atomic_store(&a->slot->hi, 0);
	ASAN_UNPOISON_MEMORY_REGION(a->base, ARENA_SIZE);
	free(a->base);
	atomic_store(&a->slot->lo, 0);
	a->slot = NULL;
	a->base = NULL;
}

/* Starts again from the beginning when no block is alive: called as each resource starts. */
static void arena_reuse(struct arena *a)
{
	if (a->used > 0 && atomic_load_explicit(&a->slot->live, memory_order_acquire) == 0) {
		ASAN_POISON_MEMORY_REGION(a->base, a->used);
		a->used = 0;
	}
}

static void *arena_alloc(struct arena *a, size_t n)
{
	size_t k = (n + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
	void *p;

	if (n == 0 || n > ARENA_SIZE || k > ARENA_SIZE - a->used)
		return NULL;
	p = a->base + a->used;
	ASAN_UNPOISON_MEMORY_REGION(p, n);
	a->used += k;
	atomic_fetch_add_explicit(&a->slot->live, 1, memory_order_relaxed);
	budget.used += k;
	return p;
}

static void *budget_malloc(size_t n)
{
	void *p;

	if (budget.on && (budget.used >= budget.limit || n > budget.limit - budget.used)) {
		budget.over = true;
		return NULL;
	}
	if (budget.on && arena_cur != NULL && (p = arena_alloc(arena_cur, n)) != NULL)
		return p;
	p = malloc(n);
	if (p && budget.on)
		budget.used += malloc_usable_size(p);
	return p;
}

static void budget_free(void *p)
{
	struct arena_slot *s;

	if (p == NULL)
		return;
	if ((s = arena_of(p)) != NULL) {
		/* released: the owner's reuse sees every use of the block done */
		atomic_fetch_sub_explicit(&s->live, 1, memory_order_release);
		return;
	}
	if (budget.on) {
		size_t k = malloc_usable_size(p);
		budget.used = k < budget.used ? budget.used - k : 0;
	}
	free(p);
}

static void budget_install(void)
{
	json_set_alloc_funcs(budget_malloc, budget_free);
}

/* Parses a body within limit bytes of memory; *used gets what the tree took, *over whether
 * the limit stopped it. */
static json_t *budget_loadb(const char *data, size_t len, size_t limit, size_t *used, bool *over,
                            json_error_t *jerr, size_t flags)
{
	json_t *doc;

	budget.on = true;
	budget.over = false;
	budget.used = 0;
	budget.limit = limit;
	doc = json_loadb(data, len, flags, jerr);
	budget.on = false;
	*used = budget.used;
	*over = budget.over;
	return doc;
}

static pthread_once_t budget_once = PTHREAD_ONCE_INIT;

static void release_secret_buf(struct buf *b)
{
	if (b->data)
		util_memzero(b->data, b->cap);
	buf_release(b);
}

static void free_headers(struct curl_slist **h)
{
	for (struct curl_slist *p = *h; p; p = p->next)
		util_memzero(p->data, strlen(p->data));
	curl_slist_free_all(*h);
	*h = NULL;
}

static char *dup_opt(const char *s, bool *ok)
{
	char *d;
	if (s == NULL)
		return NULL;
	if ((d = strdup(s)) == NULL)
		*ok = false;
	return d;
}

/* --- token.json --- */

static int token_path(const struct tether *t, char *out, size_t outsz)
{
	int n;
	if (t->state_dir == NULL)
		return -1;
	n = snprintf(out, outsz, "%s/token.json", t->state_dir);
	return n < 0 || (size_t)n >= outsz ? -1 : 0;
}

static void token_clear(struct tether *t)
{
	util_free_secret(t->access_token);
	util_free_secret(t->refresh_token);
	free(t->token_type);
	t->access_token = t->refresh_token = t->token_type = NULL;
	t->expires_at = 0;
}

/* Fills the token fields from token.json (from_file: expires_at) or an /oauth/token answer
 * (expires_in; no refresh_token in it keeps ours). Returns 0 or -1 (what is missing in err). */
static int token_take(struct tether *t, const json_t *o, bool from_file, char *err, size_t errsz)
{
	const char *access = json_string_value(json_object_get(o, "access_token"));
	const char *refresh = json_string_value(json_object_get(o, "refresh_token"));
	const char *type = json_string_value(json_object_get(o, "token_type"));
	json_t *exp;
	char *a = NULL, *r = NULL, *ty = NULL;
	int64_t expires_at = 0;

	if (access == NULL || *access == '\0') {
		snprintf(err, errsz, "no access_token");
		return -1;
	}
	if (from_file) {
		exp = json_object_get(o, "expires_at");
		if (json_is_integer(exp))
			expires_at = json_integer_value(exp);
	} else {
		exp = json_object_get(o, "expires_in");
		if (json_is_integer(exp) && json_integer_value(exp) > 0)
			expires_at = util_now_ms() / 1000 + json_integer_value(exp);
	}
	if ((a = strdup(access)) == NULL || (refresh && (r = strdup(refresh)) == NULL) ||
	    (ty = strdup(type ? type : "Bearer")) == NULL) {
		util_free_secret(a);
		util_free_secret(r);
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	util_free_secret(t->access_token);
	t->access_token = a;
	if (r || from_file) {
		util_free_secret(t->refresh_token);
		t->refresh_token = r;
	}
	free(t->token_type);
	t->token_type = ty;
	t->expires_at = expires_at;
	t->gen++;
	t->token_err[0] = '\0';
	return 0;
}

static void token_load(struct tether *t)
{
	char path[4096];
	json_error_t jerr;
	json_t *o;
	struct stat st;
	char err[128];

	if (token_path(t, path, sizeof(path)) < 0) {
		snprintf(t->token_err, sizeof(t->token_err), "no state_dir for the OAuth2 token");
		return;
	}
	if (stat(path, &st) < 0) {
		snprintf(t->token_err, sizeof(t->token_err), "no OAuth2 token in '%.160s'", path);
		return;
	}
	if (st.st_mode & 077)
		log_warnx("'%s': token file is readable by others (mode %o), should be 0600", path,
		          (unsigned)(st.st_mode & 0777));
	if ((o = json_load_file(path, 0, &jerr)) == NULL) {
		snprintf(t->token_err, sizeof(t->token_err), "'%.100s': invalid token file: %.60s",
		         path, jerr.text);
		return;
	}
	if (token_take(t, o, true, err, sizeof(err)) < 0)
		snprintf(t->token_err, sizeof(t->token_err), "'%.120s': %.70s", path, err);
	json_decref(o);
}

/* Writes data to dir/name with mode 0600: temp file in dir, fsync, rename, fsync dir. */
static int write_private_file(const char *dir, const char *name, const char *data, char *err,
                              size_t errsz)
{
	char path[4096], tmp[4096];
	size_t len = strlen(data), off = 0;
	int fd, dfd, rc = -1;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path) ||
	    snprintf(tmp, sizeof(tmp), "%s/.%s.XXXXXX", dir, name) >= (int)sizeof(tmp)) {
		snprintf(err, errsz, "'%.160s': path too long", dir);
		return -1;
	}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errsz, "unable to create '%.160s': %s", dir, strerror(errno));
		return -1;
	}
	if ((fd = mkstemp(tmp)) < 0) {
		snprintf(err, errsz, "unable to create a file in '%.160s': %s", dir,
		         strerror(errno));
		return -1;
	}
	if (fchmod(fd, 0600) < 0)
		goto out_write_error;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			goto out_write_error;
		off += (size_t)w;
	}
	if (fsync(fd) < 0)
		goto out_write_error;
	if (close(fd) < 0) {
		fd = -1;
		goto out_write_error;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		snprintf(err, errsz, "unable to rename '%.160s': %s", tmp, strerror(errno));
		goto out_unlink;
	}
	if ((dfd = open(dir, O_RDONLY | O_DIRECTORY)) >= 0) {
		if (fsync(dfd) < 0)
			log_warn("fsync '%s'", dir);
		close(dfd);
	}
	return 0;

out_write_error:
	snprintf(err, errsz, "unable to write '%.160s': %s", tmp, strerror(errno));
	if (fd >= 0)
		close(fd);
out_unlink:
	unlink(tmp);
	return rc;
}

static int token_save(struct tether *t, char *err, size_t errsz)
{
	json_t *o;
	char *text = NULL;
	int rc = -1;

	if (t->state_dir == NULL) {
		snprintf(err, errsz, "no state_dir for the OAuth2 token");
		return -1;
	}
	o = json_pack("{s:s, s:s?, s:I, s:s}", "access_token", t->access_token, "refresh_token",
	              t->refresh_token, "expires_at", (json_int_t)t->expires_at, "token_type",
	              t->token_type ? t->token_type : "Bearer");
	if (o == NULL || (text = json_dumps(o, JSON_INDENT(2))) == NULL) {
		snprintf(err, errsz, "out of memory");
		goto out;
	}
	rc = write_private_file(t->state_dir, "token.json", text, err, errsz);
out:
	util_free_secret(text);
	json_decref(o);
	return rc;
}

/* --- OAuth2 --- */

static int form_add(struct buf *b, const char *key, const char *value)
{
	if ((b->len && buf_puts(b, "&") < 0) || buf_puts(b, key) < 0 || buf_puts(b, "=") < 0)
		return -1;
	return buf_urlencode(b, value);
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud);

/* POST /oauth/token with grant; on success the new token is in t (and in token.json when
 * possible). Returns the failure class with err ("HTTP 401 from /oauth/token: invalid_grant"). */
static enum tether_status oauth_token(struct tether *t, const char *grant, const char *value,
                                      char *err, size_t errsz)
{
	struct slot s = {0};
	struct buf form;
	char url[2048], serr[256];
	CURLcode cc = CURLE_OK;
	long code = 0;
	json_t *o = NULL;
	json_error_t jerr;
	enum tether_status st = TETHER_E_NOMEM;
	const char *e, *ed;

	buf_init(&form, 0);
	buf_init(&s.body, OAUTH_BODY_MAX);
	if (t->client_id == NULL || t->client_secret == NULL) {
		snprintf(err, errsz, "no OAuth2 client_id/client_secret configured");
		st = TETHER_E_AUTH;
		goto out;
	}
	if (strcmp(grant, "authorization_code") == 0) {
		if (t->redirect_uri == NULL) {
			snprintf(err, errsz, "no OAuth2 redirect_uri configured");
			st = TETHER_E_AUTH;
			goto out;
		}
		if (form_add(&form, "client_id", t->client_id) < 0 ||
		    form_add(&form, "client_secret", t->client_secret) < 0 ||
		    form_add(&form, "code", value) < 0 ||
		    form_add(&form, "grant_type", grant) < 0 ||
		    form_add(&form, "redirect_uri", t->redirect_uri) < 0)
			goto out_nomem;
	} else if (form_add(&form, "client_id", t->client_id) < 0 ||
	           form_add(&form, "client_secret", t->client_secret) < 0 ||
	           form_add(&form, "grant_type", grant) < 0 ||
	           form_add(&form, "refresh_token", value) < 0) {
		goto out_nomem;
	}
	snprintf(url, sizeof(url), "%s/oauth/token", t->base_url);

	curl_easy_reset(t->auth_easy);
#define SET(o, v)                                                                                  \
	do {                                                                                       \
		if (cc == CURLE_OK)                                                                \
			cc = curl_easy_setopt(t->auth_easy, o, v);                                 \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_POSTFIELDS, form.data);
	SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)form.len);
	SET(CURLOPT_USERAGENT, TB_USER_AGENT);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, &s);
	SET(CURLOPT_ERRORBUFFER, s.errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS,
	    (long)(t->timeout_ms < CONNECT_TIMEOUT_MS ? t->timeout_ms : CONNECT_TIMEOUT_MS));
	SET(CURLOPT_PROTOCOLS_STR, t->insecure ? "http,https" : "https");
	if (t->insecure) {
		SET(CURLOPT_SSL_VERIFYPEER, 0L);
		SET(CURLOPT_SSL_VERIFYHOST, 0L);
	}
#undef SET
	if (cc == CURLE_OK)
		cc = curl_easy_perform(t->auth_easy);
	/* drop the pointers to this frame (form, s); the connection stays */
	if (cc == CURLE_OK)
		curl_easy_getinfo(t->auth_easy, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_reset(t->auth_easy);
	if (cc != CURLE_OK) {
		st = cc == CURLE_OPERATION_TIMEDOUT ? TETHER_E_TIMEOUT : TETHER_E_NETWORK;
		if (s.too_big)
			st = TETHER_E_PAYLOAD;
		snprintf(err, errsz, "POST /oauth/token: %.160s",
		         s.too_big     ? "response too large"
		         : s.errbuf[0] ? s.errbuf
		                       : curl_easy_strerror(cc));
		goto out;
	}
	o = s.body.len ? json_loadb(s.body.data, s.body.len, 0, &jerr) : NULL;
	if (code != 200) {
		e = json_string_value(json_object_get(o, "error"));
		ed = json_string_value(json_object_get(o, "error_description"));
		snprintf(err, errsz, "HTTP %ld from /oauth/token%s%s%s%s%s", code, e ? ": " : "",
		         e ? e : "", ed ? " (" : "", ed ? ed : "", ed ? ")" : "");
		st = code >= 500 ? TETHER_E_SERVER : code == 429 ? TETHER_E_RATE : TETHER_E_AUTH;
		goto out;
	}
	if (!json_is_object(o)) {
		snprintf(err, errsz, "/oauth/token: answer is not a JSON object");
		st = TETHER_E_PAYLOAD;
		goto out;
	}
	if (token_take(t, o, false, serr, sizeof(serr)) < 0) {
		snprintf(err, errsz, "/oauth/token: %.160s", serr);
		st = TETHER_E_PAYLOAD;
		goto out;
	}
	st = TETHER_OK;
	if (token_save(t, serr, sizeof(serr)) < 0) {
		/* The new token works in memory; the caller decides whether that is enough. */
		snprintf(err, errsz, "%.180s", serr);
		st = TETHER_E_CLIENT;
	}
	goto out;

out_nomem:
	snprintf(err, errsz, "out of memory");
out:
	json_decref(o);
	release_secret_buf(&form);
	release_secret_buf(&s.body);
	return st;
}

/* After an invalid_grant: when token.json holds a refresh token other than the one just
 * refused (posted), another process has refreshed since we read it; takes the file's token
 * and returns true. False (t unchanged) when the file says nothing new. */
static bool token_reread(struct tether *t, const char *posted)
{
	char path[4096], err[128];
	json_t *o;
	const char *rt;
	bool taken = false;

	if (token_path(t, path, sizeof(path)) < 0 || (o = json_load_file(path, 0, NULL)) == NULL)
		return false;
	rt = json_string_value(json_object_get(o, "refresh_token"));
	if (rt && strcmp(rt, posted) != 0) {
		if (token_take(t, o, true, err, sizeof(err)) == 0)
			taken = true;
		else
			log_warnx("'%s': unable to use the renewed token: %s", path, err);
	}
	json_decref(o);
	return taken;
}

/* The refresh_token grant, with the message the user acts on. must_save: a token that could
 * not be written to token.json is a failure (the CLI); else a warning (the daemon keeps going). */
static enum tether_status refresh_token(struct tether *t, bool must_save, char *err, size_t errsz)
{
	char e[200];
	char *value;
	enum tether_status st;

	if (t->refresh_token == NULL) {
		snprintf(err, errsz, "token refresh failed: %s; " REAUTH_HINT,
		         t->access_token ? "no refresh token" : t->token_err);
		return TETHER_E_AUTH;
	}
	/* the grant replaces t->refresh_token: post our own copy of the old one */
	if ((value = strdup(t->refresh_token)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return TETHER_E_NOMEM;
	}
	st = oauth_token(t, "refresh_token", value, e, sizeof(e));
	if (st == TETHER_E_AUTH && strstr(e, "invalid_grant") && token_reread(t, value)) {
		/* another process (`auth refresh` while the daemon runs) spent our refresh token
		 * and saved its successor: use what it saved */
		util_free_secret(value);
		if (!must_save && t->expires_at &&
		    util_now_ms() / 1000 < t->expires_at - TOKEN_SKEW_S) {
			log_info("oauth2 token renewed by another process: taken from token.json");
			return TETHER_OK;
		}
		if (t->refresh_token == NULL || (value = strdup(t->refresh_token)) == NULL) {
			snprintf(err, errsz, "token refresh failed: %s; " REAUTH_HINT,
			         t->refresh_token ? "out of memory" : "no refresh token");
			return t->refresh_token ? TETHER_E_NOMEM : TETHER_E_AUTH;
		}
		st = oauth_token(t, "refresh_token", value, e, sizeof(e));
	}
	util_free_secret(value);
	if (st == TETHER_E_CLIENT && !must_save) {
		log_warnx("oauth2 token refreshed but not saved: %s", e);
		st = TETHER_OK;
	}
	if (st == TETHER_OK) {
		log_info("oauth2 access token refreshed");
		return TETHER_OK;
	}
	snprintf(err, errsz, "token refresh failed: %s%s", e,
	         st == TETHER_E_AUTH ? "; " REAUTH_HINT : "");
	return st;
}

int tether_auth_refresh(struct tether *t, char *err, size_t errsz)
{
	if (t->static_token) {
		snprintf(err, errsz, "a static access_token is configured: nothing to refresh");
		return -1;
	}
	return refresh_token(t, true, err, errsz) == TETHER_OK ? 0 : -1;
}

int tether_auth_exchange(struct tether *t, const char *code, char *err, size_t errsz)
{
	char e[200];

	if (code == NULL || *code == '\0') {
		snprintf(err, errsz, "empty authorisation code");
		return -1;
	}
	if (oauth_token(t, "authorization_code", code, e, sizeof(e)) != TETHER_OK) {
		snprintf(err, errsz, "code exchange failed: %s", e);
		return -1;
	}
	return 0;
}

int tether_auth_url(const struct tether_opts *opts, char **url)
{
	struct buf b;
	size_t blen;

	*url = NULL;
	if (opts->base_url == NULL || opts->client_id == NULL || opts->redirect_uri == NULL)
		return -1;
	blen = strlen(opts->base_url);
	while (blen && opts->base_url[blen - 1] == '/')
		blen--;
	buf_init(&b, 0);
	if (buf_append(&b, opts->base_url, blen) < 0 ||
	    buf_puts(&b, "/oauth/authorize?client_id=") < 0 ||
	    buf_urlencode(&b, opts->client_id) < 0 || buf_puts(&b, "&redirect_uri=") < 0 ||
	    buf_urlencode(&b, opts->redirect_uri) < 0 || buf_puts(&b, "&response_type=code") < 0) {
		buf_release(&b);
		return -1;
	}
	*url = buf_steal(&b);
	return *url ? 0 : -1;
}

/* --- client --- */

struct tether *tether_new(const struct tether_opts *opts, char *err, size_t errsz)
{
	struct tether *t;
	bool ok = true;
	size_t blen;
	int i;

	if (opts->base_url == NULL || *opts->base_url == '\0') {
		snprintf(err, errsz, "no base_url");
		return NULL;
	}
	if (strncmp(opts->base_url, "https://", 8) != 0 &&
	    !(opts->insecure && strncmp(opts->base_url, "http://", 7) == 0)) {
		snprintf(err, errsz,
		         "base_url '%s' must start with https:// (http:// needs insecure)",
		         opts->base_url);
		return NULL;
	}
	if (opts->access_token == NULL &&
	    (opts->client_id == NULL || opts->client_secret == NULL || opts->state_dir == NULL)) {
		snprintf(err, errsz,
		         "neither access_token nor OAuth2 client_id, client_secret and "
		         "state_dir are set");
		return NULL;
	}
	/* before any document of this client is parsed; the functions are interchangeable
	 * with malloc/free for values that already exist */
	if (pthread_once(&budget_once, budget_install) != 0) {
		snprintf(err, errsz, "unable to set up the JSON allocator");
		return NULL;
	}
	/* the config owns the defaults: a value it did not set is a caller's bug */
	if (opts->concurrency < 1 || opts->timeout_ms < 1) {
		snprintf(err, errsz, "concurrency and timeout_ms must be positive");
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL)
		goto out_nomem;
	if (pthread_mutex_init(&t->spare_mu, NULL) != 0) {
		free(t);
		goto out_nomem;
	}
	t->arena = calloc(1, sizeof(*t->arena)); /* NULL: tether_each uses malloc */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		pthread_mutex_destroy(&t->spare_mu);
		free(t->arena);
		free(t);
		snprintf(err, errsz, "curl_global_init failed");
		return NULL;
	}
	t->base_url = dup_opt(opts->base_url, &ok);
	if (t->base_url) {
		blen = strlen(t->base_url);
		while (blen && t->base_url[blen - 1] == '/')
			t->base_url[--blen] = '\0';
	}
	t->static_token = dup_opt(opts->access_token, &ok);
	t->client_id = dup_opt(opts->client_id, &ok);
	t->client_secret = dup_opt(opts->client_secret, &ok);
	t->redirect_uri = dup_opt(opts->redirect_uri, &ok);
	t->state_dir = dup_opt(opts->state_dir, &ok);
	t->insecure = opts->insecure;
	t->concurrency = opts->concurrency;
	t->timeout_ms = opts->timeout_ms;
	t->max_body = opts->max_body ? opts->max_body : DEFAULT_MAX_BODY;
	t->max_doc_memory = opts->max_doc_memory ? opts->max_doc_memory : DEFAULT_MAX_DOC_MEMORY;
	if (!ok)
		goto out_free_nomem;
	if ((t->multi = curl_multi_init()) == NULL || (t->auth_easy = curl_easy_init()) == NULL ||
	    (t->slots = calloc((size_t)t->concurrency, sizeof(*t->slots))) == NULL)
		goto out_free_nomem;
	/* the pool's connections, and room for one closing while its successor opens */
	t->nsocks = (size_t)t->concurrency * 2;
	if ((t->socks = malloc(t->nsocks * sizeof(*t->socks))) == NULL) {
		t->nsocks = 0;
		goto out_free_nomem;
	}
	for (size_t k = 0; k < t->nsocks; k++)
		t->socks[k] = CURL_SOCKET_BAD;
	for (i = 0; i < t->concurrency; i++) {
		t->slots[i].t = t;
		buf_init(&t->slots[i].body, t->max_body);
		if ((t->slots[i].easy = curl_easy_init()) == NULL)
			goto out_free_nomem;
	}
	/* keep every slot's connection in the pool between batches */
	if (curl_multi_setopt(t->multi, CURLMOPT_MAXCONNECTS, (long)t->concurrency) != CURLM_OK ||
	    curl_multi_setopt(t->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)t->concurrency) !=
	        CURLM_OK) {
		snprintf(err, errsz, "curl_multi_setopt failed");
		tether_free(t);
		return NULL;
	}
	if (t->static_token == NULL)
		token_load(t);
	return t;

out_free_nomem:
	tether_free(t);
out_nomem:
	snprintf(err, errsz, "out of memory");
	return NULL;
}

void tether_free(struct tether *t)
{
	int i;

	if (t == NULL)
		return;
	if (t->slots) {
		for (i = 0; i < t->concurrency; i++) {
			struct slot *s = &t->slots[i];
			if (s->easy && s->req && t->multi)
				curl_multi_remove_handle(t->multi, s->easy);
			if (s->easy)
				curl_easy_cleanup(s->easy);
			free_headers(&s->hdrs);
			buf_release(&s->body);
			free(s->url);
		}
		free(t->slots);
	}
	if (t->auth_easy)
		curl_easy_cleanup(t->auth_easy);
	if (t->multi)
		curl_multi_cleanup(t->multi);
	free(t->socks); /* after the cleanups: they close the sockets */
	token_clear(t);
	free(t->base_url);
	util_free_secret(t->static_token);
	free(t->client_id);
	util_free_secret(t->client_secret);
	free(t->redirect_uri);
	free(t->state_dir);
	if (t->arena != NULL)
		arena_close(t->arena);
	free(t->arena);
	tether_spare_release(t);
	pthread_mutex_destroy(&t->spare_mu);
	free(t);
	curl_global_cleanup();
}

long tether_connections(const struct tether *t)
{
	return t->connections;
}

/* Frees doc; after a big one, hands the freed memory back to the system (glibc keeps it
 * otherwise, and the daemon would stay at the size of its largest answer). */
static void doc_free(json_t *doc, size_t bytes)
{
	json_decref(doc);
	if (bytes >= TRIM_OVER)
		malloc_trim(0);
}

/* Locks (lock) or unlocks the spare bodies; a plain mutex fails only when broken, and the
 * process stops there rather than hand one buffer to two answers. */
static void spare_lock(struct tether *t, bool lock)
{
	int rc = lock ? pthread_mutex_lock(&t->spare_mu) : pthread_mutex_unlock(&t->spare_mu);

	if (rc != 0) {
		log_errorx("tether: unable to %s the spare bodies: %s", lock ? "lock" : "unlock",
		           strerror(rc));
		abort();
	}
}

/* Moves the len bytes in b into a spare body that has room for need bytes, if one is
 * kept: a raw answer takes one only once it is big, so a small answer never holds a big
 * buffer. */
static void spare_swap(struct tether *t, struct buf *b, size_t need)
{
	spare_lock(t, true);
	if (t->nspare > 0 && t->spare[t->nspare - 1].cap >= need) {
		t->nspare--;
		if (b->len > 0)
			memcpy(t->spare[t->nspare].data, b->data, b->len);
		t->spare[t->nspare].data[b->len] = '\0';
		free(b->data);
		b->data = t->spare[t->nspare].data;
		b->cap = t->spare[t->nspare].cap;
	}
	spare_lock(t, false);
}

void tether_req_recycle(struct tether *t, struct tether_req *req)
{
	size_t cap = req != NULL && req->body != NULL ? malloc_usable_size(req->body) : 0;

	if (t != NULL && cap >= SPARE_MIN) {
		spare_lock(t, true);
		if (t->nspare < SPARE_BODIES) {
			t->spare[t->nspare].data = req->body;
			t->spare[t->nspare].cap = cap;
			t->nspare++;
			req->body = NULL;
			req->body_len = 0;
		}
		spare_lock(t, false);
	}
	tether_req_release(req);
}

void tether_spare_release(struct tether *t)
{
	if (t == NULL)
		return;
	spare_lock(t, true);
	while (t->nspare > 0)
		free(t->spare[--t->nspare].data);
	spare_lock(t, false);
}

void tether_req_release(struct tether_req *req)
{
	if (req == NULL)
		return;
	if (req->doc)
		doc_free(req->doc, req->doc_memory);
	req->doc = NULL;
	req->doc_memory = 0;
	free(req->body);
	req->body = NULL;
	req->body_len = 0;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *ud)
{
	struct slot *s = ud;
	size_t n = size * nmemb;

	if (s->req && s->req->max_body && n > s->req->max_body - s->body.len) {
		s->too_big = true; /* body.len never passes max_body: see below */
		return 0;
	}
	/* growing past SPARE_MIN: into a spare body if there is one, its pages already there */
	if (s->req && s->req->raw && s->body.len + n + 1 > s->body.cap &&
	    s->body.len + n + 1 > SPARE_MIN && s->body.cap <= SPARE_MIN)
		spare_swap(s->t, &s->body, s->body.len + n + 1);
	if (buf_append(&s->body, p, n) < 0) {
		if (errno == E2BIG)
			s->too_big = true;
		else
			s->nomem = true;
		return 0;
	}
	return n;
}

/* Retry-After: delay-seconds or an HTTP date. */
static size_t on_header(char *p, size_t size, size_t nmemb, void *ud)
{
	struct slot *s = ud;
	size_t n = size * nmemb, k = sizeof("retry-after:") - 1;
	char v[64];
	size_t vl;

	if (n > k && strncasecmp(p, "retry-after:", k) == 0) {
		vl = n - k < sizeof(v) - 1 ? n - k : sizeof(v) - 1;
		memcpy(v, p + k, vl);
		v[vl] = '\0';
		s->retry_after_ms = retry_after_parse(v, util_now_ms(), TETHER_RETRY_AFTER_MAX_MS);
	}
	return n;
}

static int add_time(struct buf *b, const char *name, int64_t ms)
{
	char tbuf[UTIL_TIME_MAX];
	if (ms < 0)
		return 0;
	util_format_api(ms, tbuf);
	if (buf_printf(b, "&%s=", name) < 0)
		return -1;
	return buf_urlencode(b, tbuf);
}

/* The request's URL into s->url and its path into s->path. 0, -1 (NOMEM) or -2 (bad req). */
static int build_url(struct tether *t, struct slot *s, struct tether_req *r, bool *post)
{
	struct buf b;
	size_t qs = 0;
	const char *what = NULL;

	*post = false;
	buf_init(&b, 0);
	if (buf_puts(&b, t->base_url) < 0)
		goto out_nomem;
	switch (r->ep) {
	case TETHER_ZONES:
		if (buf_puts(&b, "/api/v3p/zones") < 0)
			goto out_nomem;
		qs = b.len;
		if (r->location_id &&
		    (buf_puts(&b, "?location_id=") < 0 || buf_urlencode(&b, r->location_id) < 0))
			goto out_nomem;
		break;
	case TETHER_EVENTS:
	case TETHER_EVENTS_AT:
	case TETHER_LPR:
	case TETHER_RECORDINGS:
		if (buf_puts(&b, r->ep == TETHER_LPR          ? "/api/v3p/lpr"
		                 : r->ep == TETHER_RECORDINGS ? "/api/v3p/recordings"
		                                              : "/api/v3p/events") < 0)
			goto out_nomem;
		qs = b.len;
		if (r->zone_id == NULL || *r->zone_id == '\0') {
			what = "zone_id";
			goto out_bad;
		}
		if (r->ep == TETHER_EVENTS_AT && r->at_ms < 0) {
			what = "at";
			goto out_bad;
		}
		if (buf_puts(&b, "?zone_id=") < 0 || buf_urlencode(&b, r->zone_id) < 0)
			goto out_nomem;
		if ((r->ep == TETHER_EVENTS &&
		     (add_time(&b, "from", r->from_ms) < 0 || add_time(&b, "to", r->to_ms) < 0)) ||
		    (r->ep == TETHER_LPR && (add_time(&b, "starts_at", r->from_ms) < 0 ||
		                             add_time(&b, "ends_at", r->to_ms) < 0)) ||
		    ((r->ep == TETHER_EVENTS_AT || r->ep == TETHER_RECORDINGS) &&
		     add_time(&b, "at", r->at_ms) < 0))
			goto out_nomem;
		break;
	case TETHER_PERSPECTIVES:
		if (buf_puts(&b, "/api/v3p/perspectives") < 0)
			goto out_nomem;
		qs = b.len;
		break;
	case TETHER_LIVE_SWITCH:
	case TETHER_RECORDING:
		if (buf_puts(&b, r->ep == TETHER_RECORDING ? "/api/v3p/recordings/"
		                                           : "/api/v3p/perspectives/") < 0)
			goto out_nomem;
		if (r->id == NULL || *r->id == '\0') {
			qs = b.len;
			what = "id";
			goto out_bad;
		}
		if (buf_urlencode(&b, r->id) < 0 ||
		    (r->ep == TETHER_LIVE_SWITCH && buf_puts(&b, "/live_switch_preset") < 0))
			goto out_nomem;
		qs = b.len;
		*post = r->ep == TETHER_LIVE_SWITCH;
		break;
	default:
		snprintf(r->error, sizeof(r->error), "unknown endpoint %d", (int)r->ep);
		buf_release(&b);
		return -2;
	}
	snprintf(s->path, sizeof(s->path), "%.*s", (int)(qs - strlen(t->base_url)),
	         b.data + strlen(t->base_url));
	free(s->url);
	s->url = buf_steal(&b);
	return s->url ? 0 : -1;

out_bad:
	snprintf(r->error, sizeof(r->error), "%s is required for %.*s", what,
	         (int)(qs - strlen(t->base_url)), b.data + strlen(t->base_url));
	buf_release(&b);
	return -2;
out_nomem:
	buf_release(&b);
	return -1;
}

/* The client's sockets, tracked as curl opens and closes them (a transfer's socket is not
 * known to the caller until it ends). Full: the socket is used, only not tracked. */
static curl_socket_t open_sock(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct tether *t = arg;
	curl_socket_t fd = socket(a->family, a->socktype, a->protocol);

	(void)purpose;
	for (size_t i = 0; fd != CURL_SOCKET_BAD && i < t->nsocks; i++) {
		if (t->socks[i] == CURL_SOCKET_BAD) {
			t->socks[i] = fd;
			break;
		}
	}
	return fd;
}

static int close_sock(void *arg, curl_socket_t fd)
{
	struct tether *t = arg;

	for (size_t i = 0; i < t->nsocks; i++)
		if (t->socks[i] == fd)
			t->socks[i] = CURL_SOCKET_BAD;
	return close(fd);
}

/* Sets up s->easy for its request and adds it to the multi. 0, or -1 with req filled. */
static int slot_start(struct tether *t, struct slot *s)
{
	struct tether_req *r = s->req;
	CURL *e = s->easy;
	CURLcode cc = CURLE_OK;
	struct curl_slist *h;
	struct buf auth;
	bool post;
	int rc;

	rc = build_url(t, s, r, &post);
	if (rc < 0) {
		r->status = rc == -1 ? TETHER_E_NOMEM : TETHER_E_CLIENT;
		if (rc == -1)
			snprintf(r->error, sizeof(r->error), "out of memory");
		return -1;
	}
	free_headers(&s->hdrs);
	buf_init(&auth, 0);
	if (buf_printf(&auth, "Authorization: Bearer %s",
	               t->static_token ? t->static_token : t->access_token) < 0 ||
	    (h = curl_slist_append(NULL, "Accept: application/json")) == NULL) {
		release_secret_buf(&auth);
		goto out_nomem;
	}
	s->hdrs = h;
	h = curl_slist_append(s->hdrs, auth.data);
	release_secret_buf(&auth);
	if (h == NULL)
		goto out_nomem;
	s->gen = t->gen;
	buf_reset(&s->body);
	s->errbuf[0] = '\0';
	s->retry_after_ms = -1;
	s->too_big = s->nomem = false;

	/* reset keeps the handle's live connection, session and DNS caches */
	curl_easy_reset(e);
#define SET(o, v)                                                                                  \
	do {                                                                                       \
		if (cc == CURLE_OK)                                                                \
			cc = curl_easy_setopt(e, o, v);                                            \
	} while (0)
	SET(CURLOPT_URL, s->url);
	SET(CURLOPT_HTTPHEADER, s->hdrs);
	SET(CURLOPT_USERAGENT, TB_USER_AGENT);
	SET(CURLOPT_WRITEFUNCTION, on_body);
	SET(CURLOPT_WRITEDATA, s);
	SET(CURLOPT_HEADERFUNCTION, on_header);
	SET(CURLOPT_HEADERDATA, s);
	SET(CURLOPT_ERRORBUFFER, s->errbuf);
	SET(CURLOPT_PRIVATE, s);
	SET(CURLOPT_NOSIGNAL, 1L);
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
	SET(CURLOPT_CONNECTTIMEOUT_MS,
	    (long)(t->timeout_ms < CONNECT_TIMEOUT_MS ? t->timeout_ms : CONNECT_TIMEOUT_MS));
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)t->max_body);
	SET(CURLOPT_MAXCONNECTS, (long)t->concurrency);
	SET(CURLOPT_TCP_KEEPALIVE, 1L);
	SET(CURLOPT_OPENSOCKETFUNCTION, open_sock);
	SET(CURLOPT_OPENSOCKETDATA, t);
	SET(CURLOPT_CLOSESOCKETFUNCTION, close_sock);
	SET(CURLOPT_CLOSESOCKETDATA, t);
	SET(CURLOPT_ACCEPT_ENCODING, "");
	SET(CURLOPT_PROTOCOLS_STR, t->insecure ? "http,https" : "https");
	if (t->insecure) {
		SET(CURLOPT_SSL_VERIFYPEER, 0L);
		SET(CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (post) {
		SET(CURLOPT_POST, 1L);
		SET(CURLOPT_POSTFIELDS, "");
		SET(CURLOPT_POSTFIELDSIZE, 0L);
	}
#undef SET
	if (cc != CURLE_OK) {
		r->status = TETHER_E_CLIENT;
		snprintf(r->error, sizeof(r->error), "curl setup: %s", curl_easy_strerror(cc));
		return -1;
	}
	if (curl_multi_add_handle(t->multi, e) != CURLM_OK)
		goto out_nomem;
	return 0;

out_nomem:
	r->status = TETHER_E_NOMEM;
	snprintf(r->error, sizeof(r->error), "out of memory");
	return -1;
}

/* --- JSON:API shape --- */

static int check_resource(const json_t *res, const char *where, const char *type, bool attrs,
                          char *err, size_t errsz)
{
	const json_t *v;
	const char *got;

	if (!json_is_object(res)) {
		snprintf(err, errsz, "%s: expected an object", where);
		return -1;
	}
	if (!json_is_string(json_object_get(res, "id"))) {
		snprintf(err, errsz, "%s.id: expected a string", where);
		return -1;
	}
	if ((got = json_string_value(json_object_get(res, "type"))) == NULL) {
		snprintf(err, errsz, "%s.type: expected a string", where);
		return -1;
	}
	if (type && strcmp(got, type) != 0) {
		snprintf(err, errsz, "%s.type: expected \"%s\", got \"%.40s\"", where, type, got);
		return -1;
	}
	if (!attrs)
		return 0;
	v = json_object_get(res, "attributes");
	if (!json_is_object(v)) {
		snprintf(err, errsz, "%s.attributes: expected an object", where);
		return -1;
	}
	if (strcmp(type, "zones") == 0 && !json_is_string(json_object_get(v, "name"))) {
		snprintf(err, errsz, "%s.attributes.name: expected a string", where);
		return -1;
	}
	return 0;
}

static const char *list_type(enum tether_endpoint ep)
{
	switch (ep) {
	case TETHER_ZONES:
		return "zones";
	case TETHER_EVENTS:
	case TETHER_EVENTS_AT:
		return "events";
	case TETHER_LPR:
		return "lprs";
	case TETHER_PERSPECTIVES:
		return "perspectives";
	case TETHER_RECORDINGS:
	case TETHER_RECORDING:
		return "recordings";
	default:
		return NULL;
	}
}

int tether_doc_check(enum tether_endpoint ep, const json_t *doc, char *err, size_t errsz)
{
	const json_t *data, *inc;
	const char *type = list_type(ep);
	char where[32];
	size_t i;

	if (ep == TETHER_LIVE_SWITCH)
		return 0;
	if (!json_is_object(doc)) {
		snprintf(err, errsz, "document: expected an object");
		return -1;
	}
	data = json_object_get(doc, "data");
	if (data == NULL) {
		snprintf(err, errsz, "data: missing");
		return -1;
	}
	if (ep == TETHER_RECORDING) {
		if (check_resource(data, "data", type, true, err, errsz) < 0)
			return -1;
		inc = json_object_get(doc, "included");
		if (inc == NULL)
			return 0;
		if (!json_is_array(inc)) {
			snprintf(err, errsz, "included: expected an array");
			return -1;
		}
		if (json_array_size(inc) > TETHER_MAX_RESOURCES) {
			snprintf(err, errsz, "included: %zu resources, more than %d",
			         json_array_size(inc), TETHER_MAX_RESOURCES);
			return -1;
		}
		for (i = 0; i < json_array_size(inc); i++) {
			snprintf(where, sizeof(where), "included[%zu]", i);
			if (check_resource(json_array_get(inc, i), where, NULL, false, err, errsz) <
			    0)
				return -1;
		}
		return 0;
	}
	if (!json_is_array(data)) {
		snprintf(err, errsz, "data: expected an array");
		return -1;
	}
	if (json_array_size(data) > TETHER_MAX_RESOURCES) {
		snprintf(err, errsz, "data: %zu resources, more than %d", json_array_size(data),
		         TETHER_MAX_RESOURCES);
		return -1;
	}
	/* events and plate reads are checked one by one by the normaliser, which skips a bad
	 * one and keeps the rest: one odd resource must not hold back its whole window */
	if (ep == TETHER_EVENTS || ep == TETHER_EVENTS_AT || ep == TETHER_LPR)
		return 0;
	for (i = 0; i < json_array_size(data); i++) {
		snprintf(where, sizeof(where), "data[%zu]", i);
		if (check_resource(json_array_get(data, i), where, type, true, err, errsz) < 0)
			return -1;
	}
	return 0;
}

/* --- resource by resource ---
 * The body is lexed once by yajl, a streaming parser (jansson's lexer spends ~140
 * instructions a byte: on a busy site two thirds of the bridge's work; see
 * docs/internals/performance.md), and only the resources of "data" are built, as the
 * jansson trees json_loadb would give: one at a time, within the document budget, each handed
 * to the callback and freed. Other members are checked and dropped. With a keep filter, the
 * members of a resource (and of its attributes) the caller does not read are lexed only
 * (a Tether event has ~55 members; the normaliser reads ~40, most of them has_* flags). */

#define EACH_MAX_DEPTH 2048 /* jansson's own nesting limit */
#define FAULT_OVER "over"   /* e->fault: the resource went past the document budget */

struct each {
	const struct tether *t;
	const struct tether_keep *keep; /* NULL: every member is built */
	int (*cb)(void *arg, const json_t *resource);
	void *arg;
	int depth;      /* containers open in the document; 1: inside the top object */
	bool want_data; /* the member name just read at depth 1 was "data" */
	bool open_data; /* the container opening now is the "data" array */
	bool in_data;   /* inside the "data" array: a value at depth 2 is a resource */
	bool seen;      /* "data" met */
	long count;
	int cb_rc;         /* what the callback returned when it stopped the walk */
	const char *fault; /* why the walk was cancelled, for err */
	struct buf key;    /* the member name of the object being built, for its next value */
	yajl_handle h;
	size_t end;     /* bytes up to the document's closing brace: after it only white space */
	int top;        /* containers of the resource being built, outermost first */
	bool attrs;     /* stack[1] is the resource's "attributes" object */
	bool skip_next; /* the member name just read is not kept: its value is not built */
	int skip;       /* containers open inside a value not built (no fault can come) */
	/* tether_each_flat: no tree (stack and top unused); depths are e->depth values */
	const struct tether_flat *flat;
	int res_depth;    /* the resource's own container; 0: not inside a resource */
	int attr_depth;   /* its "attributes" object; 0: not inside it */
	int fskip_depth;  /* the outermost container not reported; 0: none */
	bool fcheck;      /* what is inside that container is checked (the caller reads it) */
	int fslot;        /* the caller's slot for the member name just read; -1: not read */
	bool fattrs;      /* that name is the resource's "attributes" */
	bool fname_bad;   /* the name just read inside a checked container is not UTF-8 */
	size_t prev_end;  /* bytes lexed up to the previous token, for a resource's offset */
	const char *text; /* the body walked, text_len bytes */
	size_t text_len;
	json_t *stack[EACH_MAX_DEPTH];
};

enum { SKIP, BUILD };

/* What to do with the value starting now: SKIP (a member other than data, the top object,
 * the data array itself, a resource past the limit), BUILD, or -1 with e->fault. */
static int each_start(struct each *e, bool container, bool array)
{
	if (e->skip > 0 || e->skip_next) {
		e->skip_next = false;
		e->skip += container;
		return SKIP;
	}
	if (e->top > 0)
		return BUILD;
	if (e->depth == 0) {
		if (container && !array)
			return SKIP;
		e->fault = "document: expected an object";
		return -1;
	}
	if (e->depth == 1 && e->want_data) {
		e->want_data = false;
		if (!array) {
			e->fault = "data: expected an array";
			return -1;
		}
		e->open_data = true;
		return SKIP;
	}
	if (e->depth == 2 && e->in_data) {
		/* past the limit the rest is only counted, for the message */
		if (++e->count > TETHER_MAX_RESOURCES)
			return SKIP;
		if (e->flat != NULL)
			return BUILD; /* nothing is built: no budget, no arena */
		budget.on = true;     /* each resource has the whole budget */
		budget.over = false;
		budget.used = 0;
		budget.limit = e->t->max_doc_memory;
		if (arena_cur != NULL)
			arena_reuse(arena_cur);
		return BUILD;
	}
	return SKIP;
}

/* Whether a value starting now would be built (no side effect: each_start decides). */
static bool each_would_build(const struct each *e)
{
	if (e->skip > 0 || e->skip_next)
		return false;
	return e->top > 0 || (e->depth == 2 && e->in_data && e->count < TETHER_MAX_RESOURCES);
}

/* Whether the member named s (n bytes) of the object being built is kept: the resource's
 * own members and those of its attributes object go through e->keep, deeper ones all are. */
static bool each_keeps(const struct each *e, const unsigned char *s, size_t n)
{
	bool (*f)(const char *name, size_t len) = NULL;

	if (e->keep == NULL)
		return true;
	if (e->top == 1)
		f = e->keep->member;
	else if (e->top == 2 && e->attrs)
		f = e->keep->attribute;
	return f == NULL || f((const char *)s, n);
}

/* A whole resource: handed to the callback, then freed. 1 to go on, 0 to stop. */
static int each_resource(struct each *e, json_t *v)
{
	int rc;

	budget.on = false;
	rc = e->cb(e->arg, v);
	json_decref(v);
	if (rc < 0) {
		e->cb_rc = rc;
		return 0;
	}
	return 1;
}

/* v (NULL: not made; reference stolen) goes into the container being built, or is a whole
 * resource. 1 to go on, 0 to stop the walk (e->fault or e->cb_rc set). */
static int each_put(struct each *e, json_t *v)
{
	json_t *in;
	int rc;

	if (v == NULL) {
		e->fault = budget.over ? FAULT_OVER : "out of memory";
		return 0;
	}
	if (e->top == 0)
		return each_resource(e, v);
	in = e->stack[e->top - 1];
	if (json_is_object(in))
		rc = json_object_setn_new(in, e->key.data ? e->key.data : "", e->key.len, v);
	else
		rc = json_array_append_new(in, v);
	if (rc < 0) {
		e->fault = budget.over ? FAULT_OVER : "a member name is not valid UTF-8";
		return 0;
	}
	return 1;
}

/* A scalar made by the caller when each_would_build, else NULL. */
static int each_scalar(struct each *e, json_t *v)
{
	int what = each_start(e, false, false);

	if (what != BUILD) {
		json_decref(v);
		return what == SKIP;
	}
	return each_put(e, v);
}

static int on_null(void *ctx)
{
	return each_scalar(ctx, json_null());
}

static int on_boolean(void *ctx, int b)
{
	return each_scalar(ctx, json_boolean(b));
}

static int on_integer(void *ctx, long long i)
{
	struct each *e = ctx;
	return each_scalar(e, each_would_build(e) ? json_integer(i) : NULL);
}

static int on_double(void *ctx, double d)
{
	struct each *e = ctx;
	return each_scalar(e, each_would_build(e) ? json_real(d) : NULL);
}

static int on_string(void *ctx, const unsigned char *s, size_t n)
{
	struct each *e = ctx;
	json_t *v;

	if (!each_would_build(e))
		return each_scalar(e, NULL);
	/* as json_loadb: no NUL (yajl lets \u0000 through), valid UTF-8 (checked again by
	 * jansson, which is stricter: overlong forms, surrogates) */
	if (memchr(s, '\0', n) != NULL) {
		e->fault = "a string holds a NUL character";
		return 0;
	}
	if ((v = json_stringn((const char *)s, n)) == NULL && !budget.over) {
		e->fault = "a string is not valid UTF-8";
		return 0;
	}
	return each_scalar(e, v);
}

static int on_key(void *ctx, const unsigned char *s, size_t n)
{
	struct each *e = ctx;

	if (e->skip > 0)
		return 1;
	if (e->depth == 1 && e->top == 0) {
		e->want_data = n == 4 && memcmp(s, "data", 4) == 0;
		if (e->want_data && e->seen) {
			e->fault = "data: expected an array"; /* twice */
			return 0;
		}
		e->seen = e->seen || e->want_data;
		return 1;
	}
	if (e->top == 0)
		return 1;
	if (!each_keeps(e, s, n)) {
		e->skip_next = true;
		return 1;
	}
	if (memchr(s, '\0', n) != NULL) {
		e->fault = "a member name holds a NUL character";
		return 0;
	}
	e->key.len = 0;
	if (buf_append(&e->key, s, n) < 0) {
		e->fault = "out of memory";
		return 0;
	}
	return 1;
}

static int on_open(struct each *e, bool array)
{
	int what = each_start(e, true, array);
	json_t *c;

	if (what < 0)
		return 0;
	if (e->depth >= EACH_MAX_DEPTH) {
		e->fault = "too deeply nested";
		return 0;
	}
	e->depth++;
	if (e->open_data) {
		e->open_data = false;
		e->in_data = true;
	}
	if (what == SKIP)
		return 1;
	if (e->top == 1) /* opening stack[1]: is it the resource's attributes? */
		e->attrs = !array && json_is_object(e->stack[0]) && e->key.len == 10 &&
		           memcmp(e->key.data, "attributes", 10) == 0;
	c = array ? json_array() : json_object();
	if (c == NULL) {
		e->fault = budget.over ? FAULT_OVER : "out of memory";
		return 0;
	}
	/* linked into its parent now (the parent owns it, the stack borrows it); only the
	 * resource itself, stack[0], is owned by the stack */
	if (e->top > 0 && !each_put(e, c))
		return 0; /* c freed with the failed link */
	e->stack[e->top++] = c;
	return 1;
}

static int on_close(void *ctx)
{
	struct each *e = ctx;

	e->depth--;
	if (e->skip > 0) {
		e->skip--;
		return 1;
	}
	if (e->top > 0) {
		json_t *c = e->stack[--e->top];
		return e->top == 0 ? each_resource(e, c) : 1;
	}
	if (e->depth == 1 && e->in_data)
		e->in_data = false; /* the data array closed */
	if (e->depth == 0)
		e->end = yajl_get_bytes_consumed(e->h); /* one yajl_parse of the whole body */
	return 1;
}

static int on_open_map(void *ctx)
{
	return on_open(ctx, false);
}

static int on_open_array(void *ctx)
{
	return on_open(ctx, true);
}

static const yajl_callbacks each_callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_integer = on_integer,
    .yajl_double = on_double,
    .yajl_string = on_string,
    .yajl_start_map = on_open_map,
    .yajl_map_key = on_key,
    .yajl_end_map = on_close,
    .yajl_start_array = on_open_array,
    .yajl_end_array = on_close,
};

/* --- resource by resource, nothing built (tether_each_flat) ---
 * The same walk of the document (each_start, on_key and on_close outside the resources),
 * but inside a resource the caller is told of the members it reads, one at a time. */

/* A string the caller reads, or that lies inside a value it reads: checked as jansson
 * checks a string it builds (no NUL, valid UTF-8). */
static int flat_string(struct each *e, const char *s, size_t n)
{
	if (memchr(s, '\0', n) != NULL) {
		e->fault = "a string holds a NUL character";
		return 0;
	}
	if (!util_utf8_valid(s, n)) {
		e->fault = "a string is not valid UTF-8";
		return 0;
	}
	return 1;
}

/* The level of a member name read now: 2 inside the attributes object, else 1. */
static int flat_level(const struct each *e)
{
	return e->attr_depth != 0 && e->depth == e->attr_depth ? 2 : 1;
}

/* A member name inside a checked container that is not UTF-8 fails when its value comes,
 * after the value's own checks: where jansson's setter would refuse it in tether_each. */
static int flat_name(struct each *e)
{
	if (!e->fname_bad)
		return 1;
	e->fname_bad = false;
	e->fault = "a member name is not valid UTF-8";
	return 0;
}

static int flat_end(struct each *e)
{
	int rc = e->flat->end(e->arg);

	if (rc < 0) {
		e->cb_rc = rc;
		return 0;
	}
	return 1;
}

static int flat_scalar(struct each *e, const struct tether_value *v)
{
	int slot = e->fslot;

	if (e->res_depth == 0) {
		int what = each_start(e, false, false);
		size_t at = e->prev_end; /* after the token before: skip to this one */
		if (what != BUILD) {
			e->prev_end = yajl_get_bytes_consumed(e->h);
			return what == SKIP;
		}
		while (at < e->text_len && e->text[at] != '\0' &&
		       strchr(" \t\r\n,[", e->text[at]) != NULL)
			at++;
		e->prev_end = yajl_get_bytes_consumed(e->h);
		e->flat->begin(e->arg, false, at);
		if (v->type == TV_STRING && !flat_string(e, v->s, v->len))
			return 0;
		return flat_end(e);
	}
	if (e->fskip_depth != 0) {
		if (e->fcheck && v->type == TV_STRING && !flat_string(e, v->s, v->len))
			return 0;
		return flat_name(e);
	}
	e->fslot = -1;
	e->fattrs = false;
	if (slot < 0)
		return 1; /* a member not read: lexed only */
	if (v->type == TV_STRING && !flat_string(e, v->s, v->len))
		return 0;
	e->flat->value(e->arg, flat_level(e), slot, v);
	return 1;
}

static int fl_null(void *ctx)
{
	struct tether_value v = {.type = TV_NULL};

	return flat_scalar(ctx, &v);
}

static int fl_boolean(void *ctx, int b)
{
	struct tether_value v = {.type = b ? TV_TRUE : TV_FALSE};

	return flat_scalar(ctx, &v);
}

static int fl_integer(void *ctx, long long i)
{
	struct tether_value v = {.type = TV_INTEGER, .i = i};

	return flat_scalar(ctx, &v);
}

static int fl_double(void *ctx, double d)
{
	struct tether_value v = {.type = TV_REAL, .d = d};

	return flat_scalar(ctx, &v);
}

static int fl_string(void *ctx, const unsigned char *s, size_t n)
{
	struct tether_value v = {.type = TV_STRING, .s = (const char *)s, .len = n};

	return flat_scalar(ctx, &v);
}

static int fl_key(void *ctx, const unsigned char *s, size_t n)
{
	struct each *e = ctx;
	int level, rc = 1;

	if (e->res_depth == 0) {
		rc = on_key(ctx, s, n);
	} else if (e->fskip_depth != 0) {
		if (e->fcheck && memchr(s, '\0', n) != NULL) {
			e->fault = "a member name holds a NUL character";
			rc = 0;
		}
		e->fname_bad = e->fcheck && rc && !util_utf8_valid((const char *)s, n);
	} else {
		level = flat_level(e);
		e->fslot = e->flat->slot(e->arg, level, (const char *)s, n);
		e->fattrs = level == 1 && n == 10 && memcmp(s, "attributes", 10) == 0;
		/* a name the caller reads is one of its own: no NUL, valid UTF-8 */
	}
	return rc;
}

static int fl_open(struct each *e, bool array)
{
	bool resource = false;
	int slot = e->fslot, level = 0;

	if (e->res_depth == 0) {
		int what = each_start(e, true, array);
		if (what < 0)
			return 0;
		resource = what == BUILD;
	} else if (e->fskip_depth == 0) {
		level = flat_level(e);
	}
	if (e->depth >= EACH_MAX_DEPTH) {
		e->fault = "too deeply nested";
		return 0;
	}
	if (e->res_depth != 0 && e->fskip_depth != 0 && !flat_name(e))
		return 0;
	if (e->res_depth == 0)
		e->prev_end = yajl_get_bytes_consumed(e->h);
	e->depth++;
	if (e->open_data) {
		e->open_data = false;
		e->in_data = true;
	}
	if (resource) {
		e->res_depth = e->depth;
		e->flat->begin(e->arg, !array, e->prev_end - 1); /* at its '{' or '[' */
		if (array) { /* not a resource the caller can read: its contents are checked */
			e->fskip_depth = e->depth;
			e->fcheck = true;
		}
		return 1;
	}
	if (level == 0)
		return 1; /* outside the resources, or inside a container not reported */
	e->fslot = -1;
	if (slot < 0) { /* the value of a member not read: lexed only */
		e->fskip_depth = e->depth;
		e->fcheck = false;
	} else {
		struct tether_value v = {.type = array ? TV_ARRAY : TV_OBJECT};
		e->flat->value(e->arg, level, slot, &v);
		if (e->fattrs && !array) {
			e->attr_depth = e->depth;
		} else {
			e->fskip_depth = e->depth;
			e->fcheck = true;
		}
	}
	e->fattrs = false;
	return 1;
}

static int fl_open_map(void *ctx)
{
	return fl_open(ctx, false);
}

static int fl_open_array(void *ctx)
{
	return fl_open(ctx, true);
}

static int fl_close(void *ctx)
{
	struct each *e = ctx;
	bool ends;
	int rc = 1;

	if (e->res_depth == 0) {
		rc = on_close(ctx);
	} else {
		ends = e->depth == e->res_depth;
		if (e->fskip_depth == e->depth)
			e->fskip_depth = 0;
		if (e->attr_depth == e->depth)
			e->attr_depth = 0;
		e->depth--;
		if (ends) {
			e->res_depth = 0;
			rc = flat_end(e);
		}
	}
	if (e->res_depth == 0)
		e->prev_end = yajl_get_bytes_consumed(e->h);
	return rc;
}

static const yajl_callbacks flat_callbacks = {
    .yajl_null = fl_null,
    .yajl_boolean = fl_boolean,
    .yajl_integer = fl_integer,
    .yajl_double = fl_double,
    .yajl_string = fl_string,
    .yajl_start_map = fl_open_map,
    .yajl_map_key = fl_key,
    .yajl_end_map = fl_close,
    .yajl_start_array = fl_open_array,
    .yajl_end_array = fl_close,
};

/* One walk of r's body, building trees for cb (keep: what of them) or telling flat of the
 * members it reads: the number of resources, or -2 with err, or what the caller's callback
 * returned. */
static long each_walk(const struct tether *t, const struct tether_keep *keep,
                      int (*cb)(void *arg, const json_t *resource), const struct tether_flat *flat,
                      void *arg, const struct tether_req *r, char *err, size_t errsz)
{
	const unsigned char *p = (const unsigned char *)(r->body ? r->body : "");
	size_t n = r->body ? r->body_len : 0;
	struct each *e = calloc(1, sizeof(*e));
	yajl_handle h;
	yajl_status st;
	size_t junk; /* the first byte after the document that is not white space, or n */
	long rc = -2;

	if (e == NULL ||
	    (h = yajl_alloc(flat ? &flat_callbacks : &each_callbacks, NULL, e)) == NULL) {
		free(e);
		snprintf(err, errsz, "out of memory");
		return -2;
	}
	e->t = t;
	e->keep = keep;
	e->cb = cb;
	e->flat = flat;
	e->arg = arg;
	e->h = h;
	e->text = (const char *)p;
	e->text_len = n;
	e->fslot = -1;
	buf_init(&e->key, 0);
	if (e->flat == NULL && t->arena != NULL && !t->arena->opened) {
		t->arena->opened = true;
		arena_open(t->arena); /* on first use: a client that never walks takes none */
	}
	if (e->flat == NULL && t->arena != NULL && t->arena->slot != NULL) {
		arena_cur = t->arena;
		arena_reuse(arena_cur);
		if (arena_cur->used > 0 && !arena_cur->warned) {
			arena_cur->warned = true;
			log_warnx("tether: values of an earlier answer are still held: its memory "
			          "is not reused until they are freed");
		}
	}
	st = yajl_parse(h, p, n);
	if (st == yajl_status_ok)
		st = yajl_complete_parse(h);
	budget.on = false;
	arena_cur = NULL;
	/* yajl lets a trailing token it has not finished pass (`{...} "`); jansson does not */
	junk = st == yajl_status_ok && e->depth == 0 ? e->end : n;
	while (junk < n &&
	       (p[junk] == ' ' || p[junk] == '\t' || p[junk] == '\n' || p[junk] == '\r'))
		junk++;
	if (st == yajl_status_client_canceled && e->cb_rc < 0) {
		rc = e->cb_rc;
	} else if (st == yajl_status_client_canceled) {
		if (strcmp(e->fault, FAULT_OVER) == 0)
			snprintf(err, errsz, "a resource needs more than %zu MiB of memory",
			         t->max_doc_memory >> 20);
		else
			snprintf(err, errsz, "%s", e->fault);
	} else if (st != yajl_status_ok) {
		unsigned char *msg = yajl_get_error(h, 0, p, n);
		const char *why = msg ? (const char *)msg : "?";
		size_t at = yajl_get_bytes_consumed(h), len = strlen(why);
		/* "lexical error: invalid string in json text.\n" and the like: without the
		 * newline, which would end up escaped in the log line */
		while (len > 0 && isspace((unsigned char)why[len - 1]))
			len--;
		snprintf(err, errsz, "invalid JSON at byte %zu: %.*s", at, (int)len, why);
		if (msg)
			yajl_free_error(h, msg);
	} else if (junk < n) {
		snprintf(err, errsz, "invalid JSON at byte %zu: trailing garbage", junk);
	} else if (e->depth != 0 || n == 0) {
		snprintf(err, errsz, "document: expected an object");
	} else if (!e->seen) {
		snprintf(err, errsz, "data: missing");
	} else if (e->count > TETHER_MAX_RESOURCES) {
		snprintf(err, errsz, "data: %ld resources, more than %d", e->count,
		         TETHER_MAX_RESOURCES);
	} else {
		rc = e->count;
	}
	yajl_free(h);
	if (e->top > 0)
		json_decref(e->stack[0]); /* a resource cut short: holds the others */
	buf_release(&e->key);
	free(e);
	return rc;
}

long tether_each(const struct tether *t, const struct tether_req *r, const struct tether_keep *keep,
                 int (*cb)(void *arg, const json_t *resource), void *arg, char *err, size_t errsz)
{
	return each_walk(t, keep, cb, NULL, arg, r, err, errsz);
}

long tether_each_flat(const struct tether *t, const struct tether_req *r,
                      const struct tether_flat *ops, void *arg, char *err, size_t errsz)
{
	return each_walk(t, NULL, NULL, ops, arg, r, err, errsz);
}

/* --- running a batch --- */

static void fail_req(struct tether_req *r, enum tether_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_req(struct tether_req *r, enum tether_status st, const char *fmt, ...)
{
	va_list ap;
	r->status = st;
	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
}

/* A request not sent because an earlier answer of the batch was a 429: the caller retries
 * it after the same pause. */
static void hold_req(const struct run *run, struct tether_req *r)
{
	fail_req(r, TETHER_E_RATE, "not sent: rate limited (HTTP 429 from %s)", run->rate_path);
	r->http_status = 0;
	r->retry_after_ms = run->rate_retry_after_ms;
}

/* The transfer in s ended with cc. Fills s->req, or restarts s after a token refresh.
 * Returns true when s is busy again. */
static bool slot_finish(struct tether *t, struct run *run, struct slot *s, CURLcode cc)
{
	struct tether_req *r = s->req;
	long code = 0, conns = 0;
	json_error_t jerr;
	json_t *doc;
	char err[200];
	size_t used = 0;
	size_t room = run->doc_memory < t->max_doc_memory ? t->max_doc_memory - run->doc_memory : 0;
	bool over = false;

	curl_easy_getinfo(s->easy, CURLINFO_NUM_CONNECTS, &conns);
	t->connections += conns;
	curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &code);
	r->http_status = code;
	r->retry_after_ms = s->retry_after_ms;

	if (s->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
		size_t cap = r->max_body && r->max_body < t->max_body ? r->max_body : t->max_body;
		fail_req(r, TETHER_E_PAYLOAD, "response larger than %zu bytes from %s", cap,
		         s->path);
		r->too_big = true;
	} else if (s->nomem) {
		fail_req(r, TETHER_E_NOMEM, "out of memory reading %s", s->path);
	} else if (cc == CURLE_OPERATION_TIMEDOUT) {
		fail_req(r, TETHER_E_TIMEOUT, "%s: timed out after %lld ms", s->path,
		         (long long)t->timeout_ms);
	} else if (cc == CURLE_PARTIAL_FILE) {
		fail_req(r, TETHER_E_PAYLOAD, "truncated response from %s", s->path);
	} else if (cc != CURLE_OK) {
		fail_req(r, TETHER_E_NETWORK, "%s: %s", s->path,
		         s->errbuf[0] ? s->errbuf : curl_easy_strerror(cc));
	} else if (code == 401 && !t->static_token && !s->retried) {
		if (s->gen == t->gen && !run->refresh_tried) {
			run->refresh_tried = true;
			run->refresh_status =
			    refresh_token(t, false, run->refresh_err, sizeof(run->refresh_err));
		}
		if (s->gen != t->gen && !run->rate_limited) {
			/* the token changed since this request went out: retry once with the new */
			s->retried = true;
			if (slot_start(t, s) == 0)
				return true;
			goto out;
		}
		if (s->gen != t->gen)
			hold_req(run, r);
		else if (run->refresh_status != TETHER_OK)
			fail_req(r, run->refresh_status, "%s", run->refresh_err);
		else
			fail_req(r, TETHER_E_AUTH, "HTTP 401 from %s", s->path);
	} else if (code == 401 || code == 403) {
		fail_req(r, TETHER_E_AUTH, "HTTP %ld from %s", code, s->path);
	} else if (code == 429) {
		fail_req(r, TETHER_E_RATE, "HTTP 429 from %s", s->path);
		if (!run->rate_limited) {
			run->rate_limited = true;
			run->rate_retry_after_ms = s->retry_after_ms;
			snprintf(run->rate_path, sizeof(run->rate_path), "%s", s->path);
		}
	} else if (code >= 500) {
		fail_req(r, TETHER_E_SERVER, "HTTP %ld from %s", code, s->path);
	} else if (code < 200 || code >= 300) {
		fail_req(r, TETHER_E_CLIENT, "HTTP %ld from %s", code, s->path);
	} else if (r->ep == TETHER_LIVE_SWITCH && s->body.len == 0) {
		r->status = TETHER_OK;
	} else if (r->raw) {
		/* parsed resource by resource by the caller (tether_each) */
		r->body_len = s->body.len;
		if ((r->body = buf_steal(&s->body)) == NULL)
			fail_req(r, TETHER_E_NOMEM, "out of memory reading %s", s->path);
		else
			r->status = TETHER_OK;
	} else if ((doc = budget_loadb(s->body.data ? s->body.data : "", s->body.len, room, &used,
	                               &over, &jerr, 0)) == NULL) {
		if (over)
			fail_req(r, TETHER_E_PAYLOAD,
			         "document from %s needs more than the %zu KiB of memory left "
			         "(a batch's documents may take %zu MiB)",
			         s->path, room >> 10, t->max_doc_memory >> 20);
		else
			fail_req(r, TETHER_E_PAYLOAD,
			         "invalid JSON from %s: %s (line %d, column %d)", s->path,
			         jerr.text, jerr.line, jerr.column);
		if (s->body.len >= TRIM_OVER)
			malloc_trim(0);
	} else if (tether_doc_check(r->ep, doc, err, sizeof(err)) < 0) {
		doc_free(doc, used);
		fail_req(r, TETHER_E_PAYLOAD, "%s", err);
	} else {
		r->doc = doc;
		r->doc_memory = used;
		run->doc_memory += used;
		r->status = TETHER_OK;
	}
	log_debug("%s %s: %s, HTTP %ld, %zu bytes", r->ep == TETHER_LIVE_SWITCH ? "POST" : "GET",
	          s->path, tether_status_name(r->status), code,
	          r->body ? r->body_len : s->body.len);
	if (r->status != TETHER_OK && s->body.len)
		util_excerpt(r->excerpt, sizeof(r->excerpt), s->body.data, s->body.len);
out:
	/* give a big answer's memory back now rather than holding it per slot */
	if (s->body.cap > 65536)
		buf_release(&s->body);
	free_headers(&s->hdrs);
	s->req = NULL;
	return false;
}

/* The whole batch fails the same way (no usable token). */
static void fail_all(struct tether_req *reqs, size_t n, enum tether_status st, const char *msg)
{
	for (size_t i = 0; i < n; i++)
		fail_req(&reqs[i], st, "%s", msg);
}

/* Acknowledges at once what the API sent on every open connection. A server that writes an
 * answer's headers and its body apart, without TCP_NODELAY, holds the body until the
 * headers are acknowledged, and Linux delays that acknowledgement up to 40 ms on a
 * connection it takes for interactive (a request answered, another sent): on a reused
 * connection each small answer took 40 ms instead of one (tests/bench/bench_fetch.c).
 * Called after each curl_multi_perform: the request went out and the headers may be in,
 * their acknowledgement pending; TCP_QUICKACK sends it now. */
static void quick_acks(struct tether *t)
{
#ifdef TCP_QUICKACK
	int one = 1;

	for (size_t i = 0; i < t->nsocks; i++)
		if (t->socks[i] != CURL_SOCKET_BAD)
			/* best effort: a socket that refuses only acknowledges later */
			(void)setsockopt(t->socks[i], IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
#else
	(void)t;
#endif
}

int tether_run(struct tether *t, struct tether_req *reqs, size_t n)
{
	struct run run = {.refresh_status = TETHER_OK};
	size_t next = 0, i;
	int active = 0, running = 0, k, pending;
	bool progressed;
	CURLMsg *m;
	CURLMcode mc;
	char err[256];

	for (i = 0; i < n; i++) {
		tether_req_release(&reqs[i]);
		reqs[i].status = TETHER_OK;
		reqs[i].http_status = 0;
		reqs[i].retry_after_ms = -1;
		reqs[i].error[0] = reqs[i].excerpt[0] = '\0';
		reqs[i].too_big = false;
	}
	if (!t->static_token) {
		if (t->access_token == NULL) {
			snprintf(err, sizeof(err),
			         "%.200s; run 'tether-bridge auth url' to authorise", t->token_err);
			fail_all(reqs, n, TETHER_E_AUTH, err);
			return 0;
		}
		if (t->expires_at && t->refresh_token &&
		    util_now_ms() / 1000 >= t->expires_at - TOKEN_SKEW_S) {
			enum tether_status st;
			run.refresh_tried = true;
			st = refresh_token(t, false, err, sizeof(err));
			if (st != TETHER_OK) {
				fail_all(reqs, n, st, err);
				return 0;
			}
		}
	}
	for (;;) {
		/* requests in flight when a 429 came are answered; the rest are held */
		for (; run.rate_limited && next < n; next++)
			hold_req(&run, &reqs[next]);
		for (k = 0; k < t->concurrency && next < n; k++) {
			struct slot *s = &t->slots[k];
			if (s->req)
				continue;
			s->req = &reqs[next++];
			s->retried = false;
			if (slot_start(t, s) < 0) {
				s->req = NULL;
				k--; /* the slot is still free */
				continue;
			}
			active++;
		}
		if (active == 0)
			break;
		mc = curl_multi_perform(t->multi, &running);
		if (mc != CURLM_OK)
			goto out_multi;
		quick_acks(t);
		progressed = false;
		while ((m = curl_multi_info_read(t->multi, &pending)) != NULL) {
			struct slot *s;
			char *priv = NULL;
			CURL *e = m->easy_handle;
			CURLcode cc = m->data.result;
			if (m->msg != CURLMSG_DONE)
				continue;
			progressed = true;
			curl_easy_getinfo(e, CURLINFO_PRIVATE, &priv);
			s = (struct slot *)priv;
			curl_multi_remove_handle(t->multi, e);
			active--;
			if (slot_finish(t, &run, s, cc))
				active++;
		}
		if (!progressed && active > 0 &&
		    (mc = curl_multi_poll(t->multi, NULL, 0, 1000, NULL)) != CURLM_OK)
			goto out_multi;
	}
	return 0;

out_multi:
	snprintf(err, sizeof(err), "curl multi: %s", curl_multi_strerror(mc));
	for (k = 0; k < t->concurrency; k++) {
		struct slot *s = &t->slots[k];
		if (s->req == NULL)
			continue;
		curl_multi_remove_handle(t->multi, s->easy);
		fail_req(s->req, TETHER_E_NETWORK, "%s", err);
		free_headers(&s->hdrs);
		s->req = NULL;
	}
	for (; next < n; next++)
		fail_req(&reqs[next], TETHER_E_NETWORK, "%s", err);
	return -1;
}

/* --- typed views --- */

int tether_zones_list(const json_t *doc, struct tether_zone **zones, size_t *n, char *err,
                      size_t errsz)
{
	const json_t *data = json_object_get(doc, "data");
	struct tether_zone *z;
	size_t i, cnt;

	*zones = NULL;
	*n = 0;
	if (!json_is_array(data)) {
		snprintf(err, errsz, "data: expected an array");
		return -1;
	}
	cnt = json_array_size(data);
	if ((z = calloc(cnt ? cnt : 1, sizeof(*z))) == NULL) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	for (i = 0; i < cnt; i++) {
		const json_t *res = json_array_get(data, i);
		z[i].id = json_string_value(json_object_get(res, "id"));
		z[i].name =
		    json_string_value(json_object_get(json_object_get(res, "attributes"), "name"));
		if (z[i].id == NULL || z[i].name == NULL) {
			snprintf(err, errsz, "data[%zu]: zone without id or attributes.name", i);
			free(z);
			return -1;
		}
	}
	*zones = z;
	*n = cnt;
	return 0;
}
