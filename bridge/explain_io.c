/* explain's input: the whole input is tried as one JSON value first (a Tether document or
 * one v1 message), then as lines each holding a v1 message, bare, inside a `dlq list`
 * record's "message", inside a CloudEvent's "data", or after a topic (mosquitto_sub -v).
 * And its text layout, built from the same record --json prints. */
#include "bridge/explain_io.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

#define INPUT_MAX (64u << 20) /* a document bigger than this is not one explain reads */
#define BODY_SHOWN 240        /* bytes of a delivery body shown in the text layout */

/* The v1 message in v (borrowed), or NULL. */
static const json_t *v1_of(const json_t *v)
{
	const char *schema = json_string_value(json_object_get(v, "schema"));

	if (!json_is_object(v))
		return NULL;
	if (schema != NULL && strncmp(schema, "tether-bridge/", 14) == 0)
		return v;
	if (json_is_object(json_object_get(v, "message"))) /* a dlq list record */
		return v1_of(json_object_get(v, "message"));
	if (json_object_get(v, "specversion") != NULL) /* a CloudEvents webhook body */
		return v1_of(json_object_get(v, "data"));
	return NULL;
}

static int read_all(const char *input, struct buf *b)
{
	FILE *f = strcmp(input, "-") == 0 ? stdin : fopen(input, "rb");
	char chunk[65536];
	size_t n;
	int rc = 0;

	if (f == NULL) {
		fprintf(stderr, "%s: unable to open: %s\n", input, strerror(errno));
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && rc == 0)
		rc = buf_append(b, chunk, n);
	if (rc < 0 || ferror(f)) {
		fprintf(stderr, "%s: unable to read%s\n", input,
		        rc < 0 ? ": too big or out of memory" : "");
		rc = -1;
	}
	if (f != stdin)
		fclose(f);
	return rc;
}

/* Each line a v1 message: appended to msgs, or an error record. The number of lines that
 * held one. */
static size_t read_lines(const char *text, size_t len, json_t *msgs)
{
	size_t found = 0, lineno = 0;
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end, *brace = memchr(p, '{', (size_t)(e - p));
		json_error_t jerr;
		json_t *v = NULL;
		const json_t *m;
		char why[300];

		lineno++;
		if (brace == NULL) {
			bool blank = true;
			for (const char *q = p; q < e && blank; q++)
				blank = *q == ' ' || *q == '\t' || *q == '\r';
			if (!blank)
				json_array_append_new(
				    msgs, json_pack("{s:I, s:s}", "line", (json_int_t)lineno,
				                    "error", "no JSON object on this line"));
			p = e + 1;
			continue;
		}
		v = json_loadb(brace, (size_t)(e - brace), 0, &jerr);
		if (v == NULL)
			snprintf(why, sizeof(why), "invalid JSON: %s", jerr.text);
		else if ((m = v1_of(v)) == NULL)
			snprintf(
			    why, sizeof(why),
			    "not a tether-bridge v1 message (a webhook body in another format?)");
		else {
			json_array_append(msgs, (json_t *)m);
			found++;
		}
		if (v == NULL || m == NULL)
			json_array_append_new(msgs, json_pack("{s:I, s:s}", "line",
			                                      (json_int_t)lineno, "error", why));
		json_decref(v);
		p = e + 1;
	}
	return found;
}

int explain_input_read(const char *input, json_t **doc, json_t **msgs)
{
	const char *name = strcmp(input, "-") == 0 ? "<stdin>" : input;
	json_error_t jerr;
	struct buf b;
	json_t *v, *lines;
	const json_t *m;
	int rc = -1;

	*doc = *msgs = NULL;
	buf_init(&b, INPUT_MAX);
	if (read_all(input, &b) < 0)
		goto out;
	v = json_loadb(b.data ? b.data : "", b.len, 0, &jerr);
	if (v != NULL) {
		if ((m = v1_of(v)) != NULL) {
			*msgs = json_array();
			if (*msgs == NULL || json_array_append(*msgs, (json_t *)m) < 0)
				fprintf(stderr, "explain: out of memory\n");
			else
				rc = 0;
			json_decref(v);
		} else {
			*doc = v;
			rc = 0;
		}
		goto out;
	}
	/* not one JSON value: JSON lines of v1 messages, or else the error says why */
	lines = json_array();
	if (lines != NULL && b.len > 0 && read_lines(b.data, b.len, lines) > 0) {
		*msgs = lines;
		rc = 0;
		goto out;
	}
	json_decref(lines);
	if (jerr.line < 1)
		fprintf(stderr, "%s: %s\n", name, jerr.text);
	else
		fprintf(stderr, "%s:%d:%d: invalid JSON: %s\n", name, jerr.line, jerr.column,
		        jerr.text);
out:
	buf_release(&b);
	return rc;
}

static const char *str(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static void print_body(FILE *f, const char *body)
{
	size_t n = util_utf8_cut(body, BODY_SHOWN, SIZE_MAX);

	fputs("      ", f);
	for (size_t i = 0; i < n; i++)
		fputc(body[i] == '\n' ? ' ' : body[i], f);
	fputs(n < strlen(body) ? " ...\n" : "\n", f);
}

void explain_print_text(FILE *f, const json_t *rec)
{
	const json_t *m = json_object_get(rec, "message"), *v;
	const json_t *rules = json_object_get(rec, "rules");
	const json_t *dl = json_object_get(rec, "deliveries");
	size_t i, width = 0;

	if (json_object_get(rec, "error") != NULL) {
		if (json_object_get(rec, "line") != NULL)
			fprintf(f, "line %lld: %s\n\n",
			        (long long)json_integer_value(json_object_get(rec, "line")),
			        str(rec, "error"));
		else
			fprintf(f, "resource %lld%s%s%s: %s\n\n",
			        (long long)json_integer_value(json_object_get(rec, "index")),
			        json_object_get(rec, "resource") ? " (" : "", str(rec, "resource"),
			        json_object_get(rec, "resource") ? ")" : "", str(rec, "error"));
		return;
	}
	if (strcmp(str(m, "kind"), "plate") == 0) {
		const json_t *p = json_object_get(m, "plate");
		fprintf(f, "plate %s (%s) in '%s' at %s", str(p, "number"), str(m, "phase"),
		        str(json_object_get(m, "zone"), "name"), str(m, "occurred_at"));
		if (json_object_get(p, "watchlist") &&
		    !json_is_null(json_object_get(p, "watchlist")))
			fprintf(f, ", watchlist %s%s%s", str(p, "watchlist"),
			        str(p, "label")[0] ? ": " : "", str(p, "label"));
		fputc('\n', f);
	} else {
		fprintf(f, "event %s (%s) in '%s' at %s\n", str(m, "source_id"), str(m, "phase"),
		        str(json_object_get(m, "zone"), "name"), str(m, "occurred_at"));
		fprintf(f, "  severity %s, flags ", str(m, "severity"));
		json_array_foreach(json_object_get(m, "flags"), i, v)
		{
			fprintf(f, "%s%s", i ? ", " : "", json_string_value(v));
		}
		fputs(json_array_size(json_object_get(m, "flags")) ? "\n" : "none\n", f);
	}
	fprintf(f, "  id %s\n", str(m, "id"));
	if (json_object_get(rec, "skipped"))
		fprintf(f, "  not delivered: %s\n", str(rec, "skipped"));
	json_array_foreach(rules, i, v)
	{
		if (strlen(str(v, "name")) > width)
			width = strlen(str(v, "name"));
	}
	if (json_array_size(rules) > 0)
		fputs("  rules:\n", f);
	json_array_foreach(rules, i, v)
	{
		bool yes = json_is_true(json_object_get(v, "matched"));
		if (yes)
			fprintf(f, "    match %s\n", str(v, "name"));
		else
			fprintf(f, "    no    %-*s  %s\n", (int)width, str(v, "name"),
			        str(v, "reason"));
	}
	if (json_array_size(dl) == 0) {
		fputs("  deliveries: none\n\n", f);
		return;
	}
	fputs("  deliveries:\n", f);
	json_array_foreach(dl, i, v)
	{
		if (json_object_get(v, "perspective")) { /* a video wall call-up */
			const json_t *to = json_object_get(v, "switch_to");
			fprintf(f, "    %s -> perspective %s%s%s (rule %s)\n", str(v, "target"),
			        str(v, "perspective"), json_is_object(to) ? ", switches to " : "",
			        json_is_object(to) ? str(to, "name") : "", str(v, "rule"));
			continue;
		}
		if (json_object_get(v, "topic"))
			fprintf(f, "    %s -> %s (qos %lld%s, rule %s)\n", str(v, "target"),
			        str(v, "topic"),
			        (long long)json_integer_value(json_object_get(v, "qos")),
			        json_is_true(json_object_get(v, "retain")) ? ", retained" : "",
			        str(v, "rule"));
		else
			fprintf(f, "    %s -> POST %s (rule %s)\n", str(v, "target"), str(v, "url"),
			        str(v, "rule"));
		print_body(f, str(v, "body"));
	}
	fputc('\n', f);
}
