/* {{ path }} templates over the normalised message, compiled once at load and rendered
 * with context-aware escaping: topics (/ + #, controls and non-characters become _), JSON string
 * contents (JSON-escaped), plain text (as is). Unknown paths are compile errors. */
#ifndef TB_TEMPLATE_H
#define TB_TEMPLATE_H

#include <stddef.h>

#include "lib/util.h"
#include "rules/normalize.h"

enum tmpl_ctx { TMPL_TEXT, TMPL_TOPIC, TMPL_JSON, TMPL_SLACK };

struct tmpl;

/* Paths (docs/message.md): schema id kind phase source_id occurred_at ended_at duration_s
 * complete severity flags motion zone.id zone.name zone.slug location_id timeline_id plate.number
 * plate.normalized plate.country plate.watchlist plate.label plate.distance event_id
 * links.web links.recording_web backfill rule. Values: flags as "motion,intrusion";
 * booleans "true"/"false"; numbers %lld / %g; a field the message lacks (null in its JSON:
 * plate.* and event_id on events, severity and motion on plates, watchlist fields without a
 * match, duration_s unknown, ...) renders "". Escaping applies to substituted values only,
 * never to the literal text around them:
 *   TMPL_TOPIC: '/', '+', '#', C0 and C1 controls (U+0000..U+001F, U+007F..U+009F) and
 *               the Unicode non-characters (U+FDD0..U+FDEF, U+xFFFE and U+xFFFF in every
 *               plane) become '_', one per character; an empty value becomes "_" (no empty
 *               topic levels); a value that starts the topic does not start it with '$' (a
 *               system topic): that '$' becomes '_'. So every value renders to text
 *               libmosquitto accepts in a topic (mosquitto_pub_topic_check2 and
 *               mosquitto_validate_utf8);
 *   TMPL_JSON:  '"', '\' and control characters (\u00XX) escaped; the author writes the
 *               surrounding quotes;
 *   TMPL_TEXT:  as is;
 *   TMPL_SLACK: '&', '<', '>' become &amp; &lt; &gt; (Slack mrkdwn), so a zone named
 *               "<!channel>" cannot mention anyone; the author's own text stays as written.
 * Bytes that are not UTF-8 become '_' in topics and U+FFFD otherwise. */

/* Compiles src ("{{ path }}", spaces inside the braces optional; there is no escape for a
 * literal "{{"). On error returns NULL, sets *err_col to the 1-based column in src of the
 * problem and writes one of "unknown field 'zone.nme'" (column of the path),
 * "unterminated '{{'", "empty '{{ }}'" (column of the "{{") to err. Columns count characters
 * (UTF-8 sequences) from the start of src; a newline is one character and does not reset
 * the count. err and err_col may be NULL. Caller frees with tmpl_free. */
struct tmpl *tmpl_compile(const char *src, enum tmpl_ctx ctx, char *err, size_t errsz,
                          int *err_col);
/* Every problem in src, where tmpl_compile stops at the first: calls report once for each
 * with the column and text tmpl_compile would give (an unknown field also names the closest
 * path: "unknown field 'zone.nme' (did you mean 'zone.name'?)"), in the order they occur;
 * after an unterminated '{{' nothing more is looked at. Returns how many were reported
 * (0: src compiles). For check, after tmpl_compile failed. */
typedef void (*tmpl_report_fn)(void *arg, int col, const char *text);
int tmpl_check(const char *src, enum tmpl_ctx ctx, tmpl_report_fn report, void *arg);
/* Appends the rendering for m to out (out->data stays NULL if it was and nothing was
 * appended). Allocates nothing but out's growth. Returns 0, or -1 when out refuses to grow
 * (its cap): out then holds a partial rendering the caller should discard. */
int tmpl_render(const struct tmpl *t, const struct message *m, struct buf *out);
/* zone.slug: s in lower case with every run of characters other than a-z and 0-9 (ASCII
 * letters are lowered first; '_', spaces, punctuation and every non-ASCII byte count as
 * other) made one '_', none at either end: "Back door / Gate 2" -> "back_door_gate_2",
 * "Café" -> "caf". Cut to outsz - 1 bytes (outsz > 0). Exported for tests. */
void tmpl_slug(const char *s, char *out, size_t outsz);
/* The source text as written (borrowed). Exported for tests. */
const char *tmpl_source(const struct tmpl *t);
void tmpl_free(struct tmpl *t); /* NULL is fine */

#endif
