/* Unit tests for rules/template: every path, context escaping (topic, JSON, text),
 * compile errors with columns, literal-only templates and flag lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <mosquitto.h>

#include "rules/template.h"

static void event_msg(struct message *m)
{
	memset(m, 0, sizeof(*m));
	m->kind = MSG_EVENT;
	m->phase = MSG_PHASE_UPDATE;
	strcpy(m->source_id, "ev1");
	strcpy(m->revision, "2020-07-09T08:05:09.036+01:00");
	message_set_id(m);
	strcpy(m->occurred_at, "2020-06-12T16:03:09.019+01:00");
	strcpy(m->ended_at, "2020-06-12T16:45:09.019+01:00");
	m->duration_s = 2520;
	m->complete = true;
	strcpy(m->severity, "high");
	m->flags = (UINT64_C(1) << msg_flag_index("motion")) |
	           (UINT64_C(1) << msg_flag_index("intrusion"));
	m->motion = 0.25;
	strcpy(m->zone_id, "z1");
	strcpy(m->zone_name, "Back door");
	strcpy(m->location_id, "loc1");
	strcpy(m->timeline_id, "tl1");
	strcpy(m->link_web, "https://x/events?at=1&zone=z1");
	strcpy(m->link_recording, "https://x/recordings?at=1&zone=z1");
	m->backfill = false;
	strcpy(m->rule, "night");
	/* plate fields filled on an event must not show */
	strcpy(m->plate_number, "leak");
	strcpy(m->event_id, "leak");
}

static void plate_msg(struct message *m)
{
	memset(m, 0, sizeof(*m));
	m->kind = MSG_PLATE;
	strcpy(m->source_id, "lp1");
	strcpy(m->revision, "r1");
	message_set_id(m);
	strcpy(m->occurred_at, "2020-03-05T08:51:46.895+00:00");
	m->duration_s = -1;
	m->ended_ms = -1;
	m->complete = true;
	strcpy(m->zone_id, "z2");
	strcpy(m->plate_number, "sv05 osl4");
	strcpy(m->plate_normalized, "SV05OSL4");
	strcpy(m->country, "TUR");
	strcpy(m->event_id, "ev9");
	m->watch_matched = true;
	strcpy(m->watchlist, "stolen");
	strcpy(m->watch_label, "blue van");
	m->watch_distance = 1;
	m->backfill = true;
}

/* Renders src for m in ctx; returns a static copy of the output. */
static const char *render(const char *src, enum tmpl_ctx ctx, const struct message *m)
{
	static char out[2048];
	char err[128] = "";
	int col = 0;
	struct buf b;
	struct tmpl *t = tmpl_compile(src, ctx, err, sizeof(err), &col);

	if (t == NULL)
		fail_msg("'%s': %d: %s", src, col, err);
	buf_init(&b, 0);
	assert_int_equal(tmpl_render(t, m, &b), 0);
	assert_true(b.len < sizeof(out));
	if (b.data == NULL) /* nothing appended: the buffer never grew */
		out[0] = '\0';
	else
		memcpy(out, b.data, b.len + 1);
	buf_release(&b);
	tmpl_free(t);
	return out;
}

static void compile_err(const char *src, const char *want, int want_col)
{
	char err[128] = "";
	int col = 0;
	struct tmpl *t = tmpl_compile(src, TMPL_TEXT, err, sizeof(err), &col);
	assert_null(t);
	assert_string_equal(err, want);
	assert_int_equal(col, want_col);
}

struct want {
	const char *path, *event, *plate;
};

static void test_each_path_renders(void **state)
{
	(void)state;
	static const struct want cases[] = {
	    {"schema", "tether-bridge/v1", "tether-bridge/v1"},
	    {"id", "event:ev1:2020-07-09T08:05:09.036+01:00", "plate:lp1:r1"},
	    {"kind", "event", "plate"},
	    {"phase", "update", "new"},
	    {"source_id", "ev1", "lp1"},
	    {"occurred_at", "2020-06-12T16:03:09.019+01:00", "2020-03-05T08:51:46.895+00:00"},
	    {"ended_at", "2020-06-12T16:45:09.019+01:00", ""},
	    {"duration_s", "2520", ""},
	    {"complete", "true", "true"},
	    {"severity", "high", ""},
	    {"flags", "motion,intrusion", ""},
	    {"motion", "0.25", ""},
	    {"zone.id", "z1", "z2"},
	    {"zone.name", "Back door", "z2"},
	    {"zone.slug", "back_door", "z2"},
	    {"location_id", "loc1", ""},
	    {"timeline_id", "tl1", ""},
	    {"plate.number", "", "sv05 osl4"},
	    {"plate.normalized", "", "SV05OSL4"},
	    {"plate.country", "", "TUR"},
	    {"plate.watchlist", "", "stolen"},
	    {"plate.label", "", "blue van"},
	    {"plate.distance", "", "1"},
	    {"event_id", "", "ev9"},
	    {"links.web", "https://x/events?at=1&zone=z1", ""},
	    {"links.recording_web", "https://x/recordings?at=1&zone=z1", ""},
	    {"backfill", "false", "true"},
	    {"rule", "night", ""},
	};
	struct message ev, pl;
	char src[64];

	event_msg(&ev);
	plate_msg(&pl);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(src, sizeof(src), "{{ %s }}", cases[i].path);
		if (strcmp(render(src, TMPL_TEXT, &ev), cases[i].event) != 0)
			fail_msg("event %s: '%s'", cases[i].path, render(src, TMPL_TEXT, &ev));
		if (strcmp(render(src, TMPL_TEXT, &pl), cases[i].plate) != 0)
			fail_msg("plate %s: '%s'", cases[i].path, render(src, TMPL_TEXT, &pl));
	}
}

static void test_plate_watch_fields_empty_without_match(void **state)
{
	(void)state;
	struct message pl;
	plate_msg(&pl);
	pl.watch_matched = false;
	assert_string_equal(
	    render("[{{plate.watchlist}}|{{plate.label}}|{{plate.distance}}]", TMPL_TEXT, &pl),
	    "[||]");
}

static const char *slug(const char *s, size_t outsz)
{
	static char out[64];
	assert_true(outsz <= sizeof(out));
	tmpl_slug(s, out, outsz);
	return out;
}

static void test_zone_slug_is_lower_case_words_joined_by_underscores(void **state)
{
	(void)state;
	assert_string_equal(slug("Back door", 64), "back_door");
	assert_string_equal(slug("  Back door / Gate #2 ", 64), "back_door_gate_2");
	assert_string_equal(slug("a__b--c", 64), "a_b_c");
	assert_string_equal(slug("Café Nord", 64), "caf_nord");
	assert_string_equal(slug("$SYS/+#", 64), "sys");
	assert_string_equal(slug("ÄÖ", 64), "");
	assert_string_equal(slug("", 64), "");
	/* cut at the buffer, never ending in '_' */
	assert_string_equal(slug("abc def", 5), "abc");
	assert_string_equal(slug("abc def", 6), "abc_d");
	assert_string_equal(slug("abc", 1), "");
}

static void test_zone_slug_in_a_topic_has_no_spaces(void **state)
{
	struct message m;
	(void)state;
	event_msg(&m);
	strcpy(m.zone_name, "Front Gate (north)");
	assert_string_equal(render("tether/{{zone.slug}}/alert", TMPL_TOPIC, &m),
	                    "tether/front_gate_north/alert");
	strcpy(m.zone_name, "");
	assert_string_equal(render("tether/{{zone.slug}}", TMPL_TOPIC, &m), "tether/z1");
	strcpy(m.zone_name, "!!!");
	assert_string_equal(render("tether/{{zone.slug}}", TMPL_TOPIC, &m), "tether/_");
}

struct reported {
	char text[512];
};

static void collect(void *arg, int col, const char *text)
{
	struct reported *r = arg;
	size_t o = strlen(r->text);
	snprintf(r->text + o, sizeof(r->text) - o, "%d: %s\n", col, text);
}

static void test_check_reports_every_bad_field(void **state)
{
	struct reported r = {""};
	(void)state;
	assert_int_equal(tmpl_check("{{zone.nme}} {{ }} {{flgs}} {{rule}} {{nothing_like_it}}",
	                            TMPL_TEXT, collect, &r),
	                 4);
	assert_string_equal(r.text, "3: unknown field 'zone.nme' (did you mean 'zone.name'?)\n"
	                            "14: empty '{{ }}'\n"
	                            "22: unknown field 'flgs' (did you mean 'flags'?)\n"
	                            "40: unknown field 'nothing_like_it'\n");
	r.text[0] = '\0';
	assert_int_equal(tmpl_check("a/+/{{kind}}/#/{{zone.nme", TMPL_TOPIC, collect, &r), 3);
	assert_string_equal(r.text, "3: '+' is an MQTT wildcard, not allowed in a topic\n"
	                            "14: '#' is an MQTT wildcard, not allowed in a topic\n"
	                            "16: unterminated '{{'\n");
	r.text[0] = '\0';
	assert_int_equal(tmpl_check("a+#/{{kind}}", TMPL_TEXT, collect, &r), 0);
	assert_int_equal(tmpl_check("", TMPL_TOPIC, collect, &r), 1);
	assert_string_equal(r.text, "1: empty topic\n");
}

static void test_zone_name_escaped_per_context(void **state)
{
	(void)state;
	struct message m;
	event_msg(&m);
	strcpy(m.zone_name, "a/b+#\"c");
	assert_string_equal(render("tether/{{zone.name}}/x", TMPL_TOPIC, &m), "tether/a_b__\"c/x");
	assert_string_equal(render("{\"z\": \"{{zone.name}}\"}", TMPL_JSON, &m),
	                    "{\"z\": \"a/b+#\\\"c\"}");
	assert_string_equal(render("{{zone.name}}", TMPL_TEXT, &m), "a/b+#\"c");
	json_t *j = json_loads(render("{\"z\": \"{{zone.name}}\"}", TMPL_JSON, &m), 0, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "z")), "a/b+#\"c");
	json_decref(j);
}

static void test_slack_text_escapes_values_not_literals(void **state)
{
	(void)state;
	struct message m;
	event_msg(&m);
	strcpy(m.zone_name, "<!channel> & co");
	assert_string_equal(render("<!here> {{zone.name}} >", TMPL_SLACK, &m),
	                    "<!here> &lt;!channel&gt; &amp; co >");
	assert_string_equal(render("{{zone.name}}", TMPL_TEXT, &m), "<!channel> & co");
}

static void test_json_escapes_backslash_and_control_chars(void **state)
{
	(void)state;
	struct message m;
	event_msg(&m);
	strcpy(m.zone_name, "a\nb\\c\x01\x1f\x7f");
	assert_string_equal(render("{{zone.name}}", TMPL_JSON, &m),
	                    "a\\u000ab\\\\c\\u0001\\u001f\x7f");
	assert_string_equal(render("t/{{zone.name}}", TMPL_TOPIC, &m), "t/a_b\\c___");
}

static void test_literal_text_is_never_escaped(void **state)
{
	(void)state;
	struct message m;
	event_msg(&m);
	assert_string_equal(render("a/b$/\"\\{{kind}}", TMPL_TOPIC, &m), "a/b$/\"\\event");
	assert_string_equal(render("{\"k\":\"{{kind}}\"}\n", TMPL_JSON, &m), "{\"k\":\"event\"}\n");
}

/* A wildcard or an empty topic could never be published: refused when compiled. */
static void test_topic_wildcard_or_empty_is_a_compile_error(void **state)
{
	(void)state;
	static const struct {
		const char *src, *err;
		int col;
	} cases[] = {
	    {"a/+/{{kind}}", "'+' is an MQTT wildcard, not allowed in a topic", 3},
	    {"{{kind}}/é/#", "'#' is an MQTT wildcard, not allowed in a topic", 12},
	    {"", "empty topic", 1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[128] = "";
		int col = 0;
		assert_null(tmpl_compile(cases[i].src, TMPL_TOPIC, err, sizeof(err), &col));
		assert_string_equal(err, cases[i].err);
		assert_int_equal(col, cases[i].col);
	}
	/* elsewhere '+' and '#' are ordinary text */
	struct tmpl *t = tmpl_compile("a+#", TMPL_TEXT, NULL, 0, NULL);
	assert_non_null(t);
	tmpl_free(t);
}

/* Many fields and a long literal: every piece is kept and errors still find their column
 * (the column count used to be redone from the start for every field). */
static void test_long_template_compiles_whole(void **state)
{
	(void)state;
	struct message m;
	struct buf src, out;
	event_msg(&m);
	buf_init(&src, 0);
	buf_init(&out, 0);
	for (int i = 0; i < 20000; i++)
		assert_int_equal(buf_puts(&src, "é{{kind}}"), 0);
	struct tmpl *t = tmpl_compile(src.data, TMPL_TEXT, NULL, 0, NULL);
	assert_non_null(t);
	assert_int_equal(tmpl_render(t, &m, &out), 0);
	assert_int_equal(out.len, 20000 * strlen("éevent"));
	assert_non_null(strstr(out.data, "éeventéevent"));
	tmpl_free(t);
	assert_int_equal(buf_puts(&src, "{{nope}}"), 0);
	char err[64];
	int col = 0;
	assert_null(tmpl_compile(src.data, TMPL_TEXT, err, sizeof(err), &col));
	assert_string_equal(err, "unknown field 'nope'");
	assert_int_equal(col, 20000 * 9 + 3);
	buf_release(&src);
	buf_release(&out);
}

static void test_topic_empty_value_is_underscore(void **state)
{
	(void)state;
	struct message m;
	event_msg(&m);
	m.rule[0] = '\0';
	m.flags = 0;
	assert_string_equal(render("t/{{rule}}/{{flags}}/{{plate.number}}", TMPL_TOPIC, &m),
	                    "t/_/_/_");
	assert_string_equal(render("t/{{rule}}/{{flags}}", TMPL_TEXT, &m), "t//");
	assert_string_equal(render("\"{{rule}}\"", TMPL_JSON, &m), "\"\"");
}

static void test_bytes_that_are_not_utf8_are_replaced(void **state)
{
	(void)state;
	struct message pl;
	plate_msg(&pl);
	strcpy(pl.watch_label, "v\xff\xc3\xa9");
	assert_string_equal(render("{{plate.label}}", TMPL_TOPIC, &pl), "v_\xc3\xa9");
	assert_string_equal(render("{{plate.label}}", TMPL_JSON, &pl), "v\\ufffd\xc3\xa9");
	assert_string_equal(render("{{plate.label}}", TMPL_TEXT, &pl), "v\xef\xbf\xbd\xc3\xa9");
}

static void test_topic_c1_controls_become_underscore(void **state)
{
	(void)state;
	struct message m;
	event_msg(&m);
	/* U+0080, U+0085 (NEL), U+009F; U+00A0 (no-break space) is a character and stays */
	strcpy(m.zone_name, "a\xc2\x80"
	                    "b\xc2\x85"
	                    "c\xc2\x9f"
	                    "d\xc2\xa0");
	assert_string_equal(render("t/{{zone.name}}", TMPL_TOPIC, &m), "t/a_b_c_d\xc2\xa0");
	/* only topics: JSON and text keep them */
	assert_string_equal(render("{{zone.name}}", TMPL_TEXT, &m), m.zone_name);
}

static void test_topic_noncharacters_become_underscore(void **state)
{
	(void)state;
	struct message m;
	event_msg(&m);
	/* U+FDD0, U+FDEF, U+FFFE, U+FFFF; U+FDCF, U+FDF0, U+FFFD stay */
	strcpy(m.zone_name, "\xef\xb7\x90\xef\xb7\xaf\xef\xbf\xbe\xef\xbf\xbf"
	                    "|\xef\xb7\x8f\xef\xb7\xb0\xef\xbf\xbd");
	assert_string_equal(render("t/{{zone.name}}", TMPL_TOPIC, &m),
	                    "t/____|\xef\xb7\x8f\xef\xb7\xb0\xef\xbf\xbd");
	/* U+1FFFE, U+10FFFF, U+EFFFF in the other planes; U+1FFFD stays */
	strcpy(m.zone_name, "\xf0\x9f\xbf\xbe\xf4\x8f\xbf\xbf\xf3\xaf\xbf\xbf\xf0\x9f\xbf\xbd");
	assert_string_equal(render("t/{{zone.name}}", TMPL_TOPIC, &m), "t/___\xf0\x9f\xbf\xbd");
}

static void test_topic_value_cannot_start_a_system_topic(void **state)
{
	(void)state;
	struct message m;
	event_msg(&m);
	strcpy(m.zone_name, "$SYS");
	assert_string_equal(render("{{zone.name}}/x", TMPL_TOPIC, &m), "_SYS/x");
	assert_string_equal(render("{{zone.name}}", TMPL_TOPIC, &m), "_SYS");
	/* further in, '$' is an ordinary character; the author's own '$' is theirs */
	assert_string_equal(render("t/{{zone.name}}/{{zone.name}}", TMPL_TOPIC, &m), "t/$SYS/$SYS");
	assert_string_equal(render("$t/{{zone.name}}", TMPL_TOPIC, &m), "$t/$SYS");
	assert_string_equal(render("{{zone.name}}", TMPL_TEXT, &m), "$SYS");
	m.rule[0] = '\0';
	assert_string_equal(render("{{rule}}{{zone.name}}", TMPL_TOPIC, &m), "_$SYS");
}

/* Renders value as the first level and as a later one and checks the topic is one
 * libmosquitto publishes to: its own checks are the oracle. */
static void check_topic_valid(struct message *m, const struct tmpl *first, const struct tmpl *later,
                              const char *value)
{
	struct buf b;
	const struct tmpl *t[2] = {first, later};

	snprintf(m->zone_name, sizeof(m->zone_name), "%s", value);
	for (size_t i = 0; i < 2; i++) {
		buf_init(&b, 0);
		assert_int_equal(tmpl_render(t[i], m, &b), 0);
		assert_non_null(b.data);
		if (mosquitto_pub_topic_check2(b.data, b.len) != MOSQ_ERR_SUCCESS ||
		    mosquitto_validate_utf8(b.data, (int)b.len) != MOSQ_ERR_SUCCESS ||
		    b.data[0] == '$')
			fail_msg("value '%s' renders to an invalid topic '%s'", value, b.data);
		buf_release(&b);
	}
}

static size_t utf8_put(char *out, uint32_t cp)
{
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | cp >> 6);
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | cp >> 12);
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | cp >> 18);
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

static void test_every_character_renders_a_valid_topic(void **state)
{
	(void)state;
	struct message m;
	char err[64], v[16];
	int col;
	struct tmpl *first, *later;
	struct buf b;
	size_t n;

	event_msg(&m);
	first = tmpl_compile("{{zone.name}}/x", TMPL_TOPIC, err, sizeof(err), &col);
	later = tmpl_compile("t/{{zone.name}}", TMPL_TOPIC, err, sizeof(err), &col);
	assert_non_null(first);
	assert_non_null(later);
	/* Every code point but the surrogates, between two letters: the topic is valid, and
	 * the character is kept exactly when libmosquitto accepts it (and it is not / + #). */
	for (uint32_t cp = 1; cp <= 0x10ffff; cp++) {
		if (cp >= 0xd800 && cp <= 0xdfff)
			continue;
		v[0] = 'a';
		n = 1 + utf8_put(v + 1, cp);
		v[n++] = 'b';
		v[n] = '\0';
		check_topic_valid(&m, first, later, v);
		buf_init(&b, 0);
		assert_int_equal(tmpl_render(later, &m, &b), 0);
		bool ok = mosquitto_validate_utf8(v, (int)n) == MOSQ_ERR_SUCCESS && cp != '/' &&
		          cp != '+' && cp != '#';
		if (ok != (strcmp(b.data + 2, v) == 0) || (!ok && strcmp(b.data + 2, "a_b") != 0))
			fail_msg("U+%04X renders '%s'", (unsigned)cp, b.data);
		buf_release(&b);
	}
	/* Arbitrary bytes (a fixed sequence), not UTF-8 at all for most */
	uint64_t x = 0x9e3779b97f4a7c15u;
	char junk[40];
	for (int i = 0; i < 200000; i++) {
		size_t len = 1 + (size_t)(i % (int)(sizeof(junk) - 1));
		for (size_t k = 0; k < len; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			junk[k] = (char)(x % 255 + 1); /* no NUL inside */
			if (k == 0 && i % 7 == 0)
				junk[k] = '$';
		}
		junk[len] = '\0';
		check_topic_valid(&m, first, later, junk);
	}
	tmpl_free(first);
	tmpl_free(later);
}

static void test_flags_render_in_doc_order(void **state)
{
	(void)state;
	struct message m;
	event_msg(&m);
	m.flags = 0;
	for (size_t i = 0; i < msg_flag_count; i++)
		m.flags |= UINT64_C(1) << i;
	const char *all = render("{{flags}}", TMPL_TEXT, &m);
	assert_true(strncmp(all, "pir,lpr,motion,video_loss,", 26) == 0);
	assert_non_null(strstr(all, ",ip_conflict,network_change"));
	m.flags = UINT64_C(1) << msg_flag_index("tripwire");
	assert_string_equal(render("{{flags}}", TMPL_TOPIC, &m), "tripwire");
	m.flags =
	    (UINT64_C(1) << msg_flag_index("intrusion")) | (UINT64_C(1) << msg_flag_index("pir"));
	assert_string_equal(render("{{ flags }}", TMPL_JSON, &m), "pir,intrusion");
}

static void test_spaces_inside_braces_are_optional(void **state)
{
	(void)state;
	struct message m;
	event_msg(&m);
	assert_string_equal(render("{{zone.id}}|{{ zone.id }}|{{\tzone.id  }}", TMPL_TEXT, &m),
	                    "z1|z1|z1");
	assert_string_equal(render("{{kind}}{{phase}}", TMPL_TEXT, &m), "eventupdate");
}

static void test_unknown_path_is_an_error_at_its_column(void **state)
{
	(void)state;
	compile_err("tether/{{ zone.nme }}", "unknown field 'zone.nme'", 11);
	compile_err("{{zone.nme}}", "unknown field 'zone.nme'", 3);
	compile_err("\xc3\xa9/{{x}}", "unknown field 'x'", 5); /* é is one column */
	compile_err("{{ zone name }}", "unknown field 'zone name'", 4);
	compile_err("{{ kind }} {{ Kind }}", "unknown field 'Kind'", 15);
	compile_err("{{ plate }}", "unknown field 'plate'", 4);
}

static void test_unterminated_braces_are_an_error(void **state)
{
	(void)state;
	compile_err("a {{ zone.id", "unterminated '{{'", 3);
	compile_err("a {{ kind }} {{", "unterminated '{{'", 14);
	compile_err("{{ kind }", "unterminated '{{'", 1);
}

static void test_empty_braces_are_an_error(void **state)
{
	(void)state;
	compile_err("x{{ }}", "empty '{{ }}'", 2);
	compile_err("{{}}", "empty '{{ }}'", 1);
}

static void test_literal_only_templates(void **state)
{
	(void)state;
	struct message m;
	char err[64];
	int col;
	event_msg(&m);
	struct tmpl *t = tmpl_compile("tether/alerts", TMPL_TOPIC, err, sizeof(err), &col);
	assert_non_null(t);
	assert_string_equal(tmpl_source(t), "tether/alerts");
	tmpl_free(t);
	t = tmpl_compile("tether/{{kind}}", TMPL_TOPIC, err, sizeof(err), &col);
	assert_string_equal(tmpl_source(t), "tether/{{kind}}");
	tmpl_free(t);
	assert_string_equal(render("", TMPL_TEXT, &m), "");
	assert_string_equal(render("a } b { c }} d", TMPL_TEXT, &m), "a } b { c }} d");
	assert_null(tmpl_compile(NULL, TMPL_TEXT, err, sizeof(err), &col));
	tmpl_free(NULL);
}

static void test_render_appends_and_stops_at_the_cap(void **state)
{
	(void)state;
	struct message m;
	struct buf b;
	char err[64];
	int col;
	event_msg(&m);
	struct tmpl *t = tmpl_compile("{{zone.name}}!", TMPL_TEXT, err, sizeof(err), &col);
	assert_non_null(t);
	buf_init(&b, 0);
	assert_int_equal(buf_puts(&b, ">"), 0);
	assert_int_equal(tmpl_render(t, &m, &b), 0);
	assert_string_equal(b.data, ">Back door!");
	buf_release(&b);
	buf_init(&b, 5);
	assert_int_equal(tmpl_render(t, &m, &b), -1);
	buf_release(&b);
	tmpl_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_each_path_renders),
	    cmocka_unit_test(test_plate_watch_fields_empty_without_match),
	    cmocka_unit_test(test_zone_name_escaped_per_context),
	    cmocka_unit_test(test_slack_text_escapes_values_not_literals),
	    cmocka_unit_test(test_json_escapes_backslash_and_control_chars),
	    cmocka_unit_test(test_literal_text_is_never_escaped),
	    cmocka_unit_test(test_topic_wildcard_or_empty_is_a_compile_error),
	    cmocka_unit_test(test_long_template_compiles_whole),
	    cmocka_unit_test(test_topic_empty_value_is_underscore),
	    cmocka_unit_test(test_bytes_that_are_not_utf8_are_replaced),
	    cmocka_unit_test(test_topic_c1_controls_become_underscore),
	    cmocka_unit_test(test_topic_noncharacters_become_underscore),
	    cmocka_unit_test(test_topic_value_cannot_start_a_system_topic),
	    cmocka_unit_test(test_every_character_renders_a_valid_topic),
	    cmocka_unit_test(test_flags_render_in_doc_order),
	    cmocka_unit_test(test_spaces_inside_braces_are_optional),
	    cmocka_unit_test(test_unknown_path_is_an_error_at_its_column),
	    cmocka_unit_test(test_unterminated_braces_are_an_error),
	    cmocka_unit_test(test_empty_braces_are_an_error),
	    cmocka_unit_test(test_literal_only_templates),
	    cmocka_unit_test(test_zone_slug_is_lower_case_words_joined_by_underscores),
	    cmocka_unit_test(test_zone_slug_in_a_topic_has_no_spaces),
	    cmocka_unit_test(test_check_reports_every_bad_field),
	    cmocka_unit_test(test_render_appends_and_stops_at_the_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
