/* Time zones from TZif files and weekly windows. The offset table covers the file's
 * transitions; later times follow the POSIX TZ footer (std offset, or a DST rule in the
 * Jn / n / Mm.w.d forms), so 2040 summers are still summer. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/suggest.h"
#include "rules/schedule.h"

#define TZ_FILE_MAX (1024 * 1024)

enum rule_form { FORM_JULIAN1, FORM_JULIAN0, FORM_MONTH };

struct tz_rule {
	enum rule_form form;
	int n, m, w, d; /* Jn / n: n; Mm.w.d */
	int32_t time;   /* seconds after local midnight; may be negative or past 24h */
};

struct tz {
	char *name;
	int64_t *at;  /* transition times, ascending */
	int32_t *off; /* offset in effect from at[i] */
	size_t n;
	int32_t off0; /* before the first transition */
	bool has_footer;
	int32_t std_off, dst_off; /* footer, seconds east */
	bool has_dst;
	struct tz_rule start, end;
};

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (m 1..12). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = floor_div(y, 400);
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int64_t year_of_days(int64_t z)
{
	z += 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t y = yoe + era * 400;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int m = (int)(mp < 10 ? mp + 3 : mp - 9);
	return y + (m <= 2);
}

static bool is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_len(int64_t y, int m)
{
	static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	return m == 2 && is_leap(y) ? 29 : len[m - 1];
}

/* Unix time of the rule's moment in year y, given the offset in effect before it. */
static int64_t rule_time(const struct tz_rule *r, int64_t y, int32_t off)
{
	int64_t day;

	if (r->form == FORM_MONTH) {
		int64_t first = days_from_civil(y, r->m, 1);
		int dow_first = (int)((first + 4) % 7 + 7) % 7; /* 0 = Sunday */
		int mday = 1 + (r->d - dow_first + 7) % 7 + (r->w - 1) * 7;
		while (mday > month_len(y, r->m))
			mday -= 7;
		day = first + mday - 1;
	} else if (r->form == FORM_JULIAN1) {
		day = days_from_civil(y, 1, 1) + r->n - 1 + (is_leap(y) && r->n >= 60);
	} else {
		day = days_from_civil(y, 1, 1) + r->n;
	}
	return day * 86400 + r->time - off;
}

static int32_t footer_offset(const struct tz *tz, int64_t t)
{
	if (!tz->has_dst)
		return tz->std_off;
	int64_t y = year_of_days(floor_div(t + tz->std_off, 86400));
	int64_t s = rule_time(&tz->start, y, tz->std_off);
	int64_t e = rule_time(&tz->end, y, tz->dst_off);
	bool dst = s < e ? (t >= s && t < e) : !(t >= e && t < s);
	return dst ? tz->dst_off : tz->std_off;
}

int32_t tz_offset(const struct tz *tz, int64_t t)
{
	if (tz == NULL)
		return 0;
	if (tz->n == 0 || t < tz->at[0])
		return tz->n == 0 && tz->has_footer ? footer_offset(tz, t) : tz->off0;
	if (t >= tz->at[tz->n - 1] && tz->has_footer)
		return footer_offset(tz, t);
	size_t lo = 0, hi = tz->n; /* at[lo] <= t < at[hi] */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (tz->at[mid] <= t)
			lo = mid;
		else
			hi = mid;
	}
	return tz->off[lo];
}

const char *tz_name(const struct tz *tz)
{
	return tz ? tz->name : "UTC";
}

void tz_free(struct tz *tz)
{
	if (tz == NULL)
		return;
	free(tz->name);
	free(tz->at);
	free(tz->off);
	free(tz);
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* POSIX TZ pieces. Each parser advances *s and returns 0, or -1. */
static int parse_name(const char **s)
{
	const char *p = *s;
	if (*p == '<') {
		while (*p && *p != '>')
			p++;
		if (*p != '>')
			return -1;
		*s = p + 1;
		return 0;
	}
	while (isalpha((unsigned char)*p))
		p++;
	if (p - *s < 3)
		return -1;
	*s = p;
	return 0;
}

static int parse_hms(const char **s, int32_t *out)
{
	const char *p = *s;
	int sign = 1;
	long h = 0, m = 0, sec = 0;
	char *end;

	if (*p == '+' || *p == '-')
		sign = *p++ == '-' ? -1 : 1;
	if (!isdigit((unsigned char)*p))
		return -1;
	h = strtol(p, &end, 10);
	p = end;
	if (*p == ':') {
		m = strtol(p + 1, &end, 10);
		p = end;
		if (*p == ':') {
			sec = strtol(p + 1, &end, 10);
			p = end;
		}
	}
	if (h > 167 || m > 59 || sec > 59)
		return -1;
	*out = (int32_t)(sign * (h * 3600 + m * 60 + sec));
	*s = p;
	return 0;
}

static int parse_rule(const char **s, struct tz_rule *r)
{
	const char *p = *s;
	char *end;

	if (*p == 'M') {
		r->form = FORM_MONTH;
		r->m = (int)strtol(p + 1, &end, 10);
		if (*end != '.')
			return -1;
		r->w = (int)strtol(end + 1, &end, 10);
		if (*end != '.')
			return -1;
		r->d = (int)strtol(end + 1, &end, 10);
		if (r->m < 1 || r->m > 12 || r->w < 1 || r->w > 5 || r->d < 0 || r->d > 6)
			return -1;
	} else if (*p == 'J') {
		r->form = FORM_JULIAN1;
		r->n = (int)strtol(p + 1, &end, 10);
		if (r->n < 1 || r->n > 365)
			return -1;
	} else if (isdigit((unsigned char)*p)) {
		r->form = FORM_JULIAN0;
		r->n = (int)strtol(p, &end, 10);
		if (r->n > 365)
			return -1;
	} else {
		return -1;
	}
	p = end;
	r->time = 7200;
	if (*p == '/') {
		p++;
		if (parse_hms(&p, &r->time) < 0)
			return -1;
	}
	*s = p;
	return 0;
}

static int parse_footer(struct tz *tz, const char *s)
{
	int32_t v;

	if (*s == '\0')
		return 0; /* empty footer: no rule beyond the table */
	if (parse_name(&s) < 0 || parse_hms(&s, &v) < 0)
		return -1;
	tz->std_off = -v;
	tz->has_footer = true;
	if (*s == '\0')
		return 0;
	if (parse_name(&s) < 0)
		return -1;
	tz->dst_off = tz->std_off + 3600;
	if (*s != ',' && *s != '\0') {
		if (parse_hms(&s, &v) < 0)
			return -1;
		tz->dst_off = -v;
	}
	if (*s != ',')
		return -1; /* DST without a rule: the old POSIX default is not worth guessing */
	s++;
	if (parse_rule(&s, &tz->start) < 0 || *s++ != ',' || parse_rule(&s, &tz->end) < 0 ||
	    *s != '\0')
		return -1;
	tz->has_dst = true;
	return 0;
}

/* Parses a TZif image into tz. 0, or -1 on a malformed file (errno EINVAL) or ENOMEM. */
static int parse_tzif(struct tz *tz, const unsigned char *p, size_t len)
{
	size_t tsize = 4, lsize = 4, off = 0;
	uint32_t cnt[6];

	if (len < 44 || memcmp(p, "TZif", 4) != 0)
		goto bad;
	for (int pass = 0; pass < 2; pass++) {
		if (len - off < 44 || memcmp(p + off, "TZif", 4) != 0)
			goto bad;
		for (int i = 0; i < 6; i++)
			cnt[i] = be32(p + off + 20 + 4 * i);
		size_t body = (size_t)cnt[3] * tsize + cnt[3] + (size_t)cnt[4] * 6 + cnt[5] +
		              (size_t)cnt[2] * (tsize + lsize) + cnt[1] + cnt[0];
		if (len - off - 44 < body)
			goto bad;
		if (pass == 0 && p[4] >= '2') {
			off += 44 + body;
			tsize = 8;
			continue;
		}
		break;
	}
	uint32_t timecnt = cnt[3], typecnt = cnt[4];
	const unsigned char *times = p + off + 44;
	const unsigned char *idx = times + (size_t)timecnt * tsize;
	const unsigned char *types = idx + timecnt;
	if (typecnt == 0)
		goto bad;
	tz->off0 = (int32_t)be32(types);
	if (timecnt > 0) {
		tz->at = calloc(timecnt, sizeof(*tz->at));
		tz->off = calloc(timecnt, sizeof(*tz->off));
		if (tz->at == NULL || tz->off == NULL)
			return -1;
	}
	for (uint32_t i = 0; i < timecnt; i++) {
		tz->at[i] = tsize == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
		if (idx[i] >= typecnt || (i > 0 && tz->at[i] <= tz->at[i - 1]))
			goto bad;
		tz->off[i] = (int32_t)be32(types + 6 * idx[i]);
	}
	tz->n = timecnt;
	if (tsize == 8) {
		size_t body = (size_t)cnt[3] * 9 + (size_t)cnt[4] * 6 + cnt[5] +
		              (size_t)cnt[2] * 12 + cnt[1] + cnt[0];
		const char *f = (const char *)p + off + 44 + body;
		size_t flen = len - off - 44 - body;
		if (flen >= 2 && f[0] == '\n') {
			const char *nl = memchr(f + 1, '\n', flen - 1);
			char footer[128];
			if (nl == NULL || (size_t)(nl - f - 1) >= sizeof(footer))
				goto bad;
			memcpy(footer, f + 1, (size_t)(nl - f - 1));
			footer[nl - f - 1] = '\0';
			if (parse_footer(tz, footer) < 0)
				goto bad;
		}
	}
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

static bool valid_name(const char *name)
{
	if (name[0] == '\0' || name[0] == '/' || strlen(name) > 200 || strstr(name, "..") != NULL)
		return false;
	for (const char *c = name; *c; c++)
		if (!isalnum((unsigned char)*c) && strchr("_-+/", *c) == NULL)
			return false;
	return true;
}

struct tz_pick {
	const char *want;
	char best[256];
	int bestd;
	int files; /* a bound on the walk */
};

/* Walks dir/prefix for zone files (names start with a capital letter; posix/ and right/
 * are copies) and keeps the closest to pick->want, ignoring case. */
static void tz_walk(const char *dir, const char *prefix, int depth, struct tz_pick *pick)
{
	char path[768], name[256];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s%s%s", dir, prefix[0] ? "/" : "", prefix);
	if (depth > 3 || (d = opendir(path)) == NULL)
		return;
	while ((de = readdir(d)) != NULL && pick->files < 5000) {
		if (!isupper((unsigned char)de->d_name[0]) || strchr(de->d_name, '.') != NULL)
			continue;
		if ((size_t)snprintf(name, sizeof(name), "%s%s%s", prefix, prefix[0] ? "/" : "",
		                     de->d_name) >= sizeof(name))
			continue;
		pick->files++;
		if (de->d_type == DT_DIR) {
			tz_walk(dir, name, depth + 1, pick);
			continue;
		}
		int dist = suggest_distance(pick->want, name, true);
		if (dist < pick->bestd && suggest_close(pick->want, dist)) {
			pick->bestd = dist;
			snprintf(pick->best, sizeof(pick->best), "%s", name);
		}
	}
	closedir(d);
}

/* "unknown time zone 'x'", with the closest zone name in dir when one is close. */
static void tz_unknown(const char *name, const char *dir, char *err, size_t errsz)
{
	struct tz_pick pick = {.want = name, .bestd = SUGGEST_FAR};

	if (strcasecmp(name, "UTC") != 0)
		tz_walk(dir ? dir : "/usr/share/zoneinfo", "", 0, &pick);
	else
		snprintf(pick.best, sizeof(pick.best), "UTC");
	if (pick.best[0] != '\0')
		snprintf(err, errsz, "unknown time zone '%s' (did you mean '%s'?)", name,
		         pick.best);
	else
		snprintf(err, errsz,
		         "unknown time zone '%s' (use an IANA name like "
		         "'Europe/London', or 'UTC')",
		         name);
}

struct tz *tz_load(const char *name, const char *dir, char *err, size_t errsz)
{
	struct tz *tz = NULL;
	unsigned char *data = NULL;
	FILE *f = NULL;
	char path[512];
	size_t len = 0;

	if (name == NULL || !valid_name(name)) {
		tz_unknown(name ? name : "", dir, err, errsz);
		return NULL;
	}
	tz = calloc(1, sizeof(*tz));
	if (tz == NULL || (tz->name = strdup(name)) == NULL)
		goto out_nomem;
	if (strcmp(name, "UTC") == 0)
		return tz;
	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "/usr/share/zoneinfo", name);
	f = fopen(path, "rb");
	if (f == NULL) {
		tz_unknown(name, dir, err, errsz);
		goto out_free;
	}
	data = malloc(TZ_FILE_MAX);
	if (data == NULL)
		goto out_nomem;
	len = fread(data, 1, TZ_FILE_MAX, f);
	if (ferror(f) || len == TZ_FILE_MAX) {
		snprintf(err, errsz, "time zone '%s': unable to read '%s'", name, path);
		goto out_free;
	}
	if (parse_tzif(tz, data, len) < 0) {
		if (errno == ENOMEM)
			goto out_nomem;
		snprintf(err, errsz, "time zone '%s': '%s' is not a valid TZif file", name, path);
		goto out_free;
	}
	free(data);
	fclose(f);
	return tz;
out_nomem:
	snprintf(err, errsz, "out of memory");
out_free:
	free(data);
	if (f)
		fclose(f);
	tz_free(tz);
	return NULL;
}

/* Local Monday-based weekday (0..6) and minute of day (0..1439) of ms in tz. */
static void local_dm(const struct tz *tz, int64_t ms, int *dow, int *minute)
{
	int64_t t = floor_div(ms, 1000);
	int64_t local = t + tz_offset(tz, t);
	int64_t days = floor_div(local, 86400);
	*dow = (int)(((days + 3) % 7 + 7) % 7);
	*minute = (int)((local - days * 86400) / 60);
}

bool sched_window_holds(const struct sched_window *w, int64_t ms)
{
	int d, m;

	local_dm(w->tz, ms, &d, &m);
	int prev = (d + 6) % 7;
	if (w->from_min < w->to_min)
		return (w->days >> d & 1) && m >= w->from_min && m < w->to_min;
	return ((w->days >> d & 1) && m >= w->from_min) || ((w->days >> prev & 1) && m < w->to_min);
}

static const char *const day_names[7] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
static const char *const day_long[7] = {"monday", "tuesday",  "wednesday", "thursday",
                                        "friday", "saturday", "sunday"};

void sched_describe(const struct tz *tz, int64_t ms, char *out, size_t outsz)
{
	int d, m;

	local_dm(tz, ms, &d, &m);
	snprintf(out, outsz, "%c%s %02d:%02d %s", toupper((unsigned char)day_names[d][0]),
	         day_names[d] + 1, m / 60, m % 60, tz_name(tz));
}

int sched_parse_hhmm(const char *s, bool allow_24, int *min)
{
	if (s == NULL || !isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
	    s[2] != ':' || !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]) ||
	    s[5] != '\0')
		return -1;
	int h = (s[0] - '0') * 10 + s[1] - '0';
	int m = (s[3] - '0') * 10 + s[4] - '0';
	if (m > 59 || h > 24 || (h == 24 && (!allow_24 || m != 0)))
		return -1;
	*min = h * 60 + m;
	return 0;
}

int sched_parse_day(const char *s)
{
	for (int i = 0; i < 7; i++)
		if (strcasecmp(s, day_names[i]) == 0 || strcasecmp(s, day_long[i]) == 0)
			return i;
	return -1;
}
