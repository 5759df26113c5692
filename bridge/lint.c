/* check's warnings. They read the config tree, where every node has its position, rather
 * than the compiled rules, which keep no positions; the tree is already known valid. */
#include "bridge/lint.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whether a rule's `to` names kind/name. */
static bool target_used(const struct ynode *rules, const char *kind, const char *name)
{
	for (size_t i = 0; rules != NULL && rules->type == YNODE_SEQ && i < rules->n; i++) {
		const struct ynode *to = ynode_get(rules->items[i], "to");
		size_t n = to == NULL ? 0 : to->type == YNODE_SEQ ? to->n : 1;
		for (size_t j = 0; j < n; j++) {
			const struct ynode *t = to->type == YNODE_SEQ ? to->items[j] : to;
			const struct ynode *v = ynode_get(t, kind);
			if (v != NULL && v->type == YNODE_SCALAR && strcmp(v->value, name) == 0)
				return true;
		}
	}
	return false;
}

static const struct cfg_webhook *find_webhook(const struct config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nwebhooks; i++)
		if (strcmp(cfg->webhooks[i].name, name) == 0)
			return &cfg->webhooks[i];
	return NULL;
}

/* `text` on a webhook whose format has no text: json and cloudevents send the message (or
 * `body`), so the template would be compiled and never seen. */
static void lint_texts(const struct config *cfg, const struct ynode *rules,
                       struct cfg_errors *warns)
{
	for (size_t i = 0; rules != NULL && rules->type == YNODE_SEQ && i < rules->n; i++) {
		const struct ynode *to = ynode_get(rules->items[i], "to");
		size_t n = to == NULL ? 0 : to->type == YNODE_SEQ ? to->n : 1;
		for (size_t j = 0; j < n; j++) {
			const struct ynode *t = to->type == YNODE_SEQ ? to->items[j] : to;
			const struct ynode *w = ynode_get(t, "webhook"),
			                   *text = ynode_get(t, "text");
			const struct cfg_webhook *wh;
			if (w == NULL || text == NULL || w->type != YNODE_SCALAR ||
			    (wh = find_webhook(cfg, w->value)) == NULL)
				continue;
			if (wh->format == WEBHOOK_JSON || wh->format == WEBHOOK_CLOUDEVENTS)
				ynode_error(
				    warns, ynode_key_of(t, text),
				    "warning: 'text' is never sent: webhook '%s' has format %s "
				    "(only slack, discord and teams send a text; use 'body')",
				    wh->name, wh->format == WEBHOOK_JSON ? "json" : "cloudevents");
		}
	}
}

/* state_dir, or the nearest ancestor that exists when it is still to be created, must be
 * writable by whoever runs check (run the check as the daemon's user to learn for it). */
static void lint_state_dir(const struct config *cfg, struct cfg_errors *warns)
{
	char dir[PATH_MAX];
	const char *why;
	struct stat st;
	const struct ynode *at = ynode_get(cfg->doc ? cfg->doc->root : NULL, "state_dir");

	if (cfg->state_dir == NULL ||
	    snprintf(dir, sizeof(dir), "%s", cfg->state_dir) >= (int)sizeof(dir))
		return;
	for (;;) {
		if (access(dir, F_OK) == 0)
			break;
		char *slash = strrchr(dir, '/');
		if (slash == NULL) {
			snprintf(dir, sizeof(dir), ".");
			break;
		}
		if (slash == dir) {
			dir[1] = '\0';
			break;
		}
		*slash = '\0';
	}
	if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
		why = "not a directory";
	else if (access(dir, W_OK | X_OK) < 0)
		why = strerror(errno);
	else
		return;
	if (at != NULL)
		ynode_error(warns, at,
		            "warning: state_dir '%s' is not writable by uid %ld: '%s': %s",
		            cfg->state_dir, (long)geteuid(), dir, why);
	else
		cfg_errors_add(warns, cfg->file, 0, 0,
		               "warning: state_dir '%s' is not writable by uid %ld: '%s': %s",
		               cfg->state_dir, (long)geteuid(), dir, why);
}

void lint_config(const struct config *cfg, struct cfg_errors *warns)
{
	const struct ynode *root = cfg->doc ? cfg->doc->root : NULL;
	const struct ynode *rules = ynode_get(root, "rules");

	if (rules == NULL || rules->type != YNODE_SEQ || rules->n == 0) {
		if (rules != NULL)
			ynode_error(warns, rules, "warning: no rules: nothing will be delivered");
		else
			cfg_errors_add(warns, cfg->file, 0, 0,
			               "warning: no rules: nothing will be delivered");
	} else {
		for (size_t i = 0; i < cfg->nmqtt; i++)
			if (!target_used(rules, "mqtt", cfg->mqtt[i].name))
				cfg_errors_add(warns, cfg->file, cfg->mqtt[i].line,
				               cfg->mqtt[i].column,
				               "warning: mqtt broker '%s' is used by no rule "
				               "(it still gets the bridge's status)",
				               cfg->mqtt[i].name);
		for (size_t i = 0; i < cfg->nwebhooks; i++)
			if (!target_used(rules, "webhook", cfg->webhooks[i].name))
				cfg_errors_add(warns, cfg->file, cfg->webhooks[i].line,
				               cfg->webhooks[i].column,
				               "warning: webhook '%s' is used by no rule",
				               cfg->webhooks[i].name);
		lint_texts(cfg, rules, warns);
	}
	lint_state_dir(cfg, warns);
}
