/* Outbox entries and target names (see outbox.h). What an entry holds is decided here once,
 * so the daemon queues exactly what explain shows. */
#include "bridge/outbox.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bridge/homeassistant.h"
#include "rules/normalize.h"

char *outbox_target(const char *kind, const char *name)
{
	char *t;

	if (asprintf(&t, "%s.%s", kind, name) < 0)
		return NULL;
	return t;
}

int outbox_entry_build(const struct rules_delivery *d, struct store_entry *out)
{
	json_t *extra = NULL;
	bool mqtt = strcmp(d->target_kind, "mqtt") == 0;

	if (strcmp(d->target_kind, "homeassistant") == 0)
		return ha_rule_entry(d, out); /* an entity's event, on the broker's own target */
	memset(out, 0, sizeof(*out));
	out->msg_id = strdup(d->msg.id);
	out->zone_id = strdup(d->msg.zone_id);
	if (strcmp(d->target_kind, "perspective") == 0) {
		/* one queue for the whole wall: the control module serves it */
		out->target = strdup(OUTBOX_WALL);
		out->payload = message_dump(&d->msg);
		extra =
		    json_pack("{s:s, s:s, s:I, s:I, s:i, s:b}", "perspective", d->target, "rule",
		              d->rule, "hold_ms", (json_int_t)d->hold_ms, "max_delay_ms",
		              (json_int_t)d->max_delay_ms, "rank", d->rank, "top", d->top);
	} else if (mqtt) {
		out->target = outbox_target(d->target_kind, d->target);
		out->topic_or_url = strdup(d->topic ? d->topic : "");
		out->payload = d->body ? strdup(d->body) : message_dump(&d->msg);
		extra = json_pack("{s:i, s:b}", "qos", d->qos, "retain", d->retain);
	} else {
		out->target = outbox_target(d->target_kind, d->target);
		out->payload = message_dump(&d->msg);
		extra = json_object();
		if (extra && d->text)
			json_object_set_new(extra, "text", json_string(d->text));
		if (extra && d->body)
			json_object_set_new(extra, "body", json_string(d->body));
	}
	if (extra)
		out->extra = json_dumps(extra, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(extra);
	if (out->msg_id == NULL || out->zone_id == NULL || out->target == NULL ||
	    (mqtt && out->topic_or_url == NULL) || out->payload == NULL || out->extra == NULL) {
		store_entry_release(out);
		return -1;
	}
	out->payload_len = strlen(out->payload);
	return 0;
}
