/* The tether-bridge/v1 message: one struct per event revision or plate read, built from a
 * Tether JSON:API resource, and its JSON form (SPEC section 4, docs/message.md).
 * The normaliser validates what it reads and never trusts the input's shape. */
#ifndef TB_NORMALIZE_H
#define TB_NORMALIZE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum msg_kind { MSG_EVENT, MSG_PLATE };
enum msg_phase { MSG_PHASE_NEW, MSG_PHASE_UPDATE, MSG_PHASE_COMPLETE };

/* The has_* detection flags the API documents, without the prefix, in a fixed order;
 * bit i of message.flags is msg_flag_names[i]. */
extern const char *const msg_flag_names[];
extern const size_t msg_flag_count;
int msg_flag_index(const char *name); /* -1 if unknown */

#define MSG_ID_MAX 192
#define MSG_SHORT_MAX 64
#define MSG_TIME_MAX 48
#define MSG_NAME_MAX 256

struct message {
	enum msg_kind kind;
	enum msg_phase phase;
	char id[MSG_ID_MAX]; /* kind:source_id:revision */
	char source_id[MSG_SHORT_MAX];
	char revision[MSG_TIME_MAX];    /* updated_at exactly as sent */
	char occurred_at[MSG_TIME_MAX]; /* starts_at in RFC 3339 (as sent when it is) */
	char ended_at[MSG_TIME_MAX];    /* the same for ends_at; "" when the API gave none */
	int64_t occurred_ms;            /* starts_at as Unix ms */
	int64_t ended_ms;               /* -1 when none */
	int64_t duration_s;             /* -1 when unknown, and for open events */
	bool complete;
	char severity[MSG_SHORT_MAX]; /* "" for plates */
	uint64_t flags;               /* bitmask over msg_flag_names */
	double motion;
	char zone_id[MSG_SHORT_MAX];
	char zone_name[MSG_NAME_MAX];
	char location_id[MSG_SHORT_MAX];
	char timeline_id[MSG_SHORT_MAX];
	/* plates only */
	char plate_number[MSG_SHORT_MAX];
	char plate_normalized[MSG_SHORT_MAX];
	char country[16];
	char event_id[MSG_SHORT_MAX];
	/* set when a watchlist matched (plates only) */
	bool watch_matched;
	char watchlist[MSG_NAME_MAX]; /* a name of up to CFG_NAME_MAX bytes, never cut */
	char watch_entry[MSG_NAME_MAX];
	char watch_label[MSG_NAME_MAX];
	int watch_distance;
	/* links.web and links.recording_web, built from base_url */
	char link_web[512];
	char link_recording[512];
	bool backfill;
	char rule[MSG_NAME_MAX]; /* "" until a rule delivers it */
};

/* --- what the normaliser reads of a resource ---
 * The members normalize_nres reads, without the rest: filled by a streaming reader member
 * by member (tether_each_flat: no tree is built) or from a jansson tree (nres_from_json).
 * Either way the same checks and messages follow. Slots: NRES_ID .. NRES_ATTRIBUTES are the
 * resource's own members, the others members of its "attributes" object, NRES_FLAG + i
 * the has_* key of msg_flag_names[i]. */
enum nres_type {
	NRES_ABSENT,
	NRES_NULL,
	NRES_FALSE,
	NRES_TRUE,
	NRES_INTEGER,
	NRES_REAL,
	NRES_STRING,
	NRES_OBJECT,
	NRES_ARRAY,
};

enum nres_slot {
	NRES_ID,
	NRES_TYPE,
	NRES_ATTRIBUTES,
	NRES_STARTS_AT,
	NRES_UPDATED_AT,
	NRES_ZONE_ID,
	NRES_LOCATION_ID,
	NRES_TIMELINE_ID,
	NRES_ENDS_AT,
	NRES_COMPLETE,
	NRES_SEVERITY,
	NRES_MOTION,
	NRES_DURATION,
	NRES_PLATE_NUMBER,
	NRES_COUNTRY,
	NRES_EVENT_ID,
	NRES_FIELDS,
	NRES_FLAG = 64,
};

/* The bytes of a string kept: every string field is shorter (MSG_SHORT_MAX), so a longer
 * string is only ever "too long" or quoted in part. */
#define NRES_TEXT_MAX MSG_SHORT_MAX

struct nres_value {
	unsigned char type;           /* enum nres_type */
	bool nul;                     /* a string holding a NUL */
	size_t len;                   /* a string's whole length in bytes */
	long long i;                  /* NRES_INTEGER */
	double d;                     /* NRES_REAL */
	char text[NRES_TEXT_MAX + 1]; /* a string's first NRES_TEXT_MAX bytes, NUL-terminated */
};

struct nres {
	bool object;   /* the resource is an object; otherwise nothing else is set */
	size_t offset; /* free for the reader: where the resource starts in its text */
	uint64_t flags_true, flags_bad; /* has_* keys that are true; that are not a boolean */
	struct nres_value v[NRES_FIELDS];
};

/* Empties r for a resource that is an object (or, object false, something else). */
void nres_reset(struct nres *r, bool object);
/* The slot of a member name (len bytes, any bytes): level 1 a member of the resource, 2 a
 * member of its "attributes" object; -1 when the normaliser does not read it. */
int nres_slot(int level, const char *name, size_t len);
/* Sets a slot to a value of type t: i for NRES_INTEGER, d for NRES_REAL, s (len bytes)
 * for NRES_STRING, nothing for the others (NRES_OBJECT, NRES_ARRAY: the value's contents
 * are not read). A later value of the same slot replaces it, as a later member of the same
 * name does in jansson; any value of NRES_ATTRIBUTES empties the attribute slots first. */
void nres_set(struct nres *r, int slot, enum nres_type t, long long i, double d, const char *s,
              size_t len);
/* Fills out with what the normaliser reads of resource. */
void nres_from_json(const json_t *resource, struct nres *out);
/* Whether a and b hold the same values (offset aside): for tests comparing two readers. */
bool nres_equal(const struct nres *a, const struct nres *b);

/* The dedup key of a resource and its zone, read without normalising it: *kind,
 * *source_id, *revision and *zone_id (borrowed from r) are exactly what normalize_nres
 * would put in the message (type "events" or "lprs"; id and the attributes updated_at and
 * zone_id non-empty strings without a NUL that fit their fields). False when r does not
 * hold them so: normalize_nres decides about it then. For a caller that skips a revision it
 * has handled before without normalising it again (a poll reads its whole lookback again). */
bool normalize_dedup_key(const struct nres *r, enum msg_kind *kind, const char **source_id,
                         const char **revision, const char **zone_id);

/* Fills out from one `events` or `lprs` resource (the objects inside "data"); resource is
 * only read. zone_name may be NULL or "" (the zone id stands in; a longer name is cut at a
 * character, bytes that are not UTF-8 become '?'); base_url is the Tether web base
 * ("https://my.timeline.is", trailing '/' ignored; NULL or "": links stay ""). Sets phase
 * MSG_PHASE_NEW, backfill false, rule "" and no watch match: the poller and rules fill those.
 * Unknown has_* keys and attributes not listed in docs/message.md are ignored; a string too
 * long for its field is an error, never cut. Plates get complete = true.
 * Returns 0, or -1 with a message naming the field in err ("attributes.starts_at: expected
 * a string", "attributes.has_face: expected true or false", "type: unsupported 'zones'");
 * out's contents are then unspecified. normalize_nres does the same from what a reader
 * kept of the resource. */
int normalize_resource(const json_t *resource, const char *zone_name, const char *base_url,
                       struct message *out, char *err, size_t errsz);
int normalize_nres(const struct nres *r, const char *zone_name, const char *base_url,
                   struct message *out, char *err, size_t errsz);

/* The members normalize_resource reads, for a reader that builds only those (tether_each
 * with a keep filter; nres_slot gives the same set): normalize_reads_member for the resource's own
 * members ("id", "type", "attributes"), normalize_reads_attribute for the members of its
 * "attributes" object (the fields listed in docs/message.md and the has_* keys of msg_flag_names;
 * unknown has_* keys are not read). name is len bytes, not NUL-terminated, any bytes. A resource
 * without the members these refuse normalises exactly as the whole one (test_normalize proves it on
 * every sample). Safe from any thread. */
bool normalize_reads_member(const char *name, size_t len);
bool normalize_reads_attribute(const char *name, size_t len);

/* Sets id from kind, source_id and revision ("event:<id>:<updated_at>"). */
void message_set_id(struct message *m);

/* The v1 JSON object, keys in docs/message.md order; empty optional strings are null.
 * Bytes that are not UTF-8 (a watchlist label from a file) become '?' rather than failing.
 * New reference; NULL on allocation failure. */
json_t *message_to_json(const struct message *m);
/* json_dumps flags for a message anywhere it is written: compact, keys in schema order,
 * reals with 15 significant digits (0.35, not 0.34999999999999998). */
#define MSG_DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))
/* Compact JSON text of message_to_json, MSG_DUMP_FLAGS (caller frees; NULL on failure). */
char *message_dump(const struct message *m);

const char *msg_kind_name(enum msg_kind k);   /* "event" | "plate" */
const char *msg_phase_name(enum msg_phase p); /* "new" | "update" | "complete" */

/* Length (1-4) of the valid UTF-8 sequence at s, or 0 when s does not start one (stray
 * continuation byte, overlong form, surrogate, above U+10FFFF, cut short); 1 for ASCII and
 * for the terminating NUL. The same strictness as jansson's, for fields that did not come
 * from JSON (zone names, watchlist labels). */
size_t msg_utf8_seq(const char *s);

#endif
