/* A counting webhook receiver for the end-to-end benchmark (libmicrohttpd, 127.0.0.1 only):
 * answers every request 200 without logging it, and exits after N requests (or a timeout)
 * printing when the first and the last arrived, in wall-clock milliseconds. Lighter than
 * tests/tools/receiver, so the bridge, not the receiver, is what gets measured. */
#include <getopt.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "lib/util.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long got, bytes;
static int64_t first_ms, last_ms;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **ctx)
{
	static const char ok[] = "ok";
	struct MHD_Response *r;
	enum MHD_Result rc;
	int64_t now;

	(void)cls;
	(void)url;
	(void)method;
	(void)version;
	(void)data;
	if (*ctx == NULL) {
		*ctx = (void *)1; /* headers seen; the body follows */
		return MHD_YES;
	}
	if (*size) {
		pthread_mutex_lock(&mu);
		bytes += (long)*size;
		pthread_mutex_unlock(&mu);
		*size = 0;
		return MHD_YES;
	}
	now = util_now_ms();
	pthread_mutex_lock(&mu);
	if (got == 0)
		first_ms = now;
	last_ms = now;
	got++;
	pthread_mutex_unlock(&mu);
	r = MHD_create_response_from_buffer(sizeof(ok) - 1, (void *)ok, MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	rc = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return rc;
}

static void usage(void)
{
	fprintf(stderr, "usage: hook_count --count N [--port N] [--port-file F] "
	                "[--timeout SECONDS]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"port", required_argument, NULL, 'p'},
	    {"port-file", required_argument, NULL, 'f'},
	    {"count", required_argument, NULL, 'n'},
	    {"timeout", required_argument, NULL, 'T'},
	    {NULL, 0, NULL, 0},
	};
	int port = 0, ch;
	long want = 0, timeout_s = 300, n = 0;
	const char *port_file = NULL;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct MHD_Daemon *d;
	int64_t deadline;

	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'f':
			port_file = optarg;
			break;
		case 'n':
			want = atol(optarg);
			break;
		case 'T':
			timeout_s = atol(optarg);
			break;
		default:
			usage();
			return 2;
		}
	}
	if (want <= 0 || timeout_s <= 0) {
		usage();
		return 2;
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL, handle,
	                     NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE,
	                     (unsigned)2, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
	                     MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "hook_count: unable to listen on 127.0.0.1:%d\n", port);
		return 1;
	}
	port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
	char port_text[16];
	snprintf(port_text, sizeof(port_text), "%d\n", port);
	if (port_file) {
		if (util_write_file_replace(port_file, port_text) < 0) {
			fprintf(stderr, "hook_count: unable to write '%s'\n", port_file);
			MHD_stop_daemon(d);
			return 1;
		}
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	deadline = util_mono_ms() + timeout_s * 1000;
	while (!stop && util_mono_ms() < deadline) {
		pthread_mutex_lock(&mu);
		n = got;
		pthread_mutex_unlock(&mu);
		if (n >= want)
			break;
		usleep(20 * 1000);
	}
	pthread_mutex_lock(&mu);
	printf("count=%ld want=%ld bytes=%ld first_ms=%lld last_ms=%lld\n", got, want, bytes,
	       (long long)first_ms, (long long)last_ms);
	n = got;
	pthread_mutex_unlock(&mu);
	fflush(stdout);
	MHD_stop_daemon(d);
	return n >= want ? 0 : 1;
}
