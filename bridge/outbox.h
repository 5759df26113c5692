/* Outbox entries: the target names that tie an entry to its publisher ("mqtt.<name>",
 * "webhook.<name>") and the entry one rule's delivery becomes. The poller queues these
 * entries, explain prints them, and the daemon and the publishers serve targets by name. */
#ifndef TB_OUTBOX_H
#define TB_OUTBOX_H

#include "bridge/store.h"
#include "rules/rules.h"

/* The target of every perspective delivery (call-ups on the video wall): one queue served
 * by the control module, its extra {"perspective","rule","hold_ms","max_delay_ms","rank",
 * "top"} and the message as payload. */
#define OUTBOX_WALL "control.wall"

/* "<kind>.<name>" for kind "mqtt" or "webhook": a new string (caller frees), NULL on ENOMEM. */
char *outbox_target(const char *kind, const char *name);

/* The outbox entry for one delivery of a rule: target "mqtt.<name>" with the topic, the
 * message (or the rule's body) as payload and {"qos","retain"} as extra; or target
 * "webhook.<name>" with no URL (it carries tokens: the publisher takes it from the config
 * when it sends), the v1 message as payload and {"text","body"} as extra for the webhook
 * formatter; or, for a "homeassistant" delivery, the rule entity's event on target
 * "mqtt.<name>" (ha_rule_entry). Strings in out are new (store_entry_release). 0/-1. */
int outbox_entry_build(const struct rules_delivery *d, struct store_entry *out);

#endif
