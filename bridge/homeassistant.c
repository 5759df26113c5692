/* Home Assistant MQTT discovery (see homeassistant.h): which entities exist, what their
 * configs say, and the state messages they are driven by. No I/O: everything leaves as
 * outbox entries. Topics, with P the broker's topic_prefix and N the node id (client_id):
 *   P/bridge/status            availability (mqtt.c's birth and last will)
 *   P/ha/bridge                bridge diagnostics, JSON, retained
 *   P/cmd/refresh              the refresh button's command
 *   P/ha/zone/<zone>/detection the zone's Detection event, not retained
 *   P/ha/zone/<zone>/<flag>    a binary sensor, ON/OFF, retained
 *   P/ha/zone/<zone>/plate     the last plate, JSON, retained
 *   P/ha/zone/<zone>/plate_event  the Plate event, not retained
 *   P/ha/rule/<rule>           a rule entity's event, not retained
 *   P/mode, P/cmd/mode         the arming mode select (control plane, commands on)
 *   P/perspective, P/cmd/perspective  the live-view perspective select (likewise)
 * Configs: <discovery_prefix>/<platform>/N/<object>/config, unique_id "N_<object>". */
#include "bridge/homeassistant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bridge/bridge.h"
#include "bridge/ha_sensor.h"
#include "lib/weblink.h"

struct published {
	char *topic;
	char *payload;
	bool wanted; /* scratch for ha_sync */
};

struct sensor {
	char *zone_id, *zone_name;
	int flag;
	struct ha_sensor s;
	bool published; /* a state of it was sent: the broker holds one retained */
};

struct ha {
	char *broker;
	struct published *pub;
	size_t npub;
	struct sensor *sens;
	size_t nsens;
	char **plate_zones; /* zones that had a plate read: they get the plate entities */
	size_t nplate;
	struct ha_zone *zones; /* the last ha_sync's zones (copies) */
	size_t nzones;
	char *status; /* the last bridge state published */
	char **persp; /* the perspectives' names (ha_set_perspectives), for the select */
	size_t npersp;
};

/* One config the caller's settings want. */
struct want {
	char *topic, *payload;
};
struct wants {
	struct want *v;
	size_t n, cap;
};

static void wants_release(struct wants *w)
{
	for (size_t i = 0; i < w->n; i++) {
		free(w->v[i].topic);
		free(w->v[i].payload);
	}
	free(w->v);
	memset(w, 0, sizeof(*w));
}

void ha_entries_release(struct ha_entries *e)
{
	for (size_t i = 0; i < e->n; i++)
		store_entry_release(&e->v[i]);
	free(e->v);
	memset(e, 0, sizeof(*e));
}

struct store_entry *ha_entries_add(struct ha_entries *e)
{
	if (e->n == e->cap) {
		size_t cap = e->cap ? 2 * e->cap : 16;
		struct store_entry *v = realloc(e->v, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		e->v = v;
		e->cap = cap;
	}
	memset(&e->v[e->n], 0, sizeof(e->v[0]));
	return &e->v[e->n++];
}

/* Appends one MQTT publish for broker: topic and payload copied (payload "" deletes a
 * retained config). zone is the outbox ordering domain. */
static int publish(struct ha_entries *e, const char *broker, const char *zone, const char *msg_id,
                   const char *topic, const char *payload, int qos, bool retain, int64_t due)
{
	struct store_entry *x = ha_entries_add(e);
	if (x == NULL)
		return -1;
	if (asprintf(&x->target, "mqtt.%s", broker) < 0)
		x->target = NULL;
	if (asprintf(&x->extra, "{\"qos\":%d,\"retain\":%s}", qos, retain ? "true" : "false") < 0)
		x->extra = NULL;
	x->zone_id = strdup(zone);
	x->msg_id = strdup(msg_id);
	x->topic_or_url = strdup(topic);
	x->payload = strdup(payload);
	x->payload_len = strlen(payload);
	x->next_attempt_ms = due;
	if (x->target == NULL || x->extra == NULL || x->zone_id == NULL || x->msg_id == NULL ||
	    x->topic_or_url == NULL || x->payload == NULL) {
		store_entry_release(x);
		e->n--;
		return -1;
	}
	return 0;
}

char *ha_object_id(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n + 10);
	bool changed = n == 0;
	uint32_t h = 2166136261u; /* FNV-1a */

	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '_' || c == '-';
		out[i] = ok ? (char)c : '_';
		changed |= !ok;
		h = (h ^ c) * 16777619u;
	}
	out[n] = '\0';
	if (changed)
		snprintf(out + n, 10, "_%08x", h);
	return out;
}

static const struct cfg_mqtt *broker_cfg(const struct config *cfg, const char *broker)
{
	const struct cfg_mqtt *m = cfg ? config_mqtt(cfg, broker) : NULL;
	return m && m->ha.enabled ? m : NULL;
}

/* "Video loss" from "video_loss". */
static void flag_title(int flag, char *out, size_t n)
{
	snprintf(out, n, "%s", msg_flag_names[flag]);
	for (char *p = out; *p; p++)
		if (*p == '_')
			*p = ' ';
	if (out[0] >= 'a' && out[0] <= 'z')
		out[0] = (char)(out[0] - 'a' + 'A');
}

/* The availability, origin and device blocks every config carries, plus name and ids. */
static json_t *base_config(const struct cfg_mqtt *m, const char *node, const char *object,
                           const char *name, json_t *device)
{
	char *avail = NULL, *uid = NULL;
	json_t *c = NULL;

	if (asprintf(&avail, "%s/bridge/status", m->topic_prefix) < 0)
		avail = NULL;
	if (asprintf(&uid, "%s_%s", node, object) < 0)
		uid = NULL;
	if (avail && uid && device)
		c = json_pack("{s:s, s:s, s:[{s:s}], s:o, s:{s:s, s:s}}", "name", name, "unique_id",
		              uid, "availability", "topic", avail, "device", json_incref(device),
		              "origin", "name", HA_ORIGIN, "sw_version", TB_VERSION);
	free(avail);
	free(uid);
	return c;
}

/* Adds extra's keys to c (extra is consumed). c, or NULL (c freed) on failure. */
static json_t *merge(json_t *c, json_t *extra)
{
	if (c == NULL || extra == NULL || json_object_update(c, extra) < 0) {
		json_decref(c);
		c = NULL;
	}
	json_decref(extra);
	return c;
}

static int want_add(struct wants *w, const struct cfg_mqtt *m, const char *platform,
                    const char *node, const char *object, json_t *config)
{
	char *topic = NULL, *payload = NULL;

	if (config == NULL)
		return -1;
	payload = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(config);
	if (asprintf(&topic, "%s/%s/%s/%s/config", m->ha.discovery_prefix, platform, node, object) <
	    0)
		topic = NULL;
	if (topic == NULL || payload == NULL || (w->n == w->cap && w->cap > SIZE_MAX / 4))
		goto fail;
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 32;
		struct want *v = realloc(w->v, cap * sizeof(*v));
		if (v == NULL)
			goto fail;
		w->v = v;
		w->cap = cap;
	}
	w->v[w->n].topic = topic;
	w->v[w->n].payload = payload;
	w->n++;
	return 0;
fail:
	free(topic);
	free(payload);
	return -1;
}

static json_t *bridge_device(const struct cfg_mqtt *m, const char *node)
{
	char name[200];
	snprintf(name, sizeof(name), "Tether bridge %s", m->name);
	return json_pack("{s:[s], s:s, s:s, s:s, s:s}", "identifiers", node, "name", name,
	                 "sw_version", TB_VERSION, "model", "tether-bridge", "manufacturer",
	                 "tether-bridge");
}

static int want_bridge(struct wants *w, const struct cfg_mqtt *m, const char *node)
{
	json_t *dev = bridge_device(m, node), *c;
	char *state = NULL, *cmd = NULL;
	int rc = -1;

	if (asprintf(&state, "%s/ha/bridge", m->topic_prefix) < 0)
		state = NULL;
	if (asprintf(&cmd, "%s/cmd/refresh", m->topic_prefix) < 0)
		cmd = NULL;
	if (dev == NULL || state == NULL || cmd == NULL)
		goto out;
	c = base_config(m, node, "api", "API connectivity", dev);
	c = merge(c, json_pack("{s:s, s:s, s:s, s:s}", "state_topic", state, "value_template",
	                       "{{ value_json.api }}", "device_class", "connectivity",
	                       "entity_category", "diagnostic"));
	if (want_add(w, m, "binary_sensor", node, "api", c) < 0)
		goto out;
	c = base_config(m, node, "outbox", "Outbox", dev);
	c = merge(c, json_pack("{s:s, s:s, s:s, s:s, s:s}", "state_topic", state, "value_template",
	                       "{{ value_json.outbox }}", "unit_of_measurement", "messages",
	                       "state_class", "measurement", "entity_category", "diagnostic"));
	if (want_add(w, m, "sensor", node, "outbox", c) < 0)
		goto out;
	c = base_config(m, node, "dead_letters", "Dead letters", dev);
	c = merge(c, json_pack("{s:s, s:s, s:s, s:s, s:s}", "state_topic", state, "value_template",
	                       "{{ value_json.dead_letters }}", "unit_of_measurement", "messages",
	                       "state_class", "measurement", "entity_category", "diagnostic"));
	if (want_add(w, m, "sensor", node, "dead_letters", c) < 0)
		goto out;
	c = base_config(m, node, "last_poll", "Last poll", dev);
	c = merge(c, json_pack("{s:s, s:s, s:s, s:s}", "state_topic", state, "value_template",
	                       "{{ value_json.last_poll or None }}", "device_class", "timestamp",
	                       "entity_category", "diagnostic"));
	if (want_add(w, m, "sensor", node, "last_poll", c) < 0)
		goto out;
	c = base_config(m, node, "refresh", "Refresh zones", dev);
	c = merge(c, json_pack("{s:s, s:s, s:s}", "command_topic", cmd, "payload_press", "{}",
	                       "entity_category", "config"));
	if (want_add(w, m, "button", node, "refresh", c) < 0)
		goto out;
	rc = 0;
out:
	json_decref(dev);
	free(state);
	free(cmd);
	return rc;
}

/* One select on the bridge device: options as given, picked on P/cmd/<object>, shown from
 * state (with value_template when the state is JSON). */
static int want_select(struct wants *w, const struct cfg_mqtt *m, const char *node, json_t *dev,
                       const char *object, const char *name, json_t *options, const char *state,
                       const char *value_template)
{
	char *cmd = NULL, *st = NULL;
	json_t *c = NULL;
	int rc = -1;

	if (asprintf(&cmd, "%s/cmd/%s", m->topic_prefix, object) < 0)
		cmd = NULL;
	if (asprintf(&st, "%s/%s", m->topic_prefix, state) < 0)
		st = NULL;
	if (cmd != NULL && st != NULL && options != NULL) {
		c = base_config(m, node, object, name, dev);
		c = merge(c, json_pack("{s:s, s:s, s:O}", "command_topic", cmd, "state_topic", st,
		                       "options", options));
		if (c != NULL && value_template != NULL &&
		    json_object_set_new(c, "value_template", json_string(value_template)) < 0) {
			json_decref(c);
			c = NULL;
		}
		rc = want_add(w, m, "select", node, object, c);
	}
	json_decref(options);
	free(cmd);
	free(st);
	return rc;
}

/* With the control plane on this broker (commands: true and a control section): a select
 * for the arming mode (control.modes) and one for the live-view perspective (the names the
 * control plane last read; none until it has). Their commands are the control plane's own;
 * its answers go to P/cmd/result, which Home Assistant does not read. */
static int want_control(struct wants *w, const struct ha *h, const struct config *cfg,
                        const struct cfg_mqtt *m, const char *node, json_t *dev)
{
	json_t *opts;

	if (!m->commands || !cfg->control.on)
		return 0;
	if (cfg->control.nmodes > 0) {
		opts = json_array();
		for (size_t i = 0; opts != NULL && i < cfg->control.nmodes; i++)
			if (json_array_append_new(opts, json_string(cfg->control.modes[i])) < 0) {
				json_decref(opts);
				opts = NULL;
			}
		if (want_select(w, m, node, dev, "mode", "Arming mode", opts, "mode", NULL) < 0)
			return -1;
	}
	if (h->npersp > 0) {
		opts = json_array();
		for (size_t i = 0; opts != NULL && i < h->npersp; i++)
			if (json_array_append_new(opts, json_string(h->persp[i])) < 0) {
				json_decref(opts);
				opts = NULL;
			}
		if (want_select(w, m, node, dev, "perspective", "Live view", opts, "perspective",
		                "{{ value_json.name }}") < 0)
			return -1;
	}
	return 0;
}

static json_t *zone_device(const struct config *cfg, const char *node, const char *zid,
                           const struct ha_zone *z)
{
	struct buf url;
	char *ident = NULL;
	json_t *d = NULL;

	buf_init(&url, 4096);
	if (asprintf(&ident, "%s_zone_%s", node, zid) < 0)
		ident = NULL;
	if (ident && weblink_at(&url, cfg->tether.base_url, "/events", -1, z->id, NULL) == 0 &&
	    url.len > 0)
		d = json_pack("{s:[s], s:s, s:s, s:s, s:s, s:s}", "identifiers", ident, "name",
		              z->name, "via_device", node, "configuration_url", url.data, "model",
		              "Zone", "manufacturer", "Tether");
	free(ident);
	buf_release(&url);
	return d;
}

static int want_zone(struct wants *w, const struct config *cfg, const struct cfg_mqtt *m,
                     const char *node, const struct ha_zone *z, bool plates)
{
	char *zid = ha_object_id(z->id), *base = NULL, obj[320], topic[2400];
	json_t *dev = NULL, *c, *types = json_array();
	int rc = -1;

	if (zid == NULL || types == NULL)
		goto out;
	if (asprintf(&base, "%s/ha/zone/%s", m->topic_prefix, zid) < 0) {
		base = NULL; /* asprintf leaves it undefined */
		goto out;
	}
	if ((dev = zone_device(cfg, node, zid, z)) == NULL)
		goto out;
	for (size_t f = 0; f < msg_flag_count; f++)
		json_array_append_new(types, json_string(msg_flag_names[f]));
	snprintf(obj, sizeof(obj), "zone_%s_detection", zid);
	snprintf(topic, sizeof(topic), "%s/detection", base);
	c = base_config(m, node, obj, "Detection", dev);
	c = merge(c, json_pack("{s:s, s:O}", "state_topic", topic, "event_types", types));
	if (want_add(w, m, "event", node, obj, c) < 0)
		goto out;
	for (size_t i = 0; i < m->ha.nsensors; i++) {
		const struct cfg_ha_sensor *s = &m->ha.sensors[i];
		char title[64];
		flag_title(s->flag, title, sizeof(title));
		snprintf(obj, sizeof(obj), "zone_%s_%s", zid, msg_flag_names[s->flag]);
		snprintf(topic, sizeof(topic), "%s/%s", base, msg_flag_names[s->flag]);
		c = base_config(m, node, obj, title, dev);
		if (c && json_object_set_new(c, "state_topic", json_string(topic)) < 0)
			json_decref(c), c = NULL;
		if (c && s->device_class &&
		    json_object_set_new(c, "device_class", json_string(s->device_class)) < 0)
			json_decref(c), c = NULL;
		if (want_add(w, m, "binary_sensor", node, obj, c) < 0)
			goto out;
	}
	if (plates) {
		snprintf(obj, sizeof(obj), "zone_%s_last_plate", zid);
		snprintf(topic, sizeof(topic), "%s/plate", base);
		c = base_config(m, node, obj, "Last plate", dev);
		c = merge(c, json_pack("{s:s, s:s, s:s, s:s}", "state_topic", topic,
		                       "value_template", "{{ value_json.plate }}",
		                       "json_attributes_topic", topic, "icon", "mdi:car"));
		if (want_add(w, m, "sensor", node, obj, c) < 0)
			goto out;
		snprintf(obj, sizeof(obj), "zone_%s_plate", zid);
		snprintf(topic, sizeof(topic), "%s/plate_event", base);
		c = base_config(m, node, obj, "Plate", dev);
		c = merge(c, json_pack("{s:s, s:[s,s]}", "state_topic", topic, "event_types",
		                       "read", "watchlist"));
		if (want_add(w, m, "event", node, obj, c) < 0)
			goto out;
	}
	rc = 0;
out:
	json_decref(types);
	json_decref(dev);
	free(zid);
	free(base);
	return rc;
}

static int want_rule(struct wants *w, const struct cfg_mqtt *m, const char *node, json_t *dev,
                     const char *rule)
{
	char *rid = ha_object_id(rule), obj[320], *topic = NULL;
	json_t *c;
	int rc = -1;

	if (rid == NULL)
		goto out;
	if (asprintf(&topic, "%s/ha/rule/%s", m->topic_prefix, rid) < 0) {
		topic = NULL; /* asprintf leaves it undefined */
		goto out;
	}
	snprintf(obj, sizeof(obj), "rule_%s", rid);
	c = base_config(m, node, obj, rule, dev);
	c = merge(c, json_pack("{s:s, s:[s]}", "state_topic", topic, "event_types", "fired"));
	rc = want_add(w, m, "event", node, obj, c);
out:
	free(rid);
	free(topic);
	return rc;
}

static bool plate_zone(const struct ha *h, const char *zone_id)
{
	for (size_t i = 0; i < h->nplate; i++)
		if (strcmp(h->plate_zones[i], zone_id) == 0)
			return true;
	return false;
}

/* Whether zone_id gets the plate entities: it had a plate read in this run, or its Last
 * plate config is in the published set (restored from the last run, under whatever prefix
 * and node id it had then). 1 yes, 0 no, -1 ENOMEM. */
static int plate_wanted(const struct ha *h, const char *zone_id)
{
	char *zid, *suffix = NULL;
	int found = 0;

	if (plate_zone(h, zone_id))
		return 1;
	if ((zid = ha_object_id(zone_id)) == NULL)
		return -1;
	if (asprintf(&suffix, "/zone_%s_last_plate/config", zid) < 0) {
		free(zid);
		return -1;
	}
	size_t n = strlen(suffix);
	for (size_t i = 0; i < h->npub && !found; i++) {
		size_t len = strlen(h->pub[i].topic);
		found = len >= n && strcmp(h->pub[i].topic + len - n, suffix) == 0;
	}
	free(zid);
	free(suffix);
	return found;
}

/* Every config cfg wants for h's broker. */
static int wants_build(const struct ha *h, const struct config *cfg, const struct rules *rules,
                       const struct ha_zone *zones, size_t nzones, struct wants *w)
{
	const struct cfg_mqtt *m = broker_cfg(cfg, h->broker);
	char *node;
	json_t *dev;
	int rc = -1;

	if (m == NULL)
		return 0;
	if ((node = ha_object_id(m->client_id)) == NULL)
		return -1;
	dev = bridge_device(m, node);
	if (dev == NULL || want_bridge(w, m, node) < 0 || want_control(w, h, cfg, m, node, dev) < 0)
		goto out;
	for (size_t i = 0; i < nzones; i++) {
		int plate = plate_wanted(h, zones[i].id);
		if (plate < 0 || want_zone(w, cfg, m, node, &zones[i], plate) < 0)
			goto out;
	}
	for (size_t i = 0; i < rules_count(rules); i++) {
		const char *name = rules_name_with_target(rules, i, "homeassistant", h->broker);
		if (name && want_rule(w, m, node, dev, name) < 0)
			goto out;
	}
	rc = 0;
out:
	json_decref(dev);
	free(node);
	return rc;
}

static int zones_keep(struct ha *h, const struct ha_zone *zones, size_t nzones)
{
	struct ha_zone *v = calloc(nzones ? nzones : 1, sizeof(*v));
	if (v == NULL)
		return -1;
	for (size_t i = 0; i < nzones; i++) {
		v[i].id = strdup(zones[i].id);
		v[i].name = strdup(zones[i].name);
		if (v[i].id == NULL || v[i].name == NULL) {
			for (size_t j = 0; j <= i; j++) {
				free((char *)v[j].id);
				free((char *)v[j].name);
			}
			free(v);
			return -1;
		}
	}
	if (h->zones != zones) {
		for (size_t i = 0; i < h->nzones; i++) {
			free((char *)h->zones[i].id);
			free((char *)h->zones[i].name);
		}
		free(h->zones);
	} else {
		/* called with its own list: free the old copies after copying */
		for (size_t i = 0; i < nzones; i++) {
			free((char *)zones[i].id);
			free((char *)zones[i].name);
		}
		free(h->zones);
	}
	h->zones = v;
	h->nzones = nzones;
	return 0;
}

/* Sensors of zones no longer polled are forgotten. */
static void sensors_prune(struct ha *h)
{
	for (size_t i = 0; i < h->nsens;) {
		bool keep = false;
		for (size_t j = 0; j < h->nzones && !keep; j++)
			keep = strcmp(h->zones[j].id, h->sens[i].zone_id) == 0;
		if (keep) {
			i++;
			continue;
		}
		ha_sensor_release(&h->sens[i].s);
		free(h->sens[i].zone_id);
		free(h->sens[i].zone_name);
		h->sens[i] = h->sens[--h->nsens];
	}
}

int ha_sync(struct ha *h, const struct config *cfg, const struct rules *rules,
            const struct ha_zone *zones, size_t nzones, bool force, int64_t now,
            struct ha_entries *out)
{
	struct wants w = {0};
	size_t nsend = 0, k = 0, start = out->n;
	int64_t step;
	struct published *np = NULL;
	size_t nnp = 0;

	if (wants_build(h, cfg, rules, zones, nzones, &w) < 0)
		goto fail;
	for (size_t i = 0; i < h->npub; i++)
		h->pub[i].wanted = false;
	/* what to send: new or changed (all with force), and deletions */
	bool *send = calloc(w.n ? w.n : 1, sizeof(*send));
	if (send == NULL)
		goto fail;
	for (size_t i = 0; i < w.n; i++) {
		struct published *p = NULL;
		for (size_t j = 0; j < h->npub && p == NULL; j++)
			if (strcmp(h->pub[j].topic, w.v[i].topic) == 0)
				p = &h->pub[j];
		if (p)
			p->wanted = true;
		send[i] = force || p == NULL || strcmp(p->payload, w.v[i].payload) != 0;
		nsend += send[i];
	}
	for (size_t j = 0; j < h->npub; j++)
		nsend += !h->pub[j].wanted;
	step = nsend > 1 ? HA_SPREAD_MS / (int64_t)nsend : 0;
	if (step > 200)
		step = 200;
	for (size_t j = 0; j < h->npub; j++) {
		if (!h->pub[j].wanted &&
		    publish(out, h->broker, HA_ZONE_DISCOVERY, h->pub[j].topic, h->pub[j].topic, "",
		            1, true, now + step * (int64_t)k++) < 0)
			goto fail_send;
	}
	for (size_t i = 0; i < w.n; i++) {
		if (send[i] &&
		    publish(out, h->broker, HA_ZONE_DISCOVERY, w.v[i].topic, w.v[i].topic,
		            w.v[i].payload, 1, true, now + step * (int64_t)k++) < 0)
			goto fail_send;
	}
	np = calloc(w.n ? w.n : 1, sizeof(*np));
	if (np == NULL || zones_keep(h, zones, nzones) < 0)
		goto fail_send;
	free(send);
	/* the published set becomes what was wanted (ownership moves from w) */
	for (size_t i = 0; i < w.n; i++) {
		np[nnp].topic = w.v[i].topic;
		np[nnp++].payload = w.v[i].payload;
	}
	free(w.v);
	for (size_t j = 0; j < h->npub; j++) {
		free(h->pub[j].topic);
		free(h->pub[j].payload);
	}
	free(h->pub);
	h->pub = np;
	h->npub = nnp;
	sensors_prune(h);
	return 0;
fail_send:
	free(send);
	free(np);
fail:
	wants_release(&w);
	while (out->n > start)
		store_entry_release(&out->v[--out->n]);
	return -1;
}

static struct sensor *sensor_get(struct ha *h, const struct message *m, int flag)
{
	for (size_t i = 0; i < h->nsens; i++)
		if (h->sens[i].flag == flag && strcmp(h->sens[i].zone_id, m->zone_id) == 0)
			return &h->sens[i];
	struct sensor *v = realloc(h->sens, (h->nsens + 1) * sizeof(*v));
	if (v == NULL)
		return NULL;
	h->sens = v;
	struct sensor *s = &v[h->nsens];
	memset(s, 0, sizeof(*s));
	s->flag = flag;
	s->zone_id = strdup(m->zone_id);
	s->zone_name = strdup(m->zone_name);
	if (s->zone_id == NULL || s->zone_name == NULL) {
		free(s->zone_id);
		free(s->zone_name);
		return NULL;
	}
	h->nsens++;
	return s;
}

static int sensor_publish(struct ha *h, const struct cfg_mqtt *m, struct sensor *s, bool on,
                          int64_t now, struct ha_entries *out)
{
	char *zid = ha_object_id(s->zone_id), *topic = NULL, *dom = NULL, id[96];
	int rc = -1;

	snprintf(id, sizeof(id), "ha:%s:%lld", msg_flag_names[s->flag], (long long)now);
	if (zid != NULL &&
	    asprintf(&topic, "%s/ha/zone/%s/%s", m->topic_prefix, zid, msg_flag_names[s->flag]) < 0)
		topic = NULL;
	if (asprintf(&dom, "ha:%s", s->zone_id) < 0)
		dom = NULL;
	if (topic != NULL && dom != NULL)
		rc = publish(out, h->broker, dom, id, topic, on ? "ON" : "OFF", m->qos, true, 0);
	if (rc == 0)
		s->published = true;
	free(zid);
	free(topic);
	free(dom);
	return rc;
}

/* The flag that names an event: the first of cfg's priority order it carries. */
static int top_flag(const struct cfg_mqtt *m, uint64_t flags)
{
	for (size_t i = 0; i < m->ha.npriority; i++)
		if (flags & (1ULL << m->ha.priority[i]))
			return m->ha.priority[i];
	return -1;
}

/* {"event_type": type, ...the message's fields} as compact text; caller frees. */
static char *event_payload(const struct message *msg, const char *type, json_t *extra)
{
	json_t *o = json_pack("{s:s}", "event_type", type), *mj = message_to_json(msg);
	char *s = NULL;

	if (o && mj && json_object_update(o, mj) == 0 &&
	    (extra == NULL || json_object_update(o, extra) == 0))
		s = json_dumps(o, MSG_DUMP_FLAGS);
	json_decref(o);
	json_decref(mj);
	return s;
}

static int zone_topic_publish(struct ha *h, const struct cfg_mqtt *m, const struct message *msg,
                              const char *leaf, const char *payload, bool retain,
                              struct ha_entries *out)
{
	char *zid = ha_object_id(msg->zone_id), *topic = NULL, *dom = NULL;
	int rc = -1;

	/* asprintf leaves its pointer undefined when it fails */
	if (zid && payload && asprintf(&topic, "%s/ha/zone/%s/%s", m->topic_prefix, zid, leaf) < 0)
		topic = NULL;
	if (topic && asprintf(&dom, "ha:%s", msg->zone_id) < 0)
		dom = NULL;
	if (topic && dom)
		rc = publish(out, h->broker, dom, msg->id, topic, payload, m->qos, retain, 0);
	free(zid);
	free(topic);
	free(dom);
	return rc;
}

static int plate_message(struct ha *h, const struct config *cfg, const struct rules *rules,
                         const struct cfg_mqtt *m, const struct message *msg, int64_t now,
                         struct ha_entries *out)
{
	char *state = NULL, *ev = NULL;
	int rc = -1;

	if (!plate_zone(h, msg->zone_id)) {
		char **v = realloc(h->plate_zones, (h->nplate + 1) * sizeof(*v));
		if (v == NULL)
			return -1;
		h->plate_zones = v;
		if ((v[h->nplate] = strdup(msg->zone_id)) == NULL)
			return -1;
		h->nplate++;
		/* the zone's plate entities appear with its first read, in this commit: two
		 * configs need no spreading, and an entry due later would not be sent in order */
		size_t first = out->n;
		if (ha_sync(h, cfg, rules, h->zones, h->nzones, false, now, out) < 0)
			return -1;
		for (size_t i = first; i < out->n; i++)
			out->v[i].next_attempt_ms = 0;
	}
	json_t *st = json_pack("{s:s, s:s?, s:s?, s:s?, s:s}", "plate", msg->plate_number,
	                       "country", msg->country[0] ? msg->country : NULL, "watchlist",
	                       msg->watch_matched ? msg->watchlist : NULL, "label",
	                       msg->watch_matched && msg->watch_label[0] ? msg->watch_label : NULL,
	                       "time", msg->occurred_at);
	if (st)
		state = json_dumps(st, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(st);
	ev = event_payload(msg, msg->watch_matched ? "watchlist" : "read", NULL);
	if (zone_topic_publish(h, m, msg, "plate", state, true, out) == 0 &&
	    zone_topic_publish(h, m, msg, "plate_event", ev, false, out) == 0)
		rc = 0;
	free(state);
	free(ev);
	return rc;
}

int ha_message(struct ha *h, const struct config *cfg, const struct rules *rules,
               const struct message *msg, int64_t now, struct ha_entries *out)
{
	const struct cfg_mqtt *m = broker_cfg(cfg, h->broker);
	bool known = false;

	if (m == NULL)
		return 0;
	for (size_t i = 0; i < h->nzones && !known; i++)
		known = strcmp(h->zones[i].id, msg->zone_id) == 0;
	if (!known)
		return 0; /* no entities yet: the next zone refresh brings them */
	if (msg->kind == MSG_PLATE)
		return plate_message(h, cfg, rules, m, msg, now, out);
	int top = top_flag(m, msg->flags);
	if (top >= 0) {
		char *p = event_payload(msg, msg_flag_names[top], NULL);
		int rc = zone_topic_publish(h, m, msg, "detection", p, false, out);
		free(p);
		if (rc < 0)
			return -1;
	}
	for (size_t i = 0; i < m->ha.nsensors; i++) {
		int flag = m->ha.sensors[i].flag;
		struct sensor *s = sensor_get(h, msg, flag);
		enum ha_sensor_change ch;
		if (s == NULL || ha_sensor_event(&s->s, msg->source_id, (msg->flags >> flag) & 1,
		                                 msg->complete, now, m->ha.off_delay_ms, &ch) < 0)
			return -1;
		if (ch != HA_SENSOR_SAME &&
		    sensor_publish(h, m, s, ch == HA_SENSOR_ON, now, out) < 0)
			return -1;
	}
	return 0;
}

int ha_states(struct ha *h, const struct config *cfg, int64_t now, struct ha_entries *out)
{
	const struct cfg_mqtt *m = broker_cfg(cfg, h->broker);

	if (m == NULL)
		return 0;
	for (size_t i = 0; i < h->nsens; i++)
		if (h->sens[i].published &&
		    sensor_publish(h, m, &h->sens[i], h->sens[i].s.on, now, out) < 0)
			return -1;
	return 0;
}

int ha_tick(struct ha *h, const struct config *cfg, int64_t now, struct ha_entries *out)
{
	const struct cfg_mqtt *m = broker_cfg(cfg, h->broker);

	if (m == NULL)
		return 0;
	for (size_t i = 0; i < h->nsens; i++) {
		enum ha_sensor_change ch = ha_sensor_tick(&h->sens[i].s, now);
		if (ch != HA_SENSOR_SAME &&
		    sensor_publish(h, m, &h->sens[i], ch == HA_SENSOR_ON, now, out) < 0)
			return -1;
	}
	return 0;
}

int ha_status(struct ha *h, const struct config *cfg, const struct ha_status *st,
              struct ha_entries *out)
{
	const struct cfg_mqtt *m = broker_cfg(cfg, h->broker);
	char when[UTIL_TIME_MAX], *text = NULL, *topic = NULL;
	json_t *o;
	int rc = -1;

	if (m == NULL)
		return 0;
	if (st->last_poll_ms > 0)
		util_format_iso(st->last_poll_ms, 0, when);
	o = json_pack("{s:s, s:I, s:o, s:s?}", "api", st->api_ok ? "ON" : "OFF", "outbox",
	              (json_int_t)st->outbox, "dead_letters",
	              st->dead_letters >= 0 ? json_integer(st->dead_letters) : json_null(),
	              "last_poll", st->last_poll_ms > 0 ? when : NULL);
	if (o)
		text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (text == NULL)
		return -1;
	if (h->status && strcmp(h->status, text) == 0) {
		free(text);
		return 0;
	}
	if (asprintf(&topic, "%s/ha/bridge", m->topic_prefix) < 0)
		topic = NULL; /* asprintf leaves it undefined */
	if (topic != NULL &&
	    publish(out, h->broker, "ha:bridge", "ha:bridge", topic, text, m->qos, true, 0) == 0) {
		free(h->status);
		h->status = text;
		text = NULL;
		rc = 0;
	}
	free(topic);
	free(text);
	return rc;
}

int ha_rule_entry(const struct rules_delivery *d, struct store_entry *out)
{
	char *rid = ha_object_id(d->rule);
	char *payload = event_payload(&d->msg, "fired", NULL);
	struct ha_entries e = {0};
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (rid && payload && d->topic) {
		char *topic = NULL;
		if (asprintf(&topic, "%s/ha/rule/%s", d->topic, rid) >= 0) {
			rc = publish(&e, d->target, d->msg.zone_id, d->msg.id, topic, payload,
			             d->qos, false, 0);
			free(topic);
		}
	}
	if (rc == 0)
		*out = e.v[0];
	free(e.v);
	free(rid);
	free(payload);
	return rc;
}

struct ha *ha_new(const char *broker)
{
	struct ha *h = calloc(1, sizeof(*h));
	if (h == NULL || (h->broker = strdup(broker)) == NULL) {
		free(h);
		return NULL;
	}
	return h;
}

const char *ha_broker(const struct ha *h)
{
	return h->broker;
}

void ha_free(struct ha *h)
{
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->npub; i++) {
		free(h->pub[i].topic);
		free(h->pub[i].payload);
	}
	free(h->pub);
	for (size_t i = 0; i < h->nsens; i++) {
		ha_sensor_release(&h->sens[i].s);
		free(h->sens[i].zone_id);
		free(h->sens[i].zone_name);
	}
	free(h->sens);
	for (size_t i = 0; i < h->nplate; i++)
		free(h->plate_zones[i]);
	free(h->plate_zones);
	for (size_t i = 0; i < h->nzones; i++) {
		free((char *)h->zones[i].id);
		free((char *)h->zones[i].name);
	}
	free(h->zones);
	free(h->status);
	for (size_t i = 0; i < h->npersp; i++)
		free(h->persp[i]);
	free(h->persp);
	free(h->broker);
	free(h);
}

int ha_restore(struct ha *h, const char *topic, const char *payload)
{
	struct published *v = realloc(h->pub, (h->npub + 1) * sizeof(*v));

	if (v == NULL)
		return -1;
	h->pub = v;
	v[h->npub].topic = strdup(topic);
	v[h->npub].payload = strdup(payload);
	v[h->npub].wanted = false;
	if (v[h->npub].topic == NULL || v[h->npub].payload == NULL) {
		free(v[h->npub].topic);
		free(v[h->npub].payload);
		return -1;
	}
	h->npub++;
	return 0;
}

size_t ha_published_count(const struct ha *h)
{
	return h->npub;
}

int ha_set_perspectives(struct ha *h, const char *const *names, size_t n)
{
	char **v = calloc(n ? n : 1, sizeof(*v));

	if (v == NULL)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if ((v[i] = strdup(names[i])) == NULL) {
			while (i-- > 0)
				free(v[i]);
			free(v);
			return -1;
		}
	}
	for (size_t i = 0; i < h->npersp; i++)
		free(h->persp[i]);
	free(h->persp);
	h->persp = v;
	h->npersp = n;
	return 0;
}
