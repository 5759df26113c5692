/* Fuzz target: loading a config and its rules (bridge_load), as `check`, `run` and the
 * reload do. The input is written as config.yaml next to plates.txt (a small watchlist, so
 * that `file: plates.txt` resolves). Loading must not crash or leak; a failure must say
 * why; a success must dump and summarise. */
#include "bridge/bridge.h"
#include "tests/fuzz/fuzz.h"

static const char plates[] = "# stolen\nAB12CDE,red van,GBR\nJ*N-*234\n/^K[0-9]{2}/,re\n";
static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	log_init(LOG_LEVEL_ERROR, false);
	fuzz_write_file("plates.txt", plates, sizeof(plates) - 1);
	devnull = fopen("/dev/null", "w");
	if (devnull == NULL)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cfg_errors errs = {0};
	struct config *cfg = NULL;
	struct rules *rules = NULL;
	const char *path = fuzz_write_file("config.yaml", data, size);

	if (bridge_load(path, &cfg, &rules, &errs) < 0) {
		FUZZ_CHECK(errs.n > 0, "bridge_load failed without an error");
		for (size_t i = 0; i < errs.n; i++)
			FUZZ_CHECK(errs.v[i].text && errs.v[i].text[0], "error %zu has no text", i);
		cfg_errors_print(&errs, devnull);
	} else {
		struct buf b;
		char line[512];

		FUZZ_CHECK(errs.n == 0, "loaded with %zu errors", errs.n);
		buf_init(&b, 0);
		FUZZ_CHECK(config_dump(cfg, &b) == 0, "config_dump failed");
		buf_release(&b);
		config_summary(cfg, line, sizeof(line));
		(void)rules_count(rules);
		rules_free(rules);
		config_free(cfg);
	}
	cfg_errors_release(&errs);
	return 0;
}
