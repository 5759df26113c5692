/* Time zones and weekly time windows for rule schedules. Zones are read once from the TZif
 * files under /usr/share/zoneinfo (RFC 8536, v2+ 64-bit data and the POSIX TZ footer) into
 * offset tables; evaluation is a binary search, no setenv("TZ"), no allocation. */
#ifndef TB_SCHEDULE_H
#define TB_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tz;

/* Loads the zone "UTC" or an IANA name ("Europe/London") from dir (NULL: /usr/share/zoneinfo).
 * NULL with a message in err ("unknown time zone 'Europe/Lundon'") on a bad name, a missing
 * or malformed file, or ENOMEM. Caller frees with tz_free. */
struct tz *tz_load(const char *name, const char *dir, char *err, size_t errsz);
void tz_free(struct tz *tz);              /* NULL is fine */
const char *tz_name(const struct tz *tz); /* borrowed */
/* Offset east of UTC in seconds at Unix time t (seconds). */
int32_t tz_offset(const struct tz *tz, int64_t t);

/* One window: on the days in `days` (bit 0 = Monday .. bit 6 = Sunday) from `from_min` to
 * `to_min` minutes after local midnight. to_min <= from_min crosses midnight into the next
 * day; the day named is always the day the window starts. to_min may be 1440 ("24:00"). */
struct sched_window {
	uint8_t days;
	int from_min, to_min;
	const struct tz *tz; /* borrowed; NULL means UTC */
};

/* True if Unix time ms (UTC) falls inside the window. */
bool sched_window_holds(const struct sched_window *w, int64_t ms);

/* "Sat 14:03 Europe/London": the local day and time of ms in tz (NULL: UTC), into out. */
void sched_describe(const struct tz *tz, int64_t ms, char *out, size_t outsz);

/* "22:00" -> 1320 minutes; allow_24 accepts "24:00". 0, or -1 if not HH:MM. */
int sched_parse_hhmm(const char *s, bool allow_24, int *min);
/* "mon".."sun" (also "monday".."sunday", any case) -> 0..6, or -1. */
int sched_parse_day(const char *s);

#endif
