/* {{ path }} templates: compiled once into literal pieces and field ids, so rendering
 * is a walk over the pieces with no parsing and no name lookups. Escaping depends on where
 * the text goes (topic, JSON string contents, plain text); literal text is kept as written. */
#include "rules/template.h"

#include "lib/suggest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum tmpl_field {
	F_SCHEMA,
	F_ID,
	F_KIND,
	F_PHASE,
	F_SOURCE_ID,
	F_OCCURRED_AT,
	F_ENDED_AT,
	F_DURATION_S,
	F_COMPLETE,
	F_SEVERITY,
	F_FLAGS,
	F_MOTION,
	F_ZONE_ID,
	F_ZONE_NAME,
	F_ZONE_SLUG,
	F_LOCATION_ID,
	F_TIMELINE_ID,
	F_PLATE_NUMBER,
	F_PLATE_NORMALIZED,
	F_PLATE_COUNTRY,
	F_PLATE_WATCHLIST,
	F_PLATE_LABEL,
	F_PLATE_DISTANCE,
	F_EVENT_ID,
	F_LINK_WEB,
	F_LINK_RECORDING,
	F_BACKFILL,
	F_RULE,
	F_COUNT
};

/* Indexed by enum tmpl_field. */
static const char *const field_paths[F_COUNT] = {
    "schema",
    "id",
    "kind",
    "phase",
    "source_id",
    "occurred_at",
    "ended_at",
    "duration_s",
    "complete",
    "severity",
    "flags",
    "motion",
    "zone.id",
    "zone.name",
    "zone.slug",
    "location_id",
    "timeline_id",
    "plate.number",
    "plate.normalized",
    "plate.country",
    "plate.watchlist",
    "plate.label",
    "plate.distance",
    "event_id",
    "links.web",
    "links.recording_web",
    "backfill",
    "rule",
};

#define LITERAL (-1)

struct piece {
	int field;  /* enum tmpl_field, or LITERAL */
	size_t off; /* literal: bytes of src */
	size_t len;
};

struct tmpl {
	char *src;
	enum tmpl_ctx ctx;
	size_t n;
	size_t nfields;
	struct piece v[];
};

/* 1-based column of src + off, counted in characters (UTF-8 continuation bytes skipped). */
static int column_of(const char *src, size_t off)
{
	int col = 1;
	for (size_t i = 0; i < off; i++)
		if (((unsigned char)src[i] & 0xc0) != 0x80)
			col++;
	return col;
}

static struct tmpl *compile_fail(struct tmpl *t, char *err, size_t errsz, int *err_col, int col,
                                 const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static struct tmpl *compile_fail(struct tmpl *t, char *err, size_t errsz, int *err_col, int col,
                                 const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && errsz > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errsz, fmt, ap);
		va_end(ap);
	}
	if (err_col != NULL)
		*err_col = col;
	tmpl_free(t);
	return NULL;
}

static int lookup(const char *p, size_t len)
{
	for (int f = 0; f < F_COUNT; f++)
		if (strlen(field_paths[f]) == len && memcmp(field_paths[f], p, len) == 0)
			return f;
	return -1;
}

static void add_literal(struct tmpl *t, size_t off, size_t len)
{
	if (len == 0)
		return;
	t->v[t->n].field = LITERAL;
	t->v[t->n].off = off;
	t->v[t->n].len = len;
	t->n++;
}

struct tmpl *tmpl_compile(const char *src, enum tmpl_ctx ctx, char *err, size_t errsz, int *err_col)
{
	struct tmpl *t;
	size_t opens = 0, lit = 0;
	const char *p, *q;

	if (src == NULL)
		return compile_fail(NULL, err, errsz, err_col, 1, "no template");
	if (ctx != TMPL_TEXT && ctx != TMPL_TOPIC && ctx != TMPL_JSON && ctx != TMPL_SLACK)
		return compile_fail(NULL, err, errsz, err_col, 1, "unknown template context");
	for (p = src; (q = strstr(p, "{{")) != NULL; p = q + 2)
		opens++;
	t = calloc(1, sizeof(*t) + (2 * opens + 1) * sizeof(t->v[0]));
	if (t == NULL)
		return compile_fail(NULL, err, errsz, err_col, 1, "out of memory");
	t->ctx = ctx;
	if ((t->src = strdup(src)) == NULL)
		return compile_fail(t, err, errsz, err_col, 1, "out of memory");

	if (ctx == TMPL_TOPIC && src[0] == '\0')
		return compile_fail(t, err, errsz, err_col, 1, "empty topic");
	/* Columns are counted only on failure: counting from the start for every "{{" made a
	 * long template take seconds to compile. */
	for (p = src; (q = strstr(p, "{{")) != NULL;) {
		const char *close = strstr(q + 2, "}}"), *b = q + 2, *e;
		int f;

		if (close == NULL)
			return compile_fail(t, err, errsz, err_col,
			                    column_of(src, (size_t)(q - src)), "unterminated '{{'");
		e = close;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (b == e)
			return compile_fail(t, err, errsz, err_col,
			                    column_of(src, (size_t)(q - src)), "empty '{{ }}'");
		if ((f = lookup(b, (size_t)(e - b))) < 0) {
			int shown = e - b > 64 ? 64 : (int)(e - b);
			while (shown < e - b && ((unsigned char)b[shown] & 0xc0) == 0x80)
				shown--; /* do not cut a character */
			return compile_fail(t, err, errsz, err_col,
			                    column_of(src, (size_t)(b - src)),
			                    "unknown field '%.*s'", shown, b);
		}
		add_literal(t, lit, (size_t)(q - src) - lit);
		t->v[t->n].field = f;
		t->n++;
		t->nfields++;
		p = close + 2;
		lit = (size_t)(p - src);
	}
	add_literal(t, lit, strlen(src) - lit);
	if (ctx == TMPL_TOPIC) {
		/* a wildcard in the author's text makes every publish fail */
		for (size_t i = 0; i < t->n; i++) {
			const struct piece *pc = &t->v[i];
			size_t w;
			if (pc->field != LITERAL)
				continue;
			for (w = 0;
			     w < pc->len && src[pc->off + w] != '+' && src[pc->off + w] != '#'; w++)
				;
			if (w < pc->len)
				return compile_fail(
				    t, err, errsz, err_col, column_of(src, pc->off + w),
				    "'%c' is an MQTT wildcard, not allowed in a topic",
				    src[pc->off + w]);
		}
	}
	return t;
}

int tmpl_check(const char *src, enum tmpl_ctx ctx, tmpl_report_fn report, void *arg)
{
	char text[200];
	int count = 0;
	const char *p, *q, *lit = src;

	if (ctx == TMPL_TOPIC && src[0] == '\0') {
		report(arg, 1, "empty topic");
		return 1;
	}
	for (p = src;; p = q + 2) {
		const char *end = (q = strstr(p, "{{")) != NULL ? q : p + strlen(p);
		/* the author's wildcards, in the literal text before this "{{" */
		for (const char *w = lit; ctx == TMPL_TOPIC && w < end; w++) {
			if (*w == '+' || *w == '#') {
				snprintf(text, sizeof(text),
				         "'%c' is an MQTT wildcard, not allowed in a topic", *w);
				report(arg, column_of(src, (size_t)(w - src)), text);
				count++;
			}
		}
		if (q == NULL)
			break;
		const char *close = strstr(q + 2, "}}"), *b = q + 2, *e;
		if (close == NULL) {
			report(arg, column_of(src, (size_t)(q - src)), "unterminated '{{'");
			return count + 1;
		}
		for (e = close; b < e && (*b == ' ' || *b == '\t'); b++)
			;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (b == e) {
			report(arg, column_of(src, (size_t)(q - src)), "empty '{{ }}'");
			count++;
		} else if (lookup(b, (size_t)(e - b)) < 0) {
			char name[65];
			int shown = e - b > 64 ? 64 : (int)(e - b);
			while (shown < e - b && ((unsigned char)b[shown] & 0xc0) == 0x80)
				shown--; /* do not cut a character */
			snprintf(name, sizeof(name), "%.*s", shown, b);
			const char *near = suggest_pick(name, field_paths, F_COUNT);
			if (near != NULL)
				snprintf(text, sizeof(text),
				         "unknown field '%s' (did you mean '%s'?)", name, near);
			else
				snprintf(text, sizeof(text), "unknown field '%s'", name);
			report(arg, column_of(src, (size_t)(b - src)), text);
			count++;
		}
		q = close;
		lit = close + 2;
	}
	return count;
}

const char *tmpl_source(const struct tmpl *t)
{
	return t->src;
}

void tmpl_free(struct tmpl *t)
{
	if (t == NULL)
		return;
	free(t->src);
	free(t);
}

/* Whether the n-byte UTF-8 sequence at p (n from msg_utf8_seq) is a character MQTT and
 * libmosquitto (mosquitto_validate_utf8) refuse in a topic, on top of the wildcards and the
 * level separator: C0 and C1 controls, DEL, and the Unicode non-characters U+FDD0..U+FDEF and
 * U+xFFFE / U+xFFFF in every plane. One of them fails every publish to the topic. */
static bool topic_refuses(const char *p, size_t n)
{
	const unsigned char *u = (const unsigned char *)p;
	uint32_t cp;

	if (n == 1)
		return u[0] == '/' || u[0] == '+' || u[0] == '#' || u[0] < 0x20 || u[0] == 0x7f;
	cp = u[0] & (0x7f >> n);
	for (size_t i = 1; i < n; i++)
		cp = (cp << 6) | (u[i] & 0x3f);
	return cp <= 0x9f || (cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) == 0xfffe;
}

/* Appends s escaped for ctx. Bytes that are not UTF-8 become '_' in topics and U+FFFD
 * elsewhere, so what is rendered is always valid UTF-8. */
static int put_value(struct buf *out, enum tmpl_ctx ctx, const char *s)
{
	static const char *const not_utf8[] = {[TMPL_TEXT] = "\xef\xbf\xbd",
	                                       [TMPL_TOPIC] = "_",
	                                       [TMPL_JSON] = "\\ufffd",
	                                       [TMPL_SLACK] = "\xef\xbf\xbd"};
	const char *run = s, *p = s;
	char tmp[8];

	if (ctx == TMPL_TOPIC && *s == '\0')
		return buf_append(out, "_", 1); /* no empty topic levels */
	while (*p != '\0') {
		unsigned char c = (unsigned char)*p;
		size_t n = msg_utf8_seq(p);
		const char *rep = NULL;

		if (n == 0) {
			rep = not_utf8[ctx];
			n = 1;
		} else if (ctx == TMPL_TOPIC) {
			if (topic_refuses(p, n))
				rep = "_";
		} else if (n == 1 && ctx == TMPL_SLACK) {
			if (c == '&')
				rep = "&amp;";
			else if (c == '<')
				rep = "&lt;";
			else if (c == '>')
				rep = "&gt;";
		} else if (n == 1 && ctx == TMPL_JSON) {
			if (c == '"') {
				rep = "\\\"";
			} else if (c == '\\') {
				rep = "\\\\";
			} else if (c < 0x20) {
				snprintf(tmp, sizeof(tmp), "\\u%04x", c);
				rep = tmp;
			}
		}
		if (rep != NULL) {
			if (buf_append(out, run, (size_t)(p - run)) < 0 || buf_puts(out, rep) < 0)
				return -1;
			run = p + n;
		}
		p += n;
	}
	return buf_append(out, run, (size_t)(p - run));
}

void tmpl_slug(const char *s, char *out, size_t outsz)
{
	size_t o = 0;
	bool gap = false;

	if (outsz == 0)
		return;
	for (; *s != '\0' && o + 1 < outsz; s++) {
		char c = *s;
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
			/* a run of other characters becomes one '_', never at the start */
			if (gap && o > 0) {
				if (o + 2 >= outsz)
					break;
				out[o++] = '_';
			}
			gap = false;
			out[o++] = c;
		} else {
			gap = true;
		}
	}
	out[o] = '\0';
}

static int put_field(struct buf *out, enum tmpl_ctx ctx, int f, const struct message *m)
{
	char num[64];
	bool plate = m->kind == MSG_PLATE, watch = plate && m->watch_matched;
	const char *s = "";

	switch (f) {
	case F_SCHEMA:
		s = "tether-bridge/v1";
		break;
	case F_ID:
		s = m->id;
		break;
	case F_KIND:
		s = msg_kind_name(m->kind);
		break;
	case F_PHASE:
		s = msg_phase_name(m->phase);
		break;
	case F_SOURCE_ID:
		s = m->source_id;
		break;
	case F_OCCURRED_AT:
		s = m->occurred_at;
		break;
	case F_ENDED_AT:
		s = m->ended_at;
		break;
	case F_DURATION_S:
		if (m->duration_s >= 0) {
			snprintf(num, sizeof(num), "%lld", (long long)m->duration_s);
			s = num;
		}
		break;
	case F_COMPLETE:
		s = m->complete ? "true" : "false";
		break;
	case F_SEVERITY:
		s = m->severity;
		break;
	case F_FLAGS: {
		/* every name with its comma fits in 512 bytes; the bound is only a guard */
		char list[512];
		size_t o = 0;
		for (size_t i = 0; i < msg_flag_count; i++) {
			size_t l = strlen(msg_flag_names[i]);
			if (!(m->flags & (UINT64_C(1) << i)) || o + l + 2 > sizeof(list))
				continue;
			if (o > 0)
				list[o++] = ',';
			memcpy(list + o, msg_flag_names[i], l);
			o += l;
		}
		list[o] = '\0';
		return put_value(out, ctx, list);
	}
	case F_MOTION:
		if (!plate) {
			snprintf(num, sizeof(num), "%.15g", m->motion);
			s = num;
		}
		break;
	case F_ZONE_ID:
		s = m->zone_id;
		break;
	case F_ZONE_NAME:
		s = m->zone_name[0] != '\0' ? m->zone_name : m->zone_id;
		break;
	case F_ZONE_SLUG: {
		char slug[MSG_NAME_MAX];
		tmpl_slug(m->zone_name[0] != '\0' ? m->zone_name : m->zone_id, slug, sizeof(slug));
		return put_value(out, ctx, slug);
	}
	case F_LOCATION_ID:
		s = m->location_id;
		break;
	case F_TIMELINE_ID:
		s = m->timeline_id;
		break;
	case F_PLATE_NUMBER:
		s = plate ? m->plate_number : "";
		break;
	case F_PLATE_NORMALIZED:
		s = plate ? m->plate_normalized : "";
		break;
	case F_PLATE_COUNTRY:
		s = plate ? m->country : "";
		break;
	case F_PLATE_WATCHLIST:
		s = watch ? m->watchlist : "";
		break;
	case F_PLATE_LABEL:
		s = watch ? m->watch_label : "";
		break;
	case F_PLATE_DISTANCE:
		if (watch) {
			snprintf(num, sizeof(num), "%d", m->watch_distance);
			s = num;
		}
		break;
	case F_EVENT_ID:
		s = plate ? m->event_id : "";
		break;
	case F_LINK_WEB:
		s = m->link_web;
		break;
	case F_LINK_RECORDING:
		s = m->link_recording;
		break;
	case F_BACKFILL:
		s = m->backfill ? "true" : "false";
		break;
	case F_RULE:
		s = m->rule;
		break;
	default:
		break;
	}
	return put_value(out, ctx, s);
}

int tmpl_render(const struct tmpl *t, const struct message *m, struct buf *out)
{
	size_t start = out->len;

	for (size_t i = 0; i < t->n; i++) {
		const struct piece *pc = &t->v[i];
		int rc = pc->field == LITERAL ? buf_append(out, t->src + pc->off, pc->len)
		                              : put_field(out, t->ctx, pc->field, m);
		if (rc < 0)
			return -1;
	}
	/* A topic beginning with '$' is a broker's system topic ($SYS/...): a value may not
	 * make one. A '$' the author wrote is theirs to keep. */
	if (t->ctx == TMPL_TOPIC && t->n > 0 && t->v[0].field != LITERAL && out->len > start &&
	    out->data[start] == '$')
		out->data[start] = '_';
	return 0;
}
