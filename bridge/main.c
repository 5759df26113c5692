/* tether-bridge: the command line. Options go before or after the command; each command loads
 * what it needs. Results go to stdout, errors to stderr; exit 0 ok, 1 config or runtime error,
 * 2 usage. The daemon itself is daemon.c. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "bridge/bridge.h"
#include "bridge/control.h"
#include "bridge/lint.h"
#include "lib/log.h"
#include "bridge/store.h"
#include "bridge/tether.h"

/* The options a command takes besides -c, -h and -V (which every command takes). */
enum {
	OPT_ZONES = 1 << 0,
	OPT_NOW = 1 << 1,
	OPT_TARGET = 1 << 2,
	OPT_SINCE = 1 << 3,
	OPT_SHOW_SECRETS = 1 << 4,
	OPT_PERSPECTIVES = 1 << 5,
	OPT_JSON = 1 << 6,
};

#define HELP_OPTIONS                                                                               \
	"  -c, --config FILE   configuration file (default ./tether-bridge.yaml)\n"                \
	"  -h, --help          print this help and exit\n"

/* One entry per command. usage: what `COMMAND --help` prints; its first paragraph (up to
 * the first blank line) is also what a usage error shows. man/tether-bridge.1 says the same. */
struct command {
	const char *name;
	unsigned opts;
	const char *usage;
};

static const struct command commands[] = {
    {"run", 0,
     "usage: tether-bridge [run] [-c FILE]\n"
     "\n"
     "Run the daemon: poll the Tether API, filter with the rules, deliver to MQTT and\n"
     "webhooks. Logs go to stderr. SIGTERM or SIGINT stop it, SIGHUP reloads the\n"
     "configuration. One daemon at a time may use a state_dir (state_dir/lock).\n"
     "\n"
     "options:\n" HELP_OPTIONS},
    {"check", 0,
     "usage: tether-bridge check [-c FILE]\n"
     "\n"
     "Validate the configuration, rules, templates and watchlists. Prints a summary and\n"
     "exits 0, or prints every error as FILE:LINE:COL: message and exits 1.\n"
     "\n"
     "options:\n" HELP_OPTIONS},
    {"explain", OPT_ZONES | OPT_NOW | OPT_SHOW_SECRETS | OPT_PERSPECTIVES | OPT_JSON,
     "usage: tether-bridge explain [-c FILE] [--zones ZONES.json] [--now TIME] [--show-secrets]\n"
     "       [--perspectives FILE] [--json] INPUT|-\n"
     "\n"
     "Show what each resource of a Tether events or lpr document (INPUT, or - for stdin)\n"
     "would match and send. INPUT may also hold the bridge's own v1 messages (one, or\n"
     "JSON lines from 'dlq list' or as received from MQTT): the rules are evaluated on\n"
     "them again. Readable text on a terminal, else one JSON line per record. Sends\n"
     "nothing, writes no state.\n"
     "\n"
     "options:\n" HELP_OPTIONS
     "  --zones ZONES.json  zone names from a /zones document (else from the API)\n"
     "  --perspectives FILE a saved /perspectives document: call-ups show the\n"
     "                      perspective they would switch to (auto resolved)\n"
     "  --now TIME          the time used for max_age, schedules and signatures\n"
     "                      (ISO 8601, e.g. 2026-11-26T04:00:00Z)\n"
     "  --show-secrets      print webhook URLs and header values in full (else redacted\n"
     "                      as check shows them)\n"
     "  --json              one JSON line per record, also on a terminal\n"},
    {"auth", 0,
     "usage: tether-bridge auth url [-c FILE]\n"
     "       tether-bridge auth exchange CODE|REDIRECT_URL [-c FILE]\n"
     "       tether-bridge auth refresh [-c FILE]\n"
     "\n"
     "The OAuth2 steps (needs tether.client_id, client_secret and redirect_uri).\n"
     "  url       print the authorisation URL, with a new random state kept in\n"
     "            state_dir/oauth-state\n"
     "  exchange  trade the code for tokens, saved in state_dir/token.json (0600). Give\n"
     "            the whole redirect URL (its state must match the last 'auth url') or\n"
     "            the bare code\n"
     "  refresh   refresh the access token now and print when it expires\n"
     "\n"
     "options:\n" HELP_OPTIONS},
    {"dlq", OPT_TARGET | OPT_SINCE,
     "usage: tether-bridge dlq list [-c FILE] [--target NAME] [--since TIME]\n"
     "       tether-bridge dlq replay [-c FILE] [--target NAME] [--since TIME]\n"
     "\n"
     "Dead letters: 'list' prints them as JSON lines, 'replay' puts them back in the\n"
     "outbox (a running daemon sends them within a second).\n"
     "\n"
     "options:\n" HELP_OPTIONS
     "  --target NAME       only this target (mqtt.NAME or webhook.NAME)\n"
     "  --since TIME        only those that failed since TIME: ISO 8601\n"
     "                      (2026-11-26T04:00:00Z) or a duration back from now (2h)\n"},
    {"perspectives", 0,
     "usage: tether-bridge perspectives [-c FILE]\n"
     "\n"
     "List the video wall's perspectives (live-view presets) from the API, one a line:\n"
     "id, name, layout and zone ids, separated by tabs.\n"
     "\n"
     "options:\n" HELP_OPTIONS},
    {"switch", 0,
     "usage: tether-bridge switch NAME|ID [-c FILE]\n"
     "\n"
     "Switch the video wall to a perspective now, straight through the API (one\n"
     "live_switch_preset; a running daemon's hold is not changed). An unknown\n"
     "perspective exits 1.\n"
     "\n"
     "options:\n" HELP_OPTIONS},
    {"mode", 0,
     "usage: tether-bridge mode [NAME] [-c FILE]\n"
     "\n"
     "Print the arming mode, or set it to NAME (one of control.modes) in the state\n"
     "database; a running daemon picks the change up within a poll interval and\n"
     "publishes it. An unknown mode exits 1.\n"
     "\n"
     "options:\n" HELP_OPTIONS},
    {"version", 0,
     "usage: tether-bridge version\n"
     "       tether-bridge -V|--version\n"
     "\n"
     "Print the version.\n"},
    {"help", 0,
     "usage: tether-bridge help [COMMAND]\n"
     "       tether-bridge [COMMAND] -h|--help\n"
     "\n"
     "Print the list of commands, or COMMAND's usage and options.\n"},
};

static const char usage_text[] =
    "usage: tether-bridge [COMMAND] [ARGS] [-c FILE]\n"
    "\n"
    "commands:\n"
    "  run                 run the daemon (the default command)\n"
    "  check               validate config, rules, templates and watchlists\n"
    "  explain INPUT|-     show what a Tether events or lpr document would match and\n"
    "                      send; sends nothing\n"
    "  auth url            print the OAuth2 authorisation URL\n"
    "  auth exchange CODE|REDIRECT_URL\n"
    "                      trade an authorisation code for tokens\n"
    "  auth refresh        refresh the access token\n"
    "  dlq list            print dead letters as JSON lines\n"
    "  dlq replay          put dead letters back in the outbox\n"
    "  perspectives        list the video wall's perspectives\n"
    "  switch NAME|ID      switch the video wall to a perspective now\n"
    "  mode [NAME]         print or set the arming mode\n"
    "  version             print the version\n"
    "  help [COMMAND]      print this help, or COMMAND's\n"
    "\n"
    "options (before or after the command):\n"
    "  -c, --config FILE   configuration file (default ./tether-bridge.yaml)\n"
    "  -h, --help          print this help, or COMMAND's, and exit\n"
    "  -V, --version       print the version and exit\n"
    "\n"
    "'tether-bridge COMMAND --help' shows a command's own options.\n"
    "Exit status: 0 ok, 1 config or runtime error, 2 usage.\n";

static const struct command *current; /* the command being run, for usage() */

static const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	}
	return NULL;
}

/* A usage error: why, the synopsis of the current command, where to read more; exit 2. */
static int usage(const char *why)
{
	if (why)
		fprintf(stderr, "tether-bridge: %s\n", why);
	if (current) {
		const char *end = strstr(current->usage, "\n\n");
		fprintf(stderr, "%.*s\n", (int)(end ? end - current->usage : 0), current->usage);
		fprintf(stderr, "Try 'tether-bridge %s --help' for more.\n", current->name);
	} else {
		fputs("usage: tether-bridge [COMMAND] [ARGS] [-c FILE]\n"
		      "Try 'tether-bridge --help' for the commands.\n",
		      stderr);
	}
	return 2;
}

static int cmd_check(const char *path)
{
	struct cfg_errors errs = {0};
	struct config *cfg;
	struct rules *rules;
	char summary[512];

	if (bridge_load(path, &cfg, &rules, &errs) < 0) {
		cfg_errors_print(&errs, stdout);
		/* the errors before their count, also when both go to one pipe */
		fflush(stdout);
		fprintf(stderr, "%s: %zu error%s\n", path, errs.n, errs.n == 1 ? "" : "s");
		cfg_errors_release(&errs);
		return 1;
	}
	lint_config(cfg, &errs);
	cfg_errors_print(&errs, stdout);
	config_summary(cfg, summary, sizeof(summary));
	printf("%s: %s, %zu rule%s", path, summary, rules_count(rules),
	       rules_count(rules) == 1 ? "" : "s");
	if (errs.n > 0)
		printf(", %zu warning%s", errs.n, errs.n == 1 ? "" : "s");
	printf("\n");
	cfg_errors_release(&errs);
	rules_free(rules);
	config_free(cfg);
	return 0;
}

static struct config *load_config_only(const char *path)
{
	struct cfg_errors errs = {0};
	struct config *cfg = config_load(path, &errs);
	if (cfg == NULL)
		cfg_errors_print(&errs, stderr);
	cfg_errors_release(&errs);
	return cfg;
}

#define OAUTH_STATE_FILE "oauth-state"
#define OAUTH_STATE_LEN 32 /* hex digits: 128 random bits */

/* A new random state for `auth url`, kept in state_dir/oauth-state (0600) so that `auth
 * exchange` can tell the redirect answers this request. 0, or -1 with a message on stderr. */
static int oauth_state_new(const char *state_dir, char out[OAUTH_STATE_LEN + 1])
{
	unsigned char raw[OAUTH_STATE_LEN / 2];
	char path[4200];
	int fd;

	if (RAND_bytes(raw, sizeof(raw)) != 1) {
		fprintf(stderr, "auth url: unable to get random bytes for the state\n");
		return -1;
	}
	for (size_t i = 0; i < sizeof(raw); i++)
		snprintf(out + 2 * i, 3, "%02x", raw[i]);
	snprintf(path, sizeof(path), "%s/" OAUTH_STATE_FILE, state_dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, out, OAUTH_STATE_LEN) != OAUTH_STATE_LEN || close(fd) < 0) {
		fprintf(stderr, "auth url: unable to write '%s': %s\n", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return 0;
}

/* The state `auth url` kept, or "" when there is none. */
static void oauth_state_read(const char *state_dir, char out[OAUTH_STATE_LEN + 1])
{
	char path[4200];
	FILE *f;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/" OAUTH_STATE_FILE, state_dir);
	if ((f = fopen(path, "re")) != NULL) {
		n = fread(out, 1, OAUTH_STATE_LEN, f);
		fclose(f);
	}
	out[n == OAUTH_STATE_LEN ? n : 0] = '\0';
}

/* What `auth exchange` was given: a bare code, or the redirect URL with code and state in
 * its query (or an error the user saw instead). Strings are owned; redirect_release frees. */
struct redirect {
	char *code, *state, *error, *error_description;
};

static void redirect_release(struct redirect *r)
{
	util_free_secret(r->code);
	free(r->state);
	free(r->error);
	free(r->error_description);
	memset(r, 0, sizeof(*r));
}

/* Fills r from a redirect URL's query (libcurl splits the URL and decodes the values). 0, or
 * -1 when arg is not a URL curl can parse or its query cannot be read. */
static int redirect_parse(const char *arg, struct redirect *r)
{
	CURLU *u = curl_url();
	char *query = NULL, *save = NULL;
	size_t qlen;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	if (u == NULL)
		return -1;
	if (curl_url_set(u, CURLUPART_URL, arg, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK)
		goto out_free_url;
	if (curl_url_get(u, CURLUPART_QUERY, &query, 0) != CURLUE_OK) {
		rc = 0; /* no query: no code, said by the caller */
		goto out_free_url;
	}
	qlen = strlen(query);
	for (char *kv = strtok_r(query, "&", &save); kv; kv = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(kv, '='), **slot = NULL;
		if (eq == NULL)
			continue;
		*eq = '\0';
		if (strcmp(kv, "code") == 0)
			slot = &r->code;
		else if (strcmp(kv, "state") == 0)
			slot = &r->state;
		else if (strcmp(kv, "error") == 0)
			slot = &r->error;
		else if (strcmp(kv, "error_description") == 0)
			slot = &r->error_description;
		if (slot == NULL || *slot != NULL)
			continue;
		/* '+' is a space in a form-encoded query */
		for (char *p = eq + 1; *p; p++)
			if (*p == '+')
				*p = ' ';
		char *v = curl_easy_unescape(NULL, eq + 1, 0, NULL);
		if (v == NULL || (*slot = strdup(v)) == NULL) {
			curl_free(v);
			redirect_release(r);
			goto out_free_query;
		}
		curl_free(v);
	}
	rc = 0;
out_free_query:
	util_memzero(query, qlen);
	curl_free(query);
out_free_url:
	curl_url_cleanup(u);
	return rc;
}

/* Turns `auth exchange`'s argument into the code to trade, checking a redirect's state
 * against the one `auth url` kept. A bare code is taken as it is: the user vouches for it.
 * 0 with *code (caller frees with util_free_secret), or -1 with a message on stderr. */
static int exchange_code(const char *arg, const char *state_dir, char **code)
{
	struct redirect r;
	char want[OAUTH_STATE_LEN + 1];

	*code = NULL;
	if (strstr(arg, "://") == NULL && strchr(arg, '?') == NULL) {
		if ((*code = strdup(arg)) == NULL) {
			fprintf(stderr, "auth exchange: out of memory\n");
			return -1;
		}
		return 0;
	}
	if (redirect_parse(arg, &r) < 0) {
		fprintf(stderr, "auth exchange: unable to read the redirect URL\n");
		return -1;
	}
	if (r.error) {
		fprintf(stderr, "auth exchange: the authorisation was refused: %s%s%s\n", r.error,
		        r.error_description ? ": " : "",
		        r.error_description ? r.error_description : "");
		goto out_release;
	}
	if (r.code == NULL || r.code[0] == '\0') {
		fprintf(stderr, "auth exchange: the redirect URL has no code= in its query\n");
		goto out_release;
	}
	oauth_state_read(state_dir, want);
	if (want[0] == '\0') {
		fprintf(stderr,
		        "auth exchange: no authorisation pending in '%s' (no %s): run 'auth url' "
		        "first, or give the bare code\n",
		        state_dir, OAUTH_STATE_FILE);
		goto out_release;
	}
	if (r.state == NULL || strlen(r.state) != OAUTH_STATE_LEN ||
	    CRYPTO_memcmp(r.state, want, OAUTH_STATE_LEN) != 0) {
		fprintf(stderr,
		        "auth exchange: state mismatch: this redirect does not answer the last "
		        "'auth url' for '%s'; nothing was exchanged. Run 'auth url' again and "
		        "use the URL it prints\n",
		        state_dir);
		goto out_release;
	}
	*code = r.code;
	r.code = NULL;
out_release:
	redirect_release(&r);
	return *code ? 0 : -1;
}

/* "token refreshed, expires at ..." from the token.json just written. */
static void print_refreshed(const char *state_dir)
{
	char path[4200], when[32];
	json_t *o, *exp;
	struct tm tm;
	time_t at;

	snprintf(path, sizeof(path), "%s/token.json", state_dir);
	o = json_load_file(path, 0, NULL);
	exp = o ? json_object_get(o, "expires_at") : NULL;
	if (json_is_integer(exp) && json_integer_value(exp) > 0) {
		at = (time_t)json_integer_value(exp);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&at, &tm));
		printf("token refreshed, expires at %s\n", when);
	} else {
		printf("token refreshed (the server gave no expiry)\n");
	}
	json_decref(o);
}

static int cmd_auth(const char *path, int argc, char **argv)
{
	struct config *cfg;
	struct tether_opts o;
	char err[512];
	struct tether *t;
	char *code = NULL;
	int rc = 1;

	if (argc < 1 || (strcmp(argv[0], "url") != 0 && strcmp(argv[0], "refresh") != 0 &&
	                 strcmp(argv[0], "exchange") != 0))
		return usage("auth needs url, exchange CODE or refresh");
	if (strcmp(argv[0], "exchange") == 0 && argc != 2)
		return usage("auth exchange needs the CODE or the redirect URL");
	if (strcmp(argv[0], "exchange") != 0 && argc != 1)
		return usage("too many arguments");
	/* warnings (a token file others can read) still show; results are printed below */
	log_init(LOG_LEVEL_WARN, false);
	cfg = load_config_only(path);
	if (cfg == NULL)
		return 1;
	if (cfg->tether.client_id == NULL || cfg->tether.client_secret == NULL ||
	    cfg->tether.redirect_uri == NULL) {
		fprintf(stderr, "%s: auth needs tether.client_id, client_secret and redirect_uri\n",
		        path);
		goto out_free_cfg;
	}
	bridge_tether_opts(cfg, &o);
	o.access_token = NULL; /* the OAuth2 steps never use the static token */
	if (util_mkdirs(cfg->state_dir) < 0) {
		fprintf(stderr, "unable to create state_dir '%s': %s\n", cfg->state_dir,
		        strerror(errno));
		goto out_free_cfg;
	}
	if (strcmp(argv[0], "url") == 0) {
		char *url = NULL, state[OAUTH_STATE_LEN + 1];
		if (oauth_state_new(cfg->state_dir, state) < 0)
			goto out_free_cfg;
		if (tether_auth_url(&o, &url) == 0) {
			printf("%s&state=%s\n", url, state);
			rc = 0;
		} else {
			fprintf(stderr, "auth url: unable to build the URL\n");
		}
		free(url);
		goto out_free_cfg;
	}
	if (strcmp(argv[0], "exchange") == 0 && exchange_code(argv[1], cfg->state_dir, &code) < 0)
		goto out_free_cfg;
	t = tether_new(&o, err, sizeof(err));
	if (t == NULL) {
		fprintf(stderr, "auth: %s\n", err);
		goto out_free_code;
	}
	if (code)
		rc = tether_auth_exchange(t, code, err, sizeof(err));
	else
		rc = tether_auth_refresh(t, err, sizeof(err));
	tether_free(t);
	if (rc != 0) {
		fprintf(stderr, "auth %s: %s\n", argv[0], err);
		rc = 1;
		goto out_free_code;
	}
	if (code) {
		char state_path[4200];
		/* the state answers one authorisation only */
		snprintf(state_path, sizeof(state_path), "%s/" OAUTH_STATE_FILE, cfg->state_dir);
		unlink(state_path);
		printf("token saved in %s/token.json\n", cfg->state_dir);
	} else {
		print_refreshed(cfg->state_dir);
	}
out_free_code:
	util_free_secret(code);
out_free_cfg:
	config_free(cfg);
	return rc;
}

/* TIME: ISO 8601, or a duration back from now ("2h"). */
static int parse_since(const char *s, int64_t *ms)
{
	int64_t d;
	if (util_parse_time(s, ms, NULL) == 0)
		return 0;
	if (util_parse_duration(s, &d) == 0) {
		*ms = util_now_ms() - d;
		return 0;
	}
	return -1;
}

/* One dead letter as a JSON line. Text that is not UTF-8 (a reason an older version cut
 * inside a character: that tail is dropped) is repaired rather than allowed to stop the
 * listing: one bad record never hides the rest. */
static int print_dead(void *arg, const struct store_entry *e, int status, const char *reason,
                      int64_t failed_ms)
{
	char when[UTIL_TIME_MAX];
	json_error_t jerr;
	json_t *msg = e->payload ? json_loads(e->payload, 0, &jerr) : NULL;
	json_t *line;
	char *cut = reason ? strndup(reason, util_utf8_cut(reason, SIZE_MAX, SIZE_MAX)) : NULL;
	char *why = util_utf8_clean(cut ? cut : "");
	char *mid = util_utf8_clean(e->msg_id), *target = util_utf8_clean(e->target);

	util_format_iso(failed_ms, 0, when);
	if (msg == NULL) {
		char *raw = util_utf8_clean(e->payload ? e->payload : "");
		msg = raw ? json_string(raw) : NULL;
		free(raw);
	}
	line = json_pack("{s:I, s:s?, s:s?, s:i, s:s?, s:i, s:s, s:o?}", "id", (json_int_t)e->id,
	                 "msg_id", mid, "target", target, "status", status, "reason", why,
	                 "attempts", e->attempts, "failed_at", when, "message", msg);
	free(cut);
	free(why);
	free(mid);
	free(target);
	char *text = line ? json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(line);
	if (text == NULL) {
		fprintf(stderr, "dlq list: unable to print dead letter %lld (out of memory)\n",
		        (long long)e->id);
		*(int *)arg = 1;
		return 0;
	}
	puts(text);
	free(text);
	return 0;
}

/* The targets `dlq --target` knows: configured ones and those that have dead letters (a
 * target removed from the config may still have some). Sorted, without duplicates. */
struct dlq_targets {
	char **v;
	size_t n;
};

static int dlq_targets_add(struct dlq_targets *ts, const char *kind, const char *name)
{
	char *full, **v;

	if (asprintf(&full, "%s%s", kind, name) < 0)
		return -1;
	for (size_t i = 0; i < ts->n; i++) {
		if (strcmp(ts->v[i], full) == 0) {
			free(full);
			return 0;
		}
	}
	if ((v = realloc(ts->v, (ts->n + 1) * sizeof(*v))) == NULL) {
		free(full);
		return -1;
	}
	ts->v = v;
	ts->v[ts->n++] = full;
	return 0;
}

static int dlq_target_seen(void *arg, const struct store_entry *e, int status, const char *reason,
                           int64_t failed_ms)
{
	(void)status;
	(void)reason;
	(void)failed_ms;
	return dlq_targets_add(arg, "", e->target) < 0 ? -1 : 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void dlq_targets_release(struct dlq_targets *ts)
{
	for (size_t i = 0; i < ts->n; i++)
		free(ts->v[i]);
	free(ts->v);
	ts->v = NULL;
	ts->n = 0;
}

static void dlq_targets_print(const struct dlq_targets *ts, FILE *f)
{
	if (ts->n == 0)
		fputs("none", f);
	for (size_t i = 0; i < ts->n; i++)
		fprintf(f, "%s%s", i ? ", " : "", ts->v[i]);
}

/* Resolves --target: a known full name ("webhook.slack"), or a bare name ("slack") that
 * only one known target has. Sets *out (borrowed from ts) and returns 0, or says why not
 * on stderr, naming the known targets, and returns -1. */
static int dlq_target_resolve(const struct config *cfg, struct store *st, const char *target,
                              struct dlq_targets *ts, const char **out)
{
	const char *found = NULL;
	size_t nfound = 0;

	for (size_t i = 0; i < cfg->nmqtt; i++)
		if (dlq_targets_add(ts, "mqtt.", cfg->mqtt[i].name) < 0)
			goto out_nomem;
	for (size_t i = 0; i < cfg->nwebhooks; i++)
		if (dlq_targets_add(ts, "webhook.", cfg->webhooks[i].name) < 0)
			goto out_nomem;
	if (store_dlq_list(st, NULL, 0, dlq_target_seen, ts) != 0) {
		fprintf(stderr, "dlq: unable to read the dead letters: %s\n", store_errmsg(st));
		return -1;
	}
	if (ts->n)
		qsort(ts->v, ts->n, sizeof(*ts->v), cmp_str);
	for (size_t i = 0; i < ts->n; i++) {
		const char *dot = strchr(ts->v[i], '.');
		if (strcmp(ts->v[i], target) == 0) {
			*out = ts->v[i];
			return 0;
		}
		if (dot && strcmp(dot + 1, target) == 0) {
			found = ts->v[i];
			nfound++;
		}
	}
	if (nfound == 1) {
		*out = found;
		return 0;
	}
	if (nfound > 1) {
		fprintf(stderr, "dlq: target '%s' is ambiguous, say which:", target);
		for (size_t i = 0; i < ts->n; i++) {
			const char *dot = strchr(ts->v[i], '.');
			if (dot && strcmp(dot + 1, target) == 0)
				fprintf(stderr, " %s", ts->v[i]);
		}
		fputc('\n', stderr);
		return -1;
	}
	fprintf(stderr, "dlq: no target '%s'; known targets: ", target);
	dlq_targets_print(ts, stderr);
	fputc('\n', stderr);
	return -1;

out_nomem:
	fprintf(stderr, "dlq: out of memory\n");
	return -1;
}

static int cmd_dlq(const char *path, int argc, char **argv, const char *target, const char *since)
{
	struct dlq_targets ts = {0};
	struct config *cfg;
	struct store *st;
	char err[512], *db;
	int64_t since_ms = 0;
	int rc = 1, bad = 0;

	if (argc != 1 || (strcmp(argv[0], "list") != 0 && strcmp(argv[0], "replay") != 0))
		return usage("dlq needs list or replay");
	if (since && parse_since(since, &since_ms) < 0)
		return usage("--since: expected an ISO 8601 time or a duration such as 2h");
	cfg = load_config_only(path);
	if (cfg == NULL)
		return 1;
	db = store_path(cfg->state_dir); /* NULL (out of memory): store_open reports it */
	st = store_open(db, err, sizeof(err));
	free(db);
	if (st == NULL) {
		fprintf(stderr, "dlq: %s\n", err);
		config_free(cfg);
		return 1;
	}
	if (target && dlq_target_resolve(cfg, st, target, &ts, &target) < 0)
		goto out;
	if (strcmp(argv[0], "list") == 0) {
		rc = store_dlq_list(st, target, since_ms, print_dead, &bad) < 0 ? 1 : 0;
	} else {
		int count = 0;
		rc = store_dlq_replay(st, target, since_ms, &count) < 0 ? 1 : 0;
		if (rc == 0)
			printf("%d dead letter%s back in the outbox\n", count,
			       count == 1 ? "" : "s");
	}
	if (rc != 0)
		fprintf(stderr, "dlq %s: %s\n", argv[0], store_errmsg(st));
	if (bad)
		rc = 1; /* said above, record by record */
out:
	dlq_targets_release(&ts);
	store_close(st);
	config_free(cfg);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"zones", required_argument, NULL, 'z'},
	    {"perspectives", required_argument, NULL, 'P'},
	    {"target", required_argument, NULL, 't'},
	    {"since", required_argument, NULL, 's'},
	    {"now", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {"show-secrets", no_argument, NULL, 'S'},
	    {"json", no_argument, NULL, 'J'},
	    {NULL, 0, NULL, 0},
	};
	static const struct {
		int ch;
		unsigned opt;
		const char *name;
	} per_command[] = {
	    {'z', OPT_ZONES, "--zones"},   {'P', OPT_PERSPECTIVES, "--perspectives"},
	    {'t', OPT_TARGET, "--target"}, {'s', OPT_SINCE, "--since"},
	    {'n', OPT_NOW, "--now"},       {'S', OPT_SHOW_SECRETS, "--show-secrets"},
	    {'J', OPT_JSON, "--json"},
	};
	const char *config = "tether-bridge.yaml", *zones = NULL, *target = NULL;
	const char *perspectives = NULL;
	const char *since = NULL, *now_arg = NULL;
	char **args, why[160];
	int nargs = 0, ch, rc;
	unsigned given = 0;
	bool help = false, version = false, show_secrets = false, json = false;

	/* every word that is not an option, in order: the command, then its arguments */
	args = calloc((size_t)argc + 1, sizeof(*args));
	if (args == NULL) {
		fprintf(stderr, "tether-bridge: out of memory\n");
		return 1;
	}
	/* "-" first: words come back as option 1, so options may follow the command (also
	 * under POSIXLY_CORRECT) and a lone "-" (stdin) is a word */
	while ((ch = getopt_long(argc, argv, "-c:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 1:
			args[nargs++] = optarg;
			if (nargs == 1)
				current = command_find(optarg);
			break;
		case 'c':
			config = optarg;
			break;
		case 'z':
			zones = optarg;
			break;
		case 'P':
			perspectives = optarg;
			break;
		case 't':
			target = optarg;
			break;
		case 's':
			since = optarg;
			break;
		case 'n':
			now_arg = optarg;
			break;
		case 'S':
			show_secrets = true;
			break;
		case 'J':
			json = true;
			break;
		case 'h':
			help = true;
			break;
		case 'V':
			version = true;
			break;
		default: /* getopt said what was wrong */
			free(args);
			return usage(NULL);
		}
		for (size_t i = 0; i < sizeof(per_command) / sizeof(per_command[0]); i++)
			if (ch == per_command[i].ch)
				given |= per_command[i].opt;
	}
	while (optind < argc) /* the words after "--" */
		args[nargs++] = argv[optind++];
	if (nargs > 0 && current == NULL) {
		snprintf(why, sizeof(why), "unknown command '%s'", args[0]);
		free(args);
		return usage(why);
	}
	if (current == NULL)
		current = command_find("run");
	if (help || strcmp(current->name, "help") == 0) {
		const struct command *c = help ? current : NULL;
		if (!help && nargs > 1 && (c = command_find(args[1])) == NULL) {
			snprintf(why, sizeof(why), "unknown command '%s'", args[1]);
			free(args);
			return usage(why);
		}
		fputs(c && nargs > 0 ? c->usage : usage_text, stdout);
		free(args);
		return 0;
	}
	if (version || strcmp(current->name, "version") == 0) {
		printf("tether-bridge %s\n", TB_VERSION);
		free(args);
		return 0;
	}
	for (size_t i = 0; i < sizeof(per_command) / sizeof(per_command[0]); i++) {
		if ((given & per_command[i].opt) && !(current->opts & per_command[i].opt)) {
			snprintf(why, sizeof(why), "%s does not take %s", current->name,
			         per_command[i].name);
			free(args);
			return usage(why);
		}
	}
	if (nargs > 0) { /* from here on, the command's own arguments */
		nargs--;
		memmove(args, args + 1, (size_t)nargs * sizeof(*args));
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "tether-bridge: unable to initialise libcurl\n");
		free(args);
		return 1;
	}
	if (strcmp(current->name, "run") == 0) {
		rc = nargs ? usage("run takes no arguments") : daemon_main(config);
	} else if (strcmp(current->name, "check") == 0) {
		rc = nargs ? usage("check takes no arguments") : cmd_check(config);
	} else if (strcmp(current->name, "explain") == 0) {
		int64_t now = util_now_ms();
		if (nargs != 1)
			rc = usage("explain needs one INPUT (a file, or - for stdin)");
		else if (now_arg && util_parse_time(now_arg, &now, NULL) < 0)
			rc = usage("--now: expected an ISO 8601 time");
		else
			rc = explain_main(config, zones, perspectives, args[0], now, show_secrets,
			                  json || !isatty(STDOUT_FILENO));
	} else if (strcmp(current->name, "auth") == 0) {
		rc = cmd_auth(config, nargs, args);
	} else if (strcmp(current->name, "perspectives") == 0) {
		rc = nargs ? usage("perspectives takes no arguments")
		           : control_cli(config, "perspectives", 0, args);
	} else if (strcmp(current->name, "switch") == 0) {
		rc = nargs != 1 ? usage("switch needs one perspective NAME or ID")
		                : control_cli(config, "switch", nargs, args);
	} else if (strcmp(current->name, "mode") == 0) {
		rc = nargs > 1 ? usage("mode takes at most one NAME")
		               : control_cli(config, "mode", nargs, args);
	} else {
		rc = cmd_dlq(config, nargs, args, target, since);
	}
	curl_global_cleanup();
	free(args);
	return rc;
}
