/* A counting MQTT subscriber for the end-to-end benchmark (libmosquitto, 127.0.0.1 only):
 * subscribes at QoS 1, writes a ready file once the broker has granted the subscription,
 * and exits after N messages (or a timeout) printing when the first and the last arrived,
 * in wall-clock milliseconds, so the driver can time the drain from the bridge's start. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mosquitto.h>

#include "lib/util.h"

struct counter {
	const char *topic;
	const char *ready_file;
	long want;
	long got;
	long bytes;
	int64_t first_ms, last_ms;
	bool ready;
	bool failed;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void on_connect(struct mosquitto *m, void *arg, int rc)
{
	struct counter *c = arg;

	if (rc != 0) {
		fprintf(stderr, "sub_count: connection refused: %s\n",
		        mosquitto_connack_string(rc));
		c->failed = true;
		return;
	}
	if (mosquitto_subscribe(m, NULL, c->topic, 1) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "sub_count: unable to subscribe to '%s'\n", c->topic);
		c->failed = true;
	}
}

static void on_subscribe(struct mosquitto *m, void *arg, int mid, int n, const int *granted)
{
	struct counter *c = arg;

	(void)m;
	(void)mid;
	if (n < 1 || granted[0] != 1) {
		fprintf(stderr, "sub_count: QoS 1 not granted for '%s'\n", c->topic);
		c->failed = true;
		return;
	}
	c->ready = true;
	if (c->ready_file == NULL)
		return;
	if (util_write_file_replace(c->ready_file, "ready\n") < 0) {
		fprintf(stderr, "sub_count: unable to write '%s'\n", c->ready_file);
		c->failed = true;
	}
}

static void on_message(struct mosquitto *m, void *arg, const struct mosquitto_message *msg)
{
	struct counter *c = arg;
	int64_t now = util_now_ms();

	(void)m;
	if (msg->retain)
		return; /* the retained availability message is not a delivery */
	if (c->got == 0)
		c->first_ms = now;
	c->last_ms = now;
	c->got++;
	c->bytes += msg->payloadlen;
}

static void usage(void)
{
	fprintf(stderr, "usage: sub_count --port N --count N [--topic T] [--ready-file F] "
	                "[--timeout SECONDS]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"port", required_argument, NULL, 'p'},    {"count", required_argument, NULL, 'n'},
	    {"topic", required_argument, NULL, 't'},   {"ready-file", required_argument, NULL, 'r'},
	    {"timeout", required_argument, NULL, 'T'}, {NULL, 0, NULL, 0},
	};
	struct counter c = {.topic = "#", .want = 0};
	struct mosquitto *m = NULL;
	int port = 0, ch, rc = 1;
	long timeout_s = 300;
	char id[64];
	int64_t deadline;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'n':
			c.want = atol(optarg);
			break;
		case 't':
			c.topic = optarg;
			break;
		case 'r':
			c.ready_file = optarg;
			break;
		case 'T':
			timeout_s = atol(optarg);
			break;
		default:
			usage();
			return 2;
		}
	}
	if (port <= 0 || c.want <= 0 || timeout_s <= 0) {
		usage();
		return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	mosquitto_lib_init();
	snprintf(id, sizeof(id), "tb-bench-sub-%ld", (long)getpid());
	m = mosquitto_new(id, true, &c);
	if (m == NULL) {
		fprintf(stderr, "sub_count: unable to create a client\n");
		goto cleanup;
	}
	mosquitto_connect_callback_set(m, on_connect);
	mosquitto_subscribe_callback_set(m, on_subscribe);
	mosquitto_message_callback_set(m, on_message);
	if (mosquitto_connect(m, "127.0.0.1", port, 60) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "sub_count: unable to connect to 127.0.0.1:%d\n", port);
		goto cleanup;
	}
	deadline = util_mono_ms() + timeout_s * 1000;
	while (!stop && !c.failed && c.got < c.want && util_mono_ms() < deadline) {
		int lrc = mosquitto_loop(m, 100, 1);
		if (lrc != MOSQ_ERR_SUCCESS) {
			fprintf(stderr, "sub_count: connection lost: %s\n",
			        mosquitto_strerror(lrc));
			goto cleanup;
		}
	}
	printf("count=%ld want=%ld bytes=%ld first_ms=%lld last_ms=%lld\n", c.got, c.want, c.bytes,
	       (long long)c.first_ms, (long long)c.last_ms);
	fflush(stdout);
	rc = c.got >= c.want ? 0 : 1;
	mosquitto_disconnect(m);
cleanup:
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();
	return rc;
}
