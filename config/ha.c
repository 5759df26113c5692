/* The `homeassistant` key of a broker: Home Assistant MQTT discovery's settings, with
 * defaults that work with an untouched Home Assistant (prefix `homeassistant`, a few
 * binary sensors per zone, a 30 s pulse for events that arrive already complete). */
#include "config/config.h"

#include <stdlib.h>
#include <string.h>

#include "rules/normalize.h"

/* The binary_sensor device classes Home Assistant documents (binary_sensor integration). */
static const char *const device_classes[] = {"battery",
                                             "battery_charging",
                                             "carbon_monoxide",
                                             "cold",
                                             "connectivity",
                                             "door",
                                             "garage_door",
                                             "gas",
                                             "heat",
                                             "light",
                                             "lock",
                                             "moisture",
                                             "motion",
                                             "moving",
                                             "occupancy",
                                             "opening",
                                             "plug",
                                             "power",
                                             "presence",
                                             "problem",
                                             "running",
                                             "safety",
                                             "smoke",
                                             "sound",
                                             "tamper",
                                             "update",
                                             "vibration",
                                             "window",
                                             NULL};

/* Defaults: what a person looks at first (motion, a face, an intrusion, a car). */
static const struct {
	const char *flag, *device_class;
} default_sensors[] = {
    {"motion", "motion"}, {"face", "occupancy"}, {"intrusion", "occupancy"}, {"car", "presence"}};

/* The event entity's event_type is the message's first flag in this order; flags not
 * listed follow in schema order. Intrusions and line crossings first, diagnostics last. */
static const char *const default_priority[] = {"intrusion",
                                               "tripwire",
                                               "face",
                                               "loitering",
                                               "abandoned_object",
                                               "object_removal",
                                               "missing_object",
                                               "people_gathering",
                                               "fast_moving",
                                               "alarm",
                                               "car",
                                               "lpr",
                                               "parking",
                                               "motion",
                                               "pir"};

static int dclass_valid(const char *s)
{
	for (size_t i = 0; device_classes[i]; i++)
		if (strcmp(device_classes[i], s) == 0)
			return 1;
	return 0;
}

static int add_sensor(struct cfg_ha *ha, int flag, const char *dclass)
{
	struct cfg_ha_sensor *v = realloc(ha->sensors, (ha->nsensors + 1) * sizeof(*v));
	if (v == NULL)
		return -1;
	ha->sensors = v;
	v[ha->nsensors].flag = flag;
	v[ha->nsensors].device_class = dclass ? strdup(dclass) : NULL;
	if (dclass && v[ha->nsensors].device_class == NULL)
		return -1;
	ha->nsensors++;
	return 0;
}

static void load_sensors(struct cfg_ha *ha, const struct ynode *m, struct cfg_errors *errs)
{
	if (!ynode_expect(m, YNODE_MAP, "binary_sensors", errs))
		return;
	for (size_t i = 0; i < m->n; i++) {
		const struct ynode *k = m->keys[i], *v = m->items[i];
		int flag = msg_flag_index(k->value);
		const char *dc = NULL;
		if (flag < 0) {
			ynode_error(errs, k, "'binary_sensors': unknown flag '%s'", k->value);
			continue;
		}
		if (v->type != YNODE_SCALAR) {
			ynode_error(errs, v, "'binary_sensors.%s': expected a device class",
			            k->value);
			continue;
		}
		if (!ynode_is_null(v) && strcmp(v->value, "none") != 0) {
			if (!dclass_valid(v->value)) {
				ynode_error(errs, v,
				            "'binary_sensors.%s': unknown device class '%s' (Home "
				            "Assistant's binary_sensor classes: motion, occupancy, "
				            "presence, ...)",
				            k->value, v->value);
				continue;
			}
			dc = v->value;
		}
		if (add_sensor(ha, flag, dc) < 0)
			ynode_error(errs, v, "out of memory");
	}
}

static void load_priority(struct cfg_ha *ha, const struct ynode *s, struct cfg_errors *errs)
{
	if (!ynode_expect(s, YNODE_SEQ, "event_priority", errs))
		return;
	for (size_t i = 0; i < s->n; i++) {
		const struct ynode *v = s->items[i];
		int flag = v->type == YNODE_SCALAR ? msg_flag_index(v->value) : -1;
		bool dup = false;
		if (flag < 0) {
			ynode_error(errs, v, "'event_priority': unknown flag '%s'",
			            v->type == YNODE_SCALAR ? v->value : "?");
			continue;
		}
		for (size_t j = 0; j < ha->npriority && !dup; j++)
			dup = ha->priority[j] == flag;
		if (dup)
			ynode_error(errs, v, "'event_priority': '%s' is listed twice", v->value);
		else
			ha->priority[ha->npriority++] = flag;
	}
}

/* Completes the priority list with every flag not listed, in schema order. */
static void priority_fill(struct cfg_ha *ha)
{
	for (size_t f = 0; f < msg_flag_count; f++) {
		bool have = false;
		for (size_t j = 0; j < ha->npriority && !have; j++)
			have = ha->priority[j] == (int)f;
		if (!have)
			ha->priority[ha->npriority++] = (int)f;
	}
}

void config_ha_load(struct cfg_ha *ha, const struct ynode *key, const struct ynode *v,
                    struct cfg_errors *errs)
{
	static const char *const keys[] = {"discovery_prefix", "binary_sensors", "off_delay",
	                                   "event_priority", NULL};
	const struct ynode *n;
	const char *s;
	int64_t ms;

	memset(ha, 0, sizeof(*ha));
	ha->line = key ? key->line : v->line;
	ha->column = key ? key->column : v->column;
	ha->off_delay_ms = CFG_HA_OFF_DELAY_MS;
	ha->discovery_prefix = strdup(CFG_HA_PREFIX);
	ha->priority = calloc(msg_flag_count, sizeof(*ha->priority));
	if (ha->discovery_prefix == NULL || ha->priority == NULL) {
		ynode_error(errs, v, "out of memory");
		return;
	}
	if (v->type == YNODE_SCALAR) {
		if (strcmp(v->value, "true") == 0) {
			ha->enabled = true;
		} else if (strcmp(v->value, "false") != 0 && !ynode_is_null(v)) {
			ynode_error(errs, v, "'homeassistant': expected true, false or a map");
			return;
		}
	} else if (ynode_expect(v, YNODE_MAP, "homeassistant", errs)) {
		ha->enabled = true;
		ynode_check_keys(v, keys, "homeassistant", errs);
		if ((n = ynode_get(v, "discovery_prefix")) != NULL &&
		    ynode_str(v, "discovery_prefix", false, &s, errs) == 1) {
			size_t len = strlen(s);
			while (len > 0 && s[len - 1] == '/')
				len--;
			if (len == 0 || strpbrk(s, "+#") != NULL || len > 256) {
				ynode_error(
				    errs, n,
				    "'discovery_prefix': expected a topic without '+' or '#', "
				    "1 to 256 bytes, found '%s'",
				    s);
			} else {
				free(ha->discovery_prefix);
				if ((ha->discovery_prefix = strndup(s, len)) == NULL)
					ynode_error(errs, n, "out of memory");
			}
		}
		if (ynode_duration(v, "off_delay", false, &ms, errs) == 1) {
			if (ms < 1000 || ms > 24LL * 3600 * 1000)
				ynode_error(errs, ynode_get(v, "off_delay"),
				            "'off_delay': must be between 1s and 1d, found '%s'",
				            ynode_get(v, "off_delay")->value);
			else
				ha->off_delay_ms = ms;
		}
		if ((n = ynode_get(v, "binary_sensors")) != NULL)
			load_sensors(ha, n, errs);
		if ((n = ynode_get(v, "event_priority")) != NULL)
			load_priority(ha, n, errs);
	}
	if (ha->sensors == NULL && !(v->type == YNODE_MAP && ynode_get(v, "binary_sensors"))) {
		for (size_t i = 0; i < sizeof(default_sensors) / sizeof(default_sensors[0]); i++)
			if (add_sensor(ha, msg_flag_index(default_sensors[i].flag),
			               default_sensors[i].device_class) < 0)
				ynode_error(errs, v, "out of memory");
	}
	if (ha->npriority == 0)
		for (size_t i = 0; i < sizeof(default_priority) / sizeof(default_priority[0]); i++)
			ha->priority[ha->npriority++] = msg_flag_index(default_priority[i]);
	priority_fill(ha);
}

void config_ha_release(struct cfg_ha *ha)
{
	for (size_t i = 0; i < ha->nsensors; i++)
		free(ha->sensors[i].device_class);
	free(ha->sensors);
	free(ha->priority);
	free(ha->discovery_prefix);
	memset(ha, 0, sizeof(*ha));
}
