/* tether-sim: command line, start-up and the generator clock. Serves the Tether API on
 * 127.0.0.1 (sim_http.c) until SIGTERM or SIGINT, then frees everything. */
#include "lib/util.h"
#include "tests/sim/sim.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fputs("usage: tether-sim [--port N] [--port-file FILE] [--zones N] [--locations N]\n"
	      "                  [--rate EVENTS_PER_S] [--plate-rate PLATES_PER_S] [--backlog N]\n"
	      "                  [--backlog-span DURATION] [--seed S] [--token-ttl SECONDS]\n"
	      "                  [--client-id ID] [--client-secret S] [--access-token TOKEN]\n"
	      "                  [--to-bounds start|end] [--open-ends-at null|start|now]\n"
	      "                  [--incomplete PERCENT] [--late PERCENT] [--quiet] [--help]\n"
	      "Serves the Tether API (OAuth2, /api/v3p) and the /_sim/ admin API on 127.0.0.1.\n"
	      "See docs/simulator.md.\n",
	      f);
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= lo && v <= hi))
		return -1;
	*out = v;
	return 0;
}

/* Writes the port through a temporary file and rename, so readers never see half of it. */
static int write_port_file(const char *path, unsigned port)
{
	char text[16];
	snprintf(text, sizeof(text), "%u\n", port);
	return util_write_file_replace(path, text);
}

static int parse_args(int argc, char **argv, struct sim_opts *o)
{
	enum {
		O_PORT = 256,
		O_PORT_FILE,
		O_ZONES,
		O_LOCATIONS,
		O_RATE,
		O_PLATE_RATE,
		O_BACKLOG,
		O_SPAN,
		O_SEED,
		O_TTL,
		O_CID,
		O_CSECRET,
		O_TOKEN,
		O_TO,
		O_OPEN,
		O_INCOMPLETE,
		O_LATE,
		O_QUIET,
		O_HELP
	};
	static const struct option longopts[] = {
	    {"port", required_argument, NULL, O_PORT},
	    {"port-file", required_argument, NULL, O_PORT_FILE},
	    {"zones", required_argument, NULL, O_ZONES},
	    {"locations", required_argument, NULL, O_LOCATIONS},
	    {"rate", required_argument, NULL, O_RATE},
	    {"plate-rate", required_argument, NULL, O_PLATE_RATE},
	    {"backlog", required_argument, NULL, O_BACKLOG},
	    {"backlog-span", required_argument, NULL, O_SPAN},
	    {"seed", required_argument, NULL, O_SEED},
	    {"token-ttl", required_argument, NULL, O_TTL},
	    {"client-id", required_argument, NULL, O_CID},
	    {"client-secret", required_argument, NULL, O_CSECRET},
	    {"access-token", required_argument, NULL, O_TOKEN},
	    {"to-bounds", required_argument, NULL, O_TO},
	    {"open-ends-at", required_argument, NULL, O_OPEN},
	    {"incomplete", required_argument, NULL, O_INCOMPLETE},
	    {"late", required_argument, NULL, O_LATE},
	    {"quiet", no_argument, NULL, O_QUIET},
	    {"help", no_argument, NULL, O_HELP},
	    {NULL, 0, NULL, 0},
	};
	long l;
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		const char *bad = NULL;
		switch (c) {
		case O_PORT:
			if (parse_long(optarg, 0, 65535, &l) < 0)
				bad = "--port";
			o->port = (int)l;
			break;
		case O_PORT_FILE:
			o->port_file = optarg;
			break;
		case O_ZONES:
			if (parse_long(optarg, 0, 10000, &l) < 0)
				bad = "--zones";
			o->zones = (int)l;
			break;
		case O_LOCATIONS:
			if (parse_long(optarg, 1, 64, &l) < 0)
				bad = "--locations";
			o->locations = (int)l;
			break;
		case O_RATE:
			if (parse_double(optarg, 0, 1e6, &o->rate) < 0)
				bad = "--rate";
			break;
		case O_PLATE_RATE:
			if (parse_double(optarg, 0, 1e6, &o->plate_rate) < 0)
				bad = "--plate-rate";
			break;
		case O_BACKLOG:
			if (parse_long(optarg, 0, 100000000, &o->backlog) < 0)
				bad = "--backlog";
			break;
		case O_SPAN:
			if (util_parse_duration(optarg, &o->backlog_span_ms) < 0 ||
			    o->backlog_span_ms < 1000)
				bad = "--backlog-span";
			break;
		case O_SEED: {
			char *end;
			errno = 0;
			o->seed = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end)
				bad = "--seed";
			break;
		}
		case O_TTL:
			if (parse_long(optarg, 1, 100000000, &o->token_ttl) < 0)
				bad = "--token-ttl";
			break;
		case O_CID:
			o->client_id = optarg;
			break;
		case O_CSECRET:
			o->client_secret = optarg;
			break;
		case O_TOKEN:
			o->access_token = optarg;
			break;
		case O_TO:
			if (strcmp(optarg, "start") == 0)
				o->to_bounds = SIM_TO_START;
			else if (strcmp(optarg, "end") == 0)
				o->to_bounds = SIM_TO_END;
			else
				bad = "--to-bounds";
			break;
		case O_OPEN:
			if (strcmp(optarg, "null") == 0)
				o->open_ends_at = SIM_OPEN_NULL;
			else if (strcmp(optarg, "start") == 0)
				o->open_ends_at = SIM_OPEN_START;
			else if (strcmp(optarg, "now") == 0)
				o->open_ends_at = SIM_OPEN_NOW;
			else
				bad = "--open-ends-at";
			break;
		case O_INCOMPLETE:
			if (parse_double(optarg, 0, 100, &o->incomplete_pct) < 0)
				bad = "--incomplete";
			break;
		case O_LATE:
			if (parse_double(optarg, 0, 100, &o->late_pct) < 0)
				bad = "--late";
			break;
		case O_QUIET:
			o->quiet = true;
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -1;
		}
		if (bad != NULL) {
			fprintf(stderr, "tether-sim: invalid value '%s' for %s\n", optarg, bad);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "tether-sim: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sim_opts o = {
	    .zones = 3,
	    .locations = 1,
	    .backlog_span_ms = 3600 * 1000,
	    .token_ttl = 3600,
	    .client_id = "sim-client",
	    .client_secret = "sim-secret",
	    .access_token = "sim-static-token",
	    .to_bounds = SIM_TO_START,
	    .open_ends_at = SIM_OPEN_NULL,
	};
	struct sigaction sa;
	struct MHD_Daemon *d;
	static struct sim s;
	uint16_t port = 0;
	int rc = 1;

	o.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	if (parse_args(argc, argv, &o) < 0)
		return 2;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (sim_init(&s, &o) < 0) {
		fprintf(stderr, "tether-sim: unable to build the initial data\n");
		sim_release(&s);
		return 1;
	}
	d = sim_http_start(&s, &port);
	if (d == NULL) {
		fprintf(stderr, "tether-sim: unable to listen on 127.0.0.1:%d\n", o.port);
		goto out;
	}
	printf("tether-sim listening on http://127.0.0.1:%u\n", port);
	fflush(stdout);
	if (o.port_file && write_port_file(o.port_file, port) < 0) {
		fprintf(stderr, "tether-sim: unable to write '%s': %s\n", o.port_file,
		        strerror(errno));
		goto out_stop;
	}
	while (!stop_requested) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 50 * 1000000L};
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&s.lock);
		sim_tick(&s, util_now_ms());
		pthread_mutex_unlock(&s.lock);
	}
	rc = 0;
out_stop:
	sim_http_stop(d);
out:
	sim_release(&s);
	return rc;
}
