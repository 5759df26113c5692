/* Unit tests for config/yaml: positions, env expansion, typed accessors, errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/yaml.h"

static struct ydoc *load(const char *text, struct cfg_errors *errs)
{
	return ydoc_load_string(text, strlen(text), "t.yaml", errs);
}

static void test_positions_are_one_based(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	struct ydoc *d = load("a: 1\nb:\n  c: x\n", &errs);
	assert_non_null(d);
	assert_int_equal(errs.n, 0);
	const struct ynode *b = ynode_get(d->root, "b");
	const struct ynode *c = ynode_get(b, "c");
	assert_int_equal(c->line, 3);
	assert_int_equal(c->column, 6);
	assert_string_equal(c->value, "x");
	ydoc_free(d);
}

static void test_env_expansion_and_default(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	setenv("TB_TEST_X", "hello", 1);
	unsetenv("TB_TEST_UNSET");
	struct ydoc *d = load("a: ${TB_TEST_X}/x\nb: ${TB_TEST_UNSET:-dflt}\nc: $${NOPE}\n", &errs);
	assert_int_equal(errs.n, 0);
	assert_string_equal(ynode_get(d->root, "a")->value, "hello/x");
	assert_string_equal(ynode_get(d->root, "b")->value, "dflt");
	assert_string_equal(ynode_get(d->root, "c")->value, "${NOPE}");
	ydoc_free(d);
}

static void test_unset_env_is_error_at_value(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	unsetenv("TB_TEST_UNSET");
	struct ydoc *d = load("x: 1\nsecret: ${TB_TEST_UNSET}\n", &errs);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.v[0].line, 2);
	assert_int_equal(errs.v[0].column, 9);
	assert_string_equal(errs.v[0].text, "environment variable 'TB_TEST_UNSET' is not set");
	ydoc_free(d);
	cfg_errors_release(&errs);
}

static void test_syntax_error_position(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	struct ydoc *d = load("a: [1, 2\nb: 3\n", &errs);
	assert_null(d);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.v[0].line, 2);
	assert_non_null(strstr(errs.v[0].text, "invalid YAML"));
	cfg_errors_release(&errs);
}

static void test_duplicate_key_reported(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	struct ydoc *d = load("a: 1\na: 2\n", &errs);
	assert_non_null(d);
	assert_int_equal(errs.n, 1);
	assert_int_equal(errs.v[0].line, 2);
	assert_int_equal(errs.v[0].column, 1);
	assert_string_equal(errs.v[0].text, "duplicate key 'a'");
	ydoc_free(d);
	cfg_errors_release(&errs);
}

/* A map of 20,000 keys: the repeated ones are each reported once more, at their own line,
 * and equal keys in different maps are no duplicates. (The scan was quadratic.) */
static void test_duplicate_keys_in_a_large_map(void **state)
{
	(void)state;
	enum { NKEYS = 20000 };
	struct cfg_errors errs = {0};
	size_t cap = (size_t)NKEYS * 16 + 64, len = 0;
	char *text = malloc(cap);
	assert_non_null(text);
	len += (size_t)snprintf(text + len, cap - len, "inner: {k5: 1, k7: 2}\n");
	for (int i = 0; i < NKEYS; i++)
		len += (size_t)snprintf(text + len, cap - len, "k%d: %d\n", i, i);
	len += (size_t)snprintf(text + len, cap - len, "k123: again\nk123: and again\n");
	struct ydoc *d = load(text, &errs);
	assert_non_null(d);
	assert_int_equal(d->root->n, NKEYS + 3);
	assert_int_equal(errs.n, 2);
	assert_int_equal(errs.v[0].line, NKEYS + 2);
	assert_int_equal(errs.v[0].column, 1);
	assert_string_equal(errs.v[0].text, "duplicate key 'k123'");
	assert_int_equal(errs.v[1].line, NKEYS + 3);
	assert_string_equal(errs.v[1].text, "duplicate key 'k123'");
	assert_string_equal(ynode_get(d->root, "k19999")->value, "19999");
	ydoc_free(d);
	cfg_errors_release(&errs);
	free(text);
}

static void test_unknown_keys_all_reported(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	static const char *const allowed[] = {"url", "qos", NULL};
	struct ydoc *d = load("url: x\nqso: 1\nretian: true\n", &errs);
	assert_int_equal(ynode_check_keys(d->root, allowed, "mqtt", &errs), 2);
	assert_int_equal(errs.n, 2);
	assert_string_equal(errs.v[0].text, "unknown key 'qso' in 'mqtt' (did you mean 'qos'?)");
	assert_int_equal(errs.v[1].line, 3);
	assert_string_equal(errs.v[1].text, "unknown key 'retian' in 'mqtt'"); /* none close */
	ydoc_free(d);
	cfg_errors_release(&errs);
}

static void test_typed_accessors(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	struct ydoc *d = load("b: yes\ni: 42\nbad: 4x\nd: 5m\nbd: 5 minutes\nl: [1]\n", &errs);
	bool b = false;
	int64_t i = 0, ms = 0;
	const char *s;
	assert_int_equal(ynode_bool(d->root, "b", true, &b, &errs), 1);
	assert_true(b);
	assert_int_equal(ynode_int(d->root, "i", true, 0, 100, &i, &errs), 1);
	assert_int_equal(i, 42);
	assert_int_equal(ynode_int(d->root, "bad", true, 0, 100, &i, &errs), -1);
	assert_int_equal(ynode_duration(d->root, "d", true, &ms, &errs), 1);
	assert_int_equal(ms, 300000);
	assert_int_equal(ynode_duration(d->root, "bd", true, &ms, &errs), -1);
	assert_int_equal(ynode_str(d->root, "l", true, &s, &errs), -1);
	assert_int_equal(ynode_str(d->root, "missing", true, &s, &errs), 0);
	assert_int_equal(errs.n, 4);
	assert_string_equal(errs.v[0].text, "'bad': expected an integer, found '4x'");
	assert_string_equal(errs.v[1].text,
	                    "'bd': bad duration '5 minutes' (use 500ms, 10s, 5m, 2h or 1d)");
	assert_string_equal(errs.v[3].text, "missing required key 'missing'");
	ydoc_free(d);
	cfg_errors_release(&errs);
}

static void test_secret_file_is_read_and_trimmed(void **state)
{
	(void)state;
	struct cfg_errors errs = {0};
	char path[] = "/tmp/tb-secret-XXXXXX", text[256];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "s3cret\n", 7), 7);
	close(fd);
	snprintf(text, sizeof(text), "password_file: %s\n", path);
	struct ydoc *d = load(text, &errs);
	char *secret = NULL;
	assert_int_equal(ynode_secret(d->root, "password", true, &secret, &errs), 1);
	assert_string_equal(secret, "s3cret");
	free(secret);
	unlink(path);
	ydoc_free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_positions_are_one_based),
	    cmocka_unit_test(test_env_expansion_and_default),
	    cmocka_unit_test(test_unset_env_is_error_at_value),
	    cmocka_unit_test(test_syntax_error_position),
	    cmocka_unit_test(test_duplicate_key_reported),
	    cmocka_unit_test(test_duplicate_keys_in_a_large_map),
	    cmocka_unit_test(test_unknown_keys_all_reported),
	    cmocka_unit_test(test_typed_accessors),
	    cmocka_unit_test(test_secret_file_is_read_and_trimmed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
