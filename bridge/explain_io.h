/* explain's input and readable output: reads a Tether document or the bridge's own v1
 * messages (one object, JSON lines from `dlq list`, or lines as received from MQTT), and
 * prints an explain record as text for a person at a terminal. */
#ifndef TB_EXPLAIN_IO_H
#define TB_EXPLAIN_IO_H

#include <jansson.h>
#include <stdio.h>

/* Reads input (a path, or "-" for stdin). Sets *doc to a Tether document (a JSON:API
 * document, a list of resources or one resource), or *msgs to a list of v1 message objects
 * and {"line": N, "error": "..."} for lines that hold none. 0, or -1 after saying why on
 * stderr. New references. */
int explain_input_read(const char *input, json_t **doc, json_t **msgs);

/* One explain record (what --json prints as a line) in the readable layout. */
void explain_print_text(FILE *f, const json_t *rec);

#endif
