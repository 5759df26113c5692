/* Backoff, jitter and Retry-After: see retry.h. */
#include "lib/retry.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#define RETRY_AFTER_TEXT_MAX 64 /* an HTTP date is 29 characters */

uint64_t retry_random(uint64_t *state)
{
	uint64_t x = *state ? *state : 0x9e3779b97f4a7c15ULL;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

int64_t retry_backoff_ms(int attempts, int64_t min_ms, int64_t max_ms)
{
	int64_t ms = min_ms;

	for (int i = 0; i < attempts && ms < max_ms; i++)
		ms = ms > max_ms / 2 ? max_ms : ms * 2;
	return ms < max_ms ? ms : max_ms;
}

int64_t retry_backoff_next(int64_t prev_ms, int64_t min_ms, int64_t max_ms)
{
	if (prev_ms <= 0)
		return min_ms < max_ms ? min_ms : max_ms;
	return prev_ms > max_ms / 2 ? max_ms : prev_ms * 2;
}

int64_t retry_jitter_ms(int64_t ms, uint64_t *state)
{
	if (ms <= 1)
		return ms;
	return ms / 2 + (int64_t)(retry_random(state) % (uint64_t)(ms / 2 + 1));
}

int64_t retry_after_parse(const char *value, int64_t now_ms, int64_t cap_ms)
{
	char v[RETRY_AFTER_TEXT_MAX];
	size_t n;
	time_t when;

	if (value == NULL)
		return -1;
	while (*value == ' ' || *value == '\t')
		value++;
	n = strlen(value);
	while (n > 0 && isspace((unsigned char)value[n - 1]))
		n--;
	if (n == 0 || n >= sizeof(v))
		return -1;
	memcpy(v, value, n);
	v[n] = '\0';
	if (strspn(v, "0123456789") == n) {
		/* compare digit by digit before any multiplication: 20 digits overflow int64 */
		int64_t s = 0, cap_s = cap_ms / 1000;
		for (size_t i = 0; i < n && s <= cap_s; i++)
			s = s * 10 + (v[i] - '0');
		return s > cap_s ? cap_ms : s * 1000;
	}
	when = curl_getdate(v, NULL);
	if (when < 0)
		return -1;
	/* time_t seconds against a cap in seconds: no multiplication can overflow */
	int64_t now_s = now_ms / 1000;
	if ((int64_t)when <= now_s)
		return 0;
	if ((int64_t)when - now_s > cap_ms / 1000)
		return cap_ms;
	int64_t d = (int64_t)when * 1000 - now_ms;
	return d > 0 ? d : 0;
}

int64_t retry_delay_ms(int64_t backoff_ms, int64_t retry_after_ms)
{
	return retry_after_ms > backoff_ms ? retry_after_ms : backoff_ms;
}
