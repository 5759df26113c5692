/* Retry timing shared by the API client, the poller, the MQTT reconnects and the webhooks:
 * exponential backoff with jitter, and the HTTP Retry-After header. Pure functions; the
 * caps are the caller's, since each peer tolerates a different wait. */
#ifndef TB_RETRY_H
#define TB_RETRY_H

#include <stdint.h>

/* xorshift64 step: cheap, good enough to spread retries; *state must not be 0. */
uint64_t retry_random(uint64_t *state);

/* The step after `attempts` failures: min_ms doubled each time, at most max_ms
 * (attempts <= 0 gives min_ms). Never overflows. */
int64_t retry_backoff_ms(int attempts, int64_t min_ms, int64_t max_ms);

/* The step after prev_ms: min_ms when prev_ms is 0 (healthy until now), else doubled, at
 * most max_ms. For callers that keep the current step rather than a count. */
int64_t retry_backoff_next(int64_t prev_ms, int64_t min_ms, int64_t max_ms);

/* Full jitter around a step: between half of ms and all of it, so that many zones or
 * targets failing together do not retry together. */
int64_t retry_jitter_ms(int64_t ms, uint64_t *state);

/* A Retry-After value (delay-seconds or an HTTP date, surrounding blanks allowed) as a delay
 * in ms from now_ms, clamped to [0, cap_ms] before any multiplication. -1 when value is
 * NULL, empty or neither form. A date in the past gives 0. */
int64_t retry_after_parse(const char *value, int64_t now_ms, int64_t cap_ms);

/* The wait before the next try: the jittered backoff, lengthened (never shortened) by the
 * server's Retry-After (retry_after_ms < 0: none sent). */
int64_t retry_delay_ms(int64_t backoff_ms, int64_t retry_after_ms);

#endif
