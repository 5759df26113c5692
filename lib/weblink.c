/* Web links (see weblink.h): one encoding of the time and of every parameter, so a link
 * looks the same wherever the bridge writes it. */
#include "lib/weblink.h"

#include <stdbool.h>
#include <string.h>

static int add_param(struct buf *b, bool *first, const char *name, const char *value)
{
	if (value == NULL)
		return 0;
	if (buf_puts(b, *first ? "?" : "&") < 0 || buf_puts(b, name) < 0 || buf_puts(b, "=") < 0)
		return -1;
	*first = false;
	return buf_urlencode(b, value);
}

static int add_page(struct buf *b, const char *base_url, const char *page)
{
	size_t len = strlen(base_url);

	while (len > 0 && base_url[len - 1] == '/')
		len--;
	return buf_append(b, base_url, len) < 0 || buf_puts(b, page) < 0 ? -1 : 0;
}

int weblink_at(struct buf *b, const char *base_url, const char *page, int64_t at_ms,
               const char *zone_id, const char *return_url)
{
	char at[UTIL_TIME_MAX];
	bool first = true;

	if (add_page(b, base_url, page) < 0)
		return -1;
	if (at_ms >= 0) {
		util_format_api(at_ms, at); /* "2020-06-12 15:03:09.019 UTC": seconds are enough */
		at[strcspn(at, ".")] = '\0';
		if (add_param(b, &first, "at", at) < 0)
			return -1;
	}
	if (add_param(b, &first, "zone", zone_id) < 0 ||
	    add_param(b, &first, "return_url", return_url) < 0)
		return -1;
	return 0;
}

int weblink_events_period(struct buf *b, const char *base_url, const char *timeline_id,
                          const char *date, const char *from_time, const char *to_time,
                          const char *zone_id, const char *return_url)
{
	bool first = true;

	if (add_page(b, base_url, "/events") < 0 ||
	    add_param(b, &first, "events%5Bdate%5D", date) < 0 ||
	    add_param(b, &first, "events%5Bfrom_time%5D", from_time) < 0 ||
	    add_param(b, &first, "events%5Bto_time%5D", to_time) < 0 ||
	    add_param(b, &first, "return_url", return_url) < 0 ||
	    add_param(b, &first, "timeline_id", timeline_id) < 0 ||
	    add_param(b, &first, "zone", zone_id) < 0)
		return -1;
	return 0;
}
