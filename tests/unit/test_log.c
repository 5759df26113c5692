/* lib/log: records are one line whatever the message holds (control characters escaped in
 * text, valid JSON with invalid UTF-8 replaced in JSON mode). stderr is captured in a
 * temporary file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>
#include <unistd.h>

#include "lib/log.h"

static const struct log_field *cap_fields; /* capture: log_fields with these, when set */

/* Runs one log_warnx("%s", msg) with stderr sent to a temporary file; returns what was
 * written (caller frees). */
static char *capture(bool json, const char *msg)
{
	FILE *tmp = tmpfile();
	int saved;
	long len;
	char *out;

	assert_non_null(tmp);
	fflush(stderr);
	saved = dup(fileno(stderr));
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), fileno(stderr)) >= 0);
	log_init(LOG_LEVEL_INFO, json);
	if (cap_fields)
		log_fields(LOG_LEVEL_WARN, cap_fields, "zone '%s': skipping", msg);
	else
		log_warnx("zone '%s': skipping", msg);
	fflush(stderr);
	assert_true(dup2(saved, fileno(stderr)) >= 0);
	close(saved);
	log_init(LOG_LEVEL_INFO, false);

	assert_int_equal(fseek(tmp, 0, SEEK_END), 0);
	len = ftell(tmp);
	assert_true(len > 0);
	rewind(tmp);
	out = calloc(1, (size_t)len + 1);
	assert_non_null(out);
	assert_int_equal(fread(out, 1, (size_t)len, tmp), (size_t)len);
	fclose(tmp);
	return out;
}

static size_t count_char(const char *s, char c)
{
	size_t n = 0;
	for (; *s; s++)
		n += *s == c;
	return n;
}

static void test_text_escapes_newline_so_no_line_is_forged(void **state)
{
	char *out = capture(false, "Gate\n2026-01-01T00:00:00.000Z error: forged\r\tend");
	(void)state;

	assert_int_equal(count_char(out, '\n'), 1);
	assert_int_equal(out[strlen(out) - 1], '\n');
	assert_non_null(strstr(out, "warn: zone 'Gate\\n2026-01-01T00:00:00.000Z error: "
	                            "forged\\r\\tend': skipping\n"));
	free(out);
}

static void test_text_escapes_other_controls_and_bad_utf8_as_hex(void **state)
{
	/* ESC (a terminal sequence), DEL, U+0085 (NEL) and a stray 0xff; UTF-8 text is kept */
	char *out = capture(false, "a\x1b[2Jb\x7f"
	                           "c\xc2\x85"
	                           "d\xff"
	                           "e \xe2\x82\xac");
	(void)state;

	assert_non_null(strstr(out, "'a\\x1b[2Jb\\x7fc\\x85d\\xffe \xe2\x82\xac'"));
	assert_int_equal(count_char(out, '\n'), 1);
	free(out);
}

static void test_json_line_parses_with_bad_utf8_replaced(void **state)
{
	char *out = capture(true, "x\n\"y\"\\\xff\xc0\xaf"
	                          "z\xc2\x85\xe2\x82");
	json_error_t jerr;
	json_t *o;
	(void)state;

	assert_int_equal(count_char(out, '\n'), 1);
	o = json_loads(out, 0, &jerr);
	if (o == NULL)
		fail_msg("not JSON (%s): %s", jerr.text, out);
	assert_string_equal(json_string_value(json_object_get(o, "level")), "warn");
	assert_string_equal(json_string_value(json_object_get(o, "msg")),
	                    "zone 'x\n\"y\"\\\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
	                    "z\xc2\x85\xef\xbf\xbd\xef\xbf\xbd': skipping");
	json_decref(o);
	free(out);
}

static void test_json_fields_are_keys(void **state)
{
	const struct log_field f[] = {{"zone", "Gate \"A\""},      {"rule", "night"},
	                              {"target", "webhook.slack"}, {"msg_id", NULL},
	                              {"status", "503"},           {NULL, NULL}};
	json_error_t jerr;
	json_t *o;
	char *out;
	(void)state;

	cap_fields = f;
	out = capture(true, "Gate");
	cap_fields = NULL;
	assert_int_equal(count_char(out, '\n'), 1);
	o = json_loads(out, 0, &jerr);
	if (o == NULL)
		fail_msg("not JSON (%s): %s", jerr.text, out);
	assert_string_equal(json_string_value(json_object_get(o, "msg")), "zone 'Gate': skipping");
	assert_string_equal(json_string_value(json_object_get(o, "zone")), "Gate \"A\"");
	assert_string_equal(json_string_value(json_object_get(o, "rule")), "night");
	assert_string_equal(json_string_value(json_object_get(o, "target")), "webhook.slack");
	assert_string_equal(json_string_value(json_object_get(o, "status")), "503");
	assert_null(json_object_get(o, "msg_id")); /* a NULL value is left out */
	json_decref(o);
	free(out);
}

static void test_text_fields_follow_the_message(void **state)
{
	const struct log_field f[] = {{"zone", "Gate A"},
	                              {"rule", "night"},
	                              {"msg_id", "ev-1"},
	                              {"why", "a\"b\nc"},
	                              {NULL, NULL}};
	char *out;
	(void)state;

	cap_fields = f;
	out = capture(false, "Gate");
	cap_fields = NULL;
	assert_int_equal(count_char(out, '\n'), 1);
	assert_non_null(strstr(out, "warn: zone 'Gate': skipping zone=\"Gate A\" rule=night "
	                            "msg_id=ev-1 why=\"a\\\"b\\nc\"\n"));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_text_escapes_newline_so_no_line_is_forged),
	    cmocka_unit_test(test_text_escapes_other_controls_and_bad_utf8_as_hex),
	    cmocka_unit_test(test_json_line_parses_with_bad_utf8_replaced),
	    cmocka_unit_test(test_json_fields_are_keys),
	    cmocka_unit_test(test_text_fields_follow_the_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
