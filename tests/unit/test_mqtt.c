/* MQTT client against a real mosquitto on 127.0.0.1: availability topic, acks per QoS,
 * order, retain, last will, clean stop, reconnect after a broker restart, refusals (bad
 * publishes, and publishes the broker's ACL denies), subscriptions and replies. A second
 * libmosquitto client in the test is the subscriber (or the requester). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <mosquitto.h>

#include "lib/log.h"
#include "bridge/mqtt.h"
#include "lib/util.h"

/* A broker process of our own. */
struct broker {
	pid_t pid;
	int port;
	char dir[64];
	char conf[128];
};

/* The test's subscriber: every message it receives, in order. */
struct rmsg {
	char *topic;
	char *payload;
	int qos;
	bool retain;
};

struct sub {
	struct mosquitto *mosq;
	struct rmsg *msgs;
	size_t n, cap;
	bool subscribed;
};

#define MAX_SUBS 4
#define MAX_TOKENS 2048

static struct {
	struct broker broker; /* shared by most tests */
	struct broker own;    /* a test's own broker, stopped by the teardown */
	struct mqtt *m;       /* the publisher pump() drives */
	struct sub *subs[MAX_SUBS];
	uint64_t acks[MAX_TOKENS], lost[MAX_TOKENS], refused[MAX_TOKENS];
	size_t n_acks, n_lost, n_refused;
	char refused_why[256];       /* the reason given with the last refusal */
	struct rmsg got[MAX_TOKENS]; /* messages the client under test received */
	char *got_response[MAX_TOKENS], *got_corr[MAX_TOKENS];
	size_t n_got;
} T;

static int free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd < 0)
		return -1;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	close(fd);
	return port;
}

static bool port_accepts(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	if (fd < 0)
		return false;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* Writes the config (anonymous, or with user/pass, and then an ACL when acl is not NULL)
 * and starts mosquitto on b->port. */
static int broker_start_acl(struct broker *b, const char *user, const char *pass, bool tls,
                            const char *acl);

static int broker_start(struct broker *b, const char *user, const char *pass)
{
	return broker_start_acl(b, user, pass, false, NULL);
}

static int broker_start_tls(struct broker *b, const char *user, const char *pass, bool tls)
{
	return broker_start_acl(b, user, pass, tls, NULL);
}

/* A CA and a server certificate for 127.0.0.1 in b->dir, made by the openssl tool. */
static int make_certs(const struct broker *b)
{
	char cmd[1200];

	snprintf(cmd, sizeof(cmd),
	         "cd %s && (openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "
	         "-days 2 -subj /CN=test-ca && openssl req -newkey rsa:2048 -nodes -keyout "
	         "srv.key -out srv.csr -subj /CN=127.0.0.1 && printf "
	         "'subjectAltName=IP:127.0.0.1\\n' >ext && openssl x509 -req -in srv.csr -CA "
	         "ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 -extfile ext && "
	         "chmod 644 ca.pem srv.pem srv.key) >/dev/null 2>&1",
	         b->dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int broker_start_acl(struct broker *b, const char *user, const char *pass, bool tls,
                            const char *acl)
{
	char text[512], pwfile[160], cmd[400], logf[160], aclfile[160];
	int64_t end;

	if (b->dir[0] == '\0') {
		snprintf(b->dir, sizeof(b->dir), "/tmp/test_mqtt.XXXXXX");
		if (mkdtemp(b->dir) == NULL)
			return -1;
		chmod(b->dir, 0755); /* mosquitto started as root reads it as another user */
	}
	if (b->port == 0)
		b->port = free_port();
	snprintf(b->conf, sizeof(b->conf), "%s/mosquitto.conf", b->dir);
	snprintf(pwfile, sizeof(pwfile), "%s/passwd", b->dir);
	snprintf(logf, sizeof(logf), "%s/mosquitto.log", b->dir);
	snprintf(aclfile, sizeof(aclfile), "%s/acl", b->dir);
	if (user != NULL) {
		snprintf(cmd, sizeof(cmd), "mosquitto_passwd -b -c %s %s %s", pwfile, user, pass);
		if (system(cmd) != 0)
			return -1;
		chmod(pwfile, 0644);
		snprintf(text, sizeof(text),
		         "listener %d 127.0.0.1\nallow_anonymous false\npassword_file %s\n"
		         "persistence false\n",
		         b->port, pwfile);
	} else if (tls) {
		if (make_certs(b) < 0)
			return -1;
		snprintf(text, sizeof(text),
		         "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n"
		         "cafile %s/ca.pem\ncertfile %s/srv.pem\nkeyfile %s/srv.key\n",
		         b->port, b->dir, b->dir, b->dir);
	} else {
		snprintf(text, sizeof(text),
		         "listener %d 127.0.0.1\nallow_anonymous true\npersistence false\n",
		         b->port);
	}
	if (acl != NULL) {
		if (write_file(aclfile, acl) < 0)
			return -1;
		chmod(aclfile, 0644);
		snprintf(text + strlen(text), sizeof(text) - strlen(text), "acl_file %s\n",
		         aclfile);
	}
	if (write_file(b->conf, text) < 0)
		return -1;
	chmod(b->conf, 0644);
	b->pid = fork();
	if (b->pid < 0)
		return -1;
	if (b->pid == 0) {
		FILE *out = freopen(logf, "a", stderr);
		(void)out;
		execl("/usr/sbin/mosquitto", "mosquitto", "-c", b->conf, (char *)NULL);
		_exit(127);
	}
	end = util_mono_ms() + 5000;
	while (util_mono_ms() < end) {
		if (port_accepts(b->port))
			return 0;
		if (waitpid(b->pid, NULL, WNOHANG) == b->pid) {
			b->pid = 0;
			return -1;
		}
		usleep(10000);
	}
	return -1;
}

static void broker_kill(struct broker *b, int sig)
{
	if (b->pid > 0) {
		kill(b->pid, sig);
		waitpid(b->pid, NULL, 0);
		b->pid = 0;
	}
}

static void broker_cleanup(struct broker *b)
{
	char path[200];

	broker_kill(b, SIGTERM);
	if (b->dir[0] != '\0') {
		const char *files[] = {"mosquitto.conf", "passwd",  "acl",    "mosquitto.log",
		                       "ca.key",         "ca.pem",  "ca.srl", "srv.key",
		                       "srv.csr",        "srv.pem", "ext"};
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", b->dir, files[i]);
			unlink(path);
		}
		rmdir(b->dir);
	}
	memset(b, 0, sizeof(*b));
}

static void on_sub_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg)
{
	struct sub *s = obj;
	struct rmsg *r;

	(void)mosq;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->msgs = realloc(s->msgs, s->cap * sizeof(*s->msgs));
		assert_non_null(s->msgs);
	}
	r = &s->msgs[s->n++];
	r->topic = strdup(msg->topic);
	r->payload = strndup(msg->payload ? msg->payload : "", (size_t)msg->payloadlen);
	r->qos = msg->qos;
	r->retain = msg->retain;
}

static void on_sub_subscribe(struct mosquitto *mosq, void *obj, int mid, int n, const int *q)
{
	(void)mosq;
	(void)mid;
	(void)n;
	(void)q;
	((struct sub *)obj)->subscribed = true;
}

static void sub_pump(struct sub *s)
{
	mosquitto_loop(s->mosq, 0, 1);
}

static struct sub *sub_new(int port, const char *filter)
{
	struct sub *s = calloc(1, sizeof(*s));
	int64_t end;
	size_t i;

	assert_non_null(s);
	s->mosq = mosquitto_new(NULL, true, s);
	assert_non_null(s->mosq);
	mosquitto_message_callback_set(s->mosq, on_sub_message);
	mosquitto_subscribe_callback_set(s->mosq, on_sub_subscribe);
	assert_int_equal(mosquitto_connect(s->mosq, "127.0.0.1", port, 30), MOSQ_ERR_SUCCESS);
	assert_int_equal(mosquitto_subscribe(s->mosq, NULL, filter, 2), MOSQ_ERR_SUCCESS);
	end = util_mono_ms() + 5000;
	while (!s->subscribed && util_mono_ms() < end)
		mosquitto_loop(s->mosq, 20, 1);
	assert_true(s->subscribed);
	for (i = 0; i < MAX_SUBS && T.subs[i] != NULL; i++)
		;
	assert_true(i < MAX_SUBS);
	T.subs[i] = s;
	return s;
}

static void sub_free(struct sub *s)
{
	for (size_t i = 0; i < MAX_SUBS; i++)
		if (T.subs[i] == s)
			T.subs[i] = NULL;
	mosquitto_disconnect(s->mosq);
	mosquitto_destroy(s->mosq);
	for (size_t i = 0; i < s->n; i++) {
		free(s->msgs[i].topic);
		free(s->msgs[i].payload);
	}
	free(s->msgs);
	free(s);
}

/* The n-th message on topic, or NULL. */
static struct rmsg *sub_find(struct sub *s, const char *topic, size_t nth)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->msgs[i].topic, topic) == 0 && nth-- == 0)
			return &s->msgs[i];
	return NULL;
}

/* One turn of an event loop like the daemon's: poll the publisher's socket (and the
 * subscribers') for at most ms, then let each handle what is ready. */
static void pump(int ms)
{
	struct pollfd pfd[MAX_SUBS + 1];
	int n = 0, mi = -1, timeout = ms;
	int64_t t;

	if (T.m != NULL && mqtt_fd(T.m) >= 0) {
		pfd[n].fd = mqtt_fd(T.m);
		pfd[n].events = POLLIN | (mqtt_want_write(T.m) ? POLLOUT : 0);
		pfd[n].revents = 0;
		mi = n++;
	}
	for (size_t i = 0; i < MAX_SUBS; i++) {
		if (T.subs[i] == NULL || mosquitto_socket(T.subs[i]->mosq) < 0)
			continue;
		pfd[n].fd = mosquitto_socket(T.subs[i]->mosq);
		pfd[n].events = POLLIN | (mosquitto_want_write(T.subs[i]->mosq) ? POLLOUT : 0);
		pfd[n].revents = 0;
		n++;
	}
	if (T.m != NULL) {
		t = mqtt_next_timeout_ms(T.m, util_mono_ms());
		if (t >= 0 && t < timeout)
			timeout = (int)t;
	}
	if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
		fail_msg("poll: %s", strerror(errno));
	if (T.m != NULL)
		mqtt_handle(T.m, mi >= 0 && (pfd[mi].revents & (POLLIN | POLLHUP | POLLERR)),
		            mi >= 0 && (pfd[mi].revents & POLLOUT));
	for (size_t i = 0; i < MAX_SUBS; i++)
		if (T.subs[i] != NULL)
			sub_pump(T.subs[i]);
}

/* Pumps until cond holds, for up to ms written as the time a quiet machine needs; a loaded
 * or sanitized run gets three times that (the bound only matters when cond never holds). */
#define PUMP_UNTIL(cond, ms)                                                                       \
	do {                                                                                       \
		int64_t end_ = util_mono_ms() + 3 * (ms);                                          \
		while (!(cond) && util_mono_ms() < end_)                                           \
			pump(20);                                                                  \
	} while (0)

static void pump_for(int ms)
{
	int64_t end = util_mono_ms() + ms;

	while (util_mono_ms() < end)
		pump(20);
}

static void record_ack(void *arg, uint64_t token)
{
	(void)arg;
	assert_true(T.n_acks < MAX_TOKENS);
	T.acks[T.n_acks++] = token;
}

static void record_lost(void *arg, uint64_t token)
{
	(void)arg;
	assert_true(T.n_lost < MAX_TOKENS);
	T.lost[T.n_lost++] = token;
}

static void record_refused(void *arg, uint64_t token, const char *why)
{
	(void)arg;
	assert_true(T.n_refused < MAX_TOKENS);
	T.refused[T.n_refused++] = token;
	snprintf(T.refused_why, sizeof(T.refused_why), "%s", why);
}

static bool acked(uint64_t token)
{
	for (size_t i = 0; i < T.n_acks; i++)
		if (T.acks[i] == token)
			return true;
	return false;
}

static struct mqtt *publisher_new(int port, const char *prefix)
{
	char url[64];
	struct mqtt_options o = {
	    .name = "test", .url = url, .topic_prefix = prefix, .keepalive = 30};
	struct mqtt *m;

	snprintf(url, sizeof(url), "mqtt://127.0.0.1:%d", port);
	m = mqtt_new(&o);
	assert_non_null(m);
	mqtt_set_ack_cb(m, record_ack, NULL);
	mqtt_set_lost_cb(m, record_lost, NULL);
	mqtt_set_refused_cb(m, record_refused, NULL);
	return m;
}

/* A started publisher on the shared broker, connected, in T.m. */
static struct mqtt *publisher_up(const char *prefix)
{
	T.m = publisher_new(T.broker.port, prefix);
	assert_int_equal(mqtt_start(T.m), 0);
	PUMP_UNTIL(mqtt_connected(T.m), 5000);
	assert_true(mqtt_connected(T.m));
	return T.m;
}

static int group_setup(void **state)
{
	(void)state;
	if (getenv("TEST_MQTT_DEBUG") != NULL)
		log_init(LOG_LEVEL_DEBUG, false);
	signal(SIGPIPE, SIG_IGN);
	if (mqtt_lib_init() < 0)
		return -1;
	return broker_start(&T.broker, NULL, NULL);
}

static int group_teardown(void **state)
{
	(void)state;
	broker_cleanup(&T.broker);
	mqtt_lib_cleanup();
	return 0;
}

static int test_setup(void **state)
{
	(void)state;
	T.n_acks = T.n_lost = T.n_refused = T.n_got = 0;
	T.refused_why[0] = '\0';
	return 0;
}

static int test_teardown(void **state)
{
	(void)state;
	for (size_t i = 0; i < MAX_SUBS; i++)
		if (T.subs[i] != NULL)
			sub_free(T.subs[i]);
	mqtt_free(T.m);
	T.m = NULL;
	for (size_t i = 0; i < T.n_got; i++) {
		free(T.got[i].topic);
		free(T.got[i].payload);
		free(T.got_response[i]);
		free(T.got_corr[i]);
	}
	T.n_got = 0;
	broker_cleanup(&T.own);
	if (T.broker.pid > 0)
		kill(T.broker.pid, SIGCONT); /* in case a test stopped it and then failed */
	return 0;
}

static void test_url_defaults_ports_by_scheme(void **state)
{
	char host[64];
	int port;
	bool tls;

	(void)state;
	assert_int_equal(mqtt_url_parse("mqtt://broker.lan", host, sizeof(host), &port, &tls), 0);
	assert_string_equal(host, "broker.lan");
	assert_int_equal(port, 1883);
	assert_false(tls);
	assert_int_equal(mqtt_url_parse("mqtts://10.0.0.1", host, sizeof(host), &port, &tls), 0);
	assert_int_equal(port, 8883);
	assert_true(tls);
	assert_int_equal(mqtt_url_parse("mqtt://[::1]:1999/", host, sizeof(host), &port, &tls), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 1999);
	assert_int_equal(mqtt_url_parse("http://x:1", host, sizeof(host), &port, &tls), -1);
	assert_int_equal(mqtt_url_parse("mqtt://x:0", host, sizeof(host), &port, &tls), -1);
	assert_int_equal(mqtt_url_parse("mqtt://x:1883/path", host, sizeof(host), &port, &tls), -1);
	assert_int_equal(mqtt_url_parse("mqtt://", host, sizeof(host), &port, &tls), -1);
}

static void test_mqtts_missing_ca_file_is_an_error(void **state)
{
	struct mqtt_options o = {
	    .name = "tls", .url = "mqtts://127.0.0.1:8883", .ca_file = "/nonexistent/ca.pem"};

	(void)state;
	assert_null(mqtt_new(&o));
	o.ca_file = NULL;
	o.cert_file = "/nonexistent/cert.pem";
	assert_null(mqtt_new(&o)); /* cert without key */
	o.url = "ftp://127.0.0.1";
	o.cert_file = NULL;
	assert_null(mqtt_new(&o));
	o.url = "mqtt://user:secret@127.0.0.1"; /* refused, and not echoed */
	assert_null(mqtt_new(&o));
	o.url = "mqtt://127.0.0.1";
	o.keepalive = 4; /* libmosquitto refuses less than 5 s */
	assert_null(mqtt_new(&o));
}

static void test_connect_publishes_online_retained(void **state)
{
	struct sub *s;
	struct rmsg *r;

	(void)state;
	publisher_up("online");
	pump_for(100);
	/* A subscriber that arrives later still sees it: retained. */
	s = sub_new(T.broker.port, "online/bridge/status");
	PUMP_UNTIL(sub_find(s, "online/bridge/status", 0) != NULL, 3000);
	r = sub_find(s, "online/bridge/status", 0);
	assert_non_null(r);
	assert_string_equal(r->payload, "online");
	assert_true(r->retain);
	assert_int_equal(r->qos, 1);
}

static void test_acks_carry_tokens_for_each_qos(void **state)
{
	(void)state;
	publisher_up("acks");
	assert_int_equal(mqtt_publish(T.m, "acks/q0", "a", 1, 0, false, 100), 0);
	assert_int_equal(mqtt_publish(T.m, "acks/q1", "b", 1, 1, false, 101), 0);
	assert_int_equal(mqtt_publish(T.m, "acks/q2", "c", 1, 2, false, 102), 0);
	/* Never from inside mqtt_publish, even for QoS 0. */
	assert_int_equal(T.n_acks, 0);
	PUMP_UNTIL(T.n_acks == 3, 3000);
	assert_int_equal(T.n_acks, 3);
	assert_true(acked(100));
	assert_true(acked(101));
	assert_true(acked(102));
	assert_int_equal(T.n_lost, 0);
	assert_int_equal(mqtt_inflight(T.m), 0);
}

static void test_qos1_ack_waits_for_puback(void **state)
{
	(void)state;
	publisher_up("puback");
	/* A stopped broker takes the bytes but sends no PUBACK. */
	kill(T.broker.pid, SIGSTOP);
	assert_int_equal(mqtt_publish(T.m, "puback/t", "x", 1, 1, false, 7), 0);
	assert_int_equal(mqtt_inflight(T.m), 1);
	pump_for(300);
	assert_int_equal(T.n_acks, 0);
	kill(T.broker.pid, SIGCONT);
	PUMP_UNTIL(T.n_acks == 1, 3000);
	assert_int_equal(T.n_acks, 1);
	assert_int_equal(T.acks[0], 7);
	assert_int_equal(mqtt_inflight(T.m), 0);
}

static void test_500_qos1_messages_arrive_in_order(void **state)
{
	struct sub *s;
	char payload[32];
	size_t got = 0;

	(void)state;
	publisher_up("order");
	s = sub_new(T.broker.port, "order/#");
	for (int i = 0; i < 500; i++) {
		snprintf(payload, sizeof(payload), "%d", i);
		assert_int_equal(mqtt_publish(T.m, "order/zone", payload, strlen(payload), 1, false,
		                              (uint64_t)i + 1000),
		                 0);
	}
	PUMP_UNTIL(T.n_acks == 500 && sub_find(s, "order/zone", 499) != NULL, 10000);
	assert_int_equal(T.n_acks, 500);
	for (size_t i = 0; i < s->n; i++) {
		if (strcmp(s->msgs[i].topic, "order/zone") != 0)
			continue;
		snprintf(payload, sizeof(payload), "%zu", got);
		assert_string_equal(s->msgs[i].payload, payload);
		got++;
	}
	assert_int_equal(got, 500);
	for (size_t i = 0; i < 500; i++)
		assert_int_equal(T.acks[i], i + 1000);
}

static void test_retain_flag_is_honoured(void **state)
{
	struct sub *s;

	(void)state;
	publisher_up("retain");
	assert_int_equal(mqtt_publish(T.m, "retain/kept", "k", 1, 1, true, 1), 0);
	assert_int_equal(mqtt_publish(T.m, "retain/gone", "g", 1, 1, false, 2), 0);
	PUMP_UNTIL(T.n_acks == 2, 3000);
	assert_int_equal(T.n_acks, 2);
	s = sub_new(T.broker.port, "retain/+");
	PUMP_UNTIL(sub_find(s, "retain/kept", 0) != NULL, 3000);
	pump_for(200);
	assert_non_null(sub_find(s, "retain/kept", 0));
	assert_true(sub_find(s, "retain/kept", 0)->retain);
	assert_null(sub_find(s, "retain/gone", 0));
}

static void test_will_says_offline_when_the_client_dies(void **state)
{
	struct sub *s;
	struct rmsg *r;
	pid_t child;
	int status;

	(void)state;
	s = sub_new(T.broker.port, "will/bridge/status");
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		/* Connect, let `online` out, then die without a DISCONNECT. The parent's
		 * subscriber socket is shared after fork: leave it to the parent. */
		memset(T.subs, 0, sizeof(T.subs));
		T.m = publisher_new(T.broker.port, "will");
		mqtt_start(T.m);
		PUMP_UNTIL(mqtt_connected(T.m) && !mqtt_want_write(T.m), 5000);
		pump_for(100);
		if (!mqtt_connected(T.m))
			_exit(1);
		raise(SIGKILL); /* like kill -9: no DISCONNECT, no cleanup */
		_exit(2);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	PUMP_UNTIL(sub_find(s, "will/bridge/status", 1) != NULL, 5000);
	r = sub_find(s, "will/bridge/status", 0);
	assert_non_null(r);
	assert_string_equal(r->payload, "online");
	r = sub_find(s, "will/bridge/status", 1);
	assert_non_null(r);
	assert_string_equal(r->payload, "offline");
}

static void test_clean_stop_publishes_offline(void **state)
{
	struct sub *s;
	struct rmsg *r;

	(void)state;
	publisher_up("stop");
	s = sub_new(T.broker.port, "stop/bridge/status");
	PUMP_UNTIL(sub_find(s, "stop/bridge/status", 0) != NULL, 3000);
	/* In flight at the stop: the broker acks it before `offline`, so it finishes. */
	assert_int_equal(mqtt_publish(T.m, "stop/t", "x", 1, 1, false, 42), 0);
	mqtt_stop(T.m);
	assert_true(acked(42));
	assert_int_equal(T.n_lost, 0);
	assert_false(mqtt_connected(T.m));
	assert_int_equal(mqtt_fd(T.m), -1);
	PUMP_UNTIL(sub_find(s, "stop/bridge/status", 1) != NULL, 3000);
	r = sub_find(s, "stop/bridge/status", 1);
	assert_non_null(r);
	assert_string_equal(r->payload, "offline");
	sub_free(s);
	/* ...and it stays: retained. */
	s = sub_new(T.broker.port, "stop/bridge/status");
	PUMP_UNTIL(sub_find(s, "stop/bridge/status", 0) != NULL, 3000);
	r = sub_find(s, "stop/bridge/status", 0);
	assert_non_null(r);
	assert_string_equal(r->payload, "offline");
	assert_true(r->retain);
}

static void test_reconnects_after_broker_restart(void **state)
{
	struct broker *b = &T.own;
	struct sub *s;

	(void)state;
	assert_int_equal(broker_start(b, NULL, NULL), 0);
	T.m = publisher_new(b->port, "restart");
	assert_int_equal(mqtt_start(T.m), 0);
	PUMP_UNTIL(mqtt_connected(T.m), 5000);
	assert_true(mqtt_connected(T.m));
	pump_for(50);
	/* Stopped, the broker cannot ack; killed, it resets the connection. */
	kill(b->pid, SIGSTOP);
	for (uint64_t t = 1; t <= 5; t++)
		assert_int_equal(mqtt_publish(T.m, "restart/t", "x", 1, 1, false, t), 0);
	broker_kill(b, SIGKILL);
	PUMP_UNTIL(T.n_lost == 5, 5000);
	assert_false(mqtt_connected(T.m));
	assert_int_equal(T.n_lost, 5);
	for (uint64_t t = 1; t <= 5; t++)
		assert_int_equal(T.lost[t - 1], t);
	assert_int_equal(T.n_acks, 0);
	assert_int_equal(mqtt_inflight(T.m), 0);
	assert_int_equal(mqtt_publish(T.m, "restart/t", "x", 1, 1, false, 9), -1);
	assert_int_equal(errno, ENOTCONN);

	assert_int_equal(broker_start(b, NULL, NULL), 0);
	PUMP_UNTIL(mqtt_connected(T.m), 10000);
	assert_true(mqtt_connected(T.m));
	s = sub_new(b->port, "restart/#");
	assert_int_equal(mqtt_publish(T.m, "restart/t", "after", 5, 1, false, 6), 0);
	PUMP_UNTIL(acked(6) && sub_find(s, "restart/t", 0) != NULL, 3000);
	assert_true(acked(6));
	assert_non_null(sub_find(s, "restart/t", 0));
	assert_string_equal(sub_find(s, "restart/t", 0)->payload, "after");
	sub_free(s);
	mqtt_free(T.m);
	T.m = NULL;
	broker_cleanup(b);
}

static void test_mqtts_connects_and_publishes(void **state)
{
	struct broker *b = &T.own;
	char url[64], ca[128];
	struct mqtt_options o = {.name = "tls", .url = url, .ca_file = ca, .topic_prefix = "tls"};

	(void)state;
	if (access("/usr/bin/openssl", X_OK) != 0)
		skip();
	assert_int_equal(broker_start_tls(b, NULL, NULL, true), 0);
	snprintf(url, sizeof(url), "mqtts://127.0.0.1:%d", b->port);
	snprintf(ca, sizeof(ca), "%s/ca.pem", b->dir);
	T.m = mqtt_new(&o);
	assert_non_null(T.m);
	mqtt_set_ack_cb(T.m, record_ack, NULL);
	assert_int_equal(mqtt_start(T.m), 0);
	PUMP_UNTIL(mqtt_connected(T.m), 5000);
	assert_true(mqtt_connected(T.m));
	assert_int_equal(mqtt_publish(T.m, "tls/t", "x", 1, 1, false, 5), 0);
	PUMP_UNTIL(T.n_acks == 1, 3000);
	assert_int_equal(T.n_acks, 1);
	mqtt_stop(T.m);
}

static void test_starts_while_broker_is_down(void **state)
{
	struct broker *b = &T.own;

	(void)state;
	b->port = free_port();
	T.m = publisher_new(b->port, "late");
	assert_int_equal(mqtt_start(T.m), 0);
	assert_int_equal(mqtt_start(T.m), -1); /* already running */
	PUMP_UNTIL(strstr(mqtt_last_error(T.m), "refused") != NULL, 3000);
	assert_non_null(strstr(mqtt_last_error(T.m), "connection refused"));
	assert_false(mqtt_connected(T.m));
	pump_for(1200); /* a retry or two, quietly */
	assert_false(mqtt_connected(T.m));
	assert_int_equal(broker_start(b, NULL, NULL), 0);
	PUMP_UNTIL(mqtt_connected(T.m), 8000);
	assert_true(mqtt_connected(T.m));
}

static void test_hung_broker_is_dropped_by_keepalive(void **state)
{
	char url[64];
	struct mqtt_options o = {.name = "hung",
	                         .url = url,
	                         .topic_prefix = "hung",
	                         .keepalive = 5}; /* libmosquitto's least */

	(void)state;
	snprintf(url, sizeof(url), "mqtt://127.0.0.1:%d", T.broker.port);
	T.m = mqtt_new(&o);
	assert_non_null(T.m);
	mqtt_set_ack_cb(T.m, record_ack, NULL);
	mqtt_set_lost_cb(T.m, record_lost, NULL);
	mqtt_start(T.m);
	PUMP_UNTIL(mqtt_connected(T.m), 5000);
	assert_true(mqtt_connected(T.m));
	pump_for(50);
	/* The socket stays open but nothing answers: only the keepalive can tell. */
	kill(T.broker.pid, SIGSTOP);
	assert_int_equal(mqtt_publish(T.m, "hung/t", "x", 1, 1, false, 3), 0);
	PUMP_UNTIL(T.n_lost == 1, 15000);
	kill(T.broker.pid, SIGCONT);
	assert_int_equal(T.n_lost, 1);
	assert_int_equal(T.lost[0], 3);
	assert_int_equal(T.n_acks, 0);
	assert_false(mqtt_connected(T.m));
	assert_non_null(strstr(mqtt_last_error(T.m), "keepalive"));
}

static void test_password_is_accepted(void **state)
{
	struct broker *b = &T.own;
	char url[64];
	struct mqtt_options o = {.name = "auth",
	                         .url = url,
	                         .username = "user",
	                         .password = "pass",
	                         .topic_prefix = "auth"};

	(void)state;
	assert_int_equal(broker_start(b, "user", "pass"), 0);
	snprintf(url, sizeof(url), "mqtt://127.0.0.1:%d", b->port);
	T.m = mqtt_new(&o);
	assert_non_null(T.m);
	mqtt_start(T.m);
	PUMP_UNTIL(mqtt_connected(T.m), 5000);
	assert_true(mqtt_connected(T.m));
	mqtt_free(T.m);
	T.m = NULL;
	broker_cleanup(b);
}

static void test_wrong_password_is_refused_and_retried(void **state)
{
	struct broker *b = &T.own;
	char url[64];
	struct mqtt_options o = {.name = "auth",
	                         .url = url,
	                         .username = "user",
	                         .password = "wrong",
	                         .topic_prefix = "auth"};

	(void)state;
	assert_int_equal(broker_start(b, "user", "pass"), 0);
	snprintf(url, sizeof(url), "mqtt://127.0.0.1:%d", b->port);
	T.m = mqtt_new(&o);
	assert_non_null(T.m);
	mqtt_start(T.m);
	PUMP_UNTIL(strstr(mqtt_last_error(T.m), "refused") != NULL, 5000);
	assert_false(mqtt_connected(T.m));
	assert_non_null(strstr(mqtt_last_error(T.m), "connection refused: not authorized"));
	/* Not fatal: the next attempt is scheduled. */
	assert_true(mqtt_next_timeout_ms(T.m, util_mono_ms()) >= 0);
	pump_for(200);
	assert_false(mqtt_connected(T.m));
	mqtt_free(T.m);
	T.m = NULL;
	broker_cleanup(b);
}

static void test_bad_publishes_are_refused(void **state)
{
	static const char big[1];

	(void)state;
	T.m = publisher_new(T.broker.port, "bad");
	assert_int_equal(mqtt_publish(T.m, "bad/t", "x", 1, 1, false, 1), -1);
	assert_int_equal(errno, ENOTCONN);
	mqtt_start(T.m);
	PUMP_UNTIL(mqtt_connected(T.m), 5000);
	assert_true(mqtt_connected(T.m));
	assert_int_equal(mqtt_publish(T.m, "bad/#", "x", 1, 1, false, 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_non_null(strstr(mqtt_last_error(T.m), "invalid topic"));
	assert_int_equal(mqtt_publish(T.m, "bad/+/t", "x", 1, 1, false, 1), -1);
	assert_int_equal(mqtt_publish(T.m, "", "x", 1, 1, false, 1), -1);
	assert_int_equal(mqtt_publish(T.m, "bad/t", "x", 1, 3, false, 1), -1);
	assert_int_equal(errno, EINVAL);
	/* The length is checked before the payload is touched. */
	assert_int_equal(mqtt_publish(T.m, "bad/t", big, (size_t)MQTT_MAX_PAYLOAD + 1, 1, false, 1),
	                 -1);
	assert_int_equal(errno, EMSGSIZE);
	assert_int_equal(mqtt_inflight(T.m), 0);
	pump_for(50);
	assert_int_equal(T.n_acks, 0);
	assert_true(mqtt_connected(T.m));
}

static void test_reason_codes_from_0x80_are_refusals(void **state)
{
	char why[128] = "untouched";

	(void)state;
	assert_false(mqtt_refused(0x00, why, sizeof(why)));
	assert_false(mqtt_refused(0x10, why, sizeof(why))); /* no matching subscribers */
	assert_false(mqtt_refused(0x7f, why, sizeof(why)));
	assert_string_equal(why, "untouched");
	assert_true(mqtt_refused(0x87, why, sizeof(why)));
	assert_string_equal(why, "refused by the broker: not authorized (0x87)");
	assert_true(mqtt_refused(0x80, why, sizeof(why)));
	assert_string_equal(why, "refused by the broker: unspecified error (0x80)");
	assert_true(mqtt_refused(0x97, why, sizeof(why)));
	assert_string_equal(why, "refused by the broker: quota exceeded (0x97)");
	assert_true(mqtt_refused(0x99, why, sizeof(why)));
	assert_string_equal(why, "refused by the broker: payload format invalid (0x99)");
	assert_true(mqtt_refused(0xff, why, sizeof(why))); /* unknown codes are refusals too */
	assert_non_null(strstr(why, "(0xff)"));
}

/* user "bridge" may write acl/ok/# and its status topic, nothing else */
static const char acl_text[] = "user bridge\ntopic write acl/ok/#\ntopic write acl/bridge/status\n";

static struct mqtt *acl_publisher(struct broker *b, bool mqtt311)
{
	char url[64];
	struct mqtt_options o = {.name = "acl",
	                         .url = url,
	                         .username = "bridge",
	                         .password = "pw",
	                         .topic_prefix = "acl",
	                         .mqtt311 = mqtt311};

	assert_int_equal(broker_start_acl(b, "bridge", "pw", false, acl_text), 0);
	snprintf(url, sizeof(url), "mqtt://127.0.0.1:%d", b->port);
	T.m = mqtt_new(&o);
	assert_non_null(T.m);
	mqtt_set_ack_cb(T.m, record_ack, NULL);
	mqtt_set_lost_cb(T.m, record_lost, NULL);
	mqtt_set_refused_cb(T.m, record_refused, NULL);
	assert_int_equal(mqtt_start(T.m), 0);
	PUMP_UNTIL(mqtt_connected(T.m), 5000);
	assert_true(mqtt_connected(T.m));
	return T.m;
}

static void test_acl_denied_publishes_are_refused_not_acked(void **state)
{
	(void)state;
	acl_publisher(&T.own, false);
	assert_int_equal(mqtt_publish(T.m, "acl/ok/a", "x", 1, 1, false, 1), 0);
	assert_int_equal(mqtt_publish(T.m, "acl/denied/b", "x", 1, 1, false, 2), 0);
	assert_int_equal(mqtt_publish(T.m, "acl/denied/c", "x", 1, 2, false, 3), 0);
	assert_int_equal(mqtt_publish(T.m, "acl/ok/d", "x", 1, 2, false, 4), 0);
	PUMP_UNTIL(T.n_acks + T.n_refused == 4, 5000);
	/* the QoS 1 refusal comes in its PUBACK, the QoS 2 one in its PUBREC */
	assert_int_equal(T.n_refused, 2);
	assert_int_equal(T.refused[0], 2);
	assert_int_equal(T.refused[1], 3);
	assert_string_equal(T.refused_why, "refused by the broker: not authorized (0x87)");
	assert_int_equal(T.n_acks, 2);
	assert_true(acked(1));
	assert_true(acked(4));
	assert_int_equal(T.n_lost, 0);
	assert_int_equal(mqtt_inflight(T.m), 0);
	/* a refusal is about one message: the connection stays and carries the next */
	assert_true(mqtt_connected(T.m));
	assert_int_equal(mqtt_publish(T.m, "acl/ok/e", "x", 1, 1, false, 5), 0);
	PUMP_UNTIL(acked(5), 3000);
	assert_true(acked(5));
}

static void test_mqtt311_cannot_see_refusals(void **state)
{
	(void)state;
	/* the documented limit of protocol: 3.1.1: a denied publish is acknowledged as usual */
	acl_publisher(&T.own, true);
	assert_int_equal(mqtt_publish(T.m, "acl/denied/b", "x", 1, 1, false, 2), 0);
	PUMP_UNTIL(T.n_acks + T.n_refused == 1, 5000);
	assert_int_equal(T.n_refused, 0);
	assert_true(acked(2));
}

/* test_will_says_offline_when_the_client_dies runs under MQTT 5 too (the default); this
 * one also checks the will stays retained. */
static void test_will_and_online_work_under_mqtt5(void **state)
{
	struct sub *s;
	struct rmsg *r;
	pid_t child;
	int status;

	(void)state;
	s = sub_new(T.broker.port, "will5/bridge/status");
	child = fork();
	assert_true(child >= 0);
	if (child == 0) {
		memset(T.subs, 0, sizeof(T.subs));
		T.m = publisher_new(T.broker.port, "will5"); /* MQTT 5: the default */
		mqtt_start(T.m);
		PUMP_UNTIL(mqtt_connected(T.m) && !mqtt_want_write(T.m), 5000);
		pump_for(100);
		if (!mqtt_connected(T.m))
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	assert_int_equal(waitpid(child, &status, 0), child);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	PUMP_UNTIL(sub_find(s, "will5/bridge/status", 1) != NULL, 5000);
	r = sub_find(s, "will5/bridge/status", 0);
	assert_non_null(r);
	assert_string_equal(r->payload, "online");
	r = sub_find(s, "will5/bridge/status", 1);
	assert_non_null(r);
	assert_string_equal(r->payload, "offline");
	sub_free(s);
	/* the will is retained: a subscriber that comes later sees it */
	s = sub_new(T.broker.port, "will5/bridge/status");
	PUMP_UNTIL(sub_find(s, "will5/bridge/status", 0) != NULL, 3000);
	r = sub_find(s, "will5/bridge/status", 0);
	assert_non_null(r);
	assert_string_equal(r->payload, "offline");
	assert_true(r->retain);
}

/* The message callback of the client under test: copies what it was given. */
static void record_message(void *arg, const struct mqtt_message *msg)
{
	struct rmsg *r;

	(void)arg;
	assert_true(T.n_got < MAX_TOKENS);
	r = &T.got[T.n_got];
	r->topic = strdup(msg->topic);
	r->payload = strndup(msg->payload, msg->len);
	r->retain = msg->retain;
	T.got_response[T.n_got] = msg->response_topic ? strdup(msg->response_topic) : NULL;
	T.got_corr[T.n_got] =
	    msg->correlation ? strndup(msg->correlation, msg->correlation_len) : NULL;
	T.n_got++;
}

/* A plain client publishing on the broker at port, MQTT 5 when v5. */
static struct mosquitto *requester_new(int port, bool v5)
{
	struct mosquitto *q = mosquitto_new(NULL, true, NULL);

	assert_non_null(q);
	if (v5)
		mosquitto_int_option(q, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
	assert_int_equal(mosquitto_connect(q, "127.0.0.1", port, 30), MOSQ_ERR_SUCCESS);
	return q;
}

static void requester_send(struct mosquitto *q, const char *topic, const char *payload, bool retain,
                           mosquitto_property *props)
{
	assert_int_equal(
	    mosquitto_publish_v5(q, NULL, topic, (int)strlen(payload), payload, 1, retain, props),
	    MOSQ_ERR_SUCCESS);
	for (int i = 0; i < 10; i++)
		mosquitto_loop(q, 10, 1);
}

static void requester_free(struct mosquitto *q)
{
	mosquitto_disconnect(q);
	mosquitto_destroy(q);
}

static void test_subscription_delivers_messages_and_the_retain_flag(void **state)
{
	struct mosquitto *q;

	(void)state;
	q = requester_new(T.broker.port, false);
	/* retained before the subscription: the broker replays it, flagged */
	requester_send(q, "subs/cmd/old", "replayed", true, NULL);
	publisher_up("subs");
	mqtt_set_message_cb(T.m, record_message, NULL);
	assert_int_equal(mqtt_subscribe(T.m, "subs/cmd/#"), 0);
	assert_int_equal(mqtt_subscribe(T.m, "subs/cmd/#"), 0); /* one subscription */
	PUMP_UNTIL(mqtt_subscribed(T.m) && T.n_got == 1, 3000);
	assert_true(mqtt_subscribed(T.m));
	requester_send(q, "subs/cmd/new", "fresh", false, NULL);
	requester_send(q, "subs/other", "not ours", false, NULL);
	PUMP_UNTIL(T.n_got == 2, 3000);
	pump_for(100);
	assert_int_equal(T.n_got, 2);
	assert_string_equal(T.got[0].topic, "subs/cmd/old");
	assert_string_equal(T.got[0].payload, "replayed");
	assert_true(T.got[0].retain);
	assert_string_equal(T.got[1].topic, "subs/cmd/new");
	assert_string_equal(T.got[1].payload, "fresh");
	assert_false(T.got[1].retain);
	assert_null(T.got_response[1]);
	assert_null(T.got_corr[1]);
	/* clear the retained message for the other tests */
	requester_send(q, "subs/cmd/old", "", true, NULL);
	requester_free(q);
}

static void test_a_retained_publish_forwarded_live_keeps_its_flag(void **state)
{
	struct mosquitto *q;

	(void)state;
	publisher_up("live"); /* MQTT 5: subscribed with retain-as-published */
	mqtt_set_message_cb(T.m, record_message, NULL);
	assert_int_equal(mqtt_subscribe(T.m, "live/cmd/#"), 0);
	PUMP_UNTIL(mqtt_subscribed(T.m), 3000);
	q = requester_new(T.broker.port, false);
	requester_send(q, "live/cmd/mode", "away", true, NULL);
	requester_send(q, "live/cmd/mode", "home", false, NULL);
	PUMP_UNTIL(T.n_got == 2, 3000);
	assert_int_equal(T.n_got, 2);
	assert_true(T.got[0].retain);
	assert_false(T.got[1].retain);
	requester_send(q, "live/cmd/mode", "", true, NULL);
	requester_free(q);
}

/* After an unsubscribe nothing more comes on that filter; the other subscriptions stay.
 * The SUBACK of a later filter says the broker has taken the UNSUBSCRIBE (in order). */
static void test_unsubscribe_stops_that_filter_only(void **state)
{
	struct mosquitto *q;

	(void)state;
	publisher_up("unsub");
	mqtt_set_message_cb(T.m, record_message, NULL);
	assert_int_equal(mqtt_subscribe(T.m, "unsub/a/#"), 0);
	assert_int_equal(mqtt_subscribe(T.m, "unsub/b"), 0);
	PUMP_UNTIL(mqtt_subscribed(T.m), 3000);
	assert_int_equal(mqtt_unsubscribe(T.m, "unsub/a/#"), 0);
	assert_int_equal(mqtt_unsubscribe(T.m, "unsub/never"), 0);
	assert_int_equal(mqtt_subscribe(T.m, "unsub/c"), 0);
	PUMP_UNTIL(mqtt_subscribed(T.m), 3000);
	assert_true(mqtt_subscribed(T.m));
	q = requester_new(T.broker.port, false);
	requester_send(q, "unsub/a/x", "gone", false, NULL);
	requester_send(q, "unsub/b", "kept", false, NULL);
	PUMP_UNTIL(T.n_got == 1, 3000);
	assert_int_equal(T.n_got, 1);
	assert_string_equal(T.got[0].topic, "unsub/b");
	requester_free(q);
}

static void test_invalid_filters_are_refused(void **state)
{
	(void)state;
	T.m = publisher_new(T.broker.port, "badsub");
	assert_int_equal(mqtt_subscribe(T.m, "a/#/b"), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(mqtt_subscribe(T.m, "a/b+"), -1);
	assert_int_equal(mqtt_subscribe(T.m, ""), -1);
	assert_int_equal(mqtt_subscribe(T.m, "a/+/b"), 0);
}

static void test_subscriptions_are_made_again_after_a_reconnect(void **state)
{
	struct broker *b = &T.own;
	struct mosquitto *q;

	(void)state;
	assert_int_equal(broker_start(b, NULL, NULL), 0);
	T.m = publisher_new(b->port, "resub");
	mqtt_set_message_cb(T.m, record_message, NULL);
	/* added before the first connection */
	assert_int_equal(mqtt_subscribe(T.m, "resub/cmd/#"), 0);
	assert_int_equal(mqtt_start(T.m), 0);
	PUMP_UNTIL(mqtt_subscribed(T.m), 5000);
	assert_true(mqtt_subscribed(T.m));
	broker_kill(b, SIGKILL);
	PUMP_UNTIL(!mqtt_connected(T.m), 5000);
	assert_false(mqtt_subscribed(T.m));
	assert_int_equal(broker_start(b, NULL, NULL), 0);
	PUMP_UNTIL(mqtt_subscribed(T.m), 10000);
	assert_true(mqtt_subscribed(T.m));
	q = requester_new(b->port, false);
	requester_send(q, "resub/cmd/x", "after", false, NULL);
	PUMP_UNTIL(T.n_got == 1, 3000);
	assert_int_equal(T.n_got, 1);
	assert_string_equal(T.got[0].payload, "after");
	requester_free(q);
	mqtt_free(T.m);
	T.m = NULL;
	broker_cleanup(b);
}

/* MQTT 5 property identifiers (mqtt_protocol.h's MQTT_MAX_PAYLOAD is not ours) */
#define PROP_RESPONSE_TOPIC 8
#define PROP_CORRELATION_DATA 9

/* The requester's view of the reply: its correlation data. */
static char reply_corr[64];
static bool reply_seen;

static void on_reply(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                     const mosquitto_property *props)
{
	void *corr = NULL;
	uint16_t len = 0;

	(void)mosq;
	(void)obj;
	(void)msg;
	reply_seen = true;
	if (mosquitto_property_read_binary(props, PROP_CORRELATION_DATA, &corr, &len, false) !=
	    NULL) {
		snprintf(reply_corr, sizeof(reply_corr), "%.*s", (int)len, (char *)corr);
		free(corr);
	}
}

static void test_v5_request_gets_a_reply_with_its_correlation_data(void **state)
{
	struct mosquitto *q;
	mosquitto_property *props = NULL;
	int64_t end;

	(void)state;
	reply_seen = false;
	reply_corr[0] = '\0';
	publisher_up("req");
	mqtt_set_message_cb(T.m, record_message, NULL);
	assert_int_equal(mqtt_subscribe(T.m, "req/cmd/#"), 0);
	PUMP_UNTIL(mqtt_subscribed(T.m), 3000);
	q = requester_new(T.broker.port, true);
	mosquitto_message_v5_callback_set(q, on_reply);
	assert_int_equal(mosquitto_subscribe(q, NULL, "req/answer", 1), MOSQ_ERR_SUCCESS);
	for (int i = 0; i < 10; i++)
		mosquitto_loop(q, 10, 1);
	mosquitto_property_add_string(&props, PROP_RESPONSE_TOPIC, "req/answer");
	mosquitto_property_add_binary(&props, PROP_CORRELATION_DATA, "abc-1", 5);
	requester_send(q, "req/cmd/mode", "away", false, props);
	mosquitto_property_free_all(&props);
	PUMP_UNTIL(T.n_got == 1, 3000);
	assert_int_equal(T.n_got, 1);
	assert_string_equal(T.got_response[0], "req/answer");
	assert_string_equal(T.got_corr[0], "abc-1");
	assert_int_equal(mqtt_publish_reply(T.m, T.got_response[0], "ok", 2, 1, "abc-1", 5, 77), 0);
	end = util_mono_ms() + 3000;
	while ((!reply_seen || !acked(77)) && util_mono_ms() < end) {
		pump(10);
		mosquitto_loop(q, 10, 1);
	}
	assert_true(acked(77));
	assert_true(reply_seen);
	assert_string_equal(reply_corr, "abc-1");
	requester_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_url_defaults_ports_by_scheme, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_mqtts_missing_ca_file_is_an_error, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_connect_publishes_online_retained, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_acks_carry_tokens_for_each_qos, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_qos1_ack_waits_for_puback, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_500_qos1_messages_arrive_in_order, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_retain_flag_is_honoured, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_will_says_offline_when_the_client_dies, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_clean_stop_publishes_offline, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_reconnects_after_broker_restart, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_mqtts_connects_and_publishes, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_starts_while_broker_is_down, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_hung_broker_is_dropped_by_keepalive, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_password_is_accepted, test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_wrong_password_is_refused_and_retried, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_bad_publishes_are_refused, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_reason_codes_from_0x80_are_refusals, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_acl_denied_publishes_are_refused_not_acked,
	                                    test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_mqtt311_cannot_see_refusals, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_will_and_online_work_under_mqtt5, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_subscription_delivers_messages_and_the_retain_flag,
	                                    test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_a_retained_publish_forwarded_live_keeps_its_flag,
	                                    test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_invalid_filters_are_refused, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_unsubscribe_stops_that_filter_only, test_setup,
	                                    test_teardown),
	    cmocka_unit_test_setup_teardown(test_subscriptions_are_made_again_after_a_reconnect,
	                                    test_setup, test_teardown),
	    cmocka_unit_test_setup_teardown(test_v5_request_gets_a_reply_with_its_correlation_data,
	                                    test_setup, test_teardown),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
