/* MQTT command payloads (<prefix>/cmd/perspective, mode, refresh): what an operator's panel,
 * or anyone with publish rights on the broker, sends the bridge. Properties: a verdict
 * always comes (0, or -1 with a reason), an argument is a string without NUL, a request id
 * is a JSON value other than null, and a reason is printable UTF-8. */
#include <stdbool.h>

#include <jansson.h>

#include "bridge/control.h"
#include "tests/fuzz/fuzz.h"

#define COMMAND_MAX 4096 /* the control plane rejects larger payloads before parsing */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

static bool utf8_text(const char *s)
{
	json_t *j = json_string(s); /* jansson refuses invalid UTF-8 */
	bool ok = j != NULL;

	json_decref(j);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {NULL, "perspective", "mode"};
	char *payload;

	if (size > COMMAND_MAX)
		return 0;
	if ((payload = fuzz_cstr(data, size)) == NULL)
		return 0;
	for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
		json_t *request_id = NULL;
		char *arg = NULL, why[256] = "";
		int rc = control_command_arg(payload, keys[k], &request_id, &arg, why, sizeof(why));

		FUZZ_CHECK(rc == 0 || rc == -1, "rc %d", rc);
		if (rc < 0) {
			FUZZ_CHECK(why[0] != '\0', "a refusal without a reason");
			FUZZ_CHECK(arg == NULL, "an argument on a refusal");
		}
		if (keys[k] == NULL)
			FUZZ_CHECK(arg == NULL, "refresh got an argument '%s'", arg);
		if (request_id != NULL) {
			FUZZ_CHECK(!json_is_null(request_id), "a null request id");
			char *dump = json_dumps(request_id, JSON_ENCODE_ANY | JSON_COMPACT);
			FUZZ_CHECK(dump != NULL, "request id does not dump");
			free(dump);
		}
		FUZZ_CHECK(utf8_text(why), "the reason is not UTF-8: %s", why);
		free(arg);
		json_decref(request_id);
	}
	free(payload);
	return 0;
}
