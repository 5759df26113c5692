/* The resident memory a process has before it does anything, when it is linked with the
 * libraries the bridge is linked with (the same LDLIBS): the floor under the bridge's idle
 * RSS. Prints VmRSS, RssFile and RssAnon at main(), after curl_global_init (what libcurl
 * sets up for TLS) and after the other libraries' set-up, and the shared objects mapped. */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <mosquitto.h>
#include <openssl/evp.h>
#include <sqlite3.h>
#include <yajl/yajl_parse.h>
#include <systemd/sd-daemon.h>
#include <yaml.h>

/* "VmRSS 8116 kB, RssFile 6812 kB, RssAnon 1304 kB" for this process, printed after what. */
static void print_rss(const char *what)
{
	static const char *const keys[] = {"VmRSS:", "RssFile:", "RssAnon:"};
	long kb[3] = {-1, -1, -1};
	char line[256];
	FILE *f = fopen("/proc/self/status", "r");

	if (f == NULL) {
		perror("rss_floor: /proc/self/status");
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL)
		for (size_t i = 0; i < 3; i++)
			if (strncmp(line, keys[i], strlen(keys[i])) == 0)
				sscanf(line + strlen(keys[i]), "%ld", &kb[i]);
	fclose(f);
	printf("rss floor, %s: VmRSS %ld kB, RssFile %ld kB, RssAnon %ld kB\n", what, kb[0], kb[1],
	       kb[2]);
}

/* Shared objects mapped (distinct paths ending in .so or .so.N). */
static int count_libraries(void)
{
	char line[512], last[512] = "";
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *path = strchr(line, '/');
		if (path == NULL || strstr(path, ".so") == NULL || strcmp(path, last) == 0)
			continue;
		snprintf(last, sizeof(last), "%s", path);
		n++;
	}
	fclose(f);
	return n;
}

int main(void)
{
	sqlite3 *db = NULL;
	yaml_parser_t yp;
	yajl_handle yh;

	print_rss("at main()");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "rss_floor: curl_global_init failed\n");
		return 1;
	}
	print_rss("after curl_global_init");
	if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS ||
	    sqlite3_open(":memory:", &db) != SQLITE_OK || !yaml_parser_initialize(&yp) ||
	    (yh = yajl_alloc(NULL, NULL, NULL)) == NULL) {
		fprintf(stderr, "rss_floor: a library failed to initialise\n");
		return 1;
	}
	json_decref(json_object());
	/* what the bridge asks of the others at start-up */
	(void)MHD_is_feature_supported(MHD_FEATURE_IPv6);
	(void)sd_booted();
	(void)EVP_sha256();
	print_rss("after every library's set-up");
	printf("rss floor: %d shared objects mapped\n", count_libraries());
	yajl_free(yh);
	yaml_parser_delete(&yp);
	sqlite3_close(db);
	mosquitto_lib_cleanup();
	curl_global_cleanup();
	return 0;
}
