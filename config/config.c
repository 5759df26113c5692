/* Loads tether-bridge.yaml into struct config: defaults, ranges, URLs, names and secrets are
 * checked here and every problem is added to the caller's cfg_errors with FILE:LINE:COL.
 * watchlists, rules and severity_order stay in the tree for the rule engine to validate. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "lib/suggest.h"

#define SEC 1000LL
#define MINUTE (60 * SEC)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

static const char *const format_names[] = {"json", "slack", "discord", "teams", "cloudevents"};
static const char *const order_names[] = {"zone", "none"}; /* enum webhook_order */

/* Allocation failures are load errors like any other, reported at `at` (NULL: unknown), so
 * a reload on SIGHUP that runs short of memory fails and the running config stays. */
static void *xcalloc(size_t n, size_t sz, const struct ynode *at, struct cfg_errors *errs)
{
	void *p = calloc(n ? n : 1, sz);
	if (p == NULL)
		ynode_error(errs, at, "out of memory");
	return p;
}

static char *xstrndup(const char *s, size_t len, const struct ynode *at, struct cfg_errors *errs)
{
	char *p = strndup(s, len);
	if (p == NULL)
		ynode_error(errs, at, "out of memory");
	return p;
}

static char *xstrdup(const char *s, const struct ynode *at, struct cfg_errors *errs)
{
	return xstrndup(s, strlen(s), at, errs);
}

static void fmt_duration(int64_t ms, char *out, size_t sz)
{
	long long v = (long long)ms;

	if (v == 0)
		snprintf(out, sz, "0");
	else if (v % DAY == 0)
		snprintf(out, sz, "%lldd", v / DAY);
	else if (v % HOUR == 0)
		snprintf(out, sz, "%lldh", v / HOUR);
	else if (v % MINUTE == 0)
		snprintf(out, sz, "%lldm", v / MINUTE);
	else if (v % SEC == 0)
		snprintf(out, sz, "%llds", v / SEC);
	else
		snprintf(out, sz, "%lldms", v);
}

/* True when errs already holds an error at n's position: an unset ${VAR} was reported
 * there, so the empty value it left needs no second message. */
static bool noted(const struct cfg_errors *errs, const struct ynode *n)
{
	for (size_t i = 0; i < errs->n; i++) {
		const struct cfg_error *e = &errs->v[i];
		if (e->line == n->line && e->column == n->column && strcmp(e->file, n->file) == 0)
			return true;
	}
	return false;
}

/* A key is "given" when it holds a value, or held one whose ${VAR} failed to expand. */
static bool given(const struct ynode *map, const char *key, const struct cfg_errors *errs)
{
	const struct ynode *n = ynode_get(map, key);
	if (n == NULL)
		return false;
	if (noted(errs, n))
		return true;
	return !ynode_is_null(n) && (n->type != YNODE_SCALAR || n->value[0] != '\0');
}

/* A map section of root; NULL when absent, null or not a map (that is reported). */
static const struct ynode *section(const struct ynode *root, const char *key,
                                   const char *const *keys, struct cfg_errors *errs)
{
	const struct ynode *n = ynode_get(root, key);

	if (n == NULL || ynode_is_null(n))
		return NULL;
	if (!ynode_expect(n, YNODE_MAP, key, errs))
		return NULL;
	ynode_check_keys(n, keys, key, errs);
	return n;
}

static void read_duration(const struct ynode *map, const char *key, int64_t min, int64_t max,
                          int64_t *out, struct cfg_errors *errs)
{
	int64_t v;
	char a[32], b[32];
	const struct ynode *n = ynode_get(map, key);

	if (ynode_duration(map, key, false, &v, errs) != 1)
		return;
	if (v >= min && v <= max) {
		*out = v;
		return;
	}
	fmt_duration(min, a, sizeof(a));
	fmt_duration(max, b, sizeof(b));
	if (max == INT64_MAX)
		ynode_error(errs, n, "'%s': must be at least %s, found '%s'", key, a, n->value);
	else
		ynode_error(errs, n, "'%s': must be between %s and %s, found '%s'", key, a, b,
		            n->value);
}

static void read_int(const struct ynode *map, const char *key, int min, int max, int *out,
                     struct cfg_errors *errs)
{
	int64_t v;
	if (ynode_int(map, key, false, min, max, &v, errs) == 1)
		*out = (int)v;
}

/* Optional string: absent, null or empty leaves *out alone and returns NULL; else sets
 * *out to a copy and returns the node. *bad is set when the value has the wrong type. */
static const struct ynode *read_opt_str(const struct ynode *map, const char *key, char **out,
                                        bool *bad, struct cfg_errors *errs)
{
	const struct ynode *n = ynode_get(map, key);
	const char *s;
	int rc;

	if (n == NULL || ynode_is_null(n))
		return NULL;
	rc = ynode_str(map, key, false, &s, errs);
	if (rc < 0 && bad)
		*bad = true;
	if (rc != 1 || *s == '\0')
		return NULL;
	free(*out);
	*out = xstrdup(s, n, errs);
	return n;
}

/* Optional secret (key or key_file): an empty value means absent. Returns the node it came
 * from when set. *bad is set when it is present but invalid. */
static const struct ynode *read_secret(const struct ynode *map, const char *key, char **out,
                                       bool *bad, struct cfg_errors *errs)
{
	char fkey[64];
	const struct ynode *n = ynode_get(map, key), *fn;
	char *s = NULL;
	int rc;

	snprintf(fkey, sizeof(fkey), "%s_file", key);
	fn = ynode_get(map, fkey);
	if (n != NULL && fn == NULL && ynode_is_null(n))
		return NULL;
	rc = ynode_secret(map, key, false, &s, errs);
	if (rc < 0) {
		*bad = true;
		return NULL;
	}
	if (rc == 0)
		return NULL;
	if (*s == '\0') {
		util_free_secret(s);
		return NULL;
	}
	util_free_secret(*out);
	*out = s;
	return n ? n : fn;
}

/* A URL split in place; the pointers point into the parsed string. */
struct url {
	char scheme[16];
	const char *host;
	size_t hostlen;
	long port; /* -1 if absent */
	bool userinfo, query, fragment;
	const char *path; /* "" or starting with '/' */
	size_t pathlen;
};

static bool host_char(int c, bool v6)
{
	return isalnum(c) || c == '.' || c == '-' || c == '_' || (v6 && (c == ':' || c == '%'));
}

/* Returns NULL, or why s is not a URL. */
static const char *url_parse(const char *s, struct url *u)
{
	const char *sep, *auth, *at, *hp, *portp = NULL;
	size_t alen, i;

	memset(u, 0, sizeof(*u));
	u->port = -1;
	for (const char *p = s; *p; p++) {
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return "spaces or control characters";
	}
	sep = strstr(s, "://");
	if (sep == NULL || sep == s || (size_t)(sep - s) >= sizeof(u->scheme))
		return "no scheme";
	for (i = 0; s + i < sep; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '-' && s[i] != '.')
			return "bad scheme";
		u->scheme[i] = (char)tolower((unsigned char)s[i]);
	}
	auth = sep + 3;
	alen = strcspn(auth, "/?#");
	at = NULL;
	for (i = 0; i < alen; i++) {
		if (auth[i] == '@')
			at = auth + i;
	}
	hp = auth;
	if (at != NULL) {
		u->userinfo = true;
		hp = at + 1;
	}
	if (*hp == '[') {
		const char *close = memchr(hp, ']', (size_t)(auth + alen - hp));
		if (close == NULL)
			return "bad host";
		u->host = hp + 1;
		u->hostlen = (size_t)(close - hp - 1);
		if (close + 1 < auth + alen) {
			if (close[1] != ':')
				return "bad host";
			portp = close + 2;
		}
		for (i = 0; i < u->hostlen; i++) {
			if (!host_char((unsigned char)u->host[i], true))
				return "bad host";
		}
	} else {
		const char *colon = memchr(hp, ':', (size_t)(auth + alen - hp));
		u->host = hp;
		u->hostlen = colon ? (size_t)(colon - hp) : (size_t)(auth + alen - hp);
		if (colon)
			portp = colon + 1;
		for (i = 0; i < u->hostlen; i++) {
			if (!host_char((unsigned char)u->host[i], false))
				return "bad host";
		}
	}
	if (u->hostlen == 0)
		return "no host";
	if (portp != NULL) {
		size_t plen = (size_t)(auth + alen - portp);
		long v = 0;
		if (plen == 0 || plen > 5)
			return "bad port";
		for (i = 0; i < plen; i++) {
			if (!isdigit((unsigned char)portp[i]))
				return "bad port";
			v = v * 10 + (portp[i] - '0');
		}
		if (v < 1 || v > 65535)
			return "bad port";
		u->port = v;
	}
	u->path = auth + alen;
	u->pathlen = strcspn(u->path, "?#");
	u->query = strchr(u->path, '?') != NULL;
	u->fragment = strchr(u->path, '#') != NULL;
	return NULL;
}

/* Parses the URL at n for key; reports and returns false when it is empty or malformed. */
static bool parse_url_at(const struct ynode *n, const char *key, struct url *u,
                         struct cfg_errors *errs)
{
	const char *why;

	if (n->value[0] == '\0') {
		if (!noted(errs, n))
			ynode_error(errs, n, "'%s': must not be empty", key);
		return false;
	}
	why = url_parse(n->value, u);
	if (why != NULL) {
		ynode_error(errs, n, "'%s': not a valid URL (%s)", key, why);
		return false;
	}
	return true;
}

static void load_tether(struct config *c, const struct ynode *root, struct cfg_errors *errs)
{
	static const char *const keys[] = {"base_url",          "client_id",
	                                   "client_secret",     "client_secret_file",
	                                   "redirect_uri",      "access_token",
	                                   "access_token_file", "insecure",
	                                   "timeout",           NULL};
	const struct ynode *t, *n;
	struct url u;
	bool bad = false;

	if (ynode_get(root, "tether") == NULL) {
		ynode_error(errs, root, "missing required key 'tether'");
		return;
	}
	t = section(root, "tether", keys, errs);
	if (t == NULL) {
		if (ynode_is_null(ynode_get(root, "tether")))
			ynode_error(errs, ynode_get(root, "tether"), "'tether': expected a map");
		return;
	}
	ynode_bool(t, "insecure", false, &c->tether.insecure, errs);
	read_duration(t, "timeout", SEC, 10 * MINUTE, &c->tether.timeout_ms, errs);

	if (ynode_str(t, "base_url", true, &(const char *){NULL}, errs) == 1) {
		n = ynode_get(t, "base_url");
		if (parse_url_at(n, "base_url", &u, errs)) {
			bool ok = true;
			if (strcmp(u.scheme, "http") == 0 && !c->tether.insecure) {
				ynode_error(errs, n,
				            "'base_url': http:// needs insecure: true (the "
				            "simulator only)");
				ok = false;
			} else if (strcmp(u.scheme, "http") != 0 &&
			           strcmp(u.scheme, "https") != 0) {
				ynode_error(errs, n, "'base_url': expected an https:// URL");
				ok = false;
			} else if (strcmp(u.scheme, "https") == 0 && c->tether.insecure) {
				/* insecure exists for the simulator on http://; with https:// it
				 * would only turn off certificate verification, silently */
				ynode_error(errs, ynode_get(t, "insecure"),
				            "'insecure': only for an http:// base_url (it would "
				            "turn off TLS verification)");
				ok = false;
			}
			if (u.userinfo) {
				ynode_error(errs, n,
				            "'base_url': must not contain a user name or password");
				ok = false;
			}
			if (u.query || u.fragment) {
				ynode_error(errs, n,
				            "'base_url': must not have a query or fragment");
				ok = false;
			}
			if (ok) {
				size_t len = strlen(n->value);
				size_t min = (size_t)(u.path - n->value);
				while (len > min && n->value[len - 1] == '/')
					len--;
				c->tether.base_url = xstrndup(n->value, len, n, errs);
			}
		}
	}

	read_secret(t, "access_token", &c->tether.access_token, &bad, errs);
	read_opt_str(t, "client_id", &c->tether.client_id, &bad, errs);
	read_secret(t, "client_secret", &c->tether.client_secret, &bad, errs);
	n = read_opt_str(t, "redirect_uri", &c->tether.redirect_uri, &bad, errs);
	if (n != NULL && parse_url_at(n, "redirect_uri", &u, errs) &&
	    strcmp(u.scheme, "http") != 0 && strcmp(u.scheme, "https") != 0)
		ynode_error(errs, n, "'redirect_uri': expected an http:// or https:// URL");
	if (bad || given(t, "access_token", errs) || given(t, "access_token_file", errs))
		return;
	bool id = given(t, "client_id", errs);
	bool secret = given(t, "client_secret", errs) || given(t, "client_secret_file", errs);
	if (!id && !secret) {
		ynode_error(errs, t,
		            "'tether': set 'access_token', or 'client_id', 'client_secret' and "
		            "'redirect_uri'");
		return;
	}
	if (!id)
		ynode_error(errs, t, "missing required key 'client_id'");
	if (!secret)
		ynode_error(errs, t,
		            "missing required key 'client_secret' (or 'client_secret_file')");
	if (!given(t, "redirect_uri", errs))
		ynode_error(errs, t, "missing required key 'redirect_uri'");
}

static void load_zones(struct config *c, const struct ynode *n, struct cfg_errors *errs)
{
	if (n->type == YNODE_SCALAR) {
		if (strcmp(n->value, "all") != 0)
			ynode_error(
			    errs, n,
			    "'zones': expected 'all' or a list of zone ids and names, found '%s'",
			    n->value);
		return;
	}
	if (n->type != YNODE_SEQ) {
		ynode_error(errs, n, "'zones': expected 'all' or a list of zone ids and names");
		return;
	}
	if (n->n == 0) {
		ynode_error(errs, n, "'zones': empty list (use 'all' for every zone)");
		return;
	}
	c->poll.zones = xcalloc(n->n, sizeof(*c->poll.zones), n, errs);
	if (c->poll.zones == NULL)
		return;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *z = n->items[i];
		bool dup = false;
		if (z->type != YNODE_SCALAR) {
			ynode_error(errs, z, "'zones': expected zone ids and names, found %s",
			            z->type == YNODE_MAP ? "a map" : "a list");
			continue;
		}
		if (z->value[0] == '\0') {
			if (!noted(errs, z))
				ynode_error(errs, z, "'zones': empty zone name");
			continue;
		}
		for (size_t j = 0; j < c->poll.nzones; j++)
			dup = dup || strcmp(c->poll.zones[j], z->value) == 0;
		if (dup) {
			ynode_error(errs, z, "'zones': '%s' is listed twice", z->value);
			continue;
		}
		if ((c->poll.zones[c->poll.nzones] = xstrdup(z->value, z, errs)) != NULL)
			c->poll.nzones++;
	}
	c->poll.zones_all = false;
}

static void load_poll(struct config *c, const struct ynode *root, struct cfg_errors *errs)
{
	static const char *const keys[] = {
	    "interval", "lookback",    "zones",          "location_id",     "events",
	    "plates",   "concurrency", "catchup_window", "catchup_max_age", "max_window_events",
	    NULL};
	const struct ynode *p = section(root, "poll", keys, errs), *n;
	bool ev_ok, pl_ok;

	if (p == NULL)
		return;
	read_duration(p, "interval", SEC, DAY, &c->poll.interval_ms, errs);
	read_duration(p, "lookback", 0, 7 * DAY, &c->poll.lookback_ms, errs);
	if ((n = ynode_get(p, "zones")) != NULL && !ynode_is_null(n))
		load_zones(c, n, errs);
	read_opt_str(p, "location_id", &c->poll.location_id, NULL, errs);
	ev_ok = ynode_bool(p, "events", false, &c->poll.events, errs) >= 0;
	pl_ok = ynode_bool(p, "plates", false, &c->poll.plates, errs) >= 0;
	if (ev_ok && pl_ok && !c->poll.events && !c->poll.plates)
		ynode_error(errs, p, "'poll': events and plates are both false; nothing to poll");
	read_int(p, "concurrency", 1, 64, &c->poll.concurrency, errs);
	read_int(p, "max_window_events", 0, 100000, &c->poll.max_window_events, errs);
	n = ynode_get(p, "catchup_window");
	read_duration(p, "catchup_window", SEC, 7 * DAY, &c->poll.catchup_window_ms, errs);
	if (n != NULL && c->poll.catchup_window_ms < c->poll.interval_ms) {
		char a[32];
		fmt_duration(c->poll.interval_ms, a, sizeof(a));
		ynode_error(errs, n, "'catchup_window': must be at least 'interval' (%s)", a);
	}
	read_duration(p, "catchup_max_age", 0, 365 * DAY, &c->poll.catchup_max_age_ms, errs);
}

static void load_misc(struct config *c, const struct ynode *root, struct cfg_errors *errs)
{
	static const char *const dkeys[] = {"max_outbox", "max_retry_age", NULL};
	static const char *const lkeys[] = {"level", "format", NULL};
	const struct ynode *d, *l, *n;
	const char *s;

	if ((n = ynode_get(root, "state_dir")) != NULL &&
	    ynode_str(root, "state_dir", false, &s, errs) == 1) {
		if (*s == '\0' || ynode_is_null(n)) {
			if (!noted(errs, n))
				ynode_error(errs, n, "'state_dir': must not be empty");
		} else {
			free(c->state_dir);
			c->state_dir = xstrdup(s, n, errs);
		}
	}

	if ((d = section(root, "delivery", dkeys, errs)) != NULL) {
		ynode_int(d, "max_outbox", false, 1, 1000000000, &c->delivery.max_outbox, errs);
		read_duration(d, "max_retry_age", SEC, 365 * DAY, &c->delivery.max_retry_age_ms,
		              errs);
	}

	if ((l = section(root, "log", lkeys, errs)) != NULL) {
		if (ynode_str(l, "level", false, &s, errs) == 1 &&
		    log_level_parse(s, &c->log.level) < 0)
			ynode_error(errs, ynode_get(l, "level"),
			            "'level': expected error, warn, info or debug, found '%s'", s);
		if (ynode_str(l, "format", false, &s, errs) == 1) {
			if (strcmp(s, "json") == 0)
				c->log.json = true;
			else if (strcmp(s, "text") == 0)
				c->log.json = false;
			else
				ynode_error(errs, ynode_get(l, "format"),
				            "'format': expected text or json, found '%s'", s);
		}
	}
}

/* A host name (RFC 1123 labels) or an IPv4 literal: what `run` resolves with getaddrinfo. */
static bool listen_host_valid(const char *h, size_t len)
{
	char v4[INET_ADDRSTRLEN];
	struct in_addr a4;
	size_t label = 0;

	if (len == 0 || len > 253)
		return false;
	if (strspn(h, "0123456789.") >= len) { /* all digits and dots: must be an address */
		if (len >= sizeof(v4))
			return false;
		memcpy(v4, h, len);
		v4[len] = '\0';
		return inet_pton(AF_INET, v4, &a4) == 1;
	}
	for (size_t i = 0; i < len; i++) {
		if (h[i] == '.') {
			if (label == 0 || h[i - 1] == '-')
				return false;
			label = 0;
		} else if (isalnum((unsigned char)h[i]) || (h[i] == '-' && label > 0)) {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return label > 0 && h[len - 1] != '-';
}

/* "HOST:PORT" (HOST a name or an IPv4 address) or "[IPV6]:PORT"; returns NULL or the
 * problem. The daemon's listener takes exactly these forms. */
static const char *listen_check(const char *s)
{
	const char *colon, *p;
	long port = 0;

	if (*s == '[') {
		const char *close = strchr(s, ']');
		char v6[INET6_ADDRSTRLEN];
		struct in6_addr a6;
		size_t len = close ? (size_t)(close - s - 1) : 0;
		if (close == NULL || close[1] != ':' || len == 0 || len >= sizeof(v6))
			return "expected HOST:PORT or [IPV6]:PORT";
		memcpy(v6, s + 1, len);
		v6[len] = '\0';
		if (inet_pton(AF_INET6, v6, &a6) != 1)
			return "not an IPv6 address in [ ]";
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL || colon == s)
			return "expected HOST:PORT or [IPV6]:PORT";
		if (!listen_host_valid(s, (size_t)(colon - s)))
			return "HOST must be a host name or an IPv4 address (IPv6 in [ ])";
	}
	p = colon + 1;
	if (*p == '\0' || strlen(p) > 5)
		return "port must be 1 to 65535";
	for (; *p; p++) {
		if (!isdigit((unsigned char)*p))
			return "port must be 1 to 65535";
		port = port * 10 + (*p - '0');
	}
	if (port < 1 || port > 65535)
		return "port must be 1 to 65535";
	return NULL;
}

static void load_metrics(struct config *c, const struct ynode *root, struct cfg_errors *errs)
{
	static const char *const keys[] = {"listen", NULL};
	const struct ynode *m = section(root, "metrics", keys, errs), *n;
	const char *why;

	if (m == NULL)
		return;
	if ((n = read_opt_str(m, "listen", &c->metrics.listen, NULL, errs)) == NULL)
		return;
	if ((why = listen_check(n->value)) != NULL) {
		ynode_error(errs, n, "'listen': %s, found '%s'", why, n->value);
		free(c->metrics.listen);
		c->metrics.listen = NULL;
	}
}

static bool name_valid(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
			return false;
	}
	return true;
}

static void file_option(const struct ynode *map, const char *key, char **out, bool tls, bool url_ok,
                        struct cfg_errors *errs)
{
	const struct ynode *n = read_opt_str(map, key, out, NULL, errs);

	if (n == NULL || !url_ok)
		return;
	if (!tls)
		ynode_error(errs, n, "'%s': only used with mqtts://", key);
	else if (access(n->value, R_OK) != 0)
		ynode_error(errs, n, "'%s': unable to read '%s': %s", key, n->value,
		            strerror(errno));
}

/* Far below MQTT's 65,535-byte topic limit, leaving room for "/plate/" and a zone name
 * (MSG_NAME_MAX) in the default topic. */
#define TOPIC_PREFIX_MAX 1024

static void load_broker(struct cfg_mqtt *m, const struct ynode *key, const struct ynode *v,
                        struct cfg_errors *errs)
{
	static const char *const keys[] = {
	    "url",       "username",     "password",      "password_file", "client_id", "qos",
	    "retain",    "topic_prefix", "ca_file",       "cert_file",     "key_file",  "insecure",
	    "keepalive", "protocol",     "homeassistant", "commands",      NULL};
	char what[160];
	const struct ynode *n, *cert, *keyf;
	bool url_ok = false, bad = false;
	const char *s;
	struct url u;

	m->name = xstrdup(key->value, key, errs);
	m->line = key->line;
	m->column = key->column;
	m->qos = CFG_MQTT_QOS;
	m->topic_prefix = xstrdup(CFG_MQTT_TOPIC_PREFIX, key, errs);
	m->keepalive_ms = 30 * SEC;
	if (asprintf(&m->client_id, "tether-bridge-%s", key->value) < 0) {
		m->client_id = NULL;
		ynode_error(errs, key, "out of memory");
	}
	if (!name_valid(key->value))
		ynode_error(errs, key,
		            "bad broker name '%s' in 'mqtt' (use letters, digits, '_' and '-')",
		            key->value);
	else if (strlen(key->value) > CFG_NAME_MAX)
		ynode_error(errs, key, "broker name '%s' in 'mqtt' is longer than %d characters",
		            key->value, CFG_NAME_MAX);
	snprintf(what, sizeof(what), "mqtt.%s", key->value);
	if (!ynode_expect(v, YNODE_MAP, what, errs))
		return;
	ynode_check_keys(v, keys, what, errs);

	if (ynode_str(v, "url", true, &s, errs) == 1 &&
	    parse_url_at((n = ynode_get(v, "url")), "url", &u, errs)) {
		url_ok = true;
		if (strcmp(u.scheme, "mqtt") != 0 && strcmp(u.scheme, "mqtts") != 0) {
			ynode_error(errs, n, "'url': expected mqtt:// or mqtts://");
			url_ok = false;
		}
		if (u.userinfo) {
			ynode_error(errs, n, "'url': put credentials in 'username' and 'password'");
			url_ok = false;
		}
		if ((u.pathlen > 0 && strcmp(u.path, "/") != 0) || u.query || u.fragment) {
			ynode_error(errs, n, "'url': must not have a path, query or fragment");
			url_ok = false;
		}
		if (url_ok) {
			m->url = xstrdup(s, n, errs);
			m->tls = strcmp(u.scheme, "mqtts") == 0;
			m->host = xstrndup(u.host, u.hostlen, n, errs);
			m->port = u.port > 0 ? (int)u.port : m->tls ? 8883 : 1883;
		}
	}
	read_opt_str(v, "username", &m->username, NULL, errs);
	n = read_secret(v, "password", &m->password, &bad, errs);
	if (n != NULL && m->username == NULL)
		ynode_error(errs, n, "'%s': needs 'username'",
		            ynode_get(v, "password") ? "password" : "password_file");
	read_opt_str(v, "client_id", &m->client_id, NULL, errs);
	read_int(v, "qos", 0, 2, &m->qos, errs);
	ynode_bool(v, "retain", false, &m->retain, errs);
	if ((n = ynode_get(v, "topic_prefix")) != NULL &&
	    ynode_str(v, "topic_prefix", false, &s, errs) == 1) {
		size_t len = strlen(s);
		while (len > 0 && s[len - 1] == '/')
			len--;
		if (len == 0) {
			if (!noted(errs, n))
				ynode_error(errs, n, "'topic_prefix': must not be empty");
		} else if (strpbrk(s, "+#") != NULL) {
			ynode_error(errs, n, "'topic_prefix': must not contain '+' or '#'");
		} else if (strstr(s, "{{") != NULL || strstr(s, "}}") != NULL) {
			ynode_error(errs, n,
			            "'topic_prefix': must not contain a template ('{{' or '}}')");
		} else if (len > TOPIC_PREFIX_MAX) {
			ynode_error(errs, n, "'topic_prefix': longer than %d bytes",
			            TOPIC_PREFIX_MAX);
		} else {
			free(m->topic_prefix);
			m->topic_prefix = xstrndup(s, len, n, errs);
		}
	}
	read_duration(v, "keepalive", 5 * SEC, 18 * HOUR, &m->keepalive_ms, errs);
	if (ynode_str(v, "protocol", false, &s, errs) == 1) {
		m->mqtt311 = strcmp(s, "3.1.1") == 0;
		if (!m->mqtt311 && strcmp(s, "5") != 0)
			ynode_error(errs, ynode_get(v, "protocol"),
			            "'protocol': expected 5 or 3.1.1, found '%s'", s);
	}
	ynode_bool(v, "commands", false, &m->commands, errs);
	file_option(v, "ca_file", &m->ca_file, m->tls, url_ok, errs);
	file_option(v, "cert_file", &m->cert_file, m->tls, url_ok, errs);
	file_option(v, "key_file", &m->key_file, m->tls, url_ok, errs);
	cert = ynode_get(v, "cert_file");
	keyf = ynode_get(v, "key_file");
	if (m->cert_file && !m->key_file)
		ynode_error(errs, cert, "'cert_file': needs 'key_file'");
	if (m->key_file && !m->cert_file)
		ynode_error(errs, keyf, "'key_file': needs 'cert_file'");
	if ((n = ynode_get(v, "homeassistant")) != NULL)
		config_ha_load(&m->ha, ynode_key_of(v, n), n, errs);
	if (ynode_bool(v, "insecure", false, &m->insecure, errs) == 1 && m->insecure && url_ok &&
	    !m->tls)
		ynode_error(errs, ynode_get(v, "insecure"), "'insecure': only used with mqtts://");
}

/* Standard Webhooks asks for a key of 24 to 64 bytes; shorter keys are guessable. */
#define WHSEC_MIN_KEY 24

/* NULL when s is "whsec_<base64>" of a key of at least WHSEC_MIN_KEY bytes, else the
 * problem, written to why (used with the key name in front). */
static const char *whsec_problem(const char *s, char *why, size_t whysz)
{
	size_t n, pad = 0, keylen;

	if (strncmp(s, "whsec_", 6) != 0)
		return "expected whsec_<base64>";
	s += 6;
	n = strlen(s);
	if (n == 0 || n % 4 != 0)
		return "expected whsec_<base64>";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) || c == '+' || c == '/') {
			if (pad)
				return "expected whsec_<base64>";
		} else if (c == '=') {
			if (++pad > 2)
				return "expected whsec_<base64>";
		} else {
			return "expected whsec_<base64>";
		}
	}
	keylen = n / 4 * 3 - pad;
	if (keylen < WHSEC_MIN_KEY) {
		snprintf(why, whysz, "the key is %zu bytes; at least %d are needed", keylen,
		         WHSEC_MIN_KEY);
		return why;
	}
	return NULL;
}

/* RFC 9110 token characters. */
static bool header_name_valid(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!isalnum(c) && strchr("!#$%&'*+-.^_`|~", c) == NULL)
			return false;
	}
	return true;
}

static void load_headers(struct cfg_webhook *w, const struct ynode *h, struct cfg_errors *errs)
{
	static const char *const reserved[] = {"webhook-id",        "webhook-timestamp",
	                                       "webhook-signature", "idempotency-key",
	                                       "content-length",    NULL};

	if (!ynode_expect(h, YNODE_MAP, "headers", errs))
		return;
	if ((w->headers = xcalloc(h->n, sizeof(*w->headers), h, errs)) == NULL)
		return;
	for (size_t i = 0; i < h->n; i++) {
		const struct ynode *k = h->keys[i], *v = h->items[i];
		bool ok = true;
		if (!header_name_valid(k->value)) {
			char safe[80];
			size_t j;
			for (j = 0; k->value[j] && j < sizeof(safe) - 1; j++)
				safe[j] = isprint((unsigned char)k->value[j]) ? k->value[j] : '?';
			safe[j] = '\0';
			ynode_error(errs, k, "'headers': bad header name '%s'", safe);
			continue;
		}
		for (size_t j = 0; reserved[j]; j++) {
			if (strcasecmp(reserved[j], k->value) == 0) {
				ynode_error(errs, k, "'headers': '%s' is set by the bridge",
				            k->value);
				ok = false;
			}
		}
		if (v->type != YNODE_SCALAR) {
			ynode_error(errs, v, "'%s': expected a single value, found %s", k->value,
			            v->type == YNODE_MAP ? "a map" : "a list");
			continue;
		}
		for (const char *p = v->value; *p; p++) {
			if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) {
				ynode_error(
				    errs, v,
				    "'headers': value of '%s' must not contain CR, LF or other "
				    "control characters",
				    k->value);
				ok = false;
				break;
			}
		}
		if (!ok)
			continue;
		w->headers[w->nheaders].name = xstrdup(k->value, k, errs);
		w->headers[w->nheaders].value = xstrdup(v->value, v, errs);
		w->nheaders++; /* a NULL half fails the load; config_free takes NULL */
	}
}

static void load_secrets(struct cfg_webhook *w, const struct ynode *v, struct cfg_errors *errs)
{
	const struct ynode *list = ynode_get(v, "secrets"), *one;
	const char *why;
	char *s = NULL, buf[80];
	bool bad = false;

	if (list != NULL && !ynode_is_null(list)) {
		const char *other = ynode_get(v, "secret")        ? "secret"
		                    : ynode_get(v, "secret_file") ? "secret_file"
		                                                  : NULL;
		if (other != NULL) {
			ynode_error(errs, list, "'%s' and 'secrets' are both set; use one", other);
			return;
		}
		if (!ynode_expect(list, YNODE_SEQ, "secrets", errs))
			return;
		if ((w->secrets = xcalloc(list->n, sizeof(*w->secrets), list, errs)) == NULL)
			return;
		for (size_t i = 0; i < list->n; i++) {
			const struct ynode *it = list->items[i];
			if (it->type != YNODE_SCALAR) {
				ynode_error(errs, it,
				            "'secrets': expected whsec_<base64>, found %s",
				            it->type == YNODE_MAP ? "a map" : "a list");
				continue;
			}
			if (it->value[0] == '\0' || ynode_is_null(it))
				continue; /* an unset ${OLD_SECRET:-} during rotation */
			if ((why = whsec_problem(it->value, buf, sizeof(buf))) != NULL) {
				ynode_error(errs, it, "'secrets': %s", why);
				continue;
			}
			if ((w->secrets[w->nsecrets] = xstrdup(it->value, it, errs)) != NULL)
				w->nsecrets++;
		}
		return;
	}
	one = read_secret(v, "secret", &s, &bad, errs);
	if (one == NULL)
		return;
	if ((why = whsec_problem(s, buf, sizeof(buf))) != NULL) {
		ynode_error(errs, one, "'%s': %s",
		            ynode_get(v, "secret") ? "secret" : "secret_file", why);
		util_free_secret(s);
		return;
	}
	if ((w->secrets = xcalloc(1, sizeof(*w->secrets), one, errs)) == NULL) {
		util_free_secret(s);
		return;
	}
	w->secrets[0] = s;
	w->nsecrets = 1;
}

static void load_webhook(struct cfg_webhook *w, const struct ynode *key, const struct ynode *v,
                         struct cfg_errors *errs)
{
	static const char *const keys[] = {"url",         "format",  "headers", "secret",
	                                   "secret_file", "secrets", "timeout", "concurrency",
	                                   "order",       NULL};
	char what[160];
	const struct ynode *n;
	const char *s;
	struct url u;

	w->name = xstrdup(key->value, key, errs);
	w->line = key->line;
	w->column = key->column;
	w->format = WEBHOOK_JSON;
	w->timeout_ms = 10 * SEC;
	w->concurrency = 4;
	w->order = WEBHOOK_ORDER_ZONE;
	if (!name_valid(key->value))
		ynode_error(
		    errs, key,
		    "bad webhook name '%s' in 'webhooks' (use letters, digits, '_' and '-')",
		    key->value);
	else if (strlen(key->value) > CFG_NAME_MAX)
		ynode_error(errs, key,
		            "webhook name '%s' in 'webhooks' is longer than %d characters",
		            key->value, CFG_NAME_MAX);
	snprintf(what, sizeof(what), "webhooks.%s", key->value);
	if (!ynode_expect(v, YNODE_MAP, what, errs))
		return;
	ynode_check_keys(v, keys, what, errs);

	if (ynode_str(v, "url", true, &s, errs) == 1 &&
	    parse_url_at((n = ynode_get(v, "url")), "url", &u, errs)) {
		if (strcmp(u.scheme, "http") != 0 && strcmp(u.scheme, "https") != 0)
			ynode_error(errs, n, "'url': expected http:// or https://");
		else if (u.fragment)
			ynode_error(errs, n, "'url': must not have a fragment");
		else
			w->url = xstrdup(s, n, errs);
	}
	if (ynode_str(v, "format", false, &s, errs) == 1) {
		bool found = false;
		for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
			if (strcmp(s, format_names[i]) == 0) {
				w->format = (enum webhook_format)i;
				found = true;
			}
		}
		if (!found)
			ynode_error(
			    errs, ynode_get(v, "format"),
			    "'format': expected json, slack, discord, teams or cloudevents, "
			    "found '%s'",
			    s);
	}
	if ((n = ynode_get(v, "headers")) != NULL && !ynode_is_null(n))
		load_headers(w, n, errs);
	load_secrets(w, v, errs);
	read_duration(v, "timeout", SEC, 5 * MINUTE, &w->timeout_ms, errs);
	read_int(v, "concurrency", 1, 64, &w->concurrency, errs);
	if (ynode_str(v, "order", false, &s, errs) == 1) {
		size_t i = 0, norders = sizeof(order_names) / sizeof(order_names[0]);
		while (i < norders && strcmp(s, order_names[i]) != 0)
			i++;
		const char *near = i < norders ? NULL : suggest_pick(s, order_names, norders);
		if (i < norders)
			w->order = (enum webhook_order)i;
		else if (near != NULL)
			ynode_error(
			    errs, ynode_get(v, "order"),
			    "'order': expected zone or none, found '%s' (did you mean '%s'?)", s,
			    near);
		else
			ynode_error(errs, ynode_get(v, "order"),
			            "'order': expected zone or none, found '%s'", s);
	}
}

static void load_targets(struct config *c, const struct ynode *root, struct cfg_errors *errs)
{
	const struct ynode *n = ynode_get(root, "mqtt");

	if (n != NULL && !ynode_is_null(n) && ynode_expect(n, YNODE_MAP, "mqtt", errs)) {
		c->mqtt = xcalloc(n->n, sizeof(*c->mqtt), n, errs);
		for (size_t i = 0; c->mqtt != NULL && i < n->n; i++)
			load_broker(&c->mqtt[c->nmqtt++], n->keys[i], n->items[i], errs);
	}
	n = ynode_get(root, "webhooks");
	if (n != NULL && !ynode_is_null(n) && ynode_expect(n, YNODE_MAP, "webhooks", errs)) {
		c->webhooks = xcalloc(n->n, sizeof(*c->webhooks), n, errs);
		for (size_t i = 0; c->webhooks != NULL && i < n->n; i++)
			load_webhook(&c->webhooks[c->nwebhooks++], n->keys[i], n->items[i], errs);
	}
}

/* control: the arming modes, the wall's home and how long an operator's switch holds. */
static void load_control(struct config *c, const struct ynode *root, struct cfg_errors *errs)
{
	static const char *const keys[] = {"modes", "home_perspective", "manual_hold", NULL};
	const struct ynode *ctl = section(root, "control", keys, errs), *n;

	c->control.manual_hold_ms = 5 * MINUTE;
	if (ctl == NULL)
		return;
	c->control.on = true;
	n = ynode_get(ctl, "modes");
	if (n != NULL && !ynode_is_null(n)) {
		if (n->type != YNODE_SEQ || n->n == 0) {
			ynode_error(errs, n, "'modes': expected a non-empty list of mode names");
		} else {
			c->control.modes = xcalloc(n->n, sizeof(*c->control.modes), n, errs);
			for (size_t i = 0; c->control.modes != NULL && i < n->n; i++) {
				const struct ynode *z = n->items[i];
				bool dup = false;
				if (z->type != YNODE_SCALAR || !name_valid(z->value)) {
					ynode_error(
					    errs, z,
					    "'modes': expected names of letters, digits, '_' "
					    "and '-'");
					continue;
				}
				for (size_t j = 0; j < c->control.nmodes; j++)
					dup = dup || strcmp(c->control.modes[j], z->value) == 0;
				if (dup) {
					ynode_error(errs, z, "'modes': '%s' is listed twice",
					            z->value);
					continue;
				}
				if ((c->control.modes[c->control.nmodes] =
				         xstrdup(z->value, z, errs)) != NULL)
					c->control.nmodes++;
			}
		}
	}
	read_opt_str(ctl, "home_perspective", &c->control.home_perspective, NULL, errs);
	read_duration(ctl, "manual_hold", 0, DAY, &c->control.manual_hold_ms, errs);
}

bool config_mode_valid(const struct config *c, const char *name)
{
	for (size_t i = 0; name != NULL && i < c->control.nmodes; i++)
		if (strcmp(c->control.modes[i], name) == 0)
			return true;
	return false;
}

/* An error and where it was in the list, so that qsort (not stable) keeps equal
 * positions in the order they were reported. */
struct placed_error {
	struct cfg_error e;
	size_t order;
};

static int placed_cmp(const void *a_, const void *b_)
{
	const struct placed_error *a = a_, *b = b_;

	if (a->e.line != b->e.line)
		return a->e.line < b->e.line ? -1 : 1;
	if (a->e.column != b->e.column)
		return a->e.column < b->e.column ? -1 : 1;
	return a->order < b->order ? -1 : a->order > b->order;
}

/* Orders errs->v[from..] by position, stably, so `check` lists problems down the file.
 * Each run of errors from one file is sorted in place; runs keep their order (a watchlist
 * file's errors stay where its config key was read). n log n: a config with 10,000s of
 * errors out of order took seconds with an insertion sort. Out of memory leaves the order
 * as reported. */
static void sort_errors(struct cfg_errors *errs, size_t from)
{
	struct placed_error *tmp;
	size_t start, end, i;

	if (errs->n < from + 2)
		return;
	tmp = malloc((errs->n - from) * sizeof(*tmp));
	if (tmp == NULL)
		return;
	for (start = from; start < errs->n; start = end) {
		for (end = start + 1;
		     end < errs->n && strcmp(errs->v[end].file, errs->v[start].file) == 0; end++)
			;
		for (i = start; i < end; i++)
			tmp[i - start] = (struct placed_error){errs->v[i], i};
		qsort(tmp, end - start, sizeof(*tmp), placed_cmp);
		for (i = start; i < end; i++)
			errs->v[i] = tmp[i - start].e;
	}
	free(tmp);
}

struct config *config_load(const char *path, struct cfg_errors *errs)
{
	static const char *const top[] = {
	    "tether",   "poll",       "state_dir", "delivery",       "log",     "metrics", "mqtt",
	    "webhooks", "watchlists", "rules",     "severity_order", "control", NULL};
	struct cfg_errors local = {0};
	struct config *c;
	const struct ynode *root;
	size_t before;

	if (path == NULL)
		return NULL;
	if (errs == NULL)
		errs = &local;
	before = errs->n;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		cfg_errors_add(errs, path, 0, 0, "out of memory");
		goto out_release;
	}
	c->tether.timeout_ms = 30 * SEC;
	c->poll.interval_ms = 10 * SEC;
	c->poll.lookback_ms = 15 * MINUTE;
	c->poll.zones_all = true;
	c->poll.events = c->poll.plates = true;
	c->poll.concurrency = 8;
	c->poll.catchup_window_ms = HOUR;
	c->poll.catchup_max_age_ms = HOUR;
	c->poll.max_window_events = 1000;
	c->file = strdup(path);
	c->state_dir = strdup("/var/lib/tether-bridge");
	if (c->file == NULL || c->state_dir == NULL) {
		cfg_errors_add(errs, path, 0, 0, "out of memory");
		goto fail;
	}
	c->delivery.max_outbox = 100000;
	c->delivery.max_retry_age_ms = DAY;
	c->log.level = LOG_LEVEL_INFO;

	c->doc = ydoc_load(path, errs);
	if (c->doc == NULL)
		goto fail;
	root = c->doc->root;
	if (root == NULL) {
		cfg_errors_add(errs, c->doc->file, 1, 1, "the configuration is empty");
		goto fail;
	}
	if (!ynode_expect(root, YNODE_MAP, "config", errs))
		goto fail;
	ynode_check_keys(root, top, "config", errs);
	load_tether(c, root, errs);
	load_poll(c, root, errs);
	load_misc(c, root, errs);
	load_metrics(c, root, errs);
	load_targets(c, root, errs);
	load_control(c, root, errs);
	if (cfg_errors_since(errs, before))
		goto fail;
	cfg_errors_release(&local);
	return c;

fail:
	sort_errors(errs, before);
	config_free(c);
out_release:
	cfg_errors_release(&local);
	return NULL;
}

void config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->file);
	free(c->tether.base_url);
	free(c->tether.client_id);
	util_free_secret(c->tether.client_secret);
	free(c->tether.redirect_uri);
	util_free_secret(c->tether.access_token);
	for (size_t i = 0; i < c->poll.nzones; i++)
		free(c->poll.zones[i]);
	free(c->poll.zones);
	free(c->poll.location_id);
	free(c->state_dir);
	free(c->metrics.listen);
	for (size_t i = 0; i < c->nmqtt; i++) {
		struct cfg_mqtt *m = &c->mqtt[i];
		free(m->name);
		free(m->url);
		free(m->host);
		free(m->username);
		util_free_secret(m->password);
		free(m->client_id);
		free(m->topic_prefix);
		free(m->ca_file);
		free(m->cert_file);
		free(m->key_file);
		config_ha_release(&m->ha);
	}
	free(c->mqtt);
	for (size_t i = 0; i < c->control.nmodes; i++)
		free(c->control.modes[i]);
	free(c->control.modes);
	free(c->control.home_perspective);
	for (size_t i = 0; i < c->nwebhooks; i++) {
		struct cfg_webhook *w = &c->webhooks[i];
		free(w->name);
		free(w->url);
		for (size_t j = 0; j < w->nheaders; j++) {
			free(w->headers[j].name);
			util_free_secret(w->headers[j].value); /* may carry a token */
		}
		free(w->headers);
		for (size_t j = 0; j < w->nsecrets; j++)
			util_free_secret(w->secrets[j]);
		free(w->secrets);
	}
	free(c->webhooks);
	ydoc_free(c->doc);
	free(c);
}

const char *config_webhook_format_name(enum webhook_format f)
{
	if ((size_t)f >= sizeof(format_names) / sizeof(format_names[0]))
		return "?";
	return format_names[f];
}

const char *config_webhook_order_name(enum webhook_order o)
{
	if ((size_t)o >= sizeof(order_names) / sizeof(order_names[0]))
		return "?";
	return order_names[o];
}

void config_summary(const struct config *c, char *out, size_t outsz)
{
	char iv[32], zones[64];
	const char *what = "";

	if (out == NULL || outsz == 0)
		return;
	fmt_duration(c->poll.interval_ms, iv, sizeof(iv));
	if (c->poll.zones_all)
		snprintf(zones, sizeof(zones), "all zones");
	else
		snprintf(zones, sizeof(zones), "%zu zone%s", c->poll.nzones,
		         c->poll.nzones == 1 ? "" : "s");
	if (!c->poll.plates)
		what = " (events only)";
	else if (!c->poll.events)
		what = " (plates only)";
	snprintf(out, outsz, "ok: %zu mqtt broker%s, %zu webhook%s, poll every %s over %s%s",
	         c->nmqtt, c->nmqtt == 1 ? "" : "s", c->nwebhooks, c->nwebhooks == 1 ? "" : "s", iv,
	         zones, what);
}

/* A webhook URL's path and query often carry a token (Slack, Discord): keep the origin. */
int config_url_redact(struct buf *b, const char *s)
{
	struct url u;

	if (s == NULL)
		return buf_puts(b, "-");
	if (url_parse(s, &u) != NULL)
		return buf_puts(b, "***");
	if (buf_printf(b, "%s://%s%.*s%s", u.scheme, u.host[-1] == '[' ? "[" : "", (int)u.hostlen,
	               u.host, u.host[-1] == '[' ? "]" : "") < 0)
		return -1;
	if (u.port > 0 && buf_printf(b, ":%ld", u.port) < 0)
		return -1;
	if ((u.pathlen > 1 || u.query) && buf_puts(b, "/***") < 0)
		return -1;
	return 0;
}

static const char *secret_mark(const char *s)
{
	return s ? "***" : "-";
}

static const char *orempty(const char *s)
{
	return s ? s : "-";
}

int config_dump(const struct config *c, struct buf *b)
{
	static const char *const levels[] = {"error", "warn", "info", "debug"};
	char d1[32], d2[32], d3[32];
	int rc = 0;

	rc |= buf_printf(b, "config %s\n", c->file);
	fmt_duration(c->tether.timeout_ms, d1, sizeof(d1));
	rc |= buf_printf(b, "tether: base_url=%s auth=%s", orempty(c->tether.base_url),
	                 c->tether.access_token ? "access_token" : "oauth2");
	if (c->tether.access_token)
		rc |= buf_printf(b, " access_token=***");
	rc |=
	    buf_printf(b, " client_id=%s client_secret=%s redirect_uri=%s insecure=%s timeout=%s\n",
	               orempty(c->tether.client_id), secret_mark(c->tether.client_secret),
	               orempty(c->tether.redirect_uri), c->tether.insecure ? "true" : "false", d1);
	fmt_duration(c->poll.interval_ms, d1, sizeof(d1));
	fmt_duration(c->poll.lookback_ms, d2, sizeof(d2));
	fmt_duration(c->poll.catchup_window_ms, d3, sizeof(d3));
	rc |= buf_printf(b, "poll: interval=%s lookback=%s zones=", d1, d2);
	if (c->poll.zones_all)
		rc |= buf_puts(b, "all");
	for (size_t i = 0; i < c->poll.nzones; i++)
		rc |= buf_printf(b, "%s%s", i ? "," : "", c->poll.zones[i]);
	rc |= buf_printf(b, " location_id=%s events=%s plates=%s concurrency=%d catchup_window=%s",
	                 orempty(c->poll.location_id), c->poll.events ? "true" : "false",
	                 c->poll.plates ? "true" : "false", c->poll.concurrency, d3);
	fmt_duration(c->poll.catchup_max_age_ms, d3, sizeof(d3));
	rc |= buf_printf(b, " catchup_max_age=%s\n", d3);
	fmt_duration(c->delivery.max_retry_age_ms, d1, sizeof(d1));
	rc |= buf_printf(b, "state_dir: %s\n", c->state_dir);
	rc |= buf_printf(b, "delivery: max_outbox=%lld max_retry_age=%s\n",
	                 (long long)c->delivery.max_outbox, d1);
	rc |= buf_printf(b, "log: level=%s format=%s\n",
	                 (size_t)c->log.level < 4 ? levels[c->log.level] : "?",
	                 c->log.json ? "json" : "text");
	rc |= buf_printf(b, "metrics: listen=%s", c->metrics.listen ? c->metrics.listen : "off");
	for (size_t i = 0; i < c->nmqtt; i++) {
		const struct cfg_mqtt *m = &c->mqtt[i];
		fmt_duration(m->keepalive_ms, d1, sizeof(d1));
		rc |= buf_printf(b,
		                 "\nmqtt.%s: url=%s username=%s password=%s client_id=%s qos=%d "
		                 "retain=%s topic_prefix=%s keepalive=%s protocol=%s",
		                 m->name, orempty(m->url), orempty(m->username),
		                 secret_mark(m->password), m->client_id, m->qos,
		                 m->retain ? "true" : "false", m->topic_prefix, d1,
		                 m->mqtt311 ? "3.1.1" : "5");
		if (m->ha.enabled)
			rc |= buf_printf(b, " homeassistant=%s", m->ha.discovery_prefix);
		if (m->tls)
			rc |= buf_printf(b, " ca_file=%s cert_file=%s key_file=%s insecure=%s",
			                 orempty(m->ca_file), orempty(m->cert_file),
			                 orempty(m->key_file), m->insecure ? "true" : "false");
	}
	for (size_t i = 0; i < c->nwebhooks; i++) {
		const struct cfg_webhook *w = &c->webhooks[i];
		fmt_duration(w->timeout_ms, d1, sizeof(d1));
		rc |= buf_printf(b, "\nwebhook.%s: url=", w->name);
		rc |= config_url_redact(b, w->url);
		rc |= buf_printf(b, " format=%s headers=", config_webhook_format_name(w->format));
		if (w->nheaders == 0)
			rc |= buf_puts(b, "-");
		for (size_t j = 0; j < w->nheaders; j++) /* names only: values may be tokens */
			rc |= buf_printf(b, "%s%s", j ? "," : "", w->headers[j].name);
		rc |= buf_printf(b, " secrets=%s", w->nsecrets ? "***" : "-");
		if (w->nsecrets > 1)
			rc |= buf_printf(b, "(%zu)", w->nsecrets);
		rc |= buf_printf(b, " timeout=%s concurrency=%d order=%s", d1, w->concurrency,
		                 config_webhook_order_name(w->order));
	}
	return rc ? -1 : 0;
}

const struct cfg_mqtt *config_mqtt(const struct config *c, const char *name)
{
	if (c == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < c->nmqtt; i++) {
		if (strcmp(c->mqtt[i].name, name) == 0)
			return &c->mqtt[i];
	}
	return NULL;
}

const struct cfg_webhook *config_webhook(const struct config *c, const char *name)
{
	if (c == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < c->nwebhooks; i++) {
		if (strcmp(c->webhooks[i].name, name) == 0)
			return &c->webhooks[i];
	}
	return NULL;
}
