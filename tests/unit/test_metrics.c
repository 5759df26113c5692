/* Unit tests for bridge/metrics: the text format and the /metrics and /healthz endpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bridge/metrics.h"

static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
	buf_append(arg, p, size * n);
	return size * n;
}

static long get_from(const char *host, int port, const char *path, struct buf *body)
{
	char url[128];
	long status = 0;
	CURL *c = curl_easy_init();
	snprintf(url, sizeof(url), "http://%s:%d%s", host, port, path);
	buf_reset(body);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return status;
}

static long get(int port, const char *path, struct buf *body)
{
	return get_from("127.0.0.1", port, path, body);
}

/* A TCP connection to 127.0.0.1:port that sends nothing. */
static int idle_connection(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void test_render_has_help_type_and_values(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b, 0);
	metrics_set(M_OUTBOX, 42);
	metrics_add(M_DELIVERED, 3);
	assert_int_equal(metrics_render(&b), 0);
	assert_non_null(strstr(b.data, "# TYPE tether_bridge_outbox_entries gauge\n"));
	assert_non_null(strstr(b.data, "\ntether_bridge_outbox_entries 42\n"));
	assert_non_null(strstr(b.data, "# TYPE tether_bridge_delivered_total counter\n"));
	assert_int_equal(metrics_get(M_DELIVERED), 3);
	buf_release(&b);
}

static void test_endpoint_serves_metrics_and_health(void **state)
{
	(void)state;
	char err[256], listen[64];
	struct buf body;
	int port = free_port();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	metrics_set(M_LAST_POLL_MS, 0);
	struct metrics_server *s = metrics_start(listen, 30000, err, sizeof(err));
	assert_non_null(s);
	buf_init(&body, 0);
	assert_int_equal(get(port, "/healthz", &body), 503);
	assert_non_null(strstr(body.data, "starting"));
	metrics_set(M_LAST_POLL_MS, util_now_ms());
	assert_int_equal(get(port, "/healthz", &body), 200);
	metrics_set(M_LAST_POLL_MS, util_now_ms() - 60000);
	assert_int_equal(get(port, "/healthz", &body), 503);
	assert_non_null(strstr(body.data, "stale"));
	metrics_set(M_ZONES, 7);
	assert_int_equal(get(port, "/metrics", &body), 200);
	assert_non_null(strstr(body.data, "\ntether_bridge_zones 7\n"));
	assert_int_equal(get(port, "/nope", &body), 404);
	buf_release(&body);
	metrics_stop(s);
}

static void test_bad_listen_address_is_refused(void **state)
{
	(void)state;
	char err[256];
	static const char *const bad[] = {"127.0.0.1",    "::1:9464",    "[::1]9464",
	                                  "[::1]:",       "127.0.0.1:0", "127.0.0.1:65536",
	                                  "127.0.0.1:9x", ":9464",       "[]:9464"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_null(metrics_start(bad[i], 1000, err, sizeof(err)));
		assert_non_null(strstr(err, "HOST:PORT or [IPV6]:PORT"));
	}
	assert_null(metrics_start("nosuch.invalid:9464", 1000, err, sizeof(err)));
	assert_non_null(strstr(err, "unable to resolve 'nosuch.invalid'"));
}

/* What `check` accepts, `run` binds: a name and a bracketed IPv6 address. */
static void test_listen_on_name_and_ipv6(void **state)
{
	(void)state;
	char err[256] = "", listen[64];
	struct buf body;
	int port = free_port();
	struct metrics_server *s;

	buf_init(&body, 0);
	snprintf(listen, sizeof(listen), "localhost:%d", port);
	s = metrics_start(listen, 30000, err, sizeof(err));
	if (s == NULL)
		fail_msg("%s: %s", listen, err);
	assert_int_equal(get_from("localhost", port, "/metrics", &body), 200);
	metrics_stop(s);

	snprintf(listen, sizeof(listen), "[::1]:%d", port);
	s = metrics_start(listen, 30000, err, sizeof(err));
	if (s == NULL)
		fail_msg("%s: %s", listen, err);
	assert_int_equal(get_from("[::1]", port, "/metrics", &body), 200);
	assert_int_equal(get_from("127.0.0.1", port, "/metrics", &body), 0); /* v6 only */
	metrics_stop(s);
	buf_release(&body);
}

/* A client that opens many idle connections gets 4; the rest are closed at once, so it
 * cannot take the connections the probes of other addresses need. (The server closes a
 * connection after each answer, so only idle or slow requests can hold one.) */
static void test_idle_connections_per_address_are_limited(void **state)
{
	(void)state;
	char err[256] = "", listen[64];
	const char *preload = getenv("LD_PRELOAD");
	struct buf body;
	int port = free_port(), fd[8], closed = 0;
	struct pollfd pfd[8];
	struct metrics_server *s;
	long status = 0;

	/* under valgrind the server's thread runs so late that connections pile up in the
	 * backlog, and libmicrohttpd accepts none of them after it refuses one */
	if (preload && strstr(preload, "vgpreload"))
		skip();
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	s = metrics_start(listen, 30000, err, sizeof(err));
	assert_non_null(s);
	for (int i = 0; i < 8; i++) {
		fd[i] = idle_connection(port);
		pfd[i] = (struct pollfd){.fd = fd[i], .events = POLLIN};
	}
	/* the server closes the extra connections at once: they become readable (EOF) while
	 * the ones it holds are not (they would all close together at the idle timeout). A
	 * closed one leaves the poll set (fd -1), or poll would return at once from then on
	 * and the 30 s of waiting would be spent in a few microseconds. */
	for (int tries = 0; tries < 300 && closed < 4; tries++) {
		assert_true(poll(pfd, 8, 100) >= 0);
		for (int i = 0; i < 8; i++) {
			if (pfd[i].fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP)) != 0) {
				pfd[i].fd = -1;
				closed++;
			}
		}
	}
	assert_in_range(closed, 4, 7);
	for (int i = 0; i < 8; i++)
		close(fd[i]);
	/* the server notices the closed connections in its own time: then it answers again */
	buf_init(&body, 0);
	for (int tries = 0; tries < 100 && status != 200; tries++) {
		if ((status = get(port, "/metrics", &body)) != 200)
			usleep(100000);
	}
	assert_int_equal(status, 200);
	buf_release(&body);
	metrics_stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_render_has_help_type_and_values),
	    cmocka_unit_test(test_endpoint_serves_metrics_and_health),
	    cmocka_unit_test(test_bad_listen_address_is_refused),
	    cmocka_unit_test(test_listen_on_name_and_ipv6),
	    cmocka_unit_test(test_idle_connections_per_address_are_limited),
	};
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
