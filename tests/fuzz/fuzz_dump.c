/* Fuzz target: message_dump, which writes the message text with yajl's generator, against
 * the reference it replaced, json_dumps(message_to_json(m), MSG_DUMP_FLAGS). The input
 * fills a message: a 29-byte header of the other fields, then the string fields in struct
 * order, NUL-separated, each cut to fit. Properties: the texts are the same bytes, and so
 * is a second dump of the same message (from the thread's cache). */
#include <jansson.h>

#include "rules/normalize.h"
#include "tests/fuzz/fuzz.h"

#define HEADER 29

/* The message the input describes; header bytes past the input's end read as 0. */
static void fill(struct message *m, const uint8_t *data, size_t size)
{
	char *const f[] = {m->id,          m->source_id,   m->revision,       m->occurred_at,
	                   m->ended_at,    m->severity,    m->zone_id,        m->zone_name,
	                   m->location_id, m->timeline_id, m->plate_number,   m->plate_normalized,
	                   m->country,     m->event_id,    m->watchlist,      m->watch_entry,
	                   m->watch_label, m->link_web,    m->link_recording, m->rule};
	const size_t sizes[] = {sizeof(m->id),
	                        sizeof(m->source_id),
	                        sizeof(m->revision),
	                        sizeof(m->occurred_at),
	                        sizeof(m->ended_at),
	                        sizeof(m->severity),
	                        sizeof(m->zone_id),
	                        sizeof(m->zone_name),
	                        sizeof(m->location_id),
	                        sizeof(m->timeline_id),
	                        sizeof(m->plate_number),
	                        sizeof(m->plate_normalized),
	                        sizeof(m->country),
	                        sizeof(m->event_id),
	                        sizeof(m->watchlist),
	                        sizeof(m->watch_entry),
	                        sizeof(m->watch_label),
	                        sizeof(m->link_web),
	                        sizeof(m->link_recording),
	                        sizeof(m->rule)};
	uint8_t h[HEADER] = {0};
	size_t at = HEADER < size ? HEADER : size;

	memset(m, 0, sizeof(*m));
	memcpy(h, data, at);
	m->kind = h[0] & 1 ? MSG_PLATE : MSG_EVENT;
	m->phase = (enum msg_phase)((h[0] >> 1) % 3);
	m->complete = h[0] & 8;
	m->watch_matched = h[0] & 16;
	m->backfill = h[0] & 32;
	memcpy(&m->flags, h + 1, 8);
	memcpy(&m->motion, h + 9, 8); /* any double, NaN and infinities too */
	memcpy(&m->duration_s, h + 17, 8);
	memcpy(&m->watch_distance, h + 25, 4);
	_Static_assert(sizeof(f) / sizeof(f[0]) == sizeof(sizes) / sizeof(sizes[0]), "sizes");
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]) && at < size; i++) {
		const uint8_t *end = memchr(data + at, '\0', size - at);
		size_t n = end ? (size_t)(end - (data + at)) : size - at;
		memcpy(f[i], data + at, n < sizes[i] ? n : sizes[i] - 1);
		at += n + 1;
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct message m;
	json_t *o;
	char *want = NULL, *got = NULL, *again = NULL;

	fill(&m, data, size);
	if ((o = message_to_json(&m)) == NULL)
		return 0; /* out of memory: nothing to compare */
	want = json_dumps(o, MSG_DUMP_FLAGS);
	json_decref(o);
	got = message_dump(&m);
	again = message_dump(&m);
	if (want != NULL && got != NULL && again != NULL) {
		FUZZ_CHECK(strcmp(got, want) == 0, "\n got  %s\n want %s", got, want);
		FUZZ_CHECK(strcmp(again, got) == 0, "\n again %s\n first %s", again, got);
	}
	free(want);
	free(got);
	free(again);
	return 0;
}
