/* Fuzz target: the TZif reader (rules/schedule.c). The input is written as a zone file and
 * loaded with tz_load; a zone that loads answers tz_offset and the schedule functions for
 * instants across the whole range without undefined behaviour, and the same answer twice.
 * Offsets are not bounded here: RFC 8536 only asks writers to keep them within a day. */
#include <inttypes.h>

#include "rules/schedule.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int64_t at[] = {INT64_MIN / 1000,
	                             -INT64_C(2208988800),
	                             -1,
	                             0,
	                             1,
	                             INT64_C(1700000000),
	                             INT64_C(2147483647),
	                             INT64_C(2147483648),
	                             INT64_C(253402300799),
	                             INT64_MAX / 1000};
	char err[256] = "", text[128];
	struct tz *tz;

	fuzz_write_file("Fuzz_Zone", data, size);
	tz = tz_load("Fuzz_Zone", fuzz_dir(), err, sizeof(err));
	if (tz == NULL) {
		FUZZ_CHECK(err[0] != '\0', "tz_load failed without a message");
		return 0;
	}
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		int32_t off = tz_offset(tz, at[i]);
		FUZZ_CHECK(tz_offset(tz, at[i]) == off, "two offsets at %" PRId64, at[i]);
		struct sched_window w = {.days = 0x7f, .from_min = 60, .to_min = 30, .tz = tz};
		(void)sched_window_holds(&w, at[i] * 1000);
		text[0] = '\0';
		sched_describe(tz, at[i] * 1000, text, sizeof(text));
		FUZZ_CHECK(strlen(text) > 0 && strlen(text) < sizeof(text), "describe at %" PRId64,
		           at[i]);
	}
	tz_free(tz);
	return 0;
}
