/* Builds the tether-bridge/v1 message from one Tether JSON:API resource (events or lprs)
 * and writes its JSON form. Every field read is checked for presence, type and size;
 * phases, backfill, watchlist matches and the rule name are left to the poller and rules. */
#include "rules/normalize.h"

#include <ctype.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "lib/util.h"
#include "lib/weblink.h"

/* Order of the events example in tether-api.md; bit i of message.flags is entry i. */
const char *const msg_flag_names[] = {
    "pir",
    "lpr",
    "motion",
    "video_loss",
    "video_blind",
    "video_defocus",
    "abnormal_audio",
    "loitering",
    "people_gathering",
    "fast_moving",
    "storage_failure",
    "storage_low_space",
    "temperature",
    "storage_not_exist",
    "alarm",
    "face",
    "tripwire",
    "intrusion",
    "parking",
    "car",
    "object_removal",
    "abandoned_object",
    "missing_object",
    "scene_change",
    "tma",
    "auto_register",
    "ip_conflict",
    "network_change",
};
const size_t msg_flag_count = sizeof(msg_flag_names) / sizeof(msg_flag_names[0]);

_Static_assert(sizeof(msg_flag_names) / sizeof(msg_flag_names[0]) <= 64,
               "message.flags is a 64-bit mask");

/* The API's keys of msg_flag_names, same order (spelt out: one snprintf per flag and event
 * was 3% of the poller's time). */
static const char *const flag_keys[] = {
    "has_pir",
    "has_lpr",
    "has_motion",
    "has_video_loss",
    "has_video_blind",
    "has_video_defocus",
    "has_abnormal_audio",
    "has_loitering",
    "has_people_gathering",
    "has_fast_moving",
    "has_storage_failure",
    "has_storage_low_space",
    "has_temperature",
    "has_storage_not_exist",
    "has_alarm",
    "has_face",
    "has_tripwire",
    "has_intrusion",
    "has_parking",
    "has_car",
    "has_object_removal",
    "has_abandoned_object",
    "has_missing_object",
    "has_scene_change",
    "has_tma",
    "has_auto_register",
    "has_ip_conflict",
    "has_network_change",
};
_Static_assert(sizeof(flag_keys) == sizeof(msg_flag_names), "one key per flag");

#define SCHEMA "tether-bridge/v1"
#define MOTION_MAX 1e15 /* plausible motion scores are far below; see read_event */

int msg_flag_index(const char *name)
{
	if (name == NULL)
		return -1;
	for (size_t i = 0; i < msg_flag_count; i++)
		if (strcmp(name, msg_flag_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *msg_kind_name(enum msg_kind k)
{
	return k == MSG_PLATE ? "plate" : "event";
}

const char *msg_phase_name(enum msg_phase p)
{
	switch (p) {
	case MSG_PHASE_UPDATE:
		return "update";
	case MSG_PHASE_COMPLETE:
		return "complete";
	default:
		return "new";
	}
}

size_t msg_utf8_seq(const char *s)
{
	return util_utf8_seq(s);
}

static int fail(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errsz > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* A short, printable copy of an input value for an error message: control characters
 * and bytes that are not UTF-8 become '?', and a long value is cut at a character. */
static const char *quote(const char *s, char out[48])
{
	size_t i = 0;

	while (*s != '\0') {
		size_t n = msg_utf8_seq(s);
		if (i + (n ? n : 1) > 40) {
			memcpy(out + i, "...", 3);
			i += 3;
			break;
		}
		if (n == 0 || (unsigned char)*s < 0x20 || *s == 0x7f) {
			out[i++] = '?';
			s++;
		} else {
			memcpy(out + i, s, n);
			i += n;
			s += n;
		}
	}
	out[i] = '\0';
	return out;
}

/* The member names of the slots, for messages and for nres_slot. */
static const char *const slot_names[NRES_FIELDS] = {
    [NRES_ID] = "id",
    [NRES_TYPE] = "type",
    [NRES_ATTRIBUTES] = "attributes",
    [NRES_STARTS_AT] = "starts_at",
    [NRES_UPDATED_AT] = "updated_at",
    [NRES_ZONE_ID] = "zone_id",
    [NRES_LOCATION_ID] = "location_id",
    [NRES_TIMELINE_ID] = "timeline_id",
    [NRES_ENDS_AT] = "ends_at",
    [NRES_COMPLETE] = "complete",
    [NRES_SEVERITY] = "severity",
    [NRES_MOTION] = "motion",
    [NRES_DURATION] = "duration",
    [NRES_PLATE_NUMBER] = "plate_number",
    [NRES_COUNTRY] = "country",
    [NRES_EVENT_ID] = "event_id",
};

/* "attributes." before the name of an attribute slot, "" before a member of the resource. */
static const char *slot_prefix(int slot)
{
	return slot > NRES_ATTRIBUTES ? "attributes." : "";
}

/* Copies the string of slot into dst. 1 when copied, 0 when absent or null and not
 * required (dst is then ""), -1 with err set otherwise. */
static int get_string(const struct nres *r, int slot, bool required, char *dst, size_t dstsz,
                      char *err, size_t errsz)
{
	const struct nres_value *v = &r->v[slot];
	const char *pfx = slot_prefix(slot), *key = slot_names[slot];

	dst[0] = '\0';
	if (v->type == NRES_ABSENT || v->type == NRES_NULL) {
		if (!required)
			return 0;
		return fail(err, errsz, "%s%s: %s", pfx, key,
		            v->type == NRES_ABSENT ? "missing" : "expected a string");
	}
	if (v->type != NRES_STRING)
		return fail(err, errsz, "%s%s: expected a string", pfx, key);
	if (v->nul)
		return fail(err, errsz, "%s%s: contains a NUL character", pfx, key);
	if (v->len >= dstsz)
		return fail(err, errsz, "%s%s: too long", pfx, key);
	memcpy(dst, v->text, v->len + 1);
	return 1;
}

/* True when s, which util_parse_time read as ms at offset off, is already RFC 3339
 * ("2020-06-12T16:03:09.019+01:00", "...09Z"): its date and time fields are the ones
 * util_format_iso writes (so the date exists and the seconds are there), then an optional
 * fraction and "Z" or "+hh:mm". */
static bool is_rfc3339(const char *s, int64_t ms, int off)
{
	char iso[UTIL_TIME_MAX];
	const char *p = s + 19;

	util_format_iso(ms, off, iso);
	if (strlen(s) < 20 || strncmp(s, iso, 19) != 0)
		return false;
	if (*p == '.') {
		if (!isdigit((unsigned char)*++p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (strcmp(p, "Z") == 0)
		return true;
	return (p[0] == '+' || p[0] == '-') && isdigit((unsigned char)p[1]) &&
	       isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
	       isdigit((unsigned char)p[5]) && p[6] == '\0';
}

/* A time field, parsed into *ms and written into dst as RFC 3339: as sent when it already
 * is (nothing lost), else rewritten with the offset the API gave ("2020-07-04 15:35:45
 * +0100" becomes "2020-07-04T15:35:45.000+01:00"; no offset or "UTC" is +00:00), since
 * consumers (CloudEvents `time`) take nothing else. Same returns as get_string; an empty
 * optional string counts as absent (open events). */
static int get_time(const struct nres *r, int slot, bool required, char *dst, size_t dstsz,
                    int64_t *ms, char *err, size_t errsz)
{
	char q[48], iso[UTIL_TIME_MAX];
	int off = 0;
	int rc = get_string(r, slot, required, dst, dstsz, err, errsz);

	if (rc <= 0)
		return rc;
	if (dst[0] == '\0' && !required)
		return 0;
	if (util_parse_time(dst, ms, &off) < 0)
		return fail(err, errsz, "attributes.%s: bad time '%s'", slot_names[slot],
		            quote(dst, q));
	if (!is_rfc3339(dst, *ms, off)) {
		util_format_iso(*ms, off, iso);
		if (strlen(iso) >= dstsz)
			return fail(err, errsz, "attributes.%s: too long", slot_names[slot]);
		memcpy(dst, iso, strlen(iso) + 1);
	}
	return 1;
}

/* Whole seconds from "duration" when it is a plausible number, else -1. */
static int64_t duration_field(const struct nres *r)
{
	const struct nres_value *v = &r->v[NRES_DURATION];

	if (v->type == NRES_INTEGER)
		return v->i >= 0 ? (int64_t)v->i : -1;
	if (v->type != NRES_REAL || !isfinite(v->d) || v->d < 0 || v->d > 1e15)
		return -1;
	return (int64_t)v->d;
}

/* Copies at most dstsz - 1 bytes of s, cutting at a character boundary and replacing
 * bytes that are not UTF-8 with U+FFFD (as templates do), so the result is valid UTF-8. */
static void copy_utf8(char *dst, size_t dstsz, const char *s)
{
	size_t o = 0;

	while (*s != '\0') {
		size_t n = msg_utf8_seq(s);
		if (n == 0) {
			if (o + 3 >= dstsz)
				break;
			memcpy(dst + o, "\xEF\xBF\xBD", 3);
			o += 3;
			s++;
			continue;
		}
		if (o + n >= dstsz)
			break;
		memcpy(dst + o, s, n);
		o += n;
		s += n;
	}
	dst[o] = '\0';
}

/* One link into dst, or -1 when it does not fit. */
static int build_link(char *dst, size_t dstsz, const char *base_url, const char *page,
                      const struct message *m)
{
	struct buf b;
	int rc;

	buf_init(&b, dstsz - 1);
	rc = weblink_at(&b, base_url, page, m->occurred_ms, m->zone_id, NULL);
	if (rc == 0)
		memcpy(dst, b.data, b.len + 1);
	buf_release(&b);
	return rc;
}

/* The recording link is the web link on another page: "/events" after the base (its
 * trailing '/' dropped, as weblink does) becomes "/recordings", the query kept, so the time
 * is formatted and the zone encoded once (for every event read, not only those sent). */
static int build_links(struct message *m, const char *base_url, char *err, size_t errsz)
{
	static const char web[] = "/events", rec[] = "/recordings";
	size_t base = strlen(base_url ? base_url : ""), tail;

	if (base == 0)
		return 0;
	while (base > 0 && base_url[base - 1] == '/')
		base--;
	if (build_link(m->link_web, sizeof(m->link_web), base_url, web, m) < 0)
		return fail(err, errsz, "links: base_url too long");
	tail = strlen(m->link_web) - base - (sizeof(web) - 1);
	if (base + sizeof(rec) - 1 + tail >= sizeof(m->link_recording))
		return fail(err, errsz, "links: base_url too long");
	memcpy(m->link_recording, m->link_web, base);
	memcpy(m->link_recording + base, rec, sizeof(rec) - 1);
	memcpy(m->link_recording + base + sizeof(rec) - 1, m->link_web + base + sizeof(web) - 1,
	       tail + 1);
	return 0;
}

static int read_event(const struct nres *r, struct message *m, char *err, size_t errsz)
{
	const struct nres_value *v = &r->v[NRES_MOTION];
	const struct nres_value *c = &r->v[NRES_COMPLETE];
	uint64_t bad;

	if (get_time(r, NRES_ENDS_AT, false, m->ended_at, sizeof(m->ended_at), &m->ended_ms, err,
	             errsz) < 0)
		return -1;
	if (c->type != NRES_ABSENT && c->type != NRES_TRUE && c->type != NRES_FALSE)
		return fail(err, errsz, "attributes.complete: expected true or false");
	m->complete = c->type == NRES_TRUE;
	if (get_string(r, NRES_SEVERITY, false, m->severity, sizeof(m->severity), err, errsz) < 0)
		return -1;
	if (v->type != NRES_ABSENT && v->type != NRES_NULL) {
		double d = v->type == NRES_INTEGER ? (double)v->i : v->d;
		if ((v->type != NRES_INTEGER && v->type != NRES_REAL) || !isfinite(d))
			return fail(err, errsz, "attributes.motion: expected a number");
		/* a score (0.0 in every API example): a value near DBL_MAX would be written
		 * with 15 digits as a number above DBL_MAX, which no JSON reader takes back */
		if (fabs(d) > MOTION_MAX)
			return fail(err, errsz, "attributes.motion: out of range");
		m->motion = d;
	}
	/* the first flag in msg_flag_names order that is not a boolean */
	if ((bad = r->flags_bad) != 0) {
		size_t i = 0;
		while (!(bad & (UINT64_C(1) << i)))
			i++;
		return fail(err, errsz, "attributes.%s: expected true or false", flag_keys[i]);
	}
	m->flags = r->flags_true;
	/* an open event has no duration yet, whatever placeholder (0) the API sends */
	m->duration_s = m->ended_ms >= 0 ? duration_field(r) : -1;
	if (m->duration_s < 0 && m->ended_ms >= 0 && m->ended_ms >= m->occurred_ms)
		m->duration_s = (m->ended_ms - m->occurred_ms) / 1000;
	return 0;
}

static int read_plate(const struct nres *r, struct message *m, char *err, size_t errsz)
{
	size_t o = 0;

	if (get_string(r, NRES_PLATE_NUMBER, true, m->plate_number, sizeof(m->plate_number), err,
	               errsz) < 0 ||
	    get_string(r, NRES_COUNTRY, false, m->country, sizeof(m->country), err, errsz) < 0 ||
	    get_string(r, NRES_EVENT_ID, false, m->event_id, sizeof(m->event_id), err, errsz) < 0)
		return -1;
	for (const char *p = m->plate_number; *p != '\0'; p++) {
		char c = *p;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
			m->plate_normalized[o++] = c;
	}
	m->plate_normalized[o] = '\0';
	m->complete = true; /* a read is final when it is made */
	return 0;
}

/* --- what the normaliser reads ---
 * Every attribute slot (read above) and every flag_keys entry: a name read there and
 * missing here would reach the normaliser as absent (test_normalize's read-set tests
 * fail). */
#define READ_SLOTS 128 /* a power of two, over twice the names read (41) */

/* The read attribute names in a hash table made once (linear probing): a lookup is one hash
 * and, for a name read, one memcmp (the reader asks for each of ~50 members of every
 * resource). */
static struct {
	const char *name[READ_SLOTS]; /* NULL: empty */
	size_t len[READ_SLOTS];
	int slot[READ_SLOTS];
} reads;
static pthread_once_t reads_once = PTHREAD_ONCE_INIT;

/* The length and three bytes (the last two and the middle one: the flags all start with
 * "has_"), mixed by one multiplication; a hash of every byte cost the poller 4% of its time
 * for the same spread (a probe and a quarter per name read, a probe and two thirds per name
 * not read, over the documented attributes). */
static size_t read_hash(const char *name, size_t len)
{
	const unsigned char *b = (const unsigned char *)name;
	uint32_t x = (uint32_t)len;

	_Static_assert(READ_SLOTS == 128, "the top 7 bits of the product");

	if (len >= 2)
		x |= (uint32_t)b[len - 1] << 8 | (uint32_t)b[len - 2] << 16 |
		     (uint32_t)b[len / 2] << 24;
	return (size_t)((x * 2654435761u) >> 25) & (READ_SLOTS - 1);
}

static void reads_add(const char *name, int slot)
{
	size_t len = strlen(name), h = read_hash(name, len);

	while (reads.name[h] != NULL)
		h = (h + 1) & (READ_SLOTS - 1);
	reads.name[h] = name;
	reads.len[h] = len;
	reads.slot[h] = slot;
}

static void reads_make(void)
{
	_Static_assert(NRES_FIELDS + sizeof(flag_keys) / sizeof(flag_keys[0]) < READ_SLOTS / 2,
	               "the table stays under half full");
	for (int i = NRES_ATTRIBUTES + 1; i < NRES_FIELDS; i++)
		reads_add(slot_names[i], i);
	for (size_t i = 0; i < msg_flag_count; i++)
		reads_add(flag_keys[i], NRES_FLAG + (int)i);
}

int nres_slot(int level, const char *name, size_t len)
{
	size_t h;

	if (level == 1) {
		for (int i = NRES_ID; i <= NRES_ATTRIBUTES; i++)
			if (len == strlen(slot_names[i]) && memcmp(name, slot_names[i], len) == 0)
				return i;
		return -1;
	}
	if (level != 2 || pthread_once(&reads_once, reads_make) != 0)
		return -1;
	for (h = read_hash(name, len); reads.name[h] != NULL; h = (h + 1) & (READ_SLOTS - 1))
		if (reads.len[h] == len && memcmp(reads.name[h], name, len) == 0)
			return reads.slot[h];
	return -1;
}

bool normalize_reads_member(const char *name, size_t len)
{
	return nres_slot(1, name, len) >= 0;
}

bool normalize_reads_attribute(const char *name, size_t len)
{
	return nres_slot(2, name, len) >= 0;
}

void nres_reset(struct nres *r, bool object)
{
	r->object = object;
	r->flags_true = 0;
	r->flags_bad = 0;
	for (int i = 0; i < NRES_FIELDS; i++)
		r->v[i].type = NRES_ABSENT;
}

void nres_set(struct nres *r, int slot, enum nres_type t, long long i, double d, const char *s,
              size_t len)
{
	struct nres_value *v;

	if (slot >= NRES_FLAG && slot < NRES_FLAG + (int)msg_flag_count) {
		uint64_t bit = UINT64_C(1) << (slot - NRES_FLAG);
		r->flags_true &= ~bit;
		r->flags_bad &= ~bit;
		if (t == NRES_TRUE)
			r->flags_true |= bit;
		else if (t != NRES_FALSE)
			r->flags_bad |= bit;
		return;
	}
	if (slot < 0 || slot >= NRES_FIELDS)
		return;
	if (slot == NRES_ATTRIBUTES) {
		for (int k = NRES_ATTRIBUTES + 1; k < NRES_FIELDS; k++)
			r->v[k].type = NRES_ABSENT;
		r->flags_true = 0;
		r->flags_bad = 0;
	}
	v = &r->v[slot];
	v->type = (unsigned char)t;
	v->i = i;
	v->d = d;
	if (t != NRES_STRING)
		return;
	v->len = len;
	v->nul = memchr(s, '\0', len) != NULL;
	if (len > NRES_TEXT_MAX)
		len = NRES_TEXT_MAX;
	memcpy(v->text, s, len);
	v->text[len] = '\0';
}

/* Sets slot from a jansson value. */
static void set_json(struct nres *r, int slot, const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_STRING:
		nres_set(r, slot, NRES_STRING, 0, 0, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		nres_set(r, slot, NRES_INTEGER, json_integer_value(v), 0, NULL, 0);
		break;
	case JSON_REAL:
		nres_set(r, slot, NRES_REAL, 0, json_real_value(v), NULL, 0);
		break;
	case JSON_TRUE:
		nres_set(r, slot, NRES_TRUE, 0, 0, NULL, 0);
		break;
	case JSON_FALSE:
		nres_set(r, slot, NRES_FALSE, 0, 0, NULL, 0);
		break;
	case JSON_NULL:
		nres_set(r, slot, NRES_NULL, 0, 0, NULL, 0);
		break;
	case JSON_OBJECT:
		nres_set(r, slot, NRES_OBJECT, 0, 0, NULL, 0);
		break;
	default:
		nres_set(r, slot, NRES_ARRAY, 0, 0, NULL, 0);
		break;
	}
}

void nres_from_json(const json_t *resource, struct nres *out)
{
	const json_t *a, *v;
	const char *k;
	size_t len;
	int slot;

	nres_reset(out, json_is_object(resource));
	out->offset = 0;
	json_object_keylen_foreach((json_t *)resource, k, len, v)
	{
		if ((slot = nres_slot(1, k, len)) >= 0)
			set_json(out, slot, v);
	}
	/* after the resource's members: setting "attributes" empties these */
	if (!json_is_object(a = json_object_get(resource, "attributes")))
		return;
	json_object_keylen_foreach((json_t *)a, k, len, v)
	{
		if ((slot = nres_slot(2, k, len)) >= 0)
			set_json(out, slot, v);
	}
}

bool nres_equal(const struct nres *a, const struct nres *b)
{
	if (a->object != b->object || a->flags_true != b->flags_true ||
	    a->flags_bad != b->flags_bad)
		return false;
	for (int i = 0; i < NRES_FIELDS; i++) {
		const struct nres_value *x = &a->v[i], *y = &b->v[i];
		if (x->type != y->type)
			return false;
		if (x->type == NRES_INTEGER && x->i != y->i)
			return false;
		if (x->type == NRES_REAL && memcmp(&x->d, &y->d, sizeof(x->d)) != 0)
			return false;
		if (x->type == NRES_STRING &&
		    (x->len != y->len || x->nul != y->nul ||
		     memcmp(x->text, y->text, (x->len < NRES_TEXT_MAX ? x->len : NRES_TEXT_MAX)) !=
		         0))
			return false;
	}
	return true;
}

/* The text of slot when get_string would copy it as it is into a field of dstsz bytes and
 * it is not empty; else NULL. */
static const char *plain_string(const struct nres *r, int slot, size_t dstsz)
{
	const struct nres_value *v = &r->v[slot];

	if (v->type != NRES_STRING || v->len == 0 || v->len >= dstsz || v->nul)
		return NULL;
	return v->text;
}

/* The message kind of the type member: 1 when it is "events" or "lprs" as far as a C
 * string reads it (as the normaliser has always compared it), 0 otherwise. */
static int read_kind(const struct nres *r, enum msg_kind *kind)
{
	const char *type = r->v[NRES_TYPE].text;

	if (r->v[NRES_TYPE].type != NRES_STRING)
		return 0;
	if (strcmp(type, "events") == 0)
		*kind = MSG_EVENT;
	else if (strcmp(type, "lprs") == 0)
		*kind = MSG_PLATE;
	else
		return 0;
	return 1;
}

bool normalize_dedup_key(const struct nres *r, enum msg_kind *kind, const char **source_id,
                         const char **revision, const char **zone_id)
{
	if (!r->object || r->v[NRES_ATTRIBUTES].type != NRES_OBJECT || !read_kind(r, kind))
		return false;
	*source_id = plain_string(r, NRES_ID, MSG_SHORT_MAX);
	*revision = plain_string(r, NRES_UPDATED_AT, MSG_TIME_MAX);
	*zone_id = plain_string(r, NRES_ZONE_ID, MSG_SHORT_MAX);
	return *source_id != NULL && *revision != NULL && *zone_id != NULL;
}

int normalize_nres(const struct nres *r, const char *zone_name, const char *base_url,
                   struct message *out, char *err, size_t errsz)
{
	const struct nres_value *type = &r->v[NRES_TYPE], *a = &r->v[NRES_ATTRIBUTES];
	char q[48];

	if (out == NULL)
		return fail(err, errsz, "no message to fill");
	memset(out, 0, sizeof(*out));
	out->phase = MSG_PHASE_NEW;
	out->ended_ms = -1;
	out->duration_s = -1;
	if (!r->object)
		return fail(err, errsz, "resource: expected an object");
	if (get_string(r, NRES_ID, true, out->source_id, sizeof(out->source_id), err, errsz) < 0)
		return -1;
	if (out->source_id[0] == '\0')
		return fail(err, errsz, "id: empty");
	if (type->type == NRES_ABSENT)
		return fail(err, errsz, "type: missing");
	if (type->type != NRES_STRING)
		return fail(err, errsz, "type: expected a string");
	if (!read_kind(r, &out->kind))
		return fail(err, errsz, "type: unsupported '%s'", quote(type->text, q));
	if (a->type == NRES_ABSENT)
		return fail(err, errsz, "attributes: missing");
	if (a->type != NRES_OBJECT)
		return fail(err, errsz, "attributes: expected an object");

	if (get_time(r, NRES_STARTS_AT, true, out->occurred_at, sizeof(out->occurred_at),
	             &out->occurred_ms, err, errsz) < 0 ||
	    get_string(r, NRES_UPDATED_AT, true, out->revision, sizeof(out->revision), err, errsz) <
	        0 ||
	    get_string(r, NRES_ZONE_ID, true, out->zone_id, sizeof(out->zone_id), err, errsz) < 0 ||
	    get_string(r, NRES_LOCATION_ID, false, out->location_id, sizeof(out->location_id), err,
	               errsz) < 0 ||
	    get_string(r, NRES_TIMELINE_ID, false, out->timeline_id, sizeof(out->timeline_id), err,
	               errsz) < 0)
		return -1;
	if (out->revision[0] == '\0')
		return fail(err, errsz, "attributes.updated_at: empty");
	if (out->zone_id[0] == '\0')
		return fail(err, errsz, "attributes.zone_id: empty");
	if ((out->kind == MSG_EVENT ? read_event(r, out, err, errsz)
	                            : read_plate(r, out, err, errsz)) < 0)
		return -1;

	copy_utf8(out->zone_name, sizeof(out->zone_name),
	          zone_name != NULL && zone_name[0] != '\0' ? zone_name : out->zone_id);
	if (build_links(out, base_url, err, errsz) < 0)
		return -1;
	message_set_id(out);
	return 0;
}

int normalize_resource(const json_t *resource, const char *zone_name, const char *base_url,
                       struct message *out, char *err, size_t errsz)
{
	struct nres r;

	nres_from_json(resource, &r);
	return normalize_nres(&r, zone_name, base_url, out, err, errsz);
}

void message_set_id(struct message *m)
{
	snprintf(m->id, sizeof(m->id), "%s:%s:%s", msg_kind_name(m->kind), m->source_id,
	         m->revision);
}

/* A JSON string, or null for "" when empty_null. Bytes that are not UTF-8 (fields the
 * rule engine filled from files) become U+FFFD rather than failing the whole message. */
static json_t *jstr(const char *s, bool empty_null)
{
	char fixed[MSG_NAME_MAX * 2];
	json_t *v;

	if (empty_null && s[0] == '\0')
		return json_null();
	v = json_string(s);
	if (v != NULL)
		return v;
	copy_utf8(fixed, sizeof(fixed), s);
	return json_string(fixed);
}

/* Sets o.key = v, stealing v; counts failures in *bad so building goes on. */
static void put(json_t *o, const char *key, json_t *v, int *bad)
{
	if (v == NULL || json_object_set_new(o, key, v) < 0)
		(*bad)++;
}

json_t *message_to_json(const struct message *m)
{
	json_t *o, *flags, *zone, *plate, *links;
	int bad = 0;

	if (m == NULL || (o = json_object()) == NULL)
		return NULL;
	put(o, "schema", json_string(SCHEMA), &bad);
	put(o, "id", jstr(m->id, false), &bad);
	put(o, "kind", json_string(msg_kind_name(m->kind)), &bad);
	put(o, "phase", json_string(msg_phase_name(m->phase)), &bad);
	put(o, "source_id", jstr(m->source_id, false), &bad);
	put(o, "occurred_at", jstr(m->occurred_at, false), &bad);
	put(o, "ended_at", jstr(m->ended_at, true), &bad);
	put(o, "duration_s", m->duration_s < 0 ? json_null() : json_integer(m->duration_s), &bad);
	put(o, "complete", json_boolean(m->complete), &bad);
	if (m->kind == MSG_EVENT)
		put(o, "severity", jstr(m->severity, false), &bad);
	if ((flags = json_array()) != NULL)
		for (size_t i = 0; i < msg_flag_count; i++)
			if (m->flags & (UINT64_C(1) << i) &&
			    json_array_append_new(flags, json_string(msg_flag_names[i])) < 0)
				bad++;
	put(o, "flags", flags, &bad);
	if (m->kind == MSG_EVENT)
		put(o, "motion", json_real(isfinite(m->motion) ? m->motion : 0.0), &bad);
	if ((zone = json_object()) != NULL) {
		put(zone, "id", jstr(m->zone_id, false), &bad);
		put(zone, "name", jstr(m->zone_name[0] ? m->zone_name : m->zone_id, false), &bad);
	}
	put(o, "zone", zone, &bad);
	put(o, "location_id", jstr(m->location_id, true), &bad);
	put(o, "timeline_id", jstr(m->timeline_id, true), &bad);
	if (m->kind == MSG_PLATE) {
		if ((plate = json_object()) != NULL) {
			put(plate, "number", jstr(m->plate_number, false), &bad);
			put(plate, "normalized", jstr(m->plate_normalized, false), &bad);
			put(plate, "country", jstr(m->country, true), &bad);
			if (m->watch_matched) {
				put(plate, "watchlist", jstr(m->watchlist, false), &bad);
				put(plate, "label", jstr(m->watch_label, true), &bad);
				put(plate, "distance", json_integer(m->watch_distance), &bad);
			}
		}
		put(o, "plate", plate, &bad);
		put(o, "event_id", jstr(m->event_id, true), &bad);
	}
	if ((links = json_object()) != NULL) {
		put(links, "web", jstr(m->link_web, true), &bad);
		put(links, "recording_web", jstr(m->link_recording, true), &bad);
	}
	put(o, "links", links, &bad);
	put(o, "backfill", json_boolean(m->backfill), &bad);
	put(o, "rule", jstr(m->rule, true), &bad);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* --- the message text ---
 * Written straight from the struct with yajl's generator, without the tree: building it
 * and json_dumps were a tenth of the poller's time. The text is byte for byte
 * json_dumps(message_to_json(m), MSG_DUMP_FLAGS), which stays the reference
 * (tests/unit/test_normalize.c and tests/fuzz/fuzz_dump.c compare the two): both
 * libraries escape '"', '\\' and the bytes below 0x20 alike (\b \f \n \r \t, the others
 * as \u00XX in upper case) and leave '/' (yajl_gen_escape_solidus off), DEL and
 * U+2028/2029 as they are; keys and separators are compact; integers are "%lld". */

/* The generator of one thread and the buffer it prints into, reused call after call
 * (a generator is three allocations and clears 0.5 KiB); the last message and its text
 * let a message delivered to several targets be written once (the rules copy it per
 * delivery, so equal bytes mean the same message; unequal padding only costs a miss). */
struct dump_ctx {
	yajl_gen g;
	yajl_alloc_funcs alloc; /* g's, with ctx pointing at this struct */
	bool alloc_failed;      /* gen_malloc gave out spare: g is refused */
	max_align_t spare[4];
	struct buf out;
	bool failed; /* an append failed: the text is cut and is not returned */
	bool cached; /* out holds the text of m */
	struct message m;
};
static pthread_key_t dump_key;
static pthread_once_t dump_once = PTHREAD_ONCE_INIT;
static bool dump_key_ok;

static void dump_ctx_free(void *p)
{
	struct dump_ctx *c = p;

	if (c == NULL)
		return;
	if (c->g != NULL)
		yajl_gen_free(c->g);
	buf_release(&c->out);
	free(c);
}

static void dump_key_make(void)
{
	dump_key_ok = pthread_key_create(&dump_key, dump_ctx_free) == 0;
}

/* yajl prints a text in small pieces (a quote, a key, a separator): a piece that fits
 * is copied straight in, and dump_into ends the text with its NUL (buf_append, a call and
 * a check of the cap per piece, was a quarter of the time). */
static void dump_print(void *ctx, const char *s, size_t n)
{
	struct dump_ctx *c = ctx;
	struct buf *b = &c->out;

	if (n < b->cap - b->len) {
		memcpy(b->data + b->len, s, n);
		b->len += n;
	} else if (!c->failed && buf_append(b, s, n) < 0) {
		c->failed = true;
	}
}

/* yajl_gen_alloc (2.1.0) writes to the output buffer it allocates for itself without
 * checking the allocation (yajl_buf_alloc), and yajl_gen_config(yajl_gen_print_callback)
 * frees that buffer at once. So a small allocation that fails gets the context's spare
 * block instead, which gen_free does not free, and dump_ctx_new then refuses the
 * generator: running out of memory gives NULL, not a write through NULL. */
static void *gen_malloc(void *ctx, size_t n)
{
	struct dump_ctx *c = ctx;
	void *p = malloc(n);

	if (p == NULL && n <= sizeof(c->spare) && !c->alloc_failed) {
		c->alloc_failed = true;
		return c->spare;
	}
	return p;
}

static void *gen_realloc(void *ctx, void *p, size_t n)
{
	(void)ctx;
	return realloc(p, n); /* yajl's own buffer only, which is not used */
}

static void gen_free(void *ctx, void *p)
{
	struct dump_ctx *c = ctx;

	if (p != (void *)c->spare)
		free(p);
}

/* A context with its generator printing into it; NULL on allocation failure. */
static struct dump_ctx *dump_ctx_new(void)
{
	struct dump_ctx *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	buf_init(&c->out, 0);
	c->alloc = (yajl_alloc_funcs){gen_malloc, gen_realloc, gen_free, c};
	if ((c->g = yajl_gen_alloc(&c->alloc)) != NULL)
		yajl_gen_config(c->g, yajl_gen_print_callback, dump_print, c);
	if (c->g == NULL || c->alloc_failed) {
		dump_ctx_free(c);
		return NULL;
	}
	return c;
}

#define GEN_KEY(g, k) yajl_gen_string(g, (const unsigned char *)(k), sizeof(k) - 1)

/* As jstr: null for "" when empty_null; bytes that are not UTF-8 become U+FFFD, in the
 * same bounded copy (a long field full of them is cut alike). */
static yajl_gen_status gen_str(yajl_gen g, const char *s, bool empty_null)
{
	char fixed[MSG_NAME_MAX * 2];
	size_t n = 0, k;

	if (empty_null && s[0] == '\0')
		return yajl_gen_null(g);
	while (s[n] != '\0') {
		if ((unsigned char)s[n] < 0x80)
			n++;
		else if ((k = msg_utf8_seq(s + n)) != 0)
			n += k;
		else
			break;
	}
	if (s[n] != '\0') {
		copy_utf8(fixed, sizeof(fixed), s);
		s = fixed;
		n = strlen(fixed);
	}
	return yajl_gen_string(g, (const unsigned char *)s, n);
}

/* A real as jansson writes it with JSON_REAL_PRECISION(15): "%.15g" with the locale's
 * decimal point made '.', then ".0" when there is neither '.' nor 'e' (so it reads back
 * as a real), and the exponent without '+' or leading zeros ("1e20", "1e-5"). v is
 * finite (message_to_json writes 0.0 for anything else, and so does the caller). */
static yajl_gen_status gen_real(yajl_gen g, double v)
{
	char s[64], *e;
	const char *point = localeconv()->decimal_point;
	int len = snprintf(s, sizeof(s) - 2, "%.15g", v);
	size_t n;

	if (len < 0 || (size_t)len >= sizeof(s) - 2)
		return yajl_gen_invalid_number;
	n = (size_t)len;
	if (point[0] != '.' && (e = strchr(s, point[0])) != NULL)
		*e = '.';
	if (strchr(s, '.') == NULL && strchr(s, 'e') == NULL) {
		memcpy(s + n, ".0", 3);
		n += 2;
	}
	if ((e = strchr(s, 'e')) != NULL) {
		char *to = e + 1, *from = e + 1;
		if (*from == '-')
			*to++ = *from++;
		else if (*from == '+')
			from++;
		while (*from == '0')
			from++;
		memmove(to, from, strlen(from) + 1);
		n = strlen(s);
	}
	return yajl_gen_number(g, s, n);
}

/* The members of message_to_json in its order into g; false when yajl refused one. */
static bool gen_message(yajl_gen g, const struct message *m)
{
	int st = 0;

	st |= yajl_gen_map_open(g);
	st |= GEN_KEY(g, "schema");
	st |= GEN_KEY(g, SCHEMA);
	st |= GEN_KEY(g, "id");
	st |= gen_str(g, m->id, false);
	st |= GEN_KEY(g, "kind");
	st |= gen_str(g, msg_kind_name(m->kind), false);
	st |= GEN_KEY(g, "phase");
	st |= gen_str(g, msg_phase_name(m->phase), false);
	st |= GEN_KEY(g, "source_id");
	st |= gen_str(g, m->source_id, false);
	st |= GEN_KEY(g, "occurred_at");
	st |= gen_str(g, m->occurred_at, false);
	st |= GEN_KEY(g, "ended_at");
	st |= gen_str(g, m->ended_at, true);
	st |= GEN_KEY(g, "duration_s");
	st |= m->duration_s < 0 ? yajl_gen_null(g) : yajl_gen_integer(g, m->duration_s);
	st |= GEN_KEY(g, "complete");
	st |= yajl_gen_bool(g, m->complete);
	if (m->kind == MSG_EVENT) {
		st |= GEN_KEY(g, "severity");
		st |= gen_str(g, m->severity, false);
	}
	st |= GEN_KEY(g, "flags");
	st |= yajl_gen_array_open(g);
	for (size_t i = 0; i < msg_flag_count; i++)
		if (m->flags & (UINT64_C(1) << i))
			st |= gen_str(g, msg_flag_names[i], false);
	st |= yajl_gen_array_close(g);
	if (m->kind == MSG_EVENT) {
		st |= GEN_KEY(g, "motion");
		st |= gen_real(g, isfinite(m->motion) ? m->motion : 0.0);
	}
	st |= GEN_KEY(g, "zone");
	st |= yajl_gen_map_open(g);
	st |= GEN_KEY(g, "id");
	st |= gen_str(g, m->zone_id, false);
	st |= GEN_KEY(g, "name");
	st |= gen_str(g, m->zone_name[0] ? m->zone_name : m->zone_id, false);
	st |= yajl_gen_map_close(g);
	st |= GEN_KEY(g, "location_id");
	st |= gen_str(g, m->location_id, true);
	st |= GEN_KEY(g, "timeline_id");
	st |= gen_str(g, m->timeline_id, true);
	if (m->kind == MSG_PLATE) {
		st |= GEN_KEY(g, "plate");
		st |= yajl_gen_map_open(g);
		st |= GEN_KEY(g, "number");
		st |= gen_str(g, m->plate_number, false);
		st |= GEN_KEY(g, "normalized");
		st |= gen_str(g, m->plate_normalized, false);
		st |= GEN_KEY(g, "country");
		st |= gen_str(g, m->country, true);
		if (m->watch_matched) {
			st |= GEN_KEY(g, "watchlist");
			st |= gen_str(g, m->watchlist, false);
			st |= GEN_KEY(g, "label");
			st |= gen_str(g, m->watch_label, true);
			st |= GEN_KEY(g, "distance");
			st |= yajl_gen_integer(g, m->watch_distance);
		}
		st |= yajl_gen_map_close(g);
		st |= GEN_KEY(g, "event_id");
		st |= gen_str(g, m->event_id, true);
	}
	st |= GEN_KEY(g, "links");
	st |= yajl_gen_map_open(g);
	st |= GEN_KEY(g, "web");
	st |= gen_str(g, m->link_web, true);
	st |= GEN_KEY(g, "recording_web");
	st |= gen_str(g, m->link_recording, true);
	st |= yajl_gen_map_close(g);
	st |= GEN_KEY(g, "backfill");
	st |= yajl_gen_bool(g, m->backfill);
	st |= GEN_KEY(g, "rule");
	st |= gen_str(g, m->rule, true);
	st |= yajl_gen_map_close(g);
	return st == yajl_gen_status_ok;
}

/* The text of m in c->out; -1 (c->out then unspecified) when an allocation failed. */
static int dump_into(struct dump_ctx *c, const struct message *m)
{
	c->cached = false;
	c->failed = false;
	buf_reset(&c->out);
	yajl_gen_reset(c->g, NULL);
	if (!gen_message(c->g, m) || c->failed || c->out.data == NULL)
		return -1;
	c->out.data[c->out.len] = '\0'; /* dump_print keeps a byte for it */
	return 0;
}

/* The caller's copy of the text in c->out; NULL on allocation failure. */
static char *text_copy(const struct dump_ctx *c)
{
	char *s = malloc(c->out.len + 1);

	if (s != NULL)
		memcpy(s, c->out.data, c->out.len + 1);
	return s;
}

char *message_dump(const struct message *m)
{
	struct dump_ctx *c = NULL, *own = NULL;
	char *s = NULL;

	if (m == NULL)
		return NULL;
	if (pthread_once(&dump_once, dump_key_make) == 0 && dump_key_ok)
		c = pthread_getspecific(dump_key);
	if (c == NULL) {
		/* the thread's first message; without a slot to keep it in, used once */
		if ((c = dump_ctx_new()) == NULL)
			return NULL;
		if (!dump_key_ok || pthread_setspecific(dump_key, c) != 0)
			own = c;
	}
	if (c->cached && memcmp(&c->m, m, sizeof(*m)) == 0)
		return text_copy(c);
	if (dump_into(c, m) == 0 && (s = text_copy(c)) != NULL) {
		c->m = *m;
		c->cached = true;
	}
	dump_ctx_free(own);
	return s;
}
