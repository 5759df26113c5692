/* The delivery loop: one thread that drains the outbox to every target (MQTT brokers now,
 * webhooks through the same loop), acknowledging an entry only when its target has it.
 * It owns the process's signal handling: SIGTERM/SIGINT stop it, SIGHUP calls back. */
#ifndef TB_DELIVER_H
#define TB_DELIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge/mqtt.h"

struct deliver;

/* Opens its own connection to the state database at db_path. sigfd is the daemon's
 * signalfd for SIGTERM, SIGINT and SIGHUP (borrowed: the daemon owns the signals, their
 * mask and the descriptor); the loop watches it and calls the stop or reload callback.
 * NULL with err on failure. */
struct deliver *deliver_new(const char *db_path, int sigfd, char *err, size_t errsz);
void deliver_free(struct deliver *d);

/* Adds a broker under its outbox target name ("mqtt.home"); the options are copied. 0/-1. */
int deliver_add_mqtt(struct deliver *d, const char *target, const struct mqtt_options *opt);

struct webhook;
/* Adds a webhook publisher (target "webhook.<name>"); takes ownership. 0/-1. */
int deliver_add_webhook(struct deliver *d, struct webhook *w);

/* The broker behind target ("mqtt.home"), for subscriptions and their message callback
 * (set before deliver_run); borrowed, NULL if there is none. */
struct mqtt *deliver_mqtt(struct deliver *d, const char *target);
/* cb(arg, target) from the loop's thread each time target's broker is connected and every
 * subscription answered: at the first connection and after each reconnect. */
void deliver_set_connect_cb(struct deliver *d, void (*cb)(void *arg, const char *target),
                            void *arg);

/* Thread-safe: new entries are in the outbox, look now rather than at the next tick. */
void deliver_wakeup(struct deliver *d);

/* Called from the loop's thread when SIGHUP arrives. */
void deliver_set_reload_cb(struct deliver *d, void (*cb)(void *arg), void *arg);
/* Called from the loop's thread as soon as SIGTERM or SIGINT arrives (before the loop
 * stops its publishers), so other threads can start stopping too. */
void deliver_set_stop_cb(struct deliver *d, void (*cb)(void *arg), void *arg);

/* Runs until SIGTERM/SIGINT, then stops cleanly: the brokers get their
 * `offline`, entries in flight stay in the outbox. 0, or -1 on a fatal error. */
int deliver_run(struct deliver *d);

#endif
