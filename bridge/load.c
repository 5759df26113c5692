/* Loading a config and its rules together, for every command that needs both (run, check,
 * explain, the reload). Lives apart from the CLI so the library links without main.c. */
#include <stdlib.h>
#include <string.h>

#include "bridge/bridge.h"

struct targets {
	struct rules_target_def *v;
	size_t n;
};

static void targets_from_config(const struct config *cfg, struct targets *t)
{
	t->v = calloc(2 * cfg->nmqtt + cfg->nwebhooks + 1, sizeof(*t->v));
	t->n = 0;
	if (t->v == NULL)
		return;
	for (size_t i = 0; i < cfg->nmqtt; i++) {
		t->v[t->n++] = (struct rules_target_def){.kind = "mqtt",
		                                         .name = cfg->mqtt[i].name,
		                                         .topic_prefix = cfg->mqtt[i].topic_prefix,
		                                         .qos = cfg->mqtt[i].qos,
		                                         .retain = cfg->mqtt[i].retain};
		if (cfg->mqtt[i].ha.enabled)
			t->v[t->n++] =
			    (struct rules_target_def){.kind = "homeassistant",
			                              .name = cfg->mqtt[i].name,
			                              .topic_prefix = cfg->mqtt[i].topic_prefix,
			                              .qos = cfg->mqtt[i].qos};
	}
	for (size_t i = 0; i < cfg->nwebhooks; i++)
		t->v[t->n++] =
		    (struct rules_target_def){.kind = "webhook",
		                              .name = cfg->webhooks[i].name,
		                              .slack = cfg->webhooks[i].format == WEBHOOK_SLACK};
}

/* When the config has errors its targets are unknown: take their names from the tree so
 * that the rules can still be checked. */
static void targets_from_doc(const struct ynode *root, struct targets *t)
{
	const struct ynode *m = ynode_get(root, "mqtt"), *w = ynode_get(root, "webhooks");
	size_t nm = m && m->type == YNODE_MAP ? m->n : 0;
	size_t nw = w && w->type == YNODE_MAP ? w->n : 0;

	t->v = calloc(2 * nm + nw + 1, sizeof(*t->v));
	t->n = 0;
	if (t->v == NULL)
		return;
	for (size_t i = 0; i < nm; i++) {
		t->v[t->n++] = (struct rules_target_def){.kind = "mqtt",
		                                         .name = m->keys[i]->value,
		                                         .topic_prefix = CFG_MQTT_TOPIC_PREFIX,
		                                         .qos = CFG_MQTT_QOS};
		t->v[t->n++] = (struct rules_target_def){.kind = "homeassistant",
		                                         .name = m->keys[i]->value,
		                                         .topic_prefix = CFG_MQTT_TOPIC_PREFIX,
		                                         .qos = CFG_MQTT_QOS};
	}
	for (size_t i = 0; i < nw; i++)
		t->v[t->n++] =
		    (struct rules_target_def){.kind = "webhook", .name = w->keys[i]->value};
}

int bridge_load(const char *path, struct config **cfgp, struct rules **rulesp,
                struct cfg_errors *errs)
{
	size_t before = errs->n;
	struct config *cfg = config_load(path, errs);
	struct rules *rules = NULL;
	struct targets t = {0};

	if (cfg) {
		targets_from_config(cfg, &t);
		rules = rules_compile(cfg->doc->root, t.v, t.n, errs);
	} else {
		struct cfg_errors ignored = {0};
		struct ydoc *doc = ydoc_load(path, &ignored);
		if (doc && doc->root && doc->root->type == YNODE_MAP) {
			targets_from_doc(doc->root, &t);
			rules = rules_compile(doc->root, t.v, t.n, errs);
		}
		cfg_errors_release(&ignored);
		ydoc_free(doc);
	}
	free(t.v);
	if (cfg == NULL || rules == NULL || errs->n > before) {
		rules_free(rules);
		config_free(cfg);
		return -1;
	}
	*cfgp = cfg;
	*rulesp = rules;
	return 0;
}

void bridge_tether_opts(const struct config *cfg, struct tether_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->base_url = cfg->tether.base_url;
	o->access_token = cfg->tether.access_token;
	o->client_id = cfg->tether.client_id;
	o->client_secret = cfg->tether.client_secret;
	o->redirect_uri = cfg->tether.redirect_uri;
	o->state_dir = cfg->state_dir;
	o->insecure = cfg->tether.insecure;
	o->concurrency = cfg->poll.concurrency;
	o->timeout_ms = cfg->tether.timeout_ms;
}
