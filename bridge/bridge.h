/* Pieces the commands share: loading the config and the rules together, the daemon, and
 * the explain command. */
#ifndef TB_BRIDGE_H
#define TB_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "bridge/tether.h"
#include "config/config.h"
#include "rules/rules.h"

#define TB_VERSION "0.1.0"
#define TB_USER_AGENT "tether-bridge/" TB_VERSION /* HTTP User-Agent of every request */

/* load.c: loads the config and compiles its rules. Every problem goes to errs. On success both
 * out pointers are set (caller frees) and 0 is returned; otherwise -1 and nothing is set.
 * Rules are checked even when the config itself has errors, so one run lists all. */
int bridge_load(const char *path, struct config **cfg, struct rules **rules,
                struct cfg_errors *errs);

/* load.c: the API client's options from cfg (strings borrowed from it). */
void bridge_tether_opts(const struct config *cfg, struct tether_opts *o);

/* daemon.c: tether-bridge run. Returns the exit code. */
int daemon_main(const char *config_path);

/* explain.c: tether-bridge explain. perspectives_path (NULL: none) is a saved /perspectives
 * document that resolves call-ups (`auto`, names). Webhook URLs and configured header values
 * are shown as the config dump shows them unless show_secrets. input is a Tether document
 * or v1 messages; json: one JSON line per record, else the readable layout. Returns the
 * exit code. */
int explain_main(const char *config_path, const char *zones_path, const char *perspectives_path,
                 const char *input, int64_t now_ms, bool show_secrets, bool json);

#endif
