/* The on/off logic of one Home Assistant binary sensor (one zone, one flag), as a pure
 * state machine: no I/O, no clock. The bridge drives the state itself rather than leaving it
 * to a discovery-level off_delay, which would turn a still-open event off. */
#ifndef TB_HA_SENSOR_H
#define TB_HA_SENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Zero-initialised: off, nothing open. */
struct ha_sensor {
	char **open; /* ids of the open events that carry the flag */
	size_t nopen;
	int64_t off_at; /* a pulse keeps the sensor on until then (Unix ms); 0: none */
	bool on;        /* the state last reported */
};

enum ha_sensor_change { HA_SENSOR_SAME, HA_SENSOR_ON, HA_SENSOR_OFF };

/* One revision of event id: has_flag whether it carries the sensor's flag, complete whether
 * it has ended. On while some event with the flag is open; an event that arrives already
 * complete (never seen open) pulses it on until now + off_delay_ms; an open one that
 * completes, or loses the flag, no longer holds it on. *change says what to report.
 * 0, or -1 on ENOMEM (state unchanged). */
int ha_sensor_event(struct ha_sensor *s, const char *id, bool has_flag, bool complete, int64_t now,
                    int64_t off_delay_ms, enum ha_sensor_change *change);
/* Time passes: the pulse may end. Returns what to report. */
enum ha_sensor_change ha_sensor_tick(struct ha_sensor *s, int64_t now);
/* Frees the open list and zeroes s. */
void ha_sensor_release(struct ha_sensor *s);

#endif
