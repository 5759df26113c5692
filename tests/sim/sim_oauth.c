/* The OAuth2 side of the simulator: an authorize endpoint that approves at once, the token
 * endpoint (authorization_code and rotating refresh_token grants) and the bearer check of
 * every API request. Also the small form/query decoder the HTTP side uses. */
#include "tests/sim/sim.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct form_kv {
	char *key, *raw, *val;
};

struct form {
	struct form_kv *kv;
	size_t n;
};

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Percent-decodes [s, s+n); '+' becomes a space when plus_space. Caller frees. */
static char *decode(const char *s, size_t n, bool plus_space)
{
	char *out = malloc(n + 1), *o = out;
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int h, l;
		if (s[i] == '%' && i + 2 < n && (h = hexval(s[i + 1])) >= 0 &&
		    (l = hexval(s[i + 2])) >= 0) {
			*o++ = (char)(h * 16 + l);
			i += 2;
		} else if (s[i] == '+' && plus_space) {
			*o++ = ' ';
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

struct form *form_parse(const char *s, size_t len)
{
	struct form *f = calloc(1, sizeof(*f));
	size_t i = 0;

	if (f == NULL)
		return NULL;
	while (s != NULL && i < len) {
		size_t start = i, eq, end;
		struct form_kv *kv;
		while (i < len && s[i] != '&')
			i++;
		end = i++;
		if (end == start)
			continue;
		for (eq = start; eq < end && s[eq] != '='; eq++)
			;
		kv = realloc(f->kv, (f->n + 1) * sizeof(*f->kv));
		if (kv == NULL)
			goto fail;
		f->kv = kv;
		kv = &f->kv[f->n];
		kv->key = decode(s + start, eq - start, true);
		kv->raw = eq < end ? decode(s + eq + 1, end - eq - 1, false) : strdup("");
		kv->val = eq < end ? decode(s + eq + 1, end - eq - 1, true) : strdup("");
		f->n++;
		if (kv->key == NULL || kv->raw == NULL || kv->val == NULL)
			goto fail;
	}
	return f;
fail:
	form_free(f);
	return NULL;
}

static const struct form_kv *form_find(const struct form *f, const char *key)
{
	for (size_t i = 0; f != NULL && i < f->n; i++)
		if (strcmp(f->kv[i].key, key) == 0)
			return &f->kv[i];
	return NULL;
}

const char *form_get(const struct form *f, const char *key)
{
	const struct form_kv *kv = form_find(f, key);
	return kv ? kv->val : NULL;
}

const char *form_get_raw(const struct form *f, const char *key)
{
	const struct form_kv *kv = form_find(f, key);
	return kv ? kv->raw : NULL;
}

void form_free(struct form *f)
{
	if (f == NULL)
		return;
	for (size_t i = 0; i < f->n; i++) {
		free(f->kv[i].key);
		util_free_secret(f->kv[i].raw);
		util_free_secret(f->kv[i].val);
	}
	free(f->kv);
	free(f);
}

static void oauth_error(struct http_reply *r, int status, const char *error, const char *desc)
{
	struct buf b;
	buf_init(&b, 0);
	if (buf_puts(&b, "{\"error\":") < 0 || sim_json_str(&b, error) < 0 ||
	    buf_puts(&b, ",\"error_description\":") < 0 || sim_json_str(&b, desc) < 0 ||
	    buf_puts(&b, "}") < 0) {
		buf_release(&b);
		sim_reply_str(r, 500, "{\"error\":\"server_error\"}");
		return;
	}
	sim_reply_json(r, status, &b);
}

void sim_oauth_authorize(struct sim *s, const struct form *q, struct http_reply *r)
{
	const char *client = form_get(q, "client_id"), *uri = form_get(q, "redirect_uri");
	const char *type = form_get(q, "response_type"), *state = form_get(q, "state");
	struct sim_code *c;
	struct buf loc;

	if (client == NULL || strcmp(client, s->opts.client_id) != 0) {
		oauth_error(r, 400, "invalid_client", "unknown client_id");
		return;
	}
	if (uri == NULL || *uri == '\0') {
		oauth_error(r, 400, "invalid_request", "redirect_uri is required");
		return;
	}
	if (type == NULL || strcmp(type, "code") != 0) {
		oauth_error(r, 400, "unsupported_response_type", "response_type must be code");
		return;
	}
	if (s->ncodes == s->capcodes) {
		size_t ncap = s->capcodes ? s->capcodes * 2 : 8;
		struct sim_code *p = realloc(s->codes, ncap * sizeof(*p));
		if (p == NULL)
			goto oom;
		s->codes = p;
		s->capcodes = ncap;
	}
	c = &s->codes[s->ncodes];
	memset(c, 0, sizeof(*c));
	c->redirect_uri = strdup(uri);
	if (c->redirect_uri == NULL)
		goto oom;
	sim_make_hex(s, c->code, 64);
	c->created_ms = util_now_ms();
	s->ncodes++;
	buf_init(&loc, sizeof(r->location) - 1);
	if (buf_printf(&loc, "%s%ccode=%s", uri, strchr(uri, '?') ? '&' : '?', c->code) < 0 ||
	    (state && (buf_puts(&loc, "&state=") < 0 || buf_urlencode(&loc, state) < 0))) {
		buf_release(&loc);
		oauth_error(r, 400, "invalid_request", "redirect_uri too long");
		return;
	}
	snprintf(r->location, sizeof(r->location), "%s", loc.data);
	buf_release(&loc);
	r->status = 302;
	return;
oom:
	sim_reply_str(r, 500, "{\"error\":\"server_error\"}");
}

static void issue_token(struct sim *s, struct http_reply *r)
{
	struct sim_token *t;
	struct buf b;

	if (s->ntokens == s->captokens) {
		size_t ncap = s->captokens ? s->captokens * 2 : 8;
		struct sim_token *p = realloc(s->tokens, ncap * sizeof(*p));
		if (p == NULL) {
			sim_reply_str(r, 500, "{\"error\":\"server_error\"}");
			return;
		}
		s->tokens = p;
		s->captokens = ncap;
	}
	t = &s->tokens[s->ntokens++];
	memset(t, 0, sizeof(*t));
	sim_make_hex(s, t->access, 64);
	sim_make_hex(s, t->refresh, 64);
	t->created_ms = util_now_ms();
	t->expires_ms = t->created_ms + (int64_t)s->opts.token_ttl * 1000;
	buf_init(&b, 0);
	if (buf_printf(&b,
	               "{\"access_token\":\"%s\",\"token_type\":\"Bearer\",\"expires_in\":%ld,"
	               "\"refresh_token\":\"%s\",\"created_at\":%lld}",
	               t->access, s->opts.token_ttl, t->refresh,
	               (long long)(t->created_ms / 1000)) < 0) {
		buf_release(&b);
		sim_reply_str(r, 500, "{\"error\":\"server_error\"}");
		return;
	}
	sim_reply_json(r, 200, &b);
}

void sim_oauth_token(struct sim *s, const struct form *f, struct http_reply *r)
{
	const char *client = form_get(f, "client_id"), *secret = form_get(f, "client_secret");
	const char *grant = form_get(f, "grant_type");
	int64_t now = util_now_ms();

	if (client == NULL || secret == NULL || strcmp(client, s->opts.client_id) != 0 ||
	    strcmp(secret, s->opts.client_secret) != 0) {
		oauth_error(r, 401, "invalid_client", "client authentication failed");
		return;
	}
	if (grant != NULL && strcmp(grant, "authorization_code") == 0) {
		const char *code = form_get(f, "code"), *uri = form_get(f, "redirect_uri");
		for (size_t i = 0; code != NULL && i < s->ncodes; i++) {
			struct sim_code *c = &s->codes[i];
			if (strcmp(c->code, code) != 0)
				continue;
			if (c->used || now - c->created_ms > 600000 ||
			    (uri != NULL && strcmp(uri, c->redirect_uri) != 0))
				break;
			c->used = true;
			issue_token(s, r);
			return;
		}
		oauth_error(
		    r, 400, "invalid_grant",
		    "the authorization code is invalid, used, expired or for another redirect_uri");
		return;
	}
	if (grant != NULL && strcmp(grant, "refresh_token") == 0) {
		const char *rt = form_get(f, "refresh_token");
		for (size_t i = 0; rt != NULL && i < s->ntokens; i++) {
			struct sim_token *t = &s->tokens[i];
			if (strcmp(t->refresh, rt) != 0)
				continue;
			if (t->refresh_used || t->revoked)
				break;
			t->refresh_used = true; /* rotation: the old refresh token is spent */
			issue_token(s, r);
			return;
		}
		oauth_error(r, 400, "invalid_grant",
		            "the refresh token is invalid, used or revoked");
		return;
	}
	oauth_error(r, 400, "unsupported_grant_type",
	            "grant_type must be authorization_code or refresh_token");
}

const char *sim_oauth_check(struct sim *s, const char *authorization, int64_t now)
{
	const char *tok;

	if (authorization == NULL)
		return "none";
	if (strncasecmp(authorization, "Bearer ", 7) != 0)
		return "invalid";
	tok = authorization + 7;
	while (*tok == ' ')
		tok++;
	if (*s->opts.access_token && !s->static_revoked && strcmp(tok, s->opts.access_token) == 0)
		return "bearer";
	for (size_t i = 0; i < s->ntokens; i++) {
		const struct sim_token *t = &s->tokens[i];
		if (strcmp(t->access, tok) == 0)
			return !t->revoked && now < t->expires_ms ? "bearer" : "invalid";
	}
	return "invalid";
}

void sim_oauth_revoke_all(struct sim *s, bool revoke_static)
{
	for (size_t i = 0; i < s->ntokens; i++)
		s->tokens[i].revoked = true;
	if (revoke_static)
		s->static_revoked = true;
}
