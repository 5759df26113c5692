/* The phase decision (see phase.h). Only the first revision of a source, its completion and a
 * change of flags or severity are messages; a growing end time alone is not. */
#include "rules/phase.h"

#include <string.h>

#include "lib/util.h"

enum phase_verdict phase_decide(struct message *m, const struct phase_seen *prev)
{
	if (prev == NULL) {
		m->phase = MSG_PHASE_NEW;
		return PHASE_DELIVER;
	}
	if (strcmp(prev->revision, m->revision) == 0)
		return PHASE_SAME_REVISION;
	if (m->kind == MSG_PLATE)
		return PHASE_PLATE_REVISION;
	if (!prev->complete && m->complete) {
		m->phase = MSG_PHASE_COMPLETE;
		return PHASE_DELIVER;
	}
	if (prev->flags != m->flags || strcmp(prev->severity, m->severity) != 0) {
		m->phase = MSG_PHASE_UPDATE;
		return PHASE_DELIVER;
	}
	return PHASE_NO_CHANGE;
}

void phase_record(const struct message *m, int64_t now_ms, struct phase_seen *out)
{
	memset(out, 0, sizeof(*out));
	util_copy(out->revision, sizeof(out->revision), m->revision);
	util_copy(out->severity, sizeof(out->severity), m->severity);
	out->flags = m->flags;
	out->complete =
	    m->kind == MSG_PLATE || m->complete || now_ms - m->occurred_ms > PHASE_OPEN_GIVE_UP_MS;
}
