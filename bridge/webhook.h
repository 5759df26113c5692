/* Webhook publisher: formats an outbox entry for its webhook (json, slack, discord, teams,
 * cloudevents), signs it the Standard Webhooks way, sends it on the delivery loop's curl
 * multi handle, and settles the entry: 2xx acknowledged, 5xx/408/429/timeouts/connection
 * errors retried with backoff until max_retry_age, anything else a dead letter. */
#ifndef TB_WEBHOOK_H
#define TB_WEBHOOK_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge/store.h"
#include "config/config.h"

#define WEBHOOK_BACKOFF_MIN_MS 1000
#define WEBHOOK_BACKOFF_MAX_MS (5 * 60 * 1000)
#define WEBHOOK_SLACK_PACE_MS 1000
#define WEBHOOK_DISCORD_CONTENT_MAX 2000
#define WEBHOOK_DISCORD_DESCRIPTION_MAX 4096
#define WEBHOOK_SLACK_TEXT_MAX 3000

struct webhook;

/* A publisher for cfg (copied) under target name "webhook.<name>". NULL on ENOMEM. */
struct webhook *webhook_new(const struct cfg_webhook *cfg, int64_t max_retry_age_ms);
/* Takes w's transfers still running off multi; their entries stay in the outbox. */
void webhook_cancel_all(struct webhook *w, CURLM *multi);
void webhook_free(struct webhook *w); /* after webhook_cancel_all; NULL is fine */

/* The request for an entry as it would be sent at now_s (Unix seconds): the URL, the body
 * and the headers (a JSON object name -> value, new reference). 0, or -1 with err. */
int webhook_request(const struct cfg_webhook *cfg, const struct store_entry *e, int64_t now_s,
                    char **url, char **body, json_t **headers, char *err, size_t errsz);

/* For explain: {"target", "url", "headers", "body"} (new reference) or NULL. */
json_t *webhook_explain(const struct cfg_webhook *cfg, const struct store_entry *e, int64_t now_ms);

/* The delivery id (webhook-id, Idempotency-Key, CloudEvents id) of a message sent by rule
 * ("" when none) to target: "msg_" and 32 lower-case hex digits of SHA-256(msg_id NUL rule
 * NUL target). Stable across retries, restarts and versions; distinct when the body can
 * differ (another rule, another target); no '.' (Standard Webhooks). 0, or -1. */
#define WEBHOOK_ID_MAX 40
int webhook_delivery_id(const char *msg_id, const char *rule, const char *target,
                        char out[WEBHOOK_ID_MAX]);

/* "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>" for each secret, space separated,
 * into out. 0, or -1 for a secret that is not whsec_<base64>. */
int webhook_sign(char *const *secrets, size_t nsecrets, const char *id, int64_t ts,
                 const char *body, size_t body_len, char *out, size_t outsz);

/* Delivery loop hooks. pump starts transfers for due entries (up to the webhook's
 * concurrency; with order zone one at a time per zone so each zone stays in order, with
 * order none any due entry; after a 429 or a Retry-After none until that entry's retry,
 * the endpoint's limit); done settles a finished
 * transfer that belongs to w (returns false if easy is not w's). next_due_ms: wall ms when
 * pump wants to run again (-1: only after a transfer ends). mark_dirty: new entries may be
 * in the outbox (the delivery loop calls it when the poller wakes it). */
bool webhook_pump(struct webhook *w, struct store *st, CURLM *multi, int64_t now_ms);
bool webhook_done(struct webhook *w, struct store *st, CURLM *multi, CURL *easy, CURLcode result,
                  int64_t now_ms);
int64_t webhook_next_due_ms(const struct webhook *w, int64_t now_ms);
void webhook_mark_dirty(struct webhook *w);

/* A delivered entry (2xx) stays in the outbox until the delivery loop commits its
 * acknowledgements; until then pump's reads skip it as if deleted (nothing sends it again,
 * and its zone's next entry may go). settled: how many wait. delete_settled deletes them in
 * the caller's transaction (0 or -1); settled_committed forgets them once that transaction
 * committed. pump returns true when so many wait that the commit must be failing: the
 * caller commits them, then pumps again. */
size_t webhook_settled(const struct webhook *w);
int webhook_delete_settled(struct webhook *w, struct store *st);
void webhook_settled_committed(struct webhook *w);

#endif
