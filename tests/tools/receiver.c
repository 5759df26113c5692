/* A real HTTP webhook receiver for tests and the demo (libmicrohttpd on 127.0.0.1): logs
 * every request as a JSON line {at_ms, method, path, headers, body, status} and answers
 * from a script of statuses ("500,500,200": the last one repeats), optionally with a
 * Retry-After header, a given body (--answer) or after a delay. A 0 in the script hangs:
 * the request is logged at once with status 0, then answered 503 only after --hang-ms (past
 * the client's timeout). The script can be changed while it runs:
 *   POST /_recv/script  body "400"   (no logging of /_recv/ calls)
 * With --secret whsec_... it checks each request's Standard Webhooks signature itself
 * (libcrypto, not the bridge's code) and logs "signature": verified|mismatch|unsigned. */
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "lib/util.h"

#define MAX_BODY (4 * 1024 * 1024)
#define MAX_SCRIPT 64

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int script[MAX_SCRIPT];
static size_t nscript, pos;
static const char *retry_after;
static const char *answer_text; /* body of every scripted answer; NULL: "ok" or "error" */
static long delay_ms;
static long hang_ms = 10000;
static FILE *log_file;
static bool print_mode;
static unsigned char secret_key[256]; /* the decoded --secret */
static int secret_len = -1;           /* -1: no --secret given */
static volatile sig_atomic_t stop;

struct req {
	struct buf body;
	bool too_big;
};

static void set_script(const char *s)
{
	nscript = 0;
	pos = 0;
	while (*s && nscript < MAX_SCRIPT) {
		char *end;
		long v = strtol(s, &end, 10);
		if (end == s)
			break;
		script[nscript++] = (int)v;
		s = *end == ',' ? end + 1 : end;
	}
	if (nscript == 0)
		script[nscript++] = 200;
}

static int next_status(void)
{
	int st;
	pthread_mutex_lock(&mu);
	st = script[pos < nscript ? pos : nscript - 1];
	if (pos < nscript)
		pos++;
	pthread_mutex_unlock(&mu);
	return st;
}

/* Decodes "whsec_<base64>" into secret_key; 0, or -1 when it is not that. */
static int secret_set(const char *s)
{
	size_t n;
	int len;
	if (strncmp(s, "whsec_", 6) != 0)
		return -1;
	s += 6;
	n = strlen(s);
	if (n == 0 || n % 4 != 0 || n / 4 * 3 > sizeof(secret_key))
		return -1;
	len = EVP_DecodeBlock(secret_key, (const unsigned char *)s, (int)n);
	if (len < 0)
		return -1;
	/* EVP_DecodeBlock counts the padding as zero bytes */
	len -= (s[n - 1] == '=') + (s[n - 2] == '=');
	secret_len = len;
	return 0;
}

/* "verified" when one v1 signature of webhook-signature is HMAC-SHA256(key,
 * "<id>.<timestamp>.<body>"), "unsigned" without the headers, else "mismatch". */
static const char *signature_check(json_t *headers, const char *body)
{
	const char *id = json_string_value(json_object_get(headers, "webhook-id"));
	const char *ts = json_string_value(json_object_get(headers, "webhook-timestamp"));
	const char *sig = json_string_value(json_object_get(headers, "webhook-signature"));
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	char want[4 + 4 * EVP_MAX_MD_SIZE / 3 + 4];
	char *signed_text;
	size_t n;
	if (id == NULL || ts == NULL || sig == NULL)
		return "unsigned";
	n = strlen(id) + strlen(ts) + strlen(body) + 3;
	if ((signed_text = malloc(n)) == NULL)
		return "mismatch";
	snprintf(signed_text, n, "%s.%s.%s", id, ts, body);
	if (HMAC(EVP_sha256(), secret_key, secret_len, (unsigned char *)signed_text,
	         strlen(signed_text), mac, &maclen) == NULL) {
		free(signed_text);
		return "mismatch";
	}
	free(signed_text);
	memcpy(want, "v1,", 3);
	EVP_EncodeBlock((unsigned char *)want + 3, mac, (int)maclen);
	size_t wl = strlen(want);
	for (const char *p = sig; *p;) {
		size_t len = strcspn(p, " ");
		if (len == wl && memcmp(p, want, len) == 0)
			return "verified";
		p += len;
		p += strspn(p, " ");
	}
	return "mismatch";
}

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
	json_t *h = cls;
	char lower[256];
	size_t i;
	(void)kind;
	for (i = 0; k[i] && i < sizeof(lower) - 1; i++)
		lower[i] = (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] + 32 : k[i]);
	lower[i] = '\0';
	json_object_set_new(h, lower, json_string(v ? v : ""));
	return MHD_YES;
}

static enum MHD_Result answer(struct MHD_Connection *c, int status, const char *text)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;
	if (r == NULL)
		return MHD_NO;
	if (retry_after && (status == 429 || status == 503))
		MHD_add_response_header(r, "Retry-After", retry_after);
	rc = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **ctx)
{
	struct req *rq = *ctx;
	(void)cls;
	(void)version;

	if (rq == NULL) {
		rq = calloc(1, sizeof(*rq));
		if (rq == NULL)
			return MHD_NO;
		buf_init(&rq->body, MAX_BODY);
		*ctx = rq;
		return MHD_YES;
	}
	if (*size) {
		if (buf_append(&rq->body, data, *size) < 0)
			rq->too_big = true;
		*size = 0;
		return MHD_YES;
	}
	if (strncmp(url, "/_recv/script", 13) == 0) {
		pthread_mutex_lock(&mu);
		set_script(rq->body.data ? rq->body.data : "200");
		pthread_mutex_unlock(&mu);
		return answer(c, 200, "ok");
	}
	int status = next_status();
	if (delay_ms > 0 && status != 0)
		usleep((useconds_t)delay_ms * 1000);
	json_t *headers = json_object();
	MHD_get_connection_values(c, MHD_HEADER_KIND, add_header, headers);
	const char *verdict =
	    secret_len >= 0 ? signature_check(headers, rq->body.data ? rq->body.data : "") : NULL;
	json_t *line =
	    json_pack("{s:I, s:s, s:s, s:o, s:s, s:i}", "at_ms", (json_int_t)util_now_ms(),
	              "method", method, "path", url, "headers", headers, "body",
	              rq->body.data ? rq->body.data : "", "status", status);
	if (line && verdict)
		json_object_set_new(line, "signature", json_string(verdict));
	char *text = line ? json_dumps(line, JSON_COMPACT) : NULL;
	pthread_mutex_lock(&mu);
	if (text && log_file) {
		fprintf(log_file, "%s\n", text);
		fflush(log_file);
	}
	if (print_mode && line) {
		json_t *b = json_loads(rq->body.data ? rq->body.data : "", 0, NULL);
		const char *id = json_string_value(json_object_get(headers, "webhook-id"));
		printf("webhook %s %s -> %d  id=%s%s%s\n", method, url, status, id ? id : "-",
		       verdict ? "  signature " : "", verdict ? verdict : "");
		if (b) {
			char *pretty = json_dumps(b, JSON_COMPACT);
			printf("  %.300s\n", pretty ? pretty : "");
			free(pretty);
			json_decref(b);
		}
		fflush(stdout);
	}
	pthread_mutex_unlock(&mu);
	free(text);
	json_decref(line);
	if (status == 0) {
		usleep((useconds_t)hang_ms * 1000);
		status = 503;
	}
	return answer(c, status, answer_text ? answer_text : status == 200 ? "ok" : "error");
}

static void done(void *cls, struct MHD_Connection *c, void **ctx,
                 enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *ctx;
	(void)cls;
	(void)c;
	(void)toe;
	if (rq) {
		buf_release(&rq->body);
		free(rq);
	}
	*ctx = NULL;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"port", required_argument, NULL, 'p'},
	    {"port-file", required_argument, NULL, 'f'},
	    {"log", required_argument, NULL, 'l'},
	    {"script", required_argument, NULL, 's'},
	    {"retry-after", required_argument, NULL, 'r'},
	    {"delay-ms", required_argument, NULL, 'd'},
	    {"answer", required_argument, NULL, 'a'},
	    {"hang-ms", required_argument, NULL, 'h'},
	    {"print", no_argument, NULL, 'P'},
	    {"secret", required_argument, NULL, 'k'},
	    {NULL, 0, NULL, 0},
	};
	int port = 0, ch;
	const char *port_file = NULL, *log_path = NULL;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct MHD_Daemon *d;

	set_script("200");
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'f':
			port_file = optarg;
			break;
		case 'l':
			log_path = optarg;
			break;
		case 's':
			set_script(optarg);
			break;
		case 'r':
			retry_after = optarg;
			break;
		case 'd':
			delay_ms = atol(optarg);
			break;
		case 'h':
			hang_ms = atol(optarg);
			break;
		case 'P':
			print_mode = true;
			break;
		case 'a':
			answer_text = optarg;
			break;
		case 'k':
			if (secret_set(optarg) < 0) {
				fprintf(stderr, "receiver: --secret must be whsec_<base64>\n");
				return 2;
			}
			break;
		default:
			fprintf(
			    stderr,
			    "usage: receiver [--port N] [--port-file F] [--log F.jsonl] "
			    "[--script 500,200] [--retry-after S] [--delay-ms N] [--answer TEXT] "
			    "[--hang-ms N] [--print] [--secret whsec_...]\n");
			return 2;
		}
	}
	if (log_path && (log_file = fopen(log_path, "a")) == NULL) {
		fprintf(stderr, "receiver: unable to open '%s': %s\n", log_path, strerror(errno));
		return 1;
	}
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
	                     NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR, &sa,
	                     MHD_OPTION_NOTIFY_COMPLETED, done, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
	                     (unsigned)120, MHD_OPTION_END);
	if (d == NULL) {
		fprintf(stderr, "receiver: unable to listen on 127.0.0.1:%d\n", port);
		return 1;
	}
	port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
	char port_text[16];
	snprintf(port_text, sizeof(port_text), "%d\n", port);
	if (port_file) {
		if (util_write_file_replace(port_file, port_text) < 0) {
			fprintf(stderr, "receiver: unable to write '%s'\n", port_file);
			MHD_stop_daemon(d);
			return 1;
		}
	}
	printf("receiver listening on http://127.0.0.1:%d\n", port);
	fflush(stdout);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	while (!stop)
		pause();
	MHD_stop_daemon(d);
	if (log_file)
		fclose(log_file);
	return 0;
}
