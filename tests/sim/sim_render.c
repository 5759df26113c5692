/* JSON:API documents with exactly the keys, order and value types of the examples in
 * tether-api.md, written straight into a buf (a window of 100k events must stay fast).
 * Times carry the zone's offset and milliseconds. Selection lives here; storage does not. */
#include "tests/sim/sim.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define JSONAPI "\"jsonapi\":{\"version\":\"1.0\"}"

int sim_json_str(struct buf *b, const char *s)
{
	const char *run = s;

	if (buf_append(b, "\"", 1) < 0)
		return -1;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char esc[8];
		if (c != '"' && c != '\\' && c >= 0x20)
			continue;
		if (buf_append(b, run, (size_t)(s - run)) < 0)
			return -1;
		if (c == '"' || c == '\\')
			snprintf(esc, sizeof(esc), "\\%c", c);
		else
			snprintf(esc, sizeof(esc), "\\u%04x", c);
		if (buf_puts(b, esc) < 0)
			return -1;
		run = s + 1;
	}
	if (buf_append(b, run, (size_t)(s - run)) < 0)
		return -1;
	return buf_append(b, "\"", 1);
}

static int put_time(struct buf *b, int64_t ms, int off)
{
	char t[UTIL_TIME_MAX];
	util_format_iso(ms, off, t);
	return buf_printf(b, "\"%s\"", t);
}

static long since_midnight(int64_t ms, int off)
{
	int64_t local = ms / 1000 + (int64_t)off * 60;
	int64_t r = local % 86400;
	return (long)(r < 0 ? r + 86400 : r);
}

static void local_tm(int64_t ms, int off, struct tm *tm)
{
	time_t t = (time_t)(ms / 1000 + (int64_t)off * 60);
	gmtime_r(&t, tm);
}

/* Appends ,"has_NAME":true|false for flags [from, to] at p; returns the new end. */
static char *put_flags(char *p, const struct sim_event *e, int from, int to)
{
	for (int f = from; f <= to; f++) {
		const char *v = e->flags & (1u << f) ? "true" : "false";
		size_t n = strlen(sim_flag_names[f]), vn = strlen(v);
		memcpy(p, ",\"has_", 6);
		memcpy(p + 6, sim_flag_names[f], n);
		memcpy(p + 6 + n, "\":", 2);
		memcpy(p + 8 + n, v, vn);
		p += 8 + n + vn;
	}
	*p = '\0';
	return p;
}

/* One formatted write per event: a window of 100k events is a few hundred milliseconds. */
int sim_render_event(struct sim *s, struct buf *b, const struct sim_event *e, int64_t now)
{
	const struct sim_zone *z = e->zone;
	int off = z->offset_min;
	int64_t end = e->ends_at;
	char flags1[1024], flags2[256], st[UTIL_TIME_MAX], et[UTIL_TIME_MAX + 2];
	char up[UTIL_TIME_MAX], cr[UTIL_TIME_MAX], ends_sec[24];

	if (end < 0) {
		if (s->opts.open_ends_at == SIM_OPEN_START)
			end = e->starts_at;
		else if (s->opts.open_ends_at == SIM_OPEN_NOW)
			end = now > e->starts_at ? now : e->starts_at;
	}
	put_flags(flags1, e, SIM_F_PIR, SIM_F_TMA);
	put_flags(flags2, e, SIM_F_AUTO_REGISTER, SIM_F_NETWORK_CHANGE);
	util_format_iso(e->starts_at, off, st);
	util_format_iso(e->updated_at, off, up);
	util_format_iso(e->created_at, off, cr);
	if (end >= 0) {
		char t[UTIL_TIME_MAX];
		util_format_iso(end, off, t);
		snprintf(et, sizeof(et), "\"%s\"", t);
		snprintf(ends_sec, sizeof(ends_sec), "%ld", since_midnight(end, off));
	} else {
		snprintf(et, sizeof(et), "null");
		snprintf(ends_sec, sizeof(ends_sec), "null");
	}
	return buf_printf(
	    b,
	    "{\"id\":\"%s\",\"type\":\"events\",\"attributes\":{\"items_count\":%d,"
	    "\"duration\":%lld,\"motion\":%.2f,\"filesize\":%ld,\"severity\":\"%s\","
	    "\"starts_at\":\"%s\",\"ends_at\":%s%s,\"complete\":%s,\"flagged\":%s%s,"
	    "\"shared\":false,\"cloud\":false,\"starts_at_seconds_since_midnight\":%ld,"
	    "\"ends_at_seconds_since_midnight\":%s,\"updated_at\":\"%s\","
	    "\"created_at\":\"%s\",\"timeline_id\":\"%s\",\"zone_id\":\"%s\","
	    "\"location_id\":\"%s\",\"best_id\":\"%s\"}}",
	    e->id, e->items_count, (long long)(end >= 0 ? (end - e->starts_at) / 1000 : 0),
	    e->motion, e->filesize, sim_severities[e->severity], st, et, flags1,
	    e->complete ? "true" : "false", e->flagged ? "true" : "false", flags2,
	    since_midnight(e->starts_at, off), ends_sec, up, cr, z->timeline_id, z->id,
	    z->location_id, e->best_id);
}

int sim_render_plate(struct buf *b, const struct sim_plate *p)
{
	const struct sim_zone *z = p->zone;
	int off = z->offset_min, rc = 0;

	rc |= buf_printf(b,
	                 "{\"id\":\"%s\",\"type\":\"lprs\",\"attributes\":{\"flagged\":%s,"
	                 "\"has_picture\":%s,\"starts_at\":",
	                 p->id, p->flagged ? "true" : "false", p->has_picture ? "true" : "false");
	rc |= put_time(b, p->starts_at, off);
	rc |= buf_puts(b, ",\"plate_number\":");
	rc |= sim_json_str(b, p->plate_number);
	rc |= buf_puts(b, ",\"country\":");
	rc |= sim_json_str(b, p->country);
	rc |= buf_printf(b, ",\"starts_at_seconds_since_midnight\":%ld,\"updated_at\":",
	                 since_midnight(p->starts_at, off));
	rc |= put_time(b, p->updated_at, off);
	rc |= buf_puts(b, ",\"created_at\":");
	rc |= put_time(b, p->created_at, off);
	rc |= buf_printf(b,
	                 ",\"timeline_id\":\"%s\",\"event_id\":\"%s\",\"camera_id\":\"%s\","
	                 "\"agent_id\":\"%s\",\"zone_id\":\"%s\",\"location_id\":\"%s\"}}",
	                 z->timeline_id, p->event_id, z->camera_id, z->agent_id, z->id,
	                 z->location_id);
	return rc ? -1 : 0;
}

int sim_render_zone(struct buf *b, const struct sim_zone *z)
{
	int rc =
	    buf_printf(b, "{\"id\":\"%s\",\"type\":\"zones\",\"attributes\":{\"name\":", z->id);
	rc |= sim_json_str(b, z->name);
	rc |= buf_puts(b, "}}");
	return rc ? -1 : 0;
}

int sim_render_perspective(struct buf *b, const struct sim_perspective *p, struct sim_zone **zones,
                           size_t nzones)
{
	int rc = buf_printf(b,
	                    "{\"id\":\"%s\",\"type\":\"perspectives\",\"attributes\":{"
	                    "\"layout\":\"%s\",\"zone_ids\":[",
	                    p->id, p->layout);
	bool first = true;
	for (size_t i = 0; i < nzones; i++) {
		if (zones[i]->deleted || strcmp(zones[i]->timeline_id, p->timeline_id) != 0)
			continue;
		rc |= buf_printf(b, "%s\"%s\"", first ? "" : ",", zones[i]->id);
		first = false;
	}
	rc |= buf_puts(b, "],\"name\":");
	rc |= sim_json_str(b, p->name);
	rc |= buf_printf(b, ",\"timeline_id\":\"%s\",\"user_id\":\"%s\"}}", p->timeline_id,
	                 p->user_id);
	return rc ? -1 : 0;
}

static int put_hhmm(struct buf *b, const struct tm *tm)
{
	int h = tm->tm_hour % 12;
	return buf_printf(b, "%02d%02d%s", h == 0 ? 12 : h, tm->tm_min,
	                  tm->tm_hour < 12 ? "AM" : "PM");
}

int sim_render_recording(struct buf *b, const struct sim_recording *r, bool single)
{
	const struct sim_zone *z = r->zone;
	const struct sim_recording *prev = r > z->recs ? r - 1 : NULL;
	const struct sim_recording *next = r + 1 < z->recs + z->nrecs ? r + 1 : NULL;
	int off = z->offset_min, rc = 0;
	struct tm st, et;
	char path[64], host[64], q[160];

	local_tm(r->starts_at, off, &st);
	local_tm(r->ends_at, off, &et);
	snprintf(path, sizeof(path), "/recordings/clip%d", r->serial);
	snprintf(host, sizeof(host), "site%d.timeline.is", r->serial / 10);
	snprintf(q, sizeof(q), "recording%%5Bpath%%5D=%%2Frecordings%%2Fclip%d", r->serial);
	rc |= buf_printf(b,
	                 "{\"id\":\"%s\",\"type\":\"recordings\",\"attributes\":{"
	                 "\"agent_image\":true,\"agent_video\":true,\"checksum\":null,"
	                 "\"cloud_path\":null,\"cloud_snapshot\":false,\"cloud_thumbnail\":false,"
	                 "\"cloud_timelapse\":false,\"cloud_timelapse_error\":null,"
	                 "\"cloud_timelapse_interval\":null,\"cloud_video\":false,"
	                 "\"cloud_waveform\":false,\"created_at\":",
	                 r->id);
	rc |= put_time(b, r->created_at, off);
	rc |= buf_puts(b, ",\"ends_at\":");
	rc |= put_time(b, r->ends_at, off);
	rc |= buf_printf(b,
	                 ",\"ends_at_seconds_since_midnight\":%ld,\"filesize\":0,"
	                 "\"flagged\":%s,\"motion\":0.0,\"object_count\":0,\"path\":\"%s\","
	                 "\"skip_notify\":false,\"starts_at\":",
	                 since_midnight(r->ends_at, off), r->flagged ? "true" : "false", path);
	rc |= put_time(b, r->starts_at, off);
	rc |= buf_printf(b, ",\"starts_at_seconds_since_midnight\":%ld,\"updated_at\":",
	                 since_midnight(r->starts_at, off));
	rc |= put_time(b, r->created_at, off);
	rc |= buf_printf(b, ",\"seek_to_event\":0,\"epoch_time\":\"%02d%02d%04d-", st.tm_mday,
	                 st.tm_mon + 1, st.tm_year + 1900);
	rc |= put_hhmm(b, &st);
	rc |= buf_puts(b, "-");
	rc |= put_hhmm(b, &et);
	rc |= buf_printf(b,
	                 "\",\"agent_id\":\"%s\",\"camera_id\":\"%s\",\"device_id\":null,"
	                 "\"event_id\":\"%s\",\"flagged_by_id\":null,\"location_id\":\"%s\","
	                 "\"timeline_id\":\"%s\",\"unflagged_by_id\":null,\"zone_id\":\"%s\",",
	                 z->agent_id, z->camera_id, r->event_id, z->location_id, z->timeline_id,
	                 z->id);
	rc |= buf_printf(b,
	                 "\"urls\":{\"proxy\":\"/recordings/%s/view?token=%s\","
	                 "\"proxy_download\":\"/recordings/%s/download\","
	                 "\"proxy_snapshot\":\"/recordings/%s/snapshot\","
	                 "\"local\":\"lan-%s/api/v3/recordings/download.mp4?%s&token=%s\","
	                 "\"local_snapshot\":\"lan-%s/api/v3/recordings/snapshot?%s.jpg&token=%s\","
	                 "\"external\":\"external-%s/api/v3/recordings/download.mp4?%s&token=%s\","
	                 "\"external_snapshot\":\"external-%s/api/v3/recordings/snapshot?%s.jpg"
	                 "&token=%s\"},",
	                 r->id, r->token, r->id, r->id, host, q, r->token, host, q, r->token, host,
	                 q, r->token, host, q, r->token);
	rc |= buf_puts(b, "\"prev_recording_id\":");
	rc |= prev ? buf_printf(b, "\"%s\"", prev->id) : buf_puts(b, "null");
	rc |= buf_puts(b, ",\"next_recording_id\":");
	rc |= next ? buf_printf(b, "\"%s\"", next->id) : buf_puts(b, "null");
	if (single)
		rc |= buf_printf(b,
		                 "},\"relationships\":{\"timelapses\":{\"data\":["
		                 "{\"type\":\"timelapses\",\"id\":\"%lld\"},"
		                 "{\"type\":\"timelapses\",\"id\":\"%lld\"}]}}}",
		                 70240479760000LL + r->serial * 1000LL,
		                 70240479760000LL + r->serial * 1000LL + 160);
	else
		rc |= buf_puts(
		    b, "},\"relationships\":{\"timelapses\":{\"meta\":{\"included\":false}}}}");
	return rc ? -1 : 0;
}

int sim_render_recording_included(struct buf *b, const struct sim_recording *r)
{
	const struct sim_zone *z = r->zone;
	int rc = 0, off = z->offset_min, a = off < 0 ? -off : off;

	for (int k = 0; k < 2; k++) {
		long long id = 70240479760000LL + r->serial * 1000LL + k * 160;
		struct tm tm;
		local_tm(r->starts_at - 17000 + k * 5000, off, &tm);
		rc |= buf_printf(b,
		                 "%s{\"id\":\"%lld\",\"type\":\"timelapses\",\"attributes\":{"
		                 "\"id\":%lld,\"src\":\"/api/v3p/timelapse/%s/"
		                 "%04d-%02d-%02d%%20%02d:%02d:%02d%%20%c%02d%02d/thumbnail\"}}",
		                 k ? "," : "", id, id, z->id, tm.tm_year + 1900, tm.tm_mon + 1,
		                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, off < 0 ? '-' : '+',
		                 a / 60, a % 60);
	}
	return rc ? -1 : 0;
}

static bool event_open(const struct sim_event *e)
{
	return !e->complete || e->ends_at < 0;
}

int sim_doc_events_window(struct sim *s, struct buf *b, struct sim_zone *z, bool has_from,
                          int64_t from, bool has_to, int64_t to, int64_t now)
{
	size_t i, end;
	bool first = true;
	int rc = buf_puts(b, "{\"data\":[");

	end = has_to ? sim_zone_events_lower(z, to) : z->nevents;
	if (!has_from) {
		i = 0;
	} else if (s->opts.to_bounds == SIM_TO_START) {
		i = sim_zone_events_lower(z, from);
	} else {
		/* Overlap reading: an event ending after from may start up to max_span earlier,
		 * an open one (its end is now) anywhere. */
		int64_t lo = from - z->max_span;
		for (size_t k = 0; k < z->nopen; k++)
			if (z->open[k]->starts_at < lo)
				lo = z->open[k]->starts_at;
		i = sim_zone_events_lower(z, lo);
	}
	for (; i < end && rc == 0; i++) {
		const struct sim_event *e = z->events[i];
		if (has_from && s->opts.to_bounds == SIM_TO_END) {
			int64_t eend =
			    event_open(e) ? (e->ends_at > now ? e->ends_at : now) : e->ends_at;
			if (eend < from)
				continue;
		}
		if (!first)
			rc |= buf_puts(b, ",");
		first = false;
		rc |= sim_render_event(s, b, e, now);
	}
	rc |= buf_puts(b, "]," JSONAPI "}");
	return rc ? -1 : 0;
}

int sim_doc_events_at(struct sim *s, struct buf *b, struct sim_zone *z, int64_t at, int64_t now)
{
	int64_t lo = at - z->max_span;
	size_t i, end = sim_zone_events_lower(z, at + 1);
	bool first = true;
	int rc = buf_puts(b, "{\"data\":[");

	for (size_t k = 0; k < z->nopen; k++)
		if (z->open[k]->starts_at < lo)
			lo = z->open[k]->starts_at;
	for (i = sim_zone_events_lower(z, lo); i < end && rc == 0; i++) {
		const struct sim_event *e = z->events[i];
		/* An open event contains every time after its start. */
		if (!event_open(e) && e->ends_at < at)
			continue;
		if (!first)
			rc |= buf_puts(b, ",");
		first = false;
		rc |= sim_render_event(s, b, e, now);
	}
	rc |= buf_puts(b, "]," JSONAPI "}");
	return rc ? -1 : 0;
}

int sim_doc_plates(struct buf *b, struct sim_zone *z, bool has_from, int64_t from, bool has_to,
                   int64_t to)
{
	size_t i = has_from ? sim_zone_plates_lower(z, from) : 0;
	size_t end = has_to ? sim_zone_plates_lower(z, to) : z->nplates;
	int rc = buf_puts(b, "{\"data\":[");

	for (size_t k = i; k < end && rc == 0; k++) {
		if (k > i)
			rc |= buf_puts(b, ",");
		rc |= sim_render_plate(b, z->plates[k]);
	}
	rc |= buf_puts(b, "]," JSONAPI "}");
	return rc ? -1 : 0;
}

/* The recordings examples carry no "jsonapi" member, so neither do these documents. */
int sim_doc_recordings(struct buf *b, struct sim_zone *z, bool has_at, int64_t at)
{
	bool first = true;
	int rc = buf_puts(b, "{\"data\":[");

	for (size_t i = 0; i < z->nrecs && rc == 0; i++) {
		const struct sim_recording *r = &z->recs[i];
		if (has_at && (at < r->starts_at || at >= r->ends_at))
			continue;
		if (!first)
			rc |= buf_puts(b, ",");
		first = false;
		rc |= sim_render_recording(b, r, false);
	}
	rc |= buf_puts(b, "]}");
	return rc ? -1 : 0;
}
