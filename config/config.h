/* The bridge's configuration: loads the YAML file into typed structs with defaults, and
 * reports every problem as FILE:LINE:COL. watchlists, rules and severity_order are left to
 * the rule engine, which validates them from the same tree (config->doc). */
#ifndef TB_CONFIG_H
#define TB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"
#include "lib/util.h"
#include "config/yaml.h"

enum webhook_format {
	WEBHOOK_JSON,
	WEBHOOK_SLACK,
	WEBHOOK_DISCORD,
	WEBHOOK_TEAMS,
	WEBHOOK_CLOUDEVENTS
};

/* Which deliveries of one webhook may overtake each other. */
enum webhook_order {
	WEBHOOK_ORDER_ZONE, /* one in flight per zone: each zone's entries arrive in order */
	WEBHOOK_ORDER_NONE  /* any due entry, up to concurrency: a retry holds back nothing */
};

struct cfg_header {
	char *name, *value;
};

/* Defaults of an mqtt broker, also used for targets named in a config that failed to load. */
#define CFG_MQTT_QOS 1
#define CFG_MQTT_TOPIC_PREFIX "tether"

/* Home Assistant MQTT discovery on one broker (mqtt.<name>.homeassistant; config/ha.c). */
#define CFG_HA_PREFIX "homeassistant"
#define CFG_HA_OFF_DELAY_MS 30000
struct cfg_ha_sensor {
	int flag;           /* index into msg_flag_names */
	char *device_class; /* Home Assistant binary_sensor device class; NULL: none */
};
struct cfg_ha {
	bool enabled;
	char *discovery_prefix; /* default CFG_HA_PREFIX, no trailing '/' */
	int64_t off_delay_ms;   /* how long a sensor stays on for an event that came complete */
	struct cfg_ha_sensor *sensors; /* binary sensors per zone, in flag order */
	size_t nsensors;
	int *priority; /* flag indexes, most important first: every flag exactly once */
	size_t npriority;
	int line, column; /* of the key, for errors */
};
struct ynode;
/* config/ha.c: fills ha from the value of a broker's `homeassistant` key (true, false or a
 * map), every problem added to errs. release frees what load allocated. */
void config_ha_load(struct cfg_ha *ha, const struct ynode *key, const struct ynode *v,
                    struct cfg_errors *errs);
void config_ha_release(struct cfg_ha *ha);

/* One named broker (mqtt.<name>). host/port/tls come from url. */
struct cfg_mqtt {
	char *name;
	char *url;
	char *host;
	int port;
	bool tls;        /* mqtts:// */
	char *username;  /* NULL if absent */
	char *password;  /* secret; NULL if absent */
	char *client_id; /* default "tether-bridge-<name>" */
	int qos;         /* 0..2, default 1 */
	bool retain;
	char *topic_prefix;                   /* default "tether", no trailing '/' */
	char *ca_file, *cert_file, *key_file; /* NULL if absent; only with tls */
	bool insecure;                        /* tls without certificate verification */
	int64_t keepalive_ms;
	bool mqtt311;     /* protocol: 3.1.1 (default MQTT 5; 3.1.1 cannot see refused publishes) */
	struct cfg_ha ha; /* homeassistant: off unless asked for */
	bool commands;    /* subscribes to <prefix>/cmd/# and publishes the control state */
	int line, column; /* of the name, for errors */
};

/* One named webhook (webhooks.<name>; rules call it webhook.<name>). */
struct cfg_webhook {
	char *name;
	char *url;
	enum webhook_format format;
	struct cfg_header *headers;
	size_t nheaders;
	char **secrets; /* secret; each "whsec_<base64>"; each signs, all signatures are sent */
	size_t nsecrets;
	int64_t timeout_ms;
	int concurrency;
	enum webhook_order order;
	int line, column;
};

struct config {
	char *file;
	struct {
		char *base_url;      /* no trailing '/' */
		char *client_id;     /* NULL when absent */
		char *client_secret; /* secret; NULL when absent */
		char *redirect_uri;  /* NULL when absent */
		char *access_token;  /* secret; NULL when absent (then OAuth2 is used) */
		bool insecure;       /* http:// and unverified TLS allowed */
		int64_t timeout_ms;  /* per API request, default 30s */
	} tether;
	struct {
		int64_t interval_ms, lookback_ms;
		bool zones_all;
		char **zones; /* ids or names when !zones_all */
		size_t nzones;
		char *location_id; /* NULL when absent */
		bool events, plates;
		int concurrency;
		int64_t catchup_window_ms;
		int64_t catchup_max_age_ms; /* 0: a catch-up delivers whatever its age */
		int max_window_events;      /* a window answering more is split in time; 0: never */
	} poll;
	char *state_dir;
	struct {
		int64_t max_outbox;
		int64_t max_retry_age_ms;
	} delivery;
	struct {
		enum log_level level;
		bool json;
	} log;
	struct {
		char *listen; /* "HOST:PORT"; NULL if absent */
	} metrics;
	struct cfg_mqtt *mqtt;
	size_t nmqtt;
	struct cfg_webhook *webhooks;
	size_t nwebhooks;
	struct {
		bool on;      /* the section is there */
		char **modes; /* the first is the initial mode */
		size_t nmodes;
		char *home_perspective; /* NULL when absent */
		int64_t manual_hold_ms; /* default 5m */
	} control;
	struct ydoc *doc; /* the whole tree, for the rule engine; owned by the config */
};

/* Loads and validates path. Adds every problem to errs. Returns the config (caller frees
 * with config_free) when errs got no new error, else NULL. */
struct config *config_load(const char *path, struct cfg_errors *errs);
/* Frees everything; secrets are zeroed first. NULL is fine. */
void config_free(struct config *cfg);

/* One line for `check`: "ok: 3 mqtt brokers, 2 webhooks, poll every 10s over all zones". */
void config_summary(const struct config *cfg, char *out, size_t outsz);
/* The whole config, one section per line, secrets and webhook URL paths shown as "***"
 * (no trailing newline on the last line). Returns 0, or -1 if b refused to grow. */
int config_dump(const struct config *cfg, struct buf *b);
/* A webhook URL as config_dump shows it: the origin, then "/" and three stars for any path
 * or query (they often carry a token); "***" when it does not parse, "-" for NULL. 0/-1. */
int config_url_redact(struct buf *b, const char *url);

/* Lookups by name (borrowed; NULL if there is none). Exported for tests. */
const struct cfg_mqtt *config_mqtt(const struct config *cfg, const char *name);
const struct cfg_webhook *config_webhook(const struct config *cfg, const char *name);

/* Whether name is one of control.modes. */
bool config_mode_valid(const struct config *cfg, const char *name);

/* "json", "slack", ... */
const char *config_webhook_format_name(enum webhook_format f);
/* "zone" or "none" */
const char *config_webhook_order_name(enum webhook_order o);

#endif
