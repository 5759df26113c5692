/* Binary sensor state (see ha_sensor.h). */
#include "bridge/ha_sensor.h"

#include <stdlib.h>
#include <string.h>

static enum ha_sensor_change settle(struct ha_sensor *s, int64_t now)
{
	bool want = s->nopen > 0 || (s->off_at > 0 && now < s->off_at);

	if (s->off_at > 0 && now >= s->off_at)
		s->off_at = 0;
	if (want == s->on)
		return HA_SENSOR_SAME;
	s->on = want;
	return want ? HA_SENSOR_ON : HA_SENSOR_OFF;
}

int ha_sensor_event(struct ha_sensor *s, const char *id, bool has_flag, bool complete, int64_t now,
                    int64_t off_delay_ms, enum ha_sensor_change *change)
{
	size_t i;

	for (i = 0; i < s->nopen && strcmp(s->open[i], id) != 0; i++)
		;
	bool known = i < s->nopen;
	if (has_flag && !complete) {
		if (!known) {
			char **v = realloc(s->open, (s->nopen + 1) * sizeof(*v));
			if (v == NULL)
				return -1;
			s->open = v;
			if ((v[s->nopen] = strdup(id)) == NULL)
				return -1;
			s->nopen++;
		}
	} else {
		if (known) {
			free(s->open[i]);
			s->open[i] = s->open[--s->nopen];
		} else if (has_flag) {
			/* at least 1 ms: a pulse is always seen on, then off */
			int64_t until = now + (off_delay_ms > 0 ? off_delay_ms : 1);
			if (until > s->off_at)
				s->off_at = until;
		}
	}
	*change = settle(s, now);
	return 0;
}

enum ha_sensor_change ha_sensor_tick(struct ha_sensor *s, int64_t now)
{
	return settle(s, now);
}

void ha_sensor_release(struct ha_sensor *s)
{
	for (size_t i = 0; i < s->nopen; i++)
		free(s->open[i]);
	free(s->open);
	memset(s, 0, sizeof(*s));
}
