/* The control plane: operators' MQTT commands (switch the video wall, set the arming mode,
 * refresh), alarm call-ups from the outbox (control.wall) under the wall's hold and
 * priority, the retained state topics, and the perspectives, switch and mode commands. */
#ifndef TB_CONTROL_H
#define TB_CONTROL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge/mqtt.h"
#include "bridge/store.h"
#include "config/config.h"
#include "rules/hold.h"

#define CONTROL_MAX_PAYLOAD 4096   /* a bigger command is refused */
#define CONTROL_SWITCH_GAP_MS 1000 /* at most one live_switch_preset a second, whole wall */
#define CONTROL_SWITCH_TRIES 3     /* attempts of one switch before it fails */

/* Perspectives parsed from a /perspectives document; strings owned by the list. */
struct control_perspectives {
	struct hold_perspective *v;
	char **layouts; /* per perspective, "" when none */
	size_t n;
	json_t *doc; /* the document the strings point into */
};
/* Takes a reference to doc (a validated /perspectives document). 0, or -1 + err. */
int control_perspectives_parse(json_t *doc, struct control_perspectives *out, char *err,
                               size_t errsz);
void control_perspectives_release(struct control_perspectives *p);

/* The current arming mode: state.db's when it is one of control.modes, else the first of
 * control.modes; "" when there is no control.modes. 0, or -1 (store error, out empty). */
int control_mode_read(struct store *s, const struct config *cfg, char *out, size_t n);

struct control;

/* A control plane for cfg (what it needs is copied: a reload does not change it). Opens its
 * own state database connection and API client. wake(arg) is called after state or result
 * messages were queued for the brokers. NULL with err. */
struct control *control_new(const struct config *cfg, const char *db_path, void (*wake)(void *arg),
                            void *arg, char *err, size_t errsz);
/* Starts the thread: it publishes the state at once and then serves commands and call-ups.
 * 0/-1. */
int control_start(struct control *c);
/* Asks the thread to stop and joins it, waiting at most ms: -1 when it is still inside an API
 * request (then leave it to the process exit and do not free c). */
int control_stop_timed(struct control *c, int64_t ms);
void control_free(struct control *c); /* after a successful stop; NULL is fine */

/* cb(arg) is called from the control thread each time a refresh command is taken (not for
 * the periodic re-read), so that others that read the API on a refresh (Home Assistant's
 * zones) do it once per command too. Set before control_start. */
void control_set_refresh_cb(struct control *c, void (*cb)(void *arg), void *arg);

/* cb(arg, names, n) is called from the control thread whenever the perspectives read from
 * the API changed (the first read included); names are borrowed for the call. Set before
 * control_start. */
void control_set_perspectives_cb(struct control *c,
                                 void (*cb)(void *arg, const char *const *names, size_t n),
                                 void *arg);

/* Thread-safe, and quick (called from the delivery loop's message callback): a message that
 * arrived on broker's <prefix>/cmd/#. Copies what it needs. */
void control_command_push(struct control *c, const char *broker, const struct mqtt_message *msg);

/* The argument of a command payload: a plain string, a JSON string, or the field key of a
 * JSON object, whose request_id (any JSON value but null) goes to *request_id (a new
 * reference, or NULL). key NULL: the command takes no argument (refresh), so only nothing or
 * an object is accepted. *arg (caller frees) is NULL when the payload is empty or the object
 * has no key. 0, or -1 with why when it does not parse; *request_id may be set then too, so
 * that the error answer echoes it (the caller releases it either way). The payload is
 * untrusted: tests/fuzz/fuzz_command.c drives this. */
int control_command_arg(const char *payload, const char *key, json_t **request_id, char **arg,
                        char *why, size_t whysz);

/* tether-bridge perspectives | switch NAME|ID | mode [NAME]: the exit code. */
int control_cli(const char *config_path, const char *command, int argc, char **argv);

#endif
