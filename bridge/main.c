/* tether-bridge: the command line. Each command loads what it needs and reports problems
 * as "FILE:LINE:COL: message"; exit 0 ok, 1 config or runtime error, 2 usage. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "bridge/bridge.h"
#include "lib/log.h"
#include "bridge/store.h"
#include "bridge/tether.h"

static const char usage_text[] =
    "usage: tether-bridge [COMMAND] [-c FILE] ...\n"
    "\n"
    "commands:\n"
    "  run [-c FILE]                 run the daemon (the default command)\n"
    "  check [-c FILE]               validate config, rules, templates and watchlists\n"
    "  explain [-c FILE] [--zones ZONES.json] [--now TIME] INPUT|-\n"
    "                                show what each resource of a Tether events or lpr\n"
    "                                document would match and send; sends nothing\n"
    "  auth url [-c FILE]            print the OAuth2 authorisation URL\n"
    "  auth exchange CODE [-c FILE]  trade an authorisation code for tokens\n"
    "  auth refresh [-c FILE]        refresh the access token\n"
    "  dlq list [-c FILE] [--target NAME] [--since TIME]\n"
    "                                print dead letters as JSON lines\n"
    "  dlq replay [-c FILE] [--target NAME] [--since TIME]\n"
    "                                put dead letters back in the outbox\n"
    "  version                       print the version\n"
    "\n"
    "-c FILE defaults to ./tether-bridge.yaml. TIME is an ISO 8601 time\n"
    "(2026-11-26T04:00:00Z) or a duration back from now (2h).\n"
    "Exit status: 0 ok, 1 config or runtime error, 2 usage.\n";

static int usage(const char *why)
{
	if (why)
		fprintf(stderr, "tether-bridge: %s\n", why);
	fputs(usage_text, stderr);
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
		fprintf(stderr, "%s: %zu error%s\n", path, errs.n, errs.n == 1 ? "" : "s");
		cfg_errors_release(&errs);
		return 1;
	}
	config_summary(cfg, summary, sizeof(summary));
	printf("%s: %s, %zu rule%s\n", path, summary, rules_count(rules),
	       rules_count(rules) == 1 ? "" : "s");
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

static void tether_opts_from(const struct config *cfg, struct tether_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->base_url = cfg->tether.base_url;
	o->access_token = cfg->tether.access_token;
	o->client_id = cfg->tether.client_id;
	o->client_secret = cfg->tether.client_secret;
	o->redirect_uri = cfg->tether.redirect_uri;
	o->state_dir = cfg->state_dir;
	o->insecure = cfg->tether.insecure;
	o->concurrency = cfg->poll.concurrency;
	o->timeout_ms = cfg->tether.timeout_ms;
}

static int cmd_auth(const char *path, int argc, char **argv)
{
	struct config *cfg;
	struct tether_opts o;
	char err[512];
	int rc = 1;

	if (argc < 1)
		return usage("auth needs url, exchange CODE or refresh");
	if (strcmp(argv[0], "url") != 0 && strcmp(argv[0], "refresh") != 0 &&
	    strcmp(argv[0], "exchange") != 0)
		return usage("auth needs url, exchange CODE or refresh");
	if (strcmp(argv[0], "exchange") == 0 && argc != 2)
		return usage("auth exchange needs the CODE");
	if (strcmp(argv[0], "exchange") != 0 && argc != 1)
		return usage("too many arguments");
	cfg = load_config_only(path);
	if (cfg == NULL)
		return 1;
	if (cfg->tether.client_id == NULL || cfg->tether.client_secret == NULL ||
	    cfg->tether.redirect_uri == NULL) {
		fprintf(stderr, "%s: auth needs tether.client_id, client_secret and redirect_uri\n",
		        path);
		config_free(cfg);
		return 1;
	}
	tether_opts_from(cfg, &o);
	o.access_token = NULL; /* the OAuth2 steps never use the static token */
	if (strcmp(argv[0], "url") == 0) {
		char *url = NULL;
		if (tether_auth_url(&o, &url) == 0) {
			printf("%s\n", url);
			rc = 0;
		} else {
			fprintf(stderr, "auth url: unable to build the URL\n");
		}
		free(url);
		config_free(cfg);
		return rc;
	}
	if (util_mkdirs(cfg->state_dir) < 0) {
		fprintf(stderr, "unable to create state_dir '%s': %s\n", cfg->state_dir,
		        strerror(errno));
		config_free(cfg);
		return 1;
	}
	struct tether *t = tether_new(&o, err, sizeof(err));
	if (t == NULL) {
		fprintf(stderr, "auth: %s\n", err);
		config_free(cfg);
		return 1;
	}
	if (strcmp(argv[0], "exchange") == 0)
		rc = tether_auth_exchange(t, argv[1], err, sizeof(err));
	else
		rc = tether_auth_refresh(t, err, sizeof(err));
	if (rc == 0)
		printf("token saved in %s/token.json\n", cfg->state_dir);
	else
		fprintf(stderr, "auth %s: %s\n", argv[0], err);
	tether_free(t);
	config_free(cfg);
	return rc == 0 ? 0 : 1;
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

static int print_dead(void *arg, const struct store_entry *e, int status, const char *reason,
                      int64_t failed_ms)
{
	char when[UTIL_TIME_MAX];
	json_error_t jerr;
	json_t *msg = e->payload ? json_loads(e->payload, 0, &jerr) : NULL;
	json_t *line;

	(void)arg;
	util_format_iso(failed_ms, 0, when);
	if (msg == NULL)
		msg = json_string(e->payload ? e->payload : "");
	line = json_pack("{s:I, s:s, s:s, s:i, s:s, s:i, s:s, s:o}", "id", (json_int_t)e->id,
	                 "msg_id", e->msg_id, "target", e->target, "status", status, "reason",
	                 reason ? reason : "", "attempts", e->attempts, "failed_at", when,
	                 "message", msg);
	if (line == NULL)
		return -1;
	char *text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(line);
	if (text == NULL)
		return -1;
	puts(text);
	free(text);
	return 0;
}

static int cmd_dlq(const char *path, int argc, char **argv, const char *target, const char *since)
{
	struct config *cfg;
	struct store *st;
	char err[512], db[4096];
	int64_t since_ms = 0;
	int rc = 1;

	if (argc != 1 || (strcmp(argv[0], "list") != 0 && strcmp(argv[0], "replay") != 0))
		return usage("dlq needs list or replay");
	if (since && parse_since(since, &since_ms) < 0)
		return usage("--since: expected an ISO 8601 time or a duration such as 2h");
	cfg = load_config_only(path);
	if (cfg == NULL)
		return 1;
	snprintf(db, sizeof(db), "%s/state.db", cfg->state_dir);
	st = store_open(db, err, sizeof(err));
	if (st == NULL) {
		fprintf(stderr, "dlq: %s\n", err);
		config_free(cfg);
		return 1;
	}
	if (strcmp(argv[0], "list") == 0) {
		rc = store_dlq_list(st, target, since_ms, print_dead, NULL) < 0 ? 1 : 0;
	} else {
		int count = 0;
		rc = store_dlq_replay(st, target, since_ms, &count) < 0 ? 1 : 0;
		if (rc == 0)
			printf("%d dead letter%s back in the outbox\n", count,
			       count == 1 ? "" : "s");
	}
	if (rc != 0)
		fprintf(stderr, "dlq %s: %s\n", argv[0], store_errmsg(st));
	store_close(st);
	config_free(cfg);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"zones", required_argument, NULL, 'z'},
	    {"target", required_argument, NULL, 't'},
	    {"since", required_argument, NULL, 's'},
	    {"now", required_argument, NULL, 'n'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *cmd = "run", *config = "tether-bridge.yaml", *zones = NULL, *target = NULL;
	const char *since = NULL, *now_arg = NULL;
	int ch, rc;

	if (argc > 1 && argv[1][0] != '-') {
		cmd = argv[1];
		argv++;
		argc--;
	}
	if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(cmd, "version") == 0) {
		printf("tether-bridge %s\n", TB_VERSION);
		return 0;
	}
	while ((ch = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'z':
			zones = optarg;
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
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return usage(NULL);
		}
	}
	argc -= optind;
	argv += optind;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		fprintf(stderr, "tether-bridge: unable to initialise libcurl\n");
		return 1;
	}
	if (strcmp(cmd, "run") == 0) {
		rc = argc ? usage("run takes no arguments") : daemon_main(config);
	} else if (strcmp(cmd, "check") == 0) {
		rc = argc ? usage("check takes no arguments") : cmd_check(config);
	} else if (strcmp(cmd, "explain") == 0) {
		int64_t now = util_now_ms();
		if (argc != 1)
			rc = usage("explain needs one INPUT (a file, or - for stdin)");
		else if (now_arg && util_parse_time(now_arg, &now, NULL) < 0)
			rc = usage("--now: expected an ISO 8601 time");
		else
			rc = explain_main(config, zones, argv[0], now);
	} else if (strcmp(cmd, "auth") == 0) {
		rc = cmd_auth(config, argc, argv);
	} else if (strcmp(cmd, "dlq") == 0) {
		rc = cmd_dlq(config, argc, argv, target, since);
	} else {
		char why[128];
		snprintf(why, sizeof(why), "unknown command '%s'", cmd);
		rc = usage(why);
	}
	curl_global_cleanup();
	return rc;
}
