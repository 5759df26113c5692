/* Reading a v1 message back: the inverse of message_to_json for the fields the rules read.
 * Strings too long for their field are errors, never cut, as in normalize_resource. */
#include "rules/message_parse.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"

#define V1_SCHEMA "tether-bridge/v1"

/* Copies o[key] into dst. A missing key or null is "" unless required. 0, or -1 + err. */
static int get_str(const json_t *o, const char *key, bool required, char *dst, size_t dstsz,
                   char *err, size_t errsz)
{
	const json_t *v = json_object_get(o, key);

	dst[0] = '\0';
	if (v == NULL || json_is_null(v)) {
		if (!required)
			return 0;
		snprintf(err, errsz, "%s: missing", key);
		return -1;
	}
	if (!json_is_string(v)) {
		snprintf(err, errsz, "%s: expected a string", key);
		return -1;
	}
	if (json_string_length(v) >= dstsz) {
		snprintf(err, errsz, "%s: too long (%zu bytes, at most %zu)", key,
		         json_string_length(v), dstsz - 1);
		return -1;
	}
	memcpy(dst, json_string_value(v), json_string_length(v) + 1);
	return 0;
}

static int get_flags(const json_t *o, uint64_t *flags, char *err, size_t errsz)
{
	const json_t *v = json_object_get(o, "flags"), *f;
	size_t i;

	*flags = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_array(v)) {
		snprintf(err, errsz, "flags: expected a list");
		return -1;
	}
	json_array_foreach(v, i, f)
	{
		int k = json_is_string(f) ? msg_flag_index(json_string_value(f)) : -1;
		if (k < 0) {
			snprintf(err, errsz, "flags[%zu]: unknown flag '%s'", i,
			         json_is_string(f) ? json_string_value(f) : "(not a string)");
			return -1;
		}
		*flags |= UINT64_C(1) << k;
	}
	return 0;
}

static int get_phase(const json_t *o, struct message *m, char *err, size_t errsz)
{
	const char *k = json_string_value(json_object_get(o, "kind"));
	const char *p = json_string_value(json_object_get(o, "phase"));

	if (k && strcmp(k, "event") == 0)
		m->kind = MSG_EVENT;
	else if (k && strcmp(k, "plate") == 0)
		m->kind = MSG_PLATE;
	else {
		snprintf(err, errsz, "kind: expected 'event' or 'plate'");
		return -1;
	}
	if (p == NULL)
		p = "new";
	for (int i = MSG_PHASE_NEW; i <= MSG_PHASE_COMPLETE; i++) {
		if (strcmp(p, msg_phase_name((enum msg_phase)i)) == 0) {
			m->phase = (enum msg_phase)i;
			return 0;
		}
	}
	snprintf(err, errsz, "phase: expected 'new', 'update' or 'complete', not '%s'", p);
	return -1;
}

static int get_times(const json_t *o, struct message *m, char *err, size_t errsz)
{
	const json_t *d = json_object_get(o, "duration_s");

	if (get_str(o, "occurred_at", true, m->occurred_at, sizeof(m->occurred_at), err, errsz) <
	        0 ||
	    get_str(o, "ended_at", false, m->ended_at, sizeof(m->ended_at), err, errsz) < 0)
		return -1;
	if (util_parse_time(m->occurred_at, &m->occurred_ms, NULL) < 0) {
		snprintf(err, errsz, "occurred_at: expected an RFC 3339 time");
		return -1;
	}
	m->ended_ms = -1;
	if (m->ended_at[0] && util_parse_time(m->ended_at, &m->ended_ms, NULL) < 0) {
		snprintf(err, errsz, "ended_at: expected an RFC 3339 time");
		return -1;
	}
	m->duration_s = json_is_integer(d) ? (int64_t)json_integer_value(d) : -1;
	return 0;
}

/* The revision: what follows "kind:source_id:" in the id. */
static int get_revision(struct message *m, char *err, size_t errsz)
{
	char prefix[MSG_ID_MAX];
	size_t n;

	n = (size_t)snprintf(prefix, sizeof(prefix), "%s:%s:", msg_kind_name(m->kind),
	                     m->source_id);
	if (strncmp(m->id, prefix, n) != 0 || strlen(m->id + n) >= sizeof(m->revision)) {
		snprintf(err, errsz, "id: expected '%s<revision>'", prefix);
		return -1;
	}
	snprintf(m->revision, sizeof(m->revision), "%s", m->id + n);
	return 0;
}

int message_from_json(const json_t *o, struct message *m, char *err, size_t errsz)
{
	const char *schema = json_string_value(json_object_get(o, "schema"));
	const json_t *zone = json_object_get(o, "zone"), *plate = json_object_get(o, "plate");
	const json_t *links = json_object_get(o, "links"), *motion = json_object_get(o, "motion");

	memset(m, 0, sizeof(*m));
	if (!json_is_object(o) || schema == NULL || strcmp(schema, V1_SCHEMA) != 0) {
		snprintf(err, errsz, "schema: expected '%s'", V1_SCHEMA);
		return -1;
	}
	if (get_phase(o, m, err, errsz) < 0 ||
	    get_str(o, "id", true, m->id, sizeof(m->id), err, errsz) < 0 ||
	    get_str(o, "source_id", true, m->source_id, sizeof(m->source_id), err, errsz) < 0 ||
	    get_revision(m, err, errsz) < 0 || get_times(o, m, err, errsz) < 0 ||
	    get_flags(o, &m->flags, err, errsz) < 0)
		return -1;
	m->complete = json_is_true(json_object_get(o, "complete"));
	m->backfill = json_is_true(json_object_get(o, "backfill"));
	m->motion = json_is_number(motion) ? json_number_value(motion) : 0.0;
	if (!isfinite(m->motion))
		m->motion = 0.0;
	if (m->kind == MSG_EVENT &&
	    get_str(o, "severity", true, m->severity, sizeof(m->severity), err, errsz) < 0)
		return -1;
	if (!json_is_object(zone)) {
		snprintf(err, errsz, "zone: expected an object with id and name");
		return -1;
	}
	if (get_str(zone, "id", true, m->zone_id, sizeof(m->zone_id), err, errsz) < 0 ||
	    get_str(zone, "name", false, m->zone_name, sizeof(m->zone_name), err, errsz) < 0 ||
	    get_str(o, "location_id", false, m->location_id, sizeof(m->location_id), err, errsz) <
	        0 ||
	    get_str(o, "timeline_id", false, m->timeline_id, sizeof(m->timeline_id), err, errsz) <
	        0)
		return -1;
	if (m->kind == MSG_PLATE) {
		if (!json_is_object(plate)) {
			snprintf(err, errsz,
			         "plate: expected an object with number and normalized");
			return -1;
		}
		if (get_str(plate, "number", true, m->plate_number, sizeof(m->plate_number), err,
		            errsz) < 0 ||
		    get_str(plate, "normalized", true, m->plate_normalized,
		            sizeof(m->plate_normalized), err, errsz) < 0 ||
		    get_str(plate, "country", false, m->country, sizeof(m->country), err, errsz) <
		        0 ||
		    get_str(o, "event_id", false, m->event_id, sizeof(m->event_id), err, errsz) < 0)
			return -1;
	}
	if (json_is_object(links) &&
	    (get_str(links, "web", false, m->link_web, sizeof(m->link_web), err, errsz) < 0 ||
	     get_str(links, "recording_web", false, m->link_recording, sizeof(m->link_recording),
	             err, errsz) < 0))
		return -1;
	return 0;
}
