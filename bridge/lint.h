/* Warnings for a config that loads but will do little or nothing useful: no rules, a target
 * no rule names, a text template a webhook never sends, a state_dir this user cannot write.
 * check prints them and still exits 0; they never stop the daemon. */
#ifndef TB_LINT_H
#define TB_LINT_H

#include "config/config.h"

/* Adds one "warning: ..." entry per finding to warns, at the node it is about (the file
 * alone when there is no node). cfg must have loaded without errors. */
void lint_config(const struct config *cfg, struct cfg_errors *warns);

#endif
