/* Home Assistant MQTT discovery for one broker: the retained discovery configs of the bridge,
 * each polled zone and each rule with a `homeassistant:` target, and the state those entities
 * show, all as outbox entries (target "mqtt.<broker>") the poller commits like deliveries.
 * Functions are ha_*; one struct ha per broker with discovery on, used by one thread. */
#ifndef TB_HOMEASSISTANT_H
#define TB_HOMEASSISTANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge/store.h"
#include "config/config.h"
#include "rules/normalize.h"
#include "rules/rules.h"

#define HA_SPREAD_MS 3000 /* a full set of configs is spread over this long */
#define HA_ORIGIN "tether-bridge"
/* The outbox ordering domain (zone_id) of every discovery config entry. */
#define HA_ZONE_DISCOVERY "ha:discovery"

struct ha;

struct ha_zone {
	const char *id, *name;
};

/* What the bridge device's diagnostic entities show. */
struct ha_status {
	bool api_ok;          /* the last zone refresh or poll reached the API */
	int64_t outbox;       /* entries waiting */
	int64_t dead_letters; /* -1: unknown */
	int64_t last_poll_ms; /* Unix ms of the last successful poll; 0: none yet */
};

/* Entries to put in the outbox, in order (their strings owned by the list). */
struct ha_entries {
	struct store_entry *v;
	size_t n, cap;
};
void ha_entries_release(struct ha_entries *e); /* frees the entries, keeps nothing */
/* A new zeroed entry at the end of e (filled by the caller), or NULL on ENOMEM. */
struct store_entry *ha_entries_add(struct ha_entries *e);

/* A new, empty state for broker (copied), or NULL on ENOMEM. */
struct ha *ha_new(const char *broker);
void ha_free(struct ha *h); /* NULL is fine */
const char *ha_broker(const struct ha *h);

/* Compares the configs cfg, rules and zones call for with those published before, and
 * appends a retained config for each new or changed one and an empty retained payload for
 * each one no longer wanted; with force, every wanted config is appended (Home Assistant
 * restarted, or the connection is new). Configs are due one after the other over at most
 * HA_SPREAD_MS from now (next_attempt_ms; the caller holds each back until then). The zone list is
 * kept for ha_message. A broker without discovery (cfg's ha.enabled false, or a broker cfg does not
 * have) wants nothing: all is deleted. 0, or -1 on ENOMEM (out may hold part; h is unchanged). */
int ha_sync(struct ha *h, const struct config *cfg, const struct rules *rules,
            const struct ha_zone *zones, size_t nzones, bool force, int64_t now,
            struct ha_entries *out);

/* One config the broker holds from an earlier run (topic and payload copied, as the store
 * keeps them: see store_ha_config_each), before the first ha_sync: that sync then deletes
 * the restored configs no longer wanted and sends only those new or changed (all with
 * force). A restored Last plate config keeps its zone's plate entities. 0, or -1 on ENOMEM
 * (h unchanged). */
int ha_restore(struct ha *h, const char *topic, const char *payload);
/* How many configs h holds published (restored or sent). */
size_t ha_published_count(const struct ha *h);

/* The perspectives' names (copied) for the live-view select, which a broker with commands
 * and a control section gets at the next ha_sync; n = 0 takes it away. 0, or -1 on ENOMEM
 * (h unchanged). */
int ha_set_perspectives(struct ha *h, const char *const *names, size_t n);

/* One delivered revision (event or plate read) of a zone: appends the zone's Detection
 * event, its binary sensors' ON/OFF (retained), its plate sensor and Plate event, and, for
 * the zone's first plate read, the plate entities' configs (as ha_sync with cfg and rules,
 * the zones of the last ha_sync). A zone the last ha_sync did not have gets nothing.
 * 0, or -1 on ENOMEM. */
int ha_message(struct ha *h, const struct config *cfg, const struct rules *rules,
               const struct message *m, int64_t now, struct ha_entries *out);

/* Every binary sensor state sent before, again as it is now (retained): after a
 * reconnection or Home Assistant's birth, since a broker that restarted without persistence
 * has lost them, and a state that did not change during the outage would not be sent
 * otherwise. Due at once: a state held back could overwrite a later change. 0, or -1 on
 * ENOMEM. */
int ha_states(struct ha *h, const struct config *cfg, int64_t now, struct ha_entries *out);

/* Time passes: binary sensors whose pulse ended turn OFF. 0, or -1 on ENOMEM. */
int ha_tick(struct ha *h, const struct config *cfg, int64_t now, struct ha_entries *out);

/* The bridge device's state (retained), appended when it differs from the last one. */
int ha_status(struct ha *h, const struct config *cfg, const struct ha_status *st,
              struct ha_entries *out);

/* The outbox entry of a rule's `homeassistant:` delivery: the rule entity's event
 * {"event_type":"fired", ...the message} on its topic, not retained. 0/-1. */
int ha_rule_entry(const struct rules_delivery *d, struct store_entry *out);

/* An id Home Assistant accepts in a topic level and a unique_id: [A-Za-z0-9_-] kept, any
 * other byte '_', and when anything was replaced a short hash of s appended so that two
 * names never meet. New string (caller frees), NULL on ENOMEM. */
char *ha_object_id(const char *s);

#endif
