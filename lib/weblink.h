/* Links to the Tether web site (tether-api.md "Filter events on Web site", "Recording on Web
 * site"), written once: the message's links.web and links.recording_web are built here. */
#ifndef TB_WEBLINK_H
#define TB_WEBLINK_H

#include <stdint.h>

#include "lib/util.h"

/* Appends "<base_url><page>?at=<T>&zone=<zone_id>&return_url=<return_url>" to b, page being
 * "/events" or "/recordings". T is at_ms in UTC as "YYYY-MM-DD HH:MM:SS", URL-encoded like
 * every value: "2020-06-12%2015%3A03%3A09" (the docs' example writes the colons bare; both
 * decode to the same query, and this form is what every message has carried). at_ms < 0,
 * a NULL zone_id or a NULL return_url leave that parameter out; trailing '/' of base_url are
 * dropped. 0, or -1 when b refused to grow (its cap, or out of memory). */
int weblink_at(struct buf *b, const char *base_url, const char *page, int64_t at_ms,
               const char *zone_id, const char *return_url);

/* Appends the events page filtered to a period, parameters in the docs' order; NULL ones are
 * left out. No production caller yet: exported for tests and for the control-room views.
 * 0 or -1 as weblink_at. */
int weblink_events_period(struct buf *b, const char *base_url, const char *timeline_id,
                          const char *date, const char *from_time, const char *to_time,
                          const char *zone_id, const char *return_url);

#endif
