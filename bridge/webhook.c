/* Webhook delivery: body formats, Standard Webhooks signatures (OpenSSL HMAC-SHA256),
 * transfers on the shared curl multi handle, and the retry / dead-letter policy. */
#include "bridge/webhook.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "lib/log.h"
#include "lib/retry.h"
#include "bridge/bridge.h"
#include "bridge/metrics.h"
#include "bridge/tmetrics.h"
#include "bridge/outbox.h"
#include "lib/util.h"

#define MAX_RESPONSE 4096 /* we keep the first bytes of an answer, for reasons and Slack */
#define WEBHOOK_RECHECK_MS 1000
#define EXCERPT_MAX 200  /* bytes of an answer kept in a reason or a log line */
#define CAND_EXTRA 16    /* candidates read beyond the concurrency, for the next free slots */
#define SETTLED_MAX 1024 /* delivered entries waiting for their deletes: past it, no new send */
#define RETRY_AFTER_MAX_MS                                                                         \
	(7 * 24 * 3600 * 1000LL) /* longer is nonsense; max_retry_age decides                      \
	                          */

struct xfer {
	struct webhook *w;
	CURL *easy;
	struct curl_slist *hdrs;
	char *body;
	char *zone_id;
	char *msg_id;
	int64_t id; /* outbox entry */
	int attempts;
	int64_t first_failed_ms;
	int64_t created_ms;
	struct buf resp;
	char retry_after[64];
	struct xfer *next;
};

struct webhook {
	struct cfg_webhook cfg; /* deep copy */
	char *target;
	int64_t max_retry_age_ms;
	struct xfer *inflight;
	size_t ninflight;
	CURL **spare; /* easy handles of finished transfers, for the next ones (concurrency) */
	size_t nspare;
	int64_t next_send_ms;     /* Slack pacing */
	int64_t paused_until_ms;  /* a 429 or a Retry-After: nothing new starts before */
	bool dirty;               /* something changed: look at the outbox at the next pump */
	int64_t due_ms;           /* else look again at this wall time */
	struct store_entry *cand; /* entries read for free slots and not started yet */
	size_t ncand, icand;      /* cand[icand..ncand) are left */
	int64_t *settled;         /* delivered (2xx), deleted with the loop's next acks commit */
	size_t nsettled, capsettled;
	bool failing;           /* for logging state changes once */
	bool odd_answer_logged; /* a Slack 2xx that did not say "ok" was logged */
	uint64_t rng;
};

static char *dupstr(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void cfg_release(struct cfg_webhook *c)
{
	free(c->name);
	free(c->url);
	for (size_t i = 0; i < c->nheaders; i++) {
		free(c->headers[i].name);
		free(c->headers[i].value);
	}
	free(c->headers);
	for (size_t i = 0; i < c->nsecrets; i++)
		util_free_secret(c->secrets[i]);
	free(c->secrets);
}

struct webhook *webhook_new(const struct cfg_webhook *cfg, int64_t max_retry_age_ms)
{
	struct webhook *w = calloc(1, sizeof(*w));
	bool ok = true;

	if (w == NULL)
		return NULL;
	w->cfg = *cfg;
	w->cfg.name = dupstr(cfg->name);
	w->cfg.url = dupstr(cfg->url);
	w->cfg.headers = calloc(cfg->nheaders + 1, sizeof(*w->cfg.headers));
	w->cfg.secrets = calloc(cfg->nsecrets + 1, sizeof(*w->cfg.secrets));
	w->spare = calloc((size_t)(cfg->concurrency > 0 ? cfg->concurrency : 1), sizeof(*w->spare));
	ok = w->cfg.name && w->cfg.url && w->cfg.headers && w->cfg.secrets && w->spare;
	for (size_t i = 0; ok && i < cfg->nheaders; i++) {
		w->cfg.headers[i].name = dupstr(cfg->headers[i].name);
		w->cfg.headers[i].value = dupstr(cfg->headers[i].value);
		ok = w->cfg.headers[i].name && w->cfg.headers[i].value;
	}
	for (size_t i = 0; ok && i < cfg->nsecrets; i++)
		ok = (w->cfg.secrets[i] = dupstr(cfg->secrets[i])) != NULL;
	if (!ok || (w->target = outbox_target("webhook", cfg->name)) == NULL) {
		webhook_free(w);
		return NULL;
	}
	tmetrics_register(w->target, 0);
	w->max_retry_age_ms = max_retry_age_ms;
	w->rng = (uint64_t)util_now_ms() ^ (uint64_t)(uintptr_t)w;
	w->dirty = true;
	return w;
}

/* keep: the transfer ended normally and its easy handle may serve the next one (setting
 * up a handle cost about as much as the request's own headers: callgrind) */
static void xfer_free(struct xfer *x, CURLM *multi, bool keep)
{
	if (x == NULL)
		return;
	if (x->easy) {
		if (multi)
			curl_multi_remove_handle(multi, x->easy);
		struct webhook *w = x->w;
		if (keep && multi && w->nspare < (size_t)w->cfg.concurrency) {
			/* nothing may point at what is freed below */
			curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, NULL);
			curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, NULL);
			w->spare[w->nspare++] = x->easy;
		} else {
			curl_easy_cleanup(x->easy);
		}
	}
	curl_slist_free_all(x->hdrs);
	free(x->body);
	free(x->zone_id);
	free(x->msg_id);
	buf_release(&x->resp);
	free(x);
}

static void cand_drop(struct webhook *w)
{
	store_entries_free(w->cand, w->ncand);
	w->cand = NULL;
	w->ncand = w->icand = 0;
}

void webhook_cancel_all(struct webhook *w, CURLM *multi)
{
	cand_drop(w);
	while (w->inflight) {
		struct xfer *x = w->inflight;
		w->inflight = x->next;
		xfer_free(x, multi, false);
	}
	w->ninflight = 0;
}

void webhook_free(struct webhook *w)
{
	if (w == NULL)
		return;
	webhook_cancel_all(w, NULL);
	for (size_t i = 0; i < w->nspare; i++)
		curl_easy_cleanup(w->spare[i]);
	free(w->spare);
	free(w->settled);
	cfg_release(&w->cfg);
	free(w->target);
	free(w);
}

/* ---- signatures ---- */

int webhook_sign(char *const *secrets, size_t nsecrets, const char *id, int64_t ts,
                 const char *body, size_t body_len, char *out, size_t outsz)
{
	struct buf msg, sig;
	int rc = -1;

	buf_init(&msg, 0);
	buf_init(&sig, 0);
	if (buf_printf(&msg, "%s.%lld.", id, (long long)ts) < 0 ||
	    buf_append(&msg, body, body_len) < 0)
		goto out;
	for (size_t i = 0; i < nsecrets; i++) {
		const char *s = secrets[i];
		unsigned char key[512], mac[EVP_MAX_MD_SIZE];
		char b64[128];
		size_t maclen = 0;
		size_t b64len;
		int keylen;

		if (strncmp(s, "whsec_", 6) != 0)
			goto out;
		s += 6;
		b64len = strlen(s);
		if (b64len == 0 || b64len % 4 != 0 || b64len / 4 * 3 > sizeof(key))
			goto out;
		keylen = EVP_DecodeBlock(key, (const unsigned char *)s, (int)b64len);
		if (keylen < 0)
			goto out;
		/* EVP_DecodeBlock counts padding as zero bytes: take them off */
		if (b64len >= 1 && s[b64len - 1] == '=')
			keylen--;
		if (b64len >= 2 && s[b64len - 2] == '=')
			keylen--;
		if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, (size_t)keylen,
		              (const unsigned char *)msg.data, msg.len, mac, sizeof(mac),
		              &maclen) == NULL) {
			util_memzero(key, sizeof(key));
			goto out;
		}
		util_memzero(key, sizeof(key));
		EVP_EncodeBlock((unsigned char *)b64, mac, (int)maclen);
		if (buf_printf(&sig, "%sv1,%s", i ? " " : "", b64) < 0)
			goto out;
	}
	if (sig.len + 1 > outsz)
		goto out;
	memcpy(out, sig.data ? sig.data : "", sig.len + 1);
	rc = 0;
out:
	if (msg.data)
		util_memzero(msg.data, msg.len);
	buf_release(&msg);
	buf_release(&sig);
	return rc;
}

static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
	sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

/* SHA-256 fetched once: EVP_sha256() looks the implementation up in OpenSSL's provider
 * store on every digest, which cost more than the hashing (callgrind). NULL if the fetch
 * failed: the caller falls back to EVP_sha256(). */
static const EVP_MD *sha256(void)
{
	pthread_once(&sha256_once, sha256_fetch);
	return sha256_md ? sha256_md : EVP_sha256();
}

int webhook_delivery_id(const char *msg_id, const char *rule, const char *target,
                        char out[WEBHOOK_ID_MAX])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	struct buf in;
	int rc = -1;

	buf_init(&in, 0);
	/* NUL separators: no part can contain one, so no two triples hash the same text */
	if (buf_append(&in, msg_id, strlen(msg_id) + 1) < 0 ||
	    buf_append(&in, rule, strlen(rule) + 1) < 0 || buf_puts(&in, target) < 0)
		goto out;
	if (!EVP_Digest(in.data, in.len, md, &mdlen, sha256(), NULL) || mdlen < 16)
		goto out;
	memcpy(out, "msg_", 4);
	for (size_t i = 0; i < 16; i++) {
		out[4 + 2 * i] = hex[md[i] >> 4];
		out[5 + 2 * i] = hex[md[i] & 15];
	}
	out[36] = '\0';
	rc = 0;
out:
	buf_release(&in);
	return rc;
}

/* ---- bodies ---- */

/* Cuts s to at most max characters (the chat services count characters, not bytes), never
 * inside one, ending with "..." when cut. New string. */
static char *truncated(const char *s, size_t max)
{
	size_t len = strlen(s), keep;
	char *out;

	if (util_utf8_cut(s, SIZE_MAX, max) == len)
		return strdup(s);
	keep = util_utf8_cut(s, SIZE_MAX, max > 3 ? max - 3 : 0);
	out = malloc(keep + 4);
	if (out == NULL)
		return NULL;
	memcpy(out, s, keep);
	memcpy(out + keep, "...", 4);
	return out;
}

/* True when a rule's text renders to nothing a chat service would show. */
static bool blank(const char *s)
{
	for (; *s; s++)
		if (!isspace((unsigned char)*s))
			return false;
	return true;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

/* The human text when the rule gives none: "high intrusion,tripwire in Back Yard at ...". */
static char *default_text(const json_t *msg)
{
	const json_t *zone = json_object_get(msg, "zone"), *plate = json_object_get(msg, "plate");
	const char *zname = jstr(zone, "name");
	struct buf b;

	buf_init(&b, 0);
	if (strcmp(jstr(msg, "kind"), "plate") == 0) {
		buf_printf(&b, "Plate %s", jstr(plate, "number"));
		if (*jstr(plate, "country"))
			buf_printf(&b, " (%s)", jstr(plate, "country"));
		if (*jstr(plate, "watchlist"))
			buf_printf(&b, " on watchlist %s", jstr(plate, "watchlist"));
		buf_printf(&b, " in %s at %s", zname, jstr(msg, "occurred_at"));
	} else {
		const json_t *flags = json_object_get(msg, "flags"), *f;
		size_t i;
		buf_printf(&b, "%s%s", jstr(msg, "severity"), *jstr(msg, "severity") ? " " : "");
		if (json_array_size(flags) == 0)
			buf_puts(&b, "event");
		json_array_foreach(flags, i, f)
		    buf_printf(&b, "%s%s", i ? "," : "", json_string_value(f));
		buf_printf(&b, " (%s) in %s at %s", jstr(msg, "phase"), zname,
		           jstr(msg, "occurred_at"));
	}
	return buf_steal(&b);
}

static char *flags_text(const json_t *msg)
{
	const json_t *flags = json_object_get(msg, "flags"), *f;
	struct buf b;
	size_t i;

	buf_init(&b, 0);
	json_array_foreach(flags, i, f) buf_printf(&b, "%s%s", i ? ", " : "", json_string_value(f));
	if (b.len == 0)
		buf_puts(&b, "none");
	return buf_steal(&b);
}

/* Slack reads &, < and > in mrkdwn as markup (<!channel>, <url|text>): values from the
 * API are written as &amp; &lt; &gt;. New string. */
static char *slack_escape(const char *s)
{
	struct buf b;
	int rc = 0;

	buf_init(&b, 0);
	for (; *s && rc == 0; s++) {
		if (*s == '&')
			rc = buf_puts(&b, "&amp;");
		else if (*s == '<')
			rc = buf_puts(&b, "&lt;");
		else if (*s == '>')
			rc = buf_puts(&b, "&gt;");
		else
			rc = buf_append(&b, s, 1);
	}
	if (rc < 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* text_is_ours: the default text (escaped here); a rule's text is the user's mrkdwn. */
static json_t *slack_body(const json_t *msg, const char *text, bool text_is_ours)
{
	const json_t *zone = json_object_get(msg, "zone"), *plate = json_object_get(msg, "plate");
	const char *link = jstr(json_object_get(msg, "links"), "web");
	char *esc_text = text_is_ours ? slack_escape(text) : NULL;
	char *t = truncated(esc_text ? esc_text : text, WEBHOOK_SLACK_TEXT_MAX);
	char *what = NULL, *flags = NULL;
	char *znm = slack_escape(jstr(zone, "name")), *num = slack_escape(jstr(plate, "number"));
	char *ctry = slack_escape(jstr(plate, "country"));
	char *when = slack_escape(jstr(msg, "occurred_at"));
	json_t *fields, *blocks, *body = NULL;

	free(esc_text);
	if (t == NULL || znm == NULL || num == NULL || ctry == NULL || when == NULL) {
		free(t);
		free(znm);
		free(num);
		free(ctry);
		free(when);
		return NULL;
	}
	if (json_is_object(plate)) {
		if (asprintf(&what, "*Plate*\n%s %s", num, ctry) < 0)
			what = NULL;
	} else {
		flags = flags_text(msg);
		if (flags == NULL || asprintf(&what, "*Flags*\n%s", flags) < 0)
			what = NULL;
	}
	char *zf = NULL, *tf = NULL, *lf = NULL;
	if (asprintf(&zf, "*Zone*\n%s", znm) < 0)
		zf = NULL;
	if (asprintf(&tf, "*Time*\n%s", when) < 0)
		tf = NULL;
	free(znm);
	free(num);
	free(ctry);
	free(when);
	if (asprintf(&lf, "<%s|Open in Tether>", link) < 0)
		lf = NULL;
	if (what && zf && tf && lf) {
		fields = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "type", "mrkdwn", "text", zf,
		                   "type", "mrkdwn", "text", what, "type", "mrkdwn", "text", tf);
		blocks = json_pack("[{s:s,s:{s:s,s:s}},{s:s,s:o*},{s:s,s:[{s:s,s:s}]}]", "type",
		                   "section", "text", "type", "mrkdwn", "text", t, "type",
		                   "section", "fields", fields, "type", "context", "elements",
		                   "type", "mrkdwn", "text", lf);
		body = json_pack("{s:s,s:o*}", "text", t, "blocks", blocks);
	}
	free(t);
	free(what);
	free(flags);
	free(zf);
	free(tf);
	free(lf);
	return body;
}

static json_t *discord_body(const json_t *msg, const char *text)
{
	const json_t *zone = json_object_get(msg, "zone"), *plate = json_object_get(msg, "plate");
	const char *link = jstr(json_object_get(msg, "links"), "web");
	char *content = truncated(text, WEBHOOK_DISCORD_CONTENT_MAX);
	char *desc = truncated(text, WEBHOOK_DISCORD_DESCRIPTION_MAX);
	char *flags = NULL, *title = NULL;
	json_t *fields, *body = NULL;
	int64_t ms;
	char iso[UTIL_TIME_MAX];

	if (content == NULL || desc == NULL)
		goto out;
	if (json_is_object(plate)) {
		if (asprintf(&title, "Plate %s", jstr(plate, "number")) < 0)
			title = NULL;
		fields =
		    json_pack("[{s:s,s:s,s:b},{s:s,s:s,s:b}]", "name", "Zone", "value",
		              jstr(zone, "name"), "inline", 1, "name", "Country", "value",
		              *jstr(plate, "country") ? jstr(plate, "country") : "-", "inline", 1);
	} else {
		flags = flags_text(msg);
		if (asprintf(&title, "%s event (%s)", jstr(msg, "severity"), jstr(msg, "phase")) <
		    0)
			title = NULL;
		fields = json_pack("[{s:s,s:s,s:b},{s:s,s:s?,s:b}]", "name", "Zone", "value",
		                   jstr(zone, "name"), "inline", 1, "name", "Flags", "value", flags,
		                   "inline", 1);
	}
	/* Discord wants an ISO 8601 timestamp; keep the event's own when it parses */
	if (util_parse_time(jstr(msg, "occurred_at"), &ms, NULL) == 0)
		util_format_iso(ms, 0, iso);
	else
		util_format_iso(util_now_ms(), 0, iso);
	if (title)
		body =
		    json_pack("{s:s,s:{s:[]},s:[{s:s,s:s,s:s,s:s,s:o*}]}", "content", content,
		              "allowed_mentions", "parse", "embeds", "title", title, "description",
		              desc, "url", link, "timestamp", iso, "fields", fields);
	else
		json_decref(fields);
out:
	free(content);
	free(desc);
	free(flags);
	free(title);
	return body;
}

static json_t *teams_body(const json_t *msg, const char *text)
{
	const json_t *zone = json_object_get(msg, "zone"), *plate = json_object_get(msg, "plate");
	const char *link = jstr(json_object_get(msg, "links"), "web");
	char *flags = flags_text(msg);
	json_t *facts, *card, *body = NULL;

	if (flags == NULL)
		return NULL;
	if (json_is_object(plate))
		facts =
		    json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "title", "Zone", "value",
		              jstr(zone, "name"), "title", "Plate", "value", jstr(plate, "number"),
		              "title", "Time", "value", jstr(msg, "occurred_at"));
	else
		facts = json_pack("[{s:s,s:s},{s:s,s:s},{s:s,s:s},{s:s,s:s}]", "title", "Zone",
		                  "value", jstr(zone, "name"), "title", "Flags", "value", flags,
		                  "title", "Severity", "value", jstr(msg, "severity"), "title",
		                  "Time", "value", jstr(msg, "occurred_at"));
	card =
	    json_pack("{s:s,s:s,s:s,s:[{s:s,s:s,s:s,s:b},{s:s,s:o*}],s:[{s:s,s:s,s:s}]}", "$schema",
	              "http://adaptivecards.io/schemas/adaptive-card.json", "type", "AdaptiveCard",
	              "version", "1.4", "body", "type", "TextBlock", "text", text, "weight",
	              "Bolder", "wrap", 1, "type", "FactSet", "facts", facts, "actions", "type",
	              "Action.OpenUrl", "title", "Open in Tether", "url", link);
	if (card)
		body = json_pack("{s:s,s:[{s:s,s:n,s:o}]}", "type", "message", "attachments",
		                 "contentType", "application/vnd.microsoft.card.adaptive",
		                 "contentUrl", "content", card);
	free(flags);
	return body;
}

/* id: the delivery id, so that source + id is unique per distinct event as CloudEvents
 * requires (two rules sending one message give two events). */
static json_t *cloudevents_body(const json_t *msg, const char *id)
{
	char type[96];
	snprintf(type, sizeof(type), "is.timeline.%s.%s", jstr(msg, "kind"),
	         strcmp(jstr(msg, "kind"), "plate") == 0 ? "read" : jstr(msg, "phase"));
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:O}", "specversion", "1.0", "id", id,
	                 "source", "tether-bridge", "type", type, "subject",
	                 jstr(json_object_get(msg, "zone"), "id"), "time", jstr(msg, "occurred_at"),
	                 "datacontenttype", "application/json", "data", msg);
}

/* The rule of a payload message_dump wrote, read from its end: "rule" is the message's last
 * member (docs/message.md order), and `,"rule":` cannot occur inside a JSON string (its quote
 * would be escaped), so the last one is the key. NULL when the text is not shaped so (the
 * caller then parses all of it). For format json nothing else of the message is needed: its
 * parse was 40% of the CPU of a webhook delivery. */
static json_t *payload_rule(const char *payload)
{
	static const char key[] = ",\"rule\":";
	const char *k = NULL, *p = payload;
	json_error_t jerr;
	json_t *v;
	size_t n;

	while ((p = strstr(p, key)) != NULL)
		k = p++;
	if (k == NULL)
		return NULL;
	k += sizeof(key) - 1;
	n = strlen(k);
	if (n < 2 || k[n - 1] != '}')
		return NULL;
	v = json_loadb(k, n - 1, JSON_DECODE_ANY, &jerr);
	if (v != NULL && !json_is_string(v) && !json_is_null(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

/* One request as built for an entry: the sender turns hdrs into curl's list, explain into
 * JSON, so both show the same headers in the same order. The header names and values point
 * into the request itself and into the config (which outlives it). */
struct request {
	char *url, *body;
	char id[WEBHOOK_ID_MAX], ts[32], sig[1024];
	struct request_header {
		const char *name, *value;
	} * hdrs;
	size_t nhdrs;
};

static void request_release(struct request *r)
{
	free(r->url);
	free(r->body);
	free(r->hdrs);
	memset(r, 0, sizeof(*r));
}

/* Appends a header, or replaces the value of one of the same name (a configured header
 * given again under the exact name of one of ours takes its place). hdrs has room. */
static void request_header(struct request *r, const char *name, const char *value)
{
	for (size_t i = 0; i < r->nhdrs; i++) {
		if (strcmp(r->hdrs[i].name, name) == 0) {
			r->hdrs[i].value = value;
			return;
		}
	}
	r->hdrs[r->nhdrs].name = name;
	r->hdrs[r->nhdrs++].value = value;
}

#define REQUEST_OWN_HEADERS 6 /* Content-Type ... webhook-signature, below */

static int request_build(const struct cfg_webhook *cfg, const struct store_entry *e, int64_t now_s,
                         struct request *r, char *err, size_t errsz)
{
	json_error_t jerr = {.text = "out of memory"};
	json_t *msg = NULL, *extra = NULL, *body = NULL;
	const char *text = NULL, *tmpl_body = NULL, *ctype = "application/json";
	char *default_t = NULL, *out = NULL, *url = NULL;
	char *const id = r->id;

	memset(r, 0, sizeof(*r));
	json_t *rule = cfg->format == WEBHOOK_JSON ? payload_rule(e->payload) : NULL;
	if (rule != NULL) {
		/* the body is the payload as is: only the rule is needed, for the id */
		msg = json_pack("{s:O}", "rule", rule);
		json_decref(rule);
	} else {
		msg = json_loads(e->payload, 0, &jerr);
	}
	if (msg == NULL) {
		snprintf(err, errsz, "outbox payload is not JSON: %s", jerr.text);
		goto fail;
	}
	if (e->extra && (extra = json_loads(e->extra, 0, &jerr)) != NULL) {
		text = json_string_value(json_object_get(extra, "text"));
		tmpl_body = json_string_value(json_object_get(extra, "body"));
	}
	/* an empty text is below Slack's and Discord's minimum length and would be refused:
	 * the default text stands in */
	if (webhook_delivery_id(e->msg_id, jstr(msg, "rule"), e->target, id) < 0) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	if ((text == NULL || blank(text)) && cfg->format != WEBHOOK_JSON) {
		default_t = default_text(msg);
		text = default_t ? default_t : "";
	}
	switch (cfg->format) {
	case WEBHOOK_JSON:
		out = strdup(tmpl_body ? tmpl_body : e->payload);
		break;
	case WEBHOOK_SLACK:
		body = slack_body(msg, text, default_t != NULL);
		break;
	case WEBHOOK_DISCORD:
		body = discord_body(msg, text);
		break;
	case WEBHOOK_TEAMS:
		body = teams_body(msg, text);
		break;
	case WEBHOOK_CLOUDEVENTS:
		body = cloudevents_body(msg, id);
		ctype = "application/cloudevents+json";
		break;
	}
	if (body)
		out =
		    json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15));
	if (out == NULL) {
		snprintf(err, errsz, "unable to build the %s body",
		         config_webhook_format_name(cfg->format));
		goto fail;
	}
	if (cfg->format == WEBHOOK_DISCORD)
		url = strchr(cfg->url, '?')
		          ? (asprintf(&url, "%s&wait=true", cfg->url) < 0 ? NULL : url)
		          : (asprintf(&url, "%s?wait=true", cfg->url) < 0 ? NULL : url);
	else
		url = strdup(cfg->url);
	r->hdrs = calloc(REQUEST_OWN_HEADERS + cfg->nheaders, sizeof(*r->hdrs));
	if (url == NULL || r->hdrs == NULL) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	snprintf(r->ts, sizeof(r->ts), "%lld", (long long)now_s);
	/* ctype and TB_USER_AGENT are literals: they outlive the request */
	request_header(r, "Content-Type", ctype);
	request_header(r, "User-Agent", TB_USER_AGENT);
	request_header(r, "webhook-id", id);
	request_header(r, "webhook-timestamp", r->ts);
	request_header(r, "Idempotency-Key", id);
	if (cfg->nsecrets > 0) {
		if (webhook_sign(cfg->secrets, cfg->nsecrets, id, now_s, out, strlen(out), r->sig,
		                 sizeof(r->sig)) < 0) {
			snprintf(err, errsz, "unable to sign: bad secret");
			goto fail;
		}
		request_header(r, "webhook-signature", r->sig);
	}
	for (size_t i = 0; i < cfg->nheaders; i++)
		request_header(r, cfg->headers[i].name, cfg->headers[i].value);
	json_decref(msg);
	json_decref(extra);
	json_decref(body);
	free(default_t);
	r->url = url;
	r->body = out;
	return 0;
fail:
	json_decref(msg);
	json_decref(extra);
	json_decref(body);
	free(default_t);
	free(out);
	free(url);
	free(r->hdrs);
	r->hdrs = NULL;
	return -1;
}

int webhook_request(const struct cfg_webhook *cfg, const struct store_entry *e, int64_t now_s,
                    char **urlp, char **bodyp, json_t **headersp, char *err, size_t errsz)
{
	struct request r;
	json_t *headers;

	*urlp = *bodyp = NULL;
	*headersp = NULL;
	if (request_build(cfg, e, now_s, &r, err, errsz) < 0)
		return -1;
	headers = json_object();
	for (size_t i = 0; headers != NULL && i < r.nhdrs; i++) {
		if (json_object_set_new(headers, r.hdrs[i].name, json_string(r.hdrs[i].value)) <
		    0) {
			json_decref(headers);
			headers = NULL;
		}
	}
	if (headers == NULL) {
		snprintf(err, errsz, "out of memory");
		request_release(&r);
		return -1;
	}
	*urlp = r.url;
	*bodyp = r.body;
	*headersp = headers;
	free(r.hdrs);
	return 0;
}

json_t *webhook_explain(const struct cfg_webhook *cfg, const struct store_entry *e, int64_t now_ms)
{
	char *url, *body, err[256];
	json_t *headers, *out;

	if (cfg == NULL)
		return NULL;
	if (webhook_request(cfg, e, now_ms / 1000, &url, &body, &headers, err, sizeof(err)) < 0)
		return json_pack("{s:s, s:s}", "target", e->target, "error", err);
	out = json_pack("{s:s, s:s, s:o, s:s}", "target", e->target, "url", url, "headers", headers,
	                "body", body);
	free(url);
	free(body);
	return out;
}

/* ---- transfers ---- */

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	size_t room = MAX_RESPONSE > x->resp.len ? MAX_RESPONSE - x->resp.len : 0;
	buf_append(&x->resp, p, len < room ? len : room); /* the rest is not needed */
	return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * n;
	if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
		size_t v = 12;
		while (v < len && isspace((unsigned char)p[v]))
			v++;
		size_t end = len;
		while (end > v && isspace((unsigned char)p[end - 1]))
			end--;
		snprintf(x->retry_after, sizeof(x->retry_after), "%.*s", (int)(end - v), p + v);
	}
	return len;
}

/* Being sent (a delivered one waiting for its delete is never read: the reads skip it). */
static bool entry_inflight(const struct webhook *w, int64_t id)
{
	for (const struct xfer *x = w->inflight; x; x = x->next) {
		if (x->id == id)
			return true;
	}
	return false;
}

/* Records a delivered entry for the next acks commit; deletes it at once (on its own, or
 * in the caller's transaction) when the list cannot grow. */
static void settle_delivered(struct webhook *w, struct store *st, int64_t id)
{
	if (w->nsettled == w->capsettled) {
		size_t cap = w->capsettled ? w->capsettled * 2 : 64;
		int64_t *v = realloc(w->settled, cap * sizeof(*v));
		if (v == NULL) {
			if (store_outbox_ack(st, id) < 0)
				log_warnx("%s: unable to record a delivery: %s", w->target,
				          store_errmsg(st));
			return;
		}
		w->settled = v;
		w->capsettled = cap;
	}
	w->settled[w->nsettled++] = id;
}

size_t webhook_settled(const struct webhook *w)
{
	return w->nsettled;
}

int webhook_delete_settled(struct webhook *w, struct store *st)
{
	for (size_t i = 0; i < w->nsettled; i++) {
		if (store_outbox_ack(st, w->settled[i]) < 0)
			return -1;
	}
	return 0;
}

void webhook_settled_committed(struct webhook *w)
{
	w->nsettled = 0;
	w->dirty = true; /* their zones may go on */
}

static void settle_dead(struct webhook *w, struct store *st, int64_t id, const char *msg_id,
                        int status, const char *reason)
{
	char stxt[16];

	snprintf(stxt, sizeof(stxt), "%d", status);
	log_fields(LOG_LEVEL_WARN,
	           (struct log_field[]){{"target", w->target},
	                                {"msg_id", msg_id},
	                                {"status", status ? stxt : NULL},
	                                {NULL, NULL}},
	           "%s: message '%s' is a dead letter: %s", w->target, msg_id, reason);
	if (store_outbox_to_dlq(st, id, status, reason) < 0)
		log_warnx("%s: unable to record the dead letter: %s", w->target, store_errmsg(st));
	metrics_add(M_DEAD, 1);
	tmetrics_add(TM_FAILURES, w->target, 1);
	tmetrics_add(TM_DEAD, w->target, 1);
}

/* An easy handle with the options every transfer of w shares: a spare one, or a new one. */
static CURL *easy_get(struct webhook *w)
{
	CURL *easy;

	if (w->nspare > 0)
		return w->spare[--w->nspare];
	easy = curl_easy_init();
	if (easy == NULL)
		return NULL;
	curl_easy_setopt(easy, CURLOPT_POST, 1L);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)w->cfg.timeout_ms);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)w->cfg.timeout_ms);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	return easy;
}

static int start(struct webhook *w, struct store *st, CURLM *multi, const struct store_entry *e,
                 int64_t now_ms)
{
	struct xfer *x = calloc(1, sizeof(*x));
	struct request r = {0};
	struct buf line;
	char err[256];

	if (x == NULL)
		return -1;
	buf_init(&line, 0);
	x->w = w;
	x->id = e->id;
	x->attempts = e->attempts;
	x->first_failed_ms = e->first_failed_ms;
	x->created_ms = e->created_ms;
	x->zone_id = strdup(e->zone_id ? e->zone_id : "");
	x->msg_id = strdup(e->msg_id);
	buf_init(&x->resp, MAX_RESPONSE);
	if (x->zone_id == NULL || x->msg_id == NULL)
		goto fail;
	if (request_build(&w->cfg, e, now_ms / 1000, &r, err, sizeof(err)) < 0) {
		settle_dead(w, st, e->id, e->msg_id, 0, err);
		xfer_free(x, NULL, false);
		return 0;
	}
	for (size_t i = 0; i < r.nhdrs; i++) {
		buf_reset(&line);
		if (buf_puts(&line, r.hdrs[i].name) < 0 || buf_puts(&line, ": ") < 0 ||
		    buf_puts(&line, r.hdrs[i].value) < 0)
			goto fail;
		struct curl_slist *n = curl_slist_append(x->hdrs, line.data);
		if (n == NULL)
			goto fail;
		x->hdrs = n;
	}
	/* curl adds "Expect: 100-continue" to large POSTs; receivers do not need it */
	struct curl_slist *n = curl_slist_append(x->hdrs, "Expect:");
	if (n == NULL)
		goto fail;
	x->hdrs = n;
	x->body = r.body;
	r.body = NULL;
	x->easy = easy_get(w);
	if (x->easy == NULL)
		goto fail;
	curl_easy_setopt(x->easy, CURLOPT_URL, r.url);
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDS, x->body);
	curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
	curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->hdrs);
	curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x);
	if (curl_multi_add_handle(multi, x->easy) != CURLM_OK)
		goto fail;
	x->next = w->inflight;
	w->inflight = x;
	w->ninflight++;
	request_release(&r);
	buf_release(&line);
	return 0;
fail:
	request_release(&r);
	buf_release(&line);
	xfer_free(x, NULL, false);
	return -1;
}

void webhook_mark_dirty(struct webhook *w)
{
	w->dirty = true;
}

/* order: zone: only the head of each zone can go (one transfer per zone keeps the zone in
 * order), so the candidates are the zones' heads; an in-flight entry is its zone's head
 * until it is settled, and a delivered one is skipped by the read (its delete waits for the
 * loop's next commit), so its zone goes on at once. order: none: any due entry, oldest
 * first; a deferred one is stepped over. Either way the in-flight entries are among the
 * rows read, so concurrency + CAND_EXTRA rows are read; the ones not in flight are the
 * candidates, and the extra ones serve the next free slots without reading the outbox
 * again. A candidate left from an earlier read is still its zone's head and still due:
 * only this loop sends, settles or defers the target's entries, each candidate is taken
 * once, and a retry reads them again (it falls due before them). News (a new zone) waits
 * until the candidates run out. The outbox is read only when something changed or a retry
 * falls due. */
bool webhook_pump(struct webhook *w, struct store *st, CURLM *multi, int64_t now_ms)
{
	size_t conc = (size_t)w->cfg.concurrency;
	bool fresh = false;

	if (w->ninflight >= conc)
		return false;
	if (w->cfg.format == WEBHOOK_SLACK && now_ms < w->next_send_ms)
		return false;
	if (now_ms < w->paused_until_ms)
		return false;
	if (!w->dirty && now_ms < w->due_ms)
		return false;
	w->dirty = false;
	while (w->ninflight < conc) {
		if (w->icand == w->ncand) {
			int rc;

			if (fresh)
				break;
			/* so many delivered entries wait for their deletes that the commit
			 * must be failing: the caller commits them first, then pumps again */
			if (w->nsettled >= SETTLED_MAX) {
				w->dirty = true;
				return true;
			}
			cand_drop(w);
			size_t rows = conc + CAND_EXTRA;
			if (w->cfg.order == WEBHOOK_ORDER_NONE)
				rc = store_outbox_due(st, w->target, now_ms, w->settled,
				                      w->nsettled, rows, &w->cand, &w->ncand);
			else
				rc = store_outbox_heads(st, w->target, now_ms, w->settled,
				                        w->nsettled, rows, &w->cand, &w->ncand);
			if (rc < 0) {
				log_warnx("%s: outbox: %s", w->target, store_errmsg(st));
				/* try again in a second, not in a tight loop */
				w->due_ms = now_ms + WEBHOOK_RECHECK_MS;
				return false;
			}
			/* an entry in flight now may be settled before its turn comes: it
			 * must not be a candidate */
			size_t k = 0;
			for (size_t i = 0; i < w->ncand; i++) {
				if (entry_inflight(w, w->cand[i].id))
					store_entry_release(&w->cand[i]);
				else
					w->cand[k++] = w->cand[i];
			}
			w->ncand = k;
			fresh = true;
			continue;
		}
		const struct store_entry *e = &w->cand[w->icand++];
		if (start(w, st, multi, e, now_ms) < 0) {
			log_warnx("%s: unable to start a request (out of memory)", w->target);
			w->icand--; /* taken again at the next pump */
			break;
		}
		if (w->cfg.format == WEBHOOK_SLACK) {
			/* Slack allows about one message per second per webhook */
			w->next_send_ms = now_ms + WEBHOOK_SLACK_PACE_MS;
			break;
		}
	}
	/* full: the next answer marks w dirty and nothing starts before it, so the next-due
	 * query (as costly as the fetch) would be wasted */
	if (w->ninflight >= conc)
		return false;
	/* when to look again without news: the next retry, or a second from now for entries
	 * put back by another process (dlq replay) and for heads that could not start yet */
	int64_t due = w->cfg.order == WEBHOOK_ORDER_NONE ? store_outbox_next_due_any(st, w->target)
	                                                 : store_outbox_next_due(st, w->target);
	w->due_ms = now_ms + WEBHOOK_RECHECK_MS;
	if (due > now_ms && due < w->due_ms)
		w->due_ms = due;
	if (w->cfg.format == WEBHOOK_SLACK && w->next_send_ms > now_ms &&
	    w->next_send_ms < w->due_ms)
		w->due_ms = w->next_send_ms;
	return false;
}

int64_t webhook_next_due_ms(const struct webhook *w, int64_t now_ms)
{
	if (w->ninflight >= (size_t)w->cfg.concurrency)
		return -1; /* an answer comes first */
	int64_t t = w->dirty ? now_ms : w->due_ms;
	if (w->cfg.format == WEBHOOK_SLACK && w->next_send_ms > t)
		t = w->next_send_ms;
	if (w->paused_until_ms > t)
		t = w->paused_until_ms;
	return t;
}

/* The start of the answer's body for a reason or a log line: at most EXCERPT_MAX bytes cut
 * at a character, bytes that are not UTF-8 replaced and control characters blanked, so it
 * stores and prints as JSON whatever the receiver sent. */
static void answer_excerpt(const struct xfer *x, char *out, size_t outsz)
{
	char *clean = util_utf8_clean(x->resp.data ? x->resp.data : "");
	size_t n;

	out[0] = '\0';
	if (clean == NULL)
		return;
	n = util_utf8_cut(clean, outsz - 1 < EXCERPT_MAX ? outsz - 1 : EXCERPT_MAX, SIZE_MAX);
	memcpy(out, clean, n);
	out[n] = '\0';
	for (char *p = out; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	free(clean);
}

static void settle_retry(struct webhook *w, struct store *st, struct xfer *x, int64_t now_ms,
                         const char *why, int status)
{
	int64_t first = x->first_failed_ms ? x->first_failed_ms : now_ms;
	int64_t ra = retry_after_parse(x->retry_after, now_ms, RETRY_AFTER_MAX_MS);
	int64_t delay;

	if (now_ms - first >= w->max_retry_age_ms) {
		char reason[512];
		snprintf(reason, sizeof(reason), "retries expired after %d attempts: %s",
		         x->attempts + 1, why);
		settle_dead(w, st, x->id, x->msg_id, status, reason);
		return;
	}
	/* a Retry-After may lengthen the backoff, never shorten it: "0" or a past date from a
	 * struggling receiver must not turn into a retry storm */
	delay = retry_jitter_ms(
	    retry_backoff_ms(x->attempts, WEBHOOK_BACKOFF_MIN_MS, WEBHOOK_BACKOFF_MAX_MS), &w->rng);
	delay = retry_delay_ms(delay, ra);
	/* never wait past the end of the retry age: the attempt then is the last one */
	if (first + w->max_retry_age_ms - now_ms < delay)
		delay = first + w->max_retry_age_ms - now_ms;
	if (!w->failing) {
		char stxt[16];
		snprintf(stxt, sizeof(stxt), "%d", status);
		log_fields(LOG_LEVEL_WARN,
		           (struct log_field[]){{"target", w->target},
		                                {"msg_id", x->msg_id},
		                                {"status", status ? stxt : NULL},
		                                {NULL, NULL}},
		           "%s: %s, retrying in %lldms", w->target, why, (long long)delay);
	}
	w->failing = true;
	/* a 429 or a Retry-After speaks for the endpoint, not for this entry: nothing new
	 * starts until this entry's retry, whatever the order (the transfers already running
	 * finish) */
	if ((status == 429 || x->retry_after[0] != '\0') && now_ms + delay > w->paused_until_ms)
		w->paused_until_ms = now_ms + delay;
	/* the deferred entry comes due before the candidates read with it: read them again */
	cand_drop(w);
	if (store_outbox_defer(st, x->id, now_ms + delay, why) < 0)
		log_warnx("%s: unable to record the retry: %s", w->target, store_errmsg(st));
	metrics_add(M_RETRIED, 1);
	tmetrics_add(TM_FAILURES, w->target, 1);
}

bool webhook_done(struct webhook *w, struct store *st, CURLM *multi, CURL *easy, CURLcode result,
                  int64_t now_ms)
{
	struct xfer **pp = &w->inflight, *x = NULL;
	long status = 0;
	char why[512];

	for (; *pp; pp = &(*pp)->next) {
		if ((*pp)->easy == easy) {
			x = *pp;
			*pp = x->next;
			w->ninflight--;
			break;
		}
	}
	if (x == NULL)
		return false;
	w->dirty = true; /* a slot is free and its zone may go on */
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	if (result != CURLE_OK) {
		snprintf(why, sizeof(why), "%s", curl_easy_strerror(result));
		settle_retry(w, st, x, now_ms, why, 0);
	} else if (status >= 200 && status < 300) {
		/* a 2xx is a delivery whatever it says: Slack documents "ok", but a dead letter
		 * here would be sent twice by a replay */
		if (w->cfg.format == WEBHOOK_SLACK && x->resp.len > 0 &&
		    strncmp(x->resp.data, "ok", 2) != 0 && !w->odd_answer_logged) {
			answer_excerpt(x, why, sizeof(why));
			log_warnx("%s: HTTP %ld with the answer '%s' rather than 'ok', counted as "
			          "delivered (logged once)",
			          w->target, status, why);
			w->odd_answer_logged = true;
		}
		settle_delivered(w, st, x->id);
		if (w->failing)
			log_info("%s: delivering again", w->target);
		if (log_enabled(LOG_LEVEL_DEBUG)) {
			char stxt[16];
			snprintf(stxt, sizeof(stxt), "%ld", status);
			log_fields(LOG_LEVEL_DEBUG,
			           (struct log_field[]){{"target", w->target},
			                                {"msg_id", x->msg_id},
			                                {"zone_id", x->zone_id},
			                                {"status", stxt},
			                                {NULL, NULL}},
			           "%s: delivered %s", w->target, x->msg_id);
		}
		w->failing = false;
		metrics_add(M_DELIVERED, 1);
		tmetrics_add(TM_DELIVERIES, w->target, 1);
	} else if (status >= 500 || status == 408 || status == 429) {
		snprintf(why, sizeof(why), "HTTP %ld", status);
		settle_retry(w, st, x, now_ms, why, (int)status);
	} else {
		char excerpt[EXCERPT_MAX + 1];
		answer_excerpt(x, excerpt, sizeof(excerpt));
		snprintf(why, sizeof(why), "HTTP %ld%s%s", status, excerpt[0] ? ": " : "", excerpt);
		settle_dead(w, st, x->id, x->msg_id, (int)status, why);
	}
	xfer_free(x, multi, true);
	return true;
}
