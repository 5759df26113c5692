/* Unit tests for bridge/webhook: signatures, body formats, headers, Retry-After. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>

#include "bridge/store.h"
#include "bridge/webhook.h"
#include "lib/util.h"

static const char *msg_json =
    "{\"schema\":\"tether-bridge/v1\",\"id\":\"event:abc:2020-07-09T08:05:09.036+01:00\","
    "\"kind\":\"event\",\"phase\":\"new\",\"source_id\":\"abc\","
    "\"occurred_at\":\"2020-06-12T16:03:09.019+01:00\",\"severity\":\"high\","
    "\"flags\":[\"motion\",\"intrusion\"],\"zone\":{\"id\":\"z1\",\"name\":\"Back Door\"},"
    "\"links\":{\"web\":\"https://my.timeline.is/events?at=x&zone=z1\"},\"rule\":\"r\"}";

/* "msg_" + the first 16 bytes of SHA-256("event:abc:...+01:00\0r\0webhook.h") in hex, as
 * `printf '...\0r\0webhook.h' | sha256sum` gives it: pinned, since receivers keep ids */
#define DELIVERY_ID "msg_9b4c797d6dbd5fb6345976153e186672"

static char *secrets1[] = {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"};

static struct cfg_webhook hook(enum webhook_format f)
{
	static struct cfg_header hdr = {"X-Team", "ops"};
	struct cfg_webhook c = {.name = "h",
	                        .url = "http://127.0.0.1:9/hook",
	                        .format = f,
	                        .headers = &hdr,
	                        .nheaders = 1,
	                        .secrets = secrets1,
	                        .nsecrets = 1,
	                        .timeout_ms = 1000,
	                        .concurrency = 2};
	return c;
}

static struct store_entry entry(const char *extra)
{
	struct store_entry e = {.id = 1,
	                        .target = "webhook.h",
	                        .zone_id = "z1",
	                        .msg_id = "event:abc:2020-07-09T08:05:09.036+01:00",
	                        .payload = (char *)msg_json,
	                        .extra = (char *)extra};
	return e;
}

/* body and headers for format f; caller frees */
static json_t *request(enum webhook_format f, const char *extra, char **url, json_t **headers,
                       char **raw)
{
	struct cfg_webhook c = hook(f);
	struct store_entry e = entry(extra);
	char err[256];
	json_error_t jerr;
	assert_int_equal(webhook_request(&c, &e, 1700000000, url, raw, headers, err, sizeof(err)),
	                 0);
	json_t *body = json_loads(*raw, 0, &jerr);
	assert_non_null(body);
	return body;
}

static void test_signature_matches_standard_webhooks_vector(void **state)
{
	(void)state;
	char sig[256];
	const char *body = "{\"test\": 2432232314}";
	assert_int_equal(webhook_sign(secrets1, 1, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
	                              strlen(body), sig, sizeof(sig)),
	                 0);
	assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

static void test_signature_rotation_sends_one_per_secret(void **state)
{
	(void)state;
	char *two[] = {"whsec_bmV3LXNlY3JldA==", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"};
	char sig[512];
	const char *body = "{\"test\": 2432232314}";
	assert_int_equal(webhook_sign(two, 2, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
	                              strlen(body), sig, sizeof(sig)),
	                 0);
	char *space = strchr(sig, ' ');
	assert_non_null(space);
	assert_string_equal(space + 1, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
	assert_true(strncmp(sig, "v1,", 3) == 0);
	assert_true(strncmp(sig, space + 1, (size_t)(space - sig)) != 0);
}

static void test_signature_rejects_bad_secret(void **state)
{
	(void)state;
	char *bad[] = {"not-a-secret"};
	char sig[256];
	assert_int_equal(webhook_sign(bad, 1, "id", 1, "x", 1, sig, sizeof(sig)), -1);
}

static void test_json_body_is_message_and_headers_follow_standard(void **state)
{
	(void)state;
	char *url, *raw, sig[256];
	json_t *headers;
	json_t *body = request(WEBHOOK_JSON, NULL, &url, &headers, &raw);
	assert_string_equal(url, "http://127.0.0.1:9/hook");
	assert_string_equal(raw, msg_json);
	assert_string_equal(json_string_value(json_object_get(headers, "webhook-id")), DELIVERY_ID);
	assert_string_equal(json_string_value(json_object_get(headers, "Idempotency-Key")),
	                    DELIVERY_ID);
	assert_string_equal(json_string_value(json_object_get(headers, "webhook-timestamp")),
	                    "1700000000");
	assert_string_equal(json_string_value(json_object_get(headers, "User-Agent")),
	                    "tether-bridge/0.1.0");
	assert_string_equal(json_string_value(json_object_get(headers, "Content-Type")),
	                    "application/json");
	assert_string_equal(json_string_value(json_object_get(headers, "X-Team")), "ops");
	webhook_sign(secrets1, 1, DELIVERY_ID, 1700000000, raw, strlen(raw), sig, sizeof(sig));
	assert_string_equal(json_string_value(json_object_get(headers, "webhook-signature")), sig);
	json_decref(body);
	json_decref(headers);
	free(url);
	free(raw);
}

static void test_json_body_template_replaces_message(void **state)
{
	(void)state;
	char *url, *raw;
	json_t *headers;
	json_t *body = request(WEBHOOK_JSON, "{\"body\":\"{\\\"zone\\\":\\\"Back Door\\\"}\"}",
	                       &url, &headers, &raw);
	assert_string_equal(raw, "{\"zone\":\"Back Door\"}");
	json_decref(body);
	json_decref(headers);
	free(url);
	free(raw);
}

static void test_slack_body_has_text_and_blocks(void **state)
{
	(void)state;
	char *url, *raw;
	json_t *headers;
	json_t *body =
	    request(WEBHOOK_SLACK, "{\"text\":\"intruder at Back Door\"}", &url, &headers, &raw);
	assert_string_equal(json_string_value(json_object_get(body, "text")),
	                    "intruder at Back Door");
	json_t *blocks = json_object_get(body, "blocks");
	assert_int_equal(json_array_size(blocks), 3);
	json_t *fields = json_object_get(json_array_get(blocks, 1), "fields");
	assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 0), "text")),
	                    "*Zone*\nBack Door");
	assert_string_equal(json_string_value(json_object_get(json_array_get(fields, 1), "text")),
	                    "*Flags*\nmotion, intrusion");
	const char *link = json_string_value(json_object_get(
	    json_array_get(json_object_get(json_array_get(blocks, 2), "elements"), 0), "text"));
	assert_string_equal(link, "<https://my.timeline.is/events?at=x&zone=z1|Open in Tether>");
	json_decref(body);
	json_decref(headers);
	free(url);
	free(raw);
}

static void test_discord_body_waits_and_mentions_nobody(void **state)
{
	(void)state;
	char *url, *raw;
	json_t *headers;
	json_t *body = request(WEBHOOK_DISCORD, NULL, &url, &headers, &raw);
	assert_string_equal(url, "http://127.0.0.1:9/hook?wait=true");
	assert_non_null(json_object_get(body, "content"));
	json_t *am = json_object_get(body, "allowed_mentions");
	assert_true(json_is_array(json_object_get(am, "parse")));
	assert_int_equal(json_array_size(json_object_get(am, "parse")), 0);
	json_t *embed = json_array_get(json_object_get(body, "embeds"), 0);
	assert_string_equal(json_string_value(json_object_get(embed, "url")),
	                    "https://my.timeline.is/events?at=x&zone=z1");
	assert_string_equal(json_string_value(json_object_get(embed, "timestamp")),
	                    "2020-06-12T15:03:09.019+00:00");
	json_decref(body);
	json_decref(headers);
	free(url);
	free(raw);
}

static void test_discord_truncates_long_text(void **state)
{
	(void)state;
	char *url, *raw, *extra;
	json_t *headers;
	char *text = malloc(6001);
	memset(text, 'a', 6000);
	text[6000] = '\0';
	json_t *x = json_pack("{s:s}", "text", text);
	extra = json_dumps(x, 0);
	json_t *body = request(WEBHOOK_DISCORD, extra, &url, &headers, &raw);
	const char *content = json_string_value(json_object_get(body, "content"));
	const char *desc = json_string_value(
	    json_object_get(json_array_get(json_object_get(body, "embeds"), 0), "description"));
	assert_int_equal(strlen(content), 2000);
	assert_int_equal(strlen(desc), 4096);
	assert_string_equal(content + 1997, "...");
	json_decref(x);
	free(extra);
	free(text);
	json_decref(body);
	json_decref(headers);
	free(url);
	free(raw);
}

static void test_teams_body_is_adaptive_card(void **state)
{
	(void)state;
	char *url, *raw;
	json_t *headers;
	json_t *body = request(WEBHOOK_TEAMS, NULL, &url, &headers, &raw);
	assert_string_equal(json_string_value(json_object_get(body, "type")), "message");
	json_t *att = json_array_get(json_object_get(body, "attachments"), 0);
	assert_string_equal(json_string_value(json_object_get(att, "contentType")),
	                    "application/vnd.microsoft.card.adaptive");
	json_t *card = json_object_get(att, "content");
	assert_string_equal(json_string_value(json_object_get(card, "type")), "AdaptiveCard");
	assert_non_null(json_object_get(card, "version"));
	json_decref(body);
	json_decref(headers);
	free(url);
	free(raw);
}

static void test_cloudevents_structured(void **state)
{
	(void)state;
	char *url, *raw;
	json_t *headers;
	json_t *body = request(WEBHOOK_CLOUDEVENTS, NULL, &url, &headers, &raw);
	assert_string_equal(json_string_value(json_object_get(body, "specversion")), "1.0");
	assert_string_equal(json_string_value(json_object_get(body, "id")), DELIVERY_ID);
	assert_string_equal(json_string_value(json_object_get(json_object_get(body, "data"), "id")),
	                    "event:abc:2020-07-09T08:05:09.036+01:00");
	assert_string_equal(json_string_value(json_object_get(body, "type")),
	                    "is.timeline.event.new");
	assert_string_equal(json_string_value(json_object_get(body, "time")),
	                    "2020-06-12T16:03:09.019+01:00");
	assert_non_null(json_object_get(body, "source"));
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(body, "data"), "schema")),
	    "tether-bridge/v1");
	assert_string_equal(json_string_value(json_object_get(headers, "Content-Type")),
	                    "application/cloudevents+json");
	json_decref(body);
	json_decref(headers);
	free(url);
	free(raw);
}

/* A text of n copies of s (caller frees). */
static char *repeat(const char *s, size_t n)
{
	size_t len = strlen(s);
	char *out = malloc(len * n + 1);
	assert_non_null(out);
	for (size_t i = 0; i < n; i++)
		memcpy(out + i * len, s, len);
	out[len * n] = '\0';
	return out;
}

/* Characters of UTF-8 text s (the text parsed back from JSON, so valid). */
static size_t chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

static json_t *chat_body(enum webhook_format f, const char *text, char **url, json_t **headers,
                         char **raw)
{
	json_t *x = json_pack("{s:s}", "text", text);
	char *extra = json_dumps(x, 0);
	json_t *body = request(f, extra, url, headers, raw);
	json_decref(x);
	free(extra);
	return body;
}

static void release(json_t *body, json_t *headers, char *url, char *raw)
{
	json_decref(body);
	json_decref(headers);
	free(url);
	free(raw);
}

static void test_chat_texts_are_cut_by_characters(void **state)
{
	(void)state;
	char *url, *raw;
	json_t *headers, *body;
	char *euros = repeat("\xE2\x82\xAC", 1508); /* 4,524 bytes, within every limit */

	body = chat_body(WEBHOOK_SLACK, euros, &url, &headers, &raw);
	assert_string_equal(json_string_value(json_object_get(body, "text")), euros);
	release(body, headers, url, raw);
	body = chat_body(WEBHOOK_DISCORD, euros, &url, &headers, &raw);
	assert_string_equal(json_string_value(json_object_get(body, "content")), euros);
	release(body, headers, url, raw);
	free(euros);

	/* over the limits: cut to exactly the limit in characters, never inside one */
	euros = repeat("\xE2\x82\xAC", 5000);
	body = chat_body(WEBHOOK_SLACK, euros, &url, &headers, &raw);
	const char *t = json_string_value(json_object_get(body, "text"));
	assert_int_equal(chars(t), WEBHOOK_SLACK_TEXT_MAX);
	assert_string_equal(t + strlen(t) - 3, "...");
	release(body, headers, url, raw);
	body = chat_body(WEBHOOK_DISCORD, euros, &url, &headers, &raw);
	t = json_string_value(json_object_get(body, "content"));
	assert_int_equal(chars(t), WEBHOOK_DISCORD_CONTENT_MAX);
	assert_int_equal(strlen(t), (WEBHOOK_DISCORD_CONTENT_MAX - 3) * 3 + 3);
	t = json_string_value(
	    json_object_get(json_array_get(json_object_get(body, "embeds"), 0), "description"));
	assert_int_equal(chars(t), WEBHOOK_DISCORD_DESCRIPTION_MAX);
	release(body, headers, url, raw);
	free(euros);
}

static void test_empty_rule_text_gives_the_default_text(void **state)
{
	(void)state;
	char *url, *raw;
	json_t *headers, *body;
	const char *want =
	    "high motion,intrusion (new) in Back Door at 2020-06-12T16:03:09.019+01:00";

	body = chat_body(WEBHOOK_SLACK, "", &url, &headers, &raw);
	assert_string_equal(json_string_value(json_object_get(body, "text")), want);
	release(body, headers, url, raw);
	body = chat_body(WEBHOOK_DISCORD, " \n", &url, &headers, &raw);
	assert_string_equal(json_string_value(json_object_get(body, "content")), want);
	release(body, headers, url, raw);
	body = chat_body(WEBHOOK_TEAMS, "", &url, &headers, &raw);
	json_t *card =
	    json_object_get(json_array_get(json_object_get(body, "attachments"), 0), "content");
	assert_string_equal(json_string_value(json_object_get(
	                        json_array_get(json_object_get(card, "body"), 0), "text")),
	                    want);
	release(body, headers, url, raw);
}

static void test_delivery_id_differs_per_rule_and_target_only(void **state)
{
	(void)state;
	const char *mid = "event:abc:2020-07-09T08:05:09.036+01:00";
	char a[WEBHOOK_ID_MAX], b[WEBHOOK_ID_MAX];

	assert_int_equal(webhook_delivery_id(mid, "r", "webhook.h", a), 0);
	assert_string_equal(a, DELIVERY_ID);
	assert_null(strchr(a, '.'));
	/* a retry or a restart builds the same id */
	assert_int_equal(webhook_delivery_id(mid, "r", "webhook.h", b), 0);
	assert_string_equal(a, b);
	/* another rule (its body says so) or another webhook: another delivery */
	assert_int_equal(webhook_delivery_id(mid, "r2", "webhook.h", b), 0);
	assert_string_equal(b, "msg_0a7325431bc9c7c2485240dd2bd9e36a");
	assert_int_equal(webhook_delivery_id(mid, "r", "webhook.g", b), 0);
	assert_string_not_equal(a, b);
	/* the parts cannot run into each other */
	assert_int_equal(webhook_delivery_id(mid, "rw", "ebhook.h", b), 0);
	assert_string_not_equal(a, b);
}

static void test_two_rules_send_one_message_under_two_ids(void **state)
{
	(void)state;
	struct cfg_webhook c = hook(WEBHOOK_CLOUDEVENTS);
	struct store_entry e = entry(NULL);
	char *url[2], *raw[2], err[256];
	json_t *headers[2], *body[2];
	char *other = strdup(msg_json);
	char *r = strstr(other, "\"rule\":\"r\"");

	assert_non_null(r);
	r[8] = 's'; /* rule "s" */
	for (int i = 0; i < 2; i++) {
		e.payload = i ? other : (char *)msg_json;
		assert_int_equal(webhook_request(&c, &e, 1700000000, &url[i], &raw[i], &headers[i],
		                                 err, sizeof(err)),
		                 0);
		body[i] = json_loads(raw[i], 0, NULL);
		assert_non_null(body[i]);
	}
	assert_string_not_equal(json_string_value(json_object_get(headers[0], "webhook-id")),
	                        json_string_value(json_object_get(headers[1], "webhook-id")));
	assert_string_not_equal(json_string_value(json_object_get(body[0], "id")),
	                        json_string_value(json_object_get(body[1], "id")));
	assert_string_equal(json_string_value(json_object_get(body[1], "id")),
	                    json_string_value(json_object_get(headers[1], "webhook-id")));
	for (int i = 0; i < 2; i++)
		release(body[i], headers[i], url[i], raw[i]);
	free(other);
}

/* format json reads only the rule from the payload's end: the id must be the one the whole
 * message gives, whatever the rule's name holds (and whatever the zone's name holds) */
static void test_json_id_comes_from_the_rule_whatever_the_names_hold(void **state)
{
	(void)state;
	/* as JSON text between the quotes */
	static const char *const rules[] = {"r", "a,\\\"rule\\\":\\\"b", "x\\\\", "q\\\"}",
	                                    "\\u00e9t\\u00e9"};
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		struct cfg_webhook c = hook(WEBHOOK_JSON);
		struct store_entry e = entry(NULL);
		char *url, *raw, err[256], want[WEBHOOK_ID_MAX], payload[1024];
		json_t *headers,
		    *rule = json_loads(
		        (snprintf(payload, sizeof(payload), "\"%s\"", rules[i]), payload),
		        JSON_DECODE_ANY, NULL);
		assert_non_null(rule);
		snprintf(
		    payload, sizeof(payload),
		    "{\"zone\":{\"id\":\"z1\",\"name\":\"n,\\\"rule\\\":\\\"zz\"},\"rule\":\"%s\"}",
		    rules[i]);
		e.payload = payload;
		assert_int_equal(
		    webhook_delivery_id(e.msg_id, json_string_value(rule), e.target, want), 0);
		assert_int_equal(
		    webhook_request(&c, &e, 1700000000, &url, &raw, &headers, err, sizeof(err)), 0);
		assert_string_equal(json_string_value(json_object_get(headers, "webhook-id")),
		                    want);
		assert_string_equal(raw, payload); /* the body is the payload as is */
		json_decref(rule);
		json_decref(headers);
		free(url);
		free(raw);
	}
}

/* ---- scheduling: which entries a pump starts, against a real outbox ---- */

struct sched {
	char dir[64], path[96];
	struct store *st;
	CURLM *multi;
	struct webhook *w;
};

/* A webhook "h" to url with the given order and concurrency, over a fresh outbox. */
static void sched_open_url(struct sched *f, enum webhook_order order, const char *url,
                           int concurrency)
{
	struct cfg_webhook c = hook(WEBHOOK_JSON);
	char err[256];

	c.url = (char *)url;
	c.nsecrets = 0;
	c.concurrency = concurrency;
	c.order = order;
	snprintf(f->dir, sizeof(f->dir), "/tmp/tb-test-webhook.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
	f->st = store_open(f->path, err, sizeof(err));
	assert_non_null(f->st);
	f->multi = curl_multi_init();
	assert_non_null(f->multi);
	f->w = webhook_new(&c, 3600 * 1000);
	assert_non_null(f->w);
}

/* The same with concurrency 4 to a port where nothing listens (127.0.0.1:1: refused at
 * once). */
static void sched_open(struct sched *f, enum webhook_order order)
{
	sched_open_url(f, order, "http://127.0.0.1:1/hook", 4);
}

static void sched_close(struct sched *f)
{
	webhook_cancel_all(f->w, f->multi);
	webhook_free(f->w);
	curl_multi_cleanup(f->multi);
	store_close(f->st);
	unlink(f->path);
	char wal[128];
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	unlink(wal);
	snprintf(wal, sizeof(wal), "%s-shm", f->path);
	unlink(wal);
	rmdir(f->dir);
}

static void sched_put(struct sched *f, const char *zone, const char *msg_id)
{
	struct store_entry e = {.target = "webhook.h",
	                        .zone_id = (char *)zone,
	                        .msg_id = (char *)msg_id,
	                        .payload = (char *)msg_json,
	                        .payload_len = strlen(msg_json),
	                        .created_ms = 1};
	assert_int_equal(store_outbox_put(f->st, &e), 0);
}

/* Pumps once at now_ms, runs the transfers it started to their end (connection refused)
 * and settles them: returns how many started. Each one is deferred (a retry). */
static int sched_round(struct sched *f, int64_t now_ms)
{
	int running = 1, started = 0, left;
	CURLMsg *m;

	webhook_mark_dirty(f->w);
	webhook_pump(f->w, f->st, f->multi, now_ms);
	while (running > 0) {
		assert_int_equal(curl_multi_perform(f->multi, &running), CURLM_OK);
		if (running > 0)
			curl_multi_poll(f->multi, NULL, 0, 100, NULL);
	}
	while ((m = curl_multi_info_read(f->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		assert_true(
		    webhook_done(f->w, f->st, f->multi, m->easy_handle, m->data.result, now_ms));
		started++;
	}
	return started;
}

/* order: zone starts one entry per zone, and a zone whose head is being retried waits. */
static void test_order_zone_keeps_one_per_zone_and_waits_for_retries(void **state)
{
	(void)state;
	struct sched f;
	int64_t now = util_now_ms();

	sched_open(&f, WEBHOOK_ORDER_ZONE);
	sched_put(&f, "za", "a1");
	sched_put(&f, "za", "a2");
	sched_put(&f, "zb", "b1");
	assert_int_equal(sched_round(&f, now), 2); /* a1 and b1 */
	sched_put(&f, "za", "a3");
	sched_put(&f, "zc", "c1");
	/* a1 and b1 are deferred: their zones wait, zc goes */
	assert_int_equal(sched_round(&f, now), 1);
	sched_close(&f);
}

/* order: none starts every due entry up to concurrency, and entries being retried hold
 * back nothing, not even their own zone. */
static void test_order_none_runs_a_zone_in_parallel_past_its_retries(void **state)
{
	(void)state;
	struct sched f;
	int64_t now = util_now_ms();

	sched_open(&f, WEBHOOK_ORDER_NONE);
	sched_put(&f, "za", "a1");
	sched_put(&f, "za", "a2");
	sched_put(&f, "zb", "b1");
	assert_int_equal(sched_round(&f, now), 3);
	sched_put(&f, "za", "a3");
	sched_put(&f, "za", "a4");
	sched_put(&f, "zc", "c1");
	/* a1, a2 and b1 are deferred; a3, a4 (behind them in za) and c1 go */
	assert_int_equal(sched_round(&f, now), 3);
	/* at most concurrency (4) at once */
	for (int i = 0; i < 6; i++)
		sched_put(&f, "za", "more");
	assert_int_equal(sched_round(&f, now), 4);
	/* the retries fall due: the oldest go first */
	assert_int_equal(sched_round(&f, now + 24 * 3600 * 1000LL), 4);
	sched_close(&f);
}

/* ---- a receiver on 127.0.0.1 (libmicrohttpd), port chosen by the kernel ---- */

struct recv {
	struct MHD_Daemon *d;
	char url[64];
	int fail_first;      /* the first fail_first requests are answered 503, the rest 204 */
	atomic_int requests; /* answered so far */
};

static enum MHD_Result recv_handle(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version, const char *upload,
                                   size_t *upload_size, void **ctx)
{
	static int begun;
	struct recv *r = cls;
	struct MHD_Response *resp;
	enum MHD_Result rc;

	(void)url;
	(void)method;
	(void)version;
	(void)upload;
	if (*ctx == NULL) {
		*ctx = &begun;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		*upload_size = 0;
		return MHD_YES;
	}
	int k = atomic_fetch_add(&r->requests, 1);
	resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (resp == NULL)
		return MHD_NO;
	rc = MHD_queue_response(c, k < r->fail_first ? 503 : 204, resp);
	MHD_destroy_response(resp);
	return rc;
}

static void recv_start(struct recv *r)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, recv_handle, r,
	                        MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_END);
	assert_non_null(r->d);
	snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%u/hook",
	         (unsigned)MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT)->port);
}

/* Runs every transfer to its end; the finished ones go to done (at most max). */
static size_t run_transfers(struct sched *f, CURLMsg *done, size_t max)
{
	int running = 1, left;
	size_t n = 0;
	CURLMsg *m;

	while (running > 0) {
		assert_int_equal(curl_multi_perform(f->multi, &running), CURLM_OK);
		if (running > 0)
			curl_multi_poll(f->multi, NULL, 0, 100, NULL);
	}
	while ((m = curl_multi_info_read(f->multi, &left)) != NULL) {
		if (m->msg == CURLMSG_DONE) {
			assert_true(n < max);
			done[n++] = *m;
		}
	}
	return n;
}

/* What the delivery loop does with its acknowledgements: deletes the delivered entries and
 * commits. */
static void settled_commit(struct sched *f)
{
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(webhook_delete_settled(f->w, f->st), 0);
	assert_int_equal(store_commit(f->st), 0);
	webhook_settled_committed(f->w);
	assert_int_equal(webhook_settled(f->w), 0);
}

/* A pump as the delivery loop does it: it commits when asked to, and pumps again. */
static void pump(struct sched *f, int64_t now_ms)
{
	if (webhook_pump(f->w, f->st, f->multi, now_ms)) {
		settled_commit(f);
		assert_false(webhook_pump(f->w, f->st, f->multi, now_ms));
	}
}

/* The entries read for later free slots never include one in flight at the time: settled
 * after the read, it would be sent again. Here zb's or zc's head is answered but not yet
 * settled when za's retry falls due and the candidates are read again; za's retry fills the
 * last slot, then the other transfer is settled, and the next pump must start nothing. */
static void test_candidates_read_ahead_never_send_a_settled_entry_again(void **state)
{
	(void)state;
	struct recv r = {.fail_first = 1};
	struct sched f;
	CURLMsg done[4];
	int64_t now = util_now_ms(), later = now + 24 * 3600 * 1000LL;

	recv_start(&r);
	sched_open_url(&f, WEBHOOK_ORDER_ZONE, r.url, 2);
	sched_put(&f, "za", "a1");
	assert_int_equal(sched_round(&f, now), 1); /* a1: 503, deferred */
	sched_put(&f, "zb", "b1");
	sched_put(&f, "zc", "c1");
	webhook_mark_dirty(f.w);
	webhook_pump(f.w, f.st, f.multi, now); /* b1 and c1: both slots */
	assert_int_equal(run_transfers(&f, done, 4), 2);
	assert_true(
	    webhook_done(f.w, f.st, f.multi, done[0].easy_handle, done[0].data.result, now));
	/* a1 is due: a1 and the one still in flight are the heads; a1 takes the free slot */
	webhook_mark_dirty(f.w);
	pump(&f, later);
	assert_true(
	    webhook_done(f.w, f.st, f.multi, done[1].easy_handle, done[1].data.result, later));
	pump(&f, later); /* only a1 is left, in flight */
	size_t n = run_transfers(&f, done, 4);
	for (size_t i = 0; i < n; i++)
		assert_true(webhook_done(f.w, f.st, f.multi, done[i].easy_handle,
		                         done[i].data.result, later));
	assert_int_equal(n, 1);
	/* a1 twice, b1 and c1 once each */
	assert_int_equal(atomic_load(&r.requests), 4);
	settled_commit(&f);
	assert_int_equal(store_outbox_count(f.st), 0);
	sched_close(&f);
	MHD_stop_daemon(r.d);
}

/* A delivered entry stays in the outbox, in flight, until the delivery loop's commit:
 * nothing sends it again, its zone's next entry waits for it, and a pump that has to read
 * the outbox asks for that commit first. */
/* A delivered entry is deleted by the loop's next commit, not at once; until then the reads
 * skip it, so its zone's next entry goes at once and the entry itself is never sent again. */
static void test_delivered_entries_wait_for_the_commit_not_their_zone(void **state)
{
	(void)state;
	struct recv r = {.fail_first = 0};
	struct sched f;
	CURLMsg done[4];
	int64_t now = util_now_ms();

	recv_start(&r);
	sched_open_url(&f, WEBHOOK_ORDER_ZONE, r.url, 2);
	sched_put(&f, "za", "a1");
	sched_put(&f, "za", "a2");
	sched_put(&f, "za", "a3");
	webhook_mark_dirty(f.w);
	assert_false(webhook_pump(f.w, f.st, f.multi, now)); /* a1 only: one per zone */
	assert_int_equal(run_transfers(&f, done, 4), 1);
	assert_true(
	    webhook_done(f.w, f.st, f.multi, done[0].easy_handle, done[0].data.result, now));
	assert_int_equal(webhook_settled(f.w), 1);
	assert_int_equal(store_outbox_count(f.st), 3); /* a1 is not deleted yet */
	/* a1 was delivered: a2 goes without waiting for the commit */
	assert_false(webhook_pump(f.w, f.st, f.multi, now));
	assert_int_equal(run_transfers(&f, done, 4), 1);
	assert_true(
	    webhook_done(f.w, f.st, f.multi, done[0].easy_handle, done[0].data.result, now));
	assert_int_equal(atomic_load(&r.requests), 2);
	assert_int_equal(webhook_settled(f.w), 2);
	assert_int_equal(store_outbox_count(f.st), 3);
	settled_commit(&f);
	assert_int_equal(store_outbox_count(f.st), 1);
	assert_false(webhook_pump(f.w, f.st, f.multi, now)); /* a3, and a1 and a2 not again */
	assert_int_equal(run_transfers(&f, done, 4), 1);
	assert_true(
	    webhook_done(f.w, f.st, f.multi, done[0].easy_handle, done[0].data.result, now));
	assert_int_equal(atomic_load(&r.requests), 3);
	assert_false(webhook_pump(f.w, f.st, f.multi, now)); /* nothing left to send */
	assert_int_equal(run_transfers(&f, done, 4), 0);
	settled_commit(&f);
	assert_int_equal(store_outbox_count(f.st), 0);
	assert_int_equal(atomic_load(&r.requests), 3);
	sched_close(&f);
	MHD_stop_daemon(r.d);
}

/* Delivered entries whose deletes never commit (a full disk) cannot pile up for ever:
 * past 1,024 of them the pump starts nothing new and asks for the commit; once it is made,
 * the rest goes. */
static void test_too_many_delivered_entries_ask_for_their_commit(void **state)
{
	(void)state;
	enum { N = 1100, CONC = 64 };
	struct recv r = {.fail_first = 0};
	struct sched f;
	CURLMsg done[CONC];
	int64_t now = util_now_ms();
	char id[16];
	bool asked = false;

	recv_start(&r);
	sched_open_url(&f, WEBHOOK_ORDER_NONE, r.url, CONC);
	assert_int_equal(store_begin(f.st), 0);
	for (int i = 0; i < N; i++) {
		snprintf(id, sizeof(id), "m%d", i);
		sched_put(&f, i % 2 ? "za" : "zb", id);
	}
	assert_int_equal(store_commit(f.st), 0);
	for (int round = 0; round < N && !asked; round++) {
		webhook_mark_dirty(f.w);
		asked = webhook_pump(f.w, f.st, f.multi, now);
		size_t n = run_transfers(&f, done, CONC);
		for (size_t k = 0; k < n; k++)
			assert_true(webhook_done(f.w, f.st, f.multi, done[k].easy_handle,
			                         done[k].data.result, now));
	}
	assert_true(asked);
	size_t settled = webhook_settled(f.w);
	assert_true(settled >= 1024 && settled < N);
	assert_int_equal(atomic_load(&r.requests), (int)settled);
	assert_int_equal(store_outbox_count(f.st), N); /* nothing deleted yet */
	/* asked again, it still starts nothing */
	webhook_mark_dirty(f.w);
	assert_true(webhook_pump(f.w, f.st, f.multi, now));
	assert_int_equal(run_transfers(&f, done, CONC), 0);
	settled_commit(&f);
	assert_int_equal(store_outbox_count(f.st), N - (int)settled);
	while (store_outbox_count(f.st) > 0) {
		webhook_mark_dirty(f.w);
		assert_false(webhook_pump(f.w, f.st, f.multi, now));
		size_t n = run_transfers(&f, done, CONC);
		assert_true(n > 0);
		for (size_t k = 0; k < n; k++)
			assert_true(webhook_done(f.w, f.st, f.multi, done[k].easy_handle,
			                         done[k].data.result, now));
		settled_commit(&f);
	}
	assert_int_equal(atomic_load(&r.requests), N); /* each once */
	sched_close(&f);
	MHD_stop_daemon(r.d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_signature_matches_standard_webhooks_vector),
	    cmocka_unit_test(test_signature_rotation_sends_one_per_secret),
	    cmocka_unit_test(test_signature_rejects_bad_secret),
	    cmocka_unit_test(test_json_body_is_message_and_headers_follow_standard),
	    cmocka_unit_test(test_json_body_template_replaces_message),
	    cmocka_unit_test(test_json_id_comes_from_the_rule_whatever_the_names_hold),
	    cmocka_unit_test(test_slack_body_has_text_and_blocks),
	    cmocka_unit_test(test_discord_body_waits_and_mentions_nobody),
	    cmocka_unit_test(test_discord_truncates_long_text),
	    cmocka_unit_test(test_teams_body_is_adaptive_card),
	    cmocka_unit_test(test_cloudevents_structured),
	    cmocka_unit_test(test_chat_texts_are_cut_by_characters),
	    cmocka_unit_test(test_empty_rule_text_gives_the_default_text),
	    cmocka_unit_test(test_delivery_id_differs_per_rule_and_target_only),
	    cmocka_unit_test(test_two_rules_send_one_message_under_two_ids),
	    cmocka_unit_test(test_order_zone_keeps_one_per_zone_and_waits_for_retries),
	    cmocka_unit_test(test_order_none_runs_a_zone_in_parallel_past_its_retries),
	    cmocka_unit_test(test_candidates_read_ahead_never_send_a_settled_entry_again),
	    cmocka_unit_test(test_delivered_entries_wait_for_the_commit_not_their_zone),
	    cmocka_unit_test(test_too_many_delivered_entries_ask_for_their_commit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
