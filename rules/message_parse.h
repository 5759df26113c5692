/* The bridge's own v1 message (docs/message.md) read back into a struct message, so that a
 * message taken from MQTT, a webhook or the dead letters can be run through the rules
 * again (explain). */
#ifndef TB_MESSAGE_PARSE_H
#define TB_MESSAGE_PARSE_H

#include <jansson.h>
#include <stddef.h>

#include "rules/normalize.h"

/* Fills out from a v1 message object ("schema": "tether-bridge/v1"). The revision comes
 * from the id ("kind:source_id:revision"); the watchlist match and the rule are dropped,
 * as the rules set them again. Returns 0, or -1 with the field at fault in err
 * ("occurred_at: expected a time", "flags: unknown flag 'x'"). */
int message_from_json(const json_t *o, struct message *out, char *err, size_t errsz);

#endif
