/* tether-sim: a simulator of the Tether API (OAuth2 and every v3p endpoint) for tests,
 * benchmarks and the demo. This header is the map of the program: the data model
 * (sim_data.c), the JSON rendering (sim_render.c), OAuth2 (sim_oauth.c), the admin API
 * (sim_admin.c) and the HTTP front end (sim_http.c). One mutex guards all of struct sim. */
#ifndef TB_SIM_H
#define TB_SIM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

#define SIM_ID_LEN 24
#define SIM_BODY_MAX (1024 * 1024)

enum sim_to_bounds { SIM_TO_START, SIM_TO_END };
enum sim_open_ends { SIM_OPEN_NULL, SIM_OPEN_START, SIM_OPEN_NOW };

/* The has_* flags in the order the API lists them. */
enum sim_flag {
	SIM_F_PIR,
	SIM_F_LPR,
	SIM_F_MOTION,
	SIM_F_VIDEO_LOSS,
	SIM_F_VIDEO_BLIND,
	SIM_F_VIDEO_DEFOCUS,
	SIM_F_ABNORMAL_AUDIO,
	SIM_F_LOITERING,
	SIM_F_PEOPLE_GATHERING,
	SIM_F_FAST_MOVING,
	SIM_F_STORAGE_FAILURE,
	SIM_F_STORAGE_LOW_SPACE,
	SIM_F_TEMPERATURE,
	SIM_F_STORAGE_NOT_EXIST,
	SIM_F_ALARM,
	SIM_F_FACE,
	SIM_F_TRIPWIRE,
	SIM_F_INTRUSION,
	SIM_F_PARKING,
	SIM_F_CAR,
	SIM_F_OBJECT_REMOVAL,
	SIM_F_ABANDONED_OBJECT,
	SIM_F_MISSING_OBJECT,
	SIM_F_SCENE_CHANGE,
	SIM_F_TMA,
	SIM_F_AUTO_REGISTER,
	SIM_F_IP_CONFLICT,
	SIM_F_NETWORK_CHANGE,
	SIM_F_COUNT
};

struct sim_opts {
	int port;
	const char *port_file;
	int zones, locations;
	double rate, plate_rate;
	long backlog;
	int64_t backlog_span_ms;
	uint64_t seed;
	long token_ttl;
	const char *client_id, *client_secret, *access_token;
	enum sim_to_bounds to_bounds;
	enum sim_open_ends open_ends_at;
	double incomplete_pct, late_pct;
	bool quiet;
};

struct sim_event {
	char id[SIM_ID_LEN + 1];
	char best_id[SIM_ID_LEN + 2];
	struct sim_zone *zone;
	int64_t starts_at, ends_at; /* ends_at -1 while open */
	int64_t created_at, updated_at;
	int64_t complete_at; /* generator: when an open event completes (0: never) */
	uint32_t flags;      /* 1u << enum sim_flag */
	int severity;        /* index into sim_severities */
	double motion;
	bool complete, flagged;
	int items_count;
	long filesize;
};

struct sim_plate {
	char id[SIM_ID_LEN + 1];
	char event_id[SIM_ID_LEN + 1];
	struct sim_zone *zone;
	int64_t starts_at, created_at, updated_at;
	char plate_number[16];
	char country[8];
	bool flagged, has_picture;
};

struct sim_recording {
	char id[SIM_ID_LEN + 1];
	char event_id[SIM_ID_LEN + 1];
	char token[23];
	struct sim_zone *zone;
	int64_t starts_at, ends_at, created_at;
	int serial;
	bool flagged;
};

struct sim_zone {
	char id[SIM_ID_LEN + 1];
	char timeline_id[SIM_ID_LEN + 1];
	char location_id[SIM_ID_LEN + 1];
	char agent_id[SIM_ID_LEN + 1];
	char camera_id[SIM_ID_LEN + 1];
	char *name;
	int offset_min; /* local time offset east of UTC */
	bool deleted;
	struct sim_event **events; /* sorted by starts_at */
	size_t nevents, capevents;
	struct sim_event **open; /* the open (incomplete) events, unordered */
	size_t nopen, capopen;
	int64_t max_span;          /* longest closed event, for window scans */
	struct sim_plate **plates; /* sorted by starts_at */
	size_t nplates, capplates;
	struct sim_recording *recs; /* sorted by starts_at */
	size_t nrecs;
};

struct sim_token {
	char access[65], refresh[65];
	int64_t created_ms, expires_ms;
	bool revoked, refresh_used;
};

struct sim_code {
	char code[65];
	char *redirect_uri;
	int64_t created_ms;
	bool used;
};

enum sim_body_fault {
	SIM_BODY_NONE,
	SIM_BODY_MALFORMED,
	SIM_BODY_TRUNCATED,
	SIM_BODY_WRONG_SHAPE,
	SIM_BODY_HUGE,
	SIM_BODY_CUT,
	SIM_BODY_MANY,
	SIM_BODY_REZONE
};

struct sim_fault {
	long count;
	int status;           /* 0: keep the real status */
	char retry_after[32]; /* "" : no header */
	long delay_ms;
	enum sim_body_fault body;
	long resources;   /* SIM_BODY_MANY: empty resources in data */
	char zone_id[64]; /* SIM_BODY_REZONE: what every resource's zone_id becomes */
	char path[256];   /* prefix */
};

struct sim_reqlog {
	char method[12];
	char *path, *query;
	const char *auth; /* "bearer" | "none" | "invalid" */
	int status;
	int64_t at;
};

struct sim_perspective {
	char id[SIM_ID_LEN + 1];
	char user_id[SIM_ID_LEN + 1];
	char timeline_id[SIM_ID_LEN + 1];
	char name[32];
	char layout[16];
};

struct sim {
	pthread_mutex_t lock;
	struct sim_opts opts;
	uint64_t rng;
	uint64_t id_counter;
	int64_t started_ms;
	bool bulk;               /* sim_init: append now, sort once at the end */
	struct sim_zone **zones; /* creation order; deleted ones stay until exit */
	size_t nzones, capzones;
	struct sim_event **events; /* every event, creation order (owns them) */
	size_t nevents, capevents;
	struct sim_plate **plates; /* every plate, creation order (owns them) */
	size_t nplates, capplates;
	struct sim_perspective persp[3];
	size_t npersp;
	struct sim_token *tokens;
	size_t ntokens, captokens;
	struct sim_code *codes;
	size_t ncodes, capcodes;
	bool static_revoked;
	struct sim_fault *faults;
	size_t nfaults, capfaults;
	struct sim_reqlog *reqs;
	size_t nreqs, capreqs;
	unsigned long long requests_total;
	double ev_acc, plate_acc; /* generator: fractional items owed */
	int64_t last_tick;
};

extern const char *const sim_flag_names[SIM_F_COUNT]; /* without the has_ prefix */
extern const char *const sim_severities[5];

/* sim_data.c: the data model. Callers hold sim->lock for everything but init/release. */
int sim_init(struct sim *s, const struct sim_opts *o); /* zones, recordings, backlog */
void sim_release(struct sim *s);
uint64_t sim_rand(struct sim *s);
double sim_rand_unit(struct sim *s); /* [0, 1) */
void sim_make_id(struct sim *s, int64_t ms, char out[SIM_ID_LEN + 1]);
void sim_make_hex(struct sim *s, char *out, size_t n);         /* n hex digits + NUL */
struct sim_zone *sim_zone_find(struct sim *s, const char *id); /* borrowed; NULL if deleted */
struct sim_zone *sim_zone_add(struct sim *s, const char *name, const char *location_id);
/* New event in zone, starting at starts_at (open when ends_at < 0); borrowed. */
struct sim_event *sim_event_add(struct sim *s, struct sim_zone *z, int64_t starts_at,
                                int64_t ends_at, int64_t created_at);
struct sim_event *sim_event_find(struct sim *s, const char *id);
void sim_event_set_end(struct sim *s, struct sim_event *e, bool complete, int64_t ends_at);
void sim_event_touch(struct sim *s, struct sim_event *e, int64_t now); /* bumps updated_at */
struct sim_plate *sim_plate_add(struct sim *s, struct sim_zone *z, int64_t starts_at,
                                int64_t created_at);
void sim_random_event(struct sim *s, int64_t now, bool live);
void sim_random_plate(struct sim *s, int64_t now);
void sim_tick(struct sim *s, int64_t now); /* rate-driven generation and completions */
struct sim_recording *sim_recording_find(struct sim *s, const char *id);
int sim_parse_flag(const char *name); /* "intrusion" or "has_intrusion" -> enum; -1 */
int sim_parse_severity(const char *name);
/* Index of the first event/plate with starts_at >= t. */
size_t sim_zone_events_lower(const struct sim_zone *z, int64_t t);
size_t sim_zone_plates_lower(const struct sim_zone *z, int64_t t);

/* sim_render.c: JSON documents into a buf. Return 0, or -1 on allocation failure. */
int sim_json_str(struct buf *b, const char *s); /* quoted, escaped */
int sim_render_event(struct sim *s, struct buf *b, const struct sim_event *e, int64_t now);
int sim_render_plate(struct buf *b, const struct sim_plate *p);
int sim_render_zone(struct buf *b, const struct sim_zone *z);
int sim_render_recording(struct buf *b, const struct sim_recording *r, bool single);
int sim_render_recording_included(struct buf *b, const struct sim_recording *r);
int sim_render_perspective(struct buf *b, const struct sim_perspective *p, struct sim_zone **zones,
                           size_t nzones);
/* The list documents of the API. Missing bounds (has_* false) are open-ended. */
int sim_doc_events_window(struct sim *s, struct buf *b, struct sim_zone *z, bool has_from,
                          int64_t from, bool has_to, int64_t to, int64_t now);
int sim_doc_events_at(struct sim *s, struct buf *b, struct sim_zone *z, int64_t at, int64_t now);
int sim_doc_plates(struct buf *b, struct sim_zone *z, bool has_from, int64_t from, bool has_to,
                   int64_t to);
int sim_doc_recordings(struct buf *b, struct sim_zone *z, bool has_at, int64_t at);

/* sim_oauth.c */
struct http_reply {
	int status;
	char *body; /* caller frees; may be NULL for an empty body */
	size_t len;
	const char *content_type;
	char location[2048]; /* Location header when set */
	char retry_after[32];
	bool www_auth;
	enum sim_body_fault cut; /* SIM_BODY_CUT: close the connection mid-body */
};
struct form;
/* Minimal application/x-www-form-urlencoded / query decoding; values are decoded. */
struct form *form_parse(const char *s, size_t len);
const char *form_get(const struct form *f, const char *key);     /* '+' read as space */
const char *form_get_raw(const struct form *f, const char *key); /* '+' kept */
void form_free(struct form *f);
void sim_oauth_authorize(struct sim *s, const struct form *q, struct http_reply *r);
void sim_oauth_token(struct sim *s, const struct form *f, struct http_reply *r);
/* "bearer" (valid), "none" or "invalid" for an Authorization header value. */
const char *sim_oauth_check(struct sim *s, const char *authorization, int64_t now);
void sim_oauth_revoke_all(struct sim *s, bool revoke_static);

/* sim_admin.c: the /_sim/ API; path is below /_sim. */
void sim_admin_handle(struct sim *s, const char *method, const char *path, const char *body,
                      size_t len, struct http_reply *r);
/* Takes the first matching fault (count decremented) into *out; false when none. */
bool sim_fault_take(struct sim *s, const char *path, struct sim_fault *out);
void sim_reqlog_add(struct sim *s, const char *method, const char *path, const char *query,
                    const char *auth, int status);

/* sim_http.c */
void sim_reply_json(struct http_reply *r, int status, struct buf *b); /* takes b's data */
void sim_reply_str(struct http_reply *r, int status, const char *json);
struct MHD_Daemon;
struct MHD_Daemon *sim_http_start(struct sim *s, uint16_t *port);
void sim_http_stop(struct MHD_Daemon *d);
/* Reads a time parameter in every format of the docs; 0 or -1. */
int sim_parse_time_param(const char *raw, int64_t *ms);

#endif
